//! The `kseal` command line: seal Secrets for GitOps, unseal for recovery, make and inspect keys.
//!
//! Shape (after ripgrep): `main_with_args` parses flags with clap, each subcommand lives in
//! `commands/<name>.rs` with its args and `run()`, and every error comes back here to be printed
//! as one line (`kseal: error: <cause chain>`) with a documented exit code.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
mod http_client;
pub mod hygiene;
pub mod install;
mod io;
mod kubeconfig;
mod kubeseal;

/// The kubeseal front's flag parser and `--request-timeout` reading, for the fuzz targets in
/// `fuzz/` only.
#[doc(hidden)]
pub use kubeseal::{
    parse_flags as kubeseal_parse_flags, request_timeout as kubeseal_request_timeout,
    Parsed as KubesealParsed,
};

use std::ffi::OsString;
use std::process::ExitCode;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a value could not be decrypted or verified.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or runtime error (bad input, missing file, network, ...).
pub const EXIT_ERROR: u8 = 2;

/// Runs kseal with `args` (the first is the program name) and returns the exit code.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Invoked as `kubeseal` (a symlink or copy): kubeseal's flags, messages and exit codes.
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if kubeseal::invoked_as_kubeseal(args.first()) {
        return kubeseal::main(args);
    }
    // An empty KSEAL_KEYS means "no keys" (so that `--identity` alone works), not an empty
    // --key, which clap would refuse. Done before any thread exists.
    if std::env::var_os("KSEAL_KEYS").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("KSEAL_KEYS");
    }
    let cli = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::from(EXIT_OK);
    }
    eprintln!("kseal: error: {}", one_line(err));
    ExitCode::from(exit_code(err))
}

/// The cause chain on one line, joined by ": ", multi-line messages folded with "; ". A cause
/// whose text the message before it already ends with is printed once: many libraries (kube,
/// std's I/O wrappers) put their source into their own message *and* return it from
/// `source()`, which would print `… (os error 2): No such file or directory (os error 2)`.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ").replace('\n', "; ")
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(kseal_sealing::Error::Items(_)) = cause.downcast_ref() {
            return EXIT_FAILED;
        }
        if let Some(kseal_crypto::Error::NoKeyCouldDecrypt) = cause.downcast_ref() {
            return EXIT_FAILED;
        }
    }
    EXIT_ERROR
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// An error that prints its source in its own message and also returns it.
    #[derive(Debug)]
    struct Wraps(std::io::Error);

    impl std::fmt::Display for Wraps {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed to read kubeconfig: {}", self.0)
        }
    }

    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Wraps(io)).context("cannot reach the cluster");
        assert_eq!(
            one_line(&err),
            "cannot reach the cluster: failed to read kubeconfig: no such file"
        );
        let plain = anyhow::anyhow!("line one\nline two").context("outer");
        assert_eq!(one_line(&plain), "outer: line one; line two");
    }
}
