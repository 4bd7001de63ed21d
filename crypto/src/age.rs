//! kseal's second sealing format: an [age](https://age-encryption.org/v1) file whose payload binds
//! the value to its scope label.
//!
//! # The envelope
//!
//! A kseal-age blob is a standard **binary** age v1 file (not ASCII-armored), made by the `age`
//! crate for one or more recipients, so `age --decrypt -i key.txt` opens it too. Its plaintext
//! (the age payload) is:
//!
//! ```text
//! "kseal-age/v1\n" (13 bytes) || u16be(len(label)) || label || value
//! ```
//!
//! where `label` is exactly the label the Bitnami format feeds into RSA-OAEP
//! ([`crate::Scope::label`]): `namespace/name` (strict), `namespace` (namespace-wide) or empty
//! (cluster-wide). The whole file is:
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share>        one stanza per recipient: the 16-byte file key,
//! <wrapped file key>                 wrapped for that recipient
//! --- <header MAC>                   HMAC-SHA-256 over the header, keyed from the file key
//! <16-byte nonce> <payload in ChaCha20-Poly1305 STREAM chunks of 64 KiB>
//! ```
//!
//! Opening ([`open_age`], [`crate::Keyring::open_with_hint`]) first measures the header with a
//! linear scan and refuses one longer than [`MAX_HEADER_BYTES`] or with more than
//! [`MAX_STANZAS`] recipient stanzas (so a crafted blob can neither make age's parser work
//! quadratically nor make every identity do unbounded X25519 work), parses it once, unwraps the
//! file key with one of the identities, checks the header MAC, decrypts and authenticates every chunk (including the
//! final-chunk flag, so truncation is detected), then checks the magic and that the embedded
//! label equals the label expected for where the item sits *now*. A different label is
//! [`Error::LabelMismatch`] ("sealed for another name, namespace or scope"), which names neither
//! label.
//!
//! # Why the label binding is safe
//!
//! age authenticates everything a recipient can read: the header MAC binds the stanzas to the
//! file key, and the STREAM AEAD binds every payload byte (and the chunk order and end) to a
//! payload key derived from the file key and the nonce. Nobody without the file key can change a
//! byte of the payload, so the label inside cannot be edited. A blob copied into another
//! SealedSecret, or left in place while the SealedSecret is renamed, moved to another namespace
//! or given a wider scope, carries its old label and is refused, exactly as an RSA-OAEP
//! ciphertext under the wrong label is. Anyone can *create* a blob for any label (the
//! recipients are public), as with RSA; what they cannot do is reuse someone else's value under
//! a new label.
//!
//! Failure reports follow the Bitnami format's rule of not telling *why* a secret operation
//! failed: a stanza no identity unwraps, a bad header MAC, a tampered, truncated or extended
//! payload all give [`Error::NoKeyCouldDecrypt`]. Only checks that need no secret, or that
//! follow a successful authenticated decryption, are told apart: [`Error::MalformedAge`] for a
//! header age cannot parse or a payload without the `kseal-age/v1` magic, and
//! [`Error::LabelMismatch`]. These give nothing away: every payload byte is authenticated, so a
//! modified blob never gets past decryption, and telling "this cluster opened it but the label
//! differs" only confirms what its author already knew. (There is no padding oracle in age.)
//!
//! # Recipients and identities
//!
//! Supported: age's native X25519 recipients (`age1…`) and identities (`AGE-SECRET-KEY-1…`),
//! and the post-quantum hybrid `mlkem768x25519` type (recipients `age1pq1…`, identities
//! `AGE-SECRET-KEY-PQ-1…`; ML-KEM-768 + X25519, implemented in `age_pq.rs` on the age crate's
//! traits since age 0.12.1 lacks it). [`AgeRecipient`] and [`AgeIdentity`] are opaque, with an
//! internal kind ([`AgeKeyType`]).
//!
//! age's rule for post-quantum files holds: a value sealed for `age1pq1…` recipients cannot also
//! be sealed for X25519 recipients (a classic key would then open it and undo the protection);
//! [`seal_age`] refuses the mix with an [`Error::InvalidAgeRecipient`] that says so. Parsing an
//! `age1tag1…` or `age1tagpq1…` (hardware token) string gives an [`Error::InvalidAgeRecipient`]
//! that says they are not supported. SSH, passphrase and plugin recipients are not supported
//! either (the `ssh` feature would bring in the `rsa` crate, RUSTSEC-2023-0071).
//!
//! # Key ids
//!
//! [`AgeRecipient::fingerprint`] is `SHA256:` + unpadded base64 of SHA-256 over the recipient's
//! canonical `age1…` text (see [`crate::Fingerprint`]): the same shape as an RSA key's
//! fingerprint, short even for long (post-quantum) recipients, and usable in the same hints and
//! reports. [`crate::Keyring::open_with_hint`] returns it for the identity that opened a blob.
//!
//! # Secret hygiene
//!
//! Values come back as [`SecretBytes`]. The decrypted payload is read into a `Zeroizing` buffer
//! reserved large enough up front that it never reallocates, and the label is split off in
//! place. age keeps decrypted chunks in zeroizing buffers and X25519 secrets in
//! `x25519_dalek::StaticSecret`, wiped on drop. Two limits of the `age` crate: randomness comes
//! from the operating system (no injected RNG), and its encrypting writer keeps the last
//! plaintext chunk (at most 64 KiB) in a plain `Vec` that it does not wipe.

use std::cell::Cell;
use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use ::age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::envelope::Format;
use crate::{Error, Fingerprint, SecretBytes};

/// The version line of an age v1 file.
const V1_LINE: &[u8] = b"age-encryption.org/v1\n";

/// The most recipient stanzas kseal writes or reads in one blob (age itself adds one random
/// "grease" stanza). Every identity tries every X25519 stanza, so this bounds the work a crafted
/// blob can cause: at most this many X25519 operations per identity.
pub const MAX_STANZAS: usize = 256;

/// The longest age header (version line through the MAC line) kseal writes or reads. age's
/// header parser costs time quadratic in the header's length (25 KB: 23 ms, 140 KB: 0.65 s,
/// 780 KB: 16 s, measured with age 0.12), so the header is measured with a linear scan before
/// age sees it. 255 X25519 recipients take about 26 KB. See docs/limits.md.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The first bytes of every kseal-age payload.
pub const PAYLOAD_MAGIC: &[u8] = b"kseal-age/v1\n";

/// The kind of an age recipient or identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AgeKeyType {
    /// age's native X25519 type: recipients `age1…`, identities `AGE-SECRET-KEY-1…`.
    X25519,
    /// age's post-quantum hybrid type (ML-KEM-768 + X25519, X-Wing): recipients `age1pq1…`,
    /// identities `AGE-SECRET-KEY-PQ-1…`.
    MlKem768X25519,
}

impl AgeKeyType {
    /// The name age's specification uses (its stanza tag: `X25519`, `mlkem768x25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgeKeyType::X25519 => "X25519",
            AgeKeyType::MlKem768X25519 => "mlkem768x25519",
        }
    }
}

impl fmt::Display for AgeKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum RecipientKind {
    X25519(::age::x25519::Recipient),
    MlKem768X25519(Box<crate::age_pq::Recipient>),
}

/// A public age recipient, parsed from its `age1…` text. `Display` gives the canonical
/// (lower-case) text back; equality, ordering and hashing are those of that text.
#[derive(Clone)]
pub struct AgeRecipient {
    kind: RecipientKind,
    text: String,
    fingerprint: Fingerprint,
}

impl AgeRecipient {
    /// The kind of key.
    pub fn key_type(&self) -> AgeKeyType {
        match self.kind {
            RecipientKind::X25519(_) => AgeKeyType::X25519,
            RecipientKind::MlKem768X25519(_) => AgeKeyType::MlKem768X25519,
        }
    }

    /// Whether this is a post-quantum (`age1pq1…`) recipient.
    pub fn is_post_quantum(&self) -> bool {
        self.key_type() == AgeKeyType::MlKem768X25519
    }

    /// The canonical `age1…` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `SHA256:` + base64 of SHA-256 over [`AgeRecipient::as_str`] (see [`crate::Fingerprint`]).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn as_age(&self) -> &dyn ::age::Recipient {
        match &self.kind {
            RecipientKind::X25519(r) => r,
            RecipientKind::MlKem768X25519(r) => r.as_ref(),
        }
    }

    fn from_pq(r: crate::age_pq::Recipient) -> Self {
        let text = r.to_string();
        AgeRecipient {
            kind: RecipientKind::MlKem768X25519(Box::new(r)),
            fingerprint: Fingerprint::of_age_recipient(&text),
            text,
        }
    }

    fn from_x25519(r: ::age::x25519::Recipient) -> Self {
        let text = r.to_string();
        AgeRecipient {
            kind: RecipientKind::X25519(r),
            fingerprint: Fingerprint::of_age_recipient(&text),
            text,
        }
    }
}

impl FromStr for AgeRecipient {
    type Err = Error;

    /// Parses an `age1…` (X25519) or `age1pq1…` (post-quantum) recipient; surrounding
    /// whitespace is ignored. Errors never quote the
    /// input (it may be a secret key pasted in the wrong place).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = |m: &str| Err(Error::InvalidAgeRecipient(m.to_string()));
        if starts_with_ignore_case(s, "AGE-SECRET-KEY-") {
            return bad("this is an age identity (secret key), not a recipient: give its public key (age1…)");
        }
        if starts_with_ignore_case(s, "age1pq1") {
            return crate::age_pq::Recipient::parse(s)
                .map(AgeRecipient::from_pq)
                .map_err(|m| Error::InvalidAgeRecipient(m.to_string()));
        }
        match s.parse::<::age::x25519::Recipient>() {
            Ok(r) => Ok(AgeRecipient::from_x25519(r)),
            Err(reason) => {
                // The Bech32 human-readable part is everything before the last '1'.
                let hrp = s
                    .rfind('1')
                    .map(|i| s[..i].to_ascii_lowercase())
                    .unwrap_or_default();
                match hrp.as_str() {
                    "age1tag" | "age1tagpq" => {
                        bad("tagged (hardware token) age recipients are not supported")
                    }
                    h if h.starts_with("age1") => bad("age plugin recipients are not supported"),
                    _ if s.starts_with("ssh-") => {
                        bad("SSH keys are not supported as age recipients")
                    }
                    _ => bad(&format!("expected an X25519 recipient age1… ({reason})")),
                }
            }
        }
    }
}

impl fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeRecipient({})", self.text)
    }
}

impl PartialEq for AgeRecipient {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for AgeRecipient {}

impl std::hash::Hash for AgeRecipient {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for AgeRecipient {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AgeRecipient {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl serde::Serialize for AgeRecipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for AgeRecipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum IdentityKind {
    /// `StaticSecret` inside is wiped on drop (x25519-dalek's `zeroize` feature, on by default).
    X25519(::age::x25519::Identity),
    /// The seed and expanded keys inside are wiped on drop (see `age_pq.rs`).
    MlKem768X25519(Box<crate::age_pq::Identity>),
}

/// A private age identity. `Debug` shows only its public recipient; the secret is wiped on drop
/// and leaves only through [`AgeIdentity::to_identity_file`], in zeroizing storage. Not `Clone`:
/// share it with `Arc` (as [`crate::Keyring`] does).
pub struct AgeIdentity {
    kind: IdentityKind,
    public: AgeRecipient,
}

impl AgeIdentity {
    /// A new random X25519 identity (from the operating system's generator).
    pub fn generate() -> Self {
        Self::from_x25519(::age::x25519::Identity::generate())
    }

    /// A new random post-quantum `mlkem768x25519` identity (from the operating system's
    /// generator).
    pub fn generate_pq() -> Self {
        Self::from_pq(crate::age_pq::Identity::generate())
    }

    /// A new random identity of `kind`.
    pub fn generate_of(kind: AgeKeyType) -> Self {
        match kind {
            AgeKeyType::X25519 => Self::generate(),
            AgeKeyType::MlKem768X25519 => Self::generate_pq(),
        }
    }

    fn from_pq(id: crate::age_pq::Identity) -> Self {
        let public = AgeRecipient::from_pq(id.to_public());
        AgeIdentity {
            kind: IdentityKind::MlKem768X25519(Box::new(id)),
            public,
        }
    }

    fn from_x25519(id: ::age::x25519::Identity) -> Self {
        let public = AgeRecipient::from_x25519(id.to_public());
        AgeIdentity {
            kind: IdentityKind::X25519(id),
            public,
        }
    }

    /// The kind of key.
    pub fn key_type(&self) -> AgeKeyType {
        match self.kind {
            IdentityKind::X25519(_) => AgeKeyType::X25519,
            IdentityKind::MlKem768X25519(_) => AgeKeyType::MlKem768X25519,
        }
    }

    /// The public recipient that seals for this identity.
    pub fn to_public(&self) -> AgeRecipient {
        self.public.clone()
    }

    /// The public recipient, borrowed.
    pub fn recipient(&self) -> &AgeRecipient {
        &self.public
    }

    /// The fingerprint of the public recipient ([`AgeRecipient::fingerprint`]).
    pub fn fingerprint(&self) -> &Fingerprint {
        self.public.fingerprint()
    }

    /// Reads every identity of an age identity file: one `AGE-SECRET-KEY-1…` or
    /// `AGE-SECRET-KEY-PQ-1…` per line, blank
    /// lines and `#` comments ignored (what `age-keygen` writes). At least one is required.
    /// Errors name the line number, never its content.
    pub fn parse_identity_file(text: &str) -> Result<Vec<AgeIdentity>, Error> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line.parse::<AgeIdentity>().map_err(|e| match e {
                Error::InvalidAgeIdentity(reason) => {
                    Error::InvalidAgeIdentity(format!("line {}: {reason}", i + 1))
                }
                e => e,
            })?;
            out.push(id);
        }
        if out.is_empty() {
            return Err(Error::InvalidAgeIdentity(
                "no AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line found".to_string(),
            ));
        }
        Ok(out)
    }

    /// The identity-file text for this identity, as `age-keygen` writes it (without its
    /// `# created:` line, which would need a clock):
    /// `# public key: age1…\nAGE-SECRET-KEY-1…\n`. `age -i`, `rage -i` and
    /// [`AgeIdentity::parse_identity_file`] read it back.
    pub fn to_identity_file(&self) -> Zeroizing<String> {
        let secret: Zeroizing<String> = match &self.kind {
            IdentityKind::X25519(id) => Zeroizing::new(id.to_string().expose_secret().to_string()),
            IdentityKind::MlKem768X25519(id) => id.to_secret_text(),
        };
        let mut out = Zeroizing::new(String::with_capacity(
            16 + self.public.text.len() + secret.len() + 2,
        ));
        out.push_str("# public key: ");
        out.push_str(&self.public.text);
        out.push('\n');
        out.push_str(&secret);
        out.push('\n');
        out
    }

    fn as_age(&self) -> &dyn ::age::Identity {
        match &self.kind {
            IdentityKind::X25519(id) => id,
            IdentityKind::MlKem768X25519(id) => id.as_ref(),
        }
    }
}

impl FromStr for AgeIdentity {
    type Err = Error;

    /// Parses one `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` key (surrounding whitespace
    /// ignored). For whole identity
    /// files with comments, see [`AgeIdentity::parse_identity_file`].
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = |m: &str| Err(Error::InvalidAgeIdentity(m.to_string()));
        if starts_with_ignore_case(s, "AGE-PLUGIN-") {
            return bad("age plugin identities are not supported");
        }
        if s.starts_with("age1") {
            return bad("this is a recipient (public key), not an identity");
        }
        if starts_with_ignore_case(s, "AGE-SECRET-KEY-PQ-1") {
            return crate::age_pq::Identity::parse(s)
                .map(AgeIdentity::from_pq)
                .map_err(|m| Error::InvalidAgeIdentity(m.to_string()));
        }
        match s.parse::<::age::x25519::Identity>() {
            Ok(id) => Ok(AgeIdentity::from_x25519(id)),
            Err(reason) => bad(&format!(
                "expected an X25519 identity AGE-SECRET-KEY-1… ({reason})"
            )),
        }
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeIdentity")
            .field("public", &self.public.text)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// Seals `value` for every recipient under `label` (see the module docs for the layout).
///
/// Errors: [`Error::NoAgeRecipients`] for an empty list; [`Error::InvalidAgeRecipient`] for
/// [`MAX_STANZAS`] or more distinct recipients, or for post-quantum (`age1pq1…`) and X25519
/// recipients together (age's rule, see the module docs); [`Error::Encrypt`] when age refuses the
/// recipients or the label is longer than 65535 bytes (Kubernetes labels are at most 317).
/// Duplicate recipients are sealed for once.
pub fn seal_age(recipients: &[AgeRecipient], label: &[u8], value: &[u8]) -> Result<Vec<u8>, Error> {
    if recipients.is_empty() {
        return Err(Error::NoAgeRecipients);
    }
    let label_len = u16::try_from(label.len()).map_err(|_| Error::Encrypt)?;
    let mut unique: Vec<&AgeRecipient> = Vec::with_capacity(recipients.len());
    for r in recipients {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if unique.len() >= MAX_STANZAS {
        return Err(Error::InvalidAgeRecipient(format!(
            "too many recipients: at most {} in one value",
            MAX_STANZAS - 1
        )));
    }
    if unique.iter().any(|r| r.is_post_quantum()) && unique.iter().any(|r| !r.is_post_quantum()) {
        return Err(Error::InvalidAgeRecipient(MIXED_PQ.to_string()));
    }
    let encryptor = ::age::Encryptor::with_recipients(unique.iter().map(|r| r.as_age()))
        .map_err(|_| Error::Encrypt)?;
    // Header: ~22 bytes + ~100 per X25519 stanza (~1560 per mlkem768x25519 one) + 70 for the
    // MAC line; then the 16-byte nonce,
    // the payload and 16 bytes of tag per 64 KiB chunk.
    let payload_len = PAYLOAD_MAGIC.len() + 2 + label.len() + value.len();
    let mut out = Vec::with_capacity(
        120 + stanza_bytes(&unique) + payload_len + 16 * (1 + payload_len / 65536),
    );
    let mut w = encryptor
        .wrap_output(&mut out)
        .map_err(|_| Error::Encrypt)?;
    // Written piece by piece, so that no plaintext copy of the payload is made here.
    w.write_all(PAYLOAD_MAGIC)
        .and_then(|()| w.write_all(&label_len.to_be_bytes()))
        .and_then(|()| w.write_all(label))
        .and_then(|()| w.write_all(value))
        .map_err(|_| Error::Encrypt)?;
    w.finish().map_err(|_| Error::Encrypt)?;
    if header_bounds(&out).is_err() {
        // Only recipient types with large stanzas get here; the openers would refuse it.
        return Err(Error::InvalidAgeRecipient(format!(
            "too many recipients: the age header would exceed {MAX_HEADER_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// The refusal of [`seal_age`] for post-quantum and X25519 recipients together.
pub const MIXED_PQ: &str = "post-quantum recipients (age1pq1…) cannot be mixed with X25519 recipients (age1…) in one value: an X25519 key could then open it, which undoes the post-quantum protection (age's rule); give every recipient a post-quantum key, or seal without the age1pq1… ones";

fn stanza_bytes(recipients: &[&AgeRecipient]) -> usize {
    recipients
        .iter()
        .map(|r| if r.is_post_quantum() { 1560 } else { 110 })
        .sum()
}

/// What the header of an age blob says, read without any secret: see [`inspect_age`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeHeader {
    /// The type (first argument) of every recipient stanza, in order: `X25519` for kseal's
    /// recipients, plus the random "grease" stanza age adds to every file.
    pub stanza_types: Vec<String>,
}

impl AgeHeader {
    /// How many `X25519` stanzas the header has: one per distinct recipient it was sealed for.
    pub fn x25519_stanzas(&self) -> usize {
        self.stanza_types.iter().filter(|t| *t == "X25519").count()
    }

    /// How many post-quantum `mlkem768x25519` stanzas the header has.
    pub fn pq_stanzas(&self) -> usize {
        self.stanza_types
            .iter()
            .filter(|t| *t == crate::age_pq::STANZA_TAG)
            .count()
    }

    /// The stanzas kseal's recipient types wrote (X25519 and mlkem768x25519), without age's
    /// grease stanza.
    pub fn recipient_stanzas(&self) -> usize {
        self.x25519_stanzas() + self.pq_stanzas()
    }
}

/// Parses the header of an age `blob` without decrypting anything (no identity needed): the
/// version line, every stanza, the MAC line. For offline checks (`kseal verify`). Errors: those
/// of [`Format::detect`], [`Error::MalformedAge`] for a header age cannot parse, more than
/// [`MAX_STANZAS`] stanzas, or a passphrase (`scrypt`) file, which kseal never writes. The
/// payload is not looked at: only a recipient can tell whether it is intact.
pub fn inspect_age(blob: &[u8]) -> Result<AgeHeader, Error> {
    if Format::detect(blob)? != Format::Age {
        return Err(Error::MalformedAge("not an age file"));
    }
    header_bounds(blob)?;
    let decryptor = ::age::Decryptor::new_buffered(blob).map_err(|e| header_error(blob, e))?;
    if decryptor.is_scrypt() {
        return Err(Error::MalformedAge("a passphrase-encrypted age file"));
    }
    let stanza_types = blob
        .split(|&b| b == b'\n')
        .skip(1)
        .take_while(|line| !line.starts_with(b"---"))
        .filter_map(|line| line.strip_prefix(b"-> "))
        .map(|rest| {
            let tag = rest.split(|&b| b == b' ').next().unwrap_or_default();
            String::from_utf8_lossy(tag).into_owned()
        })
        .collect();
    Ok(AgeHeader { stanza_types })
}

/// Opens a kseal-age `blob` sealed under `label` with the first of `identities` that can. See the
/// module docs for which errors are told apart; trying several identities costs one X25519
/// operation per stanza each.
pub fn open_age(
    identities: &[&AgeIdentity],
    label: &[u8],
    blob: &[u8],
) -> Result<SecretBytes, Error> {
    open_identifying(identities.iter().copied(), label, blob).map(|(v, _)| v)
}

/// Decrypts any binary age v1 file `blob` with the first of `identities` that can, with the
/// same bounds and checks as [`open_age`] but returning the whole payload: no `kseal-age/v1`
/// magic or label is looked for. For conformance tests (the CCTV age vectors) and tools;
/// sealed values are opened with [`open_age`], which binds them to their label.
pub fn decrypt_age_file(identities: &[&AgeIdentity], blob: &[u8]) -> Result<SecretBytes, Error> {
    let (mut payload, _) = decrypt_identifying(identities.iter().copied(), blob)?;
    Ok(SecretBytes::new(std::mem::take(&mut *payload)))
}

/// [`open_age`], also returning the identity that opened the blob.
pub(crate) fn open_identifying<'a, I>(
    identities: I,
    label: &[u8],
    blob: &[u8],
) -> Result<(SecretBytes, &'a AgeIdentity), Error>
where
    I: IntoIterator<Item = &'a AgeIdentity>,
{
    let (payload, id) = decrypt_identifying(identities, blob)?;
    split_payload(payload, label).map(|v| (v, id))
}

fn decrypt_identifying<'a, I>(
    identities: I,
    blob: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, &'a AgeIdentity), Error>
where
    I: IntoIterator<Item = &'a AgeIdentity>,
{
    if Format::detect(blob)? != Format::Age {
        return Err(Error::MalformedAge("not an age file"));
    }
    header_bounds(blob)?;
    // Parsed once (age's parser is the expensive part of a crafted header); age then tries the
    // identities in order over the stanzas, and `Tracked` records which one unwrapped the file
    // key.
    let decryptor = ::age::Decryptor::new_buffered(blob).map_err(|e| header_error(blob, e))?;
    let hit = Cell::new(None);
    let tracked: Vec<Tracked<'_, 'a>> = identities
        .into_iter()
        .map(|id| Tracked { id, hit: &hit })
        .collect();
    // No matching stanza, a stanza of ours that does not unwrap, a bad header MAC: all the same.
    let Ok(mut reader) = decryptor.decrypt(tracked.iter().map(|t| t as &dyn ::age::Identity))
    else {
        return Err(Error::NoKeyCouldDecrypt);
    };
    let Some(id) = hit.get() else {
        return Err(Error::NoKeyCouldDecrypt);
    };
    // The plaintext is shorter than the blob, so this never reallocates (which would leave
    // unwiped copies behind) and read_to_end never needs its small probe buffer.
    let mut payload = Zeroizing::new(Vec::with_capacity(blob.len()));
    if reader.read_to_end(&mut payload).is_err() {
        // The header MAC passed, so the file key was found: a payload that fails to
        // authenticate (tampered, truncated, extended) fails for every identity.
        return Err(Error::NoKeyCouldDecrypt);
    }
    Ok((payload, id))
}

/// One of the identities handed to age, noting in `hit` when it unwraps a file key (the last
/// one to do so is the one whose key age goes on with: age stops at the first success).
struct Tracked<'h, 'a> {
    id: &'a AgeIdentity,
    hit: &'h Cell<Option<&'a AgeIdentity>>,
}

impl ::age::Identity for Tracked<'_, '_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, ::age::DecryptError>> {
        let r = self.id.as_age().unwrap_stanza(stanza);
        if matches!(r, Some(Ok(_))) {
            self.hit.set(Some(self.id));
        }
        r
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, ::age::DecryptError>> {
        let r = self.id.as_age().unwrap_stanzas(stanzas);
        if matches!(r, Some(Ok(_))) {
            self.hit.set(Some(self.id));
        }
        r
    }
}

/// Checks the magic and the label, and returns the value, split off in place.
fn split_payload(mut payload: Zeroizing<Vec<u8>>, label: &[u8]) -> Result<SecretBytes, Error> {
    const NOT_KSEAL: &str = "payload is not kseal-age/v1";
    let rest = payload
        .strip_prefix(PAYLOAD_MAGIC)
        .ok_or(Error::MalformedAge(NOT_KSEAL))?;
    let (len, rest) = rest
        .split_first_chunk::<2>()
        .ok_or(Error::MalformedAge(NOT_KSEAL))?;
    let len = usize::from(u16::from_be_bytes(*len));
    let embedded = rest.get(..len).ok_or(Error::MalformedAge(NOT_KSEAL))?;
    if embedded != label {
        return Err(Error::LabelMismatch);
    }
    let start = PAYLOAD_MAGIC.len() + 2 + len;
    // Move the value to the front of the same allocation; SecretBytes wipes its whole capacity
    // (including the bytes the move leaves behind) when dropped.
    let mut value = std::mem::take(&mut *payload);
    value.drain(..start);
    Ok(SecretBytes::new(value))
}

/// Recipient stanzas of a header age has parsed: lines `-> …` before the `---` MAC line (stanza
/// bodies are base64 and never start with `-`).
/// Measures the header of an age `blob` (everything up to and including the `---` MAC line)
/// with one linear scan, before age's parser sees it: [`Error::MalformedAge`] when it is
/// longer than [`MAX_HEADER_BYTES`], has more than [`MAX_STANZAS`] stanzas, or has a stanza
/// without its final short body line (which age 0.12's parser lets through; CCTV vectors
/// `stanza_missing_body`, `stanza_missing_final_line`). A header with no
/// MAC line within the bound is left to age, which reports it truncated.
fn header_bounds(blob: &[u8]) -> Result<(), Error> {
    let window = &blob[..blob.len().min(MAX_HEADER_BYTES + 1)];
    let mut stanzas = 0usize;
    let mut at = 0usize;
    let mut first = true;
    // Inside a stanza whose last body line has not come yet (age 0.12's parser accepts a stanza
    // without its final short body line, which the age specification forbids).
    let mut open_stanza = false;
    while at < window.len() {
        let line_end = window[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| at + i);
        let line = &window[at..line_end.unwrap_or(window.len())];
        if !first {
            if line.starts_with(b"---") {
                if open_stanza {
                    return Err(Error::MalformedAge("invalid header"));
                }
                if line_end.is_none() && blob.len() > window.len() {
                    // The MAC line runs past the bound.
                    return Err(Error::MalformedAge("header too long"));
                }
                return Ok(());
            }
            if line.starts_with(b"-> ") {
                if open_stanza {
                    return Err(Error::MalformedAge("invalid header"));
                }
                open_stanza = true;
                stanzas += 1;
                if stanzas > MAX_STANZAS {
                    return Err(Error::MalformedAge("too many recipient stanzas"));
                }
            } else if line.len() < 64 {
                // A stanza's body ends with its first line shorter than 64 columns.
                open_stanza = false;
            }
        }
        first = false;
        match line_end {
            Some(end) => at = end + 1,
            None => break,
        }
    }
    if blob.len() > MAX_HEADER_BYTES {
        return Err(Error::MalformedAge("header too long"));
    }
    Ok(())
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Maps age's header errors to fixed texts. age reports a v1 header it cannot parse as an
/// unknown version, so the version line is looked at here.
fn header_error(blob: &[u8], e: ::age::DecryptError) -> Error {
    Error::MalformedAge(match e {
        ::age::DecryptError::Io(_) => "truncated header",
        ::age::DecryptError::UnknownFormat if !blob.starts_with(V1_LINE) => {
            "unsupported age version"
        }
        _ => "invalid header",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_read_without_an_identity() {
        let (a, b) = (AgeIdentity::generate(), AgeIdentity::generate());
        let blob = seal_age(
            &[a.to_public(), b.to_public(), a.to_public()],
            b"ns/n",
            b"v",
        )
        .unwrap();
        let h = inspect_age(&blob).unwrap();
        assert_eq!(h.x25519_stanzas(), 2, "{h:?}");
        assert_eq!(
            h.stanza_types.len(),
            3,
            "two recipients and age's grease stanza: {h:?}"
        );
        assert!(matches!(
            inspect_age(&blob[..30]),
            Err(Error::MalformedAge(_))
        ));
        assert!(matches!(
            inspect_age(&[1, 0, 0]),
            Err(Error::MalformedAge(_))
        ));
    }

    /// One parse, several identities: the one that opened the blob is reported.
    #[test]
    fn the_identity_that_opened_is_reported() {
        let (a, b, c) = (
            AgeIdentity::generate(),
            AgeIdentity::generate(),
            AgeIdentity::generate(),
        );
        let blob = seal_age(&[c.to_public(), b.to_public()], b"l", b"v").unwrap();
        let (v, by) = open_identifying([&a, &b, &c], b"l", &blob).unwrap();
        assert_eq!(v.expose(), b"v");
        assert_eq!(by.to_public(), b.to_public());
        assert!(matches!(
            open_identifying([&a], b"l", &blob),
            Err(Error::NoKeyCouldDecrypt)
        ));
    }

    #[test]
    fn payload_split() {
        let mut p = PAYLOAD_MAGIC.to_vec();
        p.extend_from_slice(&[0, 4]);
        p.extend_from_slice(b"ns/nvalue");
        let v = split_payload(Zeroizing::new(p.clone()), b"ns/n").unwrap();
        assert_eq!(v.expose(), b"value");
        assert!(matches!(
            split_payload(Zeroizing::new(p.clone()), b"ns/m"),
            Err(Error::LabelMismatch)
        ));
        assert!(matches!(
            split_payload(Zeroizing::new(p[..16].to_vec()), b"ns/n"),
            Err(Error::MalformedAge(_))
        ));
        assert!(matches!(
            split_payload(Zeroizing::new(b"kseal-age/v2\n\0\0".to_vec()), b""),
            Err(Error::MalformedAge(_))
        ));
        let mut empty = PAYLOAD_MAGIC.to_vec();
        empty.extend_from_slice(&[0, 0]);
        assert!(split_payload(Zeroizing::new(empty), b"")
            .unwrap()
            .is_empty());
    }
}
