//! The key manager: the controller's view of its keys (a [`KeyRegistry`] published on a watch
//! channel, which the HTTP API and the reconciler read), and the steps that change it.
//!
//! This file holds the start-up step of docs/compatibility.md, “Start-up sequence”: load every key Secret, generate a key
//! when there is none or the newest is older than `--key-cutoff-time` (stored first, registered
//! only once the write succeeded), and publish the newest certificate.
//!
//! Age identities ride along (unless `--age=false`, [`KeyManager::with_age`]): loaded with the
//! keys, generated under the same rules, renewed together with the RSA key, and the newest
//! recipient published next to the certificate. With age off none is generated or published,
//! but the identities found are still loaded: age blobs sealed earlier keep opening. A
//! post-quantum (mlkem768x25519) identity rides along the same way, published apart
//! (`age-pq-recipient`), unless `--age-pq=false` ([`KeyManager::with_age_pq`]) or `--age=false`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kseal_crypto::keygen::{generate, KeyProfile};
use tokio::sync::watch;

use kseal_crypto::{AgeIdentity, AgeKeyType, AgeRecipient};

use crate::keys::registry::{
    needs_age_identity_of, needs_key_at_startup, KeyRegistry, RegisteredAgeIdentity, RegisteredKey,
};
use crate::keys::store::{KeyStore, KeyStoreError};
use kseal_sealing::key_secret::{
    certificate_data, CONFIGMAP_AGE_PQ_RECIPIENT_KEY, CONFIGMAP_AGE_RECIPIENT_KEY,
};

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
    age: bool,
    age_pq: bool,
    keys: watch::Sender<Arc<KeyRegistry>>,
}

/// What the start-up step did, for the log.
#[derive(Debug, Default)]
pub struct Startup {
    /// Keys loaded from Secrets.
    pub loaded: usize,
    /// Age identities loaded from Secrets.
    pub age_loaded: usize,
    /// Key and age identity Secrets that could not be read (named in the errors; never fatal).
    pub unreadable: Vec<KeyStoreError>,
    /// The Secret of a key generated now, if one was.
    pub generated: Option<String>,
    /// The Secret of an age identity generated now, if one was.
    pub age_generated: Option<String>,
    /// The Secret of a post-quantum age identity generated now, if one was.
    pub age_pq_generated: Option<String>,
}

/// What a renewal did.
#[derive(Debug)]
pub struct Renewal {
    /// The new RSA key's Secret.
    pub key_secret: String,
    /// The new age identity's Secret (`None` with `--age=false` or when it failed).
    pub age_secret: Option<String>,
    /// The new post-quantum age identity's Secret (`None` when off or when it failed).
    pub age_pq_secret: Option<String>,
    /// Why no age identity was made although age is on. The RSA key is renewed regardless:
    /// the identity follows at the next renewal or leader start-up.
    pub age_error: Option<KeyStoreError>,
}

impl KeyManager {
    /// A manager over `store`, with age identities on; subscribe with
    /// [`KeyManager::subscribe`].
    pub fn new(store: KeyStore, policy: KeyPolicy) -> Self {
        let (keys, _) = watch::channel(Arc::new(KeyRegistry::default()));
        KeyManager {
            store,
            policy,
            age: true,
            age_pq: true,
            keys,
        }
    }

    /// `--age`: whether age identities are generated, renewed and published (default true).
    /// Identities that exist are loaded and open age blobs either way.
    pub fn with_age(mut self, enabled: bool) -> Self {
        self.age = enabled;
        self
    }

    /// Whether age identities are generated and published.
    pub fn age_enabled(&self) -> bool {
        self.age
    }

    /// `--age-pq`: whether a post-quantum (mlkem768x25519) identity is generated, renewed and
    /// published too (default true; nothing post-quantum is made with age off).
    pub fn with_age_pq(mut self, enabled: bool) -> Self {
        self.age_pq = enabled;
        self
    }

    /// Whether post-quantum age identities are generated and published.
    pub fn age_pq_enabled(&self) -> bool {
        self.age && self.age_pq
    }

    /// The kinds of age identity generated and published.
    fn age_kinds(&self) -> Vec<AgeKeyType> {
        let mut kinds = Vec::new();
        if self.age {
            kinds.push(AgeKeyType::X25519);
        }
        if self.age_pq_enabled() {
            kinds.push(AgeKeyType::MlKem768X25519);
        }
        kinds
    }

    /// A receiver of the current registry (every change is published as a new `Arc`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<KeyRegistry>> {
        self.keys.subscribe()
    }

    /// The current registry.
    pub fn current(&self) -> Arc<KeyRegistry> {
        self.keys.borrow().clone()
    }

    /// Loads every key and age identity Secret and generates a key (and an age identity) when
    /// the rules say so (see the module docs), then publishes.
    pub async fn startup(&self, now: Timestamp) -> Result<Startup, KeyStoreError> {
        let (loaded, mut unreadable) = self.store.load().await?;
        let (age_loaded, age_unreadable) = self.store.load_age(now).await?;
        unreadable.extend(age_unreadable);
        let mut registry = KeyRegistry::default();
        let count = loaded.len();
        let age_count = age_loaded.len();
        for k in loaded {
            registry.register(k);
        }
        for i in age_loaded {
            registry.register_age(i);
        }
        let mut generated = None;
        if needs_key_at_startup(&registry, self.policy.cutoff) {
            let key = self.generate_and_store(now).await?;
            generated = key.secret_name.clone();
            registry.register(key);
        }
        let (mut age_generated, mut age_pq_generated) = (None, None);
        for kind in self.age_kinds() {
            if needs_age_identity_of(&registry, kind, self.policy.cutoff) {
                let id = self.generate_and_store_age(now, kind).await?;
                match kind {
                    AgeKeyType::X25519 => age_generated = id.secret_name.clone(),
                    _ => age_pq_generated = id.secret_name.clone(),
                }
                registry.register_age(id);
            }
        }
        self.publish(registry).await?;
        Ok(Startup {
            loaded: count,
            age_loaded: age_count,
            unreadable,
            generated,
            age_generated,
            age_pq_generated,
        })
    }

    /// Generates a key (and an age identity) now (renewal, SIGUSR1, a renewal request) and
    /// makes it the sealing key, then publishes.
    pub async fn renew(&self, now: Timestamp) -> Result<Renewal, KeyStoreError> {
        let renewal = self.renew_only(now).await?;
        self.publish((*self.current()).clone()).await?;
        Ok(renewal)
    }

    /// Re-reads the key and age identity Secrets and registers those this replica has not seen
    /// yet. The leader does this right before it decides to generate a key: its watch may lag
    /// behind a key that the previous leader wrote just before it died, and one renewal must
    /// make one key.
    pub async fn refresh(&self) -> Result<(), KeyStoreError> {
        let (loaded, _) = self.store.load().await?;
        let (age_loaded, _) = self.store.load_age(Timestamp::now()).await?;
        for k in loaded {
            self.add(k);
        }
        for i in age_loaded {
            self.add_age(i);
        }
        Ok(())
    }

    /// Loads every key and age identity Secret without generating or publishing anything: what
    /// every replica does at start-up (the leader then calls [`KeyManager::ensure_key`] and
    /// [`KeyManager::ensure_age_identity`]).
    pub async fn load(&self) -> Result<Startup, KeyStoreError> {
        let (loaded, mut unreadable) = self.store.load().await?;
        let (age_loaded, age_unreadable) = self.store.load_age(Timestamp::now()).await?;
        unreadable.extend(age_unreadable);
        let count = loaded.len();
        let age_count = age_loaded.len();
        let mut registry = (*self.current()).clone();
        for k in loaded {
            registry.register(k);
        }
        for i in age_loaded {
            registry.register_age(i);
        }
        self.keys.send_replace(Arc::new(registry));
        Ok(Startup {
            loaded: count,
            age_loaded: age_count,
            unreadable,
            generated: None,
            age_generated: None,
            age_pq_generated: None,
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

    /// Generates an age identity of each kind that is on (X25519, and post-quantum unless
    /// `--age-pq=false`) when there is none of that kind or the newest is older than
    /// `--key-cutoff-time` (the leader's start-up step, after [`KeyManager::ensure_key`]).
    /// Returns the new identities' Secret names and recipients.
    pub async fn ensure_age_identity(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(String, String)>, KeyStoreError> {
        let mut made = Vec::new();
        for kind in self.age_kinds() {
            if !needs_age_identity_of(&self.current(), kind, self.policy.cutoff) {
                continue;
            }
            let id = self.generate_and_store_age(now, kind).await?;
            made.push((
                id.secret_name.clone().unwrap_or_default(),
                id.identity.recipient().to_string(),
            ));
            self.add_age(id);
        }
        Ok(made)
    }

    /// Registers a key found at run time (a key Secret added or relabelled). Returns whether
    /// it was new. Keys are only ever added, never removed.
    pub fn add(&self, key: RegisteredKey) -> bool {
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

    /// Registers an age identity found at run time (an identity Secret added or relabelled).
    /// Returns whether it was new. Identities are only ever added, never removed.
    pub fn add_age(&self, identity: RegisteredAgeIdentity) -> bool {
        let mut added = false;
        self.keys.send_if_modified(|current| {
            let mut registry = (**current).clone();
            added = registry.register_age(identity);
            if added {
                *current = Arc::new(registry);
            }
            added
        });
        added
    }

    /// What is published: the newest RSA key's fingerprint and, with age on, the newest age
    /// recipient. The publisher writes again whenever this changes.
    pub fn published_state(&self) -> Option<(String, Option<String>, Option<String>)> {
        let registry = self.current();
        let newest = registry.newest()?;
        let (age, pq) = self.published_recipients(&registry);
        Some((
            newest.key.fingerprint().to_string(),
            age.map(|r| r.to_string()),
            pq.map(|r| r.to_string()),
        ))
    }

    /// Whether the certificate ConfigMap holds exactly what this controller publishes (the
    /// newest certificate, its fingerprint and, with age on, the newest age recipient; keys
    /// others added are not its business). `None` when there is nothing to publish yet.
    pub fn configmap_matches(&self, cm: &k8s_openapi::api::core::v1::ConfigMap) -> Option<bool> {
        let registry = self.current();
        let cert = registry.newest()?.key.certificate()?;
        let (recipient, pq) = self.published_recipients(&registry);
        let get = |k: &str| cm.data.as_ref().and_then(|d| d.get(k));
        Some(
            certificate_data(cert, recipient, pq)
                .iter()
                .all(|(k, v)| get(k) == Some(v))
                && (recipient.is_some() || get(CONFIGMAP_AGE_RECIPIENT_KEY).is_none())
                && (pq.is_some() || get(CONFIGMAP_AGE_PQ_RECIPIENT_KEY).is_none()),
        )
    }

    /// The age recipients to publish: the newest X25519 identity's (with age on) and the newest
    /// post-quantum identity's (with age and `--age-pq` on).
    fn published_recipients<'r>(
        &self,
        registry: &'r KeyRegistry,
    ) -> (Option<&'r AgeRecipient>, Option<&'r AgeRecipient>) {
        let x = registry
            .newest_age()
            .filter(|_| self.age)
            .map(|i| i.identity.recipient());
        let pq = registry
            .newest_age_pq()
            .filter(|_| self.age_pq_enabled())
            .map(|i| i.identity.recipient());
        (x, pq)
    }

    /// Writes the newest certificate (and, with age on, the newest age recipient) to the
    /// certificate ConfigMap (when configured).
    pub async fn publish_certificate(&self) -> Result<(), KeyStoreError> {
        self.publish_registry(&self.current()).await
    }

    /// Generates and stores a key, and with age on an age identity, and registers them, without
    /// publishing (the leader's publisher follows the registry). A failed RSA key is an error
    /// (nothing was renewed); a failed age identity after a stored key is reported in
    /// [`Renewal::age_error`], so that a renewal request is not honoured twice.
    pub async fn renew_only(&self, now: Timestamp) -> Result<Renewal, KeyStoreError> {
        let key = self.generate_and_store(now).await?;
        let key_secret = key.secret_name.clone().unwrap_or_default();
        self.add(key);
        let mut renewal = Renewal {
            key_secret,
            age_secret: None,
            age_pq_secret: None,
            age_error: None,
        };
        for kind in self.age_kinds() {
            match self.generate_and_store_age(now, kind).await {
                Ok(id) => {
                    let name = id.secret_name.clone();
                    match kind {
                        AgeKeyType::X25519 => renewal.age_secret = name,
                        _ => renewal.age_pq_secret = name,
                    }
                    self.add_age(id);
                }
                Err(e) => {
                    renewal.age_error = Some(e);
                    break;
                }
            }
        }
        Ok(renewal)
    }

    /// The key store (for watches on key Secrets and the certificate ConfigMap).
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// The key policy.
    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    async fn generate_and_store_age(
        &self,
        now: Timestamp,
        kind: AgeKeyType,
    ) -> Result<RegisteredAgeIdentity, KeyStoreError> {
        self.store
            .store_new_age(
                AgeIdentity::generate_of(kind),
                &self.policy.labels,
                &self.policy.annotations,
                now,
            )
            .await
    }

    async fn generate_and_store(&self, now: Timestamp) -> Result<RegisteredKey, KeyStoreError> {
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

    async fn publish_registry(&self, registry: &KeyRegistry) -> Result<(), KeyStoreError> {
        if let (Some(name), Some(newest)) = (&self.policy.cert_configmap, registry.newest()) {
            if let Some(cert) = newest.key.certificate() {
                let (recipient, pq) = self.published_recipients(registry);
                self.store.publish(name, cert, recipient, pq).await?;
            }
        }
        Ok(())
    }

    async fn publish(&self, registry: KeyRegistry) -> Result<(), KeyStoreError> {
        self.publish_registry(&registry).await?;
        self.keys.send_replace(Arc::new(registry));
        Ok(())
    }
}
