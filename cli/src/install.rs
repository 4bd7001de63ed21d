//! `kseal install`: the controller's manifests for a namespace and name, and applying them.
//!
//! [`render`] builds, in this order: the SealedSecret CRD ([`kseal_crds::crd::crd`]), the
//! ServiceAccount and least-privilege RBAC of `controller/deploy/rbac.yaml` (rewritten for the
//! namespace and name; Secret `delete` only with `--old-gc-behavior`, the one controller mode
//! that deletes Secrets), the Services `<name>` and `<name>-metrics`, the NetworkPolicy
//! `<name>` ([`network_policy`]), the Deployment `<name>` and its PodDisruptionBudget. The
//! output is deterministic (keys sorted, fixed order).
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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::ValueEnum;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kseal_gocompat::duration;
use kseal_sealing::key_secret::DEFAULT_KEY_PREFIX;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::Client;
use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::cluster::{explain, ClusterArgs, DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE};

/// The controller's RBAC in Bitnami's layout and names; [`render`] rewrites it.
pub const RBAC_YAML: &str = include_str!("../../controller/deploy/rbac.yaml");

/// The field manager of `--apply`.
pub const FIELD_MANAGER: &str = "kseal";

/// Bitnami's container name (kept so that an upgrade in place replaces their container).
pub const CONTAINER_NAME: &str = "sealed-secrets-controller";

/// Default number of replicas.
pub const DEFAULT_REPLICAS: u32 = 2;

/// Default `--wait` timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest `--name`: the metrics Service `<name>-metrics` must stay a 63-character DNS label.
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

    /// The pod selector: Bitnami's, `name: <name>`.
    pub fn selector(&self) -> Value {
        json!({ "name": self.name })
    }
}

/// The name of an RBAC object of `rbac.yaml` (Bitnami's name) for this install: Bitnami's for
/// the default name; otherwise `secrets-unsealer` → `<name>-secrets-unsealer`,
/// `sealed-secrets-controller` → `<name>`, `sealed-secrets-<role>` → `<name>-<role>`.
pub fn rbac_object_name(install: &Install, bitnami: &str) -> Result<String> {
    if install.is_default_name() {
        return Ok(bitnami.to_string());
    }
    let name = &install.name;
    Ok(if bitnami == DEFAULT_CONTROLLER_NAME {
        name.clone()
    } else if bitnami == "secrets-unsealer" {
        format!("{name}-secrets-unsealer")
    } else if let Some(role) = bitnami.strip_prefix("sealed-secrets-") {
        format!("{name}-{role}")
    } else {
        bail!("controller/deploy/rbac.yaml names an object kseal install cannot rename: {bitnami}")
    })
}

/// A `resourceNames` entry of `rbac.yaml` for this install.
fn resource_name(install: &Install, bitnami: &str) -> Result<String> {
    let name = &install.name;
    Ok(match bitnami {
        // The Lease (--leader-election-id) and the Service.
        DEFAULT_CONTROLLER_NAME => name.clone(),
        "http:sealed-secrets-controller:" => format!("http:{name}:"),
        "http:sealed-secrets-controller:http" => format!("http:{name}:http"),
        crate::cluster::DEFAULT_CERT_CONFIGMAP => install.cert_configmap(),
        "sealed-secrets-cert-renewal" => kseal_crds::renewal_configmap(&install.cert_configmap()),
        // The legacy key Secret is named after the key prefix.
        DEFAULT_KEY_PREFIX => DEFAULT_KEY_PREFIX.to_string(),
        other => bail!(
            "controller/deploy/rbac.yaml names a resource kseal install cannot rename: {other}"
        ),
    })
}

/// The ServiceAccount and RBAC objects of `rbac.yaml`, rewritten for `install`. With
/// `--old-gc-behavior` the ClusterRole's Secret rule also grants `delete` (rbac.yaml has none:
/// otherwise the controller never deletes a Secret, garbage collection does).
pub fn rbac(install: &Install) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(RBAC_YAML) {
        let mut v = Value::deserialize(doc).context("parsing controller/deploy/rbac.yaml")?;
        if v.is_null() {
            continue;
        }
        let meta = v
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .context("an object of rbac.yaml has no metadata")?;
        let bitnami = meta
            .get("name")
            .and_then(Value::as_str)
            .context("an object of rbac.yaml has no name")?
            .to_string();
        let name = rbac_object_name(install, &bitnami)?;
        meta.insert("name".into(), json!(name));
        if meta.contains_key("namespace") {
            meta.insert("namespace".into(), json!(install.namespace));
        }
        meta.insert("labels".into(), install.labels_with_name(&name));
        if let Some(role_ref) = v.get_mut("roleRef").and_then(Value::as_object_mut) {
            let target = role_ref
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            role_ref.insert("name".into(), json!(rbac_object_name(install, &target)?));
        }
        for subject in v
            .get_mut("subjects")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if subject["kind"] == "ServiceAccount" {
                subject["name"] = json!(install.name);
                subject["namespace"] = json!(install.namespace);
            }
        }
        for rule in v
            .get_mut("rules")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(names) = rule.get_mut("resourceNames").and_then(Value::as_array_mut) {
                for n in names.iter_mut() {
                    let bitnami = n.as_str().unwrap_or_default().to_string();
                    *n = json!(resource_name(install, &bitnami)?);
                }
            }
            let all_secrets = rule["resources"] == json!(["secrets"])
                && rule["apiGroups"] == json!([""])
                && rule.get("resourceNames").is_none();
            if install.old_gc_behavior && bitnami == "secrets-unsealer" && all_secrets {
                if let Some(verbs) = rule.get_mut("verbs").and_then(Value::as_array_mut) {
                    verbs.push(json!("delete"));
                }
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// The controller's arguments.
pub fn controller_args(install: &Install) -> Vec<String> {
    let mut args = vec![
        "--update-status".into(),
        "--leader-elect".into(),
        format!("--leader-election-id={}", install.name),
        format!("--cert-configmap={}", install.cert_configmap()),
        format!("--key-prefix={DEFAULT_KEY_PREFIX}"),
    ];
    if install.old_gc_behavior {
        args.push("--old-gc-behavior".into());
    }
    args
}

/// The NetworkPolicy `<name>`: ingress to the controller's pods only on the HTTP port from
/// the CIDRs of `--network-policy-from` (where the API server's service proxy connects
/// from), and on the metrics port from pods of the namespaces `--metrics-namespace-selector`
/// selects. Egress is not restricted (the API server's address is the cluster's business).
/// Kubelet probes come from the pod's own node, which NetworkPolicy implementations admit
/// whatever the policy says; so does an API server running on that node.
pub fn network_policy(install: &Install, np: &NetworkPolicy) -> Value {
    let mut ingress = Vec::new();
    if !np.http_from.is_empty() {
        let from: Vec<Value> = np
            .http_from
            .iter()
            .map(|cidr| json!({"ipBlock": {"cidr": cidr}}))
            .collect();
        ingress.push(json!({
            "ports": [{"port": HTTP_PORT, "protocol": "TCP"}],
            "from": from,
        }));
    }
    ingress.push(json!({
        "ports": [{"port": METRICS_PORT, "protocol": "TCP"}],
        "from": [{"namespaceSelector": {"matchLabels": np.metrics_namespaces}}],
    }));
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": install.name,
            "namespace": install.namespace,
            "labels": install.labels_with_name(&install.name),
        },
        "spec": {
            "podSelector": {"matchLabels": install.selector()},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    })
}

fn services(install: &Install) -> Vec<Value> {
    let metrics = format!("{}-metrics", install.name);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": install.name,
                "namespace": install.namespace,
                "labels": install.labels_with_name(&install.name),
            },
            "spec": {
                "type": "ClusterIP",
                "selector": install.selector(),
                // Named, so kubeseal and kseal proxy through `http:<name>:http`.
                "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP"}],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": metrics,
                "namespace": install.namespace,
                "labels": install.labels_with_name(&metrics),
            },
            "spec": {
                "type": "ClusterIP",
                "selector": install.selector(),
                "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT, "protocol": "TCP"}],
            },
        }),
    ]
}

fn deployment(install: &Install) -> Value {
    let mut pod_labels = install.labels();
    pod_labels.insert("name".into(), install.name.clone());
    let probe = json!({
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": install.name,
            "namespace": install.namespace,
            "labels": install.labels_with_name(&install.name),
        },
        "spec": {
            "replicas": install.replicas,
            // Bitnami's selector: immutable, so it must stay theirs for an upgrade in place.
            "selector": {"matchLabels": install.selector()},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": install.name,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 1001,
                        "fsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [{
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": "kubernetes.io/hostname",
                                    "labelSelector": {"matchLabels": install.selector()},
                                },
                            }],
                        },
                    },
                    "containers": [{
                        "name": CONTAINER_NAME,
                        "image": install.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["kseal-controller"],
                        "args": controller_args(install),
                        "env": [
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "ports": [
                            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
                            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                        ],
                        "livenessProbe": probe,
                        "readinessProbe": probe,
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": {
                            "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    })
}

fn pod_disruption_budget(install: &Install) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": install.name,
            "namespace": install.namespace,
            "labels": install.labels_with_name(&install.name),
        },
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": install.selector()},
        },
    })
}

/// Every object, in apply order: CRD, ServiceAccount, RBAC, Services, NetworkPolicy (unless
/// `--no-network-policy`; before the pods exist), Deployment, PDB (the PDB only with 2 or more
/// replicas: `minAvailable: 1` of 1 replica would block node drains).
pub fn render(install: &Install) -> Result<Vec<Value>> {
    install.validate()?;
    let mut crd = serde_json::to_value(kseal_crds::crd::crd()).context("serializing the CRD")?;
    crd["metadata"]["labels"] = json!(install.labels());
    let mut out = vec![crd];
    out.extend(rbac(install)?);
    out.extend(services(install));
    if let Some(np) = &install.network_policy {
        out.push(network_policy(install, np));
    }
    out.push(deployment(install));
    if install.replicas >= 2 {
        out.push(pod_disruption_budget(install));
    }
    Ok(out)
}

/// The objects as a YAML stream (`---` before each document, keys sorted as kubectl prints).
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&kseal_gocompat::to_k8s_yaml(o)?);
    }
    Ok(out)
}

/// The objects as one indented JSON `v1 List`, with a final newline.
pub fn to_json(objects: &[Value]) -> Result<String> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut s = kseal_gocompat::to_go_json(&list, true)?;
    s.push('\n');
    Ok(s)
}

/// Where an object goes in the API.
struct Target {
    resource: ApiResource,
    namespaced: bool,
    /// kubectl's `<resource>.<group>` prefix for messages.
    display: String,
}

fn target(obj: &Value) -> Result<Target> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (plural, namespaced) = match kind {
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Service" => ("services", true),
        "Deployment" => ("deployments", true),
        "PodDisruptionBudget" => ("poddisruptionbudgets", true),
        "NetworkPolicy" => ("networkpolicies", true),
        other => bail!("kseal install does not know where {other} objects go"),
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let display = if group.is_empty() {
        kind.to_ascii_lowercase()
    } else {
        format!("{}.{group}", kind.to_ascii_lowercase())
    };
    Ok(Target {
        resource: ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
        },
        namespaced,
        display,
    })
}

/// One line on a failed request, with what to do. An API error is its message (kube's own
/// text adds a dump of the Status), 403 with install's own hint; a transport error is
/// [`explain`]'s line with the root cause.
fn explain_install(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{} (RBAC: installing creates a CRD, a ClusterRole and bindings, so it needs cluster-admin rights; run as a cluster admin, or print the manifests without --apply and hand them to one)",
            s.message
        ),
        kube::Error::Api(s) if s.code == 401 || s.message.is_empty() => explain(e),
        kube::Error::Api(s) => format!("{} ({}, HTTP {})", s.message, s.reason, s.code),
        // A transport error's own text is vague ("client error (Connect)"): add its root cause.
        _ => {
            let top = e.to_string();
            let mut root: &dyn std::error::Error = e;
            while let Some(next) = root.source() {
                root = next;
            }
            let root = root.to_string();
            if root == top || top.contains(&root) {
                explain(e)
            } else {
                explain(e).replacen(&top, &format!("{top}: {root}"), 1)
            }
        }
    }
}

/// Whether the API server serves PodDisruptionBudgets in `policy/v1` (Kubernetes 1.21+).
/// This is also the first request, so an unreachable cluster fails here.
pub async fn serves_policy_v1(client: &Client) -> Result<bool> {
    match client.list_api_group_resources("policy/v1").await {
        Ok(list) => Ok(list
            .resources
            .iter()
            .any(|r| r.name == "poddisruptionbudgets")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(anyhow!("cannot reach the cluster: {}", explain_install(&e))),
    }
}

/// Refuses early when the namespace does not exist (what to do: create it). Without the right
/// to read namespaces the check is skipped and the apply reports what it must.
async fn check_namespace(client: &Client, namespace: &str) -> Result<()> {
    match Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!(
            "namespace {namespace:?} does not exist: create it first (kubectl create namespace {namespace}), or choose another with --namespace"
        ),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(()),
        Err(e) => bail!("cannot read namespace {namespace:?}: {}", explain_install(&e)),
    }
}

/// The ClusterRoleBinding is cluster-wide: refuses to take it away from another install (same
/// name, other namespace) while that namespace still exists.
async fn check_cluster_binding(
    client: &Client,
    install: &Install,
    objects: &[Value],
) -> Result<()> {
    let Some(binding) = objects.iter().find(|o| o["kind"] == "ClusterRoleBinding") else {
        return Ok(());
    };
    let binding_name = binding["metadata"]["name"].as_str().unwrap_or_default();
    let existing = match Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt(binding_name)
        .await
    {
        Ok(Some(b)) => b,
        Ok(None) | Err(_) => return Ok(()),
    };
    for s in existing.subjects.unwrap_or_default() {
        let Some(other) = s.namespace.filter(|n| n != &install.namespace) else {
            continue;
        };
        if s.kind != "ServiceAccount" {
            continue;
        }
        let alive = matches!(
            Api::<Namespace>::all(client.clone()).get_opt(&other).await,
            Ok(Some(_)) | Err(_)
        );
        if alive {
            bail!(
                "ClusterRoleBinding {binding_name} already binds the controller of namespace {other:?} (ServiceAccount {}): installing here would take it away from that install; give this one another --name, or remove that install first",
                s.name
            );
        }
    }
    Ok(())
}

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Server-side dry run: validated by the API server, nothing persisted.
    pub dry_run: bool,
}

/// Applies `objects` (from [`render`]) in order by server-side apply, forced, as field manager
/// `kseal`. `report` gets one kubectl-style line per object. Checks first that the cluster is
/// reachable, that the namespace exists and that the ClusterRoleBinding is not another
/// install's.
pub async fn apply(
    client: &Client,
    install: &Install,
    objects: &[Value],
    options: ApplyOptions,
    report: &mut dyn FnMut(&str),
) -> Result<()> {
    let policy_v1 = serves_policy_v1(client).await?;
    check_namespace(client, &install.namespace).await?;
    check_cluster_binding(client, install, objects).await?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if options.dry_run {
        params = params.dry_run();
    }
    for obj in objects {
        let mut obj = obj.clone();
        if obj["kind"] == "PodDisruptionBudget" && !policy_v1 {
            obj["apiVersion"] = json!("policy/v1beta1");
        }
        let t = target(&obj)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let api: Api<DynamicObject> = if t.namespaced {
            Api::namespaced_with(client.clone(), &install.namespace, &t.resource)
        } else {
            Api::all_with(client.clone(), &t.resource)
        };
        let what = if t.namespaced {
            format!("{} {}/{name}", t.resource.kind, install.namespace)
        } else {
            format!("{} {name}", t.resource.kind)
        };
        api.patch(&name, &params, &Patch::Apply(&obj))
            .await
            .map_err(|e| anyhow!("cannot apply {what}: {}", explain_install(&e)))?;
        report(&format!(
            "{}/{name} serverside-applied{}",
            t.display,
            if options.dry_run {
                " (server dry run)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Still going, with kubectl's description.
    Waiting(String),
    /// Every replica is updated and available.
    Done,
    /// It cannot finish (progress deadline exceeded).
    Failed(String),
}

/// `kubectl rollout status` for one Deployment, with the rule that every desired replica is
/// updated and available: observedGeneration ≥ generation, updatedReplicas == replicas,
/// availableReplicas == replicas, and no old replica left.
pub fn rollout_status(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
    {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Rollout::Failed(format!(
                "it exceeded its progress deadline{}",
                c.message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Rollout::Waiting(format!(
            "{updated} of {want} new replicas have been updated"
        ))
    } else if total > updated {
        Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            total - updated
        ))
    } else if available < want {
        Rollout::Waiting(format!(
            "{available} of {want} updated replicas are available"
        ))
    } else {
        Rollout::Done
    }
}

/// Waits until the Deployment is available ([`rollout_status`]), polling every second;
/// `progress` gets each new state. Fails with one line after `timeout`.
pub async fn wait_for_rollout(
    client: &Client,
    install: &Install,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &install.namespace);
    let who = format!("deployment \"{}/{}\"", install.namespace, install.name);
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let state =
            match tokio::time::timeout(left.max(Duration::from_millis(1)), api.get(&install.name))
                .await
            {
                Ok(Ok(d)) => rollout_status(&d),
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                    bail!("{who} does not exist (was it deleted?)")
                }
                Ok(Err(e @ kube::Error::Api(_))) => {
                    bail!("cannot read {who}: {}", explain_install(&e))
                }
                // Transient (connection) errors: retry until the deadline.
                Ok(Err(e)) => Rollout::Waiting(format!("cannot read it: {}", explain(&e))),
                Err(_) => Rollout::Waiting(last.clone()),
            };
        match state {
            Rollout::Done => {
                progress(&format!("{who} successfully rolled out"));
                return Ok(());
            }
            Rollout::Failed(why) => bail!("{who} failed to roll out: {why}"),
            Rollout::Waiting(msg) => {
                if msg != last {
                    progress(&format!("Waiting for {who} rollout to finish: {msg}..."));
                    last = msg;
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {} waiting for {who} to become available ({last}): check its pods (kubectl -n {} get pods -l name={}) and that image {} can be pulled, or raise --timeout",
                format_duration(timeout),
                install.namespace,
                install.name,
                install.image
            );
        }
        tokio::time::sleep(
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
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
mod tests {
    use super::*;

    fn named(name: &str) -> Install {
        Install {
            name: name.into(),
            ..Install::default()
        }
    }

    #[test]
    fn default_names_are_bitnamis() {
        let objs = render(&Install::default()).unwrap();
        let names: Vec<String> = objs
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "CustomResourceDefinition/sealedsecrets.bitnami.com",
                "ServiceAccount/sealed-secrets-controller",
                "ClusterRole/secrets-unsealer",
                "ClusterRoleBinding/sealed-secrets-controller",
                "Role/sealed-secrets-key-admin",
                "RoleBinding/sealed-secrets-controller",
                "Role/sealed-secrets-cert-reader",
                "RoleBinding/sealed-secrets-cert-reader",
                "Role/sealed-secrets-service-proxier",
                "RoleBinding/sealed-secrets-service-proxier",
                "Role/sealed-secrets-key-renewer",
                "Service/sealed-secrets-controller",
                "Service/sealed-secrets-controller-metrics",
                "NetworkPolicy/sealed-secrets-controller",
                "Deployment/sealed-secrets-controller",
                "PodDisruptionBudget/sealed-secrets-controller",
            ]
        );
    }

    #[test]
    fn other_names_are_prefixed() {
        let i = named("kseal");
        assert_eq!(
            rbac_object_name(&i, "secrets-unsealer").unwrap(),
            "kseal-secrets-unsealer"
        );
        assert_eq!(
            rbac_object_name(&i, "sealed-secrets-controller").unwrap(),
            "kseal"
        );
        assert_eq!(
            rbac_object_name(&i, "sealed-secrets-key-admin").unwrap(),
            "kseal-key-admin"
        );
        assert_eq!(i.cert_configmap(), "kseal-cert");
        assert_eq!(Install::default().cert_configmap(), "sealed-secrets-cert");
        // Every name and resourceName of rbac.yaml is known.
        rbac(&i).unwrap();
    }

    /// The verbs of the ClusterRole's rule on all Secrets.
    fn secret_verbs(install: &Install) -> Vec<String> {
        let objs = rbac(install).unwrap();
        let role = objs.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
        let rule = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resources"] == json!(["secrets"]))
            .unwrap();
        serde_json::from_value(rule["verbs"].clone()).unwrap()
    }

    #[test]
    fn secret_delete_only_with_old_gc_behavior() {
        let plain = Install::default();
        assert_eq!(
            secret_verbs(&plain),
            ["get", "list", "create", "update", "watch"]
        );
        assert!(!controller_args(&plain).contains(&"--old-gc-behavior".to_string()));
        // No other rule grants delete on anything.
        assert!(!serde_json::to_string(&rbac(&plain).unwrap())
            .unwrap()
            .contains("\"delete\""));

        let old_gc = Install {
            old_gc_behavior: true,
            ..named("kseal")
        };
        assert_eq!(
            secret_verbs(&old_gc),
            ["get", "list", "create", "update", "watch", "delete"]
        );
        assert!(controller_args(&old_gc).contains(&"--old-gc-behavior".to_string()));
    }

    #[test]
    fn network_policy_rules() {
        let np = NetworkPolicy {
            http_from: vec!["10.0.0.0/24".into(), "fd00::/64".into()],
            metrics_namespaces: parse_label_selector("team=obs,kubernetes.io/metadata.name=mon")
                .unwrap(),
        };
        let v = network_policy(&named("kseal"), &np);
        assert_eq!(
            v["spec"]["podSelector"]["matchLabels"],
            json!({"name": "kseal"})
        );
        assert_eq!(v["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(
            v["spec"]["ingress"],
            json!([
                {"ports": [{"port": 8080, "protocol": "TCP"}],
                 "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "fd00::/64"}}]},
                {"ports": [{"port": 8081, "protocol": "TCP"}],
                 "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon", "team": "obs"}}}]},
            ])
        );
        // No CIDR: no rule for the HTTP port (a rule without `from` would admit everyone).
        let v = network_policy(&named("kseal"), &NetworkPolicy::default());
        let ingress = v["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0]["ports"][0]["port"], 8081);
        assert!(ingress
            .iter()
            .all(|r| r["from"].as_array().is_some_and(|f| !f.is_empty())));

        for bad in ["10.0.0.1", "10.0.0.0/33", "fd00::/129", "x/8", ""] {
            let i = Install {
                network_policy: Some(NetworkPolicy {
                    http_from: vec![bad.into()],
                    ..NetworkPolicy::default()
                }),
                ..Install::default()
            };
            assert!(i.validate().is_err(), "{bad:?}");
        }
        for bad in ["a", "=b", "a=b=c", "-a=b", "a=b,", "x/y/z=1", "a=-b"] {
            assert!(parse_label_selector(bad).is_err(), "{bad:?}");
        }
        assert!(parse_label_selector("").unwrap().is_empty());
        assert!(parse_label_selector("a=").is_ok());
    }

    #[test]
    fn validation() {
        assert!(Install::default().validate().is_ok());
        for bad in ["", "Foo", "-a", "a-", "1abc", "a_b", &"a".repeat(56)] {
            assert!(named(bad).validate().is_err(), "{bad:?}");
        }
        assert!(named(&"a".repeat(55)).validate().is_ok());
        let zero = Install {
            replicas: 0,
            ..Install::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        for bad in ["", "s", "10d", "-1", "-1m", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(20)), "20s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
    }

    #[test]
    fn rollout_rule() {
        let d = |generation: i64,
                 observed: i64,
                 replicas: i32,
                 updated: i32,
                 available: i32,
                 total: i32| {
            serde_json::from_value::<Deployment>(json!({
                "metadata": {"name": "x", "generation": generation},
                "spec": {"replicas": replicas, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "updatedReplicas": updated,
                           "availableReplicas": available, "replicas": total},
            }))
            .unwrap()
        };
        assert!(matches!(
            rollout_status(&d(2, 1, 2, 2, 2, 2)),
            Rollout::Waiting(_)
        ));
        assert!(matches!(
            rollout_status(&d(2, 2, 2, 1, 2, 2)),
            Rollout::Waiting(_)
        ));
        assert!(matches!(
            rollout_status(&d(2, 2, 2, 2, 1, 2)),
            Rollout::Waiting(_)
        ));
        assert!(matches!(
            rollout_status(&d(2, 2, 2, 2, 2, 3)),
            Rollout::Waiting(_)
        ));
        assert_eq!(rollout_status(&d(2, 2, 2, 2, 2, 2)), Rollout::Done);
    }
}
