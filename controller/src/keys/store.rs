//! Key Secrets in the API (docs/compatibility.md, “The sealing-key Secret”): loading the
//! controller's RSA keys and age identities exactly as Bitnami's controller does, storing new
//! ones, and publishing the sealing certificate.
//!
//! The format itself (names, labels, data keys, what is never a key) is
//! `kseal_sealing::key_secret`, shared with the CLI; this module adds the API calls and the
//! registry's ordering around it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kseal_crypto::{AgeIdentity, AgeRecipient, Certificate, PrivateKey};
use kseal_sealing::key_secret::{
    self, age_identity_secret, certificate_data, KeySecretName, AGE_IDENTITY_LABEL,
    AGE_IDENTITY_LABEL_ACTIVE, KEY_LABEL, KEY_LABEL_ACTIVE,
};
use kseal_sealing::scrub;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;

use crate::keys::registry::{
    ordering_time, KeyOrderPriority, RegisteredAgeIdentity, RegisteredKey,
};

/// What went wrong with a key Secret or a key-store call. Messages name the Secret, never key
/// material. Each message includes its cause, which is therefore not also a `source()` (it
/// would be printed twice).
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
    #[error("cannot list key Secrets in namespace {namespace:?}: {cause}")]
    List {
        /// The controller namespace.
        namespace: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// Creating a new key Secret failed (the key is then not used).
    #[error("cannot create a key Secret in namespace {namespace:?}: {cause}")]
    Create {
        /// The controller namespace.
        namespace: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// Publishing the certificate failed.
    #[error("cannot publish the certificate in ConfigMap {name:?}: {cause}")]
    Publish {
        /// The ConfigMap.
        name: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// Encoding a key failed.
    #[error("cannot encode the key: {0}")]
    Encode(kseal_crypto::Error),
    /// This replica is no longer sure to hold the Lease: it generates no key.
    #[error("not generating a key: this replica is no longer sure to hold the Lease")]
    NotLeading,
}

impl From<kseal_crypto::Error> for KeyStoreError {
    fn from(e: kseal_crypto::Error) -> Self {
        KeyStoreError::Encode(e)
    }
}

fn bad_secret(secret: &Secret, e: key_secret::KeySecretError) -> KeyStoreError {
    KeyStoreError::BadKeySecret {
        name: secret.metadata.name.clone().unwrap_or_default(),
        reason: match e {
            // Bitnami's message names the wrong data key; the controller's log says it right.
            key_secret::KeySecretError::NoPrivateKey => format!("no {}", key_secret::TLS_KEY),
            e => e.to_string(),
        },
    }
}

/// Reads a key Secret for the registry: `tls.key` and `tls.crt` both required
/// ([`key_secret::read_key`]), ordered by `priority`. A Secret made from a SealedSecret is
/// refused.
pub fn key_from_secret(
    secret: &Secret,
    priority: KeyOrderPriority,
) -> Result<RegisteredKey, KeyStoreError> {
    let key = key_secret::read_key(secret, true).map_err(|e| bad_secret(secret, e))?;
    let cert = key
        .certificate()
        .expect("read_key with require_certificate attaches tls.crt");
    let not_before = Timestamp::from_second(cert.not_before().unix_timestamp()).map_err(|_| {
        KeyStoreError::BadKeySecret {
            name: secret.metadata.name.clone().unwrap_or_default(),
            reason: "tls.crt: NotBefore is out of range".into(),
        }
    })?;
    let created = secret.metadata.creation_timestamp.as_ref().map(|t| t.0);
    Ok(RegisteredKey {
        key: Arc::new(key),
        ordering_time: ordering_time(priority, not_before, created),
        secret_name: Some(secret.metadata.name.clone().unwrap_or_default()),
    })
}

/// Reads an age identity Secret for the registry ([`key_secret::read_age_identity`]). The
/// ordering time is the Secret's creationTimestamp, or `fallback` when it has none. The caller
/// scrubs the Secret.
pub fn age_identity_from_secret(
    secret: &Secret,
    fallback: Timestamp,
) -> Result<RegisteredAgeIdentity, KeyStoreError> {
    let identity = key_secret::read_age_identity(secret).map_err(|e| bad_secret(secret, e))?;
    let created = secret.metadata.creation_timestamp.as_ref().map(|t| t.0);
    Ok(RegisteredAgeIdentity {
        identity: Arc::new(identity),
        ordering_time: created.unwrap_or(fallback),
        secret_name: Some(secret.metadata.name.clone().unwrap_or_default()),
    })
}

/// Reads listed age identity Secrets, oldest first: the identities, and an error for each
/// Secret that cannot be read (skipped, never fatal: one bad Secret must not stop the others).
/// Every Secret is scrubbed.
pub fn read_age_secrets(
    mut secrets: Vec<Secret>,
    now: Timestamp,
) -> (Vec<RegisteredAgeIdentity>, Vec<KeyStoreError>) {
    secrets.sort_by_key(|s| s.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let mut identities = Vec::new();
    let mut errors = Vec::new();
    for mut s in secrets {
        match age_identity_from_secret(&s, now) {
            Ok(i) => identities.push(i),
            Err(e) => errors.push(e),
        }
        scrub::secret(&mut s);
    }
    (identities, errors)
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
        let mut secrets = self
            .list_labelled(&format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}"))
            .await?;
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
                Err(cause) => {
                    return Err(KeyStoreError::List {
                        namespace: self.namespace.clone(),
                        cause,
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
            scrub::secret(&mut s);
        }
        Ok((keys, errors))
    }

    /// Every age identity to register, oldest Secret first: the Secrets labelled
    /// `sealedsecrets.kseal.dev/age-identity=active`. A Secret that does not parse is returned
    /// as an error next to the identities, never fatal. `now` orders a Secret without a
    /// creationTimestamp (the API server always sets one).
    pub async fn load_age(
        &self,
        now: Timestamp,
    ) -> Result<(Vec<RegisteredAgeIdentity>, Vec<KeyStoreError>), KeyStoreError> {
        let secrets = self
            .list_labelled(&format!("{AGE_IDENTITY_LABEL}={AGE_IDENTITY_LABEL_ACTIVE}"))
            .await?;
        Ok(read_age_secrets(secrets, now))
    }

    /// The Secrets of the controller namespace that match `selector`.
    async fn list_labelled(&self, selector: &str) -> Result<Vec<Secret>, KeyStoreError> {
        self.secrets
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|cause| KeyStoreError::List {
                namespace: self.namespace.clone(),
                cause,
            })
    }

    /// Creates a key Secret; both the sent and the returned copy are scrubbed (the returned one
    /// keeps its metadata: the generated name).
    async fn create_key_secret(&self, mut secret: Secret) -> Result<Secret, KeyStoreError> {
        let created = self.secrets.create(&PostParams::default(), &secret).await;
        scrub::secret(&mut secret);
        let mut created = created.map_err(|cause| KeyStoreError::Create {
            namespace: self.namespace.clone(),
            cause,
        })?;
        scrub::secret(&mut created);
        Ok(created)
    }

    /// Stores a freshly generated age identity in a new Secret; register it only when this
    /// succeeded. The ordering time is `now`.
    pub async fn store_new_age(
        &self,
        identity: AgeIdentity,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<RegisteredAgeIdentity, KeyStoreError> {
        let secret = age_identity_secret(&identity, &self.prefix, labels, annotations);
        let created = self.create_key_secret(secret).await?;
        Ok(RegisteredAgeIdentity {
            identity: std::sync::Arc::new(identity),
            ordering_time: now,
            secret_name: created.metadata.name,
        })
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
        let secret = key_secret::key_secret(
            &key,
            KeySecretName::Generate(&self.prefix),
            None,
            labels,
            annotations,
        )?;
        let created = self.create_key_secret(secret).await?;
        crate::failpoint::hit(crate::failpoint::AFTER_KEY_WRITE);
        Ok(RegisteredKey {
            key: Arc::new(key),
            ordering_time: now,
            secret_name: created.metadata.name,
        })
    }

    /// Publishes the sealing certificate in ConfigMap `name` (data `cert.pem` and
    /// `fingerprint`), so that anyone allowed to read it can seal without the API server's
    /// service proxy. Server-side apply: idempotent, and it owns only these fields (an
    /// `age-recipient` published earlier by [`KeyStore::publish`] is removed).
    pub async fn publish_certificate(
        &self,
        name: &str,
        cert: &Certificate,
    ) -> Result<(), KeyStoreError> {
        self.publish(name, cert, None, None).await
    }

    /// [`KeyStore::publish_certificate`], plus the newest age recipient as data `age-recipient`
    /// (the `age1…` text, without a newline, like `fingerprint`) and the newest post-quantum
    /// one as `age-pq-recipient` (`age1pq1…`) when given. Without one, a recipient this controller published
    /// before is removed (server-side apply drops the fields its manager no longer sets).
    pub async fn publish(
        &self,
        name: &str,
        cert: &Certificate,
        age_recipient: Option<&AgeRecipient>,
        age_pq_recipient: Option<&AgeRecipient>,
    ) -> Result<(), KeyStoreError> {
        let data = certificate_data(cert, age_recipient, age_pq_recipient);
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
            data: Some(data),
            ..Default::default()
        };
        self.configmaps
            .patch(
                name,
                &PatchParams::apply("kseal-controller").force(),
                &Patch::Apply(&cm),
            )
            .await
            .map_err(|cause| KeyStoreError::Publish {
                name: name.to_string(),
                cause,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kseal_sealing::key_secret::{AGE_IDENTITY_DATA_KEY, ANNOTATION_AGE_RECIPIENT};

    const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");
    const GO_CERT: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.crt");

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
    fn a_secret_made_from_a_sealed_secret_is_never_a_key() {
        let mut s = secret("sealed-secrets-key", GO_KEY, GO_CERT);
        assert!(key_from_secret(&s, KeyOrderPriority::CertNotBefore).is_ok());
        s.metadata.owner_references = Some(vec![kseal_sealing::unseal::owner_reference(
            &kseal_crds::SealedSecret::default(),
        )]);
        let e = key_from_secret(&s, KeyOrderPriority::CertNotBefore).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key Secret \"sealed-secrets-key\": made from a SealedSecret, so never used as a key"
        );
        let mut s = secret("sealed-secrets-key", GO_KEY, GO_CERT);
        s.metadata.annotations = Some(BTreeMap::from([(
            kseal_crds::ANNOTATION_OWNERSHIP.to_string(),
            "v1;key=x;mac=y".to_string(),
        )]));
        assert!(key_from_secret(&s, KeyOrderPriority::CertNotBefore).is_err());
        let id = AgeIdentity::generate();
        let mut a = age_identity_secret(
            &id,
            "sealed-secrets-key",
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        a.metadata.owner_references = s.metadata.owner_references.clone();
        a.metadata.annotations = s.metadata.annotations.clone();
        assert!(age_identity_from_secret(&a, Timestamp::now()).is_err());
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
        assert_eq!(
            e.to_string(),
            "key Secret \"k1\": tls.key: no PEM private key found"
        );
        let mut no_key = secret("k2", GO_KEY, GO_CERT);
        no_key.data.as_mut().unwrap().remove("tls.key");
        assert_eq!(
            key_from_secret(&no_key, KeyOrderPriority::CertNotBefore)
                .unwrap_err()
                .to_string(),
            "key Secret \"k2\": no tls.key"
        );
    }

    fn age_secret(name: &str, data: &[u8], created: Option<i64>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: created.map(|s| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        Timestamp::from_second(s).unwrap(),
                    )
                }),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                AGE_IDENTITY_DATA_KEY.into(),
                ByteString(data.to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn age_identity_secrets_have_their_own_label_and_read_back() {
        let id = AgeIdentity::generate();
        let labels = BTreeMap::from([
            ("team".to_string(), "platform".to_string()),
            (KEY_LABEL.to_string(), "active".to_string()),
        ]);
        let annotations = BTreeMap::from([("owner".to_string(), "ops".to_string())]);
        let s = age_identity_secret(&id, "sealed-secrets-key", &labels, &annotations);
        assert_eq!(
            s.metadata.generate_name.as_deref(),
            Some("sealed-secrets-key-age-")
        );
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        let l = s.metadata.labels.as_ref().unwrap();
        assert_eq!(l[AGE_IDENTITY_LABEL], "active");
        assert_eq!(l["team"], "platform");
        assert!(
            !l.contains_key(KEY_LABEL),
            "never Bitnami's key label: its controller would read this as an RSA key"
        );
        let a = s.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[ANNOTATION_AGE_RECIPIENT], id.recipient().as_str());
        assert_eq!(a["owner"], "ops");
        let data = s.data.as_ref().unwrap();
        assert_eq!(data.len(), 1);
        let text = std::str::from_utf8(&data[AGE_IDENTITY_DATA_KEY].0).unwrap();
        assert!(
            text.starts_with("# public key: age1"),
            "age-keygen's layout"
        );
        assert!(text.contains("\nAGE-SECRET-KEY-1"));

        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let back = age_identity_from_secret(&s, now).unwrap();
        assert_eq!(back.identity.recipient(), id.recipient());
        assert_eq!(
            back.ordering_time, now,
            "no creationTimestamp: the fallback"
        );
        let shown = format!("{back:?}");
        assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");

        let mut stored = s.clone();
        stored.metadata.name = Some("sealed-secrets-key-age-x1y2z".into());
        stored.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(1_700_000_000).unwrap(),
            ));
        let back = age_identity_from_secret(&stored, now).unwrap();
        assert_eq!(
            back.ordering_time.as_second(),
            1_700_000_000,
            "ordered by creationTimestamp"
        );
        assert_eq!(
            back.secret_name.as_deref(),
            Some("sealed-secrets-key-age-x1y2z")
        );
    }

    #[test]
    fn an_age_keygen_file_is_accepted() {
        let id = AgeIdentity::generate();
        let file = format!(
            "# created: 2026-01-01T00:00:00Z\n{}\n",
            id.to_identity_file().as_str()
        );
        let back = age_identity_from_secret(
            &age_secret("restored", file.as_bytes(), Some(1_700_000_000)),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(back.identity.recipient(), id.recipient());
    }

    #[test]
    fn unreadable_age_secrets_are_skipped_with_an_error_naming_the_secret() {
        let good = AgeIdentity::generate();
        let other = AgeIdentity::generate();
        let two = format!(
            "{}{}",
            good.to_identity_file().as_str(),
            other.to_identity_file().as_str()
        );
        let mut no_data = age_secret("a-none", b"", Some(1));
        no_data.data = None;
        let secrets = vec![
            age_secret("c-good", good.to_identity_file().as_bytes(), Some(30)),
            no_data,
            age_secret("b-garbage", b"AGE-SECRET-KEY-1NOTAKEY\n", Some(2)),
            age_secret("d-binary", &[0xff, 0xfe, 0x00], Some(3)),
            age_secret("e-empty", b"# nothing here\n", Some(4)),
            age_secret("f-two", two.as_bytes(), Some(5)),
            age_secret("g-rsa", GO_KEY, Some(6)),
            age_secret("h-recipient", good.recipient().as_str().as_bytes(), Some(7)),
        ];
        let secret_line = good
            .to_identity_file()
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap()
            .to_string();
        let (ids, errors) = read_age_secrets(secrets, Timestamp::UNIX_EPOCH);
        assert_eq!(ids.len(), 1, "the readable one is still loaded");
        assert_eq!(ids[0].identity.recipient(), good.recipient());
        let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(texts.len(), 7, "{texts:#?}");
        let names = [
            "a-none",
            "b-garbage",
            "d-binary",
            "e-empty",
            "f-two",
            "g-rsa",
            "h-recipient",
        ];
        for (t, name) in texts.iter().zip(names) {
            assert!(
                t.starts_with(&format!("key Secret {name:?}: ")),
                "errors name the Secret, oldest first: {t}"
            );
            assert!(
                !t.contains(secret_line.as_str())
                    && !t.contains("NOTAKEY")
                    && !t.contains("PRIVATE KEY"),
                "errors never quote key material: {t}"
            );
        }
        assert_eq!(texts[0], "key Secret \"a-none\": no age.key");
        assert_eq!(
            texts[4],
            "key Secret \"f-two\": age.key holds 2 identities; store one per Secret"
        );
    }

    #[test]
    fn scrubbing_wipes_the_identity() {
        let id = AgeIdentity::generate();
        let mut s = age_identity_secret(&id, "p", &BTreeMap::new(), &BTreeMap::new());
        scrub::secret(&mut s);
        assert!(s.data.is_none());
    }

    #[test]
    fn new_key_secrets_have_bitnamis_shape_and_read_back() {
        let key = PrivateKey::from_pem(GO_KEY)
            .unwrap()
            .with_certificate(Certificate::from_pem(GO_CERT).unwrap())
            .unwrap();
        let labels = BTreeMap::from([("team".to_string(), "platform".to_string())]);
        let s = key_secret::key_secret(
            &key,
            KeySecretName::Generate("sealed-secrets-key"),
            None,
            &labels,
            &BTreeMap::new(),
        )
        .unwrap();
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
