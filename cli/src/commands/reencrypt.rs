//! `kseal reencrypt FILE|DIR…`: re-seals every SealedSecret with the cluster's newest key
//! (the controller's `/v1/rotate`), rewriting only the `encryptedData` values in place: key
//! order, comments and formatting stay, and each file is replaced atomically. Files without a
//! SealedSecret are skipped; a SealedSecret already sealed with the newest key (its
//! `sealedsecrets.kseal.dev/sealed-with` names only that key) is left unchanged.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_yamledit::Edit;

use super::files::{self, describe};
use crate::cli::WalkArgs;
use crate::cluster::{block_on, ClusterArgs, Controller};

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

/// What happened to the files.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Files rewritten.
    pub changed: usize,
    /// Files with SealedSecrets that needed nothing.
    pub unchanged: usize,
    /// Files that could not be re-encrypted (left as they were).
    pub failed: usize,
    /// Files without a SealedSecret.
    pub skipped: usize,
}

/// Re-encrypts the files `files::collect` found through the controller; prints one line per
/// file and a summary.
pub async fn reencrypt(c: &Controller, found: &files::Walk, dry_run: bool) -> Result<Summary> {
    let newest = Certificate::from_pem(&c.certificate().await?)
        .context("cannot use the cluster's certificate")?
        .fingerprint()
        .clone();
    let mut summary = Summary::default();
    for f in found.files() {
        let path = f.path();
        match reencrypt_file(c, f, &newest, dry_run).await {
            Ok(None) => summary.skipped += 1,
            Ok(Some(0)) => {
                summary.unchanged += 1;
                println!("unchanged  {}", path.display());
            }
            Ok(Some(n)) => {
                summary.changed += 1;
                println!(
                    "{}  {} ({n} SealedSecret{})",
                    if dry_run { "would change" } else { "changed  " },
                    path.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                summary.failed += 1;
                println!("FAILED     {}: {e:#}", path.display());
            }
        }
    }
    eprintln!(
        "{} changed, {} unchanged, {} failed, {} skipped (no SealedSecret)",
        summary.changed, summary.unchanged, summary.failed, summary.skipped
    );
    Ok(summary)
}

fn up_to_date(ss: &SealedSecret, newest: &kseal_crypto::Fingerprint) -> bool {
    let hint = kseal_sealing::sealed_with(ss);
    ss.spec.data.is_none() && hint.len() == 1 && &hint[0] == newest
}

/// `Ok(None)`: no SealedSecret in the file; `Ok(Some(n))`: n SealedSecrets rewritten.
async fn reencrypt_file(
    c: &Controller,
    found: &files::Found,
    newest: &kseal_crypto::Fingerprint,
    dry_run: bool,
) -> Result<Option<usize>> {
    let f = files::read(found)?;
    if f.sealed.is_empty() {
        return Ok(None);
    }
    let mut text = f.text.clone();
    let mut changed = 0;
    for (index, ss) in &f.sealed {
        if up_to_date(ss, newest) {
            continue;
        }
        if ss.spec.data.is_some() {
            bail!(
                "{}: uses the deprecated v1 spec.data field; reseal it from the Secret",
                describe(ss)
            );
        }
        let body = serde_json::to_vec(ss)?;
        // Right after a renewal another replica may not have the new key yet: ask again.
        let mut attempt = 0;
        let rotated = loop {
            let answer = c.rotate(body.clone()).await.with_context(|| describe(ss))?;
            let rotated: SealedSecret =
                kseal_sealing::redact::from_json_slice(&answer).map_err(|e| {
                    anyhow!(
                        "{}: the controller's answer is not a SealedSecret: {e}",
                        describe(ss)
                    )
                })?;
            attempt += 1;
            if up_to_date(&rotated, newest) || attempt >= 10 {
                break rotated;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        let mut edits = Vec::new();
        for key in ss.spec.encrypted_data.keys() {
            let value = rotated.spec.encrypted_data.get(key).ok_or_else(|| {
                anyhow!("{}: the controller's answer lacks item {key}", describe(ss))
            })?;
            edits.push(Edit::new(
                ["spec", "encryptedData", key.as_str()],
                value.clone(),
            ));
        }
        let hint = kseal_sealing::sealed_with(&rotated);
        if !hint.is_empty() {
            edits.push(Edit::new(
                [
                    "metadata",
                    "annotations",
                    kseal_crds::ANNOTATION_SEALED_WITH,
                ],
                kseal_sealing::hint::format_sealed_with(&hint),
            ));
        }
        if let Some(value) = updated_records(ss, &rotated) {
            edits.push(Edit::new(
                [
                    "metadata",
                    "annotations",
                    kseal_crds::ANNOTATION_SEAL_RECORDS,
                ],
                value,
            ));
        }
        text = kseal_yamledit::set_strings(&text, index - 1, &edits)
            .map_err(|e| anyhow!("cannot update {}: {e}", describe(ss)))?;
        changed += 1;
    }
    if changed > 0 && !dry_run {
        let target = write_target(found.path())?;
        let mode = file_mode(&target);
        crate::io::write_atomic(&target, text.as_bytes(), mode)?;
    }
    Ok(Some(changed))
}

/// The seal records of a file after its items were re-sealed: each re-sealed item gets a record
/// of its new ciphertext, for the keys the controller's answer names (its own record, else its
/// sealed-with hint); without either, the item's stale record is dropped (the item becomes
/// unverifiable rather than failing `kseal verify`). `None` when the file has no readable
/// records annotation, or nothing changes.
fn updated_records(ss: &SealedSecret, rotated: &SealedSecret) -> Option<String> {
    use base64::Engine as _;
    use kseal_sealing::seal_record::{format_records, records_of, SealRecord};
    let old = records_of(ss).ok().flatten()?;
    let answered = records_of(rotated).ok().flatten().unwrap_or_default();
    let hint = kseal_sealing::sealed_with(rotated);
    let (_, label) = kseal_sealing::unseal::label_of(ss);
    let mut new = old.clone();
    for (item, value) in &rotated.spec.encrypted_data {
        if !ss.spec.encrypted_data.contains_key(item) {
            continue;
        }
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(value) else {
            new.remove(item);
            continue;
        };
        let own = answered
            .get(item)
            .and_then(|r| r.parse::<SealRecord>().ok())
            .filter(|r| r.label == label && r.matches(item, &blob));
        match own {
            Some(r) => new.insert(item.clone(), r.to_string()),
            None if !hint.is_empty() => new.insert(
                item.clone(),
                SealRecord::new(&hint, &label, item, &blob).to_string(),
            ),
            None => new.remove(item),
        };
    }
    Some(format_records(&new)).filter(|_| new != old)
}

/// Where a rewritten file goes: the file itself, through any symlinks (a symlink stays a
/// symlink); only a regular file is rewritten.
fn write_target(path: &Path) -> Result<std::path::PathBuf> {
    let target = std::fs::canonicalize(path)
        .with_context(|| format!("cannot rewrite {}", path.display()))?;
    let meta =
        std::fs::metadata(&target).with_context(|| format!("cannot rewrite {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "cannot rewrite {}: it is {}, not a regular file",
            path.display(),
            crate::io::kind_of(&meta.file_type())
        );
    }
    Ok(target)
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// Runs `reencrypt` against the cluster `cluster` names.
pub fn run_paths(
    cluster: &ClusterArgs,
    paths: &[std::path::PathBuf],
    walk: files::WalkOptions,
    dry_run: bool,
) -> Result<ExitCode> {
    let found = files::collect(paths, walk)?; // bad paths fail before the cluster is contacted
    let summary = block_on(async {
        let c = Controller::connect(cluster).await?;
        reencrypt(&c, &found, dry_run).await
    })??;
    Ok(ExitCode::from(found.exit_code(if summary.failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    })))
}

pub fn run(args: ReencryptArgs) -> Result<ExitCode> {
    run_paths(
        &args.cluster,
        &args.paths,
        args.walk.options(),
        args.dry_run,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use kseal_sealing::seal::{seal_secret, seal_secret_with, SealOptions, Sealer};
    use kseal_sealing::seal_record::{records_of, SealRecord};

    fn cert(pem: &[u8]) -> Certificate {
        Certificate::from_pem(pem).unwrap()
    }

    #[test]
    fn re_sealed_items_get_records_of_their_new_ciphertext() {
        let old = cert(include_bytes!("../../tests/cmd/fixtures/tls.crt"));
        let new = cert(include_bytes!("../../tests/cmd/fixtures/go_rsa2048.crt"));
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "stringData": {"a": "1", "b": "2"}
        }))
        .unwrap();
        let opts = SealOptions {
            default_namespace: "default",
            ..Default::default()
        };
        let mut rng = rand::rngs::OsRng;
        let file = seal_secret_with(
            &mut rng,
            Sealer::Bitnami(old.public_key()),
            secret.clone(),
            &opts,
        )
        .unwrap();
        // The controller's answer: new ciphertexts, a hint naming its key, no records.
        let rotated = seal_secret(&mut rng, new.public_key(), secret.clone(), &opts).unwrap();
        let value = updated_records(&file, &rotated).unwrap();
        let mut updated = file.clone();
        updated
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(kseal_crds::ANNOTATION_SEAL_RECORDS.into(), value);
        let recs = records_of(&updated).unwrap().unwrap();
        for (item, v) in &rotated.spec.encrypted_data {
            use base64::Engine as _;
            let blob = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
            let r: SealRecord = recs[item].parse().unwrap();
            assert!(r.matches(item, &blob));
            assert_eq!(r.fingerprints, [new.fingerprint().clone()]);
            assert_eq!(r.label, b"prod/db");
        }
        // Without a hint (Bitnami's controller) the stale records are dropped.
        let mut bare = rotated.clone();
        bare.metadata.annotations = None;
        assert_eq!(updated_records(&file, &bare).unwrap(), "{}");
        // A file without records stays without.
        let kubeseal = seal_secret(&mut rng, old.public_key(), secret, &opts).unwrap();
        assert_eq!(updated_records(&kubeseal, &rotated), None);
    }
}
