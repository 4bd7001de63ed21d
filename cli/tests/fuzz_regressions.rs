//! Replays the minimized findings of the cargo-fuzz targets on this crate's code
//! (`fuzz/regressions/<target>/`, see docs/fuzzing.md) through the same entry points and in the
//! same input layouts as the targets: every input must return (an error is fine) within a few
//! seconds, on a thread with a tokio worker's 2 MiB stack.

/// Reading the regression inputs and running them as the targets do (shared with the other
/// crates' replays).
#[path = "../../fuzz/replay.rs"]
mod replay;

use replay::{regressions, returns_quickly};

/// The `kubeseal_flags` target: arguments separated by NUL, then after a double NUL the
/// environment as `NAME=value` entries separated by NUL.
fn kubeseal_flags_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (args, env) = text.split_once("\0\0").unwrap_or((&text, ""));
    let args: Vec<String> = args.split('\0').map(str::to_string).collect();
    let env: Vec<(String, String)> = env
        .split('\0')
        .filter_map(|e| e.split_once('='))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (parsed, _notes) = kseal::kubeseal_parse_flags(&args, &lookup);
    if let kseal::KubesealParsed::Run(flags) = parsed {
        let _ = kseal::kubeseal_request_timeout(&flags);
        let _ = flags.namespace_override();
    }
}

/// `--request-timeout` with more seconds than a `Duration` holds panicked in the float-based
/// parser kubeseal mode once had (`Duration::from_secs_f64`: `cannot convert float seconds to
/// Duration: value is either too big or NaN`); `kseal_gocompat::duration` replaced it.
#[test]
fn kubeseal_flags_regressions() {
    for (name, data) in regressions("kubeseal_flags") {
        returns_quickly(&name, move || kubeseal_flags_input(&data));
    }
}
