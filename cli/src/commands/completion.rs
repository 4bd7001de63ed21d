//! `kseal completion SHELL`: completion scripts for bash, zsh, fish, elvish and PowerShell.

use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::cli::Cli;

/// `kseal completion`
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to print completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "kseal", &mut out);
    crate::io::Output::Stdout.write(&out)?;
    Ok(ExitCode::SUCCESS)
}
