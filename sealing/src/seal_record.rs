//! Seal records: what `kseal seal` writes so that `kseal verify` can check, offline and without
//! any private key, that every item of a SealedSecret was sealed for the keys and the place
//! (name, namespace, scope) where it sits now.
//!
//! # The annotation
//!
//! [`ANNOTATION_SEAL_RECORDS`] (`sealedsecrets.kseal.dev/seal-records`), on the SealedSecret's
//! top-level metadata only (never in `spec.template`, so the Secret does not get it), holds one
//! compact JSON object, item name → record, keys sorted:
//!
//! ```text
//! {"password":"v1;SHA256:abc…,SHA256:def…;cHJvZC9kYg==;q1w2…="}
//! ```
//!
//! Each record is four fields separated by `;`:
//!
//! ```text
//! v1 ; <fingerprints> ; <label> ; <digest>
//! ```
//!
//! - `v1`: the record version.
//! - `<fingerprints>`: the sorted, comma-separated fingerprints (`SHA256:…`) of the public keys
//!   the item was sealed for: the certificate's RSA key for the Bitnami format, every recipient
//!   for the age format (see [`kseal_crypto::Fingerprint`]).
//! - `<label>`: standard base64 of the scope label the item was sealed under
//!   ([`kseal_crypto::Scope::label`]: `namespace/name`, `namespace`, or empty).
//! - `<digest>`: standard base64 of
//!   `SHA-256("kseal-seal-record/v1\0" || label || "\0" || item name || "\0" || blob)`, where
//!   `blob` is the item's ciphertext (the decoded `encryptedData` value). Neither a label nor an
//!   item name can contain a NUL byte (Kubernetes names and Secret keys cannot), so the encoding
//!   is unambiguous.
//!
//! # Why it reveals nothing about the plaintext
//!
//! Every input of a record is already public in the file or in the cluster: the fingerprints
//! identify public keys (certificates and age recipients are published), the label is the
//! SealedSecret's own namespace and name, the item name is the `encryptedData` key, and the
//! digest hashes the *ciphertext*, never the value. Hashing a plaintext would let anyone test
//! guesses of a low-entropy password against the hash; hashing the ciphertext gives nothing
//! beyond the ciphertext itself, which sits next to it. The record is therefore as public as the
//! SealedSecret, and adds no secret to the file.
//!
//! # What a record proves, and what not
//!
//! The digest binds the record to exactly one ciphertext, one item name and one label: a value
//! copied from another item or another SealedSecret, or edited, no longer matches its record,
//! and a SealedSecret renamed, moved or re-scoped keeps records whose label is no longer its own.
//! `kseal verify` reports these mistakes before the controller does. A record is not a
//! signature: anyone can write one (all its inputs are public), so it catches accidents, not an
//! attacker, who gains nothing by forging one (the controller opens a value only under its real
//! label and with its own keys). Items sealed by kubeseal have no record and are reported as
//! unverifiable.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kseal_crypto::{Fingerprint, Scope};

use kseal_crds::{SealedSecret, ANNOTATION_SEAL_RECORDS};

/// The record version this module writes and reads.
pub const RECORD_VERSION: &str = "v1";

/// Domain separation of the digest.
const DOMAIN: &[u8] = b"kseal-seal-record/v1\0";

/// Why a record, or the annotation, cannot be read. Messages never quote the annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The annotation is not a JSON object of strings.
    #[error("the {ANNOTATION_SEAL_RECORDS} annotation is not a JSON object of strings")]
    NotJson,
    /// A record that does not have four `;`-separated fields.
    #[error("malformed seal record: expected v1;<fingerprints>;<label>;<digest>")]
    Fields,
    /// A record of another version.
    #[error("unsupported seal record version (kseal writes v1)")]
    Version,
    /// A fingerprint that does not parse, or none at all.
    #[error("malformed seal record: bad key fingerprint list")]
    Fingerprints,
    /// A label that is not base64 of UTF-8 text.
    #[error("malformed seal record: bad label")]
    Label,
    /// A digest that is not base64 of 32 bytes.
    #[error("malformed seal record: bad digest")]
    Digest,
}

/// SHA-256 over the record's domain, `label`, `item` and `blob` (see the module docs).
pub fn record_digest(label: &[u8], item: &str, blob: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(DOMAIN.len() + label.len() + item.len() + blob.len() + 2);
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(label);
    input.push(0);
    input.extend_from_slice(item.as_bytes());
    input.push(0);
    input.extend_from_slice(blob);
    kseal_crypto::sha256(&input)
}

/// One item's seal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRecord {
    /// The keys the item was sealed for, sorted and without duplicates.
    pub fingerprints: Vec<Fingerprint>,
    /// The scope label it was sealed under.
    pub label: Vec<u8>,
    /// [`record_digest`] of label, item name and ciphertext.
    pub digest: [u8; 32],
}

impl SealRecord {
    /// The record of `blob`, sealed as `item` under `label` for the keys `fingerprints`.
    pub fn new<'a, I>(fingerprints: I, label: &[u8], item: &str, blob: &[u8]) -> Self
    where
        I: IntoIterator<Item = &'a Fingerprint>,
    {
        let mut fingerprints: Vec<Fingerprint> = fingerprints.into_iter().cloned().collect();
        fingerprints.sort();
        fingerprints.dedup();
        SealRecord {
            fingerprints,
            label: label.to_vec(),
            digest: record_digest(label, item, blob),
        }
    }

    /// True when this record was made for exactly `blob` as `item` (under the record's label).
    pub fn matches(&self, item: &str, blob: &[u8]) -> bool {
        record_digest(&self.label, item, blob) == self.digest
    }

    /// Where the item was sealed for, from the record's label.
    pub fn sealed_for(&self) -> SealedFor {
        SealedFor::from_label(&self.label)
    }
}

impl fmt::Display for SealRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps: Vec<&str> = self.fingerprints.iter().map(Fingerprint::as_str).collect();
        write!(
            f,
            "{RECORD_VERSION};{};{};{}",
            fps.join(","),
            STANDARD.encode(&self.label),
            STANDARD.encode(self.digest)
        )
    }
}

impl FromStr for SealRecord {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, RecordError> {
        let fields: Vec<&str> = s.split(';').collect();
        let [version, fps, label, digest] = fields.as_slice() else {
            return Err(RecordError::Fields);
        };
        if *version != RECORD_VERSION {
            return Err(RecordError::Version);
        }
        let mut fingerprints = fps
            .split(',')
            .map(|f| f.trim().parse::<Fingerprint>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| RecordError::Fingerprints)?;
        fingerprints.sort();
        fingerprints.dedup();
        let label = STANDARD.decode(label).map_err(|_| RecordError::Label)?;
        if std::str::from_utf8(&label).is_err() {
            return Err(RecordError::Label);
        }
        let digest = STANDARD
            .decode(digest)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .ok_or(RecordError::Digest)?;
        Ok(SealRecord {
            fingerprints,
            label,
            digest,
        })
    }
}

/// Where a value may be opened, as a scope label says: the label read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SealedFor {
    /// `namespace/name`.
    Strict {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// `namespace`.
    NamespaceWide {
        /// Namespace.
        namespace: String,
    },
    /// The empty label.
    ClusterWide,
}

impl SealedFor {
    /// Reads a label: empty is cluster-wide, `a/b` strict (a namespace has no `/`), anything
    /// else namespace-wide. Bytes that are not UTF-8 are replaced (labels kseal reads are text).
    pub fn from_label(label: &[u8]) -> SealedFor {
        let text = String::from_utf8_lossy(label);
        if text.is_empty() {
            SealedFor::ClusterWide
        } else if let Some((ns, name)) = text.split_once('/') {
            SealedFor::Strict {
                namespace: ns.to_string(),
                name: name.to_string(),
            }
        } else {
            SealedFor::NamespaceWide {
                namespace: text.into_owned(),
            }
        }
    }

    /// What a SealedSecret called `name` in `namespace` under `scope` opens as.
    pub fn of(scope: Scope, namespace: &str, name: &str) -> SealedFor {
        SealedFor::from_label(&scope.label(namespace, name))
    }

    /// What `ss` opens as now: its name, namespace and scope annotations.
    pub fn of_sealed_secret(ss: &SealedSecret) -> SealedFor {
        let (_, label) = crate::unseal::label_of(ss);
        SealedFor::from_label(&label)
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        match self {
            SealedFor::Strict { .. } => Scope::Strict,
            SealedFor::NamespaceWide { .. } => Scope::NamespaceWide,
            SealedFor::ClusterWide => Scope::ClusterWide,
        }
    }

    /// The namespace, when the scope has one.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            SealedFor::Strict { namespace, .. } | SealedFor::NamespaceWide { namespace } => {
                Some(namespace)
            }
            SealedFor::ClusterWide => None,
        }
    }

    /// Why a value recorded as sealed for `self` does not open as `now`, in a few words:
    /// `renamed: sealed for name X`, `moved: sealed for namespace A`, `moved and renamed:
    /// sealed for A/X`, or `scope changed: sealed strict for A/X, the SealedSecret is
    /// namespace-wide`. `None` when they are the same.
    pub fn mismatch(&self, now: &SealedFor) -> Option<String> {
        if self == now {
            return None;
        }
        Some(match (self, now) {
            (
                SealedFor::Strict { namespace, name },
                SealedFor::Strict {
                    namespace: ns_now,
                    name: name_now,
                },
            ) => {
                if namespace == ns_now {
                    format!("renamed: sealed for name {name}")
                } else if name == name_now {
                    format!("moved: sealed for namespace {namespace}")
                } else {
                    format!("moved and renamed: sealed for {namespace}/{name}")
                }
            }
            (SealedFor::NamespaceWide { namespace }, SealedFor::NamespaceWide { .. }) => {
                format!("moved: sealed for namespace {namespace}")
            }
            (then, now) => format!(
                "scope changed: sealed {then}, the SealedSecret is {}",
                now.scope()
            ),
        })
    }
}

impl fmt::Display for SealedFor {
    /// `strict for ns/name`, `namespace-wide for ns`, `cluster-wide`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealedFor::Strict { namespace, name } => write!(f, "strict for {namespace}/{name}"),
            SealedFor::NamespaceWide { namespace } => write!(f, "namespace-wide for {namespace}"),
            SealedFor::ClusterWide => f.write_str("cluster-wide"),
        }
    }
}

/// Reads the annotation value: item name → record text (records are parsed one by one with
/// [`SealRecord::from_str`], so that one bad record does not hide the others).
pub fn parse_records(value: &str) -> Result<BTreeMap<String, String>, RecordError> {
    serde_json::from_str(value).map_err(|_| RecordError::NotJson)
}

/// The annotation value: compact JSON, item names sorted.
pub fn format_records(records: &BTreeMap<String, String>) -> String {
    serde_json::to_string(records).expect("a map of strings always serialises")
}

/// The records of `ss`: `Ok(None)` without the annotation (a kubeseal file), else item name →
/// record text.
pub fn records_of(ss: &SealedSecret) -> Result<Option<BTreeMap<String, String>>, RecordError> {
    ss.annotations()
        .and_then(|a| a.get(ANNOTATION_SEAL_RECORDS))
        .map(|v| parse_records(v))
        .transpose()
}

/// The annotation value after writing `updates` over an `existing` value: the entries of other
/// items stay; an `existing` value that is not valid JSON is dropped (its records were
/// unreadable anyway). `None` when there is no record at all.
pub fn merge_records<I>(existing: Option<&str>, updates: I) -> Option<String>
where
    I: IntoIterator<Item = (String, SealRecord)>,
{
    let mut all = existing
        .and_then(|v| parse_records(v).ok())
        .unwrap_or_default();
    for (item, record) in updates {
        all.insert(item, record.to_string());
    }
    Some(all)
        .filter(|m| !m.is_empty())
        .map(|m| format_records(&m))
}

/// Sets the records of `updates` on `ss` (see [`merge_records`]).
pub fn add_records<I>(ss: &mut SealedSecret, updates: I)
where
    I: IntoIterator<Item = (String, SealRecord)>,
{
    let annotations = ss.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let existing = annotations.get(ANNOTATION_SEAL_RECORDS).map(String::as_str);
    match merge_records(existing, updates) {
        Some(v) => {
            annotations.insert(ANNOTATION_SEAL_RECORDS.to_string(), v);
        }
        None if annotations.is_empty() => ss.metadata.annotations = None,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint::of_rsa(&[1, 0, 1], &[byte; 256])
    }

    #[test]
    fn record_round_trips_and_binds_label_item_and_blob() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        let r = SealRecord::new([&b, &a, &b], b"prod/db", "password", b"ciphertext");
        assert_eq!(r.fingerprints.len(), 2);
        let text = r.to_string();
        assert!(text.starts_with("v1;SHA256:"), "{text}");
        assert_eq!(text.split(';').nth(2).unwrap(), "cHJvZC9kYg==");
        assert_eq!(text.parse::<SealRecord>().unwrap(), r);
        assert!(r.matches("password", b"ciphertext"));
        assert!(!r.matches("username", b"ciphertext"));
        assert!(!r.matches("password", b"ciphertexT"));
        let other_label = SealRecord::new([&a], b"prod/web", "password", b"ciphertext");
        assert_ne!(other_label.digest, r.digest);
    }

    #[test]
    fn digest_is_the_documented_hash() {
        let mut input = b"kseal-seal-record/v1\0ns\0k\0".to_vec();
        input.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            record_digest(b"ns", "k", &[1, 2, 3]),
            kseal_crypto::sha256(&input)
        );
    }

    #[test]
    fn malformed_records_are_told_apart() {
        let good = SealRecord::new([&fp(1)], b"", "k", b"x").to_string();
        assert!(good.contains(";;"), "cluster-wide: empty label: {good}");
        assert_eq!(good.parse::<SealRecord>().unwrap().label, b"");
        let fields: Vec<&str> = good.split(';').collect();
        let with = |i: usize, v: &str| {
            let mut f = fields.clone();
            f[i] = v;
            f.join(";").parse::<SealRecord>().unwrap_err()
        };
        assert_eq!(with(0, "v2"), RecordError::Version);
        assert_eq!(with(1, ""), RecordError::Fingerprints);
        assert_eq!(with(1, "MD5:x"), RecordError::Fingerprints);
        assert_eq!(with(2, "!!"), RecordError::Label);
        assert_eq!(with(3, "AAAA"), RecordError::Digest);
        assert_eq!("v1;a;b".parse::<SealRecord>(), Err(RecordError::Fields));
    }

    #[test]
    fn labels_read_back_and_mismatches_are_named() {
        let strict = |ns: &str, n: &str| SealedFor::of(Scope::Strict, ns, n);
        assert_eq!(
            SealedFor::from_label(b"a/b"),
            SealedFor::Strict {
                namespace: "a".into(),
                name: "b".into()
            }
        );
        assert_eq!(SealedFor::from_label(b""), SealedFor::ClusterWide);
        assert_eq!(
            SealedFor::of(Scope::NamespaceWide, "a", "b").namespace(),
            Some("a")
        );
        let then = strict("prod", "db");
        assert_eq!(then.mismatch(&strict("prod", "db")), None);
        assert_eq!(
            then.mismatch(&strict("prod", "web")).unwrap(),
            "renamed: sealed for name db"
        );
        assert_eq!(
            then.mismatch(&strict("dev", "db")).unwrap(),
            "moved: sealed for namespace prod"
        );
        assert_eq!(
            then.mismatch(&strict("dev", "web")).unwrap(),
            "moved and renamed: sealed for prod/db"
        );
        assert_eq!(
            then.mismatch(&SealedFor::of(Scope::NamespaceWide, "prod", "db"))
                .unwrap(),
            "scope changed: sealed strict for prod/db, the SealedSecret is namespace-wide"
        );
        assert_eq!(
            SealedFor::of(Scope::NamespaceWide, "prod", "x")
                .mismatch(&SealedFor::of(Scope::NamespaceWide, "dev", "x"))
                .unwrap(),
            "moved: sealed for namespace prod"
        );
    }

    #[test]
    fn annotation_merges_per_item() {
        let a = fp(1);
        let r1 = SealRecord::new([&a], b"n/s", "one", b"1");
        let r2 = SealRecord::new([&a], b"n/s", "two", b"2");
        let first = merge_records(None, [("one".to_string(), r1.clone())]).unwrap();
        assert_eq!(first, format!("{{\"one\":\"{r1}\"}}"));
        let both = merge_records(Some(&first), [("two".to_string(), r2.clone())]).unwrap();
        let map = parse_records(&both).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["two"].parse::<SealRecord>().unwrap(), r2);
        // Unreadable old records are dropped, not kept.
        assert_eq!(
            merge_records(Some("not json"), [("one".to_string(), r1)]).unwrap(),
            first
        );
        assert_eq!(merge_records(None, []), None);
        assert_eq!(parse_records("[1]"), Err(RecordError::NotJson));

        let mut ss = SealedSecret::default();
        add_records(&mut ss, []);
        assert!(ss.metadata.annotations.is_none());
        assert_eq!(records_of(&ss), Ok(None));
        add_records(&mut ss, [("two".to_string(), r2)]);
        assert_eq!(records_of(&ss).unwrap().unwrap().len(), 1);
    }
}
