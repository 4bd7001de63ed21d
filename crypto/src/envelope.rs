//! Which format a sealed value is in, told by its first bytes.
//!
//! Bitnami's hybrid blob starts with the big-endian length of its RSA ciphertext, which is the
//! modulus size: 256 (`01 00`) for 2048-bit keys up to 1024 (`04 00`) for 8192-bit keys. So any
//! Bitnami blob kseal can open starts with a byte in `0x00..=0x08`. Every other kseal format must
//! start with a printable magic (byte >= 0x20), so the two can never be confused and one
//! SealedSecret may mix them item by item.
//!
//! The age format ([`crate::age`]) is a binary age file, which always starts with its version line
//! `age-encryption.org/v1`. Any blob starting with `age-encryption.org/` is reported as age, so
//! that a future or damaged version line gets age's own "malformed" error rather than "unknown
//! format". ASCII-armored age (`-----BEGIN AGE ENCRYPTED FILE-----`) is refused with
//! [`Error::ArmoredAge`]: a SealedSecret stores the binary file, base64-encoded.

use std::fmt;

use crate::error::HexPrefix;
use crate::Error;

/// The prefix every age file starts with (its version line is `age-encryption.org/v1`).
pub(crate) const AGE_PREFIX: &[u8] = b"age-encryption.org/";
/// The first line of age's ASCII armor.
const AGE_ARMOR_PREFIX: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// A sealed value's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `u16be(len) || RSA-OAEP || AES-256-GCM`, as written by kubeseal.
    BitnamiHybrid,
    /// A binary age file whose payload is `kseal-age/v1` (see [`crate::age`]).
    Age,
}

impl Format {
    /// Detects the format of `blob`. Blobs too short to carry a length are reported as Bitnami's,
    /// so that they get Bitnami's `SealedSecret data is too short`.
    pub fn detect(blob: &[u8]) -> Result<Format, Error> {
        match blob.first() {
            None | Some(0x00..=0x08) => Ok(Format::BitnamiHybrid),
            Some(_) if blob.starts_with(AGE_PREFIX) => Ok(Format::Age),
            Some(_) if blob.trim_ascii_start().starts_with(AGE_ARMOR_PREFIX) => {
                Err(Error::ArmoredAge)
            }
            Some(_) => Err(Error::UnknownFormat(HexPrefix(
                blob.iter().take(4).copied().collect(),
            ))),
        }
    }

    /// A short lower-case name for reports: `bitnami` or `age`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::BitnamiHybrid => "bitnami",
            Format::Age => "age",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_first_bytes() {
        assert_eq!(Format::detect(b"").unwrap(), Format::BitnamiHybrid);
        assert_eq!(
            Format::detect(&[0x02, 0x00, 1]).unwrap(),
            Format::BitnamiHybrid
        );
        assert_eq!(
            Format::detect(b"age-encryption.org/v1\n-> X25519").unwrap(),
            Format::Age
        );
        assert!(matches!(
            Format::detect(b"\n-----BEGIN AGE ENCRYPTED FILE-----\n"),
            Err(Error::ArmoredAge)
        ));
        assert_eq!(
            Format::detect(b"age!").unwrap_err().to_string(),
            "unrecognised ciphertext format (first bytes 61676521)"
        );
    }
}
