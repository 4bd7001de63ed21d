//! The validating admission webhook (docs/controller.md, "Admission webhook"): a SealedSecret
//! this cluster cannot open is refused when it is applied, not found later in a status.
//!
//! [`decide`] is the whole decision, a pure function of (the object, the object it replaces, the
//! keys, the cutoff time): no I/O, so every rule is tested without a cluster. [`http`] answers
//! the API server's AdmissionReviews with it (on the webhook's TLS port, sharing the private-key
//! work limit and the `/v1/verify` rate limiter); [`tls`] keeps the serving certificate in a
//! Secret and its CA in the ValidatingWebhookConfiguration.
//!
//! # What is checked, in order (the first refusal answers)
//!
//! 1. the bounds of `kseal_sealing::limits` (item count, name and value sizes, template sizes),
//!    before any other work;
//! 2. in the controller's own namespace, that the object cannot produce or take over one of the
//!    controller's key Secrets ([`ProtectedKeys`]);
//! 3. every `spec.template.data` source parses and uses only supported constructs; it is never
//!    rendered, so no answer depends on a value (the oracle of `crate::http::api`'s docs);
//! 4. every item opens with one of this cluster's keys (RSA or age, the sealing-key hint first)
//!    under the object's own name, namespace and scope. A refusal names each item and why, in
//!    the words of `kseal verify`: the item's seal record (public data, see
//!    `kseal_sealing::seal_record`) tells a moved, renamed or re-scoped object from one sealed
//!    for another cluster's key.
//!
//! Admitted objects may carry warnings: items without a seal record (kubeseal's), and items
//! opened with a key older than `--key-cutoff-time` (re-seal them with `kseal reencrypt`).
//!
//! An update that changes neither the spec nor what the items open under (name, namespace,
//! scope annotations), and an object being deleted, are admitted without any work: metadata
//! edits and finalizer removal never depend on the keys.
//!
//! No answer ever holds a value: decrypted items are scrubbed in the blocking task that opened
//! them, messages name items, fields and bounds only.

pub mod http;
pub mod tls;

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::jiff::Timestamp;
use kseal_crds::SealedSecret;
use kseal_crypto::Fingerprint;
use kseal_sealing::seal_record::{records_of, SealRecord, SealedFor};
use kseal_sealing::unseal::{label_of, UnsealOptions};

use crate::keys::registry::KeyRegistry;
use crate::planner::ProtectedKeys;

/// Warnings are cut to this many characters (the API server may truncate longer ones).
pub const MAX_WARNING_CHARS: usize = 250;

/// At most this many item names are listed in one warning.
const MAX_LISTED_ITEMS: usize = 5;

/// What the webhook answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None`: admitted; `Some(message)`: refused, with the reason (names items, never values).
    pub refusal: Option<String>,
    /// Admission warnings, each at most [`MAX_WARNING_CHARS`].
    pub warnings: Vec<String>,
    /// True when the decision decrypted items (it needed a permit of the private-key work
    /// limit); false for the checks that came before.
    pub decrypted: bool,
}

impl Decision {
    fn admit() -> Self {
        Decision {
            refusal: None,
            warnings: Vec::new(),
            decrypted: false,
        }
    }

    fn refuse(message: String) -> Self {
        Decision {
            refusal: Some(message),
            warnings: Vec::new(),
            decrypted: false,
        }
    }

    /// True when admitted.
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// What the decision needs besides the object.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This cluster's keys and age identities.
    pub registry: &'a KeyRegistry,
    /// `--key-cutoff-time`: keys older than this get a warning.
    pub cutoff: Option<Timestamp>,
    /// `--accept-deprecated-v1-data`.
    pub unseal: UnsealOptions,
    /// The controller's key Secrets (its namespace and key prefix).
    pub protected: Option<&'a ProtectedKeys>,
}

/// Whether the update from `old` to `new` can change whether and how the items open: the spec,
/// or what they open under (name, namespace, scope).
pub fn needs_check(new: &SealedSecret, old: Option<&SealedSecret>) -> bool {
    if new.metadata.deletion_timestamp.is_some() {
        return false;
    }
    match old {
        None => true,
        Some(old) => old.spec != new.spec || label_of(old) != label_of(new),
    }
}

/// The checks that need no private key: the bounds, the protected key Secrets and the
/// templates. `Some(refusal)` when one fails.
pub fn precheck(ss: &SealedSecret, protected: Option<&ProtectedKeys>) -> Option<String> {
    let what = describe(ss);
    if let Err(e) = kseal_sealing::limits::check(ss) {
        return Some(format!("{what} refused by kseal: {e}"));
    }
    if let Some(refusal) = protected.and_then(|p| p.refusal(ss, None)) {
        return Some(format!("{what} {refusal}"));
    }
    if let Some(templates) = ss.spec.template.data.as_ref() {
        if let Err(e) = kseal_sealing::template::check_all(templates) {
            return Some(format!("{what} refused by kseal: {e}"));
        }
    }
    None
}

/// The whole decision for a create (`old` None) or an update. Decrypts (an RSA private operation
/// per item, more for items sealed for no key here) only after every cheaper check passed; run
/// it on a blocking thread with a permit of the private-key work limit.
pub fn decide(ss: &mut SealedSecret, old: Option<&SealedSecret>, ctx: Context<'_>) -> Decision {
    if !needs_check(ss, old) {
        return Decision::admit();
    }
    if let Some(refusal) = precheck(ss, ctx.protected) {
        return Decision::refuse(refusal);
    }
    open_and_decide(ss, ctx)
}

/// `SealedSecret ns/name`.
fn describe(ss: &SealedSecret) -> String {
    format!(
        "SealedSecret {}/{}",
        ss.metadata.namespace.as_deref().unwrap_or(""),
        ss.metadata.name.as_deref().unwrap_or("")
    )
}

/// The last step of [`decide`], for a caller that ran [`needs_check`] and [`precheck`] itself:
/// opens every item (never rendering a template) and turns the outcome into a decision.
pub fn open_and_decide(ss: &mut SealedSecret, ctx: Context<'_>) -> Decision {
    let what = describe(ss);
    match crate::http::api::open_items(ss, ctx.registry, ctx.unseal) {
        Ok(unsealed) => {
            let keys_used = unsealed.keys_used.clone();
            unsealed.scrub();
            Decision {
                refusal: None,
                warnings: warnings(ss, &keys_used, ctx),
                decrypted: true,
            }
        }
        Err(kseal_sealing::Error::Items(errors)) => {
            let mut lines = Vec::new();
            for (message, items) in &errors.groups {
                for item in items {
                    lines.push(item_refusal(ss, item, message, ctx.registry));
                }
            }
            Decision {
                decrypted: true,
                ..Decision::refuse(format!(
                    "{what} refused by kseal: this cluster cannot open {}: {}",
                    plural(lines.len(), "item"),
                    lines.join("; ")
                ))
            }
        }
        Err(e) => Decision {
            decrypted: true,
            ..Decision::refuse(format!("{what} refused by kseal: {e}"))
        },
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One item's refusal: `item "x": <unseal's message>` and, when its seal record explains it,
/// why (moved, renamed, another cluster's key) and what to do.
fn item_refusal(ss: &SealedSecret, item: &str, message: &str, registry: &KeyRegistry) -> String {
    let now = SealedFor::of_sealed_secret(ss);
    let hint = match record_for(ss, item) {
        Some(record) => {
            if let Some(mismatch) = record.sealed_for().mismatch(&now) {
                format!("{mismatch}; seal it again for {now}")
            } else if !record
                .fingerprints
                .iter()
                .any(|fp| registry.contains(fp) || registry.contains_age(fp))
            {
                format!(
                    "sealed for {} this cluster does not hold ({}): sealed for another cluster? seal it again with this cluster's certificate (kseal cert)",
                    if record.fingerprints.len() == 1 { "a key" } else { "keys" },
                    short_fingerprints(&record.fingerprints)
                )
            } else {
                "its seal record names this cluster's key and this place: the value is damaged"
                    .to_string()
            }
        }
        None => format!(
            "sealed for another cluster's key, or for another name, namespace or scope than {now}; kseal verify tells which"
        ),
    };
    // unseal's own message for a moved age item already says what it must be sealed for.
    if message == "no key could decrypt secret" {
        format!("item {item:?}: {message} ({hint})")
    } else {
        format!("item {item:?}: {message}")
    }
}

/// The item's own seal record, when it has one that was made for exactly this ciphertext.
fn record_for(ss: &SealedSecret, item: &str) -> Option<SealRecord> {
    let records = records_of(ss).ok().flatten()?;
    let record: SealRecord = records.get(item)?.parse().ok()?;
    let blob = STANDARD.decode(ss.spec.encrypted_data.get(item)?).ok()?;
    record.matches(item, &blob).then_some(record)
}

fn short_fingerprints(fps: &[Fingerprint]) -> String {
    let mut out: Vec<String> = fps.iter().take(2).map(|f| f.to_string()).collect();
    if fps.len() > 2 {
        out.push(format!("and {} more", fps.len() - 2));
    }
    out.join(", ")
}

/// The warnings of an admitted object.
fn warnings(ss: &SealedSecret, keys_used: &BTreeSet<Fingerprint>, ctx: Context<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let records = records_of(ss).ok().flatten().unwrap_or_default();
    let unrecorded: Vec<&str> = ss
        .spec
        .encrypted_data
        .keys()
        .filter(|k| !records.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !unrecorded.is_empty() {
        out.push(format!(
            "{} {} no seal record (sealed by kubeseal?): kseal verify cannot check {} offline",
            list_items(&unrecorded),
            if unrecorded.len() == 1 { "has" } else { "have" },
            if unrecorded.len() == 1 { "it" } else { "them" },
        ));
    }
    if let Some(cutoff) = ctx.cutoff {
        let old_keys: Vec<String> = ctx
            .registry
            .keys()
            .iter()
            .filter(|k| k.ordering_time < cutoff && keys_used.contains(k.key.fingerprint()))
            .map(|k| k.key.fingerprint().to_string())
            .chain(
                ctx.registry
                    .age_identities()
                    .iter()
                    .filter(|i| {
                        i.ordering_time < cutoff && keys_used.contains(i.identity.fingerprint())
                    })
                    .map(|i| i.identity.fingerprint().to_string()),
            )
            .collect();
        if !old_keys.is_empty() {
            out.push(format!(
                "sealed with a key older than the controller's --key-cutoff-time ({}): re-seal it (kseal reencrypt)",
                short_fingerprints(
                    &old_keys
                        .iter()
                        .filter_map(|f| f.parse().ok())
                        .collect::<Vec<Fingerprint>>()
                )
            ));
        }
    }
    out.into_iter()
        .map(|w| truncate(w, MAX_WARNING_CHARS))
        .collect()
}

/// `item "a"`, `items "a", "b"`, `items "a", "b", … (7 in all)`.
fn list_items(items: &[&str]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(MAX_LISTED_ITEMS)
        .map(|i| format!("{i:?}"))
        .collect();
    let mut text = format!(
        "{} {}",
        if items.len() == 1 { "item" } else { "items" },
        shown.join(", ")
    );
    if items.len() > MAX_LISTED_ITEMS {
        text.push_str(&format!(", … ({} in all)", items.len()));
    }
    text
}

fn truncate(mut s: String, max: usize) -> String {
    if s.chars().count() > max {
        s = s.chars().take(max - 1).collect();
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests;
