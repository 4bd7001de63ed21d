//! RSA public and private keys.
//!
//! Private operations go through aws-lc-rs (see the crate docs for why). The RustCrypto `der`,
//! `spki`, `pkcs1` and `pkcs8` crates are used only to move key bytes between container formats;
//! they do no arithmetic on secret values.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    OAEP_SHA256_MGF1SHA256,
};
use der::asn1::AnyRef;
use der::{Decode, Encode};
use spki::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::pem;
use crate::{Error, Fingerprint, SecretBytes};

/// OID of `rsaEncryption` (PKCS#1), the algorithm of every key kseal accepts.
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An RSA public key, as found in a sealing certificate.
#[derive(Clone)]
pub struct PublicKey {
    key: PublicEncryptingKey,
    spki_der: Arc<[u8]>,
    modulus: Arc<[u8]>,
    fingerprint: Fingerprint,
}

impl PublicKey {
    /// Reads an X.509 `SubjectPublicKeyInfo` (DER). Only RSA keys of 2048 to 8192 bits are accepted.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::InvalidPublicKey(e.to_string()))?;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(Error::NotRsaCertificate(algorithm_name(
                &spki.algorithm.oid,
            )));
        }
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::InvalidPublicKey("unaligned key bits".into()))?;
        let rsa = pkcs1::RsaPublicKey::from_der(bits)
            .map_err(|e| Error::InvalidPublicKey(e.to_string()))?;
        let fingerprint =
            Fingerprint::of_rsa(rsa.public_exponent.as_bytes(), rsa.modulus.as_bytes());
        let modulus: Arc<[u8]> = rsa.modulus.as_bytes().into();
        let key = PublicEncryptingKey::from_der(der).map_err(|e| {
            Error::InvalidPublicKey(format!(
                "{e} (kseal accepts RSA keys of 2048 to 8192 bits, this one has {})",
                modulus_bits(&modulus)
            ))
        })?;
        Ok(PublicKey {
            key,
            spki_der: der.into(),
            modulus,
            fingerprint,
        })
    }

    /// The SSH SHA256 fingerprint (Bitnami's key id).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        modulus_bits(&self.modulus)
    }

    /// Modulus size in bytes, which is also the size of an RSA-OAEP ciphertext under this key.
    pub fn size_bytes(&self) -> usize {
        self.bits().div_ceil(8)
    }

    /// The `SubjectPublicKeyInfo` DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// RSA-OAEP(SHA-256, MGF1-SHA-256) encryption of a short `message` under `label`.
    /// The OAEP seed comes from aws-lc's own DRBG (the API does not let it be injected).
    pub(crate) fn oaep_encrypt(&self, label: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
        let oaep = OaepPublicEncryptingKey::new(self.key.clone()).map_err(|_| Error::Encrypt)?;
        let mut out = vec![0u8; oaep.ciphertext_size()];
        let n = oaep
            .encrypt(&OAEP_SHA256_MGF1SHA256, message, &mut out, non_empty(label))
            .map_err(|_| Error::Encrypt)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{}, {})", self.bits(), self.fingerprint)
    }
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let first = modulus
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(modulus.len());
    let m = &modulus[first..];
    m.first()
        .map_or(0, |&b| (m.len() - 1) * 8 + (8 - b.leading_zeros() as usize))
}

/// aws-lc-rs treats `Some(&[])` and `None` alike, but say so explicitly: Bitnami's cluster-wide
/// label is the empty string, whose OAEP label hash is SHA-256("").
fn non_empty(label: &[u8]) -> Option<&[u8]> {
    (!label.is_empty()).then_some(label)
}

pub(crate) fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "ECDSA".to_string(),
        "1.3.101.112" => "Ed25519".to_string(),
        "1.3.101.110" => "X25519".to_string(),
        "1.2.840.10040.4.1" => "DSA".to_string(),
        other => other.to_string(),
    }
}

/// An RSA private key (with its certificate when one is known).
///
/// The key material lives inside aws-lc (freed and cleansed by its `EVP_PKEY` destructor); any
/// copy this crate makes for encoding sits in a `Zeroizing` buffer. `Debug` shows only the
/// fingerprint.
#[derive(Clone)]
pub struct PrivateKey {
    key: PrivateDecryptingKey,
    public: PublicKey,
    certificate: Option<Certificate>,
    /// The HMAC key of ownership marks, derived once (see `ownership`): deriving it exports the
    /// private key, which must not happen per reconcile.
    ownership_key: std::sync::OnceLock<aws_lc_rs::hmac::Key>,
}

impl PrivateKey {
    /// Reads the first private key of a PEM text: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8
    /// (`PRIVATE KEY`). If the text also holds a certificate for this key, it is attached.
    pub fn from_pem(text: &[u8]) -> Result<Self, Error> {
        let blocks = pem::blocks(text);
        let mut key = None;
        for b in &blocks {
            match b.label.as_str() {
                "RSA PRIVATE KEY" => key = Some(Self::from_pkcs1_der(&b.der)?),
                "PRIVATE KEY" => key = Some(Self::from_pkcs8_der(&b.der)?),
                "EC PRIVATE KEY" | "OPENSSH PRIVATE KEY" | "DSA PRIVATE KEY" => {
                    return Err(Error::NotRsaKey)
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(Error::InvalidPrivateKey(
                        "encrypted PEM keys are not supported; decrypt it first".into(),
                    ))
                }
                _ => continue,
            }
            break;
        }
        let key = key.ok_or(Error::NoPrivateKey)?;
        // A bundle (key + certificate) in one file: attach the certificate when it matches.
        let cert = Certificate::from_pem(text).ok();
        Ok(match cert {
            Some(c) if c.public_key() == key.public_key() => key.with_certificate(c)?,
            _ => key,
        })
    }

    /// Reads a PKCS#1 `RSAPrivateKey` (DER).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        // aws-lc-rs takes PKCS#8, so wrap the PKCS#1 structure in a PrivateKeyInfo.
        let info = pkcs8::PrivateKeyInfo {
            algorithm: spki::AlgorithmIdentifier {
                oid: RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL),
            },
            private_key: der,
            public_key: None,
        };
        let mut buf = Zeroizing::new(Vec::new());
        info.encode_to_vec(&mut buf)
            .map_err(|e| Error::InvalidPrivateKey(e.to_string()))?;
        Self::from_pkcs8_der(&buf)
    }

    /// Reads a PKCS#8 `PrivateKeyInfo` (DER) holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| Error::InvalidPrivateKey(e.to_string()))?;
        if info.algorithm.oid != RSA_ENCRYPTION {
            return Err(Error::NotRsaKey);
        }
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|e| {
            Error::InvalidPrivateKey(format!("{e} (kseal accepts RSA keys of 2048 to 8192 bits)"))
        })?;
        Self::from_aws(key)
    }

    pub(crate) fn from_aws(key: PrivateDecryptingKey) -> Result<Self, Error> {
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| Error::InvalidPrivateKey("cannot derive the public key".into()))?;
        let public = PublicKey::from_spki_der(spki.as_ref())?;
        Ok(PrivateKey {
            key,
            public,
            certificate: None,
            ownership_key: std::sync::OnceLock::new(),
        })
    }

    /// Attaches the certificate that publishes this key. Refuses a certificate for another key,
    /// which would make the controller hand out a certificate it cannot decrypt for.
    pub fn with_certificate(mut self, cert: Certificate) -> Result<Self, Error> {
        if cert.public_key() != &self.public {
            return Err(Error::InvalidCertificate(format!(
                "certificate key {} does not match private key {}",
                cert.public_key().fingerprint(),
                self.public.fingerprint()
            )));
        }
        self.certificate = Some(cert);
        Ok(self)
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's fingerprint (Bitnami's key id).
    pub fn fingerprint(&self) -> &Fingerprint {
        self.public.fingerprint()
    }

    /// The certificate, if one was loaded or generated with the key.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// The ownership-mark HMAC key, derived on first use and kept.
    pub(crate) fn ownership_key(
        &self,
        derive: impl FnOnce(&Self) -> Result<aws_lc_rs::hmac::Key, Error>,
    ) -> Result<&aws_lc_rs::hmac::Key, Error> {
        if let Some(k) = self.ownership_key.get() {
            return Ok(k);
        }
        let k = derive(self)?;
        Ok(self.ownership_key.get_or_init(|| k))
    }

    /// PKCS#8 DER, zeroized on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let der = self
            .key
            .as_der()
            .map_err(|_| Error::InvalidPrivateKey("cannot encode key".into()))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// PEM `RSA PRIVATE KEY` (PKCS#1), the form Bitnami writes into key Secrets. Zeroized on drop.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, Error> {
        let pkcs8 = self.to_pkcs8_der()?;
        let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8)
            .map_err(|e| Error::InvalidPrivateKey(e.to_string()))?;
        Ok(pem::encode("RSA PRIVATE KEY", info.private_key))
    }

    /// RSA-OAEP(SHA-256) decryption in constant time (aws-lc). `None` on any failure: callers must
    /// not learn why (padding vs. length), which is what the Marvin/Bleichenbacher attacks feed on.
    pub(crate) fn oaep_decrypt(&self, label: &[u8], ciphertext: &[u8]) -> Option<SecretBytes> {
        RSA_DECRYPTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let oaep = OaepPrivateDecryptingKey::new(self.key.clone()).ok()?;
        let mut out = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
        let n = oaep
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                ciphertext,
                &mut out,
                non_empty(label),
            )
            .ok()?
            .len();
        Some(SecretBytes::from_slice(&out[..n]))
    }
}

static RSA_DECRYPTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many RSA private-key operations this process has performed (successful or not): the
/// expensive step of opening a value, which the controller's metrics and benchmarks report.
pub fn rsa_decryptions() -> u64 {
    RSA_DECRYPTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(RSA-{}, {}, <redacted>)",
            self.public.bits(),
            self.public.fingerprint()
        )
    }
}
