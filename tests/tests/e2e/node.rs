//! The node of `cluster.sh up --node` (kube-scheduler, containerd, kubelet, kube-proxy): a Pod
//! is scheduled, runs from an image imported offline, reaches the API server through the
//! `kubernetes` Service, and its logs (and, with kubectl, exec) go apiserver → kubelet.
//!
//! Skipped (with a message) on an external cluster and on a local control plane started
//! without `--node` (the default of `tests/run-e2e.sh`; `KSEAL_E2E_NODE=1` adds it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use kseal_e2e::kube::api::{DeleteParams, LogParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{eventually, Cluster, ClusterKind, TestNamespace};

const POD_TIMEOUT: Duration = Duration::from_secs(120);

/// A Pod from the probe image (`cluster.sh probe-image`: a static C program) runs on the
/// node, gets an address of the pod subnet, connects to `$KUBERNETES_SERVICE_HOST:PORT` (the
/// ClusterIP, DNAT'ed by kube-proxy to the apiserver) and gets the apiserver's answer; its
/// log says so through `pods/log`.
#[tokio::test]
async fn pod_runs_and_reaches_the_apiserver_through_the_kubernetes_service() -> Result<()> {
    let cluster = Cluster::shared()?;
    let Some(state) = cluster.local_state()? else {
        eprintln!("skipped: external cluster (KSEAL_E2E_KUBECONFIG)");
        return Ok(());
    };
    if state.vars.get("NODE_RUNNING").map(String::as_str) != Some("1") {
        eprintln!(
            "skipped: the local control plane runs without a node \
             (start it with `cluster.sh up --node`, or KSEAL_E2E_NODE=1 tests/run-e2e.sh)"
        );
        return Ok(());
    }
    let ClusterKind::Local { script } = cluster.kind() else {
        unreachable!("local_state() is Some only for a local cluster")
    };
    let node_name = state.vars.get("NODE_NAME").context("NODE_NAME")?.clone();
    let pod_cidr = state.vars.get("POD_CIDR").context("POD_CIDR")?.clone();
    let pod_prefix = pod_cidr
        .strip_suffix(".0/24")
        .context("POD_CIDR is not a /24")?
        .to_owned();

    let admin = cluster.admin_client().await?;
    let node = Api::<Node>::all(admin.clone()).get(&node_name).await?;
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ensure!(ready, "node {node_name} is not Ready");

    let out = Command::new("bash")
        .arg(script)
        .arg("probe-image")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cluster.sh probe-image")?;
    ensure!(out.status.success(), "cluster.sh probe-image failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let image = stdout
        .lines()
        .last()
        .context("probe-image printed nothing")?
        .trim()
        .to_owned();

    let ns = TestNamespace::new("node").await?;
    let pods = ns.api::<Pod>();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe"},
        "spec": {
            "containers": [{
                "name": "probe",
                "image": image,
                // Imported into containerd by cluster.sh; there is no registry to pull from.
                "imagePullPolicy": "Never",
            }],
            "terminationGracePeriodSeconds": 1,
        }
    }))?;
    let started = Instant::now();
    // The ServiceAccount admission plugin refuses Pods until the namespace's `default`
    // ServiceAccount exists (the controller manager creates it a moment after the namespace).
    eventually("the probe Pod to be accepted", POD_TIMEOUT, || async {
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => Ok(Some(())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let running = eventually("the probe Pod to run", POD_TIMEOUT, || async {
        let p = pods.get("probe").await?;
        let status = p.status.clone().unwrap_or_default();
        match status.phase.as_deref() {
            Some("Running") => Ok(Some(p)),
            Some("Failed") | Some("Succeeded") => bail!("probe Pod ended: {status:?}"),
            _ => Ok(None),
        }
    })
    .await?;
    let run_after = started.elapsed();
    let spec = running.spec.clone().unwrap_or_default();
    ensure!(
        spec.node_name.as_deref() == Some(node_name.as_str()),
        "scheduled to {:?}",
        spec.node_name
    );
    let pod_ip = running
        .status
        .and_then(|s| s.pod_ip)
        .context("running Pod has no IP")?;
    ensure!(
        pod_ip.starts_with(&format!("{pod_prefix}.")),
        "Pod IP {pod_ip} is not in {pod_cidr}"
    );

    // pods/log: apiserver -> kubelet (client certificate) -> containerd's log file.
    let log = eventually("the probe's verdict in its log", POD_TIMEOUT, || async {
        let log = pods.logs("probe", &LogParams::default()).await?;
        if log.contains("kseal-probe: FAIL") {
            bail!("the probe failed: {log}");
        }
        Ok(log.contains("kseal-probe: OK").then_some(log))
    })
    .await?;
    eprintln!(
        "node: Pod {pod_ip} running {:.1}s after create, verdict after {:.1}s: {}",
        run_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        log.trim()
    );

    // exec needs a websocket/SPDY client: kubectl's, when it is installed.
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .args([
                "-n",
                ns.name(),
                "exec",
                "probe",
                "--",
                "/kseal-probe",
                "once",
            ])
            .stdin(Stdio::null())
            .output()
            .context("running kubectl exec")?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && text.contains("kseal-probe: OK"),
            "kubectl exec: {} {text} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("kubectl not installed: exec not checked");
    }

    pods.delete("probe", &DeleteParams::default()).await?;
    eventually("the probe Pod to be gone", POD_TIMEOUT, || async {
        Ok(pods.get_opt("probe").await?.is_none().then_some(()))
    })
    .await?;
    ns.cleanup().await
}
