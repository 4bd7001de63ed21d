//! The controller behind the API server's service proxy, on a control plane without kubelet.
//!
//! kubeseal and `kseal` reach the controller's `/v1/cert.pem`, `/v1/verify` and `/v1/rotate`
//! through `/api/v1/namespaces/<ns>/services/<scheme>:<svc>:<port>/proxy/<path>`. The API server
//! resolves that to an address of the Service's Endpoints and dials it. Here the controller is a
//! process on the host, and the API server refuses to proxy to loopback, so:
//!
//! - [`NetNs`] is a network namespace with a veth pair on a private /30 of `10.231.0.0/16`:
//!   [`NetNs::host_addr`] (`.1`) on the host side, [`NetNs::inner_addr`] (`.2`) inside. The
//!   controller runs inside (`ip netns exec`) and listens on `inner_addr:8080`; the host (the API
//!   server, the test) reaches it through the veth.
//! - The API server proxies only to an Endpoints address that belongs to a Pod of the Service's
//!   namespace (`targetRef`) whose `status.podIPs` holds it. There is no kubelet, so the fixture
//!   stores a Pod that never runs (an unknown `schedulerName`: nothing schedules it, on v1.20 nor
//!   on kind) and writes its status through the `pods/status` subresource, as a kubelet would.
//!   [`expose_service`] then creates a selector-less Service and Endpoints naming that Pod.
//! - From inside the namespace the API server on the host's 127.0.0.1 is unreachable, and it
//!   binds 127.0.0.1 only (a rule of `cluster.sh`). [`ApiForwarder`] relays TCP from
//!   `host_addr:<port>` to the API server, and the controller's kubeconfig copy names
//!   `https://<host_addr>:<port>` with `tls-server-name` set to the host the certificate was
//!   issued for (the admin kubeconfig's server host, `127.0.0.1`), so TLS verification still
//!   holds. Only the host side of the veth is bound: nothing is exposed beyond the private /30.
//!
//! [`ProxiedController`] does all of it in one call and keeps it alive:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kseal_e2e::netns::{proxy_get, ProxiedController};
//!
//! let pc = ProxiedController::start().await?;
//! let user = pc.proxier_identity("kubeseal", pc.service_name()).await?;
//! let client = kseal_e2e::netns::client_without_retry(user.kubeconfig_path()).await?;
//! let cert = proxy_get(&client, &pc.proxy_path("/v1/cert.pem")).await?;
//! assert_eq!(cert.status, 200);
//! pc.finish().await
//! # }
//! ```
//!
//! Needs root (network namespaces, veth) and iproute2's `ip` (`cluster.sh` installs it). A crashed
//! test leaves its namespace behind; the next [`NetNs::create`] deletes namespaces of processes
//! that are gone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{
    Container, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod,
    PodSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{GetParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize as _;
use serde_json::json;

use crate::controller::{poll, Controller, ControllerBuilder, HttpResponse};
use crate::identity::Identity;
use crate::namespace::TestNamespace;

/// The controller's HTTP port inside the namespace (Bitnami's).
pub const CONTROLLER_PORT: u16 = 8080;
/// The controller's metrics port inside the namespace (Bitnami's).
pub const METRICS_PORT: u16 = 8081;
/// Bitnami's Service name (kubeseal's `--controller-name` default); every [`ProxiedController`]
/// has its own namespace, so they can all use it.
pub const DEFAULT_SERVICE_NAME: &str = "sealed-secrets-controller";
/// Name of the stored (never running) Pod the Endpoints point at.
pub const POD_NAME: &str = "sealed-secrets-controller-netns";
/// The scheduler named by that Pod: none exists, so it is never scheduled (nor run by a kubelet).
const NO_SCHEDULER: &str = "kseal-e2e-no-scheduler";

/// The /30 subnets handed out: `10.231.0.0/16`.
const SUBNET_PREFIX: [u8; 2] = [10, 231];
const SUBNETS: u32 = 1 << 14;
/// Prefix of our namespace names: `kseal-e2e-<pid>-<n>`.
const NETNS_PREFIX: &str = "kseal-e2e-";
/// The controller's RBAC manifests (Bitnami's roles), for the service proxier rules.
const RBAC_YAML: &str = include_str!("../../controller/deploy/rbac.yaml");

static COUNTER: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------------------------
// The network namespace.

/// A network namespace with a veth pair on a private /30, deleted on drop (also after a panic).
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_addr: Ipv4Addr,
    inner_addr: Ipv4Addr,
    /// Whether `ip netns add` succeeded (so Drop knows what to delete).
    added: bool,
    /// Claims the subnet among concurrent test processes (an abstract Unix socket: the kernel
    /// releases it when the process dies, so a crash never leaves a claim behind).
    _claim: UnixListener,
}

impl NetNs {
    /// Creates `kseal-e2e-<pid>-<n>` with veth `ks<pid>-<n>h` (host, `10.231.X.Y+1/30`) and
    /// `ks<pid>-<n>n` (inside, `.Y+2/30`), both up, and `lo` up inside.
    ///
    /// The subnet is one no other live test process claims and no route or address of the
    /// host overlaps. Namespaces left by test processes that are gone are deleted first.
    pub fn create() -> Result<NetNs> {
        check_prerequisites()?;
        delete_stale_namespaces();
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{NETNS_PREFIX}{pid}-{n}");
        let host_if = format!("ks{pid}-{n}h");
        let inner_if = format!("ks{pid}-{n}n");
        ensure!(
            host_if.len() <= 15,
            "interface name {host_if} is too long (pid {pid}, counter {n})"
        );

        let (host_addr, claim) = claim_subnet(pid, n)?;
        let [a, b, c, d] = host_addr.octets();
        let inner_addr = Ipv4Addr::new(a, b, c, d + 1);
        // From here on, Drop cleans up whatever of it exists.
        let mut ns = NetNs {
            name,
            host_if,
            host_addr,
            inner_addr,
            added: false,
            _claim: claim,
        };
        ip(&["netns", "add", &ns.name])?;
        ns.added = true;
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &inner_if,
            "netns",
            &ns.name,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{host_addr}/30"),
            "dev",
            &ns.host_if,
        ])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{inner_addr}/30"),
            "dev",
            &inner_if,
        ])?;
        ip(&["-n", &ns.name, "link", "set", &inner_if, "up"])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host side of the veth (`10.231.X.Y+1`).
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host_addr
    }

    /// The address inside the namespace (`10.231.X.Y+2`), reachable from the host.
    pub fn inner_addr(&self) -> Ipv4Addr {
        self.inner_addr
    }

    /// Takes the host side of the veth down (`up: false`: the namespace is cut off, packets
    /// are dropped, open connections stall) or up again.
    pub fn set_link(&self, up: bool) -> Result<()> {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]).map(|_| ())
    }

    /// `ip netns exec <name> <program>`: a command that runs inside (`ip` execs the program
    /// in place, so the child's PID is the program's and signals reach it).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end of a veth deletes the pair; the namespace goes once no process
        // runs in it any more.
        let _ = ip(&["link", "delete", &self.host_if]);
        if !self.added {
            return;
        }
        if let Err(e) = ip(&["netns", "delete", &self.name]) {
            eprintln!("kseal-e2e: deleting network namespace {}: {e:#}", self.name);
        }
    }
}

/// Root and `ip` are there.
fn check_prerequisites() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    ensure!(
        euid == "0",
        "network namespaces need root (the test runs as uid {euid}): run the e2e tests as root"
    );
    match Command::new("ip")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`ip -V` failed ({s}); is iproute2 installed?"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "iproute2's `ip` is not installed: `apt-get install -y iproute2` \
             (tests/control-plane/cluster.sh up installs it)"
        ),
        Err(e) => Err(anyhow!(e).context("running `ip -V`")),
    }
}

/// Runs `ip args…`; an error carries its stderr.
fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "`ip {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes `kseal-e2e-<pid>-<n>` namespaces whose process is gone (crashed or killed tests).
fn delete_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some((pid, n)) = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| Some((pid.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        else {
            continue;
        };
        let stale = if pid == std::process::id() {
            // A dead process with our (reused) PID, unless this process handed the name out
            // (the counter is read after the listing, so a name made meanwhile counts as ours).
            n >= COUNTER.load(Ordering::SeqCst)
        } else {
            !Path::new(&format!("/proc/{pid}")).exists()
        };
        if stale {
            // Another process may be at it too: errors are fine.
            if ip(&["netns", "delete", name]).is_ok() {
                eprintln!("kseal-e2e: deleted network namespace {name} of a gone process");
            }
        }
    }
}

/// The host address (`.1`) of a free /30 and the claim on it.
fn claim_subnet(pid: u32, n: u32) -> Result<(Ipv4Addr, UnixListener)> {
    let routes = host_routes()?;
    // Start at a different subnet per process so concurrent tests rarely even meet.
    let start = pid.wrapping_mul(2_654_435_761).wrapping_add(n) % SUBNETS;
    let mut overlapping = 0;
    for i in 0..SUBNETS {
        let idx = (start + i) % SUBNETS;
        let base = u32::from(Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], 0, 0)) + idx * 4;
        let network = Ipv4Addr::from(base);
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(
            format!("kseal-e2e-netns/{network}/30").as_bytes(),
        )
        .context("abstract socket address")?;
        let claim = match UnixListener::bind_addr(&addr) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(anyhow!(e).context("claiming a subnet (abstract Unix socket)")),
        };
        if routes
            .iter()
            .any(|&(net, len)| overlaps((base, 30), (net, len)))
        {
            overlapping += 1;
            continue;
        }
        // Routes may have changed while we looked at them: look again with the claim held.
        if host_routes()?
            .iter()
            .any(|&(net, len)| overlaps((base, 30), (net, len)))
        {
            overlapping += 1;
            continue;
        }
        return Ok((Ipv4Addr::from(base + 1), claim));
    }
    bail!(
        "no free /30 in {}.{}.0.0/16 ({overlapping} overlap routes of the host, the others are \
         claimed by running tests)",
        SUBNET_PREFIX[0],
        SUBNET_PREFIX[1]
    )
}

/// Every IPv4 destination of the host's routing tables (addresses are in the `local` table),
/// except default routes.
fn host_routes() -> Result<Vec<(u32, u32)>> {
    let out = ip(&["-4", "-o", "route", "show", "table", "all"])?;
    Ok(parse_routes(&out))
}

fn parse_routes(out: &str) -> Vec<(u32, u32)> {
    const TYPES: &[&str] = &[
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "nat",
    ];
    let mut routes = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let mut dest = words.next().unwrap_or_default();
        if TYPES.contains(&dest) {
            dest = words.next().unwrap_or_default();
        }
        let (addr, len) = match dest.split_once('/') {
            Some((a, l)) => (a, l.parse().unwrap_or(32)),
            None => (dest, 32),
        };
        if let Ok(a) = addr.parse::<Ipv4Addr>() {
            if len > 0 {
                routes.push((u32::from(a), len.min(32)));
            }
        }
    }
    routes
}

/// Whether two prefixes share an address.
fn overlaps((a, alen): (u32, u32), (b, blen): (u32, u32)) -> bool {
    let len = alen.min(blen);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

// ---------------------------------------------------------------------------------------------
// The API server forwarder.

/// A TCP relay from `host_addr:<port>` to the API server, on a thread of its own (so it keeps
/// working while a test's runtime is blocked). Stops on drop.
#[derive(Debug)]
pub struct ApiForwarder {
    local: SocketAddr,
    target: String,
    connections: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ApiForwarder {
    /// Listens on `bind:<free port>` and relays every connection to `target` (`host:port`).
    pub fn start(bind: IpAddr, target: &str) -> Result<ApiForwarder> {
        let listener = std::net::TcpListener::bind((bind, 0))
            .with_context(|| format!("binding the API server forwarder to {bind}"))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for the API server forwarder")?;
        let target_owned = target.to_owned();
        let counter = connections.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kseal-e2e-forward-{local}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("kseal-e2e: forwarder {local}: {e}");
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = &mut rx => return,
                            accepted = listener.accept() => {
                                let Ok((mut inbound, _)) = accepted else { continue };
                                counter.fetch_add(1, Ordering::Relaxed);
                                let target = target_owned.clone();
                                tokio::spawn(async move {
                                    match tokio::net::TcpStream::connect(target.as_str()).await {
                                        Ok(mut outbound) => {
                                            let _ = tokio::io::copy_bidirectional(
                                                &mut inbound,
                                                &mut outbound,
                                            )
                                            .await;
                                        }
                                        Err(e) => eprintln!(
                                            "kseal-e2e: forwarder {local} -> {target}: {e}"
                                        ),
                                    }
                                });
                            }
                        }
                    }
                });
                // Dropping the runtime here cancels the relays still open.
            })
            .context("starting the API server forwarder thread")?;
        Ok(ApiForwarder {
            local,
            target: target.to_owned(),
            connections,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where it relays to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connections accepted so far (proves the controller talked to the API server through it).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for ApiForwarder {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The API server of the current context of the kubeconfig at `path`: its `host:port`, the
/// name its certificate must be valid for (`tls-server-name`, else the URL's host) and the URL's
/// path (usually empty).
fn api_server_of(path: &Path) -> Result<(String, String, String)> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let context_name = kc
        .current_context
        .as_deref()
        .with_context(|| format!("{} has no current-context", path.display()))?;
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .with_context(|| format!("context {context_name} not in {}", path.display()))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .with_context(|| format!("cluster {cluster_name} not in {}", path.display()))?;
    let server = cluster
        .server
        .with_context(|| format!("cluster {cluster_name} has no server"))?;
    let rest = server
        .strip_prefix("https://")
        .with_context(|| format!("server {server} is not https://"))?;
    let (authority, url_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.to_owned()),
        _ => (authority, "443".to_owned()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tls_name = cluster.tls_server_name.unwrap_or_else(|| host.to_owned());
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((target, tls_name, url_path.to_owned()))
}

/// Writes a copy of kubeconfig `src` to `dst` (mode 0600) whose clusters name `server` and
/// `tls_server_name`. Everything else (CA, credentials, contexts) stays.
pub fn rewrite_kubeconfig(
    src: &Path,
    dst: &Path,
    server: &str,
    tls_server_name: &str,
) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let text =
        std::fs::read_to_string(src).with_context(|| format!("reading {}", src.display()))?;
    let mut doc = serde_yaml::Value::deserialize(serde_yaml::Deserializer::from_str(&text))
        .with_context(|| format!("parsing {}", src.display()))?;
    let clusters = doc
        .get_mut("clusters")
        .and_then(serde_yaml::Value::as_sequence_mut)
        .with_context(|| format!("{} has no clusters", src.display()))?;
    for entry in clusters {
        let cluster = entry
            .get_mut("cluster")
            .and_then(serde_yaml::Value::as_mapping_mut)
            .with_context(|| format!("a cluster entry of {} has no cluster", src.display()))?;
        cluster.insert("server".into(), server.into());
        cluster.insert("tls-server-name".into(), tls_server_name.into());
    }
    let out = serde_yaml::to_string(&doc).context("serializing kubeconfig")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .with_context(|| format!("creating {}", dst.display()))?;
    file.write_all(out.as_bytes())
        .with_context(|| format!("writing {}", dst.display()))
}

/// How [`ControllerBuilder::in_netns`] runs a controller: inside `netns`, listening on
/// `listen_ip:8080` (metrics `:8081`), with a kubeconfig whose server is `server` (the
/// forwarder) and whose `tls-server-name` is `tls_server_name`.
#[derive(Debug, Clone)]
pub struct NetnsPlacement {
    /// Network namespace name (`ip netns exec`).
    pub netns: String,
    /// The address the controller listens on.
    pub listen_ip: IpAddr,
    /// API server URL as seen from inside.
    pub server: String,
    /// The name the API server's certificate is valid for.
    pub tls_server_name: String,
}

impl NetNs {
    /// Starts an [`ApiForwarder`] from `host_addr` to the API server of the admin kubeconfig
    /// at `admin_kubeconfig`, and says how a controller in this namespace reaches it.
    pub fn forward_api_server(
        &self,
        admin_kubeconfig: &Path,
    ) -> Result<(ApiForwarder, NetnsPlacement)> {
        let (target, tls_server_name, url_path) = api_server_of(admin_kubeconfig)?;
        let forwarder = ApiForwarder::start(IpAddr::V4(self.host_addr), &target)?;
        let placement = NetnsPlacement {
            netns: self.name.clone(),
            listen_ip: IpAddr::V4(self.inner_addr),
            server: format!("https://{}{url_path}", forwarder.local_addr()),
            tls_server_name,
        };
        Ok((forwarder, placement))
    }
}

// ---------------------------------------------------------------------------------------------
// Service, Endpoints and the Pod behind them.

/// Stores Pod `pod` in `namespace` (never scheduled: an unknown scheduler, no token mount) and
/// sets its `status.podIP(s)` to `ip`, so Endpoints may name it. As admin.
pub async fn register_pod(client: &Client, namespace: &str, pod: &str, ip: IpAddr) -> Result<()> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let object = Pod {
        metadata: ObjectMeta {
            name: Some(pod.to_owned()),
            labels: Some(
                [("name".to_owned(), DEFAULT_SERVICE_NAME.to_owned())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            scheduler_name: Some(NO_SCHEDULER.to_owned()),
            automount_service_account_token: Some(false),
            containers: vec![Container {
                name: "controller".to_owned(),
                image: Some("kseal-e2e.invalid/kseal-controller:never-pulled".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    // The ServiceAccount admission plugin rejects Pods until the namespace's `default`
    // ServiceAccount exists (the service-account controller creates it a moment after the
    // namespace).
    poll(
        &format!("Pod {namespace}/{pod} to be created"),
        Duration::from_secs(30),
        || async {
            match pods.create(&PostParams::default(), &object).await {
                Ok(_) => Ok(()),
                Err(e) if crate::wait::api_error_code(&e) == Some(409) => Ok(()),
                Err(e) => Err(anyhow!(e).context(format!("creating Pod {namespace}/{pod}"))),
            }
        },
    )
    .await?;
    let status =
        json!({ "status": { "podIP": ip.to_string(), "podIPs": [{ "ip": ip.to_string() }] } });
    pods.patch_status(pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("setting status.podIPs of Pod {namespace}/{pod}"))?;
    Ok(())
}

/// Creates selector-less Service `service` in `namespace` with port 8080 (named `port_name`,
/// or unnamed as in Bitnami's static manifest) and Endpoints of the same name: address `ip`
/// with `targetRef` Pod `pod` (see [`register_pod`]), port 8080 with the same name. As admin.
///
/// Proxy paths: `http:<service>:<port_name>` for a named port, `http:<service>:` (or just
/// `<service>`) for the unnamed one.
pub async fn expose_service(
    client: &Client,
    namespace: &str,
    service: &str,
    port_name: Option<&str>,
    pod: &str,
    ip: IpAddr,
) -> Result<()> {
    let meta = || ObjectMeta {
        name: Some(service.to_owned()),
        labels: Some(
            [("name".to_owned(), service.to_owned())]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    };
    let svc = Service {
        metadata: meta(),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: port_name.map(str::to_owned),
                port: i32::from(CONTROLLER_PORT),
                target_port: Some(IntOrString::Int(i32::from(CONTROLLER_PORT))),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            type_: Some("ClusterIP".to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &svc)
        .await
        .with_context(|| format!("creating Service {namespace}/{service}"))?;
    let endpoints = Endpoints {
        metadata: meta(),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: ip.to_string(),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".to_owned()),
                    namespace: Some(namespace.to_owned()),
                    name: Some(pod.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: port_name.map(str::to_owned),
                port: i32::from(CONTROLLER_PORT),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
    };
    Api::<Endpoints>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &endpoints)
        .await
        .with_context(|| format!("creating Endpoints {namespace}/{service}"))?;
    Ok(())
}

/// The rules of Bitnami's Role `sealed-secrets-service-proxier` (`controller/deploy/rbac.yaml`:
/// `services` get, `services/proxy` create/get) with `sealed-secrets-controller` in every
/// resourceName replaced by `service`.
pub fn service_proxier_rules(service: &str) -> Result<Vec<PolicyRule>> {
    for doc in serde_yaml::Deserializer::from_str(RBAC_YAML) {
        let value = serde_yaml::Value::deserialize(doc).context("parsing rbac.yaml")?;
        if value["kind"].as_str() == Some("Role")
            && value["metadata"]["name"].as_str() == Some("sealed-secrets-service-proxier")
        {
            let mut rules: Vec<PolicyRule> = serde_yaml::from_value(value["rules"].clone())
                .context("rules of Role sealed-secrets-service-proxier")?;
            for rule in &mut rules {
                for name in rule.resource_names.iter_mut().flatten() {
                    *name = name.replace(DEFAULT_SERVICE_NAME, service);
                }
            }
            return Ok(rules);
        }
    }
    bail!("rbac.yaml has no Role sealed-secrets-service-proxier")
}

/// `/api/v1/namespaces/<namespace>/services/<spec>/proxy<path>`, e.g. spec `http:svc:http`,
/// path `/v1/cert.pem`.
pub fn service_proxy_path(namespace: &str, spec: &str, path: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/services/{spec}/proxy{path}")
}

/// A client for the current context of `kubeconfig` that does not retry: kube's default client
/// silently retries 429, 503 and 504 up to 15 times with exponential backoff (minutes in
/// total), which would hide the API server's 503 "no endpoints available" and the
/// controller's 429 from `/v1/verify`.
pub async fn client_without_retry(kubeconfig: &Path) -> Result<Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    config.default_retry = false;
    Client::try_from(config).with_context(|| format!("client for {}", kubeconfig.display()))
}

/// GET `path` (an API path, e.g. from [`service_proxy_path`]) with `client`; any status.
/// Use a [`client_without_retry`] to see 503 and 429 at once.
pub async fn proxy_get(client: &Client, path: &str) -> Result<HttpResponse> {
    proxy_request(client, path, None).await
}

/// POST `body` as `application/json` to `path` with `client`; any status.
pub async fn proxy_post(client: &Client, path: &str, body: Vec<u8>) -> Result<HttpResponse> {
    proxy_request(client, path, Some(body)).await
}

/// GET `path`, or POST `body` (`Content-Type: application/json`) to it, through `client`'s
/// connection to the API server; the answer whatever its status (kube's `request_text` would
/// turn a 409 into an error).
async fn proxy_request(client: &Client, path: &str, body: Option<Vec<u8>>) -> Result<HttpResponse> {
    let method = if body.is_some() { "POST" } else { "GET" };
    let what = || format!("{method} {path}");
    // kube's request builder makes the `http::Request` (the crate has no `http` dependency of
    // its own); only its URI is replaced.
    let base = kube::core::Request::new("/");
    let mut req = match body {
        Some(body) => base.create(&PostParams::default(), body),
        None => base.get("x", &GetParams::default()),
    }
    .with_context(what)?;
    *req.uri_mut() = path.parse().with_context(|| format!("bad path {path}"))?;
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.send(req.map(kube::client::Body::from)),
    )
    .await
    .map_err(|_| anyhow!("{} timed out", what()))?
    .with_context(what)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .with_context(|| format!("reading the answer to {}", what()))?;
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// The fixture.

/// A `kseal-controller` in a network namespace, reachable through the API server's service
/// proxy: [`NetNs`], [`ApiForwarder`], the [`Controller`] (own namespace, least-privilege
/// identity), a stored Pod with the inner address, and Service + Endpoints
/// [`service_name`](Self::service_name) (port 8080 named `http`).
///
/// End a test with [`finish`](Self::finish); dropped without it (a failed test), everything is
/// torn down best effort and the controller's log tail printed.
pub struct ProxiedController {
    // Field order is drop order: the process stops before its network goes.
    controller: Controller,
    forwarder: ApiForwarder,
    netns: NetNs,
    service: String,
}

impl std::fmt::Debug for ProxiedController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxiedController")
            .field("controller", &self.controller)
            .field("forwarder", &self.forwarder)
            .field("netns", &self.netns)
            .field("service", &self.service)
            .finish()
    }
}

impl ProxiedController {
    /// [`start_with`](Self::start_with) the harness's default builder.
    pub async fn start() -> Result<ProxiedController> {
        Self::start_with(Controller::builder().prefix("proxy")).await
    }

    /// Creates the network namespace and the forwarder, starts `builder`'s controller inside
    /// (ready: /healthz at `inner_addr:8080` and a key Secret, unless the builder says
    /// otherwise), stores the Pod and creates Service + Endpoints `sealed-secrets-controller`
    /// in the controller's namespace.
    pub async fn start_with(builder: ControllerBuilder) -> Result<ProxiedController> {
        let netns = NetNs::create()?;
        let admin_kubeconfig = crate::cluster::Cluster::shared()?.kubeconfig_path();
        let (forwarder, placement) = netns.forward_api_server(admin_kubeconfig)?;
        let controller = builder.in_netns(placement).start().await?;
        let pc = ProxiedController {
            controller,
            forwarder,
            netns,
            service: DEFAULT_SERVICE_NAME.to_owned(),
        };
        let client = pc.admin_client()?;
        let ip = IpAddr::V4(pc.netns.inner_addr());
        register_pod(client, pc.namespace(), POD_NAME, ip).await?;
        pc.expose(&pc.service, Some("http")).await?;
        Ok(pc)
    }

    /// The controller.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The controller, e.g. to restart it.
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// The controller's namespace (`--controller-namespace`), where the Service is.
    pub fn namespace(&self) -> &str {
        self.controller.namespace()
    }

    /// The Service's name (`--controller-name`): `sealed-secrets-controller`.
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// An admin client.
    pub fn admin_client(&self) -> Result<&Client> {
        self.controller.admin_client()
    }

    /// The controller's namespace as a [`TestNamespace`] (to create identities in it).
    pub fn test_namespace(&self) -> Result<&TestNamespace> {
        self.controller
            .test_namespace()
            .context("controller namespace already deleted")
    }

    /// The network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// The API server forwarder.
    pub fn forwarder(&self) -> &ApiForwarder {
        &self.forwarder
    }

    /// The proxy path of `path` on the Service's named port:
    /// `/api/v1/namespaces/<ns>/services/http:sealed-secrets-controller:http/proxy<path>`.
    pub fn proxy_path(&self, path: &str) -> String {
        service_proxy_path(
            self.namespace(),
            &format!("http:{}:http", self.service),
            path,
        )
    }

    /// Another Service + Endpoints `service` for the controller (e.g. with `port_name` `None`,
    /// the unnamed port of Bitnami's static manifest).
    pub async fn expose(&self, service: &str, port_name: Option<&str>) -> Result<()> {
        expose_service(
            self.admin_client()?,
            self.namespace(),
            service,
            port_name,
            POD_NAME,
            IpAddr::V4(self.netns.inner_addr()),
        )
        .await
    }

    /// A ServiceAccount `name` of the controller's namespace with exactly Bitnami's service
    /// proxier rules for Service `service` ([`service_proxier_rules`]): what every kubeseal
    /// user gets.
    pub async fn proxier_identity(&self, name: &str, service: &str) -> Result<Identity> {
        self.test_namespace()?
            .identity(name, service_proxier_rules(service)?)
            .await
    }

    /// Ends the test: the controller stops (exit 0 required), its namespace is deleted, then
    /// the forwarder and the network namespace go.
    pub async fn finish(self) -> Result<()> {
        let ProxiedController {
            controller,
            forwarder,
            netns,
            ..
        } = self;
        let result = controller.finish().await;
        drop(forwarder);
        drop(netns);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap() {
        let net = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        assert!(overlaps((net("10.231.0.0"), 30), (net("10.231.0.2"), 32)));
        assert!(overlaps((net("10.231.0.0"), 30), (net("10.0.0.0"), 8)));
        assert!(!overlaps((net("10.231.0.4"), 30), (net("10.231.0.2"), 32)));
        assert!(!overlaps((net("10.231.0.0"), 30), (net("192.0.2.0"), 24)));
    }

    #[test]
    fn routes_parse() {
        let out = "default via 192.0.2.1 dev eth0\n\
                   10.231.0.0/30 dev ks1-0h proto kernel scope link src 10.231.0.1\n\
                   local 10.231.0.1 dev ks1-0h table local proto kernel scope host src 10.231.0.1\n\
                   broadcast 10.231.0.3 dev ks1-0h table local proto kernel scope link\n";
        let net = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            parse_routes(out),
            vec![
                (net("10.231.0.0"), 30),
                (net("10.231.0.1"), 32),
                (net("10.231.0.3"), 32)
            ]
        );
    }

    #[test]
    fn proxier_rules_name_the_service() {
        let rules = service_proxier_rules("my-svc").unwrap();
        let names: Vec<&String> = rules
            .iter()
            .flat_map(|r| r.resource_names.iter().flatten())
            .collect();
        assert!(names.iter().any(|n| *n == "http:my-svc:"));
        assert!(names.iter().any(|n| *n == "http:my-svc:http"));
        assert!(names.iter().all(|n| !n.contains(DEFAULT_SERVICE_NAME)));
    }
}
