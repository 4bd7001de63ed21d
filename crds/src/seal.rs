//! Secret → SealedSecret, following kubeseal's rules (reference §1.6 and §3.4) exactly.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_crypto::{seal_with_rng, PublicKey, Scope};
use rand::{CryptoRng, RngCore};

use crate::{Error, SealedSecret, SealedSecretSpec, SecretTemplateSpec};

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
/// `key`'s fingerprint in the top-level [`crate::ANNOTATION_SEALED_WITH`] annotation when there
/// is at least one item (see [`crate::hint`]).
pub fn seal_secret<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    key: &PublicKey,
    mut secret: Secret,
    opts: &SealOptions<'_>,
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

    let mut encrypted = BTreeMap::new();
    let data = secret.data.take().unwrap_or_default();
    let string_data = secret.string_data.take().unwrap_or_default();
    for (item, value) in data
        .iter()
        .map(|(k, v)| (k, v.0.as_slice()))
        .chain(string_data.iter().map(|(k, v)| (k, v.as_bytes())))
    {
        let blob = seal_with_rng(rng, key, &label, value).map_err(|source| Error::Seal {
            item: item.clone(),
            source,
        })?;
        encrypted.insert(item.clone(), STANDARD.encode(blob));
    }
    scrub(data, string_data);

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
        crate::hint::add_sealed_with(&mut ss, [key.fingerprint()]);
    }
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

/// Overwrites plaintext buffers before they are freed. k8s-openapi's types cannot zeroize on
/// drop, so every path that held plaintext in them calls this.
pub fn scrub(
    mut data: BTreeMap<String, k8s_openapi::ByteString>,
    mut string_data: BTreeMap<String, String>,
) {
    use zeroize::Zeroize;
    for v in data.values_mut() {
        v.0.zeroize();
    }
    for v in string_data.values_mut() {
        v.zeroize();
    }
}
