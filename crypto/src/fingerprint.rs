//! Key fingerprints: `SHA256:` + unpadded base64 of SHA-256 over the SSH wire encoding of the RSA
//! public key, exactly what Go's `ssh.FingerprintSHA256` and `ssh-keygen -lf` print. Bitnami uses it
//! as the key registry's map key; kseal also shows it to users and records it as a sealing hint.
//!
//! An age recipient (see [`crate::age`]) gets a fingerprint of the same shape: `SHA256:` + unpadded
//! base64 of SHA-256 over its canonical text, the lower-case `age1…` string. It can be reproduced
//! with `printf %s age1… | openssl dgst -sha256 -binary | base64 | tr -d =`. The two preimages
//! cannot be confused (an RSA one starts with the bytes `00 00 00 07 ssh-rsa`, an age one with
//! `age1`), so one [`Fingerprint`] type names keys of both formats in hints, reports and key sets.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

/// An SSH SHA256 fingerprint of an RSA public key, e.g. `SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU`,
/// or the fingerprint of an age recipient (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Computes the fingerprint of the RSA key with big-endian `exponent` and `modulus`.
    pub fn of_rsa(exponent: &[u8], modulus: &[u8]) -> Self {
        let mut wire = Vec::with_capacity(modulus.len() + 32);
        put_string(&mut wire, b"ssh-rsa");
        put_mpint(&mut wire, exponent);
        put_mpint(&mut wire, modulus);
        let d = digest::digest(&digest::SHA256, &wire);
        Fingerprint(format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref())))
    }

    /// Computes the fingerprint of an age recipient from its canonical (lower-case) `age1…` text.
    pub(crate) fn of_age_recipient(canonical: &str) -> Self {
        let d = digest::digest(&digest::SHA256, canonical.as_bytes());
        Fingerprint(format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref())))
    }

    /// The text form, `SHA256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// SSH `mpint`: two's complement big-endian, no redundant leading zeros, a zero byte prepended
/// when the top bit is set so that a positive number does not read as negative.
fn put_mpint(out: &mut Vec<u8>, n: &[u8]) {
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let n = &n[first..];
    let pad = n.first().is_some_and(|&b| b & 0x80 != 0);
    out.extend_from_slice(&((n.len() + pad as usize) as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(n);
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Error for text that is not a `SHA256:` fingerprint.
#[derive(Debug, thiserror::Error)]
#[error("invalid key fingerprint {0:?}: expected SHA256: followed by 43 base64 characters")]
pub struct InvalidFingerprint(pub String);

impl FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s
            .strip_prefix("SHA256:")
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .is_some_and(|d| d.len() == 32);
        if ok {
            Ok(Fingerprint(s.to_string()))
        } else {
            Err(InvalidFingerprint(s.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_encoding() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0x00, 0x80, 0x01]);
        assert_eq!(v, [0, 0, 0, 3, 0, 0x80, 0x01]);
        v.clear();
        put_mpint(&mut v, &[0x01, 0x00, 0x01]);
        assert_eq!(v, [0, 0, 0, 3, 1, 0, 1]);
    }

    #[test]
    fn parse_round_trip() {
        let f = Fingerprint::of_rsa(&[1, 0, 1], &[0xc1; 256]);
        assert_eq!(f.as_str().parse::<Fingerprint>().unwrap(), f);
        assert!("MD5:abc".parse::<Fingerprint>().is_err());
    }
}
