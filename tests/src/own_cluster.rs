//! A control plane of one test's own: `cluster.sh up` in a state directory of its own, stopped
//! (`cluster.sh down`) when dropped. For tests that install into kube-system under the default
//! names, as a user's first cluster has them (the README's quick starts, the kustomize base):
//! the shared control plane's kube-system belongs to no test, and a controller watching every
//! namespace must not meet the other tests' SealedSecrets. Starting one costs a few seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};

use crate::Cluster;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A running control plane of one test; stopped on drop.
#[derive(Debug)]
pub struct OwnCluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    /// With a node: [`NODE_LOCK`], held until the cluster is down.
    _node_lock: Option<std::fs::File>,
}

/// One node per machine (`cluster.sh` refuses a second one): tests that start a node of their
/// own take this lock first and hold it until their cluster is down, so they wait for each
/// other instead of failing when the runner starts them at the same time.
pub const NODE_LOCK: &str = "/run/kseal-own-node.lock";

fn node_lock() -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(NODE_LOCK)
        .with_context(|| format!("opening {NODE_LOCK}"))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {NODE_LOCK}"))?;
    Ok(file)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/cluster.sh")
}

impl OwnCluster {
    /// Starts one with its state in `dir` (created; give a fresh temporary directory).
    pub fn up(dir: &Path) -> Result<Self> {
        Self::start(dir, &[])
    }

    /// The same with a node that runs Pods (`cluster.sh up --node`: kube-scheduler,
    /// containerd, kubelet, kube-proxy). One node per machine: this waits for the other tests'
    /// own nodes ([`NODE_LOCK`]), and fails while a cluster started otherwise runs a node.
    pub fn up_with_node(dir: &Path) -> Result<Self> {
        let lock = node_lock()?;
        let mut cluster = Self::start(dir, &["--node"])?;
        cluster._node_lock = Some(lock);
        Ok(cluster)
    }

    /// The same with extra kube-apiserver flags (`KSEAL_APISERVER_FLAGS`), e.g.
    /// `--watch-cache=false` so that watches resume from etcd and expire after a compaction.
    pub fn up_with_apiserver_flags(dir: &Path, apiserver_flags: &str) -> Result<Self> {
        Self::start_with(dir, &[], apiserver_flags)
    }

    fn start(dir: &Path, flags: &[&str]) -> Result<Self> {
        Self::start_with(dir, flags, "")
    }

    fn start_with(dir: &Path, flags: &[&str], apiserver_flags: &str) -> Result<Self> {
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .args(flags)
            .env("KSEAL_CLUSTER_DIR", dir)
            .env("KSEAL_APISERVER_FLAGS", apiserver_flags)
            .stderr(Stdio::inherit())
            .output()
            .context("running cluster.sh up")?;
        let cluster = OwnCluster {
            dir: dir.to_path_buf(),
            kubeconfig: PathBuf::from(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim(),
            ),
            _node_lock: None,
        };
        ensure!(out.status.success(), "cluster.sh up failed: {}", out.status);
        ensure!(
            cluster.kubeconfig.is_file(),
            "cluster.sh up printed no kubeconfig path"
        );
        Ok(cluster)
    }

    /// Runs `cluster.sh COMMAND ARGS…` for this cluster; its stdout's last line.
    pub fn script(&self, command: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
        let out = Command::new("bash")
            .arg(script())
            .arg(command)
            .args(args)
            .env("KSEAL_CLUSTER_DIR", &self.dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running cluster.sh {command}"))?;
        ensure!(
            out.status.success(),
            "cluster.sh {command} failed: {}",
            out.status
        );
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned())
    }

    /// `cluster.sh restart COMPONENT --down-for SECONDS`: kill -9, wait, start again with the
    /// same command line, wait until healthy. Blocks; the seconds it was down.
    pub fn restart(&self, component: &str, down_for: Duration) -> Result<f64> {
        let secs = format!("{:.1}", down_for.as_secs_f64());
        let out = self.script(
            "restart",
            &[component.as_ref(), "--down-for".as_ref(), secs.as_ref()],
        )?;
        out.parse()
            .with_context(|| format!("cluster.sh restart printed {out:?}"))
    }

    /// `cluster.sh compact`: etcd compacted to its current revision, which it returns.
    pub fn compact(&self) -> Result<u64> {
        let out = self.script("compact", &[])?;
        out.parse()
            .with_context(|| format!("cluster.sh compact printed {out:?}"))
    }

    /// This control plane as a [`Cluster`], for [`crate::TestNamespace::create_on`].
    pub fn cluster(&self) -> Cluster {
        Cluster::own(self.kubeconfig.clone())
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// An admin client.
    pub async fn client(&self) -> Result<Client> {
        let config = Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&self.kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        Ok(Client::try_from(config)?)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .env("KSEAL_CLUSTER_DIR", &self.dir)
            .status();
    }
}

/// `kubectl apply -k DIR` with `kubeconfig`; kubectl's stdout (one line per object applied).
/// The kustomize base's PodDisruptionBudget is policy/v1, which Kubernetes 1.20 (the test
/// control plane) does not serve: a refusal of exactly that is allowed, any other error fails.
pub fn apply_kustomization(kubeconfig: &Path, dir: &Path) -> Result<String> {
    let out = Command::new("kubectl")
        .arg("apply")
        .arg("-k")
        .arg(dir)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl (the e2e tests need it on PATH)")?;
    let errors = String::from_utf8_lossy(&out.stderr);
    let only_the_pdb = errors
        .lines()
        .filter(|l| l.starts_with("error"))
        .all(|l| l.contains("PodDisruptionBudget") && l.contains("policy/v1"));
    ensure!(
        out.status.success() || only_the_pdb,
        "kubectl apply -k {}: {errors}",
        dir.display()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
