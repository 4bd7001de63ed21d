//! The controller's keys and high availability on the real control plane, with the controller
//! under its own RBAC (docs/compatibility.md, “Start-up sequence”, “Key renewal”; issue acceptance 1):
//! renewal by SIGUSR1 and by the RBAC-authorized request annotation (new seals use the new key,
//! old SealedSecrets still open, also after a restart), periodic renewal, a key Secret added at
//! run time, Bitnami's Go test key opening SealedSecrets built from the Go vectors, and two
//! replicas where the leader is killed and the other takes over within the Lease duration.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kseal_crds::{SealedSecret, SealedSecretSpec, ANNOTATION_RENEW_REQUESTED};
use kseal_crypto::Certificate;
use kseal_e2e::controller::{
    base_secret, check_data, eventually_ok, eventually_secret, http_get, seal, wait_synced,
    EVENTUALLY,
};
use kseal_e2e::kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{Cluster, Controller, TestNamespace};

const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");
const GO_CERT: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.crt");
const GO_VECTORS: &str = include_str!("../../../crypto/tests/data/go_vectors.json");

fn named(secret: Secret, name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..secret.metadata
        },
        ..secret
    }
}

async fn served_fingerprint(ctl: &Controller) -> Result<String> {
    let r = ctl.get("/v1/cert.pem").await?;
    ensure!(r.status == 200, "/v1/cert.pem answered {}", r.status);
    Ok(Certificate::from_pem(r.body.as_bytes())?
        .fingerprint()
        .to_string())
}

async fn wait_for_keys(ctl: &Controller, n: usize) -> Result<Vec<Secret>> {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let keys = ctl.key_secrets().await?;
        if keys.len() >= n {
            return Ok(keys);
        }
        if Instant::now() > deadline {
            bail!("{} key Secrets after {EVENTUALLY:?}, want {n}", keys.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cert_of(key_secret: &Secret) -> Result<Certificate> {
    let pem = key_secret
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .context("no tls.crt")?;
    Ok(Certificate::from_pem(&pem.0)?)
}

/// The one certificate among the key Secrets that is not in `known`.
fn new_cert(keys: &[Secret], known: &[&Certificate]) -> Result<Certificate> {
    let mut new = Vec::new();
    for k in keys {
        let c = cert_of(k)?;
        if !known.iter().any(|o| o.fingerprint() == c.fingerprint()) {
            new.push(c);
        }
    }
    ensure!(new.len() == 1, "{} new keys, want 1", new.len());
    Ok(new.remove(0))
}

async fn newest_is_served(ctl: &Controller, want: &Certificate) -> Result<()> {
    let want = want.fingerprint().to_string();
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        // 500 until the keys are loaded (health answers before).
        let got = served_fingerprint(ctl).await.unwrap_or_default();
        if got == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("/v1/cert.pem serves {got}, want the new key {want}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn published_fingerprint(client: &kube::Client, ns: &str) -> Result<String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get("sealed-secrets-cert")
        .await?;
    Ok(cm
        .data
        .context("no data")?
        .get("fingerprint")
        .cloned()
        .unwrap_or_default())
}

#[tokio::test]
async fn renewal_adds_keys_and_old_sealed_secrets_still_open() -> Result<()> {
    let apps = TestNamespace::new("renew-apps").await?;
    let mut ctl = Controller::builder()
        .prefix("renew")
        .watch(apps.name())
        .start()
        .await?;
    let admin = ctl.admin_client()?.clone();
    let ss_api: Api<SealedSecret> = apps.api();
    let secrets: Api<Secret> = apps.api();

    // Sealed with the first key.
    let cert1 = ctl.sealing_certificate().await?;
    let old = seal(&cert1, named(base_secret(apps.name()), "old"))?;
    ss_api.create(&PostParams::default(), &old).await?;
    eventually_secret(&secrets, "old", |s| check_data(s, &[("foo", "bar")])).await?;

    // SIGUSR1: a second key, served and published; new seals use it. (Key times have
    // one-second resolution, as in Bitnami: renew in a later second than the last key.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pid = ctl.pid().context("no pid")?;
    let status = Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -USR1 failed");
    let keys = wait_for_keys(&ctl, 2).await?;
    let cert2 = new_cert(&keys, &[&cert1])?;
    newest_is_served(&ctl, &cert2).await?;
    eventually_ok("the published certificate follows", || {
        let admin = admin.clone();
        let ns = ctl.namespace().to_owned();
        let want = cert2.fingerprint().to_string();
        async move {
            let got = published_fingerprint(&admin, &ns).await?;
            ensure!(got == want, "ConfigMap has {got}");
            Ok(())
        }
    })
    .await?;
    let new = seal(&cert2, named(base_secret(apps.name()), "new"))?;
    ss_api.create(&PostParams::default(), &new).await?;
    eventually_secret(&secrets, "new", |s| check_data(s, &[("foo", "bar")])).await?;

    // The renewal request annotation (what `kseal keys renew` sets; RBAC decides who may).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cms = Api::<ConfigMap>::namespaced(admin.clone(), ctl.namespace());
    let patch =
        serde_json::json!({"metadata": {"annotations": {ANNOTATION_RENEW_REQUESTED: "req-1"}}});
    cms.patch(
        "sealed-secrets-cert-renewal",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    let keys = wait_for_keys(&ctl, 3).await?;
    let cert3 = new_cert(&keys, &[&cert1, &cert2])?;
    newest_is_served(&ctl, &cert3).await?;

    // Someone edits the published certificate (to make users seal for their key): the
    // controller restores it.
    let forged = serde_json::json!({"data": {"cert.pem": cert1.to_pem(), "fingerprint": cert1.fingerprint().to_string()}});
    cms.patch(
        "sealed-secrets-cert",
        &PatchParams::default(),
        &Patch::Merge(&forged),
    )
    .await?;
    eventually_ok("the edited certificate ConfigMap is restored", || {
        let admin = admin.clone();
        let ns = ctl.namespace().to_owned();
        let want = cert3.fingerprint().to_string();
        async move {
            let got = published_fingerprint(&admin, &ns).await?;
            ensure!(got == want, "ConfigMap has {got}");
            Ok(())
        }
    })
    .await?;
    cms.delete("sealed-secrets-cert", &Default::default())
        .await?;
    eventually_ok("the deleted certificate ConfigMap is restored", || {
        let admin = admin.clone();
        let ns = ctl.namespace().to_owned();
        let want = cert3.fingerprint().to_string();
        async move {
            let got = published_fingerprint(&admin, &ns).await?;
            ensure!(got == want, "ConfigMap has {got}");
            Ok(())
        }
    })
    .await?;
    // The same request is honoured once, also after a restart.
    ctl.restart().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        ctl.key_secrets().await?.len() == 3,
        "a handled request must not renew again"
    );

    // Old SealedSecrets still open after the restart: delete both Secrets, both come back.
    for name in ["old", "new"] {
        secrets.delete(name, &DeleteParams::default()).await?;
    }
    for name in ["old", "new"] {
        eventually_secret(&secrets, name, |s| check_data(s, &[("foo", "bar")])).await?;
    }
    // Never deletes a key.
    ensure!(ctl.key_secrets().await?.len() == 3);
    ctl.finish().await?;
    apps.cleanup().await
}

#[tokio::test]
async fn periodic_renewal_follows_the_period() -> Result<()> {
    let mut ctl = Controller::builder()
        .prefix("period")
        .flag("--key-renew-period", "4s")
        .start()
        .await?;
    // The first key at start-up, then one every 4 s.
    let keys = wait_for_keys(&ctl, 3).await?;
    let times: Vec<_> = keys
        .iter()
        .filter_map(|k| k.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .collect();
    let gap = times[1].duration_since(times[0]).as_secs_f64();
    ensure!(
        (3.0..=7.0).contains(&gap),
        "renewal period 4 s, keys {gap:.1} s apart"
    );
    // 0 turns it off.
    ctl.stop().await?;
    let ctl2 = Controller::builder()
        .prefix("period-off")
        .flag("--key-renew-period", "0")
        .start()
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(ctl2.key_secrets().await?.len() == 1, "period 0: no renewal");
    ctl2.finish().await?;
    ctl.finish().await
}

#[tokio::test]
async fn a_key_secret_added_at_run_time_is_used_without_a_restart() -> Result<()> {
    let ctl = Controller::builder().prefix("addkey").start().await?;
    let admin = ctl.admin_client()?.clone();
    let pid = ctl.pid();

    // An operator restores a key from a backup (or from another cluster). Certificate times
    // have one-second resolution: make it strictly newer than the controller's first key.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let profile = kseal_crypto::keygen::KeyProfile {
        bits: 2048,
        ..Default::default()
    };
    let key = kseal_crypto::keygen::generate(
        &mut rand::rngs::OsRng,
        &profile,
        time::OffsetDateTime::now_utc(),
    )?;
    let cert = key.certificate().context("no certificate")?.clone();
    let secret = kseal_sealing::key_secret::key_secret(
        &key,
        kseal_sealing::key_secret::KeySecretName::Exact("restored-key"),
        None,
        &BTreeMap::new(),
        &BTreeMap::new(),
    )?;
    Api::<Secret>::namespaced(admin.clone(), ctl.namespace())
        .create(&PostParams::default(), &secret)
        .await?;

    // It is the newest key: served at once, and it opens what was sealed for it.
    newest_is_served(&ctl, &cert).await?;
    let ss = seal(&cert, base_secret(ctl.namespace()))?;
    let ss_api: Api<SealedSecret> = Api::namespaced(admin.clone(), ctl.namespace());
    ss_api.create(&PostParams::default(), &ss).await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ctl.namespace());
    eventually_secret(&secrets, "testsecret", |s| check_data(s, &[("foo", "bar")])).await?;
    ensure!(ctl.pid() == pid, "no restart");
    ctl.finish().await
}

#[derive(serde::Deserialize)]
struct Vector {
    id: String,
    scope: String,
    namespace: String,
    name: String,
    plaintext_b64: String,
    ciphertext_b64: String,
}

async fn ensure_namespace(api: &Api<Namespace>, name: &str) -> Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn bitnamis_go_test_key_opens_sealed_secrets_from_the_go_vectors() -> Result<()> {
    // The key Secret exists before the controller starts, as after `kubectl apply` of a
    // Bitnami backup: no key is generated.
    let home = TestNamespace::new("govec").await?;
    let key_secret = Secret {
        metadata: ObjectMeta {
            name: Some("sealed-secrets-keygo".into()),
            labels: Some(BTreeMap::from([(
                "sealedsecrets.bitnami.com/sealed-secrets-key".into(),
                "active".into(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.key".into(), ByteString(GO_KEY.to_vec())),
            ("tls.crt".into(), ByteString(GO_CERT.to_vec())),
        ])),
        ..Default::default()
    };
    home.api::<Secret>()
        .create(&PostParams::default(), &key_secret)
        .await?;

    let vectors: Vec<Vector> = serde_json::from_str(GO_VECTORS)?;
    let admin = Cluster::shared()?.admin_client().await?;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    // The vectors' namespaces; cluster-wide ones go to the test namespace.
    let mut targets: Vec<(String, String, &Vector)> = Vec::new();
    for v in &vectors {
        if v.plaintext_b64.is_empty() {
            continue; // an empty value: covered by the unit tests
        }
        let (ns, name) = match v.scope.as_str() {
            "strict" => (v.namespace.clone(), v.name.clone()),
            "namespace-wide" => (v.namespace.clone(), format!("kseal-{}", v.id)),
            _ => (home.name().to_owned(), format!("kseal-{}", v.id)),
        };
        targets.push((ns, name, v));
    }
    for (ns, _, _) in &targets {
        ensure_namespace(&namespaces, ns).await?;
    }
    let mut watched: Vec<String> = targets.iter().map(|t| t.0.clone()).collect();
    watched.sort();
    watched.dedup();
    let mut builder = Controller::builder().in_namespace(home);
    for ns in &watched {
        builder = builder.watch(ns);
    }
    let ctl = builder.start().await?;
    ensure!(
        ctl.key_secrets().await?.len() == 1,
        "the Go key is used, none generated"
    );
    let go_cert = Certificate::from_pem(GO_CERT)?;
    newest_is_served(&ctl, &go_cert).await?;

    for (ns, name, v) in &targets {
        let mut annotations = BTreeMap::new();
        match v.scope.as_str() {
            "namespace-wide" => {
                annotations.insert(
                    "sealedsecrets.bitnami.com/namespace-wide".to_string(),
                    "true".to_string(),
                );
            }
            "cluster-wide" => {
                annotations.insert(
                    "sealedsecrets.bitnami.com/cluster-wide".to_string(),
                    "true".to_string(),
                );
            }
            _ => {}
        }
        let ss = SealedSecret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                annotations: Some(annotations).filter(|a| !a.is_empty()),
                ..Default::default()
            },
            spec: SealedSecretSpec {
                encrypted_data: BTreeMap::from([("value".to_string(), v.ciphertext_b64.clone())]),
                ..Default::default()
            },
            status: None,
        };
        Api::<SealedSecret>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &ss)
            .await
            .with_context(|| format!("creating {ns}/{name}"))?;
    }
    for (ns, name, v) in &targets {
        let want = STANDARD.decode(&v.plaintext_b64)?;
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
        eventually_secret(&secrets, name, |s| {
            let got = s
                .data
                .as_ref()
                .and_then(|d| d.get("value"))
                .map(|b| b.0.clone());
            ensure!(got.as_deref() == Some(&want[..]), "{} value differs", v.id);
            Ok(())
        })
        .await
        .with_context(|| format!("vector {}", v.id))?;
    }
    // Clean up what lives outside the test namespace.
    for (ns, name, _) in &targets {
        if ns != ctl.namespace() {
            let _ = Api::<SealedSecret>::namespaced(admin.clone(), ns)
                .delete(name, &DeleteParams::default())
                .await;
            let _ = Api::<Secret>::namespaced(admin.clone(), ns)
                .delete(name, &DeleteParams::default())
                .await;
        }
    }
    ctl.finish().await
}

/// A second replica of a harness controller: same identity and flags, its own ports and log.
struct Replica {
    child: Child,
    http: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(ctl: &Controller, dir: &Path) -> Result<Replica> {
        let port = || -> Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let http: std::net::SocketAddr = ([127, 0, 0, 1], port()?).into();
        let metrics: std::net::SocketAddr = ([127, 0, 0, 1], port()?).into();
        let log = dir.join("replica.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(kseal_e2e::controller::controller_binary()?)
            .args(ctl.args())
            .arg(format!("--listen-addr={http}"))
            .arg(format!("--listen-metrics-addr={metrics}"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()?;
        Ok(Replica { child, http, log })
    }

    fn identity_prefix(&self) -> String {
        // The replica's log names its Lease identity.
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("sealed-secrets-controller")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

#[tokio::test]
async fn two_replicas_the_leader_killed_the_other_takes_over() -> Result<()> {
    const LEASE: Duration = Duration::from_secs(4);
    let apps = TestNamespace::new("ha-apps").await?;
    let mut first = Controller::builder()
        .prefix("ha")
        .watch(apps.name())
        .flag("--lease-duration", "4s")
        .start()
        .await?;
    let admin = first.admin_client()?.clone();
    let leases: Api<Lease> = Api::namespaced(admin.clone(), first.namespace());
    let dir = tempfile::tempdir()?;
    let mut second = Replica::start(&first, dir.path())?;

    // Both replicas serve the certificate and verify; only one leads.
    let cert = first.sealing_certificate().await?;
    eventually_ok("the second replica serves the certificate", || {
        let addr = second.http;
        let want = cert.fingerprint().to_string();
        async move {
            let r = http_get(addr, "/v1/cert.pem").await?;
            ensure!(r.status == 200, "status {}", r.status);
            ensure!(
                Certificate::from_pem(r.body.as_bytes())?
                    .fingerprint()
                    .to_string()
                    == want
            );
            Ok(())
        }
    })
    .await?;
    let leader = holder(&leases).await?.context("no leader")?;
    let first_leads = first.logs().contains(&leader);
    let second_leads = second.identity_prefix().contains(&leader);
    ensure!(
        first_leads != second_leads,
        "exactly one replica names the Lease holder {leader} in its log"
    );
    ensure!(
        !second.identity_prefix().contains("New key written") || second_leads,
        "a follower must not generate keys"
    );

    // Kill the leader (no Lease release: a crash).
    let killed_at = Instant::now();
    if first_leads {
        first.kill()?;
    } else {
        second.child.kill()?;
        second.child.wait()?;
    }
    let ss_api: Api<SealedSecret> = apps.api();
    let secrets: Api<Secret> = apps.api();
    ss_api
        .create(
            &PostParams::default(),
            &seal(&cert, base_secret(apps.name()))?,
        )
        .await?;
    let deadline = LEASE + Duration::from_secs(6);
    loop {
        if secrets.get_opt("testsecret").await?.is_some() {
            break;
        }
        if killed_at.elapsed() > deadline {
            bail!(
                "no Secret {:?} after the leader was killed (lease {LEASE:?}); replica log:\n{}",
                killed_at.elapsed(),
                second.identity_prefix()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed_at.elapsed();
    let new_leader = holder(&leases).await?.context("no leader")?;
    ensure!(new_leader != leader, "the Lease moved to the survivor");
    eprintln!(
        "failover: the survivor reconciled {took:?} after the leader was killed (lease {LEASE:?})"
    );
    ensure!(
        took <= LEASE + Duration::from_secs(4),
        "takeover took {took:?}, lease {LEASE:?}"
    );
    wait_synced(&ss_api, "testsecret", "True").await?;

    if first_leads {
        // Bring the first replica back: it follows, the survivor keeps leading.
        first.start_again().await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(holder(&leases).await? == Some(new_leader));
    }
    drop(second);
    first.finish().await?;
    apps.cleanup().await
}
