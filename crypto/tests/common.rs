//! Shared fixtures for the crypto tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use kseal_crypto::{Certificate, PrivateKey};

pub const GO_KEY: &[u8] = include_bytes!("data/go_rsa2048.key");
pub const GO_CERT: &[u8] = include_bytes!("data/go_rsa2048.crt");
pub const GO_VECTORS: &str = include_str!("data/go_vectors.json");
pub const KUBESEAL_TEST_CERT: &[u8] = include_bytes!("data/kubeseal_test_cert.pem");

pub fn go_key() -> PrivateKey {
    PrivateKey::from_pem(GO_KEY)
        .unwrap()
        .with_certificate(Certificate::from_pem(GO_CERT).unwrap())
        .unwrap()
}

/// A 2048-bit key generated once per test binary (key generation is the slow part).
pub fn fresh_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let profile = kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        };
        kseal_crypto::keygen::generate(
            &mut rand::rngs::OsRng,
            &profile,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
    })
}

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Vector {
    pub id: String,
    pub scope: String,
    pub namespace: String,
    pub name: String,
    pub plaintext_b64: String,
    pub ciphertext_b64: String,
}

pub fn vectors() -> Vec<Vector> {
    serde_json::from_str(GO_VECTORS).unwrap()
}
