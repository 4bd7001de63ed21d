//! Ownership marks: a MAC the controller puts on the Secrets it writes, so that after a restart it
//! can tell, without decrypting anything, that a Secret is still exactly what it made from an
//! unchanged SealedSecret.
//!
//! The MAC key is derived with HKDF-SHA256 from a controller private key, so it is the same on
//! every replica and after every restart, and nobody without that private key can forge a
//! mark. A MAC, unlike a plain hash, reveals nothing about low-entropy secret values: without
//! the key, a guess cannot be checked against it.

use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::{Error, PrivateKey};

/// The HKDF info string. Its wording predates the name "ownership mark"; it is part of the
/// marks already stored on Secrets, so it never changes.
const INFO: &[u8] = b"kseal secret record v1";

fn derive_ownership_key(key: &PrivateKey) -> Result<hmac::Key, Error> {
    let ikm = key.to_pkcs8_der()?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"kseal").extract(&ikm);
    let okm = prk
        .expand(&[INFO], hkdf::HKDF_SHA256)
        .map_err(|_| Error::KeyGeneration("HKDF expand failed".into()))?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    okm.fill(&mut bytes[..])
        .map_err(|_| Error::KeyGeneration("HKDF fill failed".into()))?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes[..]))
}

/// HMAC-SHA256 of `message` under the ownership key derived from `key`.
pub fn ownership_mac(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(
        hmac::sign(key.ownership_key(derive_ownership_key)?, message)
            .as_ref()
            .to_vec(),
    )
}

/// Checks an ownership MAC in constant time.
pub fn verify_ownership_mac(key: &PrivateKey, message: &[u8], mac: &[u8]) -> bool {
    key.ownership_key(derive_ownership_key)
        .is_ok_and(|k| hmac::verify(k, message, mac).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_keyed_and_checked() {
        let k1 = PrivateKey::from_pem(include_bytes!("../tests/data/go_rsa2048.key")).unwrap();
        let mac = ownership_mac(&k1, b"content").unwrap();
        assert_eq!(mac.len(), 32);
        assert_eq!(
            mac,
            ownership_mac(&k1, b"content").unwrap(),
            "deterministic: same on every replica"
        );
        assert!(verify_ownership_mac(&k1, b"content", &mac));
        assert!(!verify_ownership_mac(&k1, b"content!", &mac));
        let mut bad = mac.clone();
        bad[0] ^= 1;
        assert!(!verify_ownership_mac(&k1, b"content", &bad));
    }
}
