//! Faults survived with nothing lost (docs/testing.md, "Faults"). Each test runs a workload of
//! 1,000 SealedSecrets created, 300 edits and 200 deletions ([`kseal_e2e::faults`]) from four
//! writers, injects one kind of fault while it runs, and then checks: every Secret converges to
//! its SealedSecret's latest value within a bound, none lost or wrong, deleted ones gone, every
//! SealedSecret Synced at its latest generation, the unmanaged Secrets untouched, exactly one
//! key, no canary value in any log, and how many RSA decryptions recovery cost
//! (`FAULT-REPORT` lines; `KSEAL_FAULT_REPORT=FILE` collects them).
//!
//! Faults of the API server and etcd run on a control plane of the test's own
//! (`cluster.sh restart`); the others on the shared one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use kseal_crypto::Certificate;
use kseal_e2e::controller::controller_binary;
use kseal_e2e::faults::{
    converge, key_count, metric, Expected, Report, Unmanaged, Workload, WorkloadSpec, CANARY,
};
use kseal_e2e::kube::Client;
use kseal_e2e::{Controller, ControllerBuilder, NetNs, OwnCluster, TestNamespace};
use rand::{Rng as _, SeedableRng as _};

/// From the workload's last write until everything must be right (garbage collection of the
/// deleted SealedSecrets' Secrets included).
const CONVERGE_BOUND: Duration = Duration::from_secs(180);
/// SIGTERM to exit, at most (docs/controller.md, "Shutdown").
const EXIT_BOUND: Duration = Duration::from_secs(6);
const DECRYPTIONS: &str = "sealed_secrets_controller_rsa_decryptions_total";

/// One test's controller, workload target and bystanders.
struct Setup {
    ctl: Controller,
    client: Client,
    namespace: String,
    cert: Certificate,
    unmanaged: Unmanaged,
}

async fn setup(builder: ControllerBuilder) -> Result<Setup> {
    let ctl = builder.start().await?;
    let client = ctl.admin_client()?.clone();
    let namespace = ctl.namespace().to_owned();
    let cert = ctl.sealing_certificate().await?;
    let unmanaged = Unmanaged::create(&client, &namespace, &cert, 5).await?;
    Ok(Setup {
        ctl,
        client,
        namespace,
        cert,
        unmanaged,
    })
}

impl Setup {
    fn workload(&self, seed: u64) -> Workload {
        Workload::start(
            self.client.clone(),
            &self.namespace,
            self.cert.clone(),
            WorkloadSpec {
                seed,
                ..Default::default()
            },
        )
    }

    async fn decryptions(&self) -> f64 {
        self.ctl
            .metrics()
            .await
            .map(|m| metric(&m, DECRYPTIONS))
            .unwrap_or(0.0)
    }

    /// Converges, checks everything and publishes the report. `logs` are other processes'
    /// logs to search for the canary too; `earlier` decryptions of processes already gone.
    async fn check(
        &self,
        fault: &str,
        expected: &Expected,
        earlier: f64,
        logs: &[String],
    ) -> Result<Report> {
        self.check_keys(fault, expected, earlier, logs, 1).await
    }

    async fn check_keys(
        &self,
        fault: &str,
        expected: &Expected,
        earlier: f64,
        logs: &[String],
        want_keys: usize,
    ) -> Result<Report> {
        let outcome = converge(&self.client, &self.namespace, expected, CONVERGE_BOUND).await?;
        let keys = key_count(&self.client, &self.namespace).await?;
        let report = Report {
            fault: fault.to_owned(),
            objects: outcome.objects,
            operations: expected.operations,
            converge_seconds: outcome.converged_after.as_secs_f64(),
            lost: outcome.lost,
            wrong: outcome.wrong,
            unmanaged_changed: self.unmanaged.changed().await?,
            duplicate_keys: keys.saturating_sub(want_keys),
            rsa_decryptions: earlier + self.decryptions().await,
            needed_decryptions: expected.sealed_writes,
        };
        report.publish();
        ensure!(
            outcome.ok(),
            "{fault}: not converged after {CONVERGE_BOUND:?}: {outcome:?}"
        );
        ensure!(
            fault == "chaos" || expected.objects() >= 1000,
            "{fault}: the workload touched only {} objects",
            expected.objects()
        );
        ensure!(
            report.unmanaged_changed == 0,
            "{fault}: {} unmanaged Secrets changed",
            report.unmanaged_changed
        );
        ensure!(
            keys == want_keys,
            "{fault}: {keys} key Secrets, want exactly {want_keys}"
        );
        if logs.is_empty() {
            // The only replica reconciles: its metrics must say what the statuses say.
            let text = self.ctl.metrics().await?;
            let untrue = kseal_e2e::faults::untrue_condition_metrics(&text, expected);
            ensure!(
                untrue == (0, 0),
                "{fault}: condition_info is not 1 for {} live SealedSecrets and remains for {} deleted ones",
                untrue.0,
                untrue.1
            );
        }
        for log in logs.iter().chain(std::iter::once(&self.ctl.logs())) {
            ensure!(!log.contains(CANARY), "{fault}: a plaintext value in a log");
        }
        Ok(report)
    }
}

impl Setup {
    /// The usual end of a test: the end checks, the controller still the process that started
    /// (a fault must not crash it), and a clean stop.
    async fn end(mut self, fault: &str, expected: &Expected) -> Result<()> {
        self.check(fault, expected, 0.0, &[]).await?;
        alive(&mut self.ctl, fault)?;
        self.ctl.finish().await
    }
}

fn alive(ctl: &mut Controller, fault: &str) -> Result<()> {
    ensure!(
        !ctl.has_exited(),
        "{fault}: the controller exited: {}",
        ctl.log_tail(40)
    );
    Ok(())
}

/// A control plane of the test's own, and a controller on it.
async fn own_setup(dir: &Path, apiserver_flags: &str) -> Result<(OwnCluster, Setup)> {
    own_setup_with(dir, apiserver_flags, Controller::builder()).await
}

async fn own_setup_with(
    dir: &Path,
    apiserver_flags: &str,
    builder: ControllerBuilder,
) -> Result<(OwnCluster, Setup)> {
    let own = OwnCluster::up_with_apiserver_flags(dir, apiserver_flags)?;
    let ns = TestNamespace::create_on(&own.cluster(), "faults").await?;
    let setup = setup(builder.in_namespace(ns)).await?;
    Ok((own, setup))
}

async fn restart_in_background(own: &OwnCluster, component: &str, down: Duration) -> Result<f64> {
    let dir = own_dir(own);
    let component = component.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/cluster.sh"))
            .args([
                "restart",
                &component,
                "--down-for",
                &format!("{}", down.as_secs_f64()),
            ])
            .env("KSEAL_CLUSTER_DIR", dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("cluster.sh restart")
            .and_then(|o| {
                ensure!(o.status.success(), "cluster.sh restart {component} failed");
                Ok(String::from_utf8_lossy(&o.stdout).trim().parse::<f64>()?)
            })
    })
    .await?
}

fn own_dir(own: &OwnCluster) -> std::path::PathBuf {
    own.kubeconfig_path()
        .parent()
        .expect("the kubeconfig is in the state directory")
        .to_path_buf()
}

async fn control_plane_component_restarted(component: &str, fault: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (own, s) = own_setup(dir.path(), "").await?;
    let work = s.workload(11);
    work.wait_progress(0.3).await;
    let down = restart_in_background(&own, component, Duration::from_secs(3)).await?;
    eprintln!("{fault}: {component} down for {down}s");
    let expected = work.finish().await?;
    s.end(fault, &expected).await?;
    drop(own);
    Ok(())
}

// Known open bug (docs/controller.md, "Faults and shutdown"): in about one run in two on this
// machine, some SealedSecrets created right after the API server came back stay without their
// Secret for minutes. Run it with `tests/run-e2e.sh --run-ignored all faults::api_server`.
#[tokio::test]
#[ignore = "known open bug: objects created right after an API server restart can stay unsynced for minutes (about one run in two)"]
async fn api_server_killed_and_restarted_under_load() -> Result<()> {
    control_plane_component_restarted("kube-apiserver", "api-server-restart").await
}

#[tokio::test]
async fn etcd_killed_and_restarted_under_load() -> Result<()> {
    control_plane_component_restarted("etcd", "etcd-restart").await
}

/// A watch that cannot resume: the controller is frozen while SealedSecrets change, etcd is
/// compacted past what it saw and the API server restarted (which drops the watch), so its
/// watch resumes from a compacted resourceVersion: 410 Gone, and it lists again.
#[tokio::test]
async fn watch_expired_410_and_relisted() -> Result<()> {
    let fault = "watch-expiry-410";
    let dir = tempfile::tempdir()?;
    // Watches served from etcd, not the API server's cache, so compaction expires them.
    let (own, mut s) = own_setup_with(
        dir.path(),
        "--watch-cache=false",
        Controller::builder().flag("--log-level", "DEBUG"),
    )
    .await?;
    let work = s.workload(12);
    work.wait_progress(0.3).await;
    s.ctl.signal("STOP")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let revision = {
        let dir = own_dir(&own);
        tokio::task::spawn_blocking(move || {
            let o = Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/cluster.sh"))
                .arg("compact")
                .env("KSEAL_CLUSTER_DIR", dir)
                .output()?;
            ensure!(o.status.success(), "cluster.sh compact failed");
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .await??
    };
    restart_in_background(&own, "kube-apiserver", Duration::ZERO).await?;
    s.ctl.signal("CONT")?;
    eprintln!("{fault}: compacted at revision {revision}");
    let expected = work.finish().await?;
    s.check(fault, &expected, 0.0, &[]).await?;
    // The watches resumed from a compacted resourceVersion (410 Gone) and listed again; the
    // SealedSecret watch may instead have started afresh when the frozen leader stepped down.
    let logs = s.ctl.logs();
    ensure!(
        logs.contains("too old") || logs.contains("listing SealedSecrets again"),
        "{fault}: no watch expired; {}",
        s.ctl.log_tail(40)
    );
    alive(&mut s.ctl, fault)?;
    s.ctl.finish().await?;
    drop(own);
    Ok(())
}

/// The controller aborts (as SIGKILL would) right after its 300th Secret write, before that
/// SealedSecret's status, in every life, and is started again each time (a crash-looping Pod).
#[tokio::test]
async fn controller_killed_between_secret_write_and_status_write() -> Result<()> {
    let fault = "sigkill-after-secret-write";
    // A crashed leader holds its Lease until it expires: a short one, so that the lives of a
    // crash-looping controller are not mostly waiting.
    let mut s = setup(
        Controller::builder()
            .env("KSEAL_FAILPOINTS", "after-secret-write=300")
            .flag("--lease-duration", "3s"),
    )
    .await?;
    let work = s.workload(13);
    let mut earlier = 0.0;
    let mut last = 0.0;
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !work.is_done() {
        if s.ctl.has_exited() {
            crashes += 1;
            earlier += last;
            last = 0.0;
            s.ctl.start_again().await?;
        } else {
            last = s.decryptions().await.max(last);
        }
        ensure!(
            Instant::now() < deadline,
            "{fault}: the workload did not end"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected = work.finish().await?;
    // Converging takes more writes, so more crashes: keep restarting until it is all right.
    let until = Instant::now() + CONVERGE_BOUND;
    loop {
        if s.ctl.has_exited() {
            crashes += 1;
            earlier += last;
            last = 0.0;
            s.ctl.start_again().await?;
        } else {
            last = s.decryptions().await.max(last);
        }
        let o = converge(&s.client, &s.namespace, &expected, Duration::ZERO).await?;
        if o.ok() || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(
        crashes >= 3,
        "{fault}: only {crashes} crashes; the failpoint did not fire"
    );
    ensure!(
        s.ctl
            .logs()
            .contains("failpoint after-secret-write reached"),
        "{fault}: no failpoint in the log"
    );
    let report = s.check(fault, &expected, earlier, &[]).await?;
    eprintln!("{fault}: {crashes} crashes; {report:?}");
    s.ctl.finish().await
}

/// Key generation killed: the first controller aborts right after it stored the first key
/// Secret (before registering or publishing it); then three replicas start and die at random
/// for 20 s. Exactly one key in the end, and the controller serves it.
#[tokio::test]
async fn killed_during_key_generation_and_replicas_racing_for_the_first_key() -> Result<()> {
    let fault = "sigkill-during-key-generation";
    let mut first = Controller::builder()
        .env("KSEAL_FAILPOINTS", "after-key-write=1")
        .flag("--lease-duration", "3s")
        .without_key_wait()
        .start()
        .await?;
    let client = first.admin_client()?.clone();
    let namespace = first.namespace().to_owned();
    let until = Instant::now() + Duration::from_secs(60);
    while !first.has_exited() {
        ensure!(
            Instant::now() < until,
            "{fault}: the failpoint did not fire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        key_count(&client, &namespace).await? == 1,
        "the aborted controller stored no key"
    );

    let dir = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut replicas: Vec<Option<Replica>> = vec![None, None, None];
    let until = Instant::now() + Duration::from_secs(20);
    let mut starts = 0;
    while Instant::now() < until {
        let i = rng.gen_range(0..replicas.len());
        match replicas[i].take() {
            Some(mut r) => r.kill(),
            None => {
                starts += 1;
                replicas[i] = Some(Replica::start(&first, dir.path(), starts)?);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1500))).await;
    }
    let mut logs = Vec::new();
    for r in replicas.iter_mut().flatten() {
        r.kill();
    }
    for r in replicas.into_iter().flatten() {
        logs.push(r.logs());
    }
    first.start_again().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let keys = key_count(&client, &namespace).await?;
    let report = Report {
        fault: fault.to_owned(),
        duplicate_keys: keys.saturating_sub(1),
        ..Default::default()
    };
    report.publish();
    ensure!(
        keys == 1,
        "{fault}: {keys} key Secrets after {starts} replica starts"
    );
    let cert = first.sealing_certificate().await?;
    ensure!(
        first.key_secrets().await?.len() == 1,
        "one key Secret, served as {:?}",
        cert.fingerprint()
    );
    first.finish().await
}

/// Two replicas; the leader is frozen (SIGSTOP) for three Lease durations while the workload
/// runs, the other takes over, and the frozen one is resumed: it must write nothing before it
/// notices it lost the Lease.
#[tokio::test]
async fn leader_frozen_past_its_lease_and_resumed() -> Result<()> {
    let fault = "leader-sigstop";
    let s = setup(
        Controller::builder()
            .flag("--lease-duration", "4s")
            .flag("--log-level", "DEBUG"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let other = Replica::start(&s.ctl, dir.path(), 1)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        s.ctl.logs().contains("leading: reconciling"),
        "the first replica is not the leader"
    );
    let work = s.workload(14);
    work.wait_progress(0.3).await;
    s.ctl.signal("STOP")?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    ensure!(
        other.logs().contains("leading: reconciling"),
        "{fault}: the other replica did not take over"
    );
    let resumed_at = s.ctl.logs().len();
    s.ctl.signal("CONT")?;
    let expected = work.finish().await?;
    // Converged first, so that the other replica's count is complete.
    converge(&s.client, &s.namespace, &expected, CONVERGE_BOUND).await?;
    let report = s
        .check(fault, &expected, other.decryptions().await, &[other.logs()])
        .await?;
    let after = s.ctl.logs()[resumed_at..].to_owned();
    ensure!(
        after.contains("lost the leadership"),
        "{fault}: the resumed replica did not notice: {after}"
    );
    let lost_at = after.find("lost the leadership").expect("checked");
    ensure!(
        !after[..lost_at].contains("Secret written") && !after[..lost_at].contains("\"Unsealed\""),
        "{fault}: the resumed replica wrote before it noticed it lost the Lease"
    );
    eprintln!("{fault}: {report:?}");
    drop(other);
    s.ctl.finish().await
}

/// The controller in a network namespace, its link taken down for 15 s under load, then up.
#[tokio::test]
async fn controller_cut_off_from_the_api_server_and_back() -> Result<()> {
    let fault = "network-partition";
    let netns = NetNs::create()?;
    let admin = kseal_e2e::Cluster::shared()?.kubeconfig_path().to_owned();
    let (_forwarder, placement) = netns.forward_api_server(&admin)?;
    let s = setup(Controller::builder().in_netns(placement)).await?;
    let work = s.workload(15);
    work.wait_progress(0.3).await;
    netns.set_link(false)?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    netns.set_link(true)?;
    let expected = work.finish().await?;
    s.end(fault, &expected).await
}

/// A concurrent writer keeps editing the data of Secrets kseal manages (409 conflicts for the
/// controller's writes); once it stops, every Secret holds its SealedSecret's value again.
#[tokio::test]
async fn conflicting_writer_of_the_same_secrets() -> Result<()> {
    use kseal_e2e::k8s_openapi::api::core::v1::Secret;
    use kseal_e2e::kube::api::{Patch, PatchParams};
    use kseal_e2e::kube::Api;
    let fault = "conflicting-writer";
    let s = setup(Controller::builder()).await?;
    let work = s.workload(16);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut edits = 0;
    while !work.is_done() {
        let name = format!("w{}-{}", rng.gen_range(0..4), rng.gen_range(0..200));
        let patch = serde_json::json!({"data": {"password": "b3ZlcndyaXR0ZW4="}});
        if secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            edits += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = work.finish().await?;
    ensure!(edits > 50, "{fault}: only {edits} concurrent edits");
    s.end(fault, &expected).await
}

/// The key Secret and the certificate ConfigMap deleted while the workload runs: the
/// controller keeps unsealing with the key it holds (a deleted key stays registered until the
/// next restart, as in Bitnami: deleting it and restarting is how a key is retired), writes
/// the certificate again, and makes no new key.
#[tokio::test]
async fn key_secret_and_certificate_configmap_deleted_at_run_time() -> Result<()> {
    use kseal_e2e::k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kseal_e2e::kube::api::DeleteParams;
    use kseal_e2e::kube::Api;
    let fault = "key-and-configmap-deleted";
    let mut s = setup(Controller::builder()).await?;
    let key_name = s.ctl.key_secrets().await?[0]
        .metadata
        .name
        .clone()
        .context("key Secret name")?;
    let work = s.workload(17);
    work.wait_progress(0.3).await;
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.namespace);
    secrets.delete(&key_name, &DeleteParams::default()).await?;
    configmaps
        .delete("sealed-secrets-cert", &DeleteParams::default())
        .await?;
    let expected = work.finish().await?;
    s.check_keys(fault, &expected, 0.0, &[], 0).await?;
    let published =
        kseal_e2e::controller::eventually_ok("the certificate ConfigMap written again", || async {
            Ok(configmaps.get("sealed-secrets-cert").await?)
        })
        .await?;
    let pem = published
        .data
        .as_ref()
        .and_then(|d| d.get("cert.pem"))
        .context("cert.pem in the restored ConfigMap")?;
    ensure!(
        Certificate::from_pem(pem.as_bytes())?.fingerprint() == s.cert.fingerprint(),
        "{fault}: the restored ConfigMap holds another certificate"
    );
    alive(&mut s.ctl, fault)?;
    s.ctl.finish().await
}

/// SIGTERM at any moment ends the process within [`EXIT_BOUND`] with exit 0: during start-up
/// and first-key generation (4096-bit, the known hang right after the first age identity),
/// mid-reconcile under load, and while the API server is unreachable.
#[tokio::test]
async fn sigterm_at_any_moment_exits_within_seconds() -> Result<()> {
    let fault = "sigterm";
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let mut exits = Vec::new();
    // Start-up and first key, with the namespaces of the reported hang.
    for round in 0..4 {
        let other = TestNamespace::new("faults-other").await?;
        let mut ctl = Controller::builder()
            .watch(other.name())
            .flag("--key-size", "4096")
            .without_key_wait()
            .start()
            .await?;
        if round % 2 == 0 {
            // Right after the first age identity is written (the reported hang).
            let until = Instant::now() + Duration::from_secs(60);
            while !ctl.logs().contains("New age identity written") {
                ensure!(Instant::now() < until, "no age identity within 60 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
        }
        exits.push(timed_stop(&mut ctl, fault).await?);
        ctl.start_again().await?;
        ctl.finish().await?;
        other.cleanup().await?;
    }
    // Mid-reconcile.
    let mut s = setup(Controller::builder()).await?;
    let work = s.workload(20);
    work.wait_progress(0.2).await;
    exits.push(timed_stop(&mut s.ctl, fault).await?);
    s.ctl.start_again().await?;
    let expected = work.finish().await?;
    s.check("sigterm-mid-reconcile", &expected, 0.0, &[])
        .await?;
    s.ctl.finish().await?;
    // Cut off from the API server.
    let netns = NetNs::create()?;
    let admin = kseal_e2e::Cluster::shared()?.kubeconfig_path().to_owned();
    let (_forwarder, placement) = netns.forward_api_server(&admin)?;
    let mut ctl = Controller::builder().in_netns(placement).start().await?;
    netns.set_link(false)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    exits.push(timed_stop(&mut ctl, fault).await?);
    netns.set_link(true)?;
    ctl.start_again().await?;
    ctl.finish().await?;
    eprintln!("{fault}: exits after SIGTERM: {exits:?}");
    Ok(())
}

async fn timed_stop(ctl: &mut Controller, fault: &str) -> Result<Duration> {
    let start = Instant::now();
    let status = ctl.stop().await?;
    let took = start.elapsed();
    ensure!(
        status.success(),
        "{fault}: exit status {status} after SIGTERM"
    );
    ensure!(
        took <= EXIT_BOUND,
        "{fault}: {took:?} from SIGTERM to exit; {}",
        ctl.log_tail(30)
    );
    ensure!(
        !ctl.logs().contains("exiting anyway"),
        "{fault}: the shutdown deadline had to end the process; {}",
        ctl.log_tail(30)
    );
    Ok(took)
}

/// Another replica of a harness controller: same flags and identity, its own ports and log.
struct Replica {
    child: Option<Child>,
    log: std::path::PathBuf,
    metrics: std::net::SocketAddr,
}

impl Replica {
    fn start(ctl: &Controller, dir: &Path, n: usize) -> Result<Replica> {
        let port = || -> Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let log = dir.join(format!("replica-{n}.log"));
        let out = std::fs::File::create(&log)?;
        let metrics: std::net::SocketAddr = ([127, 0, 0, 1], port()?).into();
        let child = Command::new(controller_binary()?)
            .args(ctl.args())
            .arg(format!("--listen-addr=127.0.0.1:{}", port()?))
            .arg(format!("--listen-metrics-addr={metrics}"))
            .env_remove("KUBECONFIG")
            .env_remove("KSEAL_FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()?;
        Ok(Replica {
            child: Some(child),
            log,
            metrics,
        })
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn decryptions(&self) -> f64 {
        match kseal_e2e::controller::http_get(self.metrics, "/metrics").await {
            Ok(r) => metric(&r.body, DECRYPTIONS),
            Err(_) => 0.0,
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A seeded random schedule of the faults above for `KSEAL_CHAOS_MINUTES` (default 1: the
/// smoke run CI does; `tests/chaos.sh --minutes 30 --seed 7` for a long one) against a
/// workload that never stops, on a control plane of its own with two controller replicas;
/// then the same end checks. The report names every fault injected, in order.
#[tokio::test]
async fn chaos_schedule() -> Result<()> {
    let minutes: f64 = std::env::var("KSEAL_CHAOS_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1.0);
    let seed: u64 = std::env::var("KSEAL_CHAOS_SEED")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(42);
    let fault = "chaos";
    let dir = tempfile::tempdir()?;
    let (own, mut s) = own_setup_with(
        dir.path(),
        "",
        Controller::builder().flag("--lease-duration", "4s"),
    )
    .await?;
    let logs_dir = tempfile::tempdir()?;
    let mut other = Replica::start(&s.ctl, logs_dir.path(), 0)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut schedule = Vec::new();
    let mut earlier = 0.0;
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut expected = Expected::default();
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        let work = Workload::start(
            s.client.clone(),
            &s.namespace,
            s.cert.clone(),
            WorkloadSpec {
                creates: 300,
                updates: 90,
                deletes: 60,
                seed: seed.wrapping_add(round),
                prefix: format!("r{round}w"),
                ..Default::default()
            },
        );
        // Each round's objects have names of their own (`r<round>w…`).
        while !work.is_done() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(500..4000))).await;
            let pick = rng.gen_range(0..6);
            let what = match pick {
                0 => {
                    let down = Duration::from_millis(rng.gen_range(0..3000));
                    restart_in_background(&own, "kube-apiserver", down).await?;
                    format!("kube-apiserver down {:.1}s", down.as_secs_f64())
                }
                1 => {
                    let down = Duration::from_millis(rng.gen_range(0..3000));
                    restart_in_background(&own, "etcd", down).await?;
                    format!("etcd down {:.1}s", down.as_secs_f64())
                }
                2 => {
                    earlier += s.decryptions().await;
                    s.ctl.kill()?;
                    s.ctl.start_again().await?;
                    "controller SIGKILL".to_owned()
                }
                3 => {
                    earlier += s.decryptions().await;
                    timed_stop(&mut s.ctl, fault).await?;
                    s.ctl.start_again().await?;
                    "controller SIGTERM".to_owned()
                }
                4 => {
                    let frozen = Duration::from_millis(rng.gen_range(1000..9000));
                    s.ctl.signal("STOP")?;
                    tokio::time::sleep(frozen).await;
                    s.ctl.signal("CONT")?;
                    format!("controller SIGSTOP {:.1}s", frozen.as_secs_f64())
                }
                _ => {
                    earlier += other.decryptions().await;
                    other.kill();
                    other = Replica::start(&s.ctl, logs_dir.path(), schedule.len() + 1)?;
                    "replica SIGKILL".to_owned()
                }
            };
            schedule.push(what);
        }
        work.stop();
        let done = work.finish().await?;
        let round_expected = done;
        expected.operations += round_expected.operations;
        expected.sealed_writes += round_expected.sealed_writes;
        for (name, value) in round_expected.live {
            expected.deleted.remove(&name);
            expected.live.insert(name, value);
        }
        for name in round_expected.deleted {
            expected.live.remove(&name);
            expected.deleted.insert(name);
        }
    }
    eprintln!(
        "{fault}: seed {seed}, {} faults: {schedule:?}",
        schedule.len()
    );
    converge(&s.client, &s.namespace, &expected, CONVERGE_BOUND).await?;
    let extra = earlier + other.decryptions().await;
    let logs = vec![other.logs()];
    let converged = s.check_keys(fault, &expected, extra, &logs, 1).await;
    drop(other);
    converged?;
    s.ctl.finish().await?;
    drop(own);
    Ok(())
}
