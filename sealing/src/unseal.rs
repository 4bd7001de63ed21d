//! SealedSecret → Secret (the controller's "Unseal", docs/compatibility.md, “Reconciling” step 4, and kubeseal's
//! `--recovery-unseal`).

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kseal_crypto::{Fingerprint, Keyring, Scope, SecretBytes};

use crate::error::ItemErrors;
use crate::Error;
use kseal_crds::{SealedSecret, ANNOTATION_SKIP_SET_OWNER_REFERENCES, API_VERSION, KIND};

/// Unsealing switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnsealOptions {
    /// Accept the deprecated v1 `spec.data` (the controller's default is true; kubeseal's recovery false).
    pub accept_deprecated_v1_data: bool,
}

/// A Secret made from a SealedSecret, and which keys opened it. `Debug` redacts the data.
pub struct Unsealed {
    /// The Secret to write. Its data is plaintext: call [`Unsealed::scrub`] or drop it promptly.
    pub secret: Secret,
    /// Fingerprints of the keys that opened the items.
    pub keys_used: BTreeSet<Fingerprint>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("secret", &RedactedSecret(&self.secret))
            .field("keys_used", &self.keys_used)
            .finish()
    }
}

/// Shows a Secret for `Debug` without its values: metadata, type and the names of the items.
pub struct RedactedSecret<'a>(pub &'a Secret);

impl std::fmt::Debug for RedactedSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let items: Vec<&String> = s
            .data
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .chain(s.string_data.iter().flatten().map(|(k, _)| k))
            .collect();
        f.debug_struct("Secret")
            .field("metadata", &s.metadata)
            .field("type", &s.type_)
            .field("immutable", &s.immutable)
            .field("items", &items)
            .finish_non_exhaustive()
    }
}

impl Unsealed {
    /// Overwrites the plaintext in the Secret.
    pub fn scrub(mut self) {
        crate::scrub::secret(&mut self.secret);
    }
}

/// The scope and OAEP label a SealedSecret opens under: always from its top-level metadata.
pub fn label_of(ss: &SealedSecret) -> (Scope, Vec<u8>) {
    let scope = Scope::from_annotations(ss.metadata.annotations.as_ref());
    let ns = ss.metadata.namespace.as_deref().unwrap_or("");
    let name = ss.metadata.name.as_deref().unwrap_or("");
    (scope, scope.label(ns, name))
}

/// Opens every item of `ss` with `keyring` and builds the Secret. `hint` names the keys to try
/// first, usually [`crate::sealed_with`]`(ss)`; `&[]` tries every key in keyring order (see
/// [`Keyring::open_with_hint`]). A wrong hint only costs time, never a failure.
pub fn unseal(
    ss: &SealedSecret,
    keyring: &Keyring,
    hint: &[Fingerprint],
    opts: UnsealOptions,
) -> Result<Unsealed, Error> {
    crate::limits::check(ss)?;
    let (scope, label) = label_of(ss);
    // An age value that opened under another label: say what it must be sealed for now.
    let item_error = |e: kseal_crypto::Error| match e {
        kseal_crypto::Error::LabelMismatch => format!(
            "{e}, not for {}",
            scope.describe_label(
                ss.metadata.namespace.as_deref().unwrap_or(""),
                ss.metadata.name.as_deref().unwrap_or("")
            )
        ),
        e => e.to_string(),
    };
    let mut keys_used = BTreeSet::new();
    let mut data: BTreeMap<String, SecretBytes> = BTreeMap::new();
    let mut base = Secret::default();

    if let Some(v1) = ss.spec.data.as_deref() {
        if !ss.spec.encrypted_data.is_empty() {
            return Err(Error::BothDataFields);
        }
        if !opts.accept_deprecated_v1_data {
            return Err(Error::DeprecatedData);
        }
        let blob = STANDARD
            .decode(v1)
            .map_err(|e| Error::Items(single("data", go_base64_error(&e))))?;
        let (plain, fp) = keyring
            .open_with_hint(hint, &label, &blob)
            .map_err(|e| Error::Items(single("data", item_error(e))))?;
        keys_used.insert(fp);
        let mut s: Secret = crate::redact::from_json_slice(plain.expose())
            .map_err(Error::DeprecatedDataNotSecret)?;
        for (k, v) in s.data.take().unwrap_or_default() {
            data.insert(k, SecretBytes::new(v.0));
        }
        base = s;
    } else {
        let mut errors = ItemErrors::default();
        // Keys that opened an item are tried first for the next ones (items of one object
        // are usually sealed together). Once an item has failed with every key, the object
        // fails anyway, so the other items are only tried with keys already known to work
        // here: the private-key work per object stays near items + keys, not items × keys.
        let mut learned: Vec<Fingerprint> = hint.to_vec();
        let mut exhausted = false;
        for (item, value) in &ss.spec.encrypted_data {
            let blob = match STANDARD.decode(value) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(item, go_base64_error(&e));
                    continue;
                }
            };
            let opened = if exhausted {
                keyring.open_only(&learned, &label, &blob)
            } else {
                keyring.open_with_hint(&learned, &label, &blob)
            };
            match opened {
                Ok((plain, fp)) => {
                    if !learned.contains(&fp) {
                        learned.push(fp.clone());
                    }
                    keys_used.insert(fp);
                    data.insert(item.clone(), plain);
                }
                Err(e) => {
                    exhausted |= matches!(e, kseal_crypto::Error::NoKeyCouldDecrypt);
                    errors.push(item, item_error(e));
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Items(errors));
        }
    }

    if let Some(templates) = ss.spec.template.data.as_ref().filter(|t| !t.is_empty()) {
        let rendered = crate::template::render_all(templates, &data)?;
        data.extend(rendered);
    }

    let mut meta = ss.spec.template.metadata.clone().unwrap_or(base.metadata);
    meta.namespace = ss.metadata.namespace.clone();
    meta.name = ss.metadata.name.clone();
    let skip_owner = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SKIP_SET_OWNER_REFERENCES))
        .is_some_and(|v| v == "true");
    meta.owner_references = if skip_owner {
        None
    } else {
        Some(vec![owner_reference(ss)])
    };

    let secret = Secret {
        metadata: meta,
        type_: ss.spec.template.type_.clone().or(base.type_),
        immutable: ss.spec.template.immutable.or(base.immutable),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.expose().to_vec())))
                .collect(),
        ),
        string_data: None,
    };
    Ok(Unsealed { secret, keys_used })
}

/// The controller ownerReference a Secret gets (no blockOwnerDeletion, as Bitnami).
pub fn owner_reference(ss: &SealedSecret) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        name: ss.metadata.name.clone().unwrap_or_default(),
        uid: ss.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn single(item: &str, msg: String) -> ItemErrors {
    let mut e = ItemErrors::default();
    e.push(item, msg);
    e
}

/// Go's `base64.CorruptInputError` text, `illegal base64 data at input byte N`.
pub fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            *at
        }
        base64::DecodeError::InvalidLength(len) => *len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kseal_crypto::{seal_age, AgeIdentity};

    #[test]
    fn after_an_item_fails_with_every_key_only_known_keys_are_tried() {
        let (id1, id2) = (AgeIdentity::generate(), AgeIdentity::generate());
        let stranger = AgeIdentity::generate();
        let blob =
            |id: &AgeIdentity| STANDARD.encode(seal_age(&[id.to_public()], b"ns/s", b"v").unwrap());
        let mut keyring = Keyring::new();
        let (b1, b2, bs) = (blob(&id1), blob(&id2), blob(&stranger));
        keyring.insert_age_identity(id1);
        keyring.insert_age_identity(id2);
        let mut ss = SealedSecret::default();
        ss.metadata.namespace = Some("ns".into());
        ss.metadata.name = Some("s".into());
        // "a" opens with id1 (learned); "b" fails with every key; "c" (id1) is still opened,
        // "d" (id2, never seen here) is not tried any more: the object fails either way.
        for (k, v) in [("a", &b1), ("b", &bs), ("c", &b1), ("d", &b2)] {
            ss.spec.encrypted_data.insert(k.into(), v.clone());
        }
        let e = unseal(&ss, &keyring, &[], UnsealOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "no key could decrypt secret (b, d)");
        ss.spec.encrypted_data.remove("b");
        let ok = unseal(&ss, &keyring, &[], UnsealOptions::default()).unwrap();
        assert_eq!(ok.keys_used.len(), 2);
    }

    #[test]
    fn a_moved_age_item_names_the_item_and_what_it_must_be_sealed_for() {
        let id = AgeIdentity::generate();
        let mut keyring = Keyring::new();
        keyring.insert_age_identity(AgeIdentity::generate());
        let blob = seal_age(&[id.to_public()], b"prod/db", b"v").unwrap();
        keyring.insert_age_identity(id);
        let mut ss = SealedSecret::default();
        ss.metadata.namespace = Some("dev".into());
        ss.metadata.name = Some("db".into());
        ss.spec
            .encrypted_data
            .insert("password".into(), STANDARD.encode(&blob));
        let e = unseal(&ss, &keyring, &[], UnsealOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sealed for another name, namespace or scope, not for strict scope, label \"dev/db\" (password)"
        );
    }
}
