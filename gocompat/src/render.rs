//! Rendering objects the way the Go tools print them, so that our output diffs cleanly against
//! kubeseal's and kubectl's.
//!
//! - [`to_go_json`]: `json.MarshalIndent(obj, "", "  ")` (or `json.Marshal`): field order as
//!   the value serializes it, maps sorted (our maps are `BTreeMap`s), and `<`, `>`, `&`, U+2028,
//!   U+2029 escaped as `\u003c`-style sequences like Go's HTML-safe encoder.
//! - [`to_k8s_yaml`]: what `sigs.k8s.io/yaml` (go-yaml v2) prints: keys sorted at every level,
//!   block style, sequences not indented under their key, strings plain when unambiguous, a
//!   literal block for multi-line text, double quotes otherwise.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::Value;

/// Serializes `value` as Go's encoding/json would: indented with two spaces when `pretty`.
/// No trailing newline.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let mut out = Vec::new();
    if pretty {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            GoFormatter(PrettyFormatter::with_indent(b"  ")),
        );
        value.serialize(&mut ser)?;
    } else {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            GoCompact(serde_json::ser::CompactFormatter),
        );
        value.serialize(&mut ser)?;
    }
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

fn write_go_fragment<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        let esc = match c {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => continue,
        };
        writer.write_all(&fragment.as_bytes()[start..i])?;
        writer.write_all(esc.as_bytes())?;
        start = i + c.len_utf8();
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

struct GoCompact(serde_json::ser::CompactFormatter);

impl Formatter for GoCompact {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_go_fragment(writer, fragment)
    }
}

/// PrettyFormatter with Go's string escaping. Every layout method is forwarded.
struct GoFormatter<'a>(PrettyFormatter<'a>);

impl Formatter for GoFormatter<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_go_fragment(writer, fragment)
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Serializes `value` as `sigs.k8s.io/yaml` would (see the module docs). Ends with a newline.
pub fn to_k8s_yaml<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let v = serde_json::to_value(value)?;
    let mut out = String::new();
    emit_value(&mut out, &v, 0, Ctx::Top);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Top,
    MapValue,
    SeqItem,
}

fn emit_value(out: &mut String, v: &Value, indent: usize, ctx: Ctx) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                // The first key of a map inside a sequence item shares the `- ` line.
                if !(ctx == Ctx::SeqItem && i == 0) {
                    if ctx == Ctx::MapValue || i > 0 {
                        out.push('\n');
                    }
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&scalar_str(k));
                out.push(':');
                let child = &m[k];
                match child {
                    Value::Object(cm) if !cm.is_empty() => {
                        emit_value(out, child, indent + 2, Ctx::MapValue)
                    }
                    // go-yaml v2 does not indent a sequence under its key.
                    Value::Array(a) if !a.is_empty() => {
                        emit_value(out, child, indent, Ctx::MapValue)
                    }
                    _ => {
                        out.push(' ');
                        emit_scalar(out, child, indent + 2);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, item) in a.iter().enumerate() {
                if ctx == Ctx::MapValue || i > 0 || ctx == Ctx::SeqItem {
                    if !(ctx == Ctx::SeqItem && i == 0) {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent));
                    }
                } else {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        emit_value(out, item, indent + 2, Ctx::SeqItem)
                    }
                    Value::Array(a) if !a.is_empty() => {
                        emit_value(out, item, indent + 2, Ctx::SeqItem)
                    }
                    _ => emit_scalar(out, item, indent + 2),
                }
            }
        }
        _ => {
            if ctx == Ctx::Top {
                emit_scalar(out, v, indent);
            }
        }
    }
}

fn emit_scalar(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) if s.contains('\n') && is_printable(s) => {
            // Literal block; `|-` strips the final newline when the text has none.
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            let lead = if s.starts_with(' ') { "2" } else { "" };
            out.push('|');
            out.push_str(lead);
            out.push_str(chomp);
            let body = s.strip_suffix('\n').unwrap_or(s);
            for line in body.split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent));
                    out.push_str(line);
                }
            }
        }
        Value::String(s) => out.push_str(&scalar_str(s)),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn is_printable(s: &str) -> bool {
    s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !s.contains(" \n")
        && !s.ends_with(' ')
}

/// A string as a YAML scalar: plain when it cannot be read as anything but this string,
/// double-quoted (JSON escaping, which YAML accepts) otherwise.
pub fn scalar_str(s: &str) -> String {
    if plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if "?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    // `-foo` is plain in YAML, but `-`, `- foo` and `-1` are not.
    if first == '-' && (s.len() == 1 || s[1..].starts_with(' ') || looks_numeric(s)) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control() || c == '\u{feff}')
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    if reserved.contains(&lower.as_str()) || looks_numeric(s) {
        return false;
    }
    // Dates/timestamps would be read back as timestamps by YAML 1.1 readers.
    let b = s.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    true
}

fn looks_numeric(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']);
    if t.is_empty() {
        return false;
    }
    let t2 = t.replace('_', "");
    t2.parse::<f64>().is_ok()
        || t2.starts_with("0x") && t2.len() > 2 && t2[2..].chars().all(|c| c.is_ascii_hexdigit())
        || t2.starts_with("0o") && t2.len() > 2 && t2[2..].chars().all(|c| c.is_digit(8))
        || t2.starts_with("0b") && t2.len() > 2 && t2[2..].chars().all(|c| c == '0' || c == '1')
        || t.contains(':')
            && t.split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escapes_html() {
        let v = json!({"a": "<x> & y\u{2028}"});
        assert_eq!(
            to_go_json(&v, false).unwrap(),
            r#"{"a":"\u003cx\u003e \u0026 y\u2028"}"#
        );
        assert_eq!(
            to_go_json(&v, true).unwrap(),
            "{\n  \"a\": \"\\u003cx\\u003e \\u0026 y\\u2028\"\n}"
        );
    }

    #[test]
    fn yaml_shapes() {
        let v = json!({
            "kind": "SealedSecret",
            "b": {"z": "1", "a": "true", "e": {}, "n": null, "list": ["x", {"k": "v", "j": 2}], "empty": []},
            "text": "line1\nline2\n",
            "text2": "no newline\nat end",
            "plain": "AgBy3i4O+/=",
            "colon": "a: b",
            "dash": "-flag",
            "date": "2026-11-21",
        });
        let y = to_k8s_yaml(&v).unwrap();
        assert_eq!(
            y,
            "b:\n  a: \"true\"\n  e: {}\n  empty: []\n  list:\n  - x\n  - j: 2\n    k: v\n  \"n\": null\n  z: \"1\"\ncolon: \"a: b\"\ndash: -flag\ndate: \"2026-11-21\"\nkind: SealedSecret\nplain: AgBy3i4O+/=\ntext: |\n  line1\n  line2\ntext2: |-\n  no newline\n  at end\n"
        );
        let back: Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn plain_safety() {
        for s in [
            "abc",
            "my-secret",
            "AgB+/=",
            "kubernetes.io/tls",
            "-x",
            "a:b",
            "foo bar",
        ] {
            assert!(plain_safe(s), "{s}");
        }
        for s in [
            "",
            "true",
            "Yes",
            "null",
            "~",
            "1",
            "1.5",
            "0x1F",
            "1e3",
            "- x",
            "-",
            "a: b",
            "x #c",
            " x",
            "@x",
            "*x",
            "&x",
            "!x",
            "{x",
            "12:30",
            "2006-01-02T15:04:05Z",
        ] {
            assert!(!plain_safe(s), "{s}");
        }
    }
}
