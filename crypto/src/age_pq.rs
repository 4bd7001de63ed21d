//! age's post-quantum hybrid recipient type `mlkem768x25519` (recipients `age1pq1…`, identities
//! `AGE-SECRET-KEY-PQ-1…`), as the C2SP age specification defines it, for the `age` crate's
//! [`::age::Recipient`] and [`::age::Identity`] traits (the crate, 0.12.1, does not ship it).
//! docs/age.md, "Post-quantum recipients", explains the choice of parts and the costs.
//!
//! # The construction
//!
//! - KEM: MLKEM768-X25519 (HPKE KEM id `0x647a`), which is X-Wing
//!   (draft-connolly-cfrg-xwing-kem-06). The private key is a 32-byte seed; SHAKE256(seed, 96)
//!   gives the ML-KEM-768 key-generation seeds `d || z` (64 bytes) and the X25519 scalar (32).
//!   The public key is the ML-KEM-768 encapsulation key (1184 bytes) followed by the X25519
//!   public key (32), 1216 bytes. Encapsulation sends the ML-KEM ciphertext (1088) followed by
//!   an ephemeral X25519 share (32), 1120 bytes, and the shared secret is
//!   `SHA3-256(ss_mlkem || ss_x25519 || ct_x25519 || pk_x25519 || "\.//^\")`.
//! - HPKE (RFC 9180) base mode with HKDF-SHA256 and ChaCha20-Poly1305, info
//!   `age-encryption.org/mlkem768x25519`, empty AAD, sealing the 16-byte file key: the stanza
//!   is `-> mlkem768x25519 <base64 enc>` with a 32-byte body.
//! - Files with such a stanza carry age's `postquantum` label: age refuses to add stanzas of
//!   classic types (X25519) to them, which would let a classic key open the file.
//!
//! # Parts
//!
//! ML-KEM-768 is RustCrypto's `ml-kem` 0.2 (FIPS 203, `KeyGen_internal` from the seed), X25519
//! is `x25519-dalek` 2, SHA3/SHAKE are RustCrypto's `sha3` 0.10 and the HPKE key schedule and
//! AEAD are `hpke` 0.12 through `age_core::primitives::{hpke_seal, hpke_open}`: the same crates,
//! versions and entry points the `age` crate itself uses for its `mlkem768p256tag` type, so no
//! crate is added to the build. Only the X-Wing combiner and the key expansion above are
//! written here; the CCTV vectors (crypto/tests/cctv_age.rs) check them against Go's age.
//!
//! # Hostile input
//!
//! A stanza is checked before any work: exactly one argument, canonical unpadded base64 of
//! exactly 1120 bytes, a body of exactly 32 bytes (else [`::age::DecryptError::InvalidHeader`]).
//! An X25519 share giving the all-zero shared secret (a low-order point) is refused as a header
//! error, as age does for X25519 stanzas. A recipient whose ML-KEM key has a coefficient
//! outside `0..3329` (FIPS 203's modulus check) is refused when parsed. Each stanza costs one
//! ML-KEM decapsulation and one X25519 operation per identity; the header bound
//! ([`crate::age::MAX_HEADER_BYTES`]) allows at most about 40 such stanzas in one blob.

use std::collections::HashSet;
use std::fmt;

use age_core::format::{FileKey, Stanza};
use age_core::primitives::{bech32_decode, bech32_encode, hpke_open, hpke_seal};
use age_core::secrecy::ExposeSecret;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use hpke::generic_array::typenum::{Sum, U1024, U192, U32, U96};
use hpke::generic_array::GenericArray;
use hpke::kem::SharedSecret;
use hpke::{Deserializable, HpkeError, Serializable};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use zeroize::{Zeroize, Zeroizing};

/// The stanza tag.
pub const STANZA_TAG: &str = "mlkem768x25519";
/// The HPKE `info` string of the stanza.
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// The Bech32 prefix of recipients (`age1pq1…`).
const RECIPIENT_HRP: bech32::Hrp = bech32::Hrp::parse_unchecked("age1pq");
/// The Bech32 prefix of identities (`AGE-SECRET-KEY-PQ-1…`, written in upper case).
const IDENTITY_HRP: bech32::Hrp = bech32::Hrp::parse_unchecked("age-secret-key-pq-");
/// X-Wing's combiner label, `\.//^\`.
const XWING_LABEL: &[u8] = b"\\.//^\\";

/// Sizes (bytes) of the encoded parts.
pub const PUBLIC_KEY_BYTES: usize = 1216;
/// The encapsulated share (`enc`) of one stanza.
pub const ENC_BYTES: usize = 1120;
const MLKEM_EK_BYTES: usize = 1184;
const MLKEM_CT_BYTES: usize = 1088;
/// The wrapped file key: 16 bytes and a 16-byte Poly1305 tag.
const BODY_BYTES: usize = 32;

type U1120 = Sum<U1024, U96>;
type U1216 = Sum<U1024, U192>;
type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// X-Wing (MLKEM768-X25519) as an HPKE KEM.
#[derive(Debug)]
pub(crate) struct XWing;

/// The 32-byte seed and the keys expanded from it. ml-kem's key is wiped on drop (its `zeroize`
/// feature), as are the seed and x25519-dalek's `StaticSecret`.
#[derive(Clone)]
pub(crate) struct PrivateKey {
    seed: Zeroizing<[u8; 32]>,
    dk_m: DecapsulationKey,
    sk_x: x25519_dalek::StaticSecret,
    public: PublicKey,
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        *self.seed == *other.seed
    }
}
impl Eq for PrivateKey {}

impl PrivateKey {
    fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let mut expanded = Zeroizing::new([0u8; 96]);
        let mut xof = Shake256::default();
        xof.update(&seed[..]);
        xof.finalize_xof().read(&mut expanded[..]);
        let mut d = Zeroizing::new([0u8; 32]);
        let mut z = Zeroizing::new([0u8; 32]);
        d.copy_from_slice(&expanded[..32]);
        z.copy_from_slice(&expanded[32..64]);
        let (dk_m, ek_m) = MlKem768::generate_deterministic(&(*d).into(), &(*z).into());
        let mut x = [0u8; 32];
        x.copy_from_slice(&expanded[64..]);
        let sk_x = x25519_dalek::StaticSecret::from(x);
        x.zeroize();
        let pk_x = x25519_dalek::PublicKey::from(&sk_x);
        PrivateKey {
            seed,
            dk_m,
            sk_x,
            public: PublicKey { ek_m, pk_x },
        }
    }
}

impl Serializable for PrivateKey {
    type OutputSize = U32;
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed[..]);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: [u8; 32] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?;
        Ok(PrivateKey::from_seed(seed))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PublicKey {
    ek_m: EncapsulationKey,
    pk_x: x25519_dalek::PublicKey,
}
impl Eq for PublicKey {}

impl Serializable for PublicKey {
    type OutputSize = U1216;
    fn write_exact(&self, buf: &mut [u8]) {
        buf[..MLKEM_EK_BYTES].copy_from_slice(&self.ek_m.as_bytes());
        buf[MLKEM_EK_BYTES..].copy_from_slice(self.pk_x.as_bytes());
    }
}

impl Deserializable for PublicKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != PUBLIC_KEY_BYTES {
            return Err(HpkeError::IncorrectInputLength(
                PUBLIC_KEY_BYTES,
                encoded.len(),
            ));
        }
        let (m, x) = encoded.split_at(MLKEM_EK_BYTES);
        if !mlkem_key_is_reduced(m) {
            return Err(HpkeError::ValidationError);
        }
        let m: [u8; MLKEM_EK_BYTES] = m.try_into().map_err(|_| HpkeError::ValidationError)?;
        let x: [u8; 32] = x.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(PublicKey {
            ek_m: EncapsulationKey::from_bytes(&m.into()),
            pk_x: x25519_dalek::PublicKey::from(x),
        })
    }
}

/// FIPS 203's encapsulation-key check: every 12-bit coefficient of the 1152-byte vector part
/// is below q = 3329 (the last 32 bytes are the matrix seed).
fn mlkem_key_is_reduced(ek: &[u8]) -> bool {
    ek[..MLKEM_EK_BYTES - 32].chunks_exact(3).all(|c| {
        let (b0, b1, b2) = (u16::from(c[0]), u16::from(c[1]), u16::from(c[2]));
        let a = b0 | ((b1 & 0x0f) << 8);
        let b = (b1 >> 4) | (b2 << 4);
        a < 3329 && b < 3329
    })
}

#[derive(Clone)]
pub(crate) struct EncappedKey([u8; ENC_BYTES]);

impl Serializable for EncappedKey {
    type OutputSize = U1120;
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        encoded
            .try_into()
            .map(EncappedKey)
            .map_err(|_| HpkeError::IncorrectInputLength(ENC_BYTES, encoded.len()))
    }
}

/// X-Wing's combiner.
fn combine(ss_m: &[u8], ss_x: &[u8; 32], ct_x: &[u8; 32], pk_x: &[u8; 32]) -> SharedSecret<XWing> {
    let mut h = Sha3_256::new();
    Digest::update(&mut h, ss_m);
    Digest::update(&mut h, ss_x);
    Digest::update(&mut h, ct_x);
    Digest::update(&mut h, pk_x);
    Digest::update(&mut h, XWING_LABEL);
    SharedSecret(GenericArray::clone_from_slice(&h.finalize()))
}

impl hpke::Kem for XWing {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x647a;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.public.clone()
    }

    /// X-Wing's key pair from 32 bytes of seed (kseal only calls this with fresh random bytes,
    /// through `gen_keypair`).
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let mut seed = [0u8; 32];
        let n = ikm.len().min(32);
        seed[..n].copy_from_slice(&ikm[..n]);
        let sk = PrivateKey::from_seed(seed);
        seed.zeroize();
        let pk = sk.public.clone();
        (sk, pk)
    }

    fn decap(
        sk: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let (ct_m, ct_x) = enc.0.split_at(MLKEM_CT_BYTES);
        let ct_m: [u8; MLKEM_CT_BYTES] = ct_m.try_into().map_err(|_| HpkeError::DecapError)?;
        let ct_x: [u8; 32] = ct_x.try_into().map_err(|_| HpkeError::DecapError)?;
        let ss_x = sk.sk_x.diffie_hellman(&x25519_dalek::PublicKey::from(ct_x));
        if !ss_x.was_contributory() {
            // A low-order share: refused (DecapError is told apart from a failed open).
            return Err(HpkeError::DecapError);
        }
        let ss_m = sk
            .dk_m
            .decapsulate(&ct_m.into())
            .map_err(|()| HpkeError::DecapError)?;
        Ok(combine(
            &ss_m,
            ss_x.as_bytes(),
            &ct_x,
            sk.public.pk_x.as_bytes(),
        ))
    }

    fn encap<R: CryptoRng + RngCore>(
        pk: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut R,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ct_m, ss_m) = pk
            .ek_m
            .encapsulate(csprng)
            .map_err(|()| HpkeError::EncapError)?;
        let ek_x = x25519_dalek::EphemeralSecret::random_from_rng(&mut *csprng);
        let ct_x = x25519_dalek::PublicKey::from(&ek_x);
        let ss_x = ek_x.diffie_hellman(&pk.pk_x);
        let ss = combine(&ss_m, ss_x.as_bytes(), ct_x.as_bytes(), pk.pk_x.as_bytes());
        let mut enc = [0u8; ENC_BYTES];
        enc[..MLKEM_CT_BYTES].copy_from_slice(&ct_m);
        enc[MLKEM_CT_BYTES..].copy_from_slice(ct_x.as_bytes());
        Ok((ss, EncappedKey(enc)))
    }
}

/// An `age1pq1…` recipient.
#[derive(Clone)]
pub(crate) struct Recipient(PublicKey);

impl Recipient {
    /// Parses the Bech32 text (lower or upper case, not mixed).
    pub(crate) fn parse(s: &str) -> Result<Self, &'static str> {
        bech32_decode(
            s,
            |_| "invalid Bech32 encoding of an age1pq1… recipient",
            |hrp| {
                if hrp == RECIPIENT_HRP {
                    Ok(())
                } else {
                    Err("not an age1pq1… recipient")
                }
            },
            |_, bytes| {
                let bytes: Vec<u8> = bytes.collect();
                if bytes.len() != PUBLIC_KEY_BYTES {
                    return Err("an age1pq1… recipient holds 1216 bytes");
                }
                PublicKey::from_bytes(&bytes)
                    .map(Recipient)
                    .map_err(|_| "invalid ML-KEM-768 key in the age1pq1… recipient")
            },
        )
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.0.to_bytes()))
    }
}

impl ::age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), ::age::EncryptError> {
        let (enc, body) =
            hpke_seal::<XWing, _>(&self.0, INFO, file_key.expose_secret(), &mut OsRng);
        Ok((
            vec![Stanza {
                tag: STANZA_TAG.to_string(),
                args: vec![STANDARD_NO_PAD.encode(enc.0)],
                body,
            }],
            ["postquantum".to_string()].into_iter().collect(),
        ))
    }
}

/// An `AGE-SECRET-KEY-PQ-1…` identity.
pub(crate) struct Identity(PrivateKey);

impl Identity {
    pub(crate) fn generate() -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let id = Identity(PrivateKey::from_seed(seed));
        seed.zeroize();
        id
    }

    /// Parses the Bech32 text (upper case as age-keygen writes it, or lower case).
    pub(crate) fn parse(s: &str) -> Result<Self, &'static str> {
        bech32_decode(
            s,
            |_| "invalid Bech32 encoding of an AGE-SECRET-KEY-PQ-1… identity",
            |hrp| {
                if hrp == IDENTITY_HRP {
                    Ok(())
                } else {
                    Err("not an AGE-SECRET-KEY-PQ-1… identity")
                }
            },
            |_, bytes| {
                let mut seed = Zeroizing::new([0u8; 32]);
                let mut n = 0usize;
                for b in bytes {
                    if n == 32 {
                        return Err("an AGE-SECRET-KEY-PQ-1… identity holds a 32-byte seed");
                    }
                    seed[n] = b;
                    n += 1;
                }
                if n != 32 {
                    return Err("an AGE-SECRET-KEY-PQ-1… identity holds a 32-byte seed");
                }
                Ok(Identity(PrivateKey::from_seed(*seed)))
            },
        )
    }

    pub(crate) fn to_public(&self) -> Recipient {
        Recipient(self.0.public.clone())
    }

    /// The `AGE-SECRET-KEY-PQ-1…` text.
    pub(crate) fn to_secret_text(&self) -> Zeroizing<String> {
        let mut lower = Zeroizing::new(bech32_encode(IDENTITY_HRP, &self.0.seed[..]));
        lower.make_ascii_uppercase();
        lower
    }
}

impl ::age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, ::age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let bad = Some(Err(::age::DecryptError::InvalidHeader));
        let [arg] = stanza.args.as_slice() else {
            return bad;
        };
        // Base64 of 1120 bytes is 1494 characters; the length is checked before decoding.
        if arg.len() != 1494 || stanza.body.len() != BODY_BYTES {
            return bad;
        }
        let Ok(enc) = STANDARD_NO_PAD.decode(arg) else {
            return bad;
        };
        let Ok(enc) = EncappedKey::from_bytes(&enc) else {
            return bad;
        };
        match hpke_open::<XWing>(&enc, &self.0, INFO, &stanza.body) {
            Ok(pt) => {
                let pt = Zeroizing::new(pt);
                Some(FileKey::try_init_with_mut(|k| {
                    if pt.len() != k.len() {
                        return Err(::age::DecryptError::InvalidHeader);
                    }
                    k.copy_from_slice(&pt);
                    Ok(())
                }))
            }
            // The all-zero X25519 secret of a low-order share.
            Err(HpkeError::DecapError) => bad,
            // Not for this identity (or tampered): another identity or stanza may match.
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::age::{Identity as _, Recipient as _};

    #[test]
    fn text_round_trips_and_sizes() {
        let id = Identity::generate();
        let secret = id.to_secret_text();
        assert!(secret.starts_with("AGE-SECRET-KEY-PQ-1"), "prefix");
        let again = Identity::parse(&secret).unwrap();
        assert_eq!(again.to_public().to_string(), id.to_public().to_string());
        let r = id.to_public().to_string();
        assert!(r.starts_with("age1pq1"));
        assert_eq!(Recipient::parse(&r).unwrap().to_string(), r);
        let fk = FileKey::init_with_mut(|k| k.copy_from_slice(&[7; 16]));
        let (stanzas, labels) = id.to_public().wrap_file_key(&fk).unwrap();
        assert!(labels.contains("postquantum"));
        assert_eq!(stanzas[0].args[0].len(), 1494);
        assert_eq!(stanzas[0].body.len(), 32);
        let got = again.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
        assert_eq!(got.expose_secret(), &[7; 16]);
        assert!(Identity::generate().unwrap_stanza(&stanzas[0]).is_none());
    }

    #[test]
    fn unreduced_mlkem_key_is_refused() {
        let mut pk = Identity::generate().0.public.to_bytes().to_vec();
        pk[0] = 0xff;
        pk[1] |= 0x0f;
        assert!(PublicKey::from_bytes(&pk).is_err());
    }
}
