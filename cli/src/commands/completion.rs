//! `kseal completion SHELL`: completion scripts for bash, zsh, fish, elvish and PowerShell.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};

pub fn run(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "kseal", &mut out);
    crate::io::Output::Stdout.write(&out)?;
    Ok(ExitCode::SUCCESS)
}
