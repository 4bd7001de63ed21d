//! The kubeseal front's command line (`cli/src/kubeseal/flags.rs`: pflag's syntax, the
//! `SEALED_SECRETS_*` variables) and `--request-timeout` (Go durations).
//!
//! Input: the arguments separated by NUL; after a double NUL, environment entries
//! `NAME=value` separated by NUL.
#![no_main]

use kseal::{kubeseal_parse_flags, kubeseal_request_timeout, KubesealParsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (args, env) = text.split_once("\0\0").unwrap_or((&text, ""));
    let args: Vec<String> = args.split('\0').map(str::to_string).collect();
    let env: Vec<(&str, &str)> = env.split('\0').filter_map(|e| e.split_once('=')).collect();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    let (parsed, _notes) = kubeseal_parse_flags(&args, &lookup);
    if let KubesealParsed::Run(flags) = parsed {
        let _ = kubeseal_request_timeout(&flags);
        let _ = flags.namespace_override();
    }
});
