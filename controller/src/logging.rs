//! Structured logs as Bitnami's controller writes them (`--log-format text|json`,
//! `--log-level`, `--log-info-stdout`): INFO and DEBUG to stdout, WARN and ERROR to stderr
//! (everything to stderr with `--log-info-stdout=false`).
//!
//! The HTTP client's own tracing is capped at INFO whatever the level: at DEBUG and below it
//! would log request details, and the controller's requests carry Secrets.
//!
//! [`error_chain`] is how the binary reports the error it stops on. The controller's own errors
//! put their cause in their message and do not return it from `source()` (so a log line's
//! `error = %e` is complete); other crates' errors often do both.

use tracing::Level;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is one of DEBUG, INFO, WARN, ERROR.
pub fn init(level: &str, json: bool, info_stdout: bool) {
    let filter = EnvFilter::new(format!(
        "{},kube_client=info,kube_runtime=info,hyper=info,hyper_util=info,tower=info,rustls=info,h2=info",
        level.to_ascii_lowercase()
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    match (json, info_stdout) {
        (true, true) => builder
            .json()
            .with_writer(
                std::io::stderr
                    .with_max_level(Level::WARN)
                    .or_else(std::io::stdout),
            )
            .init(),
        (true, false) => builder.json().with_writer(std::io::stderr).init(),
        (false, true) => builder
            .with_writer(
                std::io::stderr
                    .with_max_level(Level::WARN)
                    .or_else(std::io::stdout),
            )
            .init(),
        (false, false) => builder.with_writer(std::io::stderr).init(),
    }
}

/// An error and its causes, `: `-joined as anyhow's `{:#}` does, each cause printed once: a
/// cause whose text is already part of what was printed is left out (many errors, kube's and
/// `std::io` wrappers among them, both show their cause and return it from `source()`).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read {path}: {source}")]
    struct Repeats {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Hides(#[source] std::io::Error);

    fn missing() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = anyhow::Error::new(Repeats {
            path: "k.yaml",
            source: missing(),
        })
        .context("cannot read the kubeconfig");
        assert_eq!(
            format!("{e:#}"),
            "cannot read the kubeconfig: failed to read k.yaml: no such file: no such file",
            "what anyhow alone prints"
        );
        assert_eq!(
            error_chain(e.as_ref()),
            "cannot read the kubeconfig: failed to read k.yaml: no such file"
        );
        // A cause the message does not show is still printed.
        let e = anyhow::Error::new(Hides(missing())).context("controller");
        assert_eq!(
            error_chain(e.as_ref()),
            "controller: cannot start: no such file"
        );
    }

    #[test]
    fn key_store_errors_carry_their_cause_once() {
        use crate::keys::store::KeyStoreError;
        let e = KeyStoreError::List {
            namespace: "kube-system".into(),
            cause: kube::Error::LinesCodecMaxLineLengthExceeded,
        };
        assert!(std::error::Error::source(&e).is_none());
        let text = error_chain(
            anyhow::Error::new(e)
                .context("cannot load the sealing keys")
                .as_ref(),
        );
        assert_eq!(
            text,
            "cannot load the sealing keys: cannot list key Secrets in namespace \"kube-system\": Error finding newline character"
        );
    }
}
