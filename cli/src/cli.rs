//! Flags, as clap sees them. Commands turn these into their own settings before doing anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kseal_crypto::Scope;

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

  # Recover a Secret offline with a backup of the controller's keys
  kseal unseal --key keys-backup.yaml -f sealed-secret.yaml -o yaml

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

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal Secrets into SealedSecrets (or one value with --raw)
    Seal(SealArgs),
    /// Decrypt SealedSecrets into Secrets with private keys (recovery)
    Unseal(UnsealArgs),
    /// Generate a sealing key pair and certificate
    Keygen(KeygenArgs),
    /// Show a sealing certificate's fingerprint, subject, expiry and key size
    Cert(CertArgs),
    /// Print shell completions
    Completion(CompletionArgs),
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

/// `kseal seal`
#[derive(Debug, Args)]
#[command(after_help = "\
Input is one or more Secrets in YAML or JSON (several documents allowed); each becomes one
SealedSecret. Output is JSON unless -o yaml, or -w names a .yaml/.yml file. -w replaces its file
atomically and only when everything succeeded.

Namespace: the Secret's own, else -n, else the kubeconfig context's, else \"default\".
Scope: strict (namespace/name) unless --scope or the Secret's sealedsecrets.bitnami.com/
namespace-wide or cluster-wide annotation says otherwise.")]
pub struct SealArgs {
    /// Read Secrets from FILE instead of stdin
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "secret-file",
        value_name = "FILE"
    )]
    pub file: Option<PathBuf>,

    /// Write to FILE (atomically) instead of stdout
    #[arg(
        short = 'w',
        long = "output-file",
        visible_alias = "sealed-secret-file",
        value_name = "FILE"
    )]
    pub output_file: Option<PathBuf>,

    /// Output format [default: json, or yaml for a .yaml/.yml output file]
    #[arg(short = 'o', long = "format", value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Sealing certificate: a file, file:// or http(s):// URL
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// Scope the values are sealed for [default: strict, or what the Secret's annotations say]
    #[arg(long, value_enum, value_name = "SCOPE")]
    pub scope: Option<ScopeArg>,

    /// Namespace for Secrets without one (must agree with those that have one)
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Name of the SealedSecret (overrides metadata.name; required by --raw with strict scope)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Allow a Secret without data or stringData
    #[arg(long)]
    pub allow_empty_data: bool,

    /// Seal one value (from stdin or --from-file) and print it base64-encoded, without newline
    #[arg(long, conflicts_with = "merge_into")]
    pub raw: bool,

    /// With --raw: read the value from this file ([KEY=]PATH; the key is ignored)
    #[arg(long, requires = "raw", value_name = "[KEY=]PATH")]
    pub from_file: Vec<String>,

    /// Seal the input and merge its items into this SealedSecret file, in place
    #[arg(long, value_name = "FILE", conflicts_with = "output_file")]
    pub merge_into: Option<PathBuf>,
}

/// `kseal unseal`
#[derive(Debug, Args)]
#[command(after_help = "\
Keys may be PEM private keys (PKCS#1 or PKCS#8), key Secrets, or the List printed by
  kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml
Exit code 1 when an item cannot be decrypted.")]
pub struct UnsealArgs {
    /// Private key file (repeatable)
    #[arg(
        long = "key",
        short = 'k',
        value_name = "FILE",
        required = true,
        env = "KSEAL_KEYS",
        value_delimiter = ','
    )]
    pub keys: Vec<PathBuf>,

    /// Read SealedSecrets from FILE instead of stdin
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Write to FILE (atomically, mode 0600) instead of stdout
    #[arg(short = 'w', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Output format [default: json, or yaml for a .yaml/.yml output file]
    #[arg(short = 'o', long = "format", value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Also accept the deprecated v1 `spec.data` field
    #[arg(long)]
    pub accept_deprecated_data: bool,
}

/// `kseal keygen`
#[derive(Debug, Args)]
#[command(after_help = "\
The key file is written with mode 0600. Nothing is overwritten without --force, and nothing is
written unless every target can be.")]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#1 PEM)
    #[arg(long, value_name = "FILE", default_value = "tls.key")]
    pub key_file: PathBuf,

    /// Where to write the certificate (PEM)
    #[arg(long, value_name = "FILE", default_value = "tls.crt")]
    pub cert_file: PathBuf,

    /// Also write the key Secret the controller reads (kubectl apply -f FILE)
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Namespace of the key Secret (the controller's namespace)
    #[arg(
        long,
        value_name = "NAMESPACE",
        default_value = "kube-system",
        requires = "secret_file"
    )]
    pub secret_namespace: String,

    /// Name of the key Secret [default: generateName sealed-secrets-key]
    #[arg(long, value_name = "NAME", requires = "secret_file")]
    pub secret_name: Option<String>,

    /// RSA key size in bits
    #[arg(long, default_value_t = 4096, value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["2048", "3072", "4096", "8192"]), |s: String| s.parse::<usize>().expect("listed values are numbers")))]
    pub bits: usize,

    /// Certificate common name [default: empty subject, like the controller]
    #[arg(long, value_name = "CN")]
    pub cn: Option<String>,

    /// Certificate validity in days
    #[arg(long, value_name = "DAYS", default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub validity_days: u32,

    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

/// `kseal cert`
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Certificate: a file, file:// or http(s):// URL
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// Print only the fingerprint
    #[arg(long, conflicts_with = "output")]
    pub fingerprint: bool,

    /// Print the certificate PEM as it is
    #[arg(long, conflicts_with_all = ["output", "fingerprint"])]
    pub pem: bool,

    /// Output format
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<CertFormat>,
}

/// `kseal cert -o`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertFormat {
    /// Aligned `field: value` lines
    Text,
    /// One JSON object
    Json,
}

/// `kseal completion`
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to print completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
