//! Error texts that never carry values.
//!
//! serde's messages quote the input they reject: `invalid type: string "hunter2", expected a
//! map`, `unknown variant `hunter2``, and k8s-openapi's base64 errors name the offending byte.
//! For a Secret that input is the plaintext. Every parse error of a Secret, SealedSecret or
//! request body that kseal shows (CLI stderr, status, events, logs, HTTP answers) goes through
//! here: the message keeps what was wrong and where (the field path, line and column), and
//! drops what the value was.

use serde::de::DeserializeOwned;

/// serde's message with every quoted value removed: `invalid type: string "x", expected a map`
/// → `invalid type: string, expected a map`. Field names (`missing field `name``, `unknown
/// field `x``) stay: they are keys, not values.
pub fn serde_message(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(start) = msg.find(prefix) {
            let head = &msg[..start + prefix.len()];
            let rest = &msg[start + prefix.len()..];
            let (kind, after) = split_unexpected(rest);
            return format!("{head}{kind}{}", serde_message(after));
        }
    }
    if let Some(start) = msg.find("unknown variant `") {
        let head = &msg[..start + "unknown variant".len()];
        let rest = &msg[start + "unknown variant `".len()..];
        let after = rest.find('`').map_or("", |i| &rest[i + 1..]);
        return format!("{head}{after}");
    }
    // k8s-openapi's ByteString (base64) errors: "Invalid symbol 45, offset 3." names a byte.
    if msg.contains("Invalid symbol") || msg.contains("Invalid last symbol") {
        return "invalid base64 data".to_string();
    }
    msg.to_string()
}

/// Splits `string "a\"b", expected …` into (`string`, `, expected …`): the kind of the
/// unexpected value without the value itself (which serde prints Debug-quoted or in backticks).
fn split_unexpected(rest: &str) -> (&str, &str) {
    let bytes = rest.as_bytes();
    let Some(open) = rest.find(['"', '`']) else {
        return (rest, "");
    };
    // Stop at the separator if it comes before any quote (e.g. `map, expected …`).
    if let Some(sep) = rest.find(", expected") {
        if sep < open {
            return (&rest[..sep], &rest[sep..]);
        }
    }
    let quote = bytes[open];
    let mut i = open + 1;
    let mut escaped = false;
    while i < bytes.len() {
        let b = bytes[i];
        if quote == b'"' && !escaped && b == b'\\' {
            escaped = true;
        } else {
            if b == quote && !escaped {
                break;
            }
            escaped = false;
        }
        i += 1;
    }
    let kind = rest[..open].trim_end();
    let after = if i < bytes.len() { &rest[i + 1..] } else { "" };
    (kind, after)
}

/// A JSON error with its position and without values.
pub fn json_error(e: &serde_json::Error) -> String {
    let msg = serde_message(&strip_location(&e.to_string()));
    if e.line() == 0 {
        msg
    } else {
        format!("line {} column {}: {msg}", e.line(), e.column())
    }
}

/// A YAML error with its position and without values.
pub fn yaml_error(e: &serde_yaml::Error) -> String {
    let msg = serde_message(&strip_location(&e.to_string()));
    match e.location() {
        Some(l) => format!("line {} column {}: {msg}", l.line(), l.column()),
        None => msg,
    }
}

/// serde's messages end with " at line X column Y"; callers print the position first.
pub fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Converts a JSON value into `T`; the error names the field (`spec.encryptedData.x: …`) and
/// never the value.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| describe_path_error(&e))
}

/// Parses JSON bytes into `T`; the error names the field and the position, never the value.
pub fn from_json_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = json_error(e.inner());
        if path == "." || path.is_empty() {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

fn describe_path_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = json_error(e.inner());
    if path == "." || path.is_empty() {
        inner
    } else {
        format!("{path}: {inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    const CANARY: &str = "hunter2-CANARY";

    #[test]
    fn values_are_dropped_and_fields_kept() {
        for (msg, want) in [
            (
                r#"invalid type: string "hunter2-CANARY", expected a map"#,
                "invalid type: string, expected a map",
            ),
            (
                r#"invalid type: string "a \"hunter2-CANARY\", expected x", expected a map"#,
                "invalid type: string, expected a map",
            ),
            (
                "invalid value: integer `42`, expected a boolean",
                "invalid value: integer, expected a boolean",
            ),
            (
                "invalid type: map, expected a string",
                "invalid type: map, expected a string",
            ),
            (
                "unknown variant `hunter2-CANARY`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            ("missing field `name`", "missing field `name`"),
            ("Invalid symbol 104, offset 0.", "invalid base64 data"),
        ] {
            assert_eq!(serde_message(msg), want);
        }
    }

    #[test]
    fn secret_parse_errors_name_the_field_not_the_value() {
        let v = serde_json::json!({"data": CANARY});
        let e = from_value::<Secret>(v).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("data: "), "{e}");
        let v = serde_json::json!({"data": {"password": CANARY}});
        let e = from_value::<Secret>(v).unwrap_err();
        assert!(!e.contains("hunter2") && !e.contains("104"), "{e}");
        assert_eq!(e, "data.password: invalid base64 data");
        let e =
            from_json_slice::<Secret>(br#"{"stringData": {"a": ["hunter2-CANARY"]}}"#).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("stringData.a: line 1 column"), "{e}");
        let y: Result<Secret, _> = serde_yaml::from_str("data: hunter2-CANARY\n");
        let e = yaml_error(&y.unwrap_err());
        assert!(!e.contains("hunter2"), "{e}");
    }
}
