//! One module per subcommand: its settings and `run()`.

pub mod cert;
pub mod completion;
pub mod keygen;
pub mod seal;
pub mod unseal;

mod docs;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Seal(a) => seal::run(a),
        Command::Unseal(a) => unseal::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Cert(a) => cert::run(a),
        Command::Completion(a) => completion::run(a),
    }
}
