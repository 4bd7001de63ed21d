//! `spec.template.data` rendering (`kseal_crds::template::render` and `render_all`, which the
//! controller and `kseal unseal` run over the decrypted items).
//!
//! Input: `source`, or `source NUL items` with items one per line as `name=value`. Without an
//! items part, fixed items whose values hold a canary are used.
//!
//! Oracle besides "returns quickly without panicking": an error message never quotes an item
//! value (values of at least 8 bytes that occur neither in the source nor in an item name).
#![no_main]

use std::collections::BTreeMap;

use kseal_crds::template::{render, render_all};
use kseal_crypto::SecretBytes;
use libfuzzer_sys::fuzz_target;

const DEFAULT_ITEMS: &[(&str, &str)] = &[
    ("password", "kseal-canary-4b1d-hunter2"),
    ("user", "kseal-canary-user-admin"),
    ("json", "{\"kseal-canary\":[1,2,3]}"),
    ("b64", "a3NlYWwtY2FuYXJ5LWI2NA=="),
    ("n", "12"),
    ("empty", ""),
];

fuzz_target!(|data: &[u8]| {
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

    let leaked = |msg: &str| {
        items.iter().any(|(_, v)| {
            let v = v.expose();
            v.len() >= 8
                && contains(msg.as_bytes(), v)
                && !contains(src.as_bytes(), v)
                && !items.keys().any(|k| contains(k.as_bytes(), v))
        })
    };
    if let Err(e) = render(src, &items) {
        assert!(!leaked(&e), "an item value in the error of render");
    }
    let templates = BTreeMap::from([("out".to_string(), src.to_string())]);
    if let Err(e) = render_all(&templates, &items) {
        assert!(
            !leaked(&e.to_string()),
            "an item value in the error of render_all"
        );
    }
});

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
