//! `kseal seal`: Secrets → SealedSecrets, one value with `--raw`, or a merge into an existing file.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::seal::{seal_secret, SealOptions};
use kseal_crds::SealedSecret;
use kseal_crypto::{Certificate, Scope};
use serde_json::Value;

use super::docs::{self, Doc};
use crate::cli::{Format, SealArgs};
use crate::cluster::{certificate_pem, default_namespace, ClusterArgs};
use crate::io::{read_input, Output};

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
    let cert = load_certificate(args.cert.as_deref(), &args.cluster)?;
    if args.raw {
        return run_raw(&args, &cert);
    }
    let input = read_input(args.file.as_deref(), TTY_HINT)?;
    let default_ns = default_namespace(&args.cluster);
    let docs = docs::parse_stream(&input.bytes, &input.name)?;
    if docs.is_empty() {
        bail!("no secrets found. Ensure the input is valid and UTF-8 encoded");
    }

    if let Some(target) = &args.merge_into {
        return super::seal::merge::run(&args, &cert, &docs, &input.name, target, &default_ns);
    }

    let opts = SealOptions {
        scope: args.scope.map(Scope::from),
        name: args.name.as_deref(),
        namespace: args.namespace.as_deref(),
        default_namespace: &default_ns,
        allow_empty_data: args.allow_empty_data,
    };
    let mut sealed = Vec::with_capacity(docs.len());
    for doc in &docs {
        let secret = read_secret(doc, &input.name)?;
        let what = describe(&secret, doc, &input.name);
        let ss = seal_secret(&mut rand::rngs::OsRng, cert.public_key(), secret, &opts)
            .with_context(|| format!("cannot seal {what}"))?;
        sealed.push(ss);
    }
    let out = Output::new(args.output_file.as_deref(), 0o644);
    let format = output_format(args.format, &out);
    out.write(docs::render(&sealed, format)?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
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
    docs::check_type(doc, source, "Secret", "v1", false)?;
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
                            kseal_crds::unseal::go_base64_error(&e)
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
    docs::typed::<Secret>(doc, source, "Secret", "v1", false)
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

fn run_raw(args: &SealArgs, cert: &Certificate) -> Result<ExitCode> {
    if args.from_file.len() > 1 {
        bail!("must provide only one --from-file when encrypting a single item with --raw");
    }
    let value = match args.from_file.first() {
        Some(spec) => {
            // `[key=]path`: the key names an item in kubectl; a raw value has none.
            let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
            zeroize::Zeroizing::new(
                std::fs::read(path).with_context(|| format!("cannot read {path}"))?,
            )
        }
        None => zeroize::Zeroizing::new(read_input(None, TTY_HINT_RAW)?.bytes),
    };
    let scope = args.scope.map(Scope::from).unwrap_or_default();
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
    let blob = kseal_crypto::seal(cert.public_key(), &scope.label(&namespace, &name), &value)?;
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
        cert: &Certificate,
        docs: &[Doc],
        source: &str,
        target: &std::path::Path,
        default_ns: &str,
    ) -> Result<ExitCode> {
        if docs.len() != 1 {
            bail!(
                "--merge-into takes exactly one input Secret, {source} has {}",
                docs.len()
            );
        }
        let tname = target.display().to_string();
        let text =
            std::fs::read_to_string(target).with_context(|| format!("cannot read {tname}"))?;
        let tdocs = docs::parse_stream(text.as_bytes(), &tname)?;
        let [tdoc] = tdocs.as_slice() else {
            bail!(
                "{tname} must hold exactly one SealedSecret, it has {} documents",
                tdocs.len()
            );
        };
        let existing: SealedSecret = docs::typed(
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
        secret.metadata.name = existing.metadata.name.clone();
        if let Some(flag) = args.namespace.as_deref().filter(|f| !f.is_empty()) {
            let file_ns = existing.metadata.namespace.clone().unwrap_or_default();
            if !file_ns.is_empty() && file_ns != flag {
                bail!("namespace mismatch: {tname} is in namespace {file_ns:?} but {flag:?} was specified");
            }
        }
        secret.metadata.namespace = existing.metadata.namespace.clone();
        let opts = SealOptions {
            scope: None,
            name: None,
            namespace: None,
            default_namespace: default_ns,
            allow_empty_data: args.allow_empty_data,
        };
        let sealed = seal_secret(&mut rand::rngs::OsRng, cert.public_key(), secret, &opts)
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
        let hint = kseal_crds::hint::merge_sealed_with(
            recorded.map(String::as_str),
            &kseal_crds::sealed_with(&sealed),
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
        let updated = kseal_yamledit::set_strings(&text, tdoc.index - 1, &edits)
            .map_err(|e| anyhow!("cannot update {tname}: {e}"))?;
        crate::io::write_atomic(target, updated.as_bytes(), 0o644)?;
        Ok(ExitCode::SUCCESS)
    }
}
