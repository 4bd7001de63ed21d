//! The `template` fuzz target's input layout and oracle, shared with the replay of its
//! findings (`sealing/tests/fuzz_regressions.rs` includes this file), so both judge an input the
//! same way. See docs/fuzzing.md.
//!
//! Input: `source`, or `source NUL items` with items one per line as `name=value`. Without an
//! items part, fixed items whose values hold a canary are used. Oracle besides "returns
//! quickly without panicking": an error never quotes an item value, and rendering again with
//! every value's letters shifted gives the same error unless the two renderings parted at a
//! check of a property of a value ([`VALUE_PROPERTY_ERRORS`]).

use std::collections::BTreeMap;

use kseal_crypto::SecretBytes;
use kseal_sealing::template::{render, render_all};

/// The items used when the input has no items part.
const DEFAULT_ITEMS: &[(&str, &str)] = &[
    ("password", "kseal-canary-4b1d-hunter2"),
    ("user", "kseal-canary-user-admin"),
    ("json", "{\"kseal-canary\":[1,2,3]}"),
    ("b64", "a3NlYWwtY2FuYXJ5LWI2NA=="),
    ("n", "12"),
    ("empty", ""),
];

/// Renders `data` (see the module docs) and panics when the oracle fails.
pub fn check(data: &[u8]) {
    let (src, items_part) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(src) = std::str::from_utf8(src) else {
        return;
    };
    let mut items: BTreeMap<String, SecretBytes> = BTreeMap::new();
    match items_part {
        None => {
            for (k, v) in DEFAULT_ITEMS {
                items.insert(k.to_string(), SecretBytes::from_slice(v.as_bytes()));
            }
        }
        Some(part) => {
            for line in part.split(|&b| b == b'\n') {
                let (k, v) = match line.iter().position(|&b| b == b'=') {
                    Some(i) => (&line[..i], &line[i + 1..]),
                    None => (line, &b""[..]),
                };
                items.insert(
                    String::from_utf8_lossy(k).into_owned(),
                    SecretBytes::from_slice(v),
                );
            }
        }
    }

    // Every item value with its letters shifted (a→b, …, z→a): same length, same UTF-8-ness,
    // same numbers. An error that changes with them quotes something of a value.
    let shifted: BTreeMap<String, SecretBytes> = items
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                SecretBytes::new(v.expose().iter().map(|&b| shift(b)).collect()),
            )
        })
        .collect();
    // The quote check uses the canary items only: a value the input chose may be any word of
    // a fixed message.
    let values: Vec<&[u8]> = items
        .values()
        .chain(shifted.values())
        .map(|v| v.expose())
        .filter(|v| items_part.is_none() && v.len() >= 6 && !contains(src.as_bytes(), v))
        .collect();
    if let (Err(a), Err(b)) = (render(src, &items), render(src, &shifted)) {
        if a != b {
            // The renderings took different paths: only a check of a property of a value may
            // have sent them there, and neither text may quote a value.
            assert!(
                VALUE_PROPERTY_ERRORS.contains(&a.message.as_str())
                    || VALUE_PROPERTY_ERRORS.contains(&b.message.as_str()),
                "the error of render depends on an item value: {a:?} / {b:?}"
            );
        }
        for e in [&a, &b] {
            for v in &values {
                assert!(
                    !contains(e.message.as_bytes(), v),
                    "an error quotes a value: {e:?}"
                );
            }
        }
    }
    let templates = BTreeMap::from([("out".to_string(), src.to_string())]);
    if let (Err(a), Err(b)) = (
        render_all(&templates, &items),
        render_all(&templates, &shifted),
    ) {
        let (a, b) = (a.to_string(), b.to_string());
        if a != b {
            assert!(
                VALUE_PROPERTY_ERRORS
                    .iter()
                    .any(|m| a.ends_with(m) || b.ends_with(m)),
                "the error of render_all depends on an item value: {a:?} / {b:?}"
            );
        }
        for e in [&a, &b] {
            for v in &values {
                assert!(!contains(e.as_bytes(), v), "an error quotes a value: {e:?}");
            }
        }
    }
}

/// Errors that report a property of a value (valid base64, UTF-8, a number, a usable printf
/// format) in a fixed text: shifting the letters of a value may change the property, so the
/// two renderings may fail differently from there on, but these quote nothing.
const VALUE_PROPERTY_ERRORS: &[&str] = &[
    "b64dec: invalid base64",
    "b64dec: result is not UTF-8",
    "expected a number",
    "printf: a format computed from a secret value is invalid (not shown)",
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn shift(b: u8) -> u8 {
    match b {
        b'a'..=b'y' | b'A'..=b'Y' => b + 1,
        b'z' => b'a',
        b'Z' => b'A',
        _ => b,
    }
}
