//! `kseal seal`: Secrets → SealedSecrets, one value with `--raw`, or a merge into an existing file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_crypto::{AgeRecipient, Certificate, Scope};
use kseal_sealing::seal::{seal_secret_with, SealOptions, Sealer};
use serde_json::Value;

use super::documents::{self, Doc};
use crate::cli::{Format, ScopeArg};
use crate::cluster::{certificate_pem, default_namespace, ClusterArgs};
use crate::config::{self, Config, RuleKeys};
use crate::io::{read_input, Output};

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

    /// Read from FILE (the same as -f FILE)
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub input: Option<PathBuf>,

    /// Write to FILE (atomically) instead of stdout
    #[arg(
        short = 'w',
        long = "output-file",
        visible_alias = "sealed-secret-file",
        value_name = "FILE"
    )]
    pub output_file: Option<PathBuf>,

    /// Output format [default: json, or yaml for a .yaml/.yml output file]
    #[arg(
        short = 'o',
        long = "format",
        visible_alias = "output",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: Option<Format>,

    /// Sealing certificate: a file, file:// or http(s):// URL (Bitnami format)
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// True when `cert` came from KSEAL_CERT rather than --cert (set by `cli::parse`).
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

/// The refusal of `--cert` with `--recipient`.
pub const ONE_BLOB: &str =
    "a value is one blob: choose --cert (Bitnami format) or --recipient (age format)";

/// The public keys values are sealed for.
#[derive(Debug)]
pub enum SealKeys {
    /// A certificate: the Bitnami format.
    Cert(Certificate),
    /// Age recipients: the age format, one blob for all of them.
    Age(Vec<AgeRecipient>),
}

impl SealKeys {
    /// The sealer of `kseal_crds`.
    pub fn sealer(&self) -> Sealer<'_> {
        match self {
            SealKeys::Cert(c) => Sealer::Bitnami(c.public_key()),
            SealKeys::Age(r) => Sealer::Age(r),
        }
    }

    fn describe(&self) -> String {
        match self {
            SealKeys::Cert(c) => format!("Bitnami format, certificate {}", c.fingerprint()),
            SealKeys::Age(r) => format!(
                "age format, {} recipient{}",
                r.len(),
                if r.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The keys (and a default scope from a .kseal.yaml rule) chosen for one `kseal seal` run.
#[derive(Debug)]
pub struct Chosen {
    pub keys: SealKeys,
    /// The rule's `scope`, for Secrets whose annotations choose none (`--scope` wins).
    pub default_scope: Option<Scope>,
}

/// The file whose path selects the .kseal.yaml rule: the file written (`--merge-into`, `-w`),
/// else the input (`-f`); `None` for stdin to stdout (the current directory is used).
fn sealed_path(args: &SealArgs) -> Option<&std::path::Path> {
    args.merge_into
        .as_deref()
        .or(args.output_file.as_deref())
        .or(args.file.as_deref())
}

/// Chooses the keys: `--cert` or `--recipient`/`--recipients-file` (never both), else the
/// matching rule of `--config` or the nearest `.kseal.yaml` (unless `--no-config`), else
/// `KSEAL_CERT`, else the cluster's certificate.
pub fn choose_keys(args: &SealArgs) -> Result<Chosen> {
    let mut recipients = config::parse_recipient_flags(&args.recipients)?;
    for f in &args.recipients_files {
        recipients.extend(config::read_recipients_file(f)?);
    }
    let flag_cert = args
        .cert
        .as_deref()
        .filter(|c| !c.is_empty() && !args.cert_from_env);
    if flag_cert.is_some() && !recipients.is_empty() {
        bail!(ONE_BLOB);
    }
    let chosen = |keys| Chosen {
        keys,
        default_scope: None,
    };
    if let Some(src) = flag_cert {
        return Ok(chosen(SealKeys::Cert(load_certificate(
            Some(src),
            &args.cluster,
        )?)));
    }
    if !recipients.is_empty() {
        config::check_pq_mix(&recipients, "--recipient/--recipients-file")?;
        return Ok(chosen(SealKeys::Age(recipients)));
    }
    if !args.no_config {
        let target = sealed_path(args);
        let config = match &args.config {
            Some(path) => Some(Config::load(path)?),
            None => {
                let start = match target.map(config::absolute).transpose()? {
                    Some(abs) => abs.parent().map(std::path::Path::to_path_buf),
                    None => None,
                };
                let start = match start {
                    Some(s) => s,
                    None => std::env::current_dir().context("cannot read the current directory")?,
                };
                Config::discover(&start)?
            }
        };
        if let Some(config) = config {
            let (path, is_dir) = match target {
                Some(t) => (t.to_path_buf(), false),
                None => (
                    std::env::current_dir().context("cannot read the current directory")?,
                    true,
                ),
            };
            let Some(m) = config.rule_for(&path, is_dir)? else {
                bail!(
                    "no rule of {} matches {}: add one, or pass --cert or --recipient (or --no-config)",
                    config.path.display(),
                    path.display()
                );
            };
            let keys = match m.keys()? {
                RuleKeys::Cert(src) => SealKeys::Cert(
                    load_certificate(Some(&src), &args.cluster).with_context(|| m.describe())?,
                ),
                RuleKeys::Recipients(r) => {
                    config::check_pq_mix(&r, &m.describe())?;
                    SealKeys::Age(r)
                }
            };
            if args.verbose {
                eprintln!("kseal: keys from {}: {}", m.describe(), keys.describe());
            }
            return Ok(Chosen {
                keys,
                default_scope: m.rule.scope,
            });
        }
    }
    let keys = SealKeys::Cert(load_certificate(args.cert.as_deref(), &args.cluster)?);
    if args.verbose {
        eprintln!("kseal: keys: {}", keys.describe());
    }
    Ok(chosen(keys))
}

/// `--scope`, else the rule's default scope for a Secret whose annotations choose none.
fn scope_for(args: &SealArgs, chosen: &Chosen, secret: &Secret) -> Option<Scope> {
    args.scope.map(Scope::from).or_else(|| {
        let annotated = secret.metadata.annotations.as_ref().is_some_and(|a| {
            a.contains_key(kseal_crypto::scope::ANNOTATION_CLUSTER_WIDE)
                || a.contains_key(kseal_crypto::scope::ANNOTATION_NAMESPACE_WIDE)
        });
        chosen.default_scope.filter(|_| !annotated)
    })
}

const TTY_HINT: &str = "(tty detected: expecting json/yaml k8s resource in stdin)";
const TTY_HINT_RAW: &str = "(tty detected: expecting a secret to encrypt in stdin)";

/// Loads the sealing certificate (`--cert`, else the cluster's) and refuses an expired one.
pub fn load_certificate(src: Option<&str>, cluster: &ClusterArgs) -> Result<Certificate> {
    let bytes = certificate_pem(src, cluster)?;
    let what = src
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "of controller {}/{}",
                cluster.controller_namespace, cluster.controller_name
            )
        });
    let cert =
        Certificate::from_pem(&bytes).with_context(|| format!("cannot use certificate {what}"))?;
    cert.check_not_expired(time::OffsetDateTime::now_utc())?;
    Ok(cert)
}

pub fn run(args: SealArgs) -> Result<ExitCode> {
    let chosen = choose_keys(&args)?;
    if args.raw {
        return run_raw(&args, &chosen);
    }
    let input = read_input(args.file.as_deref(), TTY_HINT, crate::io::MANIFEST)?;
    let docs = documents::parse_stream(&input.bytes, &input.name)?;
    if docs.is_empty() {
        bail!("no secrets found. Ensure the input is valid and UTF-8 encoded");
    }

    if let Some(target) = &args.merge_into {
        return super::seal::merge::run(&args, &chosen.keys, &docs, &input.name, target);
    }
    // The kubeconfig context's namespace (kubectl's rule) only for a Secret that names none:
    // with --cert and namespaced input, sealing never reads the kubeconfig.
    let default_ns = if args.namespace.as_deref().is_some_and(|n| !n.is_empty())
        || docs.iter().all(|d| !namespace_of(d).is_empty())
    {
        String::new()
    } else {
        default_namespace(&args.cluster)
    };

    let mut sealed = Vec::with_capacity(docs.len());
    for doc in &docs {
        let secret = read_secret(doc, &input.name)?;
        let what = describe(&secret, doc, &input.name);
        let opts = SealOptions {
            scope: scope_for(&args, &chosen, &secret),
            name: args.name.as_deref(),
            namespace: args.namespace.as_deref(),
            default_namespace: &default_ns,
            allow_empty_data: args.allow_empty_data,
        };
        let ss = seal_secret_with(&mut rand::rngs::OsRng, chosen.keys.sealer(), secret, &opts)
            .with_context(|| format!("cannot seal {what}"))?;
        sealed.push(ss);
    }
    let out = Output::new(args.output_file.as_deref(), 0o644);
    let format = output_format(args.format, &out);
    out.write(documents::render(&sealed, format)?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The namespace a document names, or "".
fn namespace_of(doc: &Doc) -> &str {
    doc.value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `-o`, else YAML for a `.yaml`/`.yml` target, else JSON (kubeseal's default).
pub fn output_format(flag: Option<Format>, out: &Output) -> Format {
    flag.unwrap_or(if out.wants_yaml() {
        Format::Yaml
    } else {
        Format::Json
    })
}

/// A Secret from one document, with every `data` value checked so that bad base64 is reported
/// by item name rather than as a generic decoding error.
pub fn read_secret(doc: &Doc, source: &str) -> Result<Secret> {
    documents::check_type(doc, source, "Secret", "v1", false)?;
    if let Some(data) = doc.value.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let name = doc
                .value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            match v {
                Value::String(s) => {
                    if let Err(e) = STANDARD.decode(s) {
                        bail!(
                            "invalid base64 in data[{k:?}] of Secret {name:?} (document {} of {source}): {}",
                            doc.index,
                            kseal_sealing::unseal::go_base64_error(&e)
                        );
                    }
                }
                Value::Null => {}
                _ => bail!(
                    "data[{k:?}] of Secret {name:?} (document {} of {source}) is not a string",
                    doc.index
                ),
            }
        }
    }
    documents::typed::<Secret>(doc, source, "Secret", "v1", false)
}

fn describe(secret: &Secret, doc: &Doc, source: &str) -> String {
    let name = secret.metadata.name.as_deref().unwrap_or("");
    match secret.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!(
            "Secret \"{ns}/{name}\" (document {} of {source})",
            doc.index
        ),
        _ => format!("Secret {name:?} (document {} of {source})", doc.index),
    }
}

fn run_raw(args: &SealArgs, chosen: &Chosen) -> Result<ExitCode> {
    if args.from_file.len() > 1 {
        bail!("must provide only one --from-file when encrypting a single item with --raw");
    }
    let value = match args.from_file.first() {
        Some(spec) => {
            // `[key=]path`: the key names an item in kubectl; a raw value has none.
            let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
            crate::io::read_file(std::path::Path::new(path), crate::io::RAW_VALUE)
                .with_context(|| format!("cannot read {path}"))?
        }
        None => read_input(None, TTY_HINT_RAW, crate::io::RAW_VALUE)?.bytes,
    };
    let scope = args
        .scope
        .map(Scope::from)
        .or(chosen.default_scope)
        .unwrap_or_default();
    let namespace = match scope {
        Scope::ClusterWide => String::new(),
        _ => args
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace(&args.cluster)),
    };
    if scope != Scope::ClusterWide && namespace.is_empty() {
        bail!("must provide the --namespace flag with --raw and --scope {scope}");
    }
    let name = args.name.clone().unwrap_or_default();
    if scope == Scope::Strict && name.is_empty() {
        bail!("must provide the --name flag with --raw and --scope strict");
    }
    let blob = chosen.keys.sealer().seal(
        &mut rand::rngs::OsRng,
        &scope.label(&namespace, &name),
        &value,
    )?;
    let out = Output::new(args.output_file.as_deref(), 0o644);
    out.write(STANDARD.encode(blob).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) mod merge {
    //! `--merge-into`: seal the input with the target's name, namespace and scope, then rewrite
    //! only the values that changed, keeping every other byte of the file.

    use super::*;
    use kseal_yamledit::Edit;

    pub fn run(
        args: &SealArgs,
        keys: &SealKeys,
        docs: &[Doc],
        source: &str,
        target: &std::path::Path,
    ) -> Result<ExitCode> {
        if docs.len() != 1 {
            bail!(
                "--merge-into takes exactly one input Secret, {source} has {}",
                docs.len()
            );
        }
        let tname = target.display().to_string();
        let text = crate::io::read_text(target, crate::io::MANIFEST, &tname)?;
        let tdocs = documents::parse_stream(text.as_bytes(), &tname)?;
        let [tdoc] = tdocs.as_slice() else {
            bail!(
                "{tname} must hold exactly one SealedSecret, it has {} documents",
                tdocs.len()
            );
        };
        let existing: SealedSecret = documents::typed(
            tdoc,
            &tname,
            kseal_crds::KIND,
            kseal_crds::API_VERSION,
            true,
        )?;
        let file_scope = Scope::from_annotations(existing.metadata.annotations.as_ref());
        if let Some(s) = args.scope.map(Scope::from).filter(|s| *s != file_scope) {
            bail!("scope mismatch: {tname} is sealed {file_scope} but --scope {s} was given");
        }

        let mut secret = read_secret(&docs[0], source)?;
        // The target decides where the values may be opened: its name, namespace and scope.
        file_scope.apply_to(
            secret
                .metadata
                .annotations
                .get_or_insert_with(Default::default),
        );
        // A Secret of another name or namespace is a mistake (the wrong file, or the wrong
        // target): its items would be sealed for the target and silently join it. A Secret that
        // names neither is the usual `kubectl create secret --dry-run` input and is fine.
        let file_name = existing.metadata.name.clone().unwrap_or_default();
        let input_name = args
            .name
            .clone()
            .or_else(|| secret.metadata.name.clone())
            .unwrap_or_default();
        if !input_name.is_empty() && !file_name.is_empty() && input_name != file_name {
            bail!("name mismatch: {tname} holds SealedSecret {file_name:?} but the input Secret of {source} is named {input_name:?} (give a Secret of the same name, or none)");
        }
        let file_ns = existing.metadata.namespace.clone().unwrap_or_default();
        if let Some(flag) = args.namespace.as_deref().filter(|f| !f.is_empty()) {
            if !file_ns.is_empty() && file_ns != flag {
                bail!("namespace mismatch: {tname} is in namespace {file_ns:?} but {flag:?} was specified");
            }
        } else if let Some(input_ns) = secret
            .metadata
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
        {
            if !file_ns.is_empty() && file_ns != input_ns {
                bail!("namespace mismatch: {tname} is in namespace {file_ns:?} but the input Secret of {source} is in {input_ns:?} (give a Secret of the same namespace, or none)");
            }
        }
        secret.metadata.name = existing.metadata.name.clone();
        secret.metadata.namespace = existing.metadata.namespace.clone();
        // Only a target without a namespace needs the kubeconfig context's.
        let default_ns = if file_ns.is_empty() {
            default_namespace(&args.cluster)
        } else {
            String::new()
        };
        let opts = SealOptions {
            scope: None,
            name: None,
            namespace: None,
            default_namespace: &default_ns,
            allow_empty_data: args.allow_empty_data,
        };
        let sealed = seal_secret_with(&mut rand::rngs::OsRng, keys.sealer(), secret, &opts)
            .with_context(|| format!("cannot seal the Secret of {source}"))?;

        let mut edits = Vec::new();
        for (k, v) in &sealed.spec.encrypted_data {
            edits.push(Edit::new(["spec", "encryptedData", k.as_str()], v.clone()));
        }
        let old_meta = existing.spec.template.metadata.clone().unwrap_or_default();
        let new_meta = sealed.spec.template.metadata.clone().unwrap_or_default();
        for (field, old, new) in [
            ("labels", &old_meta.labels, &new_meta.labels),
            ("annotations", &old_meta.annotations, &new_meta.annotations),
        ] {
            for (k, v) in new.iter().flatten() {
                if old.as_ref().and_then(|o| o.get(k)) != Some(v) {
                    edits.push(Edit::new(
                        ["spec", "template", "metadata", field, k.as_str()],
                        v.clone(),
                    ));
                }
            }
        }
        // The sealing-key hint names the keys of the old items too: the union of what the file
        // records (nothing for a kubeseal file) and the key of the items sealed now.
        let recorded = existing
            .annotations()
            .and_then(|a| a.get(kseal_crds::ANNOTATION_SEALED_WITH));
        let hint = kseal_sealing::hint::merge_sealed_with(
            recorded.map(String::as_str),
            &kseal_sealing::sealed_with(&sealed),
        );
        if let Some(value) = hint.filter(|v| Some(v) != recorded) {
            edits.push(Edit::new(
                [
                    "metadata",
                    "annotations",
                    kseal_crds::ANNOTATION_SEALED_WITH,
                ],
                value,
            ));
        }
        // The seal records of the items written now replace theirs; the others stay.
        let recorded = existing
            .annotations()
            .and_then(|a| a.get(kseal_crds::ANNOTATION_SEAL_RECORDS));
        let new_records = kseal_sealing::seal_record::records_of(&sealed)
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|r| (k, r)));
        let records =
            kseal_sealing::seal_record::merge_records(recorded.map(String::as_str), new_records);
        if let Some(value) = records.filter(|v| Some(v) != recorded) {
            edits.push(Edit::new(
                [
                    "metadata",
                    "annotations",
                    kseal_crds::ANNOTATION_SEAL_RECORDS,
                ],
                value,
            ));
        }
        let updated = kseal_yamledit::set_strings(&text, tdoc.index - 1, &edits)
            .map_err(|e| anyhow!("cannot update {tname}: {e}"))?;
        crate::io::write_atomic(target, updated.as_bytes(), 0o644)?;
        Ok(ExitCode::SUCCESS)
    }
}
