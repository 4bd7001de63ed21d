//! kseal-crypto: the sealing library of kseal.
//!
//! It implements, byte for byte, the format Bitnami's kubeseal writes and its controller reads
//! (docs/compatibility.md, “What wire-compatible means”), plus the keys and certificates around it:
//!
//! - [`seal_with_rng`] / [`Keyring::open`]: the hybrid format
//!   `u16be(len) || RSA-OAEP(SHA-256, MGF1-SHA-256, label) || AES-256-GCM` ([`hybrid`]);
//! - [`Scope`]: strict, namespace-wide and cluster-wide labels;
//! - [`Certificate`], [`PublicKey`], [`PrivateKey`], [`Fingerprint`]: PEM/DER reading, the SSH
//!   SHA256 fingerprint Bitnami uses as key id;
//! - [`keygen`]: key pairs and certificates with the controller's profile;
//! - [`Format`]: which format a blob is in, from its first bytes;
//! - [`seal_age`] / [`Keyring::open`]: the second format, a binary age file to X25519 recipients
//!   whose payload binds the value to its scope label ([`age`], which documents the envelope and
//!   why it is safe); [`AgeRecipient`], [`AgeIdentity`].
//!
//! Boundaries: no Kubernetes client, no async runtime, no CLI parsing. Everything here is
//! synchronous and deterministic given its inputs (randomness is injected where the underlying
//! library allows it; time is always a parameter).
//!
//! # Why aws-lc-rs for RSA
//!
//! The controller decrypts ciphertexts that anyone allowed to create a SealedSecret can craft,
//! and answers `/v1/verify` about them. Any timing difference in the RSA private operation or
//! in the OAEP padding check is a decryption oracle (Bleichenbacher, Manger, and the Marvin
//! attack, which found such leaks in most RSA implementations). The pure-Rust `rsa` crate is
//! listed as vulnerable to Marvin in every version (RUSTSEC-2023-0071), so it is not used at
//! all. aws-lc-rs binds AWS-LC, whose RSA uses constant-time, blinded Montgomery arithmetic and
//! a constant-time OAEP decoding (inherited from BoringSSL and formally verified in parts), and
//! which is FIPS 140-3 validated. It also runs the private operation about as fast as OpenSSL.
//! On top of that, this crate never tells a caller *why* a value failed to open: an OAEP failure,
//! a GCM failure and a wrong key all give [`Error::NoKeyCouldDecrypt`].
//!
//! # Randomness
//!
//! Every random value comes from the operating system's generator (`getrandom`): the AES keys
//! and nonces kseal draws itself through `rand::rngs::OsRng`, and, inside AWS-LC, the OAEP seeds,
//! RSA blinding values and key generation, which AWS-LC draws from its own DRBG. By default
//! AWS-LC seeds that DRBG from a CPU-jitter entropy collector (timing noise of a busy loop),
//! which costs about 50 ms of CPU at the first random number of every process: nearly all of a
//! `kseal seal` (the sealing itself takes 0.2 ms). The workspace's `.cargo/config.toml` sets
//! `AWS_LC_SYS_NO_JITTER_ENTROPY=1`, with which aws-lc-sys builds AWS-LC with
//! `DISABLE_CPU_JITTER_ENTROPY`: AWS-LC's "opt-out CPU jitter" entropy source then seeds the
//! DRBG from the OS (`CRYPTO_sysrand`, i.e. `getrandom`, the same source the kernel gives every
//! other program), with RDRAND as its second, personalisation input. No random value depends on
//! the jitter source, so nothing is weaker; kseal is not a FIPS build, for which the jitter
//! source is the validated one. docs/architecture.md, "Randomness", has the measurement.
//!
//! # Secret hygiene
//!
//! Plaintexts come back as [`SecretBytes`] (zeroized on drop, `Debug` redacted). Private keys
//! live inside aws-lc; every copy made for encoding is `Zeroizing`. Age identities live in
//! `x25519_dalek::StaticSecret` (wiped on drop); see [`age`] for the `age` crate's limits. No
//! `Debug` or `Display` in this crate prints key material or plaintext, and error messages never
//! quote either.

pub mod age;
mod age_pq;
pub mod cert;
pub mod envelope;
mod error;
mod fingerprint;
pub mod hybrid;
pub mod keygen;
mod keyring;
mod keys;
pub mod ownership;
mod pem;
pub mod scope;
mod secret;

pub use crate::age::{
    decrypt_age_file, inspect_age, open_age, seal_age, AgeHeader, AgeIdentity, AgeKeyType,
    AgeRecipient,
};
pub use cert::Certificate;
pub use envelope::Format;
pub use error::{Error, HexPrefix};
pub use fingerprint::{Fingerprint, InvalidFingerprint};
pub use hybrid::seal_with_rng;
pub use keyring::Keyring;
pub use keys::{rsa_decryptions, PrivateKey, PublicKey};
pub use scope::Scope;
pub use secret::SecretBytes;

/// Seals with the operating system's random generator.
pub fn seal(key: &PublicKey, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    seal_with_rng(&mut rand::rngs::OsRng, key, label, plaintext)
}

/// SHA-256 of `data` (the seal records of `kseal-crds` hash public data with it).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex SHA-256 of `data` (Sprig's `sha256sum`, content hashes).
pub fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
