//! Replays the minimized findings of the cargo-fuzz targets on this crate's code
//! (`fuzz/regressions/<target>/`, see docs/fuzzing.md) through the same entry points and in the
//! same input layouts as the targets: every input must return (an error is fine) within a few
//! seconds, on a thread with a tokio worker's 2 MiB stack, and keep the target's oracle.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// The target's input layout and oracle, from the fuzz crate (outside the workspace).
#[path = "../../fuzz/src/template_oracle.rs"]
mod template_oracle;

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

/// Found by the `template` target or by hand while building it; each must give an error:
/// - `index-quotes-value`: `{{ index . .password }}` answers `no item "<the value>"`;
/// - `repeat-max-count`: `repeat 9223372036854775807` aborts (`memory allocation of
///   9223372036854775807 bytes failed`);
/// - `indent-huge-count`: `indent 100000000000` aborts (`memory allocation of 100000000000 bytes
///   failed`);
/// - `parentheses-12000-deep`: overflows a 2 MiB stack (SIGSEGV);
/// - `syntax-error-after-b64dec`: a syntax error after `b64dec` of a value was reported only
///   when the value decoded (actions were parsed as they were rendered; now the whole source is
///   parsed first).
#[test]
fn template_regressions() {
    for (name, data) in regressions("template") {
        returns_quickly(&name, move || template_oracle::check(&data));
    }
}
