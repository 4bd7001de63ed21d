//! Property test: random `encryptedData` maps rendered in several styles
//! (block YAML with 2 or 4 spaces, LF or CRLF, with or without a final line
//! break, values plain / double- / single-quoted / literal blocks, some with
//! comments; or pretty JSON), random set edits (replacing and inserting).
//! Checked: the result reads back (serde_yaml) as the original with the
//! edits applied, key order included; every line not belonging to an edited
//! entry is byte-identical and in the same order, and exactly one line per
//! edited or inserted key is added; line endings and the final line break
//! are the file's.

mod common;

use kseal_yamledit::{set_strings, Edit};
use proptest::prelude::*;
use serde_yaml::Value;

#[derive(Debug, Clone, Copy)]
enum Style {
    Plain,
    Double,
    Single,
    Literal,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    style: Style,
    comment: bool,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Yaml {
        indent: usize,
        crlf: bool,
        final_newline: bool,
    },
    Json,
}

/// A test-side double-quoted renderer, independent of the crate's: JSON
/// escapes, plus `\uXXXX` for what YAML 1.1 readers take as line breaks or
/// refuse (C1 controls, DEL, LS, PS, BOM, U+FFFE/F).
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn plain_ok(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=._-".contains(c))
        && serde_yaml::from_str::<Value>(&format!("k: {s}")).ok()
            == Some(serde_yaml::from_str(&format!("k: {}", quote(s))).unwrap())
}

fn single_ok(s: &str) -> bool {
    s.chars().all(|c| {
        (' '..='~').contains(&c)
            || (c >= '\u{a0}'
                && !matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ))
    })
}

fn literal_ok(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(' ') && s.chars().all(|c| (' '..='~').contains(&c))
}

fn render_key(key: &str, format: Format) -> String {
    match format {
        Format::Yaml { .. } if plain_ok(key) => key.to_owned(),
        _ => quote(key),
    }
}

/// The document, as lines each tagged with the entry they belong to.
fn render(entries: &[Entry], format: Format) -> (String, Vec<(String, Option<usize>)>) {
    let mut lines: Vec<(String, Option<usize>)> = Vec::new();
    match format {
        Format::Yaml {
            indent,
            crlf,
            final_newline,
        } => {
            let i1 = " ".repeat(indent);
            let i2 = " ".repeat(indent * 2);
            lines.push(("# a SealedSecret".into(), None));
            lines.push(("apiVersion: bitnami.com/v1alpha1".into(), None));
            lines.push(("kind: SealedSecret".into(), None));
            lines.push(("spec:".into(), None));
            lines.push((format!("{i1}encryptedData:"), None));
            for (n, entry) in entries.iter().enumerate() {
                let key = render_key(&entry.key, format);
                let comment = if entry.comment {
                    format!("  # c{n}")
                } else {
                    String::new()
                };
                let v = &entry.value;
                match entry.style {
                    Style::Plain if plain_ok(v) => {
                        lines.push((format!("{i2}{key}: {v}{comment}"), Some(n)))
                    }
                    Style::Single if single_ok(v) => lines.push((
                        format!("{i2}{key}: '{}'{comment}", v.replace('\'', "''")),
                        Some(n),
                    )),
                    Style::Literal if literal_ok(v) => {
                        lines.push((format!("{i2}{key}: |-{comment}"), Some(n)));
                        lines.push((format!("{i2}{i1}{v}"), Some(n)));
                    }
                    _ => lines.push((format!("{i2}{key}: {}{comment}", quote(v)), Some(n))),
                }
            }
            lines.push((format!("{i1}template:"), None));
            lines.push((format!("{i2}type: Opaque"), None));
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = lines
                .iter()
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(eol);
            if final_newline {
                text.push_str(eol);
            }
            (text, lines)
        }
        Format::Json => {
            lines.push(("{".into(), None));
            lines.push(("  \"kind\": \"SealedSecret\",".into(), None));
            lines.push(("  \"spec\": {".into(), None));
            lines.push(("    \"encryptedData\": {".into(), None));
            for (n, entry) in entries.iter().enumerate() {
                let comma = if n + 1 < entries.len() { "," } else { "" };
                lines.push((
                    format!(
                        "      {}: {}{comma}",
                        quote(&entry.key),
                        quote(&entry.value)
                    ),
                    Some(n),
                ));
            }
            lines.push(("    }".into(), None));
            lines.push(("  }".into(), None));
            lines.push(("}".into(), None));
            let mut text = lines
                .iter()
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            text.push('\n');
            (text, lines)
        }
    }
}

fn short_string(max: usize) -> impl Strategy<Value = String> {
    any::<String>().prop_map(move |s| s.chars().take(max).collect())
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9._-]{0,10}",
        1 => "[ -~]{0,12}",
        1 => short_string(8),
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "Ag[A-Za-z0-9+/]{0,40}={0,2}",
        1 => "[A-Za-z0-9+/]{1,12}",
        1 => "[ -~]{0,20}",
        1 => short_string(16),
        1 => prop::sample::select(vec![
            "true", "null", "", "~", "123", "0x1F", "- a", "a: b", " x ", "yes", "1e3", ".inf", "#c",
            "a #b", "it's", "\"q\"", "line\nbreak", "2001-12-14", "<<", "=",
        ])
        .prop_map(String::from),
    ]
}

fn style_strategy() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Plain),
        Just(Style::Double),
        Just(Style::Single),
        Just(Style::Literal)
    ]
}

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![
        3 => (prop::sample::select(vec![2usize, 4]), any::<bool>(), any::<bool>())
            .prop_map(|(indent, crlf, final_newline)| Format::Yaml { indent, crlf, final_newline }),
        1 => Just(Format::Json),
    ]
}

fn entries_strategy() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (
            key_strategy(),
            value_strategy(),
            style_strategy(),
            any::<bool>(),
        ),
        1..8,
    )
    .prop_map(|raw| {
        let mut entries: Vec<Entry> = Vec::new();
        for (key, value, style, comment) in raw {
            if !entries.iter().any(|e| e.key == key) {
                entries.push(Entry {
                    key,
                    value,
                    style,
                    comment,
                });
            }
        }
        entries
    })
}

/// One line of a YAML-ish document: indentation, maybe a `- `, a key, and
/// one of many value shapes.
fn yamlish_line() -> impl Strategy<Value = String> {
    let entry = (
        prop::sample::select(vec!["", "", "  ", "    ", "      ", " "]),
        prop::sample::select(vec!["", "", "", "- "]),
        prop::sample::select(vec!["a", "b", "c", "\"a\"", "'b'"]),
        prop::sample::select(vec![
            ":",
            ": x",
            ": AgB=",
            ": {}",
            ": null",
            ": ~",
            ": |",
            ": >-",
            ": [1]",
            ": 'q'",
            ": \"d\"",
            ":  # c",
            ": &n x",
            ": *n",
            ": !!str x",
            ": {a: b}",
            ": {\"a\": \"b\"}",
            ": x # c",
            ": multi",
            "",
            ": |+",
        ]),
    )
        .prop_map(|(indent, dash, key, value)| format!("{indent}{dash}{key}{value}"));
    let raw = prop::sample::select(vec![
        "---",
        "...",
        "# comment",
        "  # indented comment",
        "    text",
        "  more text",
        "",
        "  ",
        "a: {",
        "  a: b,",
        "}",
        "a: [",
        "]",
        "  - x",
        "? a",
        ": b",
    ])
    .prop_map(String::from);
    prop_oneof![3 => entry, 1 => raw]
}

/// (replace an existing entry?, which one, a new key, the value)
type RawEdit = (bool, prop::sample::Index, String, String);

/// Parents for edits of the second property: the existing map, and three
/// that do not exist yet in the fixture (`template` has no `metadata`).
const PARENTS: [&[&str]; 4] = [
    &["spec", "encryptedData"],
    &["spec", "template", "metadata", "labels"],
    &["spec", "template", "metadata", "annotations"],
    &["spec", "template", "data"],
];

/// Edits anywhere under [`PARENTS`]: the result must mean the original with
/// the edits applied, and every line not belonging to an edited entry must
/// still be there, unchanged and in order.
fn check_nested(
    entries: &[Entry],
    format: Format,
    raw_edits: &[(prop::sample::Index, String, String)],
) -> Result<(), TestCaseError> {
    let (text, lines) = render(entries, format);
    let edits: Vec<Edit> = raw_edits
        .iter()
        .map(|(parent, key, value)| {
            let mut path: Vec<String> = PARENTS[parent.index(PARENTS.len())]
                .iter()
                .map(|s| s.to_string())
                .collect();
            path.push(key.clone());
            Edit::new(path, value.clone())
        })
        .collect();
    let out =
        set_strings(&text, 0, &edits).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let mut expected: Value = serde_yaml::from_str(&text).expect("fixture parses");
    for edit in &edits {
        common::set_path(&mut expected, &edit.path, &edit.value);
    }
    let actual: Value =
        serde_yaml::from_str(&out).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
    prop_assert_eq!(&actual, &expected, "output:\n{}", out);
    let edited_here: Vec<&String> = edits
        .iter()
        .filter(|e| e.path[1] == "encryptedData")
        .map(|e| &e.path[2])
        .collect();
    let strip = |l: &str| l.trim_end_matches(['\r', ',']).to_owned();
    let out_lines: Vec<String> = out.split('\n').map(strip).collect();
    let mut at = 0;
    for (line, entry) in &lines {
        if entry.is_some_and(|n| edited_here.contains(&&entries[n].key)) {
            continue;
        }
        let line = strip(line);
        match out_lines[at..].iter().position(|l| *l == line) {
            Some(i) => at += i + 1,
            None => prop_assert!(
                false,
                "line {:?} changed or moved:\n{}\n=>\n{}",
                line,
                text,
                out
            ),
        }
    }
    Ok(())
}

fn check_case(
    entries: &[Entry],
    format: Format,
    raw_edits: &[RawEdit],
) -> Result<(), TestCaseError> {
    let (text, lines) = render(entries, format);
    let edits: Vec<Edit> = raw_edits
        .iter()
        .map(|(existing, index, key, value)| {
            let key = if *existing {
                entries[index.index(entries.len())].key.clone()
            } else {
                key.clone()
            };
            Edit::new(
                ["spec".to_owned(), "encryptedData".to_owned(), key],
                value.clone(),
            )
        })
        .collect();
    let out =
        set_strings(&text, 0, &edits).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

    // Semantics: the whole document, and the order of encryptedData.
    let mut expected: Value = serde_yaml::from_str(&text).expect("fixture parses");
    let mut order: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    for edit in &edits {
        common::set_path(&mut expected, &edit.path, &edit.value);
        if !order.contains(&edit.path[2]) {
            order.push(edit.path[2].clone());
        }
    }
    let actual: Value =
        serde_yaml::from_str(&out).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
    prop_assert_eq!(&actual, &expected, "output:\n{}", out);
    let keys: Vec<String> = actual["spec"]["encryptedData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    prop_assert_eq!(keys, order);

    // Layout: untouched lines identical and in order, one line per edited key.
    let edited: Vec<&String> = edits.iter().map(|e| &e.path[2]).collect();
    let replaced = entries.iter().filter(|e| edited.contains(&&e.key)).count();
    let inserted = {
        let mut new: Vec<&String> = edited
            .iter()
            .copied()
            .filter(|k| !entries.iter().any(|e| &e.key == *k))
            .collect();
        new.sort();
        new.dedup();
        new.len()
    };
    let untouched: Vec<&str> = lines
        .iter()
        .filter(|(_, entry)| entry.is_none_or(|n| !edited.contains(&&entries[n].key)))
        .map(|(l, _)| l.as_str())
        .collect();
    let (eol, final_newline) = match format {
        Format::Yaml {
            crlf,
            final_newline,
            ..
        } => (if crlf { "\r\n" } else { "\n" }, final_newline),
        Format::Json => ("\n", true),
    };
    prop_assert_eq!(out.ends_with('\n'), final_newline);
    let body = out
        .strip_suffix(eol)
        .filter(|_| final_newline)
        .unwrap_or(&out);
    let out_lines: Vec<&str> = body.split(eol).collect();
    prop_assert!(
        out_lines.iter().all(|l| !l.contains(['\r', '\n'])),
        "mixed line breaks:\n{:?}",
        out
    );
    prop_assert_eq!(
        out_lines.len(),
        untouched.len() + replaced + inserted,
        "output:\n{}",
        out
    );
    // In JSON the previously last entry gains a comma when keys are appended.
    let strip = |l: &str| -> String {
        match format {
            Format::Json => l.trim_end_matches(',').to_owned(),
            Format::Yaml { .. } => l.to_owned(),
        }
    };
    let mut pending = untouched.iter().peekable();
    for line in &out_lines {
        if pending.peek().is_some_and(|u| strip(u) == strip(line)) {
            pending.next();
        }
    }
    prop_assert!(
        pending.next().is_none(),
        "an untouched line changed or moved:\n{}\n=>\n{}",
        text,
        out
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_keep_everything_else(
        entries in entries_strategy(),
        format in format_strategy(),
        raw_edits in prop::collection::vec(
            (any::<bool>(), any::<prop::sample::Index>(), key_strategy(), value_strategy()),
            0..6,
        ),
    ) {
        check_case(&entries, format, &raw_edits)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_nested_edits_keep_everything_else(
        entries in entries_strategy(),
        format in format_strategy(),
        raw_edits in prop::collection::vec(
            (any::<prop::sample::Index>(), key_strategy(), value_strategy()),
            0..6,
        ),
    ) {
        check_nested(&entries, format, &raw_edits)?;
    }

    /// Whatever the input, an edit returns a text or an error; it never
    /// panics, and a returned text still parses.
    #[test]
    fn arbitrary_input_never_panics(
        text in "[a-z0-9:# \n'\"{}\\[\\],|>&*!?.~-]{0,80}",
        path in prop::collection::vec("[a-z]{1,2}", 1..3),
        value in value_strategy(),
    ) {
        if let Ok(out) = set_strings(&text, 0, &[Edit::new(path, value)]) {
            prop_assert!(kseal_yamledit::documents(&out).is_ok(), "{:?} => {:?}", text, out);
        }
    }

    /// YAML-ish documents built from random lines: an edit either succeeds
    /// (and the output means the input plus the edit) or is refused
    /// deliberately; the self-check (`Error::Internal`) never fires.
    #[test]
    fn yamlish_input_is_edited_or_refused(
        lines in prop::collection::vec(yamlish_line(), 1..8),
        crlf in any::<bool>(),
        path in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
        value in value_strategy(),
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        let Ok(docs) = kseal_yamledit::documents(&text) else { return Ok(()) };
        if docs.is_empty() {
            return Ok(());
        }
        let edit = Edit::new(path, value);
        match set_strings(&text, 0, std::slice::from_ref(&edit)) {
            Ok(out) => {
                // serde_yaml (YAML 1.1, strict about duplicates, anchors...)
                // is the oracle only where it reads the input at all.
                if let Ok(mut expected) = serde_yaml::from_str::<Value>(&text) {
                    if matches!(expected, Value::Mapping(_)) {
                        common::set_path(&mut expected, &edit.path, &edit.value);
                        let actual: Value = serde_yaml::from_str(&out)
                            .map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}\n=>\n{out:?}")))?;
                        prop_assert_eq!(actual, expected, "{:?}\n=>\n{:?}", text, out);
                    }
                }
            }
            Err(kseal_yamledit::Error::Internal { path, detail }) => {
                prop_assert!(false, "self-check fired on {:?}: {} {}", text, path, detail);
            }
            Err(_) => {}
        }
    }
}
