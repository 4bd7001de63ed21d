//! Which format a sealed value is in, told by its first bytes.
//!
//! Bitnami's hybrid blob starts with the big-endian length of its RSA ciphertext, which is the
//! modulus size: 256 (`01 00`) for 2048-bit keys up to 1024 (`04 00`) for 8192-bit keys. So any
//! Bitnami blob kseal can open starts with a byte in `0x00..=0x08`. Every other kseal format must
//! start with a printable magic (byte >= 0x20), so the two can never be confused and one
//! SealedSecret may mix them item by item.

use crate::error::HexPrefix;
use crate::Error;

/// A sealed value's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `u16be(len) || RSA-OAEP || AES-256-GCM`, as written by kubeseal.
    BitnamiHybrid,
}

impl Format {
    /// Detects the format of `blob`. Blobs too short to carry a length are reported as Bitnami's,
    /// so that they get Bitnami's `SealedSecret data is too short`.
    pub fn detect(blob: &[u8]) -> Result<Format, Error> {
        match blob.first() {
            None | Some(0x00..=0x08) => Ok(Format::BitnamiHybrid),
            Some(_) => Err(Error::UnknownFormat(HexPrefix(
                blob.iter().take(4).copied().collect(),
            ))),
        }
    }
}
