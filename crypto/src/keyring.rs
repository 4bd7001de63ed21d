//! A set of private keys that sealed values are opened with.

use std::sync::Arc;

use crate::envelope::Format;
use crate::hybrid;
use crate::keys::PrivateKey;
use crate::{Error, Fingerprint, SecretBytes};

/// Private keys, in the order they were added, without duplicates (same fingerprint).
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: Vec<Arc<PrivateKey>>,
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

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Opens a sealed value under `label`, trying every key (Bitnami's behaviour: no key id is
    /// stored in the blob).
    pub fn open(&self, label: &[u8], blob: &[u8]) -> Result<SecretBytes, Error> {
        self.open_with_hint(&[], label, blob).map(|(p, _)| p)
    }

    /// Opens a sealed value, trying first the keys named by `hint` that the keyring holds, then
    /// every other key (see [`Keyring::ordered`]). Returns the plaintext and the fingerprint of
    /// the key that opened it. An empty hint tries every key in insertion order.
    ///
    /// A hint comes from an annotation anyone can edit, so it only chooses the order: a wrong or
    /// stale hint costs extra private operations, never a failure.
    pub fn open_with_hint(
        &self,
        hint: &[Fingerprint],
        label: &[u8],
        blob: &[u8],
    ) -> Result<(SecretBytes, Fingerprint), Error> {
        match Format::detect(blob)? {
            Format::BitnamiHybrid => {
                let parts = hybrid::split(blob)?;
                for key in self.ordered(hint) {
                    if let Some(p) = hybrid::open_with(key, label, &parts) {
                        return Ok((p, key.fingerprint().clone()));
                    }
                }
                Err(Error::NoKeyCouldDecrypt)
            }
        }
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
