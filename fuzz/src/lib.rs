//! Fixtures shared by the fuzz targets: fixed, public test keys (so the targets fuzz the parsers,
//! not key generation) and the input layouts documented in `docs/fuzzing.md`.
//!
//! Nothing here re-implements kseal: every target calls the library function production uses.

pub mod template_oracle;

use std::sync::{Arc, OnceLock};

use kseal_crypto::{AgeIdentity, AgeRecipient, Certificate, Keyring, PrivateKey};

/// Bitnami's Go test key (RSA-2048, the smallest size kseal accepts), public.
const GO_KEY: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.key");
const GO_CERT: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.crt");
/// Two age identities made by `age-keygen`, public.
const AGE_IDENTITIES: &str = include_str!("../../crypto/tests/data/age_go_identities.txt");
/// The age identities of the CLI's test fixtures (`cli/tests/cmd/fixtures`), public.
const FIXTURE_IDENTITIES: [&str; 3] = [
    include_str!("../../cli/tests/cmd/fixtures/age-cluster-a.key"),
    include_str!("../../cli/tests/cmd/fixtures/age-cluster-b.key"),
    include_str!("../../cli/tests/cmd/fixtures/age-recovery.key"),
];
/// The CLI fixtures' certificate (RSA-4096; only its public key is used, for `kseal verify`).
const FIXTURE_CERT: &[u8] = include_bytes!("../../cli/tests/cmd/fixtures/tls.crt");
/// The identity most C2SP CCTV age vectors are encrypted to (public test data).
const CCTV_IDENTITY: &str =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

/// The Go test key with its certificate.
pub fn go_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(
            PrivateKey::from_pem(GO_KEY)
                .and_then(|k| k.with_certificate(Certificate::from_pem(GO_CERT)?))
                .expect("the Go test key loads"),
        )
    })
    .clone()
}

/// The Go test certificate.
pub fn go_cert() -> &'static Certificate {
    static C: OnceLock<Certificate> = OnceLock::new();
    C.get_or_init(|| Certificate::from_pem(GO_CERT).expect("the Go test certificate loads"))
}

/// The certificates `kseal verify` is given: the Go test certificate and the CLI fixtures'.
pub fn verify_certs() -> &'static [Certificate] {
    static C: OnceLock<Vec<Certificate>> = OnceLock::new();
    C.get_or_init(|| {
        vec![
            go_cert().clone(),
            Certificate::from_pem(FIXTURE_CERT).expect("the fixture certificate loads"),
        ]
    })
}

/// The fixed age identities: the two test identities, the CCTV one and the CLI fixtures'.
pub fn age_identities() -> &'static [Arc<AgeIdentity>] {
    static I: OnceLock<Vec<Arc<AgeIdentity>>> = OnceLock::new();
    I.get_or_init(|| {
        let mut ids = AgeIdentity::parse_identity_file(AGE_IDENTITIES).expect("test identities");
        ids.extend(AgeIdentity::parse_identity_file(CCTV_IDENTITY).expect("CCTV identity"));
        for text in FIXTURE_IDENTITIES {
            ids.extend(AgeIdentity::parse_identity_file(text).expect("fixture identities"));
        }
        ids.into_iter().map(Arc::new).collect()
    })
}

/// The recipients of [`age_identities`].
pub fn age_recipients() -> &'static [AgeRecipient] {
    static R: OnceLock<Vec<AgeRecipient>> = OnceLock::new();
    R.get_or_init(|| age_identities().iter().map(|i| i.to_public()).collect())
}

/// A keyring with the Go key and every fixed age identity.
pub fn keyring() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| {
        let mut k = Keyring::new();
        k.insert_arc(go_key());
        for id in age_identities() {
            k.insert_age_identity_arc(id.clone());
        }
        k
    })
}

/// `label NUL blob`: splits at the first NUL (a scope label never holds one). Without a NUL the
/// label is empty (cluster-wide) and everything is the blob.
pub fn split_label(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[], data),
    }
}
