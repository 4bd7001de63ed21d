//! kseal-crds: the `SealedSecret` (`bitnami.com/v1alpha1`) types, the CRD, and the names
//! (annotations, labels, ConfigMaps) that the API between kseal's parts is made of.
//!
//! The types read every SealedSecret Bitnami's tools read (including files with
//! `creationTimestamp: null` and the deprecated `spec.data`) and write exactly what kubeseal
//! writes: `kind` first, Go's field order in JSON ([`meta`]), empty fields left out. The CRD is
//! built in code ([`crd::crd`]) and committed as `crds/sealedsecret-crd.yaml`; a test keeps the
//! two equal. What is done with these types (sealing, unsealing, templates, seal records) lives
//! in the `kseal-sealing` crate.
//!
//! Boundaries: types and constants only: no cryptography, no client, no I/O, no async.

// The CRD literal in `crd.rs` nests deeper than `json!`'s default recursion limit.
#![recursion_limit = "256"]

pub mod crd;
pub mod meta;

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// API group of the CRD.
pub const GROUP: &str = "bitnami.com";
/// The only version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every SealedSecret.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// Kind.
pub const KIND: &str = "SealedSecret";
/// Resource plural.
pub const PLURAL: &str = "sealedsecrets";

/// Annotation prefix of every annotation the API defines.
pub const ANNOTATION_PREFIX: &str = "sealedsecrets.bitnami.com/";
/// On an existing Secret: the SealedSecret may take it over.
pub const ANNOTATION_MANAGED: &str = "sealedsecrets.bitnami.com/managed";
/// Set on the controller's renewal ConfigMap ([`renewal_configmap`]) to ask it for a new key
/// (kseal; any new value, by convention the current time).
pub const ANNOTATION_RENEW_REQUESTED: &str = "sealedsecrets.kseal.dev/renew-requested-at";

/// The ConfigMap that carries key renewal requests, next to the certificate ConfigMap
/// `cert_configmap`: `<cert_configmap>-renewal`. Requests live in their own object so that
/// whoever may ask for a renewal (the key-renewer Role) has no write access to the published
/// certificate that every `kseal seal` trusts.
pub fn renewal_configmap(cert_configmap: &str) -> String {
    format!("{cert_configmap}-renewal")
}
/// The last renewal request the controller honoured (kseal).
pub const ANNOTATION_RENEW_HANDLED: &str = "sealedsecrets.kseal.dev/renew-handled-at";
/// On an existing Secret: merge into it instead of replacing it.
pub const ANNOTATION_PATCH: &str = "sealedsecrets.bitnami.com/patch";
/// On the template: do not set an ownerReference on the Secret.
pub const ANNOTATION_SKIP_SET_OWNER_REFERENCES: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";
/// kseal's own, on a SealedSecret's top-level metadata only (never the template, so it is not
/// copied to the Secret): comma-separated, sorted fingerprints (`SHA256:...`) of the keys that
/// sealed its items, which the controller tries first. See `kseal_sealing::hint`.
pub const ANNOTATION_SEALED_WITH: &str = "sealedsecrets.kseal.dev/sealed-with";
/// kseal's own, on a SealedSecret's top-level metadata only: one seal record per item (JSON,
/// item name → `v1;<fingerprints>;<label>;<digest>`), which reveals nothing about the values.
/// See `kseal_sealing::seal_record`.
pub const ANNOTATION_SEAL_RECORDS: &str = "sealedsecrets.kseal.dev/seal-records";
/// kseal's own, on every Secret the controller writes: its ownership mark,
/// `v1;key=<fingerprint>;mac=<base64>`, an HMAC over what the Secret was made from (see
/// `kseal_crypto::ownership` and the controller's planner). The key name predates the term
/// "ownership mark" and is kept: marks already stored on Secrets use it.
pub const ANNOTATION_OWNERSHIP: &str = "sealedsecrets.kseal.dev/record";

/// A SealedSecret.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SealedSecret {
    /// Standard object metadata. The scope label is built from its name, namespace and annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the Secret should be.
    #[serde(default)]
    pub spec: SealedSecretSpec,
    /// Written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SealedSecretStatus>,
}

impl Serialize for SealedSecret {
    /// `kind`, `apiVersion`, `metadata`, `spec`, `status`: kubeseal's order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 4 + usize::from(self.status.is_some());
        let mut st = s.serialize_struct("SealedSecret", n)?;
        st.serialize_field("kind", KIND)?;
        st.serialize_field("apiVersion", API_VERSION)?;
        st.serialize_field("metadata", &meta::GoObjectMeta(&self.metadata))?;
        st.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            st.serialize_field("status", status)?;
        }
        st.end()
    }
}

/// `spec` of a SealedSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// The Secret to create: metadata, type, immutable, templated data. Always written (Go
    /// cannot omit a struct).
    #[serde(default, deserialize_with = "null_as_default")]
    pub template: SecretTemplateSpec,
    /// Deprecated v1 format: one blob holding the whole JSON-encoded Secret (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Item name → base64 of one sealed value. Always written, `{}` when empty.
    #[serde(default, deserialize_with = "tolerant_encrypted_data")]
    pub encrypted_data: BTreeMap<String, String>,
}

/// `spec.template`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretTemplateSpec {
    /// Metadata copied onto the Secret (labels, annotations, finalizers, ...). Written as `{}`
    /// when absent; read as absent when `null`.
    #[serde(default, serialize_with = "meta::serialize_opt")]
    pub metadata: Option<ObjectMeta>,
    /// Secret type, e.g. `kubernetes.io/dockerconfigjson`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Immutable Secret (absent ≠ false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Templated data: item name → Go text/template source over the decrypted items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// `status`, written by the controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Exactly one condition of type `Synced` in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<SealedSecretCondition>>,
}

/// One status condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// Last time `status` changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message (the error text when `False`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Bitnami's `SealedSecretEncryptedData.UnmarshalJSON`: values that are not strings are dropped
/// rather than failing the whole object.
fn tolerant_encrypted_data<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    if let Some(serde_json::Value::Object(m)) = v {
        for (k, v) in m {
            if let serde_json::Value::String(s) = v {
                out.insert(k, s);
            }
        }
    }
    Ok(out)
}

impl kube_core::Resource for SealedSecret {
    type DynamicType = ();
    type Scope = kube_core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl kube_core::object::HasSpec for SealedSecret {
    type Spec = SealedSecretSpec;
    fn spec(&self) -> &SealedSecretSpec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut SealedSecretSpec {
        &mut self.spec
    }
}

impl kube_core::object::HasStatus for SealedSecret {
    type Status = SealedSecretStatus;
    fn status(&self) -> Option<&SealedSecretStatus> {
        self.status.as_ref()
    }
    fn status_mut(&mut self) -> &mut Option<SealedSecretStatus> {
        &mut self.status
    }
}

impl SealedSecret {
    /// The sealing scope its top-level annotations select (never the template's).
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.annotations.as_ref()
    }
}
