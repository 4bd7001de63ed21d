//! The top-level parser: the subcommands and the flag types several commands share. Each
//! command's own arguments live next to it in `commands/<name>.rs`; commands turn them into
//! their own settings before doing anything.

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use kseal_crypto::Scope;

use crate::commands::{
    cert::CertArgs,
    completion::CompletionArgs,
    install::InstallArgs,
    keygen::KeygenArgs,
    keys::{KeysArgs, RotateArgs},
    reencrypt::ReencryptArgs,
    seal::SealArgs,
    unseal::UnsealArgs,
    validate::ValidateArgs,
    verify::VerifyArgs,
};

const ABOUT: &str =
    "Seal Kubernetes Secrets so they can live in git; wire-compatible with Bitnami sealed-secrets";

const EXAMPLES: &str = "\
Examples:
  # Seal a Secret with the cluster's certificate, ready to commit
  kseal seal --cert sealed-secrets.crt -f secret.yaml -w sealed-secret.yaml

  # Seal one value to paste into an existing SealedSecret
  echo -n s3cr3t | kseal seal --raw --cert cert.pem -n prod --name db

  # Add or change one item of a committed SealedSecret, leaving the rest untouched
  kseal seal --cert cert.pem -f new-password.yaml --merge-into sealed-secret.yaml

  # Seal once for two clusters' age keys and an offline recovery key
  kseal seal --recipient age1… --recipient age1… -R recovery.txt -f secret.yaml -w sealed.yaml

  # Recover a Secret offline with a backup of the controller's keys, or an age identity
  kseal unseal --key keys-backup.yaml -f sealed-secret.yaml -o yaml
  kseal unseal --identity recovery-key.txt -f sealed-secret.yaml -o yaml

  # In CI: check every SealedSecret against public keys only (no cluster, no private key)
  kseal verify --cert prod.pem deploy/

Exit codes:
  0  success
  1  a value could not be decrypted or verified
  2  usage or runtime error (bad input, unreadable file, network)";

/// kseal: the command line.
#[derive(Debug, Parser)]
#[command(name = "kseal", version, about = ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses the command line and resolves what clap alone cannot say, so that no command looks
/// at clap's matches: whether `kseal seal --cert` came from `KSEAL_CERT` (a default below an
/// explicit `--recipient` and a `.kseal.yaml` rule) or from the flag, and the positional FILE
/// of `seal` and `unseal` folded into `-f`.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Seal(a), Some(("seal", sm))) = (&mut cli.command, matches.subcommand()) {
        a.cert_from_env = sm.value_source("cert") == Some(clap::parser::ValueSource::EnvVariable);
    }
    // `kseal seal FILE` and `kseal unseal FILE` mean `-f FILE` (clap refuses both at once).
    match &mut cli.command {
        Command::Seal(a) => a.file = a.file.take().or(a.input.take()),
        Command::Unseal(a) => a.file = a.file.take().or(a.input.take()),
        _ => {}
    }
    Ok(cli)
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal Secrets into SealedSecrets (or one value with --raw)
    Seal(Box<SealArgs>),
    /// Decrypt SealedSecrets into Secrets with private keys (recovery)
    Unseal(UnsealArgs),
    /// Generate a sealing key pair and certificate
    Keygen(KeygenArgs),
    /// Generate an age identity (X25519, or post-quantum with --pq), as age-keygen does
    AgeKeygen(crate::commands::age_keygen::AgeKeygenArgs),
    /// Show a sealing certificate's fingerprint, subject, expiry and key size
    Cert(CertArgs),
    /// Check SealedSecret files against the cluster: can its controller decrypt every item?
    Validate(ValidateArgs),
    /// Check SealedSecret files offline, with public keys only: for CI
    Verify(VerifyArgs),
    /// Re-seal SealedSecret files with the cluster's newest key, in place
    Reencrypt(ReencryptArgs),
    /// The controller's keys: list, backup, restore, renew
    Keys(KeysArgs),
    /// Renew the cluster's key, then re-encrypt files with it (key rotation in one step)
    Rotate(RotateArgs),
    /// Print the controller's manifests, or install them (--apply)
    Install(InstallArgs),
    /// Serve a page that seals in the browser (WebCrypto; values never leave it)
    Web(crate::commands::web::WebArgs),
    /// Print shell completions
    Completion(CompletionArgs),
}

/// How reports are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportFormat {
    /// One line per object
    #[default]
    Text,
    /// One JSON document
    Json,
}

/// How the directories among the paths are walked (`verify`, `validate`, `reencrypt`,
/// `rotate`): regular `.yaml`/`.yml`/`.json` files only, symlinks followed only when asked.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct WalkArgs {
    /// Follow symlinks found in directories (a loop is an error); named files are always read
    #[arg(short = 'L', long = "follow")]
    pub follow: bool,
}

impl WalkArgs {
    /// The walk's options.
    pub fn options(&self) -> crate::commands::files::WalkOptions {
        crate::commands::files::WalkOptions {
            follow_symlinks: self.follow,
        }
    }
}

/// Output formats of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Indented JSON, as kubeseal prints by default
    Json,
    /// YAML documents, each starting with `---`
    Yaml,
}

/// Scope values, as kubeseal spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Only this name in this namespace
    Strict,
    /// Any name in this namespace
    NamespaceWide,
    /// Any name in any namespace
    ClusterWide,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Strict => Scope::Strict,
            ScopeArg::NamespaceWide => Scope::NamespaceWide,
            ScopeArg::ClusterWide => Scope::ClusterWide,
        }
    }
}
