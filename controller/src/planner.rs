//! The reconcile decision, as a pure function (reference §4.4).
//!
//! `plan` decides first, with no I/O: unseal the SealedSecret, compare with the Secret that
//! exists, and return exactly one write ([`Write`]), the status to record (if it must be
//! written), the event to emit and whether to retry. The applier then performs that one write.
//! Time is a parameter, so condition timestamps are deterministic in tests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kseal_crds::unseal::{unseal, UnsealOptions};
use kseal_crds::{
    SealedSecret, SealedSecretCondition, SealedSecretStatus, ANNOTATION_MANAGED, ANNOTATION_PATCH,
};
use kseal_crypto::{Fingerprint, Keyring};

/// The condition type the controller writes.
pub const CONDITION_SYNCED: &str = "Synced";

/// Controller switches that change decisions.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// `--accept-deprecated-v1-data` (default true).
    pub accept_deprecated_v1_data: bool,
    /// `--update-status` (default true).
    pub update_status: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            accept_deprecated_v1_data: true,
            update_status: true,
        }
    }
}

/// The single API write a reconcile performs.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Nothing to write: the Secret already is what the SealedSecret says (or must not be touched).
    Nothing,
    /// Create this Secret.
    Create(Secret),
    /// Replace the existing Secret with this one (it carries the resourceVersion that was read).
    Update(Secret),
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
}

impl Failure {
    /// The metric label (Bitnami's values).
    pub fn metric_reason(self) -> &'static str {
        match self {
            Failure::Unseal => "unseal",
            Failure::Unmanaged => "unmanaged",
            Failure::Immutable => "update",
        }
    }

    /// The event reason (Bitnami's values).
    pub fn event_reason(self) -> &'static str {
        match self {
            Failure::Unseal => "ErrUnsealFailed",
            Failure::Unmanaged | Failure::Immutable => "ErrUpdateFailed",
        }
    }

    /// The condition reason kseal adds (Bitnami writes none).
    pub fn condition_reason(self) -> &'static str {
        match self {
            Failure::Unseal => "UnsealFailed",
            Failure::Unmanaged => "SecretNotManaged",
            Failure::Immutable => "SecretImmutable",
        }
    }

    /// Whether retrying can help without a change to an object (Bitnami does not retry the
    /// immutable error; an unmanaged Secret or a missing key can be fixed by someone else).
    pub fn retry(self) -> bool {
        !matches!(self, Failure::Immutable)
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

/// Decides what to do for `ss` given the Secret that exists (if any).
pub fn plan(
    ss: &SealedSecret,
    existing: Option<&Secret>,
    keyring: &Keyring,
    now: Timestamp,
    opts: PlanOptions,
) -> Plan {
    let unsealed = match unseal(
        ss,
        keyring,
        None,
        UnsealOptions {
            accept_deprecated_v1_data: opts.accept_deprecated_v1_data,
        },
    ) {
        Ok(u) => u,
        Err(e) => return failed(ss, now, opts, Failure::Unseal, e.to_string(), Vec::new()),
    };
    let keys_used: Vec<Fingerprint> = unsealed.keys_used.iter().cloned().collect();
    let desired = unsealed.secret;

    let write = match existing {
        None => Write::Create(desired),
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
                    opts,
                    Failure::Unmanaged,
                    format!("failed update: {msg}"),
                    keys_used,
                );
                plan.event.message = msg; // Bitnami's event omits the "failed update: " prefix
                return plan;
            }
            let merged = merge(current, desired, patch, managed);
            if merged == *current {
                Write::Nothing
            } else if current.immutable == Some(true) && merged.data != current.data {
                let ns = ss.metadata.namespace.as_deref().unwrap_or("");
                let name = ss.metadata.name.as_deref().unwrap_or("");
                let msg = format!("Error updating {ns}/{name}: the target Secret is immutable. Once a Secret is marked as immutable, it is not possible to revert this change nor to mutate the contents of the data field. You can only delete and recreate the Secret.");
                return failed(ss, now, opts, Failure::Immutable, msg, keys_used);
            } else {
                Write::Update(merged)
            }
        }
    };
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

/// Merges the desired Secret into the existing one (reference §4.4 step 7): with `patch`, data,
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

fn failed(
    ss: &SealedSecret,
    now: Timestamp,
    opts: PlanOptions,
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

/// The status to write, or `None` when the stored one is already right (reference §2: written
/// only when the condition's status changes or observedGeneration lags). kseal also rewrites it
/// when the message or reason changed, so a stale error never stays after a different one.
fn status_update(
    ss: &SealedSecret,
    now: Timestamp,
    opts: PlanOptions,
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
