//! Key Secrets in the API (reference §1.7): reading them exactly as Bitnami's controller does,
//! writing new ones in Bitnami's format, and publishing the sealing certificate.
//!
//! Conversions between Secrets and keys are pure functions ([`key_from_secret`],
//! [`key_secret`]); [`KeyStore`] does the API calls around them.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kseal_crypto::keyfile::{KEY_LABEL, KEY_LABEL_ACTIVE};
use kseal_crypto::{Certificate, PrivateKey};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;

use crate::keys::{ordering_time, KeyOrderPriority, RegisteredKey};

/// What went wrong with a key Secret or a key-store call. Messages name the Secret, never key
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// A key Secret could not be read as a key.
    #[error("key Secret {name:?}: {reason}")]
    BadKeySecret {
        /// The Secret's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Listing the key Secrets failed.
    #[error("cannot list key Secrets in namespace {namespace:?}: {source}")]
    List {
        /// The controller namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Creating a new key Secret failed (the key is then not used).
    #[error("cannot create a key Secret in namespace {namespace:?}: {source}")]
    Create {
        /// The controller namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Publishing the certificate failed.
    #[error("cannot publish the certificate in ConfigMap {name:?}: {source}")]
    Publish {
        /// The ConfigMap.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// Encoding a key failed.
    #[error("cannot encode the key: {0}")]
    Encode(#[from] kseal_crypto::Error),
}

/// Reads a key Secret: `tls.key` (PKCS#1 or PKCS#8 RSA) and `tls.crt` (first certificate).
pub fn key_from_secret(
    secret: &Secret,
    priority: KeyOrderPriority,
) -> Result<RegisteredKey, KeyStoreError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let bad = |reason: String| KeyStoreError::BadKeySecret {
        name: name.clone(),
        reason,
    };
    let data = secret.data.as_ref();
    let key_pem = data
        .and_then(|d| d.get("tls.key"))
        .ok_or_else(|| bad("no tls.key".into()))?;
    let key = PrivateKey::from_pem(&key_pem.0).map_err(|e| bad(e.to_string()))?;
    let crt = data
        .and_then(|d| d.get("tls.crt"))
        .ok_or_else(|| bad("no tls.crt".into()))?;
    let cert = Certificate::from_pem(&crt.0).map_err(|e| bad(e.to_string()))?;
    let not_before = Timestamp::from_second(cert.not_before().unix_timestamp())
        .map_err(|e| bad(e.to_string()))?;
    let key = key.with_certificate(cert).map_err(|e| bad(e.to_string()))?;
    let created = secret.metadata.creation_timestamp.as_ref().map(|t| t.0);
    Ok(RegisteredKey {
        key: Arc::new(key),
        ordering_time: ordering_time(priority, not_before, created),
        secret_name: Some(name),
    })
}

/// The Secret a new key is stored in: `generateName: <prefix>`, type `kubernetes.io/tls`,
/// `tls.key` PKCS#1 PEM, `tls.crt` PEM, the active label plus `--privatekey-labels`, and
/// `--privatekey-annotations`. The caller must scrub it after use (it holds the private key).
pub fn key_secret(
    key: &PrivateKey,
    prefix: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<Secret, KeyStoreError> {
    let cert = key
        .certificate()
        .ok_or(kseal_crypto::Error::NoCertificate)?;
    let mut all_labels = labels.clone();
    all_labels.insert(KEY_LABEL.to_string(), KEY_LABEL_ACTIVE.to_string());
    Ok(Secret {
        metadata: ObjectMeta {
            generate_name: Some(prefix.to_string()),
            labels: Some(all_labels),
            annotations: Some(annotations.clone()).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(BTreeMap::from([
            (
                "tls.key".to_string(),
                ByteString(key.to_pkcs1_pem()?.as_bytes().to_vec()),
            ),
            (
                "tls.crt".to_string(),
                ByteString(cert.to_pem().into_bytes()),
            ),
        ])),
        ..Default::default()
    })
}

/// Zeroizes and drops the data of a Secret that held a private key.
pub fn scrub(secret: &mut Secret) {
    kseal_crds::seal::scrub(secret.data.take().unwrap_or_default(), BTreeMap::new());
}

/// The key Secrets and the published certificate of one controller namespace.
#[derive(Clone)]
pub struct KeyStore {
    secrets: Api<Secret>,
    configmaps: Api<ConfigMap>,
    namespace: String,
    prefix: String,
    priority: KeyOrderPriority,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("namespace", &self.namespace)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl KeyStore {
    /// A key store in `namespace` with Bitnami's `--key-prefix` and `--key-order-priority`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        prefix: &str,
        priority: KeyOrderPriority,
    ) -> Self {
        KeyStore {
            secrets: Api::namespaced(client.clone(), namespace),
            configmaps: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            prefix: prefix.to_string(),
            priority,
        }
    }

    /// The key Secrets' namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Secrets API of the controller namespace.
    pub fn secrets(&self) -> &Api<Secret> {
        &self.secrets
    }

    /// The ConfigMaps API of the controller namespace.
    pub fn configmaps(&self) -> &Api<ConfigMap> {
        &self.configmaps
    }

    /// `--key-order-priority`.
    pub fn priority(&self) -> KeyOrderPriority {
        self.priority
    }

    /// Every key to register, oldest Secret first: the Secrets labelled `active`, plus the
    /// legacy Secret named exactly `<prefix>` (pre-0.9 installs, which may carry no label).
    /// A Secret that does not parse is returned as an error next to the keys, not fatal
    /// (Bitnami crashes there; one bad Secret should not stop every other key).
    pub async fn load(&self) -> Result<(Vec<RegisteredKey>, Vec<KeyStoreError>), KeyStoreError> {
        let selector = format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}");
        let list = self
            .secrets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| KeyStoreError::List {
                namespace: self.namespace.clone(),
                source,
            })?;
        let mut secrets: Vec<Secret> = list.items;
        if !secrets
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(self.prefix.as_str()))
        {
            match self.secrets.get_opt(&self.prefix).await {
                Ok(Some(legacy)) => secrets.push(legacy),
                Ok(None) => {}
                // A controller without `get` on Secrets (Bitnami's key-admin Role grants only
                // create/list) cannot read the legacy key; listing covered the labelled ones.
                Err(kube::Error::Api(s)) if s.code == 403 => {}
                Err(source) => {
                    return Err(KeyStoreError::List {
                        namespace: self.namespace.clone(),
                        source,
                    })
                }
            }
        }
        secrets.sort_by_key(|s| s.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for mut s in secrets {
            match key_from_secret(&s, self.priority) {
                Ok(k) => keys.push(k),
                Err(e) => errors.push(e),
            }
            scrub(&mut s);
        }
        Ok((keys, errors))
    }

    /// Stores a freshly generated key in a new Secret. Only when the write succeeded may the
    /// caller register it (a key that is not stored would be lost at the next restart). The
    /// ordering time is `now`, as for Bitnami's own generated keys.
    pub async fn store_new(
        &self,
        key: PrivateKey,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<RegisteredKey, KeyStoreError> {
        let mut secret = key_secret(&key, &self.prefix, labels, annotations)?;
        let created = self.secrets.create(&PostParams::default(), &secret).await;
        scrub(&mut secret);
        let mut created = created.map_err(|source| KeyStoreError::Create {
            namespace: self.namespace.clone(),
            source,
        })?;
        scrub(&mut created);
        Ok(RegisteredKey {
            key: Arc::new(key),
            ordering_time: now,
            secret_name: created.metadata.name,
        })
    }

    /// Publishes the sealing certificate in ConfigMap `name` (data `cert.pem` and
    /// `fingerprint`), so that anyone allowed to read it can seal without the API server's
    /// service proxy. Server-side apply: idempotent, and it owns only these fields.
    pub async fn publish_certificate(
        &self,
        name: &str,
        cert: &Certificate,
    ) -> Result<(), KeyStoreError> {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/component".to_string(),
                    "sealing-certificate".to_string(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("cert.pem".to_string(), cert.to_pem()),
                ("fingerprint".to_string(), cert.fingerprint().to_string()),
            ])),
            ..Default::default()
        };
        self.configmaps
            .patch(
                name,
                &PatchParams::apply("kseal-controller").force(),
                &Patch::Apply(&cm),
            )
            .await
            .map_err(|source| KeyStoreError::Publish {
                name: name.to_string(),
                source,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_KEY: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.key");
    const GO_CERT: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.crt");

    fn secret(name: &str, key: &[u8], crt: &[u8]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("tls.key".into(), ByteString(key.to_vec())),
                ("tls.crt".into(), ByteString(crt.to_vec())),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn reads_a_bitnami_key_secret() {
        let k = key_from_secret(
            &secret("sealed-secrets-keyabcde", GO_KEY, GO_CERT),
            KeyOrderPriority::CertNotBefore,
        )
        .unwrap();
        assert_eq!(
            k.key.fingerprint().as_str(),
            "SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4"
        );
        assert_eq!(k.secret_name.as_deref(), Some("sealed-secrets-keyabcde"));
        assert_eq!(
            k.ordering_time.as_second(),
            1_795_267_414,
            "the certificate's NotBefore (openssl: Nov 21 13:23:34 2026 GMT)"
        );
    }

    #[test]
    fn bad_key_secrets_name_the_secret_not_the_key() {
        let e = key_from_secret(
            &secret("k1", b"garbage", GO_CERT),
            KeyOrderPriority::CertNotBefore,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "key Secret \"k1\": no PEM private key found");
        let mut no_key = secret("k2", GO_KEY, GO_CERT);
        no_key.data.as_mut().unwrap().remove("tls.key");
        assert_eq!(
            key_from_secret(&no_key, KeyOrderPriority::CertNotBefore)
                .unwrap_err()
                .to_string(),
            "key Secret \"k2\": no tls.key"
        );
    }

    #[test]
    fn new_key_secrets_have_bitnamis_shape_and_read_back() {
        let key = PrivateKey::from_pem(GO_KEY)
            .unwrap()
            .with_certificate(Certificate::from_pem(GO_CERT).unwrap())
            .unwrap();
        let labels = BTreeMap::from([("team".to_string(), "platform".to_string())]);
        let s = key_secret(&key, "sealed-secrets-key", &labels, &BTreeMap::new()).unwrap();
        assert_eq!(
            s.metadata.generate_name.as_deref(),
            Some("sealed-secrets-key")
        );
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(s.metadata.labels.as_ref().unwrap()[KEY_LABEL], "active");
        assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "platform");
        assert!(s.metadata.annotations.is_none());
        assert!(s.data.as_ref().unwrap()["tls.key"]
            .0
            .starts_with(b"-----BEGIN RSA PRIVATE KEY-----\n"));
        let back = key_from_secret(&s, KeyOrderPriority::CertNotBefore).unwrap();
        assert_eq!(back.key.fingerprint(), key.fingerprint());
        let shown = format!("{:?}", back);
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );
    }
}
