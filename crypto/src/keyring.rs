//! A set of private keys that sealed values are opened with.

use std::sync::Arc;

use crate::age::{self, AgeIdentity};
use crate::envelope::Format;
use crate::hybrid;
use crate::keys::PrivateKey;
use crate::{Error, Fingerprint, SecretBytes};

/// Private keys, in the order they were added, without duplicates (same fingerprint): RSA keys
/// for the Bitnami format and age identities for the age format, kept apart. [`Keyring::open`]
/// picks the set by the blob's [`Format`].
///
/// [`Keyring::len`], [`Keyring::is_empty`], [`Keyring::iter`] and [`Keyring::get`] are about the
/// RSA keys (as before age existed); the `age_*` accessors are about the age identities.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: Vec<Arc<PrivateKey>>,
    age: Vec<Arc<AgeIdentity>>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; returns false (and keeps the first) when a key with the same fingerprint is
    /// already present.
    pub fn insert(&mut self, key: PrivateKey) -> bool {
        self.insert_arc(Arc::new(key))
    }

    /// Adds a shared key; see [`Keyring::insert`].
    pub fn insert_arc(&mut self, key: Arc<PrivateKey>) -> bool {
        if self.get(key.fingerprint()).is_some() {
            return false;
        }
        self.keys.push(key);
        true
    }

    /// The key with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&Arc<PrivateKey>> {
        self.keys.iter().find(|k| k.fingerprint() == fingerprint)
    }

    /// All keys, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PrivateKey>> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without RSA keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds an age identity; returns false (and keeps the first) when one with the same
    /// fingerprint is already present.
    pub fn insert_age_identity(&mut self, identity: AgeIdentity) -> bool {
        self.insert_age_identity_arc(Arc::new(identity))
    }

    /// Adds a shared age identity; see [`Keyring::insert_age_identity`].
    pub fn insert_age_identity_arc(&mut self, identity: Arc<AgeIdentity>) -> bool {
        if self.get_age_identity(identity.fingerprint()).is_some() {
            return false;
        }
        self.age.push(identity);
        true
    }

    /// The age identity whose recipient has this fingerprint.
    pub fn get_age_identity(&self, fingerprint: &Fingerprint) -> Option<&Arc<AgeIdentity>> {
        self.age.iter().find(|i| i.fingerprint() == fingerprint)
    }

    /// All age identities, in insertion order.
    pub fn age_identities(&self) -> impl Iterator<Item = &Arc<AgeIdentity>> {
        self.age.iter()
    }

    /// Number of age identities.
    pub fn age_len(&self) -> usize {
        self.age.len()
    }

    /// True when the keyring holds a key of either format with this fingerprint.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.get(fingerprint).is_some() || self.get_age_identity(fingerprint).is_some()
    }

    /// Opens a sealed value of either format under `label`, trying every key of that format
    /// (Bitnami's behaviour: no key id is stored in the blob).
    pub fn open(&self, label: &[u8], blob: &[u8]) -> Result<SecretBytes, Error> {
        self.open_with_hint(&[], label, blob).map(|(p, _)| p)
    }

    /// Opens a sealed value, trying first the keys named by `hint` that the keyring holds, then
    /// every other key (see [`Keyring::ordered`]). Returns the plaintext and the fingerprint of
    /// the key that opened it. An empty hint tries every key in insertion order.
    ///
    /// A hint comes from an annotation anyone can edit, so it only chooses the order: a wrong or
    /// stale hint costs extra private operations, never a failure.
    ///
    /// [`Format::Age`] blobs are opened with the age identities, ordered the same way by the
    /// recipient fingerprints in `hint` ([`Keyring::ordered_age`]); the fingerprint returned is
    /// then [`AgeIdentity::fingerprint`]. Errors are those of [`crate::age::open_age`], notably
    /// [`Error::LabelMismatch`] for a value sealed under another label.
    pub fn open_with_hint(
        &self,
        hint: &[Fingerprint],
        label: &[u8],
        blob: &[u8],
    ) -> Result<(SecretBytes, Fingerprint), Error> {
        open_among(
            || self.ordered(hint),
            || self.ordered_age(hint).map(|i| &**i),
            label,
            blob,
        )
    }

    /// Like [`Keyring::open_with_hint`], but tries only the keys and identities in `only`
    /// (none of the others). Used to bound the work on an object once one of its items has
    /// failed with every key: its other items are tried only with keys that already opened one.
    pub fn open_only(
        &self,
        only: &[Fingerprint],
        label: &[u8],
        blob: &[u8],
    ) -> Result<(SecretBytes, Fingerprint), Error> {
        open_among(
            || self.keys.iter().filter(|k| only.contains(k.fingerprint())),
            || {
                self.age
                    .iter()
                    .filter(|i| only.contains(i.fingerprint()))
                    .map(|i| &**i)
            },
            label,
            blob,
        )
    }

    /// Every key once, in the order [`Keyring::open_with_hint`] tries them: the keys whose
    /// fingerprint is in `hint` first, then the others, each group in insertion order.
    /// Fingerprints in `hint` that the keyring does not hold are ignored.
    pub fn ordered(&self, hint: &[Fingerprint]) -> impl Iterator<Item = &Arc<PrivateKey>> {
        let (first, rest): (Vec<_>, Vec<_>) = self
            .keys
            .iter()
            .partition(|k| hint.contains(k.fingerprint()));
        first.into_iter().chain(rest)
    }

    /// Every age identity once, hinted ones first; see [`Keyring::ordered`].
    pub fn ordered_age(&self, hint: &[Fingerprint]) -> impl Iterator<Item = &Arc<AgeIdentity>> {
        let (first, rest): (Vec<_>, Vec<_>) = self
            .age
            .iter()
            .partition(|i| hint.contains(i.fingerprint()));
        first.into_iter().chain(rest)
    }
}

impl FromIterator<PrivateKey> for Keyring {
    fn from_iter<T: IntoIterator<Item = PrivateKey>>(iter: T) -> Self {
        let mut k = Keyring::new();
        for key in iter {
            k.insert(key);
        }
        k
    }
}

/// Opens `blob` with the first of `keys` (Bitnami format) or `ids` (age) that can; the
/// iterators are made only for the blob's format. The fingerprint returned is the opener's.
fn open_among<'a, K, I>(
    keys: impl FnOnce() -> K,
    ids: impl FnOnce() -> I,
    label: &[u8],
    blob: &[u8],
) -> Result<(SecretBytes, Fingerprint), Error>
where
    K: Iterator<Item = &'a Arc<PrivateKey>>,
    I: Iterator<Item = &'a AgeIdentity>,
{
    match Format::detect(blob)? {
        Format::BitnamiHybrid => {
            let parts = hybrid::split(blob)?;
            for key in keys() {
                if let Some(p) = hybrid::open_with(key, label, &parts) {
                    return Ok((p, key.fingerprint().clone()));
                }
            }
            Err(Error::NoKeyCouldDecrypt)
        }
        Format::Age => {
            age::open_identifying(ids(), label, blob).map(|(p, id)| (p, id.fingerprint().clone()))
        }
    }
}
