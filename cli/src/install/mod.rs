//! `kseal install`: the controller's manifests for a namespace and name, and applying them.
//!
//! [`render`] builds, in this order: the SealedSecret CRD ([`kseal_crds::crd::crd`]), the
//! ServiceAccount and least-privilege RBAC of `controller/deploy/rbac.yaml` (rewritten for the
//! namespace and name; Secret `delete` only with `--old-gc-behavior`, the one controller mode
//! that deletes Secrets), the Services `<name>`, `<name>-metrics` and `<name>-webhook`, the
//! NetworkPolicy `<name>` ([`network_policy`]), the Deployment `<name>`, its
//! PodDisruptionBudget, and the ValidatingWebhookConfiguration `<name>` ([`webhook_configuration`];
//! its caBundle is the controller's to fill). The output is deterministic (keys sorted, fixed
//! order).
//!
//! Names follow Bitnami's static manifest (docs/compatibility.md, “Deployment conventions”) so that installing over a Bitnami
//! install upgrades it in place: Deployment, Service and ServiceAccount are `<name>`, the pod
//! selector is Bitnami's `name: <name>` (a Deployment's selector is immutable), the container
//! is `sealed-secrets-controller`. For the default name the RBAC objects keep Bitnami's names
//! (ClusterRole `secrets-unsealer`, Roles `sealed-secrets-key-admin` and
//! `sealed-secrets-service-proxier`, ...); for another name ([`rbac_object_name`]) the
//! ClusterRole is `<name>-secrets-unsealer`, the bindings that were `sealed-secrets-controller`
//! are `<name>`, and every other `sealed-secrets-<role>` becomes `<name>-<role>`, so two
//! installs with different names never share an object.
//!
//! [`apply`] sends them by server-side apply (field manager `kseal`, forced, so it takes over
//! the fields of a Bitnami install; optionally as a server-side dry run). The API server may
//! lack `policy/v1` (before Kubernetes 1.21): the PodDisruptionBudget is then sent as
//! `policy/v1beta1`, which has the same fields. [`wait_for_rollout`] then waits as
//! `kubectl rollout status` does.
//!
//! Files: this one holds what to install ([`Install`], its flags' validation, durations);
//! `render.rs` the manifests, `apply.rs` the API calls, `wait.rs` the rollout wait, `tests.rs`
//! their unit tests.

mod apply;
mod render;
mod wait;

pub use apply::*;
pub use render::*;
pub use wait::*;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::ValueEnum;
use kseal_gocompat::duration;
use serde_json::{json, Value};

use crate::cluster::{ClusterArgs, DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE};

/// The controller's RBAC in Bitnami's layout and names; [`render`] rewrites it.
pub const RBAC_YAML: &str = include_str!("../../../controller/deploy/rbac.yaml");

/// The field manager of `--apply`.
pub const FIELD_MANAGER: &str = "kseal";

/// Bitnami's container name (kept so that an upgrade in place replaces their container).
pub const CONTAINER_NAME: &str = "sealed-secrets-controller";

/// Default number of replicas.
pub const DEFAULT_REPLICAS: u32 = 2;

/// Default `--wait` timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest `--name`: the Services `<name>-metrics` and `<name>-webhook` must stay 63-character
/// DNS labels.
pub const MAX_NAME_LEN: usize = 63 - "-metrics".len();

/// The controller's HTTP port (`/healthz`, `/v1/cert.pem`, ...).
pub const HTTP_PORT: u16 = 8080;
/// The controller's metrics port.
pub const METRICS_PORT: u16 = 8081;

/// The default image. No image is published: build and push one, or pass `--image`.
pub fn default_image() -> String {
    format!(
        "ghcr.io/kseal/kseal-controller:v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `kseal install -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum InstallFormat {
    /// YAML documents, each starting with `---`
    #[default]
    Yaml,
    /// One JSON `v1 List`
    Json,
}

/// `kseal install --dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Send everything to the API server, which validates it and persists nothing
    Server,
}

/// What to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// The controller's namespace.
    pub namespace: String,
    /// The controller's name (Deployment, Service, ServiceAccount, Lease).
    pub name: String,
    /// The controller image.
    pub image: String,
    /// Replicas of the Deployment.
    pub replicas: u32,
    /// The controller deletes the Secret of a deleted SealedSecret itself (its
    /// `--old-gc-behavior`), which needs Secret `delete` in the ClusterRole.
    pub old_gc_behavior: bool,
    /// Who may reach the controller's ports; `None`: no NetworkPolicy.
    pub network_policy: Option<NetworkPolicy>,
    /// The validating admission webhook; `None`: not installed (`--no-admission-webhook`).
    pub webhook: Option<Webhook>,
}

/// The admission webhook's `failurePolicy` (`--webhook-failure-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FailurePolicy {
    /// Admit when the webhook cannot answer (controller down): GitOps is never blocked
    #[default]
    #[value(name = "Ignore")]
    Ignore,
    /// Refuse when the webhook cannot answer: nothing unchecked gets in
    #[value(name = "Fail")]
    Fail,
}

impl FailurePolicy {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }
}

/// The label that opts a namespace out of the webhook: `kubectl label namespace NS
/// sealedsecrets.kseal.dev/admission=disabled`.
pub const WEBHOOK_OPT_OUT_LABEL: &str = "sealedsecrets.kseal.dev/admission";

/// The value of [`WEBHOOK_OPT_OUT_LABEL`] that opts out.
pub const WEBHOOK_OPT_OUT_VALUE: &str = "disabled";

/// The webhook's port in the container (TLS).
pub const WEBHOOK_PORT: u16 = 8443;

/// The webhook's `timeoutSeconds`: well under the API server's request timeout (60 s) and its
/// own default (10 s); the controller answers 429/503 before it (docs/controller.md).
pub const WEBHOOK_TIMEOUT_SECONDS: u32 = 5;

/// The webhook's path on the controller.
pub const WEBHOOK_PATH: &str = "/v1/admission/sealedsecrets";

/// How the admission webhook is installed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Webhook {
    /// `--webhook-failure-policy`.
    pub failure_policy: FailurePolicy,
    /// `--webhook-exclude-namespace`: namespaces never sent to the webhook, by the
    /// `kubernetes.io/metadata.name` label (Kubernetes 1.21+ sets it on every namespace).
    pub exclude_namespaces: Vec<String>,
}

impl Default for Install {
    fn default() -> Self {
        Install {
            namespace: DEFAULT_CONTROLLER_NAMESPACE.to_string(),
            name: DEFAULT_CONTROLLER_NAME.to_string(),
            image: default_image(),
            replicas: DEFAULT_REPLICAS,
            old_gc_behavior: false,
            network_policy: Some(NetworkPolicy::default()),
            webhook: Some(Webhook::default()),
        }
    }
}

/// The default `--metrics-namespace-selector`: the namespace named `monitoring` (where
/// kube-prometheus and most Prometheus installs run), by the label Kubernetes 1.21+ puts on
/// every namespace.
pub const DEFAULT_METRICS_NAMESPACE_SELECTOR: &str = "kubernetes.io/metadata.name=monitoring";

/// The ingress the NetworkPolicy admits ([`network_policy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// CIDRs that may reach the HTTP port: where the API server's service proxy connects
    /// from (`--network-policy-from`). Empty: no one beyond what the CNI always lets in.
    pub http_from: Vec<String>,
    /// Labels of the namespaces whose pods may scrape the metrics port
    /// (`--metrics-namespace-selector`); empty: every namespace.
    pub metrics_namespaces: BTreeMap<String, String>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            http_from: Vec::new(),
            metrics_namespaces: parse_label_selector(DEFAULT_METRICS_NAMESPACE_SELECTOR)
                .expect("the default selector parses"),
        }
    }
}

/// `key=value[,key=value…]` as `matchLabels` (empty text: no labels, every namespace).
/// Errors name the position, not the text.
pub fn parse_label_selector(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for (i, pair) in text.split(',').enumerate() {
        let bad = || {
            anyhow!(
                "invalid --metrics-namespace-selector (pair {}): give key=value pairs separated by commas, such as kubernetes.io/metadata.name=monitoring, or '' for every namespace",
                i + 1
            )
        };
        let (k, v) = pair.trim().split_once('=').ok_or_else(bad)?;
        if !is_label_key(k) || !is_label_value(v) {
            return Err(bad());
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn is_label_key(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| is_dns_label(l, 63))
                && is_label_name(name)
        }
        None => is_label_name(k),
    }
}

fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_label_name(v)
}

/// An IPv4 or IPv6 CIDR (`10.0.0.0/16`, `fd00::/8`, `192.0.2.7/32`).
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_dns_label(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

impl Install {
    /// Checks the values, with one line on what to use instead.
    pub fn validate(&self) -> Result<()> {
        // A Service name must be an RFC 1035 label: an RFC 1123 label starting with a letter.
        if !is_dns_label(&self.name, MAX_NAME_LEN) || !self.name.as_bytes()[0].is_ascii_lowercase()
        {
            bail!(
                "invalid --name {:?}: use lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, at most {MAX_NAME_LEN} characters (it names a Service and \"<name>-metrics\")",
                self.name
            );
        }
        if !is_dns_label(&self.namespace, 63) {
            bail!(
                "invalid --namespace {:?}: a namespace is lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
                self.namespace
            );
        }
        if self.replicas == 0 {
            bail!("invalid --replicas 0: the controller needs at least 1 replica (2 or more for high availability)");
        }
        if let Some(np) = &self.network_policy {
            for (i, cidr) in np.http_from.iter().enumerate() {
                if !is_cidr(cidr) {
                    bail!(
                        "invalid --network-policy-from (value {}): give an IPv4 or IPv6 CIDR such as 10.0.0.0/16 or fd00::/64",
                        i + 1
                    );
                }
            }
        }
        for (i, ns) in self
            .webhook
            .iter()
            .flat_map(|w| &w.exclude_namespaces)
            .enumerate()
        {
            if !is_dns_label(ns, 63) {
                bail!(
                    "invalid --webhook-exclude-namespace (value {}): give a namespace name (lowercase letters, digits and '-')",
                    i + 1
                );
            }
        }
        if self.image.is_empty() || self.image.chars().any(char::is_whitespace) {
            bail!(
                "invalid --image {:?}: give an image reference such as registry.example/kseal-controller:v1",
                self.image
            );
        }
        Ok(())
    }

    fn is_default_name(&self) -> bool {
        self.name == DEFAULT_CONTROLLER_NAME
    }

    /// The certificate ConfigMap: `sealed-secrets-cert` for the default name, else
    /// `<name>-cert` (the rule of [`ClusterArgs::cert_configmap`], which `kseal cert` uses).
    pub fn cert_configmap(&self) -> String {
        ClusterArgs {
            controller_name: self.name.clone(),
            controller_namespace: self.namespace.clone(),
            ..ClusterArgs::default()
        }
        .cert_configmap()
    }

    /// The labels every object carries (plus Bitnami's `name` where Bitnami has it).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "kseal".into()),
            ("app.kubernetes.io/instance".into(), self.name.clone()),
            ("app.kubernetes.io/component".into(), "controller".into()),
            ("app.kubernetes.io/managed-by".into(), "kseal".into()),
        ])
    }

    fn labels_with_name(&self, name: &str) -> Value {
        let mut l = self.labels();
        l.insert("name".into(), name.to_string());
        json!(l)
    }

    /// The webhook's Service, `<name>-webhook`.
    pub fn webhook_service(&self) -> String {
        format!("{}-webhook", self.name)
    }

    /// The Secret the controller keeps the webhook's serving certificate in.
    pub fn webhook_secret(&self) -> String {
        format!("{}-webhook-tls", self.name)
    }

    /// The pod selector: Bitnami's, `name: <name>`.
    pub fn selector(&self) -> Value {
        json!({ "name": self.name })
    }
}

/// A number of seconds, or a Go duration such as `90s`, `5m`, `1m30s` or `1.5h` (kubectl's
/// `--timeout`); Go's parser lives in `kseal_gocompat::duration`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(secs) = s.parse() {
            return Ok(Duration::from_secs(secs));
        }
    }
    duration::parse_non_negative(s).map_err(|e| {
        anyhow!(
            "invalid --timeout {s:?}: {e}; give seconds or a duration such as 300s, 5m or 1m30s"
        )
    })
}

/// `20s`, `5m0s`: how a timeout is reported (Go's `Duration.String`).
pub fn format_duration(d: Duration) -> String {
    duration::format_std(d)
}

#[cfg(test)]
mod tests;
