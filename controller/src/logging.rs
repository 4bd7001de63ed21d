//! Structured logs as Bitnami's controller writes them (`--log-format text|json`,
//! `--log-level`, `--log-info-stdout`): INFO and DEBUG to stdout, WARN and ERROR to stderr
//! (everything to stderr with `--log-info-stdout=false`).
//!
//! The HTTP client's own tracing is capped at INFO whatever the level: at DEBUG and below it
//! would log request details, and the controller's requests carry Secrets.

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
