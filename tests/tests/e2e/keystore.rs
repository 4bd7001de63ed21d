//! The controller's key store against a real API server: Bitnami's key Secrets (labelled, legacy
//! and bring-your-own) are read, new keys are written in Bitnami's format, the certificate is
//! published, and the controller needs only the RBAC Bitnami's install grants plus configmaps.

use std::collections::BTreeMap;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kseal_controller::keys::registry::{KeyOrderPriority, KeyRegistry};
use kseal_controller::keys::store::KeyStore;
use kseal_crypto::keygen::{generate, KeyProfile};
use kseal_e2e::kube::api::PostParams;
use kseal_e2e::{rule, TestNamespace};

const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");
const GO_CERT: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.crt");

fn tls_secret(name: &str, labels: Option<&str>, key: &[u8], crt: &[u8]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labels.map(|v| {
                BTreeMap::from([(
                    kseal_sealing::key_secret::KEY_LABEL.to_string(),
                    v.to_string(),
                )])
            }),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.key".into(), ByteString(key.to_vec())),
            ("tls.crt".into(), ByteString(crt.to_vec())),
        ])),
        ..Default::default()
    }
}

#[tokio::test]
async fn key_secrets_round_trip_under_the_controllers_own_rbac() -> Result<()> {
    let ns = TestNamespace::new("keystore").await?;
    let secrets = ns.api::<Secret>();
    // A Bitnami-made key (the Go vector key), a legacy unlabelled `sealed-secrets-key`, a
    // compromised key that must be ignored, and an unrelated Secret.
    let other = generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )?;
    let other_pem = other.to_pkcs1_pem()?;
    let other_crt = other.certificate().context("cert")?.to_pem();
    secrets
        .create(
            &PostParams::default(),
            &tls_secret("sealed-secrets-keyabcde", Some("active"), GO_KEY, GO_CERT),
        )
        .await?;
    secrets
        .create(
            &PostParams::default(),
            &tls_secret(
                "sealed-secrets-key",
                None,
                other_pem.as_bytes(),
                other_crt.as_bytes(),
            ),
        )
        .await?;
    let bad = generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )?;
    secrets
        .create(
            &PostParams::default(),
            &tls_secret(
                "compromised",
                Some("compromised"),
                bad.to_pkcs1_pem()?.as_bytes(),
                bad.certificate().context("cert")?.to_pem().as_bytes(),
            ),
        )
        .await?;

    // The controller's identity: Bitnami's key-admin Role (secrets create/list, get) plus
    // configmaps for publishing the certificate.
    let me = ns
        .identity(
            "controller",
            vec![
                rule(&[""], &["secrets"], &["create", "list", "get"]),
                rule(&[""], &["configmaps"], &["get", "create", "patch"]),
            ],
        )
        .await?;
    let store = KeyStore::new(
        me.client().await?,
        ns.name(),
        "sealed-secrets-key",
        KeyOrderPriority::CertNotBefore,
    );

    let (keys, errors) = store.load().await?;
    ensure!(errors.is_empty(), "{errors:?}");
    let mut fps: Vec<String> = keys
        .iter()
        .map(|k| k.key.fingerprint().to_string())
        .collect();
    fps.sort();
    let mut want = vec![
        "SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4".to_string(),
        other.fingerprint().to_string(),
    ];
    want.sort();
    ensure!(
        fps == want,
        "loaded {fps:?}, want {want:?} (the compromised key must stay out)"
    );

    // A new key: stored first, in Bitnami's format, then usable.
    let fresh = generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )?;
    let fresh_fp = fresh.fingerprint().clone();
    let stored = store
        .store_new(fresh, &BTreeMap::new(), &BTreeMap::new(), Timestamp::now())
        .await?;
    let name = stored.secret_name.clone().context("no name")?;
    ensure!(
        name.starts_with("sealed-secrets-key") && name.len() == "sealed-secrets-key".len() + 5,
        "generateName without a dash: {name}"
    );
    let s = secrets.get(&name).await?;
    ensure!(s.type_.as_deref() == Some("kubernetes.io/tls"));
    ensure!(s.data.as_ref().context("data")?["tls.key"]
        .0
        .starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    let mut registry = KeyRegistry::default();
    for k in store.load().await?.0 {
        registry.register(k);
    }
    ensure!(
        registry.contains(&fresh_fp),
        "the new key is found again after a reload"
    );

    // The certificate is published for anyone who may read the ConfigMap.
    let cert = registry
        .newest()
        .context("newest")?
        .key
        .certificate()
        .context("cert")?
        .clone();
    store
        .publish_certificate("sealed-secrets-cert", &cert)
        .await?;
    store
        .publish_certificate("sealed-secrets-cert", &cert)
        .await
        .context("publishing is idempotent")?;
    let cm = ns.api::<ConfigMap>().get("sealed-secrets-cert").await?;
    let data = cm.data.context("data")?;
    ensure!(
        data["cert.pem"] == cert.to_pem() && data["fingerprint"] == cert.fingerprint().to_string()
    );
    ns.cleanup().await
}
