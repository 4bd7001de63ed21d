//! The key Secrets: how the controller keeps its RSA keys and age identities in the API, in one
//! place for the controller (which reads and writes them through the API) and the CLI (backups,
//! `kseal unseal --key`, `kubeseal --recovery-private-key`, `kseal keygen --secret-file`,
//! `kseal keys`). See docs/compatibility.md, “The sealing-key Secret”.
//!
//! # RSA key Secrets (Bitnami's format)
//!
//! `kubernetes.io/tls` Secrets with [`TLS_KEY`] (PKCS#1 PEM; PKCS#8 is read too) and [`TLS_CRT`]
//! (PEM), labelled [`KEY_LABEL`]`: active`, named `generateName: <--key-prefix>` (Bitnami's
//! default [`DEFAULT_KEY_PREFIX`], which is also the name of the legacy single key).
//!
//! # Age identity Secrets (kseal's)
//!
//! ```yaml
//! apiVersion: v1
//! kind: Secret
//! type: Opaque
//! metadata:
//!   generateName: sealed-secrets-key-age-        # <--key-prefix>-age-
//!   labels:
//!     sealedsecrets.kseal.dev/age-identity: active   # plus --privatekey-labels
//!   annotations:
//!     sealedsecrets.kseal.dev/age-recipient: age1…   # plus --privatekey-annotations
//! data:
//!   age.key: <identity file: "# public key: age1…\nAGE-SECRET-KEY-1…\n">
//! ```
//!
//! They deliberately do not carry Bitnami's key label: Bitnami's controller would try to read
//! them as RSA keys (and stop) if a cluster went back to it. `age.key` is what `age-keygen`
//! writes (without its `# created:` line), so `age -d -i` reads it as it is. The recipient
//! annotation is informational; the identity in `age.key` is what counts.
//!
//! # Key files
//!
//! A key file ([`read_key_file`]) is read the way `kubeseal --recovery-private-key` reads it:
//! a PEM private key, else a `v1 List` of Secrets (`kubectl get secret -l … -o yaml`, or a
//! `kseal keys backup`), else one or more Secret documents (YAML or JSON).
//!
//! Every function that returns a Secret or reads one leaves the private material in it: the
//! caller wipes it with [`crate::scrub::secret`]. Errors name the Secret and the field, never
//! key material.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kseal_crypto::{AgeIdentity, AgeRecipient, Certificate, PrivateKey};
use serde::Deserialize as _;

/// The label that marks RSA key Secrets; only the value [`KEY_LABEL_ACTIVE`] puts a key into
/// the controller's keyring.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// The value of [`KEY_LABEL`] (and [`AGE_IDENTITY_LABEL`]) for keys in use.
pub const KEY_LABEL_ACTIVE: &str = "active";
/// Bitnami's default key prefix: `generateName` of new key Secrets and the legacy key's name.
pub const DEFAULT_KEY_PREFIX: &str = "sealed-secrets-key";
/// The type of RSA key Secrets.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// The data key of the private key (PEM).
pub const TLS_KEY: &str = "tls.key";
/// The data key of the certificate (PEM).
pub const TLS_CRT: &str = "tls.crt";

/// The label that marks an age identity Secret (value [`AGE_IDENTITY_LABEL_ACTIVE`]).
pub const AGE_IDENTITY_LABEL: &str = "sealedsecrets.kseal.dev/age-identity";
/// The value of [`AGE_IDENTITY_LABEL`] on identities the controller loads.
pub const AGE_IDENTITY_LABEL_ACTIVE: &str = "active";
/// The data key of an age identity Secret: the identity file text.
pub const AGE_IDENTITY_DATA_KEY: &str = "age.key";
/// The annotation on an age identity Secret naming its public recipient (`age1…`).
pub const ANNOTATION_AGE_RECIPIENT: &str = "sealedsecrets.kseal.dev/age-recipient";

/// The data key of the certificate ConfigMap that holds the sealing certificate (PEM).
pub const CONFIGMAP_CERT_KEY: &str = "cert.pem";
/// The data key of the certificate ConfigMap that holds the certificate's fingerprint.
pub const CONFIGMAP_FINGERPRINT_KEY: &str = "fingerprint";
/// The data key of the certificate ConfigMap that holds the newest age recipient.
pub const CONFIGMAP_AGE_RECIPIENT_KEY: &str = "age-recipient";
/// The data key of the certificate ConfigMap that holds the newest post-quantum age recipient
/// (`age1pq1…`).
pub const CONFIGMAP_AGE_PQ_RECIPIENT_KEY: &str = "age-pq-recipient";

/// The `generateName` of age identity Secrets for a key prefix: `<prefix>-age-`.
pub fn age_secret_prefix(key_prefix: &str) -> String {
    format!("{key_prefix}-age-")
}

/// What is wrong with a key Secret or a key file. Never quotes key material or a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySecretError {
    /// The Secret was made from a SealedSecret (see [`made_from_sealed_secret`]).
    #[error("made from a SealedSecret, so never used as a key")]
    MadeFromSealedSecret,
    /// A key Secret without `tls.key` (Bitnami's message, which names the wrong key, kept for
    /// scripts).
    #[error("secret must contain a 'tls.data' key")]
    NoPrivateKey,
    /// A required data key is missing.
    #[error("no {0}")]
    Missing(&'static str),
    /// A data key holds something that is not what it should be.
    #[error("{field}: {cause}")]
    Invalid {
        /// The data key.
        field: &'static str,
        /// Why (from the crypto crate; never quotes key bytes).
        cause: kseal_crypto::Error,
    },
    /// A data key that must be text is not UTF-8.
    #[error("{0} is not UTF-8 text")]
    NotText(&'static str),
    /// An age identity Secret must hold exactly one identity.
    #[error("{AGE_IDENTITY_DATA_KEY} holds {0} identities; store one per Secret")]
    IdentityCount(usize),
    /// A key file that is neither PEM, a Secret, nor a List of Secrets.
    #[error("not a PEM private key, a key Secret or a List of key Secrets: {0}")]
    UnrecognisedKeyFile(String),
}

/// True when a Secret was made from a SealedSecret: an ownerReference to one, or the ownership
/// annotation the controller puts on every Secret it writes. Such a Secret is never a key, even
/// with a key label: keys come only from the controller or an administrator, and anyone who may
/// create a SealedSecret in the controller's namespace could otherwise choose one.
pub fn made_from_sealed_secret(secret: &Secret) -> bool {
    let owned = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == kseal_crds::KIND && o.api_version == kseal_crds::API_VERSION);
    let marked = secret
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(kseal_crds::ANNOTATION_OWNERSHIP));
    owned || marked
}

/// True for an age identity Secret: labelled [`AGE_IDENTITY_LABEL`], or holding `age.key` and
/// no `tls.key` (a backup's item whose labels were edited away).
pub fn is_age_identity(secret: &Secret) -> bool {
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(AGE_IDENTITY_LABEL));
    let data = secret.data.as_ref();
    labelled
        || data.is_some_and(|d| d.contains_key(AGE_IDENTITY_DATA_KEY) && !d.contains_key(TLS_KEY))
}

/// True for a Secret that holds key material of either kind (`tls.key` or `age.key`).
pub fn holds_key_material(secret: &Secret) -> bool {
    secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(TLS_KEY) || d.contains_key(AGE_IDENTITY_DATA_KEY))
}

/// The state label of a key Secret ([`KEY_LABEL`] or [`AGE_IDENTITY_LABEL`]), `None` when it
/// has none (the legacy key).
pub fn state(secret: &Secret) -> Option<&str> {
    let label = if is_age_identity(secret) {
        AGE_IDENTITY_LABEL
    } else {
        KEY_LABEL
    };
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(label))
        .map(String::as_str)
}

/// The certificate in `tls.crt`, when there is a readable one.
pub fn certificate(secret: &Secret) -> Option<Certificate> {
    let crt = secret.data.as_ref()?.get(TLS_CRT)?;
    Certificate::from_pem(&crt.0).ok()
}

/// Reads an RSA key Secret: `tls.key` (PKCS#1 or PKCS#8 RSA) with the first certificate of
/// `tls.crt` attached. With `require_certificate` (the controller), a Secret without `tls.crt`
/// is refused; without it (key files), the key is read alone. A Secret made from a SealedSecret
/// is always refused.
pub fn read_key(secret: &Secret, require_certificate: bool) -> Result<PrivateKey, KeySecretError> {
    if made_from_sealed_secret(secret) {
        return Err(KeySecretError::MadeFromSealedSecret);
    }
    let data = secret.data.as_ref();
    let key_pem = data
        .and_then(|d| d.get(TLS_KEY))
        .ok_or(KeySecretError::NoPrivateKey)?;
    let invalid = |field| move |cause| KeySecretError::Invalid { field, cause };
    let key = PrivateKey::from_pem(&key_pem.0).map_err(invalid(TLS_KEY))?;
    match data.and_then(|d| d.get(TLS_CRT)) {
        Some(crt) => {
            let cert = Certificate::from_pem(&crt.0).map_err(invalid(TLS_CRT))?;
            key.with_certificate(cert).map_err(invalid(TLS_CRT))
        }
        None if require_certificate => Err(KeySecretError::Missing(TLS_CRT)),
        None => Ok(key),
    }
}

/// Reads an age identity Secret: `age.key` holds exactly one `AGE-SECRET-KEY-1…` identity
/// (comments and blank lines allowed, as `age-keygen` writes). A Secret made from a
/// SealedSecret is refused.
pub fn read_age_identity(secret: &Secret) -> Result<AgeIdentity, KeySecretError> {
    if made_from_sealed_secret(secret) {
        return Err(KeySecretError::MadeFromSealedSecret);
    }
    let file = secret
        .data
        .as_ref()
        .and_then(|d| d.get(AGE_IDENTITY_DATA_KEY))
        .ok_or(KeySecretError::Missing(AGE_IDENTITY_DATA_KEY))?;
    // Borrowed, not copied: the text stays in the Secret, which the caller scrubs.
    let text =
        std::str::from_utf8(&file.0).map_err(|_| KeySecretError::NotText(AGE_IDENTITY_DATA_KEY))?;
    let mut identities =
        AgeIdentity::parse_identity_file(text).map_err(|cause| KeySecretError::Invalid {
            field: AGE_IDENTITY_DATA_KEY,
            cause,
        })?;
    if identities.len() != 1 {
        return Err(KeySecretError::IdentityCount(identities.len()));
    }
    Ok(identities.remove(0))
}

/// How a new key Secret is named.
#[derive(Debug, Clone, Copy)]
pub enum KeySecretName<'a> {
    /// `generateName: <prefix>` (the controller's way; [`DEFAULT_KEY_PREFIX`] by default).
    Generate(&'a str),
    /// An exact name (`kseal keygen --secret-name`).
    Exact(&'a str),
}

/// The Secret a new RSA key is stored in: type `kubernetes.io/tls`, `tls.key` PKCS#1 PEM,
/// `tls.crt` PEM, [`KEY_LABEL`]`: active` plus `labels`, and `annotations`. The caller scrubs
/// it after use (it holds the private key).
pub fn key_secret(
    key: &PrivateKey,
    name: KeySecretName<'_>,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<Secret, kseal_crypto::Error> {
    let cert = key
        .certificate()
        .ok_or(kseal_crypto::Error::NoCertificate)?;
    let mut all_labels = labels.clone();
    all_labels.insert(KEY_LABEL.to_string(), KEY_LABEL_ACTIVE.to_string());
    let (name, generate_name) = match name {
        KeySecretName::Generate(prefix) => (None, Some(prefix.to_string())),
        KeySecretName::Exact(name) => (Some(name.to_string()), None),
    };
    Ok(Secret {
        metadata: ObjectMeta {
            name,
            generate_name,
            namespace: namespace.map(str::to_string),
            labels: Some(all_labels),
            annotations: Some(annotations.clone()).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([
            (
                TLS_KEY.to_string(),
                ByteString(key.to_pkcs1_pem()?.as_bytes().to_vec()),
            ),
            (TLS_CRT.to_string(), ByteString(cert.to_pem().into_bytes())),
        ])),
        ..Default::default()
    })
}

/// The Secret a new age identity is stored in (see the module docs): `generateName: <key
/// prefix>-age-`, type Opaque, [`AGE_IDENTITY_LABEL`]`: active` plus `labels` (never
/// [`KEY_LABEL`]), [`ANNOTATION_AGE_RECIPIENT`] plus `annotations`, `age.key` the identity file.
/// The caller scrubs it after use (it holds the identity).
pub fn age_identity_secret(
    identity: &AgeIdentity,
    key_prefix: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Secret {
    let mut all_labels = labels.clone();
    // Never Bitnami's key label (its controller would read this Secret as an RSA key).
    all_labels.remove(KEY_LABEL);
    all_labels.insert(
        AGE_IDENTITY_LABEL.to_string(),
        AGE_IDENTITY_LABEL_ACTIVE.to_string(),
    );
    let mut all_annotations = annotations.clone();
    all_annotations.insert(
        ANNOTATION_AGE_RECIPIENT.to_string(),
        identity.recipient().to_string(),
    );
    let file = identity.to_identity_file();
    Secret {
        metadata: ObjectMeta {
            generate_name: Some(age_secret_prefix(key_prefix)),
            labels: Some(all_labels),
            annotations: Some(all_annotations),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        // `file` (Zeroizing) is wiped when it goes out of scope; the copy in the Secret is the
        // caller's to scrub.
        data: Some(BTreeMap::from([(
            AGE_IDENTITY_DATA_KEY.to_string(),
            ByteString(file.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// The data of the certificate ConfigMap: `cert.pem`, `fingerprint` and, when given,
/// `age-recipient` (the `age1…` text, without a newline, like `fingerprint`) and
/// `age-pq-recipient` (the post-quantum `age1pq1…` text).
pub fn certificate_data(
    cert: &Certificate,
    age_recipient: Option<&AgeRecipient>,
    age_pq_recipient: Option<&AgeRecipient>,
) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        (CONFIGMAP_CERT_KEY.to_string(), cert.to_pem()),
        (
            CONFIGMAP_FINGERPRINT_KEY.to_string(),
            cert.fingerprint().to_string(),
        ),
    ]);
    if let Some(r) = age_recipient {
        data.insert(CONFIGMAP_AGE_RECIPIENT_KEY.to_string(), r.to_string());
    }
    if let Some(r) = age_pq_recipient {
        data.insert(CONFIGMAP_AGE_PQ_RECIPIENT_KEY.to_string(), r.to_string());
    }
    data
}

/// A private key read from a key file, with what the file said about it.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The key (with its certificate when the Secret had a `tls.crt`).
    pub key: PrivateKey,
    /// The Secret's name, when the key came from a Secret.
    pub secret_name: Option<String>,
    /// The Secret's `creationTimestamp`, when present.
    pub created: Option<Timestamp>,
}

/// Reads every RSA private key in a key file (see the module docs for the accepted forms); age
/// identity Secrets in it are skipped (they are read by the age identity path).
pub fn read_key_file(bytes: &[u8]) -> Result<Vec<LoadedKey>, KeySecretError> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        let key = PrivateKey::from_pem(bytes).map_err(|cause| KeySecretError::Invalid {
            field: "the PEM key",
            cause,
        })?;
        return Ok(vec![LoadedKey {
            key,
            secret_name: None,
            created: None,
        }]);
    }
    // Parse errors name the document (and item), never what they hold: serde's messages quote
    // values, and this file holds private keys.
    let unrecognised = |at: String| {
        KeySecretError::UnrecognisedKeyFile(format!("{at} is not a Secret or a List of Secrets"))
    };
    let mut secrets = Vec::new();
    let mut docs = 0;
    for (n, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let at = format!("document {}", n + 1);
        let mut value = serde_yaml::Value::deserialize(de).map_err(|_| unrecognised(at.clone()))?;
        if value.is_null() {
            continue;
        }
        docs += 1;
        let kind = value.get("kind").and_then(serde_yaml::Value::as_str);
        let is_list = matches!(kind, Some("List") | Some("SecretList") | None);
        match value.get_mut("items").map(std::mem::take) {
            Some(serde_yaml::Value::Sequence(items)) if is_list => {
                for (i, item) in items.into_iter().enumerate() {
                    let at = format!("{at}, item {}", i + 1);
                    secrets.push(
                        serde_yaml::from_value::<Secret>(item).map_err(|_| unrecognised(at))?,
                    );
                }
            }
            Some(_) if is_list => return Err(unrecognised(at)),
            _ => {
                secrets.push(serde_yaml::from_value::<Secret>(value).map_err(|_| unrecognised(at))?)
            }
        }
    }
    if docs == 0 {
        return Err(KeySecretError::UnrecognisedKeyFile(
            "the file is empty".into(),
        ));
    }
    let mut out = Vec::new();
    let mut result = Ok(());
    for secret in &secrets {
        if is_age_identity(secret) {
            continue;
        }
        match read_key(secret, false) {
            Ok(key) => out.push(LoadedKey {
                key,
                secret_name: secret.metadata.name.clone(),
                created: secret.metadata.creation_timestamp.as_ref().map(|t| t.0),
            }),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    for mut secret in secrets {
        crate::scrub::secret(&mut secret);
    }
    result.map(|()| out)
}

/// Renders a key Secret (from [`key_secret`]) as the YAML document `kubectl apply` and the
/// controller read, in a zeroizing buffer: the data values are base64, nothing else is copied
/// into an unwiped buffer.
pub fn key_secret_yaml(secret: &Secret) -> zeroize::Zeroizing<String> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    // JSON string quoting is valid YAML and safe for any name, label or annotation.
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let m = &secret.metadata;
    let mut out = zeroize::Zeroizing::new(String::with_capacity(8192));
    out.push_str("apiVersion: v1\nkind: Secret\nmetadata:\n");
    if let Some(n) = &m.name {
        out.push_str(&format!("  name: {}\n", q(n)));
    }
    if let Some(n) = &m.generate_name {
        out.push_str(&format!("  generateName: {}\n", q(n)));
    }
    if let Some(n) = &m.namespace {
        out.push_str(&format!("  namespace: {}\n", q(n)));
    }
    for (field, map) in [("labels", &m.labels), ("annotations", &m.annotations)] {
        if let Some(map) = map.as_ref().filter(|m| !m.is_empty()) {
            out.push_str(&format!("  {field}:\n"));
            for (k, v) in map {
                out.push_str(&format!("    {}: {}\n", q(k), q(v)));
            }
        }
    }
    if let Some(t) = &secret.type_ {
        out.push_str(&format!("type: {}\n", q(t)));
    }
    if let Some(data) = &secret.data {
        out.push_str("data:\n");
        for (k, v) in data {
            out.push_str(&format!("  {}: ", q(k)));
            let encoded = zeroize::Zeroizing::new(STANDARD.encode(&v.0));
            out.push_str(&encoded);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> PrivateKey {
        kseal_crypto::keygen::generate(
            &mut rand::rngs::OsRng,
            &kseal_crypto::keygen::KeyProfile {
                bits: 2048,
                ..Default::default()
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
    }

    #[test]
    fn a_written_key_secret_reads_back_from_the_api_shape_and_from_its_yaml() {
        let key = generated();
        let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
        let mut s = key_secret(
            &key,
            KeySecretName::Generate(DEFAULT_KEY_PREFIX),
            Some("kube-system"),
            &labels,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(s.type_.as_deref(), Some(TLS_SECRET_TYPE));
        assert_eq!(state(&s), Some(KEY_LABEL_ACTIVE));
        assert!(!is_age_identity(&s) && holds_key_material(&s));
        let back = read_key(&s, true).unwrap();
        assert_eq!(back.fingerprint(), key.fingerprint());
        let yaml = key_secret_yaml(&s);
        assert!(yaml.contains("generateName: \"sealed-secrets-key\""));
        assert!(yaml.contains("\"sealedsecrets.bitnami.com/sealed-secrets-key\": \"active\""));
        assert!(yaml.contains("type: \"kubernetes.io/tls\""));
        let from_file = read_key_file(yaml.as_bytes()).unwrap();
        assert_eq!(from_file.len(), 1);
        assert_eq!(from_file[0].key.fingerprint(), key.fingerprint());
        assert_eq!(from_file[0].key.certificate(), key.certificate());
        crate::scrub::secret(&mut s);
        assert!(s.data.is_none());
    }

    #[test]
    fn secrets_made_from_sealed_secrets_are_never_keys() {
        let key = generated();
        let mut s = key_secret(
            &key,
            KeySecretName::Exact("k"),
            None,
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap();
        s.metadata.annotations = Some(BTreeMap::from([(
            kseal_crds::ANNOTATION_OWNERSHIP.to_string(),
            "x".to_string(),
        )]));
        assert!(matches!(
            read_key(&s, true),
            Err(KeySecretError::MadeFromSealedSecret)
        ));
        let id = AgeIdentity::generate();
        let mut a = age_identity_secret(&id, "p", &BTreeMap::new(), &BTreeMap::new());
        assert!(is_age_identity(&a));
        assert_eq!(read_age_identity(&a).unwrap().recipient(), id.recipient());
        a.metadata.owner_references = Some(vec![Default::default()]);
        a.metadata.owner_references.as_mut().unwrap()[0].kind = kseal_crds::KIND.into();
        a.metadata.owner_references.as_mut().unwrap()[0].api_version =
            kseal_crds::API_VERSION.into();
        assert!(matches!(
            read_age_identity(&a),
            Err(KeySecretError::MadeFromSealedSecret)
        ));
    }

    #[test]
    fn key_file_errors_name_the_document_never_its_content() {
        let canary = "hunter2-canary";
        let bad = format!("apiVersion: v1\nkind: List\nitems:\n- data: {canary}\n");
        let e = read_key_file(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("document 1, item 1"), "{e}");
        assert!(!e.contains(canary), "{e}");
        let e = read_key_file(format!("data: [{canary}]\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("document 1") && !e.contains(canary), "{e}");
    }
}
