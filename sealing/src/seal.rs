//! Secret → SealedSecret, following kubeseal's rules (docs/compatibility.md, “kubeseal's output document”, “Behaviour details”) exactly.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_crypto::{seal_with_rng, AgeRecipient, Fingerprint, PublicKey, Scope};
use rand::{CryptoRng, RngCore};

use crate::seal_record::SealRecord;
use crate::Error;
use kseal_crds::{SealedSecret, SealedSecretSpec, SecretTemplateSpec};

/// What the values are sealed for, and so in which format. A value is one blob: either
/// Bitnami's (one RSA key) or an age file (one or more recipients), never both.
#[derive(Debug, Clone, Copy)]
pub enum Sealer<'a> {
    /// The Bitnami format for one certificate's RSA key (what kubeseal writes).
    Bitnami(&'a PublicKey),
    /// The age format for every recipient at once ([`kseal_crypto::seal_age`]).
    Age(&'a [AgeRecipient]),
}

impl Sealer<'_> {
    /// The fingerprints of the keys a value is sealed for, sorted and deduplicated.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let mut fps: Vec<Fingerprint> = match self {
            Sealer::Bitnami(key) => vec![key.fingerprint().clone()],
            Sealer::Age(recipients) => recipients.iter().map(|r| r.fingerprint().clone()).collect(),
        };
        fps.sort();
        fps.dedup();
        fps
    }

    /// Seals one value under `label` (the age format takes its randomness from the operating
    /// system, not from `rng`).
    pub fn seal<R: RngCore + CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        label: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, kseal_crypto::Error> {
        match self {
            Sealer::Bitnami(key) => seal_with_rng(rng, key, label, value),
            Sealer::Age(recipients) => kseal_crypto::seal_age(recipients, label, value),
        }
    }
}

/// Annotations kubeseal drops from the template: they would carry the plaintext.
pub const DROPPED_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// How to resolve name, namespace and scope (kubeseal's flags).
#[derive(Debug, Clone, Default)]
pub struct SealOptions<'a> {
    /// `--scope`; `None` or `Some(Strict)` keep the input's scope annotations, as kubeseal does.
    pub scope: Option<Scope>,
    /// `--name`: overrides `metadata.name` of every input Secret.
    pub name: Option<&'a str>,
    /// `-n` when given explicitly: fills an empty namespace and must agree with a set one.
    pub namespace: Option<&'a str>,
    /// The namespace for a Secret without one when `-n` is absent (kubeconfig's, else `default`).
    pub default_namespace: &'a str,
    /// `--allow-empty-data`.
    pub allow_empty_data: bool,
}

/// Resolves the name, namespace and scope a Secret will be sealed for, applying `--scope` to its
/// annotations. Shared by whole-Secret sealing and `--merge-into`.
pub fn resolve(secret: &mut Secret, opts: &SealOptions<'_>) -> Result<Scope, Error> {
    if let Some(n) = opts.name {
        secret.metadata.name = Some(n.to_string());
    }
    if secret.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(Error::MissingName);
    }
    if let Some(s) = opts.scope.filter(|s| *s != Scope::Strict) {
        s.apply_to(
            secret
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new),
        );
    }
    let scope = Scope::from_annotations(secret.metadata.annotations.as_ref());
    if scope != Scope::ClusterWide {
        let ns = secret.metadata.namespace.clone().unwrap_or_default();
        match opts.namespace.filter(|n| !n.is_empty()) {
            Some(flag) if !ns.is_empty() && ns != flag => {
                return Err(Error::NamespaceMismatch {
                    input: ns,
                    flag: flag.to_string(),
                });
            }
            Some(flag) if ns.is_empty() => secret.metadata.namespace = Some(flag.to_string()),
            None if ns.is_empty() && !opts.default_namespace.is_empty() => {
                secret.metadata.namespace = Some(opts.default_namespace.to_string())
            }
            _ => {}
        }
        if secret
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            return Err(Error::MissingNamespace);
        }
    }
    Ok(scope)
}

/// Seals every item of `secret` (data, then stringData, which wins) for `key`, and records
/// `key`'s fingerprint in the top-level [`kseal_crds::ANNOTATION_SEALED_WITH`] annotation when there
/// is at least one item (see [`crate::hint`]). No seal records: this is what kubeseal writes
/// (plus the hint), and what the controller's `/v1/rotate` answers.
pub fn seal_secret<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    key: &PublicKey,
    secret: Secret,
    opts: &SealOptions<'_>,
) -> Result<SealedSecret, Error> {
    seal_inner(rng, Sealer::Bitnami(key), secret, opts, false)
}

/// Seals every item of `secret` as [`seal_secret`] does, for `sealer` (either format), and also
/// writes one seal record per item in the top-level [`kseal_crds::ANNOTATION_SEAL_RECORDS`]
/// annotation (see [`crate::seal_record`]). The sealing-key hint names every key of `sealer`.
/// This is what `kseal seal` writes.
pub fn seal_secret_with<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    sealer: Sealer<'_>,
    secret: Secret,
    opts: &SealOptions<'_>,
) -> Result<SealedSecret, Error> {
    seal_inner(rng, sealer, secret, opts, true)
}

fn seal_inner<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    sealer: Sealer<'_>,
    mut secret: Secret,
    opts: &SealOptions<'_>,
    with_records: bool,
) -> Result<SealedSecret, Error> {
    let empty = secret.data.as_ref().is_none_or(|d| d.is_empty())
        && secret.string_data.as_ref().is_none_or(|d| d.is_empty());
    if empty && !opts.allow_empty_data {
        return Err(Error::EmptyData);
    }
    let scope = resolve(&mut secret, opts)?;
    let name = secret.metadata.name.clone().unwrap_or_default();
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let label = scope.label(&namespace, &name);

    let fingerprints = sealer.fingerprints();
    let mut encrypted = BTreeMap::new();
    let mut records = BTreeMap::new();
    let data = secret.data.take().unwrap_or_default();
    let string_data = secret.string_data.take().unwrap_or_default();
    let sealed = data
        .iter()
        .map(|(k, v)| (k, v.0.as_slice()))
        .chain(string_data.iter().map(|(k, v)| (k, v.as_bytes())))
        .try_for_each(|(item, value)| {
            let blob = sealer
                .seal(rng, &label, value)
                .map_err(|source| Error::Seal {
                    item: item.clone(),
                    source,
                })?;
            if with_records {
                records.insert(
                    item.clone(),
                    SealRecord::new(&fingerprints, &label, item, &blob),
                );
            }
            encrypted.insert(item.clone(), STANDARD.encode(blob));
            Ok::<(), Error>(())
        });
    crate::scrub::maps(data, string_data);
    sealed?;

    let template_meta = template_metadata(secret.metadata);
    let mut top = ObjectMeta {
        name: Some(name),
        namespace: Some(namespace).filter(|n| !n.is_empty()),
        ..Default::default()
    };
    if let Some(a) = scope.annotation() {
        top.annotations = Some(BTreeMap::from([(a.to_string(), "true".to_string())]));
    }
    let mut ss = SealedSecret {
        metadata: top,
        spec: SealedSecretSpec {
            template: SecretTemplateSpec {
                metadata: Some(template_meta),
                type_: secret.type_,
                immutable: secret.immutable,
                data: None,
            },
            data: None,
            encrypted_data: encrypted,
        },
        status: None,
    };
    if !ss.spec.encrypted_data.is_empty() {
        crate::hint::add_sealed_with(&mut ss, &fingerprints);
    }
    crate::seal_record::add_records(&mut ss, records);
    Ok(ss)
}

/// The input's metadata as kubeseal copies it into the template: last-applied annotations
/// removed, ownerReferences and server-set fields cleared.
pub fn template_metadata(mut m: ObjectMeta) -> ObjectMeta {
    if let Some(a) = m.annotations.as_mut() {
        for k in DROPPED_ANNOTATIONS {
            a.remove(k);
        }
        if a.is_empty() {
            m.annotations = None;
        }
    }
    m.owner_references = None;
    m.self_link = None;
    m.uid = None;
    m.resource_version = None;
    m.generation = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use kseal_crypto::{AgeIdentity, Keyring};

    #[test]
    fn age_sealing_writes_the_hint_and_a_record_per_item_and_opens_with_each_identity() {
        let ids = [AgeIdentity::generate(), AgeIdentity::generate()];
        let recipients: Vec<AgeRecipient> = ids.iter().map(AgeIdentity::to_public).collect();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "data": {"a": "MQ=="},
            "stringData": {"a": "wins", "b": "2"}
        }))
        .unwrap();
        let opts = SealOptions {
            default_namespace: "default",
            ..Default::default()
        };
        let ss = seal_secret_with(
            &mut rand::rngs::OsRng,
            Sealer::Age(&recipients),
            secret,
            &opts,
        )
        .unwrap();
        let fps = Sealer::Age(&recipients).fingerprints();
        assert_eq!(crate::sealed_with(&ss), fps);
        let records = crate::seal_record::records_of(&ss).unwrap().unwrap();
        assert_eq!(records.len(), 2);
        for (item, value) in &ss.spec.encrypted_data {
            let blob = STANDARD.decode(value).unwrap();
            let r: SealRecord = records[item].parse().unwrap();
            assert!(r.matches(item, &blob));
            assert_eq!(r.fingerprints, fps);
            assert_eq!(r.label, b"prod/db");
        }
        for id in ids {
            let mut k = Keyring::new();
            k.insert_age_identity(id);
            let u = crate::unseal::unseal(&ss, &k, &[], Default::default()).unwrap();
            let data = u.secret.data.as_ref().unwrap();
            assert_eq!(data["a"].0, b"wins");
            assert_eq!(data["b"].0, b"2");
        }
        // seal_secret (kubeseal's output, the controller's /v1/rotate) writes no records.
    }
}
