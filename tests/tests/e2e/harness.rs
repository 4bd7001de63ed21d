//! Tests of the harness itself: its promises about the local control plane
//! (loopback only, shared, v1.20.2) and about namespaces and identities.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kseal_e2e::kube::api::DeleteParams;
use kseal_e2e::kube::{self, Api};
use kseal_e2e::{eventually, is_api_error, rule, Cluster, TestNamespace};

const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(90);

/// Every socket etcd, kube-apiserver and kube-controller-manager listen on is a
/// loopback address (checked with `ss`, as an outsider would). With a node
/// (`cluster.sh up --node`), its five components too, and the bridge address
/// (kubelet, the apiserver relay) is the one other address allowed.
#[test]
fn local_control_plane_listens_only_on_loopback() -> Result<()> {
    let cluster = Cluster::shared()?;
    let Some(state) = cluster.local_state()? else {
        eprintln!("skipped: external cluster (KSEAL_E2E_KUBECONFIG)");
        return Ok(());
    };
    let bridge_ip = match state.vars.get("NODE_RUNNING").map(String::as_str) {
        Some("1") => Some(state.vars.get("BRIDGE_IP").context("BRIDGE_IP")?.clone()),
        _ => None,
    };
    let expected = if bridge_ip.is_some() { 8 } else { 3 };
    ensure!(
        state.pids.len() == expected,
        "expected {expected} component PIDs, got {:?}",
        state.pids
    );
    for (component, pid) in &state.pids {
        let mut sockets = Vec::new();
        for protocol in ["-t", "-u"] {
            let out = Command::new("ss")
                .args(["-H", "-l", "-n", "-p", protocol])
                .output()
                .context("running ss")?;
            ensure!(
                out.status.success(),
                "ss failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let needle = format!("pid={pid},");
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(&needle))
            {
                // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port Process
                let local = line
                    .split_whitespace()
                    .nth(3)
                    .context("unexpected ss output")?;
                sockets.push(local.to_owned());
            }
        }
        ensure!(
            !sockets.is_empty(),
            "{component} (pid {pid}) listens on nothing?"
        );
        for address in &sockets {
            let loopback = address.starts_with("127.")
                || address.starts_with("[::1]:")
                || address.starts_with("[::ffff:127.")
                || bridge_ip
                    .as_ref()
                    .is_some_and(|ip| address.starts_with(&format!("{ip}:")));
            ensure!(
                loopback,
                "{component} (pid {pid}) listens on non-loopback {address}"
            );
        }
    }
    Ok(())
}

/// `cluster.sh up` on a running cluster is idempotent, also when called
/// concurrently (as every test process does).
#[test]
fn concurrent_up_reuses_the_running_cluster() -> Result<()> {
    let cluster = Cluster::shared()?;
    let kseal_e2e::ClusterKind::Local { script } = cluster.kind() else {
        eprintln!("skipped: external cluster (KSEAL_E2E_KUBECONFIG)");
        return Ok(());
    };
    let before = cluster.local_state()?.context("local state")?.pids;
    let children = (0..3)
        .map(|_| {
            Command::new("bash")
                .arg(script)
                .arg("up")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("spawning cluster.sh up")?;
    for child in children {
        let out = child.wait_with_output().context("running cluster.sh up")?;
        ensure!(out.status.success(), "cluster.sh up failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        ensure!(
            std::path::Path::new(last) == cluster.kubeconfig_path(),
            "up printed {last}, expected {}",
            cluster.kubeconfig_path().display()
        );
    }
    let after = cluster.local_state()?.context("local state")?.pids;
    ensure!(
        before == after,
        "up restarted components: {before:?} -> {after:?}"
    );
    Ok(())
}

/// The local control plane really is the Kubernetes version the script builds.
#[tokio::test]
async fn local_control_plane_is_v1_20() -> Result<()> {
    let cluster = Cluster::shared()?;
    if !cluster.is_local() {
        eprintln!("skipped: external cluster (KSEAL_E2E_KUBECONFIG)");
        return Ok(());
    }
    let version = cluster.admin_client().await?.apiserver_version().await?;
    ensure!(
        version.git_version == "v1.20.2",
        "apiserver version {version:?}"
    );
    Ok(())
}

/// A TestNamespace that is dropped (test panicked) gets deleted, also when the
/// tokio runtime that created it is already gone.
#[tokio::test]
async fn dropped_namespaces_are_deleted() -> Result<()> {
    let cluster = Cluster::shared()?;
    let in_runtime = TestNamespace::new("drop-in-runtime").await?;
    let in_runtime_name = in_runtime.name().to_owned();
    drop(in_runtime);

    let after_runtime_name = std::thread::spawn(|| -> Result<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ns = rt.block_on(TestNamespace::new("drop-after-runtime"))?;
        drop(rt);
        let name = ns.name().to_owned();
        drop(ns);
        Ok(name)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread panicked"))??;

    let namespaces = Api::<Namespace>::all(cluster.admin_client().await?);
    for name in [in_runtime_name, after_runtime_name] {
        let got = namespaces.get(&name).await;
        if is_api_error(&got, 404) {
            continue;
        }
        let ns = got?;
        ensure!(
            ns.metadata.deletion_timestamp.is_some(),
            "namespace {name} was not deleted on drop"
        );
    }
    Ok(())
}

/// A cluster-wide identity gets exactly its ClusterRole's rights, and the
/// ClusterRole is garbage-collected together with the test namespace.
#[tokio::test]
async fn cluster_identity_is_scoped_and_cleaned_up() -> Result<()> {
    let ns = TestNamespace::new("cluster-identity").await?;
    let watcher = ns
        .cluster_identity(
            "watcher",
            vec![rule(&[""], &["namespaces"], &["get", "list", "watch"])],
        )
        .await?;
    let client = watcher.client().await?;
    let namespaces = Api::<Namespace>::all(client.clone());
    let listed = namespaces
        .list(&Default::default())
        .await
        .context("listing namespaces")?;
    ensure!(
        listed
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(ns.name())),
        "own namespace not listed"
    );
    let deleted = namespaces.delete(ns.name(), &DeleteParams::default()).await;
    ensure!(
        is_api_error(&deleted, 403),
        "deleting a namespace gave {deleted:?}, not 403"
    );
    let secrets = Api::<Secret>::namespaced(client, ns.name())
        .list(&Default::default())
        .await;
    ensure!(
        is_api_error(&secrets, 403),
        "listing Secrets gave {secrets:?}, not 403"
    );

    let admin = ns.client().clone();
    let role_name = format!("kseal-e2e:{}:watcher", ns.name());
    ns.cleanup().await?;
    let cluster_roles = Api::<ClusterRole>::all(admin);
    eventually(
        "the ClusterRole to be garbage-collected with its namespace",
        CONTROLLER_TIMEOUT,
        || async {
            match cluster_roles.get(&role_name).await {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Some(())),
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
}
