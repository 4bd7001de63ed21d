//! Reading and writing the key Secrets the controller keeps its keys in (docs/compatibility.md, “The sealing-key Secret”):
//! `kubernetes.io/tls` Secrets with `tls.key` (PKCS#1 PEM) and `tls.crt` (PEM), labelled
//! `sealedsecrets.bitnami.com/sealed-secrets-key: active`.
//!
//! A key file given to `kseal unseal --key` is read the way `kubeseal --recovery-private-key`
//! reads it: (a) PEM, else (b) a `v1 List` of Secrets (`kubectl get secret -l ... -o yaml`), else
//! (c) one or more Secret documents (YAML or JSON).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::keys::PrivateKey;
use crate::Error;

/// The label that marks key Secrets; only the value `active` puts a key into the registry.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// The value of [`KEY_LABEL`] for keys in use.
pub const KEY_LABEL_ACTIVE: &str = "active";
/// Bitnami's default key prefix: `generateName` of new key Secrets and the legacy key's name.
pub const DEFAULT_KEY_PREFIX: &str = "sealed-secrets-key";

/// A private key read from a key file, with what the file said about it.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The key (with its certificate when the Secret had a `tls.crt`).
    pub key: PrivateKey,
    /// The Secret's name, when the key came from a Secret.
    pub secret_name: Option<String>,
    /// The Secret's `creationTimestamp`, when present.
    pub created: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
struct Doc {
    kind: Option<String>,
    #[serde(default)]
    items: Option<Vec<serde_yaml::Value>>,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    data: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct Meta {
    name: Option<String>,
    #[serde(rename = "creationTimestamp")]
    creation_timestamp: Option<String>,
}

/// Reads every private key in a key file (see the module docs for the accepted forms).
pub fn parse_key_file(bytes: &[u8]) -> Result<Vec<LoadedKey>, Error> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        let key = PrivateKey::from_pem(bytes)?;
        return Ok(vec![LoadedKey {
            key,
            secret_name: None,
            created: None,
        }]);
    }
    let mut out = Vec::new();
    let mut docs = 0;
    for de in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(de)
            .map_err(|e| Error::UnrecognisedKeyFile(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        docs += 1;
        let mut doc: Doc =
            serde_yaml::from_value(value).map_err(|e| Error::UnrecognisedKeyFile(e.to_string()))?;
        let is_list = matches!(
            doc.kind.as_deref(),
            Some("List") | Some("SecretList") | None
        );
        match doc.items.take() {
            Some(items) if is_list => {
                for item in items {
                    let d: Doc = serde_yaml::from_value(item)
                        .map_err(|e| Error::UnrecognisedKeyFile(e.to_string()))?;
                    // A backup also holds kseal's age identity Secrets (`age.key`): not RSA
                    // keys, read by the age identity path instead.
                    if is_age_identity(&d) {
                        continue;
                    }
                    out.push(from_secret(d)?);
                }
            }
            _ if is_age_identity(&doc) => {}
            _ => out.push(from_secret(doc)?),
        }
    }
    if docs == 0 {
        return Err(Error::UnrecognisedKeyFile("the file is empty".into()));
    }
    Ok(out)
}

fn is_age_identity(doc: &Doc) -> bool {
    doc.data
        .as_ref()
        .is_some_and(|d| d.contains_key("age.key") && !d.contains_key("tls.key"))
}

fn from_secret(doc: Doc) -> Result<LoadedKey, Error> {
    let data = doc.data.unwrap_or_default();
    let key_b64 = data.get("tls.key").ok_or(Error::KeySecretWithoutKey)?;
    let key_pem = Zeroizing::new(
        STANDARD
            .decode(key_b64.trim())
            .map_err(|e| Error::InvalidPrivateKey(format!("tls.key is not base64: {e}")))?,
    );
    let mut key = PrivateKey::from_pem(&key_pem)?;
    if key.certificate().is_none() {
        if let Some(crt) = data.get("tls.crt") {
            let pem = STANDARD
                .decode(crt.trim())
                .map_err(|e| Error::InvalidCertificate(format!("tls.crt is not base64: {e}")))?;
            key = key.with_certificate(Certificate::from_pem(&pem)?)?;
        }
    }
    let created = doc.metadata.creation_timestamp.as_deref().and_then(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    });
    Ok(LoadedKey {
        key,
        secret_name: doc.metadata.name,
        created,
    })
}

/// Where a generated key Secret goes and how it is named.
#[derive(Debug, Clone)]
pub struct KeySecretSpec<'a> {
    /// Namespace of the controller.
    pub namespace: &'a str,
    /// Exact name, or `None` to use `generateName: <prefix>` like the controller does.
    pub name: Option<&'a str>,
    /// The generateName prefix (default `sealed-secrets-key`).
    pub prefix: &'a str,
}

/// Renders the key Secret YAML the controller reads, in a zeroizing buffer.
pub fn key_secret_yaml(
    key: &PrivateKey,
    spec: &KeySecretSpec<'_>,
) -> Result<Zeroizing<String>, Error> {
    let cert = key
        .certificate()
        .ok_or_else(|| Error::InvalidCertificate("the key has no certificate".into()))?;
    let key_pem = key.to_pkcs1_pem()?;
    let key_b64 = Zeroizing::new(STANDARD.encode(key_pem.as_bytes()));
    let crt_b64 = STANDARD.encode(cert.to_pem());
    let name_line = match spec.name {
        Some(n) => format!("  name: {}\n", yaml_str(n)),
        None => format!("  generateName: {}\n", yaml_str(spec.prefix)),
    };
    let mut out = Zeroizing::new(String::with_capacity(key_b64.len() + crt_b64.len() + 512));
    out.push_str("apiVersion: v1\nkind: Secret\nmetadata:\n");
    out.push_str(&name_line);
    out.push_str(&format!("  namespace: {}\n", yaml_str(spec.namespace)));
    out.push_str(&format!("  labels:\n    {KEY_LABEL}: {KEY_LABEL_ACTIVE}\n"));
    out.push_str("type: kubernetes.io/tls\ndata:\n");
    out.push_str(&format!("  tls.crt: {crt_b64}\n"));
    out.push_str("  tls.key: ");
    out.push_str(&key_b64);
    out.push('\n');
    Ok(out)
}

/// JSON string quoting is valid YAML and safe for any name.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}
