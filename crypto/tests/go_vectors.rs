//! Ciphertexts made by Bitnami's own Go code must open here, under their label and no other.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use kseal_crypto::{Error, Keyring, Scope};

fn label_of(v: &Vector) -> Vec<u8> {
    v.scope
        .parse::<Scope>()
        .unwrap()
        .label(&v.namespace, &v.name)
}

#[test]
fn every_go_vector_opens_under_its_own_label() {
    let ring: Keyring = [go_key()].into_iter().collect();
    let vs = vectors();
    assert_eq!(vs.len(), 7, "the vector file changed");
    for v in &vs {
        let blob = STANDARD.decode(&v.ciphertext_b64).unwrap();
        let plain = ring
            .open(&label_of(v), &blob)
            .unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(
            plain.expose(),
            STANDARD.decode(&v.plaintext_b64).unwrap(),
            "{}",
            v.id
        );
    }
}

#[test]
fn every_go_vector_fails_under_every_other_label() {
    let ring: Keyring = [go_key()].into_iter().collect();
    let vs = vectors();
    // Every label any vector uses, under every scope, plus a few near misses.
    let mut labels: Vec<Vec<u8>> = Vec::new();
    for v in &vs {
        for s in Scope::ALL {
            labels.push(s.label(&v.namespace, &v.name));
        }
    }
    labels.extend([
        b"default/mysecret ".to_vec(),
        b"default".to_vec(),
        b"/".to_vec(),
    ]);
    labels.sort();
    labels.dedup();
    for v in &vs {
        let blob = STANDARD.decode(&v.ciphertext_b64).unwrap();
        let own = label_of(v);
        for l in labels.iter().filter(|l| **l != own) {
            let err = ring.open(l, &blob).unwrap_err();
            assert!(
                matches!(err, Error::NoKeyCouldDecrypt),
                "{} under {:?}: {err}",
                v.id,
                String::from_utf8_lossy(l)
            );
        }
    }
}

#[test]
fn fingerprints_match_ssh_keygen() {
    // Values printed by `ssh-keygen -lf` for these keys.
    let go = kseal_crypto::Certificate::from_pem(GO_CERT).unwrap();
    assert_eq!(
        go.fingerprint().as_str(),
        "SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4"
    );
    assert_eq!(go_key().fingerprint(), go.fingerprint());
    let ks = kseal_crypto::Certificate::from_pem(KUBESEAL_TEST_CERT).unwrap();
    assert_eq!(
        ks.fingerprint().as_str(),
        "SHA256:GGkvu+e9oSv0lC5zQgZeFDtW/h7L0lSIV4QFz6+0tcI"
    );
    assert_eq!(ks.public_key().bits(), 4096);
    assert_eq!(ks.subject(), "");
}

#[test]
fn sealing_with_go_cert_opens_with_go_key() {
    let cert = kseal_crypto::Certificate::from_pem(GO_CERT).unwrap();
    let ring: Keyring = [go_key()].into_iter().collect();
    let blob = kseal_crypto::seal(cert.public_key(), b"ns/name", b"hello").unwrap();
    assert_eq!(&blob[..2], &[0x01, 0x00], "2048-bit key: 256-byte RSA part");
    assert_eq!(blob.len(), 2 + 256 + 5 + 16);
    assert_eq!(ring.open(b"ns/name", &blob).unwrap().expose(), b"hello");
}
