//! `spec.template.data` rendering (`kseal_crds::template::render` and `render_all`, which the
//! controller and `kseal unseal` run over the decrypted items).
//!
//! Input: `source`, or `source NUL items` with items one per line as `name=value`. Without an
//! items part, fixed items whose values hold a canary are used.
//!
//! Runs on a 2 MiB stack, as in the controller (a stack overflow is reported only with
//! `KSEAL_FUZZ_SANITIZER=address`, see docs/fuzzing.md). Oracle besides "returns quickly
//! without panicking": an error message never depends on the
//! item values (rendering again with every value's letters shifted gives the same error), so it
//! cannot quote one.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{mpsc, Mutex, OnceLock};

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
    // On a thread with the stack of a tokio worker or blocking thread (2 MiB), where the
    // controller renders templates: deep nesting must not overflow it. One thread for all
    // inputs (spawning one per input costs ten times the rendering).
    type Job = (Vec<u8>, mpsc::Sender<std::thread::Result<()>>);
    static WORKER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for (data, done) in rx {
                    let _ = done.send(std::panic::catch_unwind(|| check(&data)));
                }
            })
            .expect("a thread");
        Mutex::new(tx)
    });
    let (done, result) = mpsc::channel();
    worker
        .lock()
        .expect("the worker")
        .send((data.to_vec(), done))
        .expect("the worker runs");
    if let Err(panic) = result.recv().expect("the worker answers") {
        std::panic::resume_unwind(panic);
    }
});

fn check(data: &[u8]) {
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

fn shift(b: u8) -> u8 {
    match b {
        b'a'..=b'y' | b'A'..=b'Y' => b + 1,
        b'z' => b'a',
        b'Z' => b'A',
        _ => b,
    }
}
