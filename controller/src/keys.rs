//! The key registry and the renewal schedule (reference §1.7–1.9, §4.2), as plain data and
//! pure functions: loading keys from the API and generating them is the caller's job.
//!
//! Rules kept from Bitnami: every registered key decrypts, none is ever removed at run time; the
//! newest by ordering time seals, and it changes only when a key's ordering time is strictly
//! later; a key is generated at start-up when there is none or the newest is older than
//! `--key-cutoff-time`, then `--key-renew-period` after the newest key's time, then every period.

use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kseal_crypto::{Fingerprint, Keyring, PrivateKey};

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

/// All keys, in registration order, and which one seals.
#[derive(Debug, Default, Clone)]
pub struct KeyRegistry {
    keys: Vec<RegisteredKey>,
    newest: Option<usize>,
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

    /// The key new seals use (`/v1/cert.pem`, `/v1/rotate`).
    pub fn newest(&self) -> Option<&RegisteredKey> {
        self.newest.map(|i| &self.keys[i])
    }

    /// Every key, for decryption.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// All keys in registration order.
    pub fn keys(&self) -> &[RegisteredKey] {
        &self.keys
    }

    /// True when the key is registered.
    pub fn contains(&self, fp: &Fingerprint) -> bool {
        self.keyring.get(fp).is_some()
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
