//! The one error type of the sealing library.

use std::fmt;

/// Everything that can go wrong while sealing, opening, or reading keys and certificates.
///
/// Messages are lower-case, one line, and never contain plaintext or private key material.
/// Where Bitnami's tools print a fixed text, the same text is used so scripts keep matching it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob is shorter than its own length prefix says (Bitnami's exact message).
    #[error("SealedSecret data is too short")]
    TooShort,
    /// No key of the keyring opened the blob under the given label (Bitnami's exact message).
    #[error("no key could decrypt secret")]
    NoKeyCouldDecrypt,
    /// The first bytes of the blob match no format kseal knows.
    #[error("unrecognised ciphertext format (first bytes {0})")]
    UnknownFormat(HexPrefix),
    /// The public-key operation failed (for example a plaintext too long for the key).
    #[error("encryption failed")]
    Encrypt,
    /// The input held no PEM `CERTIFICATE` block.
    #[error("no PEM certificate found")]
    NoCertificate,
    /// The input held no PEM `CERTIFICATE` block but a private key: the user gave the key file
    /// where the certificate was expected.
    #[error("no PEM certificate found: this is a private key (give the certificate, e.g. tls.crt, not tls.key)")]
    KeyInsteadOfCertificate,
    /// The certificate could not be decoded.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The certificate carries a key that is not RSA.
    #[error("certificate public key is not RSA (algorithm {0})")]
    NotRsaCertificate(String),
    /// The certificate's NotAfter has passed (Bitnami's exact message, Go date layout `January 2, 2006`).
    #[error("failed to encrypt using an expired certificate on {0}")]
    ExpiredCertificate(String),
    /// The public key could not be used.
    #[error("invalid RSA public key: {0}")]
    InvalidPublicKey(String),
    /// The input held no PEM private key block.
    #[error("no PEM private key found")]
    NoPrivateKey,
    /// A private key could not be decoded (the reason never quotes key bytes).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// A private key of another algorithm (Bitnami's exact message).
    #[error("private key is not an RSA key")]
    NotRsaKey,
    /// Key generation or certificate signing failed.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// An unsupported RSA key size was requested.
    #[error("unsupported key size {0}: use 2048, 3072, 4096 or 8192")]
    UnsupportedKeySize(usize),
    /// A scope name that is not one of the three.
    #[error("must be one of: strict, namespace-wide, cluster-wide")]
    InvalidScope,
    /// An age value opened, but the scope label sealed inside it is not the label of where the
    /// item sits now: it was renamed, moved to another namespace, copied from another
    /// SealedSecret, or its scope changed. The age counterpart of a failed RSA-OAEP label check;
    /// neither label is quoted.
    #[error("sealed for another name, namespace or scope")]
    LabelMismatch,
    /// An ASCII-armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`) where a binary one belongs.
    #[error("armored age input is not accepted: a sealed value is a binary age file (base64 in the SealedSecret)")]
    ArmoredAge,
    /// An age blob whose structure is wrong: a header age cannot parse, or a payload that is not
    /// `kseal-age/v1`. The reason is a fixed text.
    #[error("malformed age blob: {0}")]
    MalformedAge(&'static str),
    /// Sealing in the age format was asked for with no recipient.
    #[error("no age recipient given")]
    NoAgeRecipients,
    /// Text that is not an age recipient kseal supports (the text itself is not quoted: it may be
    /// a secret key pasted by mistake).
    #[error("invalid age recipient: {0}")]
    InvalidAgeRecipient(String),
    /// An age identity or identity file that cannot be read (the reason never quotes key bytes).
    #[error("invalid age identity: {0}")]
    InvalidAgeIdentity(String),
}

/// The first bytes of an unrecognised blob, printed as hex. Ciphertext, so safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPrefix(pub Vec<u8>);

impl fmt::Display for HexPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
