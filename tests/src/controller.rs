//! A `kseal-controller` process for one test, and the fixtures the unseal scenarios share
//! (docs/compatibility.md, “Integration scenarios”): the base Secret sealed with the cluster's newest certificate, Events,
//! the Synced condition, and polling with Bitnami's timings.
//!
//! The controller runs as a plain process on the host (there is no kubelet), with
//! `--kubeconfig` pointing at a ServiceAccount that has exactly the rules of
//! `controller/deploy/rbac.yaml` (ClusterRole `secrets-unsealer` cluster-wide, Role
//! `sealed-secrets-key-admin` in its own namespace): never as admin. It watches only its own
//! namespace plus the ones a test names (`--all-namespaces=false --additional-namespaces`),
//! so tests run in parallel without seeing each other's SealedSecrets.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kseal_e2e::controller::{base_secret, seal, Controller};
//! use kseal_e2e::TestNamespace;
//!
//! let ns = TestNamespace::new("unseal").await?;
//! let ctl = Controller::builder().watch(ns.name()).start().await?;
//! let cert = ctl.sealing_certificate().await?;
//! let ss = seal(&cert, base_secret(ns.name()))?;
//! // ... create it, wait for the Secret ...
//! ctl.finish().await?;
//! ns.cleanup().await
//! # }
//! ```
//!
//! A test that fails (returns early or panics) drops its [`Controller`] without
//! [`Controller::finish`]: the drop stops the process and prints the tail of its log, so the
//! failure report shows what the controller did. `KSEAL_E2E_KEEP_LOGS=1` keeps the whole log
//! files (stdout and stderr of every start) after the test and prints where they are.
//!
//! The binary is `$KSEAL_CONTROLLER_BIN`, else `kseal-controller` next to the test executable
//! (`tests/run-e2e.sh` builds it; by hand: `cargo build -p kseal-controller`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::ByteString;
use kseal_crds::{SealedSecret, SealedSecretCondition};
use kseal_crypto::{Certificate, PublicKey};
use kseal_sealing::seal::{seal_secret, SealOptions};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::Deserialize as _;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::identity::{Identity, Permissions};
use crate::namespace::TestNamespace;
use crate::netns::{rewrite_kubeconfig, NetnsPlacement, CONTROLLER_PORT, METRICS_PORT};

/// Bitnami's `Eventually` timeout in its integration tests.
pub const EVENTUALLY: Duration = Duration::from_secs(15);
/// Bitnami's polling interval.
pub const POLL: Duration = Duration::from_millis(100);
/// How long "Consistently" checks hold.
pub const CONSISTENTLY: Duration = Duration::from_secs(3);

/// Environment variable naming the controller binary (default: next to the test executable).
pub const CONTROLLER_BIN_ENV: &str = "KSEAL_CONTROLLER_BIN";
/// Set to `1` to keep the controller's log files after the test (their directory is printed).
pub const KEEP_LOGS_ENV: &str = "KSEAL_E2E_KEEP_LOGS";
/// `source.component` of the controller's Events (Bitnami's value).
pub const EVENT_COMPONENT: &str = "sealed-secrets";
/// The annotation kseal adds to every Secret it writes (a MAC over what it was made from).
pub const ANNOTATION_OWNERSHIP: &str = "sealedsecrets.kseal.dev/record";
/// Label of the controller's key Secrets.
pub const KEY_LABEL_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";
/// Name of the base fixture's Secret.
pub const SECRET_NAME: &str = "testsecret";

/// From start to /healthz and the key Secret (a 2048-bit key on a busy 2-core machine, leader
/// election, informers).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// From SIGTERM to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// From SIGTERM to SIGKILL when a test is torn down by `Drop`.
const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Lines of log printed when a test fails.
const LOG_TAIL_LINES: usize = 100;

/// The RBAC manifests the controller is deployed with; the tests bind exactly these rules.
const RBAC_YAML: &str = include_str!("../../controller/deploy/rbac.yaml");

/// Path of the `kseal-controller` binary: `$KSEAL_CONTROLLER_BIN`, else next to the test
/// executable (`target/debug/deps/unseal-…` → `target/debug/kseal-controller`).
pub fn controller_binary() -> Result<PathBuf> {
    crate::bins::workspace_binary("kseal-controller", CONTROLLER_BIN_ENV)
}

/// The controller's permissions as `controller/deploy/rbac.yaml` grants them: the rules of
/// ClusterRole `secrets-unsealer` cluster-wide and of Role `sealed-secrets-key-admin` in its
/// own namespace.
pub fn controller_permissions() -> Result<Permissions> {
    let mut cluster_wide = None;
    let mut namespaced = None;
    for doc in serde_yaml::Deserializer::from_str(RBAC_YAML) {
        let value = serde_yaml::Value::deserialize(doc).context("parsing rbac.yaml")?;
        let kind = value["kind"].as_str();
        let name = value["metadata"]["name"].as_str();
        let rules = || -> Result<Vec<PolicyRule>> {
            serde_yaml::from_value(value["rules"].clone())
                .with_context(|| format!("rules of {kind:?} {name:?} in rbac.yaml"))
        };
        match (kind, name) {
            (Some("ClusterRole"), Some("secrets-unsealer")) => cluster_wide = Some(rules()?),
            (Some("Role"), Some("sealed-secrets-key-admin")) => namespaced = Some(rules()?),
            _ => {}
        }
    }
    Ok(Permissions {
        cluster_wide: cluster_wide.context("rbac.yaml has no ClusterRole secrets-unsealer")?,
        namespaced: namespaced.context("rbac.yaml has no Role sealed-secrets-key-admin")?,
    })
}

/// Installs the SealedSecret CRD (server-side apply: idempotent, other tests apply it too) and
/// waits until it is established.
pub async fn ensure_crd(client: &Client) -> Result<()> {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = kseal_crds::crd::crd();
    poll("the SealedSecret CRD to apply", EVENTUALLY, || async {
        crds.patch(
            "sealedsecrets.bitnami.com",
            &PatchParams::apply("kseal-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .context("applying the SealedSecret CRD")
    })
    .await?;
    poll(
        "the SealedSecret CRD to be established",
        Duration::from_secs(60),
        || async {
            let c = crds.get("sealedsecrets.bitnami.com").await?;
            let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            ensure!(ok, "not established yet");
            Ok(())
        },
    )
    .await
}

/// A free TCP port on 127.0.0.1 (bound and released; the controller binds it right after).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Sends `signal` (e.g. `TERM`) to `pid` with kill(1) (the workspace has no libc binding).
fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
    Ok(())
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case header names and their values.
    pub headers: Vec<(String, String)>,
    /// Body, lossily decoded.
    pub body: String,
}

/// A plain HTTP/1.0 GET (the servers under test are on loopback, without TLS).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<HttpResponse> {
    let io = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| anyhow!("GET http://{addr}{path} timed out"))?
        .with_context(|| format!("GET http://{addr}{path}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("GET http://{addr}{path}: no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("GET http://{addr}{path}: bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(raw.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// How to start a [`Controller`].
#[derive(Debug)]
pub struct ControllerBuilder {
    namespace: Option<TestNamespace>,
    prefix: String,
    watched: Vec<String>,
    flags: Vec<(String, Option<String>)>,
    env: Vec<(String, String)>,
    wait_for_key: bool,
    netns: Option<NetnsPlacement>,
    run_as: Option<u32>,
}

impl ControllerBuilder {
    /// Run the controller in `namespace` (its key Secrets, Lease and certificate ConfigMap go
    /// there) instead of a fresh namespace of its own.
    pub fn in_namespace(mut self, namespace: TestNamespace) -> Self {
        self.namespace = Some(namespace);
        self
    }

    /// Prefix of the controller's own namespace when the builder creates it.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Also watch SealedSecrets in `namespace` (`--additional-namespaces`).
    pub fn watch(mut self, namespace: &str) -> Self {
        self.watched.push(namespace.to_owned());
        self
    }

    /// Set `--name value`, replacing the harness's default for that flag (e.g.
    /// `.flag("--log-level", "DEBUG")`).
    pub fn flag(mut self, name: &str, value: &str) -> Self {
        self.set_flag(name, Some(value));
        self
    }

    /// Add a flag without a value (e.g. `--old-gc-behavior`).
    pub fn switch(mut self, name: &str) -> Self {
        self.set_flag(name, None);
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Ready as soon as /healthz answers, without waiting for a key Secret.
    pub fn without_key_wait(mut self) -> Self {
        self.wait_for_key = false;
        self
    }

    /// Run inside a network namespace (`ip netns exec`), listening on
    /// `placement.listen_ip:8080` (metrics `:8081`), with a copy of the identity's kubeconfig
    /// that names `placement.server` and `placement.tls_server_name`. See [`crate::netns`]
    /// ([`crate::netns::ProxiedController`] sets it all up).
    pub fn in_netns(mut self, placement: NetnsPlacement) -> Self {
        self.netns = Some(placement);
        self
    }

    /// Run the process as user and group `uid` (the test must run as root), with a copy of
    /// the identity's kubeconfig that user can read.
    pub fn run_as(mut self, uid: u32) -> Self {
        self.run_as = Some(uid);
        self
    }

    fn set_flag(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self.flags.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.flags.push((name.to_owned(), value)),
        }
    }

    /// Creates the namespace (unless given), the CRD and the controller's RBAC identity, starts
    /// the process and waits until it is ready: /healthz answers 200 and (unless
    /// [`without_key_wait`](Self::without_key_wait)) a key Secret exists.
    pub async fn start(mut self) -> Result<Controller> {
        let binary = controller_binary()?;
        let namespace = match self.namespace.take() {
            Some(ns) => ns,
            None => TestNamespace::new(&self.prefix).await?,
        };
        ensure_crd(namespace.client()).await?;
        let identity = namespace
            .identity_with("sealed-secrets-controller", controller_permissions()?)
            .await
            .context("creating the controller's RBAC identity (rbac.yaml)")?;
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("kseal-e2e-controller-{}-", namespace.name()))
            .tempdir()
            .context("creating a directory for the controller's logs")?;
        if std::env::var_os(KEEP_LOGS_ENV).is_some_and(|v| v == "1") {
            dir.disable_cleanup(true);
            eprintln!(
                "kseal-e2e: kseal-controller logs of namespace {} kept in {}",
                namespace.name(),
                dir.path().display()
            );
        }

        let kubeconfig = match &self.netns {
            // Next to the identity's own file: same private directory, same lifetime.
            Some(p) => {
                let path = identity
                    .kubeconfig_path()
                    .with_file_name("kubeconfig-netns");
                rewrite_kubeconfig(
                    identity.kubeconfig_path(),
                    &path,
                    &p.server,
                    &p.tls_server_name,
                )?;
                path
            }
            None => identity.kubeconfig_path().to_owned(),
        };
        let kubeconfig = match self.run_as {
            // In the log directory, which that user may then traverse (not list).
            Some(_) => {
                use std::os::unix::fs::PermissionsExt as _;
                let path = dir.path().join("kubeconfig");
                std::fs::copy(&kubeconfig, &path).context("copying the kubeconfig")?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
                path
            }
            None => kubeconfig,
        };
        let mut args: Vec<String> = vec![
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--namespace".into(),
            namespace.name().to_owned(),
        ];
        let mut watched: Vec<String> = Vec::new();
        for ns in &self.watched {
            if ns != namespace.name() && !watched.contains(ns) {
                watched.push(ns.clone());
            }
        }
        let defaults: [(&str, String); 5] = [
            ("--all-namespaces", "false".into()),
            ("--additional-namespaces", watched.join(",")),
            ("--key-size", "2048".into()),
            ("--log-format", "json".into()),
            ("--log-level", "INFO".into()),
        ];
        for (name, value) in defaults {
            if !self.flags.iter().any(|(n, _)| n == name) {
                self.flags.push((name.to_owned(), Some(value)));
            }
        }
        for (name, value) in &self.flags {
            match value {
                // `--flag=value` so that values starting with `-` and empty values work.
                Some(v) => args.push(format!("{name}={v}")),
                None => args.push(name.clone()),
            }
        }

        let mut controller = Controller {
            stdout_path: dir.path().join("stdout.log"),
            stderr_path: dir.path().join("stderr.log"),
            namespace: Some(namespace),
            identity: Some(identity),
            binary,
            args,
            env: self.env,
            wait_for_key: self.wait_for_key,
            netns: self.netns,
            run_as: self.run_as,
            child: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            starts: 0,
            finished: false,
            _dir: dir,
        };
        controller.launch().await?;
        Ok(controller)
    }
}

/// A running `kseal-controller` with its own namespace and least-privilege identity.
///
/// End a test with [`finish`](Self::finish) (SIGTERM, exit 0 expected, namespace deleted).
/// Dropped without it (a failed test), the process is stopped and the tail of its log printed.
pub struct Controller {
    namespace: Option<TestNamespace>,
    identity: Option<Identity>,
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    wait_for_key: bool,
    netns: Option<NetnsPlacement>,
    run_as: Option<u32>,
    child: Option<Child>,
    http_addr: SocketAddr,
    metrics_addr: SocketAddr,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    starts: u32,
    finished: bool,
    _dir: TempDir,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("namespace", &self.namespace().to_owned())
            .field("pid", &self.pid())
            .field("http_addr", &self.http_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("netns", &self.netns.as_ref().map(|p| &p.netns))
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A builder with the harness defaults: a fresh namespace, `--key-size 2048`,
    /// `--log-format json`, watching only its own namespace until [`ControllerBuilder::watch`].
    pub fn builder() -> ControllerBuilder {
        ControllerBuilder {
            namespace: None,
            prefix: "ctl".to_owned(),
            watched: Vec::new(),
            flags: Vec::new(),
            env: Vec::new(),
            wait_for_key: true,
            netns: None,
            run_as: None,
        }
    }

    /// The controller's own namespace.
    pub fn namespace(&self) -> &str {
        self.namespace.as_ref().map_or("", |n| n.name())
    }

    /// The controller's own namespace, e.g. to create identities in it.
    pub fn test_namespace(&self) -> Option<&TestNamespace> {
        self.namespace.as_ref()
    }

    /// An admin client (of the controller namespace's runtime).
    pub fn admin_client(&self) -> Result<&Client> {
        Ok(self
            .namespace
            .as_ref()
            .context("controller namespace already deleted")?
            .client())
    }

    /// The identity the controller runs as.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The full command line arguments (without the per-start listen addresses).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// `http://127.0.0.1:PORT` of the main server (`http://<inner addr>:8080` in a network
    /// namespace).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `http://127.0.0.1:PORT` of the metrics server.
    pub fn metrics_url(&self) -> String {
        format!("http://{}", self.metrics_addr)
    }

    /// GET `path` on the main server.
    pub async fn get(&self, path: &str) -> Result<HttpResponse> {
        http_get(self.http_addr, path).await
    }

    /// The body of `/metrics` (which must answer 200).
    pub async fn metrics(&self) -> Result<String> {
        let r = http_get(self.metrics_addr, "/metrics").await?;
        ensure!(
            r.status == 200,
            "/metrics answered {}: {}",
            r.status,
            r.body
        );
        Ok(r.body)
    }

    /// The key Secrets in the controller namespace, oldest first (by creationTimestamp, then
    /// name), as Bitnami's tests read them.
    pub async fn key_secrets(&self) -> Result<Vec<Secret>> {
        let api = Api::<Secret>::namespaced(self.admin_client()?.clone(), self.namespace());
        let mut keys = api
            .list(&ListParams::default().labels(KEY_LABEL_SELECTOR))
            .await
            .context("listing key Secrets")?
            .items;
        keys.sort_by(|a, b| {
            let created = |s: &Secret| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        Ok(keys)
    }

    /// The certificate of the newest key Secret: what kubeseal would seal with.
    pub async fn sealing_certificate(&self) -> Result<Certificate> {
        let keys = self.key_secrets().await?;
        let newest = keys.last().context("the controller has no key Secret")?;
        let pem = newest
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .with_context(|| {
                format!(
                    "key Secret {:?} has no tls.crt",
                    newest.metadata.name.as_deref()
                )
            })?;
        Certificate::from_pem(&pem.0).context("parsing the newest key Secret's tls.crt")
    }

    /// stdout and stderr of every start so far.
    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&self.stdout_path), read(&self.stderr_path))
    }

    /// stdout and stderr, each labelled, last `lines` lines of each.
    pub fn log_tail(&self, lines: usize) -> String {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- kseal-controller stdout ({}) ---\n{}\n--- kseal-controller stderr ({}) ---\n{}\n--- end ---",
            self.stdout_path.display(),
            tail(&self.stdout_path),
            self.stderr_path.display(),
            tail(&self.stderr_path)
        )
    }

    /// Attaches the log tail to an error.
    fn with_logs(&self, err: anyhow::Error) -> anyhow::Error {
        err.context(format!(
            "kseal-controller in namespace {}; {}",
            self.namespace(),
            self.log_tail(40)
        ))
    }

    /// Starts the process (on fresh ports) and waits until it is ready.
    async fn launch(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "kseal-controller already runs");
        // A port picked free can be taken by someone else before the controller binds it:
        // try again with new ports then.
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.spawn()?;
            match self.wait_ready().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let exited = self.child.as_mut().map(|c| c.try_wait());
                    let address_in_use = self.logs().to_lowercase().contains("address in use")
                        || self.logs().contains("AddrInUse");
                    if attempt < 3 && matches!(exited, Some(Ok(Some(_)))) && address_in_use {
                        self.child = None;
                        continue;
                    }
                    self.terminate_now();
                    return Err(self.with_logs(e));
                }
            }
        }
    }

    fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        match &self.netns {
            // The namespace is the controller's alone: fixed ports, reachable from the host.
            Some(p) => {
                self.http_addr = SocketAddr::new(p.listen_ip, CONTROLLER_PORT);
                self.metrics_addr = SocketAddr::new(p.listen_ip, METRICS_PORT);
            }
            None => {
                self.http_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                self.metrics_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            }
        }
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))
        };
        let (mut stdout, mut stderr) = (open(&self.stdout_path)?, open(&self.stderr_path)?);
        if self.starts > 1 {
            let marker = format!("----- kseal-e2e: start #{} -----\n", self.starts);
            stdout.write_all(marker.as_bytes())?;
            stderr.write_all(marker.as_bytes())?;
        }
        // `ip netns exec` execs the binary in place: the child's PID is the controller's.
        let mut command = match &self.netns {
            Some(p) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &p.netns]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        command
            .args(&self.args)
            .arg(format!("--listen-addr={}", self.http_addr))
            .arg(format!("--listen-metrics-addr={}", self.metrics_addr))
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAMESPACE")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        if let Some(uid) = self.run_as {
            use std::os::unix::process::CommandExt as _;
            // std drops the supplementary groups when root changes user.
            command.uid(uid).gid(uid);
        }
        // Settings from the test's environment must not leak into the controller.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SEALED_SECRETS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("kseal-controller exited with {status} before it was ready");
                }
            }
            let last = match http_get(self.http_addr, "/healthz").await {
                Ok(r) if r.status == 200 => {
                    if !self.wait_for_key {
                        return Ok(());
                    }
                    match self.key_secrets().await {
                        Ok(keys) if !keys.is_empty() => return Ok(()),
                        Ok(_) => "/healthz is 200 but there is no key Secret yet".to_owned(),
                        Err(e) => format!("listing key Secrets: {e:#}"),
                    }
                }
                Ok(r) => format!("/healthz answered {}: {:?}", r.status, r.body),
                Err(e) => format!("/healthz: {e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                bail!("kseal-controller not ready after {START_TIMEOUT:?}: {last}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, then wait for the exit (SIGKILL and an error after 10 s). Returns the exit status.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .context("kseal-controller is not running")?;
        if let Some(status) = child.try_wait()? {
            return Err(self.with_logs(anyhow!(
                "kseal-controller had already exited ({status}) before SIGTERM"
            )));
        }
        send_signal(child.id(), "TERM")?;
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.with_logs(anyhow!(
                    "kseal-controller did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process has exited (crashed, aborted, killed by someone else); reaps it.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => false,
            Some(_) => {
                self.child = None;
                true
            }
            None => true,
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, ...) to the running process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().context("kseal-controller is not running")?;
        send_signal(pid, signal)
    }

    /// SIGKILL (a crash); returns once the process is gone.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .context("kseal-controller is not running")?;
        let _ = child.kill();
        child
            .wait()
            .context("waiting for the killed kseal-controller")
    }

    /// Start again after [`stop`](Self::stop) or [`kill`](Self::kill), same flags, new ports.
    pub async fn start_again(&mut self) -> Result<()> {
        self.launch().await
    }

    /// Sets `--name=value` for the next [`start_again`](Self::start_again) (replacing the
    /// flag's current value), e.g. a `--label-selector` for a restart over part of the objects.
    pub fn set_flag(&mut self, name: &str, value: &str) {
        let prefix = format!("{name}=");
        let arg = format!("{name}={value}");
        match self.args.iter_mut().find(|a| a.starts_with(&prefix)) {
            Some(slot) => *slot = arg,
            None => self.args.push(arg),
        }
    }

    /// Graceful restart: SIGTERM (exit 0 required), then start again and wait until ready.
    pub async fn restart(&mut self) -> Result<()> {
        let status = self.stop().await?;
        if !status.success() {
            return Err(self.with_logs(anyhow!(
                "kseal-controller exited with {status} after SIGTERM (want 0)"
            )));
        }
        self.launch().await
    }

    /// Ends a test: SIGTERM, exit status 0 required, the controller namespace deleted.
    pub async fn finish(mut self) -> Result<()> {
        if self.child.is_some() {
            let status = self.stop().await?;
            if !status.success() {
                return Err(self.with_logs(anyhow!(
                    "kseal-controller exited with {status} after SIGTERM (want 0)"
                )));
            }
        }
        self.finished = true;
        drop(self.identity.take());
        match self.namespace.take() {
            Some(ns) => ns.cleanup().await,
            None => Ok(()),
        }
    }

    /// Stops the process from synchronous code (Drop, failed starts): SIGTERM, a short grace
    /// period, SIGKILL.
    fn terminate_now(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = send_signal(child.id(), "TERM");
            let deadline = std::time::Instant::now() + DROP_STOP_TIMEOUT;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.terminate_now();
        if !self.finished || std::thread::panicking() {
            eprintln!(
                "kseal-e2e: the test ended without Controller::finish (it failed?); \
                 kseal-controller in namespace {}, args {:?}:\n{}",
                self.namespace(),
                self.args,
                self.log_tail(LOG_TAIL_LINES)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// Bitnami's base fixture: Secret `testsecret` in `namespace`, label `mylabel=myvalue`, data
/// `foo=bar`.
pub fn base_secret(namespace: &str) -> Secret {
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(SECRET_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(string_map(&[("mylabel", "myvalue")])),
            ..Default::default()
        },
        data: Some(bytes_map(&[("foo", "bar")])),
        ..Default::default()
    }
}

/// Seals `secret` for `cert`'s key as kubeseal does (scope from its annotations).
pub fn seal(cert: &Certificate, secret: Secret) -> Result<SealedSecret> {
    seal_for(cert.public_key(), secret)
}

/// Seals `secret` for `key`.
pub fn seal_for(key: &PublicKey, secret: Secret) -> Result<SealedSecret> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    seal_secret(
        &mut rand::rngs::OsRng,
        key,
        secret,
        &SealOptions {
            default_namespace: &namespace,
            ..Default::default()
        },
    )
    .context("sealing the test Secret")
}

/// One sealed item (`encryptedData` value) for `label` (`ns/name`, `ns` or empty).
pub fn seal_item(cert: &Certificate, label: &str, value: &[u8]) -> Result<String> {
    let blob = kseal_crypto::seal(cert.public_key(), label.as_bytes(), value)
        .context("sealing one item")?;
    Ok(STANDARD.encode(blob))
}

/// `{k: v}` as owned strings.
pub fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `{k: v}` as Secret data.
pub fn bytes_map(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

/// A Secret's data as strings (lossy), for comparisons and messages.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

/// A Secret's labels (empty when absent).
pub fn labels(secret: &Secret) -> BTreeMap<String, String> {
    secret.metadata.labels.clone().unwrap_or_default()
}

/// A Secret's annotations without kseal's ownership annotation (so they compare with Bitnami's).
pub fn annotations_without_ownership(secret: &Secret) -> BTreeMap<String, String> {
    let mut a = secret.metadata.annotations.clone().unwrap_or_default();
    a.remove(ANNOTATION_OWNERSHIP);
    a
}

/// Checks that `secret` is controlled by `ss`: exactly one ownerReference, to the SealedSecret
/// (apiVersion, kind, name, uid), with `controller: true`.
pub fn check_owned_by(secret: &Secret, ss: &SealedSecret) -> Result<()> {
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    ensure!(
        owners.len() == 1,
        "want exactly one ownerReference (the SealedSecret), got {owners:?}"
    );
    let o = &owners[0];
    ensure!(
        o.api_version == kseal_crds::API_VERSION
            && o.kind == kseal_crds::KIND
            && Some(&o.name) == ss.metadata.name.as_ref()
            && Some(&o.uid) == ss.metadata.uid.as_ref()
            && o.controller == Some(true),
        "ownerReference {o:?} is not a controller reference to SealedSecret {:?} (uid {:?})",
        ss.metadata.name,
        ss.metadata.uid
    );
    Ok(())
}

/// The `Synced` condition, if any.
pub fn synced_condition(ss: &SealedSecret) -> Option<&SealedSecretCondition> {
    ss.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Synced"))
}

/// Waits until SealedSecret `name` has a `Synced` condition with `status` (`True`/`False`) and
/// returns it.
pub async fn wait_synced(
    api: &Api<SealedSecret>,
    name: &str,
    status: &str,
) -> Result<SealedSecret> {
    poll(
        &format!("SealedSecret {name} to be Synced={status}"),
        EVENTUALLY,
        || async {
            let ss = api
                .get(name)
                .await
                .with_context(|| format!("get SealedSecret {name}"))?;
            match synced_condition(&ss) {
                Some(c) if c.status == status => Ok(ss),
                Some(c) => bail!(
                    "Synced is {} (reason {:?}, message {:?})",
                    c.status,
                    c.reason,
                    c.message
                ),
                None => bail!("no Synced condition yet (status {:?})", ss.status),
            }
        },
    )
    .await
}

/// The Events whose involvedObject is SealedSecret `name` in `namespace` (core/v1).
pub async fn events_for(client: &Client, namespace: &str, name: &str) -> Result<Vec<Event>> {
    let api = Api::<Event>::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={name},involvedObject.kind={}",
            kseal_crds::KIND
        )))
        .await
        .with_context(|| format!("listing Events of {namespace}/{name}"))?;
    Ok(list.items)
}

fn describe_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events".into();
    }
    events
        .iter()
        .map(|e| {
            format!(
                "{}/{} {:?} (source {:?}, reportingComponent {:?}, count {:?})",
                e.type_.as_deref().unwrap_or("?"),
                e.reason.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or(""),
                e.source.as_ref().and_then(|s| s.component.as_deref()),
                e.reporting_component.as_deref(),
                e.count
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits for an Event with `reason` on SealedSecret `namespace/name` from the controller
/// (`source.component` `sealed-secrets`, type Normal for `Unsealed` and Warning otherwise, the
/// involvedObject a `bitnami.com/v1alpha1` SealedSecret), whose message contains
/// `message_contains` if given. Returns it.
pub async fn expect_event(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &str,
    message_contains: Option<&str>,
) -> Result<Event> {
    let want_type = if reason == "Unsealed" {
        "Normal"
    } else {
        "Warning"
    };
    poll(
        &format!("Event {reason} on SealedSecret {namespace}/{name}"),
        EVENTUALLY,
        || async {
            let events = events_for(client, namespace, name).await?;
            let found = events.iter().find(|e| {
                e.reason.as_deref() == Some(reason)
                    && message_contains
                        .is_none_or(|m| e.message.as_deref().is_some_and(|t| t.contains(m)))
            });
            let Some(e) = found else {
                bail!("events so far: {}", describe_events(&events));
            };
            let component = e.source.as_ref().and_then(|s| s.component.as_deref());
            ensure!(
                component == Some(EVENT_COMPONENT),
                "event {reason} has source.component {component:?}, want {EVENT_COMPONENT:?} \
                 (all: {})",
                describe_events(&events)
            );
            ensure!(
                e.type_.as_deref() == Some(want_type),
                "event {reason} has type {:?}, want {want_type}",
                e.type_
            );
            let io = &e.involved_object;
            ensure!(
                io.api_version.as_deref() == Some(kseal_crds::API_VERSION)
                    && io.kind.as_deref() == Some(kseal_crds::KIND)
                    && io.namespace.as_deref() == Some(namespace),
                "event {reason} is about {io:?}"
            );
            Ok(e.clone())
        },
    )
    .await
}

/// Poll `check` every 100 ms until it returns `Ok`, for at most `timeout`. An `Err` means "not
/// yet, because …": the last one is reported on timeout, so a failure says what was seen.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(format!("timed out after {timeout:?} waiting for {what}")));
            }
            Err(_) => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`poll`] with Bitnami's 15 s.
pub async fn eventually_ok<T, F, Fut>(what: &str, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    poll(what, EVENTUALLY, check).await
}

/// `check` must hold at every poll for `duration` (Gomega's `Consistently`).
pub async fn consistently<F, Fut>(what: &str, duration: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        check()
            .await
            .with_context(|| format!("expected {what} to hold for {duration:?}"))?;
        if tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Secret `name` stays absent for [`CONSISTENTLY`].
pub async fn consistently_absent(secrets: &Api<Secret>, name: &str) -> Result<()> {
    consistently(
        &format!("Secret {name} to stay absent"),
        CONSISTENTLY,
        || async {
            match secrets.get_opt(name).await? {
                None => Ok(()),
                Some(s) => bail!(
                    "Secret {name} exists (uid {:?}, data keys {:?}, owners {:?})",
                    s.metadata.uid,
                    secret_data(&s).keys().collect::<Vec<_>>(),
                    s.metadata.owner_references
                ),
            }
        },
    )
    .await
}

/// Waits until Secret `name` exists and `check` accepts it; returns it.
pub async fn eventually_secret<F>(secrets: &Api<Secret>, name: &str, check: F) -> Result<Secret>
where
    F: Fn(&Secret) -> Result<()>,
{
    poll(
        &format!("Secret {name} as expected"),
        EVENTUALLY,
        || async {
            let s = secrets
                .get_opt(name)
                .await?
                .with_context(|| format!("Secret {name} does not exist"))?;
            check(&s)?;
            Ok(s)
        },
    )
    .await
}

/// Checks that `secret`'s data is exactly `want`.
pub fn check_data(secret: &Secret, want: &[(&str, &str)]) -> Result<()> {
    let got = secret_data(secret);
    let want = string_map(want);
    ensure!(got == want, "data is {got:?}, want {want:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_manifest_parses_into_the_controller_permissions() {
        let p = controller_permissions().unwrap();
        assert!(p.cluster_wide.iter().any(|r| r
            .resources
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r == "sealedsecrets/status"))));
        assert!(p
            .namespaced
            .iter()
            .any(|r| r.resource_names.as_ref().is_some_and(|n| !n.is_empty())));
    }

    #[test]
    fn ownership_annotation_is_the_controllers() {
        assert_eq!(
            ANNOTATION_OWNERSHIP,
            kseal_controller::planner::ANNOTATION_OWNERSHIP
        );
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
