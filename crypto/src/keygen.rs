//! Key pairs and self-signed certificates with the controller's profile (`pkg/crypto/keys.go`):
//! RSA 4096 (e = 65537), Subject = Issuer = `CN=<cn>` or empty, a random serial in [0, 2^128),
//! NotBefore = now, NotAfter = now + 10 × 365 days, BasicConstraints CA (critical), KeyUsage
//! encipherOnly, a SHA-1 SubjectKeyId as Go derives it, signed with sha256WithRSAEncryption.

use aws_lc_rs::digest;
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use der::Decode;
use rand::{CryptoRng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::cert::Certificate;
use crate::keys::PrivateKey;
use crate::Error;

/// Bitnami's default `--key-ttl` (87600h).
pub const DEFAULT_VALIDITY: Duration = Duration::hours(87_600);
/// Bitnami's default `--key-size`.
pub const DEFAULT_KEY_BITS: usize = 4096;

/// What kind of key and certificate to make.
#[derive(Debug, Clone)]
pub struct KeyProfile {
    /// RSA modulus size: 2048, 3072, 4096 or 8192.
    pub bits: usize,
    /// Certificate common name; `None` (the controller's default) leaves the subject empty.
    pub common_name: Option<String>,
    /// Certificate validity from `now`.
    pub validity: Duration,
}

impl Default for KeyProfile {
    fn default() -> Self {
        KeyProfile {
            bits: DEFAULT_KEY_BITS,
            common_name: None,
            validity: DEFAULT_VALIDITY,
        }
    }
}

/// Generates a key pair and its certificate. The serial comes from `rng`; the RSA primes from
/// aws-lc's own DRBG (its key generation API takes no RNG).
pub fn generate<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    profile: &KeyProfile,
    now: OffsetDateTime,
) -> Result<PrivateKey, Error> {
    let size = match profile.bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        other => return Err(Error::UnsupportedKeySize(other)),
    };
    let aws = PrivateDecryptingKey::generate(size)
        .map_err(|_| Error::KeyGeneration("RSA key generation failed".into()))?;
    let key = PrivateKey::from_aws(aws)?;
    let cert = self_signed(rng, &key, profile, now)?;
    key.with_certificate(cert)
}

/// Makes a self-signed certificate for an existing key with the controller's profile.
pub fn self_signed<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    key: &PrivateKey,
    profile: &KeyProfile,
    now: OffsetDateTime,
) -> Result<Certificate, Error> {
    let gen_err = |e: rcgen::Error| Error::KeyGeneration(e.to_string());
    let pkcs8 = key.to_pkcs8_der()?;
    let signer = KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(gen_err)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = profile.common_name.as_deref().filter(|c| !c.is_empty()) {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    // Serial uniformly random in [0, 2^128), like Go's rand.Int(rand.Reader, 2^128). rcgen
    // writes the bytes as a DER INTEGER, so a leading zero byte is added when the top bit is set.
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    let mut serial_der = serial.to_vec();
    if serial_der[0] & 0x80 != 0 {
        serial_der.insert(0, 0);
    }
    params.serial_number = Some(SerialNumber::from_slice(&serial_der));
    let now = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = now;
    params.not_after = now + profile.validity;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::EncipherOnly];
    // Go derives the SubjectKeyId of a CA as SHA-1 over the subjectPublicKey bits.
    params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id(key)?);
    let cert = params.self_signed(&signer).map_err(gen_err)?;
    Certificate::from_der(cert.der())
}

fn subject_key_id(key: &PrivateKey) -> Result<Vec<u8>, Error> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(key.public_key().spki_der())
        .map_err(|e| Error::KeyGeneration(e.to_string()))?;
    let bits = spki.subject_public_key.raw_bytes();
    Ok(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
        .as_ref()
        .to_vec())
}
