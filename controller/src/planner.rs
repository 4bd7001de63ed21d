//! The reconcile decision, as a pure function (docs/compatibility.md, “Reconciling”).
//!
//! `plan` decides first, with no I/O: unseal the SealedSecret, compare with the Secret that
//! exists, and return exactly one write ([`Write`]), the status to record (if it must be
//! written), the event to emit and whether to retry. The applier then performs that one write;
//! when the API refuses it, [`plan_write_failure`] decides what to report instead.
//! Time is a parameter, so condition timestamps are deterministic in tests.
//!
//! # The restart path
//!
//! Every Secret the controller writes carries an ownership mark, [`ANNOTATION_OWNERSHIP`]:
//! `v1;key=<fingerprint>;mac=<base64>`, an HMAC (keyed from a controller private key, see
//! `kseal_crypto::ownership`) over a digest of the SealedSecret's public inputs (uid, name,
//! namespace, scope, spec) and the Secret's content (type, data, labels, other annotations,
//! ownerReferences, immutable). When the stored mark verifies, the Secret is exactly what this
//! controller made from this unchanged SealedSecret, and `plan` returns without decrypting
//! anything. Any edit of the Secret, any change of the SealedSecret, or a mark by a key the
//! controller does not hold fails the check and takes the full path, which restores the Secret.
//! The MAC reveals nothing about the values: without the key a guess cannot be tested.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kseal_crds::{
    SealedSecret, SealedSecretCondition, SealedSecretStatus, ANNOTATION_MANAGED, ANNOTATION_PATCH,
};
use kseal_crypto::ownership::{ownership_mac, verify_ownership_mac};
use kseal_crypto::{Fingerprint, Keyring, PrivateKey};
use kseal_sealing::unseal::{unseal, UnsealOptions};

/// The ownership annotation on a Secret (see the module docs), re-exported for the tests.
pub use kseal_crds::ANNOTATION_OWNERSHIP;

/// The condition type the controller writes.
pub const CONDITION_SYNCED: &str = "Synced";

/// Controller switches that change decisions.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--accept-deprecated-v1-data` (default true).
    pub accept_deprecated_v1_data: bool,
    /// `--update-status` (default true).
    pub update_status: bool,
    /// The controller's own key Secrets, which no SealedSecret may produce or touch.
    pub protected: Option<std::sync::Arc<ProtectedKeys>>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            accept_deprecated_v1_data: true,
            update_status: true,
            protected: None,
        }
    }
}

/// Where the controller keeps its keys: Secrets in `namespace` labelled as RSA keys or age
/// identities, or named `key_prefix…` (the legacy key is named exactly the prefix; generated
/// keys and identities start with it). A SealedSecret there may not make such a Secret, or it
/// would hand the controller a key of its author's choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedKeys {
    /// The controller's namespace.
    pub namespace: String,
    /// `--key-prefix`.
    pub key_prefix: String,
}

impl ProtectedKeys {
    /// Why `ss` may not produce its Secret (checked before anything is decrypted), if it may not.
    pub fn refusal(&self, ss: &SealedSecret, existing: Option<&Secret>) -> Option<String> {
        if ss.metadata.namespace.as_deref() != Some(self.namespace.as_str()) {
            return None;
        }
        let key_labels = [
            kseal_sealing::key_secret::KEY_LABEL,
            kseal_sealing::key_secret::AGE_IDENTITY_LABEL,
        ];
        let template_labels = ss
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref());
        if let Some(l) = key_labels
            .iter()
            .find(|l| template_labels.is_some_and(|t| t.contains_key(**l)))
        {
            return Some(format!(
                "refused: spec.template.metadata.labels has {l}, which marks the controller's keys in its namespace {}",
                self.namespace
            ));
        }
        let name = ss.metadata.name.as_deref().unwrap_or("");
        if name.starts_with(&self.key_prefix) {
            return Some(format!(
                "refused: in the controller's namespace {}, names starting with {:?} are reserved for its keys",
                self.namespace, self.key_prefix
            ));
        }
        let existing_labels = existing.and_then(|e| e.metadata.labels.as_ref());
        if key_labels
            .iter()
            .any(|l| existing_labels.is_some_and(|t| t.contains_key(*l)))
        {
            return Some(
                "refused: the existing Secret of that name is one of the controller's keys"
                    .to_string(),
            );
        }
        None
    }
}

/// The single API write a reconcile performs. `Debug` redacts the Secret's values.
#[derive(Clone, PartialEq)]
pub enum Write {
    /// Nothing to write: the Secret already is what the SealedSecret says (or must not be touched).
    Nothing,
    /// Create this Secret.
    Create(Secret),
    /// Replace the existing Secret with this one (it carries the resourceVersion that was read).
    Update(Secret),
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use kseal_sealing::unseal::RedactedSecret;
        match self {
            Write::Nothing => f.write_str("Nothing"),
            Write::Create(s) => f.debug_tuple("Create").field(&RedactedSecret(s)).finish(),
            Write::Update(s) => f.debug_tuple("Update").field(&RedactedSecret(s)).finish(),
        }
    }
}

/// Why a reconcile failed; also the `reason` label of `unseal_errors_total` and the condition
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Decryption or template rendering failed.
    Unseal,
    /// A Secret of that name exists and the SealedSecret may not take it over.
    Unmanaged,
    /// The existing Secret is immutable and its data would change.
    Immutable,
    /// The SealedSecret is over a bound of `kseal_sealing::limits` (not retried).
    Limit,
    /// The Secret would be, or would replace, one of the controller's keys (not retried).
    KeySecret,
    /// The API refused the Secret write for another reason than immutability: a conflict (the
    /// Secret changed or appeared since it was read), RBAC, a webhook, the API unreachable
    /// (see [`plan_write_failure`]; retried).
    Write,
}

impl Failure {
    /// The event reason (Bitnami's values).
    pub fn event_reason(self) -> &'static str {
        match self {
            Failure::Unseal | Failure::Limit => "ErrUnsealFailed",
            Failure::Unmanaged | Failure::Immutable | Failure::KeySecret | Failure::Write => {
                "ErrUpdateFailed"
            }
        }
    }

    /// The condition reason kseal adds (Bitnami writes none).
    pub fn condition_reason(self) -> &'static str {
        match self {
            Failure::Unseal => "UnsealFailed",
            Failure::Unmanaged => "SecretNotManaged",
            Failure::Immutable => "SecretImmutable",
            Failure::Limit => "LimitExceeded",
            Failure::KeySecret => "KeySecretRefused",
            Failure::Write => "UpdateFailed",
        }
    }

    /// Whether to retry with backoff. A failed unseal is retried (a key may arrive; a new key
    /// also triggers a pass at once), and so is a refused write (a conflict resolves on the
    /// next read; RBAC or a webhook may be fixed). The immutable error is final (Bitnami). An
    /// unmanaged Secret is not retried either: a later retry would create the Secret as soon as
    /// someone deleted the unmanaged one (Bitnami's IT-11 wants it left absent); a `managed`
    /// annotation added to it triggers a pass through the Secret watch.
    pub fn retry(self) -> bool {
        matches!(self, Failure::Unseal | Failure::Write)
    }
}

/// An event to emit on the SealedSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// `Unsealed`, `ErrUnsealFailed` or `ErrUpdateFailed`.
    pub reason: &'static str,
    /// Human-readable text; never contains secret values.
    pub message: String,
}

/// What a reconcile should do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The write to perform.
    pub write: Write,
    /// `None` on success, else what failed and the message (for the status and logs).
    pub failure: Option<(Failure, String)>,
    /// The status to write, when it must be written (the condition changed or the generation
    /// moved on); `None` when the stored status is already right or status updates are off.
    pub status: Option<SealedSecretStatus>,
    /// The event to emit.
    pub event: EventSpec,
    /// Keys that opened the items (for metrics and logs).
    pub keys_used: Vec<Fingerprint>,
}

fn is_true(annotations: Option<&BTreeMap<String, String>>, key: &str) -> bool {
    annotations
        .and_then(|a| a.get(key))
        .is_some_and(|v| v == "true")
}

/// True when `secret` has a controller ownerReference to this SealedSecret (same UID).
pub fn is_controlled_by(secret: &Secret, ss: &SealedSecret) -> bool {
    let uid = ss.metadata.uid.as_deref().unwrap_or("");
    secret.metadata.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true) && !uid.is_empty() && o.uid == uid && o.kind == kseal_crds::KIND
    })
}

/// Decides what to do for `ss` given the Secret that exists (if any). `mark_with` is the key
/// new ownership marks are made with (the newest key); `None` writes no mark.
pub fn plan(
    ss: &SealedSecret,
    existing: Option<&Secret>,
    keyring: &Keyring,
    mark_with: Option<&PrivateKey>,
    now: Timestamp,
    opts: PlanOptions,
) -> Plan {
    if let Some(done) =
        plan_without_decrypting(ss, &source_digest(ss), existing, keyring, now, &opts)
    {
        return done;
    }
    // Try the keys that `kseal seal` recorded first (one RSA operation per item instead of
    // one per key); any other key is still tried if they do not open an item.
    let hint = kseal_sealing::sealed_with(ss);
    let unsealed = match unseal(
        ss,
        keyring,
        &hint,
        UnsealOptions {
            accept_deprecated_v1_data: opts.accept_deprecated_v1_data,
        },
    ) {
        Ok(u) => u,
        Err(e) => {
            let kind = match e {
                kseal_sealing::Error::Limit(_) => Failure::Limit,
                _ => Failure::Unseal,
            };
            return failed(ss, now, &opts, kind, e.to_string(), Vec::new());
        }
    };
    let keys_used: Vec<Fingerprint> = unsealed.keys_used.iter().cloned().collect();
    let desired = unsealed.secret;

    let write = match existing {
        None => Write::Create(with_ownership(ss, desired, mark_with)),
        Some(current) => {
            let annotations = current.metadata.annotations.as_ref();
            let managed = is_true(annotations, ANNOTATION_MANAGED);
            let patch = is_true(annotations, ANNOTATION_PATCH);
            if !is_controlled_by(current, ss) && !managed && !patch {
                let name = ss.metadata.name.as_deref().unwrap_or("");
                let msg =
                    format!("Resource {name:?} already exists and is not managed by SealedSecret");
                let mut plan = failed(
                    ss,
                    now,
                    &opts,
                    Failure::Unmanaged,
                    format!("failed update: {msg}"),
                    keys_used,
                );
                plan.event.message = msg; // Bitnami's event omits the "failed update: " prefix
                return plan;
            }
            let merged = with_ownership(ss, merge(current, desired, patch, managed), mark_with);
            if merged == *current {
                Write::Nothing
            } else if current.immutable == Some(true) && merged.data != current.data {
                let msg = immutable_message(ss);
                return failed(ss, now, &opts, Failure::Immutable, msg, keys_used);
            } else {
                Write::Update(merged)
            }
        }
    };
    synced(ss, now, &opts, write, keys_used)
}

/// The part of [`plan`] that reads no ciphertext, for a SealedSecret whose
/// `spec.encryptedData` may have been dropped (the controller's watch cache keeps only
/// [`source_digest`] of it): `Some` when the SealedSecret may not produce its Secret, or when the
/// existing Secret's ownership mark verifies for `digest` (nothing to do, nothing decrypted);
/// `None` when [`plan`] must run on the whole SealedSecret.
pub fn plan_without_decrypting(
    ss: &SealedSecret,
    digest: &str,
    existing: Option<&Secret>,
    keyring: &Keyring,
    now: Timestamp,
    opts: &PlanOptions,
) -> Option<Plan> {
    if let Some(reason) = opts
        .protected
        .as_ref()
        .and_then(|p| p.refusal(ss, existing))
    {
        return Some(failed(
            ss,
            now,
            opts,
            Failure::KeySecret,
            reason,
            Vec::new(),
        ));
    }
    let current = existing?;
    ownership_matches(digest, current, keyring)
        .then(|| synced(ss, now, opts, Write::Nothing, Vec::new()))
}

fn synced(
    ss: &SealedSecret,
    now: Timestamp,
    opts: &PlanOptions,
    write: Write,
    keys_used: Vec<Fingerprint>,
) -> Plan {
    Plan {
        write,
        failure: None,
        status: status_update(ss, now, opts, None),
        event: EventSpec {
            type_: "Normal",
            reason: "Unsealed",
            message: "SealedSecret unsealed successfully".to_string(),
        },
        keys_used,
    }
}

/// SHA-256 over the SealedSecret's public inputs (uid, name, namespace, scope, spec): what a
/// Secret is made from, and what its ownership mark binds it to.
pub fn source_digest(ss: &SealedSecret) -> String {
    let m = &ss.metadata;
    let input = serde_json::json!({
        "uid": m.uid,
        "name": m.name,
        "namespace": m.namespace,
        "scope": kseal_sealing::unseal::label_of(ss).0.as_str(),
        "spec": ss.spec,
    });
    kseal_crypto::sha256_hex(&serde_json::to_vec(&input).expect("JSON values serialize"))
}

/// The message an ownership mark signs: the source digest and the Secret's content without the mark.
fn ownership_message(source: &str, secret: &Secret) -> Vec<u8> {
    let mut annotations = secret.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(ANNOTATION_OWNERSHIP);
    // As the API server stores it: no type means Opaque, and empty maps and lists are absent.
    let content = serde_json::json!({
        "source": source,
        "type": secret.type_.as_deref().filter(|t| !t.is_empty()).unwrap_or("Opaque"),
        "immutable": secret.immutable.unwrap_or(false),
        "data": secret.data.clone().unwrap_or_default(),
        "labels": secret.metadata.labels.clone().unwrap_or_default(),
        "annotations": annotations,
        "ownerReferences": secret.metadata.owner_references.clone().unwrap_or_default(),
    });
    serde_json::to_vec(&content).expect("JSON values serialize")
}

/// Adds (or replaces) the ownership annotation for the Secret's final content.
fn with_ownership(ss: &SealedSecret, mut secret: Secret, key: Option<&PrivateKey>) -> Secret {
    let Some(key) = key else { return secret };
    let Ok(mac) = ownership_mac(key, &ownership_message(&source_digest(ss), &secret)) else {
        return secret;
    };
    let value = format!("v1;key={};mac={}", key.fingerprint(), STANDARD.encode(mac));
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_OWNERSHIP.to_string(), value);
    secret
}

/// True when the Secret carries an ownership mark, by a key we hold, that matches the SealedSecret
/// of this source digest and the Secret's current content.
fn ownership_matches(source: &str, secret: &Secret, keyring: &Keyring) -> bool {
    let Some(value) = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_OWNERSHIP))
    else {
        return false;
    };
    let mut fields = value.split(';');
    if fields.next() != Some("v1") {
        return false;
    }
    let (Some(key), Some(mac)) = (
        fields.next().and_then(|f| f.strip_prefix("key=")),
        fields.next().and_then(|f| f.strip_prefix("mac=")),
    ) else {
        return false;
    };
    let (Ok(fp), Ok(mac)) = (key.parse::<Fingerprint>(), STANDARD.decode(mac)) else {
        return false;
    };
    keyring
        .get(&fp)
        .is_some_and(|k| verify_ownership_mac(k, &ownership_message(source, secret), &mac))
}

/// Merges the desired Secret into the existing one (docs/compatibility.md, “Reconciling” step 7): with `patch`, data,
/// labels and annotations are added or overwritten and the rest kept, and ownership is taken only
/// together with `managed`; otherwise data, labels, annotations and ownerReferences are replaced.
/// The type follows the template when it sets one; `immutable` and finalizers are never changed.
fn merge(current: &Secret, desired: Secret, patch: bool, managed: bool) -> Secret {
    let mut out = current.clone();
    let Secret {
        metadata: dm,
        data,
        type_,
        ..
    } = desired;
    if patch {
        let mut d = out.data.take().unwrap_or_default();
        d.extend(data.unwrap_or_default());
        out.data = Some(d);
        let mut l = out.metadata.labels.take().unwrap_or_default();
        l.extend(dm.labels.unwrap_or_default());
        out.metadata.labels = Some(l).filter(|l| !l.is_empty());
        let mut a = out.metadata.annotations.take().unwrap_or_default();
        a.extend(dm.annotations.unwrap_or_default());
        out.metadata.annotations = Some(a).filter(|a| !a.is_empty());
        if managed {
            out.metadata.owner_references = dm.owner_references;
        }
    } else {
        out.data = data;
        out.metadata.labels = dm.labels;
        out.metadata.annotations = dm.annotations;
        out.metadata.owner_references = dm.owner_references;
    }
    if type_.is_some() {
        out.type_ = type_;
    }
    out
}

/// Bitnami's text for new data on an immutable Secret.
fn immutable_message(ss: &SealedSecret) -> String {
    let ns = ss.metadata.namespace.as_deref().unwrap_or("");
    let name = ss.metadata.name.as_deref().unwrap_or("");
    format!("Error updating {ns}/{name}: the target Secret is immutable. Once a Secret is marked as immutable, it is not possible to revert this change nor to mutate the contents of the data field. You can only delete and recreate the Secret.")
}

/// What to report when the API refused the write a [`plan`] decided (`error` is what the
/// create or replace returned): no further write, the failure, its status and event.
///
/// The API's structured answer decides, not its text: 422 `Invalid` with a `FieldValueForbidden`
/// cause on `data` (or `immutable`) is the API server's immutable-Secret rule, reported exactly
/// as the planner's own immutable check is ([`Failure::Immutable`], final). Anything else,
/// a 409 conflict, a 403, another 422 (a changed `type`), a 5xx or no answer at all, is
/// [`Failure::Write`], retried; its message is the API's own message (what Bitnami's
/// `err.Error()` shows), or the client's error when there was no answer.
pub fn plan_write_failure(
    ss: &SealedSecret,
    error: &kube::Error,
    now: Timestamp,
    opts: &PlanOptions,
) -> Plan {
    let (failure, message) = match error {
        kube::Error::Api(status) if refused_as_immutable(status) => {
            (Failure::Immutable, immutable_message(ss))
        }
        _ => (Failure::Write, api_message(error)),
    };
    failed(ss, now, opts, failure, message, Vec::new())
}

/// Whether the API server refused a Secret update under its immutable-Secret rule (a
/// `field.Forbidden` on `data` or `immutable` in its `Invalid` answer).
fn refused_as_immutable(status: &kube::core::Status) -> bool {
    status.code == 422
        && status.reason == "Invalid"
        && status.details.as_ref().is_some_and(|d| {
            d.causes.iter().any(|c| {
                c.reason == "FieldValueForbidden"
                    && matches!(c.field.as_str(), "data" | "immutable")
            })
        })
}

/// The text of an API error for a status or an event: the API's message when it answered
/// (client-go's `err.Error()`), else the client's error.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

fn failed(
    ss: &SealedSecret,
    now: Timestamp,
    opts: &PlanOptions,
    failure: Failure,
    message: String,
    keys_used: Vec<Fingerprint>,
) -> Plan {
    let event_message = match failure {
        Failure::Unseal => format!("Failed to unseal: {message}"),
        _ => message.clone(),
    };
    Plan {
        write: Write::Nothing,
        status: status_update(ss, now, opts, Some((failure, &message))),
        event: EventSpec {
            type_: "Warning",
            reason: failure.event_reason(),
            message: event_message,
        },
        failure: Some((failure, message)),
        keys_used,
    }
}

/// The status to write, or `None` when the stored one is already right (docs/compatibility.md, “The CRD”: written
/// only when the condition's status changes or observedGeneration lags). kseal also rewrites it
/// when the message or reason changed, so a stale error never stays after a different one.
fn status_update(
    ss: &SealedSecret,
    now: Timestamp,
    opts: &PlanOptions,
    failure: Option<(Failure, &str)>,
) -> Option<SealedSecretStatus> {
    if !opts.update_status {
        return None;
    }
    let generation = ss.metadata.generation;
    let previous = ss
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_SYNCED));
    let (status, reason, message) = match failure {
        None => ("True", "Unsealed", None),
        Some((f, m)) => ("False", f.condition_reason(), Some(m.to_string())),
    };
    let same = previous.is_some_and(|p| {
        p.status == status && p.reason.as_deref() == Some(reason) && p.message == message
    });
    let observed = ss.status.as_ref().and_then(|s| s.observed_generation);
    if same && observed == generation {
        return None;
    }
    let now = Time(now);
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone().or(Some(now.clone())),
        _ => Some(now.clone()),
    };
    Some(SealedSecretStatus {
        observed_generation: generation,
        conditions: Some(vec![SealedSecretCondition {
            type_: CONDITION_SYNCED.to_string(),
            status: status.to_string(),
            last_update_time: Some(now),
            last_transition_time: transition,
            reason: Some(reason.to_string()),
            message,
        }]),
    })
}

#[cfg(test)]
mod tests;
