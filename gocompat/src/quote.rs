//! Double-quoted string literals: Go's `%q` (`strconv.Quote`), and the JSON-compatible form
//! YAML writers use. Both escape `"`, `\`, newline, carriage return and tab the same way; they
//! differ only in what else they escape and how, so they share one loop here.

use std::fmt::Write;

/// How characters outside the shared escapes are written.
enum Escapes<'a> {
    /// Go's `strconv.Quote`: `\a \b \f \v`, `\xNN` for other ASCII controls and DEL, `\u00NN`
    /// for C1 controls; everything else verbatim.
    Go,
    /// JSON escapes (`\b \f`, `\uXXXX`) for every character `keep` refuses.
    Json(&'a dyn Fn(char) -> bool),
}

fn quote(s: &str, escapes: Escapes<'_>) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => match &escapes {
                Escapes::Go => match c {
                    '\u{7}' => out.push_str("\\a"),
                    '\u{b}' => out.push_str("\\v"),
                    c if c.is_ascii_control() => {
                        let _ = write!(out, "\\x{:02x}", u32::from(c));
                    }
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c => out.push(c),
                },
                Escapes::Json(keep) => {
                    if keep(c) {
                        out.push(c);
                    } else {
                        // Characters worth escaping are all below U+10000 in the callers'
                        // sets (every supplementary-plane character is printable); a
                        // surrogate pair keeps the rest valid JSON anyway.
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            let _ = write!(out, "\\u{unit:04X}");
                        }
                    }
                }
            },
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a string, as pflag and kubeseal print values in their messages.
pub fn go_quote(s: &str) -> String {
    quote(s, Escapes::Go)
}

/// `s` as a double-quoted scalar that is both valid YAML and a valid JSON string: the shared
/// escapes, and `\uXXXX` for every character `keep` refuses.
pub fn json_quote(s: &str, keep: &dyn Fn(char) -> bool) -> String {
    quote(s, Escapes::Json(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        for (s, want) in [
            ("", r#""""#),
            ("abc", r#""abc""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\u{7}\u{8}\u{c}\n\r\t\u{b}", r#""\a\b\f\n\r\t\v""#),
            ("\u{0}\u{1b}\u{7f}", r#""\x00\x1b\x7f""#),
            ("\u{85}", r#""\u0085""#),
            ("héllo ☺", "\"héllo ☺\""),
        ] {
            assert_eq!(go_quote(s), want, "{s:?}");
        }
    }

    #[test]
    fn json_quote_is_json() {
        let keep = |c: char| !c.is_control() && c != '\u{2028}';
        for s in [
            "plain",
            "q\"b\\",
            "\u{1}\u{8}\u{c}\u{7f}\u{2028}é",
            "\u{1F600}",
        ] {
            let quoted = json_quote(s, &keep);
            let back: String = serde_json::from_str(&quoted).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(json_quote("\u{1}", &keep), r#""\u0001""#);
        assert_eq!(json_quote("\u{8}", &keep), r#""\b""#);
    }
}
