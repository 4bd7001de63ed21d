//! `kseal keys list|backup|restore|renew` and `kseal rotate`: the controller's keys from the
//! operator's side.
//!
//! - `list`: every key Secret in the controller's namespace (labelled
//!   `sealedsecrets.bitnami.com/sealed-secrets-key`, and the legacy `sealed-secrets-key`) with
//!   its fingerprint, age, expiry and state; the sealing key is the newest active one.
//! - `backup`: those Secrets as a `v1 List` (mode 0600) that `kseal unseal --key`, `kseal keys
//!   restore` and `kubectl apply -f` accept.
//! - `restore`: creates the key Secrets of a backup that are missing (never overwrites); the
//!   controller picks them up without a restart.
//! - `renew`: asks the controller for a new key through the RBAC-authorized request annotation
//!   on its certificate ConfigMap, and waits until the new certificate is published.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_sealing::key_secret::{
    self, is_age_identity, AGE_IDENTITY_LABEL, ANNOTATION_AGE_RECIPIENT, DEFAULT_KEY_PREFIX,
    KEY_LABEL, KEY_LABEL_ACTIVE,
};
use kseal_sealing::scrub;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use time::format_description::well_known::Rfc3339;

use crate::cli::{ReportFormat, WalkArgs};
use crate::cluster::{block_on, explain, ClusterArgs, Controller};

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

fn forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// The key Secrets of the controller's namespace (RSA keys and age identities), oldest first.
async fn key_secrets(c: &Controller) -> Result<Vec<Secret>> {
    let api: Api<Secret> = Api::namespaced(c.client().clone(), c.namespace());
    let mut list = Vec::new();
    for label in [KEY_LABEL, AGE_IDENTITY_LABEL] {
        list.extend(
            api.list(&ListParams::default().labels(label))
                .await
                .map_err(|e| {
                    anyhow!(
                        "cannot list the key Secrets in {}: {}",
                        c.namespace(),
                        explain(&e)
                    )
                })?
                .items,
        );
    }
    if !list
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some(DEFAULT_KEY_PREFIX))
    {
        if let Ok(Some(legacy)) = api.get_opt(DEFAULT_KEY_PREFIX).await {
            list.push(legacy);
        }
    }
    list.sort_by_key(|s| s.metadata.creation_timestamp.as_ref().map(|t| t.0));
    Ok(list)
}

#[derive(Debug, serde::Serialize)]
struct KeyInfo {
    secret: String,
    /// `rsa`, `age` or `age-pq` (post-quantum mlkem768x25519).
    #[serde(rename = "type")]
    type_: &'static str,
    fingerprint: String,
    state: String,
    created: String,
    #[serde(rename = "notBefore")]
    not_before: String,
    #[serde(rename = "notAfter")]
    not_after: String,
    #[serde(rename = "ageDays")]
    age_days: i64,
    sealing: bool,
}

fn describe_keys(secrets: &[Secret]) -> Vec<KeyInfo> {
    let now = time::OffsetDateTime::now_utc();
    let ts = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut out: Vec<KeyInfo> = secrets
        .iter()
        .map(|s| {
            if is_age_identity(s) {
                let recipient = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_AGE_RECIPIENT))
                    .and_then(|r| r.parse::<kseal_crypto::AgeRecipient>().ok());
                let created = s.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let pq = recipient.as_ref().is_some_and(|r| r.is_post_quantum());
                return KeyInfo {
                    secret: s.metadata.name.clone().unwrap_or_default(),
                    type_: if pq { "age-pq" } else { "age" },
                    // A post-quantum recipient is 1959 characters: its SHA256 fingerprint.
                    fingerprint: recipient
                        .map(|r| {
                            if r.is_post_quantum() {
                                r.fingerprint().to_string()
                            } else {
                                r.as_str().to_string()
                            }
                        })
                        .unwrap_or_else(|| "(no recipient annotation)".into()),
                    state: key_secret::state(s).unwrap_or_default().to_string(),
                    created: created.map(|t| t.to_string()).unwrap_or_default(),
                    not_before: String::new(),
                    not_after: String::new(),
                    age_days: created
                        .map(|t| {
                            k8s_openapi::jiff::Timestamp::now()
                                .duration_since(t)
                                .as_hours()
                                / 24
                        })
                        .unwrap_or_default(),
                    sealing: false,
                };
            }
            let cert = key_secret::certificate(s);
            let state = key_secret::state(s).unwrap_or("legacy").to_string();
            KeyInfo {
                secret: s.metadata.name.clone().unwrap_or_default(),
                type_: "rsa",
                fingerprint: cert
                    .as_ref()
                    .map(|c| c.fingerprint().to_string())
                    .unwrap_or_else(|| "(no readable tls.crt)".into()),
                state,
                created: s
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                not_before: cert
                    .as_ref()
                    .map(|c| ts(c.not_before()))
                    .unwrap_or_default(),
                not_after: cert.as_ref().map(|c| ts(c.not_after())).unwrap_or_default(),
                age_days: cert
                    .as_ref()
                    .map(|c| (now - c.not_before()).whole_days())
                    .unwrap_or_default(),
                sealing: false,
            }
        })
        .collect();
    // The newest active age identity of each kind is the age recipient to seal for.
    for kind in ["age", "age-pq"] {
        if let Some(i) = out
            .iter()
            .enumerate()
            .filter(|(_, k)| k.type_ == kind && k.state == "active")
            .max_by(|a, b| a.1.created.cmp(&b.1.created).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
        {
            out[i].sealing = true;
        }
    }
    // The sealing key: the newest active one by certificate NotBefore (the controller's default
    // --key-order-priority).
    if let Some(i) = out
        .iter()
        .enumerate()
        .filter(|(_, k)| k.type_ == "rsa")
        .filter(|(_, k)| k.state == KEY_LABEL_ACTIVE || k.state == "legacy")
        .filter(|(_, k)| !k.not_before.is_empty())
        .max_by(|a, b| a.1.not_before.cmp(&b.1.not_before).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
    {
        out[i].sealing = true;
    }
    out
}

async fn list(c: &Controller, format: ReportFormat) -> Result<ExitCode> {
    let mut secrets = key_secrets(c).await?;
    let keys = describe_keys(&secrets);
    scrub::secrets(&mut secrets);
    if keys.is_empty() {
        bail!(
            "no key Secrets in namespace {}: is the controller installed there? (--controller-namespace)",
            c.namespace()
        );
    }
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&keys)?),
        ReportFormat::Text => {
            println!(
                "{:<32} {:<4} {:<62} {:<8} {:>8}  {:<20}  SEALING",
                "SECRET", "TYPE", "FINGERPRINT / RECIPIENT", "STATE", "AGE", "EXPIRES"
            );
            for k in &keys {
                println!(
                    "{:<32} {:<4} {:<62} {:<8} {:>7}d  {:<20}  {}",
                    k.secret,
                    k.type_,
                    k.fingerprint,
                    k.state,
                    k.age_days,
                    k.not_after,
                    if k.sealing { "*" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A key Secret as a backup holds it: what a restore needs, nothing server-made.
fn clean(s: &Secret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: s.metadata.name.clone(),
            namespace: s.metadata.namespace.clone(),
            labels: s.metadata.labels.clone(),
            annotations: s.metadata.annotations.clone().map(|mut a| {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
                a
            }),
            ..Default::default()
        },
        type_: s.type_.clone(),
        data: s.data.clone(),
        ..Default::default()
    }
}

async fn backup(c: &Controller, out: &std::path::Path, force: bool) -> Result<ExitCode> {
    let mut secrets = key_secrets(c).await?;
    if secrets.is_empty() {
        bail!("no key Secrets in namespace {}", c.namespace());
    }
    let items: Vec<Secret> = secrets.iter().map(clean).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let text = zeroize::Zeroizing::new(serde_yaml::to_string(&list)?);
    drop(items);
    scrub::secrets(&mut secrets);
    crate::io::write_new(out, text.as_bytes(), 0o600, force)?;
    eprintln!(
        "wrote {} key{} to {} (mode 0600): it holds private keys, store it like one",
        secrets.len(),
        if secrets.len() == 1 { "" } else { "s" },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(c: &Controller, file: &std::path::Path) -> Result<ExitCode> {
    let bytes = crate::io::read_file(file, crate::io::KEY_FILE)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let docs = super::documents::parse_stream(&bytes, &file.display().to_string())?;
    let mut secrets = Vec::new();
    for d in docs {
        let items = match d.value.get("kind").and_then(|k| k.as_str()) {
            Some("List") | Some("SecretList") => d
                .value
                .get("items")
                .and_then(|i| i.as_array())
                .cloned()
                .unwrap_or_default(),
            Some("Secret") => vec![d.value],
            _ => continue,
        };
        for v in items {
            let s: Secret = kseal_sealing::redact::from_value(v)
                .map_err(|e| anyhow!("{}: not a valid Secret: {e}", file.display()))?;
            if key_secret::holds_key_material(&s) {
                secrets.push(s);
            }
        }
    }
    if secrets.is_empty() {
        bail!(
            "{}: no key Secrets (with {} or {}) in it",
            file.display(),
            key_secret::TLS_KEY,
            key_secret::AGE_IDENTITY_DATA_KEY
        );
    }
    let api: Api<Secret> = Api::namespaced(c.client().clone(), c.namespace());
    let results = {
        let mut out = Vec::new();
        for s in &secrets {
            let mut new = clean(s);
            new.metadata.namespace = Some(c.namespace().to_string());
            let label = if is_age_identity(&new) {
                AGE_IDENTITY_LABEL
            } else {
                KEY_LABEL
            };
            new.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .entry(label.to_string())
                .or_insert_with(|| KEY_LABEL_ACTIVE.to_string());
            let name = new.metadata.name.clone().unwrap_or_default();
            let r = api.create(&PostParams::default(), &new).await;
            scrub::secret(&mut new);
            out.push((name, r.map(|_| ())));
        }
        out
    };
    scrub::secrets(&mut secrets);
    let mut failed = false;
    for (name, r) in results {
        match r {
            Ok(()) => println!("restored  {}/{name}", c.namespace()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                println!("exists    {}/{name} (kept as it is)", c.namespace())
            }
            Err(e) => {
                failed = true;
                println!("FAILED    {}/{name}: {}", c.namespace(), explain(&e));
            }
        }
    }
    Ok(ExitCode::from(if failed { crate::EXIT_ERROR } else { 0 }))
}

/// Asks for a new key and waits (up to `timeout`) until the controller publishes it. Returns
/// the new certificate's fingerprint.
/// With `timeout` `None`, returns (an empty string) once the request is written.
pub async fn renew(c: &Controller, timeout: Option<Duration>) -> Result<String> {
    let cert_name = c.args().cert_configmap();
    let name = kseal_crds::renewal_configmap(&cert_name);
    let api: Api<ConfigMap> = Api::namespaced(c.client().clone(), c.namespace());
    let fingerprint = |cm: Option<ConfigMap>| {
        cm.and_then(|cm| cm.data)
            .and_then(|mut d| d.remove("fingerprint"))
            .unwrap_or_default()
    };
    let old = fingerprint(api.get_opt(&cert_name).await.map_err(|e| {
        anyhow!(
            "cannot read ConfigMap {}/{cert_name}: {}",
            c.namespace(),
            explain(&e)
        )
    })?);
    let request = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({
        "metadata": {"annotations": {kseal_crds::ANNOTATION_RENEW_REQUESTED: request}}
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            if forbidden(&e) {
                anyhow!(
                    "not allowed to request a key renewal: you need patch on configmaps/{name} in {} (Role sealed-secrets-key-renewer)",
                    c.namespace()
                )
            } else if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                anyhow!(
                    "there is no ConfigMap {}/{name}: is kseal's controller installed there? (a Bitnami controller renews on SIGUSR1 or a restart with --key-cutoff-time)",
                    c.namespace()
                )
            } else {
                anyhow!("cannot request a key renewal: {}", explain(&e))
            }
        })?;
    let Some(timeout) = timeout else {
        return Ok(String::new());
    };
    let start = std::time::Instant::now();
    loop {
        let cm = api
            .get(&name)
            .await
            .map_err(|e| anyhow!("{}", explain(&e)))?;
        let handled = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(kseal_crds::ANNOTATION_RENEW_HANDLED))
            .is_some_and(|h| *h == request);
        if handled {
            let now = fingerprint(
                api.get_opt(&cert_name)
                    .await
                    .map_err(|e| anyhow!("{}", explain(&e)))?,
            );
            if !now.is_empty() && now != old {
                return Ok(now);
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "the controller did not publish a new key within {timeout:?} (is it running? see its log)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn run(args: KeysArgs) -> Result<ExitCode> {
    // One runtime for the whole command: the client's connection pool lives on it.
    block_on(async {
        let c = Controller::connect(&args.cluster).await?;
        match args.command {
            KeysCommand::List { output } => list(&c, output).await,
            KeysCommand::Backup { output_file, force } => backup(&c, &output_file, force).await,
            KeysCommand::Restore { file } => restore(&c, &file).await,
            KeysCommand::Renew { timeout, no_wait } => {
                if no_wait {
                    renew(&c, None).await?;
                    eprintln!("renewal requested");
                    return Ok(ExitCode::SUCCESS);
                }
                let fp = renew(&c, Some(Duration::from_secs(timeout))).await?;
                eprintln!("new sealing key:");
                println!("{fp}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })?
}

/// `kseal rotate DIR…`: renew, wait for the new key, re-encrypt the files.
pub fn rotate(args: RotateArgs) -> Result<ExitCode> {
    // Bad paths fail before a key is renewed.
    let found = super::files::collect(&args.paths, args.walk.options())?;
    let summary = block_on(async {
        let c = Controller::connect(&args.cluster).await?;
        let fp = renew(&c, Some(Duration::from_secs(args.timeout))).await?;
        eprintln!("new sealing key {fp}; re-encrypting");
        super::reencrypt::reencrypt(&c, &found, false).await
    })??;
    Ok(ExitCode::from(found.exit_code(if summary.failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    })))
}
