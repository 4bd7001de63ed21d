//! One module per subcommand: its settings and `run()`.

pub mod age_keygen;
pub mod cert;
pub mod completion;
pub mod files;
pub mod install;
pub mod keygen;
pub mod keys;
pub mod reencrypt;
pub mod seal;
pub mod unseal;
pub mod validate;
pub mod verify;
pub mod web;

/// Reading document streams; public (hidden) for the fuzz targets in `fuzz/` only.
#[doc(hidden)]
pub mod documents;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Seal(a) => seal::run(*a),
        Command::Unseal(a) => unseal::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::AgeKeygen(a) => age_keygen::run(a),
        Command::Cert(a) => cert::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Reencrypt(a) => reencrypt::run(a),
        Command::Keys(a) => keys::run(a),
        Command::Rotate(a) => keys::rotate(a),
        Command::Install(a) => install::run(a),
        Command::Web(a) => web::run(a),
        Command::Completion(a) => completion::run(a),
    }
}
