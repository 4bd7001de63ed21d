//! Keys and certificates (key files and key Secrets: `kseal-sealing`, tests/key_files.rs).

mod common;

use common::*;
use der::{Decode, Encode};
use kseal_crypto::keygen::{self, KeyProfile};
use kseal_crypto::{Certificate, Error, Keyring, PrivateKey};
use time::macros::datetime;

#[test]
fn pkcs1_and_pkcs8_read_the_same_key() {
    let k1 = PrivateKey::from_pem(GO_KEY).unwrap();
    let pkcs8 = k1.to_pkcs8_der().unwrap();
    let k8 = PrivateKey::from_pkcs8_der(&pkcs8).unwrap();
    assert_eq!(k1.fingerprint(), k8.fingerprint());
    // Round trip through our PKCS#1 PEM writer.
    let again = PrivateKey::from_pem(k1.to_pkcs1_pem().unwrap().as_bytes()).unwrap();
    assert_eq!(again.fingerprint(), k1.fingerprint());
    assert!(k1
        .to_pkcs1_pem()
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
}

#[test]
fn non_rsa_keys_and_certs_are_refused() {
    // A P-256 key and certificate made by openssl.
    let ec_key = include_bytes!("data/ec_key.pem");
    assert!(matches!(
        PrivateKey::from_pem(ec_key),
        Err(Error::NotRsaKey)
    ));
    let err = Certificate::from_pem(include_bytes!("data/ec_cert.pem")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate public key is not RSA (algorithm ECDSA)"
    );
}

#[test]
fn missing_and_garbage_input() {
    assert_eq!(
        Certificate::from_pem(b"not a pem").unwrap_err().to_string(),
        "no PEM certificate found"
    );
    assert_eq!(
        PrivateKey::from_pem(b"").unwrap_err().to_string(),
        "no PEM private key found"
    );
    let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(Certificate::from_pem(bad)
        .unwrap_err()
        .to_string()
        .starts_with("invalid certificate: "));
}

#[test]
fn first_certificate_of_a_chain() {
    let chain = [KUBESEAL_TEST_CERT, GO_CERT].concat();
    let c = Certificate::from_pem(&chain).unwrap();
    assert_eq!(c, Certificate::from_pem(KUBESEAL_TEST_CERT).unwrap());
}

#[test]
fn expired_certificate_message() {
    let c = Certificate::from_pem(KUBESEAL_TEST_CERT).unwrap();
    assert!(c.check_not_expired(datetime!(2027-01-01 0:00 UTC)).is_ok());
    assert_eq!(
        c.check_not_expired(datetime!(2027-07-01 0:00 UTC))
            .unwrap_err()
            .to_string(),
        "failed to encrypt using an expired certificate on June 18, 2027"
    );
}

#[test]
fn generated_certificate_has_the_controller_profile() {
    let now = datetime!(2026-11-21 12:00:00 UTC);
    let key = keygen::generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        now,
    )
    .unwrap();
    let cert = key.certificate().unwrap();
    assert_eq!(cert.subject(), "");
    assert_eq!(cert.issuer(), "");
    assert_eq!(cert.not_before(), now);
    assert_eq!(cert.not_after(), now + time::Duration::hours(87_600));
    assert_eq!(cert.public_key().bits(), 2048);

    let x = x509_cert::Certificate::from_der(cert.der()).unwrap();
    let exts = x.tbs_certificate.extensions.clone().unwrap();
    let find = |oid: &str| {
        exts.iter()
            .find(|e| e.extn_id.to_string() == oid)
            .unwrap_or_else(|| panic!("no {oid}"))
    };
    // BasicConstraints CA:TRUE, critical.
    let bc = find("2.5.29.19");
    assert!(bc.critical);
    let bc = x509_cert::ext::pkix::BasicConstraints::from_der(bc.extn_value.as_bytes()).unwrap();
    assert!(bc.ca);
    // KeyUsage: encipherOnly only.
    let ku =
        x509_cert::ext::pkix::KeyUsage::from_der(find("2.5.29.15").extn_value.as_bytes()).unwrap();
    assert!(
        ku.encipher_only()
            && !ku.key_encipherment()
            && !ku.digital_signature()
            && !ku.key_cert_sign()
    );
    // SubjectKeyId present (20-byte SHA-1, like Go), no SAN/EKU/AKI.
    let ski = x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(
        find("2.5.29.14").extn_value.as_bytes(),
    )
    .unwrap();
    assert_eq!(ski.0.as_bytes().len(), 20);
    for absent in ["2.5.29.17", "2.5.29.37", "2.5.29.35"] {
        assert!(
            exts.iter().all(|e| e.extn_id.to_string() != absent),
            "{absent} present"
        );
    }
    // Serial is a positive integer below 2^128 (at most 17 DER bytes with the sign byte).
    assert!(x.tbs_certificate.serial_number.as_bytes().len() <= 17);
    assert_eq!(
        x.signature_algorithm.oid.to_string(),
        "1.2.840.113549.1.1.11"
    );
    // Sealing against the certificate opens with the key.
    let blob = kseal_crypto::seal(cert.public_key(), b"a/b", b"x").unwrap();
    let ring: Keyring = [key.clone()].into_iter().collect();
    assert_eq!(ring.open(b"a/b", &blob).unwrap().expose(), b"x");
    let _ = x.to_der().unwrap();
}

#[test]
fn common_name_and_default_size() {
    let key = keygen::generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            common_name: Some("sealed-secret".into()),
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(key.public_key().bits(), 4096);
    assert_eq!(key.certificate().unwrap().subject(), "CN=sealed-secret");
}

#[test]
fn unsupported_key_size() {
    let err = keygen::generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 1024,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported key size 1024: use 2048, 3072, 4096 or 8192"
    );
}
