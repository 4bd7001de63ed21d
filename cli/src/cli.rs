//! Flags, as clap sees them. Commands turn these into their own settings before doing anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kseal_crypto::Scope;

use crate::cluster::ClusterArgs;

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

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal Secrets into SealedSecrets (or one value with --raw)
    Seal(Box<SealArgs>),
    /// Decrypt SealedSecrets into Secrets with private keys (recovery)
    Unseal(UnsealArgs),
    /// Generate a sealing key pair and certificate
    Keygen(KeygenArgs),
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

/// `kseal validate`
#[derive(Debug, Args)]
#[command(after_help = "\
Each SealedSecret is sent to the controller's /v1/verify through the API server's service proxy
(nothing is decrypted outside the cluster, nothing is written). Directories are searched
recursively for .yaml, .yml and .json files; other documents are ignored.
Exit code 1 when any SealedSecret fails, naming its items.")]
pub struct ValidateArgs {
    /// Files or directories
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// Report format
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: ReportFormat,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal verify`
#[derive(Debug, Args)]
#[command(after_help = "\
Offline: no cluster and no private key. For every item of every SealedSecret it checks the base64,
the ciphertext's format (Bitnami or age) and structure, and, with the item's seal record (the
sealedsecrets.kseal.dev/seal-records annotation kseal seal writes), that the ciphertext is the one
recorded (not copied or edited), that it was sealed for this SealedSecret's current name,
namespace and scope (else: renamed, moved, scope changed, copied from another SealedSecret), and
for one of the given certificates/recipients (else: sealed for another cluster's key). Items
without a record (sealed by kubeseal) are reported as unverifiable, which is not a failure.

Without --cert/--recipient/--recipients-file, each file is checked against the keys of the
.kseal.yaml rule that matches it. Directories are searched recursively for .yaml, .yml, .json.
Exit code 1 when any item fails, 0 otherwise; 2 for bad input.")]
pub struct VerifyArgs {
    /// Files or directories
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// A certificate the items may be sealed for (repeatable; file, file:// or http(s):// URL)
    #[arg(long = "cert", value_name = "FILE|URL")]
    pub certs: Vec<String>,

    /// An age recipient the items may be sealed for (repeatable)
    #[arg(short = 'r', long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,

    /// A file of age recipients, one per line, # comments (repeatable)
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Report format
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: ReportFormat,

    /// Use this configuration file instead of looking for .kseal.yaml
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore .kseal.yaml files
    #[arg(long)]
    pub no_config: bool,
}

/// `kseal reencrypt`
#[derive(Debug, Args)]
#[command(after_help = "\
The controller re-seals each SealedSecret with its newest key (/v1/rotate through the service
proxy); only the encryptedData values (and kseal's sealed-with annotation) change in the files:
comments, key order and formatting stay. Each file is replaced atomically, or left as it was.
Exit code 1 when any file failed.")]
pub struct ReencryptArgs {
    /// Files or directories (searched recursively)
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// Report what would change without writing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal keys`
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the key Secrets: fingerprint, state, age, expiry, which one seals
    List {
        /// Report format
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: ReportFormat,
    },
    /// Write every key Secret to FILE (mode 0600) as a List that `kseal unseal --key`,
    /// `kseal keys restore` and `kubectl apply -f` accept
    Backup {
        /// Where to write
        #[arg(short = 'w', long = "output-file", value_name = "FILE")]
        output_file: PathBuf,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Create the key Secrets of a backup that are missing (never overwrites)
    Restore {
        /// A backup file (`kseal keys backup`, or kubectl's List of key Secrets)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Ask the controller for a new sealing key and wait until it is published
    Renew {
        /// Seconds to wait for the new key
        #[arg(long, default_value_t = 120, value_name = "SECONDS")]
        timeout: u64,
        /// Return once the request is written
        #[arg(long)]
        no_wait: bool,
    },
}

/// `kseal rotate`
#[derive(Debug, Args)]
#[command(after_help = "\
Key rotation in one step: `kseal keys renew`, then `kseal reencrypt` of the given files with the
new key. Old keys stay in the cluster (SealedSecrets not in these files keep opening).")]
pub struct RotateArgs {
    /// Files or directories to re-encrypt
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// Seconds to wait for the new key
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,

    #[command(flatten)]
    pub cluster: ClusterArgs,
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
namespace-wide or cluster-wide annotation says otherwise.

Keys: --cert seals in the Bitnami format, --recipient/--recipients-file in the age format (one
blob for all recipients). A value is one blob, so --cert and --recipient cannot be combined.
Without either, the first rule of the nearest .kseal.yaml that matches the sealed file's path
(--merge-into, else -w, else -f, else the current directory) names the keys and a default scope;
then KSEAL_CERT; then the cluster's certificate.")]
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

    /// Sealing certificate: a file, file:// or http(s):// URL (Bitnami format)
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// True when `cert` came from KSEAL_CERT rather than --cert (set by `main_with_args`).
    #[arg(skip)]
    pub cert_from_env: bool,

    /// Seal for this age recipient (repeatable; age format, one blob for all recipients)
    #[arg(short = 'r', long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,

    /// Seal for the age recipients in FILE: one per line, # comments (repeatable)
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Use this configuration file instead of looking for .kseal.yaml
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore .kseal.yaml files
    #[arg(long)]
    pub no_config: bool,

    /// Say on stderr which .kseal.yaml rule chose the keys
    #[arg(short = 'v', long)]
    pub verbose: bool,

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

    /// Without --cert: where the cluster's certificate comes from
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal unseal`
#[derive(Debug, Args)]
#[command(after_help = "\
Keys may be PEM private keys (PKCS#1 or PKCS#8), key Secrets, or the List printed by
  kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml
Age identity files hold AGE-SECRET-KEY-1… lines (# comments allowed), as age-keygen writes them.
--key opens Bitnami-format items, --identity age-format items; give both for files with both.
Exit code 1 when an item cannot be decrypted.")]
#[command(group(clap::ArgGroup::new("private_keys").args(["keys", "identities"]).required(true).multiple(true)))]
pub struct UnsealArgs {
    /// Private key file (repeatable)
    #[arg(
        long = "key",
        short = 'k',
        value_name = "FILE",
        env = "KSEAL_KEYS",
        value_delimiter = ','
    )]
    pub keys: Vec<PathBuf>,

    /// Age identity file (repeatable)
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,

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

    /// Without --cert: fetch the cluster's certificate
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal cert -o`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertFormat {
    /// Aligned `field: value` lines
    Text,
    /// One JSON object
    Json,
}

/// `kseal install`
#[derive(Debug, Args)]
#[command(after_help = "\
Prints the controller's manifests (CRD, ServiceAccount, least-privilege RBAC, Services,
NetworkPolicy, Deployment, PodDisruptionBudget) as YAML, or applies them with --apply: server-side
apply as field manager \"kseal\", forced, so it upgrades a Bitnami install of the same name in
place (its key Secrets are never touched). Cluster-wide objects keep Bitnami's names for the
default name and are prefixed with <name>- otherwise. No controller image is published: build and
push one, and pass --image.

The NetworkPolicy admits the metrics port from the namespaces of --metrics-namespace-selector and
the HTTP port (cert.pem, verify, rotate) only from the CIDRs of --network-policy-from, where the
API server's service proxy connects from; probes come from the pod's own node, which is always
admitted. Secret delete is granted only with --old-gc-behavior.")]
pub struct InstallArgs {
    /// The controller's namespace
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = crate::cluster::DEFAULT_CONTROLLER_NAMESPACE)]
    pub namespace: String,

    /// The controller's name (Deployment, Service, ServiceAccount, Lease)
    #[arg(long, value_name = "NAME", default_value = crate::cluster::DEFAULT_CONTROLLER_NAME)]
    pub name: String,

    /// Controller image [default: ghcr.io/kseal/kseal-controller:v<kseal version>]
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Replicas of the Deployment (leader-elected)
    #[arg(long, value_name = "N", default_value_t = crate::install::DEFAULT_REPLICAS)]
    pub replicas: u32,

    /// Output format of the manifests [default: yaml]
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<crate::install::InstallFormat>,

    /// Apply the manifests to the cluster instead of printing them
    #[arg(long)]
    pub apply: bool,

    /// With --apply: wait until the Deployment is available
    #[arg(long)]
    pub wait: bool,

    /// With --wait: how long to wait (seconds, or 90s, 5m, 1m30s) [default: 300s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Validate everything on the API server without persisting it
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub dry_run: Option<crate::install::DryRun>,

    /// Let the controller delete the Secret of a deleted SealedSecret itself (its
    /// --old-gc-behavior), granting it Secret delete; otherwise garbage collection does
    #[arg(long)]
    pub old_gc_behavior: bool,

    /// CIDR the NetworkPolicy admits to the HTTP port: where the API server's service proxy
    /// connects from (repeatable) [default: none]
    #[arg(
        long = "network-policy-from",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub network_policy_from: Vec<String>,

    /// Namespaces (label selector) whose pods the NetworkPolicy admits to the metrics port; ''
    /// for every namespace
    #[arg(long, value_name = "KEY=VALUE,…", default_value = crate::install::DEFAULT_METRICS_NAMESPACE_SELECTOR)]
    pub metrics_namespace_selector: String,

    /// Install no NetworkPolicy (every pod can then reach the controller's ports)
    #[arg(long, conflicts_with_all = ["network_policy_from", "metrics_namespace_selector"])]
    pub no_network_policy: bool,

    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or in-cluster]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: the current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl InstallArgs {
    /// The cluster to apply to, as the other commands name it.
    pub fn cluster(&self) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            controller_name: self.name.clone(),
            controller_namespace: self.namespace.clone(),
            cert_configmap: None,
        }
    }
}

/// `kseal completion`
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to print completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
