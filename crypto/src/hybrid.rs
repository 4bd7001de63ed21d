//! Bitnami's hybrid format (`pkg/crypto/crypto.go`), byte for byte:
//!
//! ```text
//! u16be(L) || RSA-OAEP(SHA-256, MGF1-SHA-256, label)(session key) [L bytes] || AES-256-GCM(plaintext) || tag
//! ```
//!
//! The 32-byte session key is fresh for every value and used for exactly one GCM encryption, so
//! the all-zero GCM nonce never repeats under a key: that is why Bitnami can fix it, and why we
//! must too (the nonce is not stored). There is no AAD; the scope binding lives in the OAEP label.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, SecretBytes};

const SESSION_KEY_LEN: usize = 32;
const ZERO_NONCE: [u8; 12] = [0; 12];

/// Seals `plaintext` for `key` under `label`, taking the session key from `rng`.
pub fn seal_with_rng<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    key: &PublicKey,
    label: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut session_key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
    rng.fill_bytes(&mut session_key[..]);
    let wrapped = key.oaep_encrypt(label, &session_key[..])?;
    let len = u16::try_from(wrapped.len()).map_err(|_| Error::Encrypt)?;

    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &session_key[..]).map_err(|_| Error::Encrypt)?,
    );
    let mut out = Vec::with_capacity(2 + wrapped.len() + plaintext.len() + 16);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&wrapped);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(body_start);
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(ZERO_NONCE),
        Aad::empty(),
        &mut body,
    )
    .map_err(|_| Error::Encrypt)?;
    out.append(&mut body);
    Ok(out)
}

/// The parts of a hybrid blob, split without any secret operation.
pub(crate) struct Parts<'a> {
    pub wrapped_key: &'a [u8],
    pub body: &'a [u8],
}

/// Splits a blob; `SealedSecret data is too short` exactly where Bitnami says it.
pub(crate) fn split(blob: &[u8]) -> Result<Parts<'_>, Error> {
    if blob.len() < 2 {
        return Err(Error::TooShort);
    }
    let len = u16::from_be_bytes([blob[0], blob[1]]) as usize;
    if blob.len() < len + 2 {
        return Err(Error::TooShort);
    }
    Ok(Parts {
        wrapped_key: &blob[2..2 + len],
        body: &blob[2 + len..],
    })
}

/// Checks the structure of a Bitnami blob without any secret operation and returns the length
/// of its RSA part (the modulus size of the key that sealed it: 256 for RSA-2048). Errors:
/// [`Error::TooShort`] when the length prefix does not fit or no AES-GCM tag (16 bytes) follows.
/// For offline checks (`kseal verify`); opening does the same checks itself.
pub fn wrapped_key_len(blob: &[u8]) -> Result<usize, Error> {
    let parts = split(blob)?;
    if parts.body.len() < 16 {
        return Err(Error::TooShort);
    }
    Ok(parts.wrapped_key.len())
}

/// Tries to open `parts` with one key. `None` for every kind of failure, so that callers cannot
/// tell an OAEP failure from a GCM failure (no padding oracle).
pub(crate) fn open_with(key: &PrivateKey, label: &[u8], parts: &Parts<'_>) -> Option<SecretBytes> {
    // The wrapped key is exactly one modulus long; a key of another size cannot have made it.
    // Both lengths are public, so skipping here leaks nothing and saves a private operation.
    if parts.wrapped_key.len() != key.public_key().size_bytes() {
        return None;
    }
    let session_key = key.oaep_decrypt(label, parts.wrapped_key)?;
    // Bitnami always writes 32-byte keys; Go's aes.NewCipher would also take 16, so we do too.
    let alg = match session_key.len() {
        32 => &AES_256_GCM,
        16 => &AES_128_GCM,
        _ => return None,
    };
    let aead = LessSafeKey::new(UnboundKey::new(alg, session_key.expose()).ok()?);
    let mut buf = Zeroizing::new(parts.body.to_vec());
    let plain = aead
        .open_in_place(
            Nonce::assume_unique_for_key(ZERO_NONCE),
            Aad::empty(),
            &mut buf,
        )
        .ok()?;
    Some(SecretBytes::from_slice(plain))
}
