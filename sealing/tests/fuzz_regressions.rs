//! Replays the minimized findings of the cargo-fuzz targets on this crate's code
//! (`fuzz/regressions/<target>/`, see docs/fuzzing.md) through the same entry points and in the
//! same input layouts as the targets: every input must return (an error is fine) within a few
//! seconds, on a thread with a tokio worker's 2 MiB stack, and keep the target's oracle.

/// The target's input layout and oracle, from the fuzz crate (outside the workspace).
#[path = "../../fuzz/src/template_oracle.rs"]
mod template_oracle;

/// Reading the regression inputs and running them as the targets do (shared with the other
/// crates' replays).
#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::{regressions, returns_quickly};

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
