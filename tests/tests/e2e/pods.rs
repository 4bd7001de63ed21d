//! The controller as real Pods, installed the way a user installs it: the image built by
//! `controller/image/build.sh` (from this run's controller binary), imported into the node's
//! containerd, then `kseal install --apply --wait --image …` on a control plane of its own with
//! a node (`cluster.sh up --node`: kube-scheduler, containerd + runc, kubelet, kube-proxy).
//! Its own, because the install watches every namespace from kube-system under the default names,
//! as in a user's cluster; one node per machine, so this is skipped when the shared control
//! plane holds the node (`KSEAL_E2E_NODE=1`), and without root.
//!
//! Checked: two replicas Ready (probes, uid 1001, read-only root filesystem and the `/tmp`
//! emptyDir work, or they would not be), one leader, exactly one key; `kseal cert` and
//! `kubeseal --fetch-cert` (through the API server's service proxy to a Pod) give that key's
//! certificate; a SealedSecret sealed by `kseal seal` becomes its Secret; the leader Pod deleted,
//! the other replica leads within the lease and the Deployment replaces the Pod, still one key;
//! `kubectl logs` (pods/log) is JSON without the plaintext; metrics are scraped from a Pod.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_e2e::controller::{controller_binary, KEY_LABEL_SELECTOR};
use kseal_e2e::kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kseal_e2e::kube::{Api, Client};
use kseal_e2e::{eventually, OwnCluster};

const NS: &str = "kube-system";
const NAME: &str = "sealed-secrets-controller";
const SELECTOR: &str = "name=sealed-secrets-controller";
const CANARY: &str = "kseal-pods-canary-7c1e";
const WAIT: Duration = Duration::from_secs(180);

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `program args…` with `KUBECONFIG`; its stdout, or an error with its stderr.
fn run(program: &Path, args: &[&str], kubeconfig: &Path) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    ensure!(
        out.status.success(),
        "{} {args:?}: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn ready_pods(pods: &Api<Pod>) -> Result<Vec<String>> {
    let list = pods.list(&ListParams::default().labels(SELECTOR)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect())
}

async fn key_count(client: &Client) -> Result<usize> {
    Ok(Api::<Secret>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(KEY_LABEL_SELECTOR))
        .await?
        .items
        .len())
}

/// The Pod that holds the Lease (the holder identity is `<pod name>_<random>`).
async fn leader(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt(NAME)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .and_then(|h| h.rsplit_once('_').map(|(pod, _)| pod.to_owned())))
}

#[tokio::test]
async fn the_controller_runs_as_pods_installed_by_kseal_install() -> Result<()> {
    let shared = kseal_e2e::Cluster::shared()?;
    let Some(state) = shared.local_state()? else {
        eprintln!("skipped: an external cluster (the test starts a node of its own)");
        return Ok(());
    };
    if state.vars.get("NODE_RUNNING").map(String::as_str) == Some("1") {
        eprintln!("skipped: the shared control plane holds this machine's node");
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        eprintln!("skipped: a node needs root (containerd, runc, iptables)");
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    let started = Instant::now();
    let cluster = OwnCluster::up_with_node(&scratch.path().join("cluster"))?;
    let node_up = started.elapsed();
    let kc = cluster.kubeconfig_path().to_path_buf();
    let client = cluster.client().await?;

    // The image, from this run's controller binary, imported into the node.
    let archive = scratch.path().join("kseal-controller.oci.tar");
    let t = Instant::now();
    let out = Command::new("bash")
        .arg(repo().join("controller/image/build.sh"))
        .arg("--binary")
        .arg(controller_binary()?)
        .arg("-o")
        .arg(&archive)
        .args(["-t", "kseal.local/kseal-controller:e2e"])
        .output()?;
    ensure!(
        out.status.success(),
        "build.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = cluster.script("image", &[archive.as_os_str()])?;
    let image_built = t.elapsed();

    // kseal install --apply --wait.
    let kseal = kseal_e2e::bins::kseal_binary()?;
    let t = Instant::now();
    run(
        &kseal,
        &[
            "install",
            "--apply",
            "--wait",
            "--timeout",
            "240s",
            "--image",
            &image,
        ],
        &kc,
    )?;
    let install_to_ready = t.elapsed();
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let leases = Api::<Lease>::namespaced(client.clone(), NS);
    let ready = ready_pods(&pods).await?;
    ensure!(ready.len() == 2, "ready controller Pods: {ready:?}");
    let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
        .get(NAME)
        .await?;
    let pod_spec = deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("Deployment has no Pod spec")?;
    let container = &pod_spec.containers[0];
    let sc = container.security_context.clone().unwrap_or_default();
    ensure!(sc.read_only_root_filesystem == Some(true));
    let uid = pod_spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or(sc.run_as_user);
    ensure!(uid == Some(1001), "runAsUser {uid:?}");

    // One leader among the Pods, exactly one key.
    let first_leader = eventually("a leader among the Pods", WAIT, || async {
        Ok(leader(&leases).await?.filter(|h| ready.contains(h)))
    })
    .await?;
    eventually("the first key", WAIT, || async {
        Ok((key_count(&client).await? >= 1).then_some(()))
    })
    .await?;

    // kseal cert and kubeseal --fetch-cert: the same certificate, the key's.
    let kseal_pem = eventually("kseal cert", WAIT, || async {
        Ok(run(&kseal, &["cert", "--pem"], &kc).ok())
    })
    .await?;
    let kubeseal = scratch.path().join("kubeseal");
    std::os::unix::fs::symlink(&kseal, &kubeseal)?;
    let fetched = run(&kubeseal, &["--fetch-cert"], &kc)?;
    let cert = Certificate::from_pem(kseal_pem.as_bytes())?;
    ensure!(
        Certificate::from_pem(fetched.as_bytes())? == cert,
        "kubeseal --fetch-cert (through the service proxy to a Pod) gave another certificate"
    );

    // A SealedSecret sealed by kseal seal becomes its Secret.
    let apps = "apps";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": apps}}))?,
        )
        .await?;
    let cert_file = scratch.path().join("cert.pem");
    std::fs::write(&cert_file, &kseal_pem)?;
    let secret_file = scratch.path().join("db.yaml");
    std::fs::write(
        &secret_file,
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {apps}}}\nstringData: {{password: {CANARY}}}\n"),
    )?;
    let sealed = run(
        &kseal,
        &[
            "seal",
            "--cert",
            cert_file.to_str().context("path")?,
            secret_file.to_str().context("path")?,
        ],
        &kc,
    )?;
    let ss: SealedSecret = serde_json::from_str(&sealed)?;
    Api::<SealedSecret>::namespaced(client.clone(), apps)
        .create(&PostParams::default(), &ss)
        .await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), apps);
    let t = Instant::now();
    let secret = eventually("the Secret db", WAIT, || async {
        Ok(secrets.get_opt("db").await?)
    })
    .await?;
    let unsealed_after = t.elapsed();
    let value = secret
        .data
        .and_then(|d| d.get("password").cloned())
        .context("Secret db has no password")?;
    ensure!(
        value.0 == CANARY.as_bytes(),
        "the Secret holds another value"
    );

    // Metrics, scraped from a Pod through the API server's pod proxy.
    let pod = &ready[0];
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{NS}/pods/{pod}:8081/proxy/metrics"
    ))
    .body(Vec::new())?;
    let metrics = client.request_text(req).await?;
    ensure!(
        metrics.contains("sealed_secrets_controller_build_info"),
        "no kseal metrics from {pod}:\n{metrics}"
    );

    // The leader Pod deleted: the other replica leads, the Deployment replaces the Pod.
    let t = Instant::now();
    pods.delete(&first_leader, &DeleteParams::default()).await?;
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let second_leader = eventually("another leader", WAIT, || async {
        let holder = leader(&leases).await?;
        let mut seen = seen.lock().unwrap();
        let h = format!("{holder:?}");
        if seen.last() != Some(&h) {
            seen.push(h);
        }
        Ok(holder.filter(|h| h != &first_leader))
    })
    .await
    .with_context(|| {
        format!(
            "after deleting {first_leader} (replicas {ready:?}); Lease holders seen: {:?}",
            seen.lock().unwrap()
        )
    })?;
    let other_replica_took_over = ready.contains(&second_leader);
    let failover = t.elapsed();
    eventually("two ready Pods again", WAIT, || async {
        let now = ready_pods(&pods).await?;
        Ok((now.len() == 2 && !now.contains(&first_leader)).then_some(()))
    })
    .await?;
    let replaced = t.elapsed();
    ensure!(
        key_count(&client).await? == 1,
        "more than one key after the first key and a leader change"
    );

    // Logs: JSON lines, never the plaintext.
    let mut lines = 0;
    for pod in ready_pods(&pods).await?.iter().chain([&second_leader]) {
        let log = pods.logs(pod, &LogParams::default()).await?;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            serde_json::from_str::<serde_json::Value>(line)
                .with_context(|| format!("{pod} logged a line that is not JSON: {line}"))?;
            lines += 1;
        }
        ensure!(!log.contains(CANARY), "{pod}'s log holds the plaintext");
    }
    ensure!(lines > 0, "the controller Pods logged nothing");

    // The Pods' memory, as the kubelet reports it.
    let req = http::Request::get("/api/v1/nodes/kseal-node/proxy/stats/summary").body(Vec::new())?;
    let memory: Vec<String> = match client.request::<serde_json::Value>(req).await {
        Ok(summary) => summary["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["podRef"]["namespace"] == NS)
            .map(|p| {
                let containers: f64 = p["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["memory"]["workingSetBytes"].as_f64())
                    .sum();
                let pod = p["memory"]["workingSetBytes"].as_f64().unwrap_or(0.0);
                format!(
                    "{} {:.1} MiB",
                    p["podRef"]["name"].as_str().unwrap_or("?"),
                    pod.max(containers) / 1048576.0
                )
            })
            .collect(),
        Err(e) => vec![format!("no stats summary: {e}")],
    };
    eprintln!(
        "pods: node up {node_up:.1?}; image built and imported {image_built:.1?}; \
         kseal install --apply --wait to Ready {install_to_ready:.1?}; Secret after {unsealed_after:.1?}; \
         leader {first_leader} deleted → {second_leader} (the other replica: {other_replica_took_over}) leads after {failover:.1?}, two Pods ready again after {replaced:.1?}; \
         memory (working set): {memory:?}"
    );
    drop(cluster);
    Ok(())
}
