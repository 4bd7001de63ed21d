//! Replays the minimized findings of the cargo-fuzz targets on this crate's code
//! (`fuzz/regressions/<target>/`, see docs/fuzzing.md) through the same entry points and in the
//! same input layouts as the targets: every input must return (an error is fine) within a few
//! seconds, on a thread with a tokio worker's 2 MiB stack, and keep the target's oracle.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use kseal_crds::template::{render, render_all};
use kseal_crypto::SecretBytes;

/// Unoptimised test builds are slower than the fuzz builds (3 s per input there).
const LIMIT: Duration = Duration::from_secs(10);

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a regression input");
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes,
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} is empty", dir.display());
    out
}

/// Runs `f` on a 2 MiB thread; fails when it panics or does not return within [`LIMIT`].
fn returns_quickly(name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .expect("a thread");
    match rx.recv_timeout(LIMIT) {
        Ok(()) => handle.join().expect("no panic"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: did not return within {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{name}: panicked: {:?}", handle.join().err())
        }
    }
}

fn shift(b: u8) -> u8 {
    match b {
        b'a'..=b'y' | b'A'..=b'Y' => b + 1,
        b'z' => b'a',
        b'Z' => b'A',
        _ => b,
    }
}

/// The `template` target: `source [NUL items]`, fixed canary items by default; no error may
/// depend on (so quote) an item value.
fn template_input(data: &[u8]) {
    const DEFAULT_ITEMS: &[(&str, &str)] = &[
        ("password", "kseal-canary-4b1d-hunter2"),
        ("user", "kseal-canary-user-admin"),
        ("json", "{\"kseal-canary\":[1,2,3]}"),
        ("b64", "a3NlYWwtY2FuYXJ5LWI2NA=="),
        ("n", "12"),
        ("empty", ""),
    ];
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
    if let (Err(a), Err(b)) = (render(src, &items), render(src, &shifted)) {
        assert_eq!(a, b, "the error of render depends on an item value");
    }
    let templates = BTreeMap::from([("out".to_string(), src.to_string())]);
    if let (Err(a), Err(b)) = (
        render_all(&templates, &items),
        render_all(&templates, &shifted),
    ) {
        assert_eq!(
            a.to_string(),
            b.to_string(),
            "the error of render_all depends on an item value"
        );
    }
}

/// Found by the `template` target or by hand while building it; each must give an error:
/// - `index-quotes-value`: `{{ index . .password }}` answers `no item "<the value>"`;
/// - `repeat-max-count`: `repeat 9223372036854775807` aborts (`memory allocation of
///   9223372036854775807 bytes failed`);
/// - `indent-huge-count`: `indent 100000000000` aborts (`memory allocation of 100000000000 bytes
///   failed`);
/// - `parentheses-12000-deep`: overflows a 2 MiB stack (SIGSEGV).
#[test]
fn template_regressions() {
    for (name, data) in regressions("template") {
        returns_quickly(&name, move || template_input(&data));
    }
}
