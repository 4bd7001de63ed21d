//! The key registry and the renewal schedule (docs/compatibility.md, “The sealing-key Secret”, “The generated certificate”, “Which key is used for what”, “Start-up sequence”), as plain data and
//! pure functions: loading keys from the API and generating them is the caller's job.
//!
//! Rules kept from Bitnami: every registered key decrypts, none is ever removed at run time; the
//! newest by ordering time seals, and it changes only when a key's ordering time is strictly
//! later; a key is generated at start-up when there is none or the newest is older than
//! `--key-cutoff-time`, then `--key-renew-period` after the newest key's time, then every period.
//!
//! Age identities (kseal's second sealing format) follow the same rules beside the RSA keys
//! (the newest is tracked per kind: X25519 and post-quantum mlkem768x25519 are published apart):
//! every registered identity opens age blobs, none is removed at run time, the newest by
//! ordering time (its Secret's creationTimestamp) is the published recipient, and one is
//! generated when there is none or the newest is older than `--key-cutoff-time`. They have no
//! certificate and no expiry, and they are renewed together with the RSA key (the renewal timer
//! follows the newest RSA key).

use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kseal_crypto::{AgeIdentity, AgeKeyType, Fingerprint, Keyring, PrivateKey};

/// How keys loaded from Secrets are ordered (`--key-order-priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOrderPriority {
    /// The certificate's NotBefore (Bitnami's default).
    #[default]
    CertNotBefore,
    /// The key Secret's creationTimestamp.
    SecretCreationTimestamp,
}

impl std::str::FromStr for KeyOrderPriority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "CertNotBefore" => Ok(Self::CertNotBefore),
            "SecretCreationTimestamp" => Ok(Self::SecretCreationTimestamp),
            other => Err(format!("invalid key order priority {other:?}: use CertNotBefore or SecretCreationTimestamp")),
        }
    }
}

/// A key the controller holds.
#[derive(Debug, Clone)]
pub struct RegisteredKey {
    /// The key, with its certificate.
    pub key: Arc<PrivateKey>,
    /// When it counts as made, for choosing the newest.
    pub ordering_time: Timestamp,
    /// The Secret it lives in, if known.
    pub secret_name: Option<String>,
}

/// An age identity the controller holds.
#[derive(Debug, Clone)]
pub struct RegisteredAgeIdentity {
    /// The identity (its `Debug` shows only the public recipient).
    pub identity: Arc<AgeIdentity>,
    /// When it counts as made, for choosing the newest: its Secret's creationTimestamp, or the
    /// time it was generated.
    pub ordering_time: Timestamp,
    /// The Secret it lives in, if known.
    pub secret_name: Option<String>,
}

/// All keys and age identities, in registration order, and which ones seal.
#[derive(Debug, Default, Clone)]
pub struct KeyRegistry {
    keys: Vec<RegisteredKey>,
    newest: Option<usize>,
    age: Vec<RegisteredAgeIdentity>,
    newest_age: Option<usize>,
    newest_age_pq: Option<usize>,
    keyring: Keyring,
}

impl KeyRegistry {
    /// Registers a key. Returns false when a key with the same fingerprint is already there
    /// (a relabelled or re-listed Secret). The newest key changes only on a strictly later time.
    pub fn register(&mut self, key: RegisteredKey) -> bool {
        if !self.keyring.insert_arc(key.key.clone()) {
            return false;
        }
        let later = self
            .newest
            .is_none_or(|i| key.ordering_time > self.keys[i].ordering_time);
        self.keys.push(key);
        if later {
            self.newest = Some(self.keys.len() - 1);
        }
        true
    }

    /// Registers an age identity. Returns false when one with the same recipient is already
    /// there. The newest identity changes only on a strictly later time, as for keys.
    pub fn register_age(&mut self, identity: RegisteredAgeIdentity) -> bool {
        if !self
            .keyring
            .insert_age_identity_arc(identity.identity.clone())
        {
            return false;
        }
        let pq = identity.identity.key_type() == AgeKeyType::MlKem768X25519;
        let newest = if pq {
            self.newest_age_pq
        } else {
            self.newest_age
        };
        let later = newest.is_none_or(|i| identity.ordering_time > self.age[i].ordering_time);
        self.age.push(identity);
        if later {
            let at = Some(self.age.len() - 1);
            if pq {
                self.newest_age_pq = at;
            } else {
                self.newest_age = at;
            }
        }
        true
    }

    /// The key new seals use (`/v1/cert.pem`, `/v1/rotate`).
    pub fn newest(&self) -> Option<&RegisteredKey> {
        self.newest.map(|i| &self.keys[i])
    }

    /// The X25519 age identity whose recipient is published (`/v1/age-recipient`, the
    /// certificate ConfigMap's `age-recipient`).
    pub fn newest_age(&self) -> Option<&RegisteredAgeIdentity> {
        self.newest_age.map(|i| &self.age[i])
    }

    /// The post-quantum (mlkem768x25519) age identity whose recipient is published
    /// (`/v1/age-pq-recipient`, the certificate ConfigMap's `age-pq-recipient`).
    pub fn newest_age_pq(&self) -> Option<&RegisteredAgeIdentity> {
        self.newest_age_pq.map(|i| &self.age[i])
    }

    /// The newest identity of `kind`.
    pub fn newest_age_of(&self, kind: AgeKeyType) -> Option<&RegisteredAgeIdentity> {
        match kind {
            AgeKeyType::MlKem768X25519 => self.newest_age_pq(),
            _ => self.newest_age(),
        }
    }

    /// Every key and age identity, for decryption (both formats).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// All RSA keys in registration order.
    pub fn keys(&self) -> &[RegisteredKey] {
        &self.keys
    }

    /// All age identities in registration order.
    pub fn age_identities(&self) -> &[RegisteredAgeIdentity] {
        &self.age
    }

    /// True when the RSA key is registered.
    pub fn contains(&self, fp: &Fingerprint) -> bool {
        self.keyring.get(fp).is_some()
    }

    /// True when the age identity with this recipient fingerprint is registered.
    pub fn contains_age(&self, fp: &Fingerprint) -> bool {
        self.keyring.get_age_identity(fp).is_some()
    }
}

/// The ordering time of a key loaded from a Secret.
pub fn ordering_time(
    priority: KeyOrderPriority,
    cert_not_before: Timestamp,
    secret_created: Option<Timestamp>,
) -> Timestamp {
    match (priority, secret_created) {
        (KeyOrderPriority::SecretCreationTimestamp, Some(t)) => t,
        _ => cert_not_before,
    }
}

/// Whether a key must be generated at start-up: none exists, or the newest is older than the
/// cutoff.
pub fn needs_key_at_startup(registry: &KeyRegistry, cutoff: Option<Timestamp>) -> bool {
    match (registry.newest(), cutoff) {
        (None, _) => true,
        (Some(k), Some(c)) => k.ordering_time < c,
        (Some(_), None) => false,
    }
}

/// Whether an age identity must be generated at start-up: none exists, or the newest is older
/// than the cutoff (by its ordering time, the Secret's creationTimestamp).
pub fn needs_age_identity_at_startup(registry: &KeyRegistry, cutoff: Option<Timestamp>) -> bool {
    needs_age_identity_of(registry, AgeKeyType::X25519, cutoff)
}

/// [`needs_age_identity_at_startup`] for the identities of `kind`.
pub fn needs_age_identity_of(
    registry: &KeyRegistry,
    kind: AgeKeyType,
    cutoff: Option<Timestamp>,
) -> bool {
    match (registry.newest_age_of(kind), cutoff) {
        (None, _) => true,
        (Some(i), Some(c)) => i.ordering_time < c,
        (Some(_), None) => false,
    }
}

/// How long until the next automatic renewal: `max(0, period − age of the newest key)`, or
/// `None` when renewal is off (period 0) or there is no key yet.
pub fn next_renewal(
    registry: &KeyRegistry,
    now: Timestamp,
    period: SignedDuration,
) -> Option<SignedDuration> {
    if period.is_zero() || period.is_negative() {
        return None;
    }
    let newest = registry.newest()?;
    let age = now.duration_since(newest.ordering_time);
    Some((period - age).max(SignedDuration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn t(h: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + h * 3600).unwrap()
    }

    fn keys() -> &'static [Arc<PrivateKey>; 3] {
        static K: OnceLock<[Arc<PrivateKey>; 3]> = OnceLock::new();
        K.get_or_init(|| {
            let p = kseal_crypto::keygen::KeyProfile {
                bits: 2048,
                ..Default::default()
            };
            let g = || {
                Arc::new(
                    kseal_crypto::keygen::generate(
                        &mut rand::rngs::OsRng,
                        &p,
                        time::OffsetDateTime::now_utc(),
                    )
                    .unwrap(),
                )
            };
            [g(), g(), g()]
        })
    }

    fn reg(i: usize, hour: i64) -> RegisteredKey {
        RegisteredKey {
            key: keys()[i].clone(),
            ordering_time: t(hour),
            secret_name: None,
        }
    }

    #[test]
    fn newest_changes_only_on_a_strictly_later_time() {
        let mut r = KeyRegistry::default();
        assert!(r.register(reg(0, 10)));
        assert!(
            r.register(reg(1, 10)),
            "same time: registered for decryption"
        );
        assert_eq!(
            r.newest().unwrap().key.fingerprint(),
            keys()[0].fingerprint()
        );
        assert!(r.register(reg(2, 5)));
        assert_eq!(
            r.newest().unwrap().key.fingerprint(),
            keys()[0].fingerprint(),
            "older keys never take over"
        );
        assert_eq!(r.keyring().len(), 3);
        assert!(!r.register(reg(2, 20)), "a key is registered once");
        assert_eq!(
            r.newest().unwrap().key.fingerprint(),
            keys()[0].fingerprint()
        );
    }

    fn age(hour: i64) -> RegisteredAgeIdentity {
        RegisteredAgeIdentity {
            identity: Arc::new(AgeIdentity::generate()),
            ordering_time: t(hour),
            secret_name: None,
        }
    }

    #[test]
    fn age_identities_are_registered_beside_the_keys() {
        let mut r = KeyRegistry::default();
        assert!(needs_age_identity_at_startup(&r, None));
        assert!(r.newest_age().is_none());
        let first = age(10);
        let fp1 = first.identity.fingerprint().clone();
        assert!(r.register_age(first.clone()));
        assert!(!r.register_age(first), "an identity is registered once");
        assert!(
            r.register_age(age(10)),
            "same time: registered for decryption"
        );
        assert_eq!(r.newest_age().unwrap().identity.fingerprint(), &fp1);
        assert!(r.register_age(age(5)));
        assert_eq!(
            r.newest_age().unwrap().identity.fingerprint(),
            &fp1,
            "older identities never take over"
        );
        let later = age(11);
        let fp4 = later.identity.fingerprint().clone();
        assert!(r.register_age(later));
        assert_eq!(r.newest_age().unwrap().identity.fingerprint(), &fp4);
        assert_eq!(r.age_identities().len(), 4);
        assert_eq!(r.keyring().age_len(), 4);
        assert!(r.contains_age(&fp1) && !r.contains(&fp1));
        // The RSA side is untouched: no newest key, no RSA key in the keyring.
        assert!(r.newest().is_none() && r.keyring().is_empty());
        assert!(needs_key_at_startup(&r, None));
        assert!(!needs_age_identity_at_startup(&r, None));
        assert!(needs_age_identity_at_startup(&r, Some(t(12))));
        assert!(!needs_age_identity_at_startup(&r, Some(t(11))));
    }

    #[test]
    fn the_newest_identity_is_kept_per_kind() {
        let mut r = KeyRegistry::default();
        let x = age(10);
        let pq = RegisteredAgeIdentity {
            identity: Arc::new(AgeIdentity::generate_pq()),
            ordering_time: t(20),
            secret_name: None,
        };
        assert!(needs_age_identity_of(&r, AgeKeyType::MlKem768X25519, None));
        r.register_age(x.clone());
        r.register_age(pq.clone());
        assert_eq!(
            r.newest_age().unwrap().identity.fingerprint(),
            x.identity.fingerprint()
        );
        assert_eq!(
            r.newest_age_pq().unwrap().identity.fingerprint(),
            pq.identity.fingerprint()
        );
        assert!(!needs_age_identity_of(&r, AgeKeyType::MlKem768X25519, None));
        assert!(needs_age_identity_of(
            &r,
            AgeKeyType::MlKem768X25519,
            Some(t(21))
        ));
        assert!(!needs_age_identity_at_startup(&r, Some(t(9))));
        let blob = kseal_crypto::seal_age(&[pq.identity.to_public()], b"l", b"v").unwrap();
        assert_eq!(r.keyring().open(b"l", &blob).unwrap().expose(), b"v");
    }

    #[test]
    fn the_keyring_opens_age_blobs_of_every_registered_identity() {
        let mut r = KeyRegistry::default();
        r.register(reg(0, 1));
        let old = age(1);
        let new = age(2);
        let blob = kseal_crypto::seal_age(&[old.identity.to_public()], b"ns/n", b"v").unwrap();
        r.register_age(old.clone());
        r.register_age(new);
        let (value, fp) = r.keyring().open_with_hint(&[], b"ns/n", &blob).unwrap();
        assert_eq!(value.expose(), b"v");
        assert_eq!(&fp, old.identity.fingerprint());
        assert!(matches!(
            r.keyring().open(b"ns/other", &blob),
            Err(kseal_crypto::Error::LabelMismatch)
        ));
    }

    #[test]
    fn startup_generation() {
        let mut r = KeyRegistry::default();
        assert!(needs_key_at_startup(&r, None));
        r.register(reg(0, 10));
        assert!(!needs_key_at_startup(&r, None));
        assert!(needs_key_at_startup(&r, Some(t(11))));
        assert!(!needs_key_at_startup(&r, Some(t(10))));
    }

    #[test]
    fn renewal_schedule() {
        let mut r = KeyRegistry::default();
        let period = SignedDuration::from_hours(720);
        assert_eq!(next_renewal(&r, t(0), period), None, "no key yet");
        r.register(reg(0, 0));
        assert_eq!(
            next_renewal(&r, t(100), period),
            Some(SignedDuration::from_hours(620))
        );
        assert_eq!(
            next_renewal(&r, t(1000), period),
            Some(SignedDuration::ZERO),
            "overdue: now"
        );
        assert_eq!(
            next_renewal(&r, t(100), SignedDuration::ZERO),
            None,
            "0 turns renewal off"
        );
    }

    #[test]
    fn ordering_priority() {
        assert_eq!(
            ordering_time(KeyOrderPriority::CertNotBefore, t(1), Some(t(2))),
            t(1)
        );
        assert_eq!(
            ordering_time(KeyOrderPriority::SecretCreationTimestamp, t(1), Some(t(2))),
            t(2)
        );
        assert_eq!(
            ordering_time(KeyOrderPriority::SecretCreationTimestamp, t(1), None),
            t(1)
        );
        assert!("Newest".parse::<KeyOrderPriority>().is_err());
    }
}
