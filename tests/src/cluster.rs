//! Which control plane a test run talks to, and admin access to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context as _, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Environment variable naming the kubeconfig of an existing cluster to test
/// against instead of the local control plane.
pub const EXTERNAL_KUBECONFIG_ENV: &str = "KSEAL_E2E_KUBECONFIG";

/// The control plane of this test run. Obtain it with [`Cluster::shared`].
#[derive(Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    kind: ClusterKind,
}

/// Where the cluster came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterKind {
    /// Started by `tests/control-plane/cluster.sh`; we own its processes.
    Local {
        /// The script, for `env` queries.
        script: PathBuf,
    },
    /// Given by `KSEAL_E2E_KUBECONFIG`; we know nothing but its kubeconfig.
    External,
}

/// What `cluster.sh env` reports about the local control plane.
#[derive(Debug, Clone, Default)]
pub struct LocalState {
    /// Component name (`etcd`, `kube-apiserver`, `kube-controller-manager`) to PID.
    pub pids: BTreeMap<String, u32>,
    /// Every `KEY=value` line, e.g. `APISERVER_PORT`, `START_TO_READY_SECONDS`.
    pub vars: BTreeMap<String, String>,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

impl Cluster {
    /// The cluster of this test run, set up on first use in this process.
    ///
    /// Without `KSEAL_E2E_KUBECONFIG` this runs `cluster.sh up`, which starts the
    /// local control plane unless it already runs (and on a fresh machine first
    /// builds it, which takes minutes). This blocks the calling thread; in a
    /// `#[tokio::test]` that is harmless, nothing else runs on its runtime yet.
    ///
    /// A failure is remembered: every later call in this process returns it too.
    pub fn shared() -> Result<&'static Cluster> {
        SHARED
            .get_or_init(|| Self::discover().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("no test cluster: {e}"))
    }

    fn discover() -> Result<Cluster> {
        if let Some(path) = std::env::var_os(EXTERNAL_KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            let kubeconfig = PathBuf::from(path);
            if !kubeconfig.is_file() {
                bail!(
                    "{EXTERNAL_KUBECONFIG_ENV}={} is not a file",
                    kubeconfig.display()
                );
            }
            return Ok(Cluster {
                kubeconfig,
                kind: ClusterKind::External,
            });
        }
        let script = script_path();
        let output = Command::new("bash")
            .arg(&script)
            .arg("up")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {} up", script.display()))?;
        if !output.status.success() {
            bail!(
                "`{} up` failed ({}); its progress and errors are on stderr above",
                script.display(),
                output.status
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .context("`cluster.sh up` printed no kubeconfig path")?;
        let kubeconfig = PathBuf::from(last.trim());
        if !kubeconfig.is_file() {
            bail!(
                "`cluster.sh up` printed {}, which is not a file",
                kubeconfig.display()
            );
        }
        Ok(Cluster {
            kubeconfig,
            kind: ClusterKind::Local { script },
        })
    }

    /// A local control plane of one test's own ([`crate::OwnCluster::cluster`]).
    pub(crate) fn own(kubeconfig: PathBuf) -> Cluster {
        Cluster {
            kubeconfig,
            kind: ClusterKind::Local {
                script: script_path(),
            },
        }
    }

    /// Path of an admin (cluster-admin or `system:masters`) kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Local control plane or external cluster.
    pub fn kind(&self) -> &ClusterKind {
        &self.kind
    }

    /// True for the control plane started by `cluster.sh`.
    pub fn is_local(&self) -> bool {
        matches!(self.kind, ClusterKind::Local { .. })
    }

    /// A new admin client.
    ///
    /// Clients are cheap and tied to the tokio runtime that creates them (kube
    /// spawns a worker task on it), and every `#[tokio::test]` has a runtime of its
    /// own, so there is a factory rather than one shared client.
    pub async fn admin_client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// The parsed admin kubeconfig (e.g. to derive other kubeconfigs from it).
    pub fn kubeconfig(&self) -> Result<Kubeconfig> {
        Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("reading kubeconfig {}", self.kubeconfig.display()))
    }

    /// PIDs and ports of the local control plane; `None` for an external cluster.
    pub fn local_state(&self) -> Result<Option<LocalState>> {
        let ClusterKind::Local { script } = &self.kind else {
            return Ok(None);
        };
        let output = Command::new("bash")
            .arg(script)
            .arg("env")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} env", script.display()))?;
        if !output.status.success() {
            bail!(
                "`cluster.sh env` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let mut state = LocalState::default();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if let Some(component) = key.strip_prefix("PID_") {
                if let Ok(pid) = value.parse() {
                    state
                        .pids
                        .insert(component.to_lowercase().replace('_', "-"), pid);
                }
            }
            state.vars.insert(key.to_owned(), value.to_owned());
        }
        Ok(Some(state))
    }
}

/// `tests/control-plane/cluster.sh` of this source tree.
pub(crate) fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("control-plane")
        .join("cluster.sh")
}

/// A client for the current context of the kubeconfig file at `path`.
pub(crate) async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    Client::try_from(config).with_context(|| format!("client for {}", path.display()))
}
