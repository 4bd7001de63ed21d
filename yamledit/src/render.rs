//! Rendering of keys and string values as YAML / JSON scalars.
//!
//! The rules are deliberately conservative: a string is written plain only
//! when every YAML reader we care about (YAML 1.2 parsers, and YAML 1.1
//! readers such as libyaml-based `serde_yaml` or go-yaml behind `kubectl`)
//! reads it back as that very string.  Anything doubtful is double-quoted,
//! with escapes that are valid in both YAML and JSON.

/// The YAML printable set (`c-printable`, YAML 1.2 §5.1).
fn is_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}'
        | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Characters that may stand unescaped inside a one-line plain or
/// single-quoted scalar.
///
/// Tabs are excluded although YAML allows them, and so are NEL, LS and PS,
/// which YAML 1.1 readers treat as line breaks, and the BOM.
fn is_inline_safe(c: char) -> bool {
    is_printable(c)
        && !matches!(
            c,
            '\t' | '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        )
}

/// Whether `s` can be written as a plain (unquoted) scalar in block context
/// and be read back as the same string by YAML 1.1 and 1.2 readers.
///
/// Refused: the empty string; leading or trailing spaces; characters that
/// are not inline-safe (see [`is_inline_safe`]); a leading indicator
/// character (`-?:,[]{}#&*!|>'"%@` and backquote); `: ` or ` #` inside or a
/// trailing `:`; a leading `...`; and every string that a YAML 1.1 or 1.2
/// resolver could read as something other than a string: null, booleans
/// (including YAML 1.1's `yes`/`no`/`on`/`off`/`y`/`n`, in any case), `=`,
/// `<<`, `.inf`/`.nan`, and number- or timestamp-like strings (see
/// [`looks_numeric`]).
pub(crate) fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    if !s.chars().all(is_inline_safe) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.starts_with("...") {
        return false;
    }
    !resolves_to_non_string(s)
}

/// Whether a YAML 1.1 or 1.2 resolver may give the plain scalar `s` a
/// non-string type (null, bool, int, float, timestamp) or a special meaning.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: [&str; 12] = [
        "~", "null", "true", "false", "yes", "no", "y", "n", "on", "off", "=", "<<",
    ];
    let lower = s.to_ascii_lowercase();
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    let body = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    match body.chars().next() {
        Some(c) if c.is_ascii_digit() => looks_numeric(body),
        Some('.') => {
            let rest = &body[1..];
            rest == "inf" || rest == "nan" || rest.starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// For a string that starts with a digit: whether it consists only of the
/// characters that YAML 1.1/1.2 integers (decimal, `0x`, `0o`, `0b`, old
/// octal, sexagesimal `1:30`, `_` separators), floats (`1.5e+3`) and
/// timestamps (`2001-12-14t21:59:43.10z`, `2001-12-14 21:59:43 -5`) are made
/// of.  This over-approximates (`0abc` is a string, yet is quoted) on purpose:
/// quoting a string is always correct, leaving a number-like string plain is
/// not.
fn looks_numeric(lower: &str) -> bool {
    lower
        .chars()
        .all(|c| c.is_ascii_hexdigit() || "xob_.:+- tz".contains(c))
}

/// `s` as a double-quoted scalar that is both valid YAML and a valid JSON
/// string: `"`, `\` and control characters are escaped the JSON way;
/// characters outside the inline-safe set (C1 controls, NEL, LS, PS, BOM,
/// U+FFFE/U+FFFF, DEL) are escaped as `\uXXXX`, which YAML also accepts.
pub(crate) fn double_quoted(s: &str) -> String {
    kseal_gocompat::quote::json_quote(s, &is_inline_safe)
}

/// `s` as a single-quoted scalar, if it can be written so on one line.
pub(crate) fn single_quoted(s: &str) -> Option<String> {
    s.chars()
        .all(is_inline_safe)
        .then(|| format!("'{}'", s.replace('\'', "''")))
}

/// `s` as a value in block context: plain when safe, else double-quoted.
pub(crate) fn block_value(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        double_quoted(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_safe_accepts_typical_values() {
        for s in [
            "AgBy3i4O+/=",
            "AgBy3i4OJSWK+PiTySYZZA==",
            ".dockerconfigjson",
            "foo bar",
            "a:b",
            "a#b",
            "kubernetes.io/dockerconfigjson",
            "app.kubernetes.io/name",
            "Opaque",
            "deadbeef",
            "1xyz",
            "a,b",
            "ünïcödé",
            "x-",
        ] {
            assert!(is_plain_safe(s), "{s:?} should be plain-safe");
        }
    }

    #[test]
    fn plain_safe_refuses_ambiguous_values() {
        for s in [
            "",
            "true",
            "True",
            "FALSE",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "null",
            "Null",
            "~",
            "123",
            "-1",
            "+1",
            "0x1F",
            "0o17",
            "017",
            "1_000",
            "1.5",
            "1e3",
            "1:30",
            ".5",
            ".inf",
            "-.Inf",
            ".NaN",
            "2001-12-14",
            "2001-12-14 21:59:43 -5",
            "=",
            "<<",
            "a: b",
            "a #b",
            "a:",
            " a",
            "a ",
            "-a",
            "?a",
            ":a",
            "[a",
            "{a",
            "#a",
            "&a",
            "*a",
            "!a",
            "|a",
            ">a",
            "'a",
            "\"a",
            "%a",
            "@a",
            "`a",
            "...",
            "a\nb",
            "a\tb",
            "a\u{85}b",
            "a\u{2028}",
            "\u{feff}a",
            "a\u{7f}",
            "a\u{0}",
        ] {
            assert!(!is_plain_safe(s), "{s:?} should need quotes");
        }
    }

    #[test]
    fn double_quoted_is_json() {
        for s in [
            "",
            "a\"b\\c",
            "\n\r\t\u{8}\u{c}",
            "\u{0}\u{1f}\u{7f}\u{85}\u{2028}\u{feff}\u{fffe}",
            "ü😀",
        ] {
            let q = double_quoted(s);
            let back: String = serde_json::from_str(&q).unwrap();
            assert_eq!(back, s);
            let yaml: String = serde_yaml::from_str(&q).unwrap();
            assert_eq!(yaml, s);
        }
        assert_eq!(double_quoted("a\u{85}"), "\"a\\u0085\"");
    }

    #[test]
    fn single_quoted_doubles_quotes() {
        assert_eq!(single_quoted("it's").as_deref(), Some("'it''s'"));
        assert_eq!(single_quoted("a\nb"), None);
    }
}
