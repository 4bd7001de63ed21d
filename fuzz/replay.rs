//! Shared by the replays of the cargo-fuzz findings (`cli/tests/fuzz_regressions.rs`,
//! `sealing/tests/fuzz_regressions.rs` include this file with `#[path]`): reading
//! `fuzz/regressions/<target>/` and running an input the way the targets do. See
//! docs/fuzzing.md.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Unoptimised test builds are slower than the fuzz builds (3 s per input there).
const LIMIT: Duration = Duration::from_secs(10);

pub fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
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
pub fn returns_quickly(name: &str, f: impl FnOnce() + Send + 'static) {
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
