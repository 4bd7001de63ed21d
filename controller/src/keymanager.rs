//! The key manager: the controller's view of its keys (a [`KeyRegistry`] published on a watch
//! channel, which the HTTP API and the reconciler read), and the steps that change it.
//!
//! This file holds the start-up step of reference §4.2: load every key Secret, generate a key
//! when there is none or the newest is older than `--key-cutoff-time` (stored first, registered
//! only once the write succeeded), and publish the newest certificate.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kseal_crypto::keygen::{generate, KeyProfile};
use tokio::sync::watch;

use crate::keys::{needs_key_at_startup, KeyRegistry};
use crate::keystore::{KeyStore, KeyStoreError};

/// What new keys look like and where the certificate is published.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// RSA size, certificate CN and validity of new keys.
    pub profile: KeyProfile,
    /// `--key-cutoff-time`.
    pub cutoff: Option<Timestamp>,
    /// `--privatekey-labels`.
    pub labels: BTreeMap<String, String>,
    /// `--privatekey-annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The ConfigMap the certificate is published in (`None`: not published).
    pub cert_configmap: Option<String>,
}

/// The keys, shared with the HTTP API and the reconciler.
#[derive(Debug)]
pub struct KeyManager {
    store: KeyStore,
    policy: KeyPolicy,
    keys: watch::Sender<Arc<KeyRegistry>>,
}

/// What the start-up step did, for the log.
#[derive(Debug, Default)]
pub struct Startup {
    /// Keys loaded from Secrets.
    pub loaded: usize,
    /// Key Secrets that could not be read (named in the errors; never fatal).
    pub unreadable: Vec<KeyStoreError>,
    /// The Secret of a key generated now, if one was.
    pub generated: Option<String>,
}

impl KeyManager {
    /// A manager over `store`; subscribe with [`KeyManager::subscribe`].
    pub fn new(store: KeyStore, policy: KeyPolicy) -> Self {
        let (keys, _) = watch::channel(Arc::new(KeyRegistry::default()));
        KeyManager {
            store,
            policy,
            keys,
        }
    }

    /// A receiver of the current registry (every change is published as a new `Arc`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<KeyRegistry>> {
        self.keys.subscribe()
    }

    /// The current registry.
    pub fn current(&self) -> Arc<KeyRegistry> {
        self.keys.borrow().clone()
    }

    /// Loads every key Secret and generates a key when the rules say so (see the module docs).
    pub async fn startup(&self, now: Timestamp) -> Result<Startup, KeyStoreError> {
        let (loaded, unreadable) = self.store.load().await?;
        let mut registry = KeyRegistry::default();
        let count = loaded.len();
        for k in loaded {
            registry.register(k);
        }
        let mut generated = None;
        if needs_key_at_startup(&registry, self.policy.cutoff) {
            let key = self.generate_and_store(now).await?;
            generated = key.secret_name.clone();
            registry.register(key);
        }
        self.publish(registry).await?;
        Ok(Startup {
            loaded: count,
            unreadable,
            generated,
        })
    }

    /// Generates a key now (renewal, SIGUSR1, a renewal request) and makes it the sealing key.
    pub async fn renew(&self, now: Timestamp) -> Result<String, KeyStoreError> {
        let key = self.generate_and_store(now).await?;
        let name = key.secret_name.clone().unwrap_or_default();
        let mut registry = (*self.current()).clone();
        registry.register(key);
        self.publish(registry).await?;
        Ok(name)
    }

    /// Loads every key Secret without generating or publishing anything: what every replica
    /// does at start-up (the leader then calls [`KeyManager::ensure_key`]).
    pub async fn load(&self) -> Result<Startup, KeyStoreError> {
        let (loaded, unreadable) = self.store.load().await?;
        let count = loaded.len();
        let mut registry = (*self.current()).clone();
        for k in loaded {
            registry.register(k);
        }
        self.keys.send_replace(Arc::new(registry));
        Ok(Startup {
            loaded: count,
            unreadable,
            generated: None,
        })
    }

    /// Generates a key when there is none or the newest is older than `--key-cutoff-time`
    /// (the leader's start-up step). Returns the new key's Secret name.
    pub async fn ensure_key(&self, now: Timestamp) -> Result<Option<String>, KeyStoreError> {
        if !needs_key_at_startup(&self.current(), self.policy.cutoff) {
            return Ok(None);
        }
        let key = self.generate_and_store(now).await?;
        let name = key.secret_name.clone();
        self.add(key);
        Ok(name)
    }

    /// Registers a key found at run time (a key Secret added or relabelled). Returns whether
    /// it was new. Keys are only ever added, never removed.
    pub fn add(&self, key: crate::keys::RegisteredKey) -> bool {
        let mut added = false;
        self.keys.send_if_modified(|current| {
            let mut registry = (**current).clone();
            added = registry.register(key);
            if added {
                *current = Arc::new(registry);
            }
            added
        });
        added
    }

    /// Writes the newest certificate to the certificate ConfigMap (when configured).
    pub async fn publish_certificate(&self) -> Result<(), KeyStoreError> {
        let registry = self.current();
        if let (Some(name), Some(newest)) = (&self.policy.cert_configmap, registry.newest()) {
            if let Some(cert) = newest.key.certificate() {
                self.store.publish_certificate(name, cert).await?;
            }
        }
        Ok(())
    }

    /// Generates and stores a key and registers it, without publishing the certificate (the
    /// leader's publisher follows the registry).
    pub async fn renew_only(&self, now: Timestamp) -> Result<String, KeyStoreError> {
        let key = self.generate_and_store(now).await?;
        let name = key.secret_name.clone().unwrap_or_default();
        self.add(key);
        Ok(name)
    }

    /// The key store (for watches on key Secrets and the certificate ConfigMap).
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// The key policy.
    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    async fn generate_and_store(
        &self,
        now: Timestamp,
    ) -> Result<crate::keys::RegisteredKey, KeyStoreError> {
        let profile = self.policy.profile.clone();
        let when = time::OffsetDateTime::from_unix_timestamp(now.as_second()).map_err(|e| {
            KeyStoreError::Encode(kseal_crypto::Error::KeyGeneration(e.to_string()))
        })?;
        // RSA key generation takes a second or more: keep it off the async workers.
        let key =
            tokio::task::spawn_blocking(move || generate(&mut rand::rngs::OsRng, &profile, when))
                .await
                .map_err(|e| {
                    KeyStoreError::Encode(kseal_crypto::Error::KeyGeneration(e.to_string()))
                })??;
        self.store
            .store_new(key, &self.policy.labels, &self.policy.annotations, now)
            .await
    }

    async fn publish(&self, registry: KeyRegistry) -> Result<(), KeyStoreError> {
        if let (Some(name), Some(newest)) = (&self.policy.cert_configmap, registry.newest()) {
            if let Some(cert) = newest.key.certificate() {
                self.store.publish_certificate(name, cert).await?;
            }
        }
        self.keys.send_replace(Arc::new(registry));
        Ok(())
    }
}
