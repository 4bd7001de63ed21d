//! Key start-up and renewal against a real API server (docs/compatibility.md, “Start-up sequence”): a key is generated when
//! none exists or the newest is older than the cutoff, an existing key is reused after a restart,
//! renewal adds a key that becomes the sealing key, and the published certificate follows.

use std::collections::BTreeMap;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kseal_controller::keys::manager::{KeyManager, KeyPolicy};
use kseal_controller::keys::registry::KeyOrderPriority;
use kseal_controller::keys::store::KeyStore;
use kseal_crypto::keygen::KeyProfile;
use kseal_e2e::kube::api::ListParams;
use kseal_e2e::{rule, TestNamespace};

fn policy(cutoff: Option<Timestamp>) -> KeyPolicy {
    KeyPolicy {
        profile: KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        cutoff,
        labels: BTreeMap::from([("team".to_string(), "platform".to_string())]),
        annotations: BTreeMap::new(),
        cert_configmap: Some("sealed-secrets-cert".into()),
    }
}

#[tokio::test]
async fn keys_are_generated_reused_and_renewed() -> Result<()> {
    let ns = TestNamespace::new("keymgr").await?;
    let me = ns
        .identity(
            "controller",
            vec![
                rule(&[""], &["secrets"], &["create", "list", "get"]),
                rule(&[""], &["configmaps"], &["get", "create", "patch"]),
            ],
        )
        .await?;
    let store = || async {
        Ok::<_, anyhow::Error>(KeyStore::new(
            me.client().await?,
            ns.name(),
            "sealed-secrets-key",
            KeyOrderPriority::CertNotBefore,
        ))
    };
    let published = || async {
        let cm = ns.api::<ConfigMap>().get("sealed-secrets-cert").await?;
        Ok::<_, anyhow::Error>(cm.data.context("no data")?["fingerprint"].clone())
    };

    // No key yet: one is generated, stored, and published.
    let first = KeyManager::new(store().await?, policy(None));
    let rx = first.subscribe();
    let s = first.startup(Timestamp::now()).await?;
    ensure!(s.loaded == 0 && s.generated.is_some(), "{s:?}");
    let fp1 = first
        .current()
        .newest()
        .context("no key")?
        .key
        .fingerprint()
        .to_string();
    ensure!(rx.has_changed()?, "subscribers see the new registry");
    ensure!(published().await? == fp1);
    let secrets = ns
        .api::<Secret>()
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"))
        .await?;
    ensure!(secrets.items.len() == 1);
    ensure!(
        secrets.items[0]
            .metadata
            .labels
            .as_ref()
            .context("labels")?["team"]
            == "platform",
        "--privatekey-labels applied"
    );

    // A restart reuses it.
    let again = KeyManager::new(store().await?, policy(None));
    let s = again.startup(Timestamp::now()).await?;
    ensure!(s.loaded == 1 && s.generated.is_none(), "{s:?}");
    ensure!(
        again
            .current()
            .newest()
            .context("no key")?
            .key
            .fingerprint()
            .to_string()
            == fp1
    );

    // A cutoff after the newest key's time forces a new key at start-up.
    let cutoff = Timestamp::now() + SignedDuration::from_secs(60);
    let cut = KeyManager::new(store().await?, policy(Some(cutoff)));
    let s = cut
        .startup(Timestamp::now() + SignedDuration::from_secs(120))
        .await?;
    ensure!(s.loaded == 1 && s.generated.is_some(), "{s:?}");
    let fp2 = cut
        .current()
        .newest()
        .context("no key")?
        .key
        .fingerprint()
        .to_string();
    ensure!(
        fp2 != fp1 && cut.current().keyring().len() == 2,
        "old keys stay for decryption"
    );
    ensure!(
        published().await? == fp2,
        "the certificate follows the newest key"
    );

    // Renewal adds a third key that becomes the sealing key.
    cut.renew(Timestamp::now() + SignedDuration::from_secs(240))
        .await?;
    let fp3 = cut
        .current()
        .newest()
        .context("no key")?
        .key
        .fingerprint()
        .to_string();
    ensure!(fp3 != fp2 && cut.current().keyring().len() == 3);
    ensure!(published().await? == fp3);
    ns.cleanup().await
}
