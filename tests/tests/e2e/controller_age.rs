//! The controller's age identities on the real control plane, under its own RBAC (issue 6,
//! acceptance 1 and 2): the controller generates an age identity beside its RSA key, stores it
//! in its own Secret, publishes the recipient in the certificate ConfigMap and on
//! `/v1/age-recipient`, and opens SealedSecrets whose items are age blobs; one SealedSecret
//! sealed for two clusters' recipients and an offline recovery identity opens in both (two
//! controllers, different namespaces and keys) and offline; moved, renamed and copied age items
//! are refused with a status message and an Event naming the item; SIGUSR1 adds an identity
//! and the published recipient follows while old SealedSecrets keep opening; an identity
//! Secret added at run time is used without a restart (and an unreadable one is skipped, not
//! fatal); `--age=false` generates and publishes nothing, yet identities that exist still open.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kseal_crds::{SealedSecret, SealedSecretSpec};
use kseal_crypto::{open_age, seal_age, AgeIdentity, AgeRecipient, Scope};
use kseal_e2e::bins::kseal;
use kseal_e2e::controller::{
    check_data, consistently, consistently_absent, eventually_ok, eventually_secret, expect_event,
    string_map, synced_condition, wait_synced, EVENTUALLY,
};
use kseal_e2e::kube::api::{DeleteParams, ListParams, PostParams};
use kseal_e2e::kube::{Api, Client};
use kseal_e2e::{Controller, TestNamespace};
use kseal_sealing::key_secret::{
    age_identity_secret, AGE_IDENTITY_DATA_KEY, AGE_IDENTITY_LABEL, ANNOTATION_AGE_RECIPIENT,
    CONFIGMAP_AGE_PQ_RECIPIENT_KEY, CONFIGMAP_AGE_RECIPIENT_KEY,
};

/// The certificate ConfigMap's default name (`--cert-configmap`).
const CERT_CONFIGMAP: &str = "sealed-secrets-cert";
/// The start of a LabelMismatch item error.
const MISMATCH: &str = "sealed for another name, namespace or scope";

fn age_selector() -> String {
    format!("{AGE_IDENTITY_LABEL}=active")
}

/// Whether an identity Secret holds a post-quantum identity (by its recipient annotation).
fn is_pq(s: &Secret) -> bool {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_AGE_RECIPIENT))
        .is_some_and(|r| r.starts_with("age1pq1"))
}

/// The X25519 age identity Secrets of the controller's namespace, oldest first (the
/// post-quantum ones, made beside them, are counted by [`pq_age_secrets`]).
async fn age_secrets(ctl: &Controller) -> Result<Vec<Secret>> {
    Ok(all_age_secrets(ctl)
        .await?
        .into_iter()
        .filter(|s| !is_pq(s))
        .collect())
}

/// The post-quantum age identity Secrets, oldest first.
async fn pq_age_secrets(ctl: &Controller) -> Result<Vec<Secret>> {
    Ok(all_age_secrets(ctl)
        .await?
        .into_iter()
        .filter(is_pq)
        .collect())
}

/// Every age identity Secret of the controller's namespace, oldest first.
async fn all_age_secrets(ctl: &Controller) -> Result<Vec<Secret>> {
    let api = Api::<Secret>::namespaced(ctl.admin_client()?.clone(), ctl.namespace());
    let mut list = api
        .list(&ListParams::default().labels(&age_selector()))
        .await
        .context("listing age identity Secrets")?
        .items;
    list.sort_by(|a, b| {
        let t = |s: &Secret| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    Ok(list)
}

async fn wait_for_age_secrets(ctl: &Controller, n: usize) -> Result<Vec<Secret>> {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let list = age_secrets(ctl).await?;
        if list.len() >= n {
            return Ok(list);
        }
        if Instant::now() > deadline {
            bail!(
                "{} age identity Secrets after {EVENTUALLY:?}, want {n}",
                list.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The recipient `/v1/age-recipient` serves now (an error while it answers 500).
async fn served_recipient(ctl: &Controller) -> Result<AgeRecipient> {
    let r = ctl.get("/v1/age-recipient").await?;
    ensure!(
        r.status == 200,
        "/v1/age-recipient answered {}: {:?}",
        r.status,
        r.body
    );
    let ct = r
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    ensure!(
        ct == Some("text/plain; charset=utf-8"),
        "content-type {ct:?}"
    );
    let line = r
        .body
        .strip_suffix('\n')
        .context("the recipient ends with a newline")?;
    ensure!(!line.contains('\n'), "one line: {:?}", r.body);
    Ok(line.parse()?)
}

/// Waits until `/v1/age-recipient` serves a recipient (other than `not`, if given).
async fn wait_served(ctl: &Controller, not: Option<&AgeRecipient>) -> Result<AgeRecipient> {
    eventually_ok("/v1/age-recipient to serve a (new) recipient", || async {
        let r = served_recipient(ctl).await?;
        ensure!(Some(&r) != not, "still serves the old recipient {r}");
        Ok(r)
    })
    .await
}

/// The ConfigMap's `age-recipient`, if any.
async fn published_recipient(client: &Client, ns: &str) -> Result<Option<String>> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(CERT_CONFIGMAP)
        .await
        .context("reading the certificate ConfigMap")?;
    Ok(cm
        .data
        .unwrap_or_default()
        .get(CONFIGMAP_AGE_RECIPIENT_KEY)
        .cloned())
}

async fn wait_published(ctl: &Controller, want: &AgeRecipient) -> Result<()> {
    let client = ctl.admin_client()?.clone();
    eventually_ok("the ConfigMap's age-recipient to follow", || async {
        let got = published_recipient(&client, ctl.namespace()).await?;
        ensure!(
            got.as_deref() == Some(want.as_str()),
            "ConfigMap has {got:?}, want {want}"
        );
        Ok(())
    })
    .await
}

/// One age item (`encryptedData` value): `value` sealed for `recipients` under `label`.
fn age_item(recipients: &[AgeRecipient], label: &[u8], value: &str) -> Result<String> {
    Ok(STANDARD.encode(seal_age(recipients, label, value.as_bytes())?))
}

/// A SealedSecret `namespace/name` with `scope`'s annotation and these items, as written.
fn sealed_secret(
    namespace: &str,
    name: &str,
    scope: Scope,
    items: &[(&str, String)],
) -> SealedSecret {
    SealedSecret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            annotations: scope
                .annotation()
                .map(|a| BTreeMap::from([(a.to_string(), "true".to_string())])),
            ..Default::default()
        },
        spec: SealedSecretSpec {
            encrypted_data: items
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            ..Default::default()
        },
        status: None,
    }
}

/// `value` sealed strict for `namespace/name` for `recipient`, as SealedSecret item `password`.
fn strict_age(
    namespace: &str,
    name: &str,
    recipient: &AgeRecipient,
    value: &str,
) -> Result<SealedSecret> {
    let label = Scope::Strict.label(namespace, name);
    Ok(sealed_secret(
        namespace,
        name,
        Scope::Strict,
        &[(
            "password",
            age_item(std::slice::from_ref(recipient), &label, value)?,
        )],
    ))
}

async fn create(client: &Client, ss: &SealedSecret) -> Result<()> {
    let ns = ss.metadata.namespace.as_deref().context("no namespace")?;
    Api::<SealedSecret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), ss)
        .await
        .with_context(|| {
            format!(
                "creating SealedSecret {ns}/{}",
                ss.metadata.name.as_deref().unwrap_or("")
            )
        })?;
    Ok(())
}

fn sigusr1(ctl: &Controller) -> Result<()> {
    let pid = ctl.pid().context("the controller is not running")?;
    let status = Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -USR1 {pid} failed");
    Ok(())
}

#[tokio::test]
async fn the_controller_generates_publishes_and_opens_age() -> Result<()> {
    let apps = TestNamespace::new("age-apps").await?;
    let ctl = Controller::builder()
        .prefix("age")
        .watch(apps.name())
        .flag("--privatekey-labels", "team=platform")
        .start()
        .await?;

    // One identity Secret, in its own shape, beside the one RSA key Secret.
    let list = wait_for_age_secrets(&ctl, 1).await?;
    ensure!(list.len() == 1, "{} age identity Secrets", list.len());
    let s = &list[0];
    let name = s.metadata.name.clone().unwrap_or_default();
    ensure!(
        name.starts_with("sealed-secrets-key-age-")
            && name.len() == "sealed-secrets-key-age-".len() + 5,
        "generateName <key-prefix>-age-: {name}"
    );
    ensure!(s.type_.as_deref() == Some("Opaque"), "type {:?}", s.type_);
    let labels = s.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels.get("team").map(String::as_str) == Some("platform"),
        "--privatekey-labels: {labels:?}"
    );
    ensure!(
        !labels.contains_key("sealedsecrets.bitnami.com/sealed-secrets-key"),
        "never Bitnami's key label: {labels:?}"
    );
    let file = s
        .data
        .as_ref()
        .and_then(|d| d.get(AGE_IDENTITY_DATA_KEY))
        .context("no age.key")?;
    let ids = AgeIdentity::parse_identity_file(std::str::from_utf8(&file.0)?)?;
    ensure!(ids.len() == 1);
    let recipient = ids[0].to_public();
    let annotated = s
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_AGE_RECIPIENT))
        .cloned();
    ensure!(
        annotated.as_deref() == Some(recipient.as_str()),
        "annotation {annotated:?}"
    );
    ensure!(ctl.key_secrets().await?.len() == 1, "one RSA key Secret");

    // Published on /v1/age-recipient and in the ConfigMap, next to the certificate.
    ensure!(wait_served(&ctl, None).await? == recipient);
    wait_published(&ctl, &recipient).await?;
    let cm = Api::<ConfigMap>::namespaced(ctl.admin_client()?.clone(), ctl.namespace())
        .get(CERT_CONFIGMAP)
        .await?;
    let data = cm.data.unwrap_or_default();
    ensure!(
        data.contains_key("cert.pem") && data.contains_key("fingerprint"),
        "cert.pem and fingerprint stay: {:?}",
        data.keys().collect::<Vec<_>>()
    );

    // A SealedSecret of age items (strict, for this SealedSecret) becomes the Secret.
    let label = Scope::Strict.label(apps.name(), "db");
    let ss = sealed_secret(
        apps.name(),
        "db",
        Scope::Strict,
        &[
            (
                "username",
                age_item(std::slice::from_ref(&recipient), &label, "admin")?,
            ),
            (
                "password",
                age_item(std::slice::from_ref(&recipient), &label, "s3cr3t-age")?,
            ),
        ],
    );
    create(apps.client(), &ss).await?;
    let secrets: Api<Secret> = apps.api();
    eventually_secret(&secrets, "db", |s| {
        check_data(s, &[("username", "admin"), ("password", "s3cr3t-age")])
    })
    .await?;
    wait_synced(&apps.api(), "db", "True").await?;
    expect_event(apps.client(), apps.name(), "db", "Unsealed", None).await?;

    // key_age_seconds has a series for the identity (labelled with the recipient's fingerprint).
    let metrics = ctl.metrics().await?;
    let series = format!(
        "sealed_secrets_controller_key_age_seconds{{fingerprint=\"{}\"}}",
        recipient.fingerprint()
    );
    ensure!(metrics.contains(&series), "no {series} in\n{metrics}");

    ctl.finish().await?;
    apps.cleanup().await
}

#[tokio::test]
async fn one_sealed_secret_for_two_clusters_and_a_recovery_identity() -> Result<()> {
    // Two clusters: two controllers, each with its own namespace, keys and watched namespace.
    let apps_a = TestNamespace::new("age-two-a").await?;
    let apps_b = TestNamespace::new("age-two-b").await?;
    let ctl_a = Controller::builder()
        .prefix("age-two-ctl-a")
        .watch(apps_a.name())
        .start()
        .await?;
    let ctl_b = Controller::builder()
        .prefix("age-two-ctl-b")
        .watch(apps_b.name())
        .start()
        .await?;
    let (ra, rb) = (
        wait_served(&ctl_a, None).await?,
        wait_served(&ctl_b, None).await?,
    );
    ensure!(ra != rb, "different clusters, different identities");
    let recovery = AgeIdentity::generate();

    // Sealed once, cluster-wide (empty label), for both clusters and the recovery identity.
    let recipients = [ra.clone(), rb.clone(), recovery.to_public()];
    let user = age_item(&recipients, b"", "app")?;
    let pass = age_item(&recipients, b"", "multi-cluster")?;
    for apps in [&apps_a, &apps_b] {
        let ss = sealed_secret(
            apps.name(),
            "shared",
            Scope::ClusterWide,
            &[("username", user.clone()), ("password", pass.clone())],
        );
        create(apps.client(), &ss).await?;
    }
    for apps in [&apps_a, &apps_b] {
        let secrets: Api<Secret> = apps.api();
        eventually_secret(&secrets, "shared", |s| {
            check_data(s, &[("username", "app"), ("password", "multi-cluster")])
        })
        .await
        .with_context(|| format!("the controller watching {}", apps.name()))?;
        wait_synced(&apps.api(), "shared", "True").await?;
    }

    // Offline recovery: the recovery identity alone opens every item.
    for (item, want) in [(&user, "app"), (&pass, "multi-cluster")] {
        let blob = STANDARD.decode(item)?;
        let value = open_age(&[&recovery], b"", &blob)?;
        ensure!(value.expose() == want.as_bytes());
    }
    // And a third party's identity does not.
    let stranger = AgeIdentity::generate();
    ensure!(open_age(&[&stranger], b"", &STANDARD.decode(&pass)?).is_err());

    ctl_a.finish().await?;
    ctl_b.finish().await?;
    apps_a.cleanup().await?;
    apps_b.cleanup().await
}

/// Waits until `namespace/name` is Synced=False naming `item` as sealed for another
/// name/namespace/scope, with an ErrUnsealFailed Event that says the same, and no Secret.
async fn refused(
    client: &Client,
    namespace: &str,
    name: &str,
    item: &str,
    want: &str,
) -> Result<()> {
    let api: Api<SealedSecret> = Api::namespaced(client.clone(), namespace);
    let ss = wait_synced(&api, name, "False").await?;
    let c = synced_condition(&ss).context("no Synced condition")?;
    let message = c.message.clone().unwrap_or_default();
    ensure!(
        c.reason.as_deref() == Some("UnsealFailed"),
        "reason {:?}",
        c.reason
    );
    ensure!(
        message == format!("{want} ({item})"),
        "{namespace}/{name}: status message {message:?}, want {:?}",
        format!("{want} ({item})")
    );
    let event = expect_event(client, namespace, name, "ErrUnsealFailed", Some(MISMATCH)).await?;
    let text = event.message.unwrap_or_default();
    ensure!(
        text == format!("Failed to unseal: {want} ({item})"),
        "{namespace}/{name}: event message {text:?}"
    );
    consistently_absent(&Api::namespaced(client.clone(), namespace), name).await
}

#[tokio::test]
async fn moved_renamed_and_copied_age_items_are_refused() -> Result<()> {
    let apps = TestNamespace::new("age-refuse").await?;
    let elsewhere = TestNamespace::new("age-refuse-moved").await?;
    let ctl = Controller::builder()
        .prefix("age-refuse-ctl")
        .watch(apps.name())
        .watch(elsewhere.name())
        .start()
        .await?;
    let r = wait_served(&ctl, None).await?;
    let client = apps.client().clone();

    // The original opens where it was sealed for: the key is not the problem below.
    let original = strict_age(apps.name(), "db", &r, "hunter2")?;
    create(&client, &original).await?;
    eventually_secret(&apps.api(), "db", |s| {
        check_data(s, &[("password", "hunter2")])
    })
    .await?;

    // Renamed: the same items under another name.
    let mut renamed = original.clone();
    renamed.metadata.name = Some("db-renamed".into());
    create(&client, &renamed).await?;

    // Moved: the same SealedSecret in another (watched) namespace.
    let mut moved = original.clone();
    moved.metadata.namespace = Some(elsewhere.name().into());
    create(&client, &moved).await?;

    // Copied: an item taken from SealedSecret `db` into `web`, next to a good item of its own.
    let web_label = Scope::Strict.label(apps.name(), "web");
    let mut copied = sealed_secret(
        apps.name(),
        "web",
        Scope::Strict,
        &[(
            "token",
            age_item(std::slice::from_ref(&r), &web_label, "ok")?,
        )],
    );
    copied.spec.encrypted_data.insert(
        "password".into(),
        original.spec.encrypted_data["password"].clone(),
    );
    create(&client, &copied).await?;

    // A strict item in a SealedSecret turned namespace-wide: another scope.
    let mut widened = strict_age(apps.name(), "wide", &r, "x")?;
    widened.metadata.annotations = Some(string_map(&[(
        "sealedsecrets.bitnami.com/namespace-wide",
        "true",
    )]));
    create(&client, &widened).await?;

    let ns = apps.name();
    refused(
        &client,
        ns,
        "db-renamed",
        "password",
        &format!("{MISMATCH}, not for strict scope, label \"{ns}/db-renamed\""),
    )
    .await?;
    let other = elsewhere.name();
    refused(
        &client,
        other,
        "db",
        "password",
        &format!("{MISMATCH}, not for strict scope, label \"{other}/db\""),
    )
    .await?;
    refused(
        &client,
        ns,
        "web",
        "password",
        &format!("{MISMATCH}, not for strict scope, label \"{ns}/web\""),
    )
    .await?;
    refused(
        &client,
        ns,
        "wide",
        "password",
        &format!("{MISMATCH}, not for namespace-wide scope, label \"{ns}\""),
    )
    .await?;

    ctl.finish().await?;
    elsewhere.cleanup().await?;
    apps.cleanup().await
}

#[tokio::test]
async fn sigusr1_adds_an_age_identity_and_old_sealed_secrets_still_open() -> Result<()> {
    let apps = TestNamespace::new("age-renew").await?;
    let ctl = Controller::builder()
        .prefix("age-renew-ctl")
        .watch(apps.name())
        .start()
        .await?;
    let r1 = wait_served(&ctl, None).await?;
    wait_published(&ctl, &r1).await?;
    let secrets: Api<Secret> = apps.api();
    create(
        apps.client(),
        &strict_age(apps.name(), "old", &r1, "before")?,
    )
    .await?;
    eventually_secret(&secrets, "old", |s| {
        check_data(s, &[("password", "before")])
    })
    .await?;

    // Identity times have one-second resolution (creationTimestamp): renew in a later second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sigusr1(&ctl)?;
    wait_for_age_secrets(&ctl, 2).await?;
    let r2 = wait_served(&ctl, Some(&r1)).await?;
    wait_published(&ctl, &r2).await?;
    ensure!(
        ctl.key_secrets().await?.len() == 2,
        "a renewal makes an RSA key and an age identity"
    );
    let list = age_secrets(&ctl).await?;
    ensure!(
        list.len() == 2,
        "{} age identity Secrets, want 2",
        list.len()
    );

    // New seals use the new recipient; the old SealedSecret still opens (its Secret, deleted,
    // comes back).
    create(
        apps.client(),
        &strict_age(apps.name(), "new", &r2, "after")?,
    )
    .await?;
    eventually_secret(&secrets, "new", |s| check_data(s, &[("password", "after")])).await?;
    secrets.delete("old", &DeleteParams::default()).await?;
    eventually_secret(&secrets, "old", |s| {
        check_data(s, &[("password", "before")])
    })
    .await?;

    ctl.finish().await?;
    apps.cleanup().await
}

#[tokio::test]
async fn an_age_identity_secret_added_at_run_time_is_used_without_a_restart() -> Result<()> {
    let mut ctl = Controller::builder().prefix("age-addid").start().await?;
    let admin = ctl.admin_client()?.clone();
    let ns = ctl.namespace().to_owned();
    let own = wait_served(&ctl, None).await?;
    let pid = ctl.pid();

    // An operator restores an identity from a backup (or another cluster), in a later second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let restored = AgeIdentity::generate();
    let mut secret = age_identity_secret(&restored, "restored", &BTreeMap::new(), &BTreeMap::new());
    secret.metadata.generate_name = None;
    secret.metadata.name = Some("restored-age".into());
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns);
    secrets.create(&PostParams::default(), &secret).await?;

    // It is the newest identity: served and published at once, and it opens what was sealed
    // for it; the controller's own identity keeps opening too.
    let served = wait_served(&ctl, Some(&own)).await?;
    ensure!(served == restored.to_public(), "serves {served}");
    wait_published(&ctl, &served).await?;
    create(
        &admin,
        &strict_age(&ns, "restored-ss", &served, "from-backup")?,
    )
    .await?;
    create(&admin, &strict_age(&ns, "own-ss", &own, "own")?).await?;
    eventually_secret(&secrets, "restored-ss", |s| {
        check_data(s, &[("password", "from-backup")])
    })
    .await?;
    eventually_secret(&secrets, "own-ss", |s| {
        check_data(s, &[("password", "own")])
    })
    .await?;
    ensure!(ctl.pid() == pid, "no restart");

    // An unreadable identity Secret is skipped with a log line, at run time and at start-up.
    let bad = Secret {
        metadata: ObjectMeta {
            name: Some("broken-age".into()),
            labels: Some(string_map(&[(AGE_IDENTITY_LABEL, "active")])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            AGE_IDENTITY_DATA_KEY.to_string(),
            ByteString(b"AGE-SECRET-KEY-1NOTAKEY\n".to_vec()),
        )])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &bad).await?;
    eventually_ok("the unreadable identity Secret to be logged", || async {
        ensure!(ctl.logs().contains("broken-age"), "not logged yet");
        Ok(())
    })
    .await?;
    ctl.restart().await?;
    ensure!(
        wait_served(&ctl, None).await? == served,
        "still the restored identity"
    );
    // After the restart both the start-up load and the watch skip it (the watch may log a
    // moment after the controller is ready).
    eventually_ok(
        "the unreadable identity Secret skipped again after the restart",
        || async {
            ensure!(
                ctl.logs().matches("broken-age").count() >= 3,
                "skipped at start-up too (load and watch):\n{}",
                ctl.logs()
            );
            Ok(())
        },
    )
    .await?;
    secrets
        .delete("restored-ss", &DeleteParams::default())
        .await?;
    eventually_secret(&secrets, "restored-ss", |s| {
        check_data(s, &[("password", "from-backup")])
    })
    .await?;
    ctl.finish().await
}

#[tokio::test]
async fn age_off_generates_and_publishes_nothing_but_existing_identities_open() -> Result<()> {
    // An identity Secret exists before the controller starts (a restored backup).
    let home = TestNamespace::new("age-off").await?;
    let existing = AgeIdentity::generate();
    let mut secret = age_identity_secret(
        &existing,
        "sealed-secrets-key",
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    secret.metadata.generate_name = None;
    secret.metadata.name = Some("existing-age".into());
    home.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;

    let ctl = Controller::builder()
        .in_namespace(home)
        .env("SEALED_SECRETS_AGE", "false")
        .start()
        .await?;
    let admin = ctl.admin_client()?.clone();
    let ns = ctl.namespace().to_owned();

    // Nothing generated or published: one RSA key, the one identity Secret, no recipient.
    eventually_ok("the certificate to be published", || async {
        let cm = Api::<ConfigMap>::namespaced(admin.clone(), &ns)
            .get(CERT_CONFIGMAP)
            .await?;
        ensure!(cm.data.unwrap_or_default().contains_key("cert.pem"));
        Ok(())
    })
    .await?;
    consistently(
        "no age identity generated or published",
        Duration::from_secs(3),
        || async {
            ensure!(
                age_secrets(&ctl).await?.len() == 1,
                "an age identity was generated"
            );
            ensure!(
                published_recipient(&admin, &ns).await?.is_none(),
                "an age recipient was published"
            );
            let r = ctl.get("/v1/age-recipient").await?;
            ensure!(
                r.status == 500 && r.body == "cannot get age recipient\n",
                "/v1/age-recipient answered {} {:?}",
                r.status,
                r.body
            );
            // --age=false also turns the post-quantum identity off.
            ensure!(
                pq_age_secrets(&ctl).await?.is_empty(),
                "a post-quantum identity was generated"
            );
            let r = ctl.get("/v1/age-pq-recipient").await?;
            ensure!(
                r.status == 500 && r.body == "cannot get post-quantum age recipient\n",
                "/v1/age-pq-recipient answered {} {:?}",
                r.status,
                r.body
            );
            Ok(())
        },
    )
    .await?;

    // The existing identity still opens age blobs.
    create(
        &admin,
        &strict_age(&ns, "legacy", &existing.to_public(), "still")?,
    )
    .await?;
    eventually_secret(&Api::namespaced(admin.clone(), &ns), "legacy", |s| {
        check_data(s, &[("password", "still")])
    })
    .await?;
    ctl.finish().await
}

/// The recipient `/v1/age-pq-recipient` serves, once it does; checked against the ConfigMap's
/// `age-pq-recipient` and the one post-quantum identity Secret.
async fn served_pq_recipient(ctl: &Controller) -> Result<AgeRecipient> {
    let r: AgeRecipient = eventually_ok("/v1/age-pq-recipient to serve a recipient", || async {
        let r = ctl.get("/v1/age-pq-recipient").await?;
        ensure!(
            r.status == 200,
            "/v1/age-pq-recipient answered {}: {:?}",
            r.status,
            r.body
        );
        let line = r.body.strip_suffix('\n').context("ends with a newline")?;
        Ok(line.parse::<AgeRecipient>()?)
    })
    .await?;
    ensure!(r.is_post_quantum(), "served {r}");
    let client = ctl.admin_client()?.clone();
    eventually_ok("the ConfigMap's age-pq-recipient", || async {
        let cm = Api::<ConfigMap>::namespaced(client.clone(), ctl.namespace())
            .get(CERT_CONFIGMAP)
            .await?;
        let data = cm.data.unwrap_or_default();
        ensure!(
            data.get(CONFIGMAP_AGE_PQ_RECIPIENT_KEY).map(String::as_str) == Some(r.as_str()),
            "ConfigMap age-pq-recipient differs"
        );
        ensure!(
            data.get(CONFIGMAP_AGE_RECIPIENT_KEY)
                .is_some_and(|x| x.starts_with("age1") && !x.starts_with("age1pq1")),
            "the X25519 recipient is published beside it"
        );
        Ok(())
    })
    .await?;
    let pq = pq_age_secrets(ctl).await?;
    ensure!(pq.len() == 1, "{} post-quantum identity Secrets", pq.len());
    let file = pq[0]
        .data
        .as_ref()
        .and_then(|d| d.get(AGE_IDENTITY_DATA_KEY))
        .context("no age.key")?;
    let ids = AgeIdentity::parse_identity_file(std::str::from_utf8(&file.0)?)?;
    ensure!(
        ids.len() == 1 && ids[0].to_public() == r,
        "age.key holds the served identity"
    );
    Ok(r)
}

/// Post-quantum end to end (issue 14, acceptance 2): two controllers (two clusters) publish
/// their mlkem768x25519 recipients; `kseal seal` seals one SealedSecret for both and for a PQ
/// recovery identity made by `kseal age-keygen --pq`; each controller unseals it, `kseal unseal
/// --identity` recovers it offline, and a renamed or moved PQ item is refused by name.
#[tokio::test]
async fn post_quantum_sealed_secret_for_two_clusters_and_a_recovery_identity() -> Result<()> {
    let apps_a = TestNamespace::new("age-pq-a").await?;
    let apps_b = TestNamespace::new("age-pq-b").await?;
    let ctl_a = Controller::builder()
        .prefix("age-pq-ctl-a")
        .watch(apps_a.name())
        .start()
        .await?;
    let ctl_b = Controller::builder()
        .prefix("age-pq-ctl-b")
        .watch(apps_b.name())
        .start()
        .await?;
    let ra = served_pq_recipient(&ctl_a).await?;
    let rb = served_pq_recipient(&ctl_b).await?;
    ensure!(ra != rb, "different clusters, different identities");

    let dir = tempfile::tempdir()?;
    let recovery_key = dir.path().join("recovery.key");
    let r = kseal(
        &[
            "age-keygen",
            "--pq",
            "-o",
            recovery_key.to_str().context("path")?,
        ],
        None,
    )?;
    ensure!(r.code == Some(0), "age-keygen: {}", r.stderr);
    let recovery = r
        .stderr
        .trim()
        .strip_prefix("Public key: ")
        .context("age-keygen names the public key")?
        .to_string();
    ensure!(recovery.starts_with("age1pq1"));
    let recipients_file = dir.path().join("recipients.txt");
    std::fs::write(
        &recipients_file,
        format!("# cluster A\n{ra}\n# recovery\n{recovery}\n"),
    )?;

    // One SealedSecret, cluster-wide, for both clusters and the recovery identity.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shared\n  namespace: default\nstringData:\n  username: app\n  password: post-quantum\n";
    let sealed = kseal(
        &[
            "seal",
            "--no-config",
            "--scope",
            "cluster-wide",
            "-R",
            recipients_file.to_str().context("path")?,
            "-r",
            rb.as_str(),
            "-o",
            "json",
        ],
        Some(secret.as_bytes()),
    )?;
    ensure!(sealed.code == Some(0), "seal: {}", sealed.stderr);
    let ss: SealedSecret = serde_json::from_str(&sealed.stdout)?;
    for (item, v) in &ss.spec.encrypted_data {
        let h = kseal_crypto::inspect_age(&STANDARD.decode(v)?)?;
        ensure!(
            h.pq_stanzas() == 3 && h.x25519_stanzas() == 0,
            "{item}: {:?}",
            h.stanza_types
        );
    }
    for apps in [&apps_a, &apps_b] {
        let mut copy = ss.clone();
        copy.metadata.namespace = Some(apps.name().into());
        create(apps.client(), &copy).await?;
    }
    for apps in [&apps_a, &apps_b] {
        eventually_secret(&apps.api(), "shared", |s| {
            check_data(s, &[("username", "app"), ("password", "post-quantum")])
        })
        .await
        .with_context(|| format!("the controller watching {}", apps.name()))?;
        wait_synced(&apps.api(), "shared", "True").await?;
    }

    // Offline recovery with the PQ identity alone.
    let r = kseal(
        &[
            "unseal",
            "--identity",
            recovery_key.to_str().context("path")?,
            "-o",
            "json",
        ],
        Some(sealed.stdout.as_bytes()),
    )?;
    ensure!(r.code == Some(0), "unseal: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    ensure!(
        v["data"]["password"] == STANDARD.encode("post-quantum"),
        "{v}"
    );
    ensure!(v["data"]["username"] == STANDARD.encode("app"), "{v}");

    // Strict PQ items, renamed and moved: refused by name, on the real controller.
    let ns = apps_a.name();
    let label = Scope::Strict.label(ns, "db");
    let original = sealed_secret(
        ns,
        "db",
        Scope::Strict,
        &[(
            "password",
            age_item(std::slice::from_ref(&ra), &label, "hunter2")?,
        )],
    );
    create(apps_a.client(), &original).await?;
    eventually_secret(&apps_a.api(), "db", |s| {
        check_data(s, &[("password", "hunter2")])
    })
    .await?;
    let mut renamed = original.clone();
    renamed.metadata.name = Some("db-renamed".into());
    create(apps_a.client(), &renamed).await?;
    refused(
        apps_a.client(),
        ns,
        "db-renamed",
        "password",
        &format!("{MISMATCH}, not for strict scope, label \"{ns}/db-renamed\""),
    )
    .await?;
    // Moved into the other cluster's namespace, sealed for it too: still refused there.
    let both_label = Scope::Strict.label(ns, "db2");
    let moved = sealed_secret(
        apps_b.name(),
        "db2",
        Scope::Strict,
        &[(
            "password",
            age_item(&[ra.clone(), rb.clone()], &both_label, "x")?,
        )],
    );
    create(apps_b.client(), &moved).await?;
    let nb = apps_b.name();
    refused(
        apps_b.client(),
        nb,
        "db2",
        "password",
        &format!("{MISMATCH}, not for strict scope, label \"{nb}/db2\""),
    )
    .await?;

    ctl_a.finish().await?;
    ctl_b.finish().await?;
    apps_a.cleanup().await?;
    apps_b.cleanup().await
}
