//! Negative vectors: every way a sealed value can be wrong gets its exact error.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use kseal_crypto::{Error, Keyring};

fn go_blob() -> Vec<u8> {
    STANDARD.decode(&vectors()[0].ciphertext_b64).unwrap()
}
const LABEL: &[u8] = b"default/mysecret";

fn ring() -> Keyring {
    [go_key()].into_iter().collect()
}

fn open_err(blob: &[u8]) -> String {
    ring().open(LABEL, blob).unwrap_err().to_string()
}

#[test]
fn control_the_untampered_blob_opens() {
    assert_eq!(
        ring().open(LABEL, &go_blob()).unwrap().expose(),
        b"supersecret"
    );
}

#[test]
fn tampered_tag() {
    let mut b = go_blob();
    *b.last_mut().unwrap() ^= 1;
    assert_eq!(open_err(&b), "no key could decrypt secret");
}

#[test]
fn tampered_body() {
    let mut b = go_blob();
    let i = 2 + 256;
    b[i] ^= 0x80;
    assert_eq!(open_err(&b), "no key could decrypt secret");
}

#[test]
fn tampered_rsa_part() {
    let mut b = go_blob();
    b[10] ^= 1;
    assert_eq!(open_err(&b), "no key could decrypt secret");
}

#[test]
fn truncated_blob() {
    let b = go_blob();
    assert_eq!(open_err(&b[..200]), "SealedSecret data is too short");
    // Long enough for the RSA part but the GCM tag is cut.
    assert_eq!(open_err(&b[..b.len() - 1]), "no key could decrypt secret");
}

#[test]
fn blob_under_two_bytes() {
    assert_eq!(open_err(&[]), "SealedSecret data is too short");
    assert_eq!(open_err(&[1]), "SealedSecret data is too short");
}

#[test]
fn wrong_key() {
    let other: Keyring = [fresh_key().clone()].into_iter().collect();
    let err = other.open(LABEL, &go_blob()).unwrap_err();
    assert!(matches!(err, Error::NoKeyCouldDecrypt));
}

#[test]
fn empty_keyring() {
    assert_eq!(
        Keyring::new()
            .open(LABEL, &go_blob())
            .unwrap_err()
            .to_string(),
        "no key could decrypt secret"
    );
}

#[test]
fn wrong_label() {
    let err = ring().open(b"default/othersecret", &go_blob()).unwrap_err();
    assert!(matches!(err, Error::NoKeyCouldDecrypt));
}

#[test]
fn unknown_format() {
    assert_eq!(
        open_err(b"hello world"),
        "unrecognised ciphertext format (first bytes 68656c6c)"
    );
}

#[test]
fn the_hint_only_orders_the_keys() {
    // A wrong hint still opens (one more private operation); a right hint opens first.
    let ring: Keyring = [fresh_key().clone(), go_key()].into_iter().collect();
    let wrong = fresh_key().fingerprint().clone();
    let (p, used) = ring
        .open_with_hint(std::slice::from_ref(&wrong), LABEL, &go_blob())
        .unwrap();
    assert_eq!(p.expose(), b"supersecret");
    assert_eq!(&used, go_key().fingerprint());
}

#[test]
fn hinted_keys_come_first_and_every_key_is_tried_once() {
    let ring: Keyring = [fresh_key().clone(), go_key()].into_iter().collect();
    let fresh = fresh_key().fingerprint().clone();
    let go = go_key().fingerprint().clone();
    let order = |hint: &[kseal_crypto::Fingerprint]| -> Vec<kseal_crypto::Fingerprint> {
        ring.ordered(hint)
            .map(|k| k.fingerprint().clone())
            .collect()
    };
    assert_eq!(
        order(&[]),
        [fresh.clone(), go.clone()],
        "no hint: insertion order"
    );
    assert_eq!(
        order(std::slice::from_ref(&go)),
        [go.clone(), fresh.clone()]
    );
    // Duplicates and fingerprints of keys the ring does not hold change nothing.
    let unknown = kseal_crypto::Fingerprint::of_rsa(&[1, 0, 1], &[0xc1; 256]);
    assert_eq!(
        order(&[unknown.clone(), go.clone(), go.clone()]),
        [go.clone(), fresh.clone()]
    );
    assert_eq!(order(&[unknown]), [fresh.clone(), go.clone()]);
    // Several hinted keys keep the keyring's order among themselves.
    assert_eq!(order(&[go.clone(), fresh.clone()]), [fresh, go.clone()]);
    let (p, used) = ring
        .open_with_hint(std::slice::from_ref(&go), LABEL, &go_blob())
        .unwrap();
    assert_eq!(p.expose(), b"supersecret");
    assert_eq!(used, go);
}

#[test]
fn debug_never_prints_secrets() {
    let plain = ring().open(LABEL, &go_blob()).unwrap();
    let shown = format!("{plain:?} {:?} {:?}", go_key(), ring());
    assert!(!shown.contains("supersecret"), "{shown}");
    assert!(!shown.contains("MII"), "{shown}");
    assert!(shown.contains("redacted"));
}
