//! Rendering the controller's manifests for an [`Install`]: RBAC rewritten for its name and
//! namespace, Services, NetworkPolicy, Deployment, PodDisruptionBudget, and the YAML or JSON
//! output (see the module docs of `install`).

use anyhow::{bail, Context as _, Result};
use kseal_sealing::key_secret::DEFAULT_KEY_PREFIX;
use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::cluster::DEFAULT_CONTROLLER_NAME;

use super::*;

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
        // One JSON object per line: what log pipelines (Loki, Fluent Bit, Cloud Logging) parse.
        "--log-format=json".into(),
    ];
    if install.old_gc_behavior {
        args.push("--old-gc-behavior".into());
    }
    if install.webhook.is_some() {
        args.extend([
            format!("--webhook-listen-addr=:{WEBHOOK_PORT}"),
            format!("--webhook-service={}", install.webhook_service()),
            format!("--webhook-secret={}", install.webhook_secret()),
            format!("--webhook-configuration={}", install.name),
        ]);
    }
    args
}

/// The ValidatingWebhookConfiguration `<name>`: SealedSecret creates and updates go to the
/// controller's `<name>-webhook` Service, `failurePolicy` from `--webhook-failure-policy`
/// (`Ignore` by default), [`WEBHOOK_TIMEOUT_SECONDS`], and a namespace selector that skips
/// namespaces labelled `sealedsecrets.kseal.dev/admission=disabled` and those of
/// `--webhook-exclude-namespace`. No caBundle: the controller puts its CA there.
pub fn webhook_configuration(install: &Install, webhook: &Webhook) -> Value {
    let mut expressions = vec![json!({
        "key": WEBHOOK_OPT_OUT_LABEL,
        "operator": "NotIn",
        "values": [WEBHOOK_OPT_OUT_VALUE],
    })];
    if !webhook.exclude_namespaces.is_empty() {
        expressions.push(json!({
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": webhook.exclude_namespaces,
        }));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": install.name,
            "labels": install.labels_with_name(&install.name),
        },
        "webhooks": [{
            "name": "sealedsecrets.kseal.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": webhook.failure_policy.as_str(),
            "matchPolicy": "Equivalent",
            "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
            "clientConfig": {
                "service": {
                    "name": install.webhook_service(),
                    "namespace": install.namespace,
                    "path": WEBHOOK_PATH,
                    "port": 443,
                },
            },
            "rules": [{
                "apiGroups": [kseal_crds::GROUP],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": [kseal_crds::PLURAL],
                "scope": "Namespaced",
            }],
            "namespaceSelector": {"matchExpressions": expressions},
        }],
    })
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
        let mut ports = vec![json!({"port": HTTP_PORT, "protocol": "TCP"})];
        if install.webhook.is_some() {
            // The API server calls the webhook from the same addresses.
            ports.push(json!({"port": WEBHOOK_PORT, "protocol": "TCP"}));
        }
        ingress.push(json!({
            "ports": ports,
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
    let mut out = vec![
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
    ];
    if install.webhook.is_some() {
        let webhook = install.webhook_service();
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": webhook,
                "namespace": install.namespace,
                "labels": install.labels_with_name(&webhook),
            },
            "spec": {
                "type": "ClusterIP",
                "selector": install.selector(),
                // Every replica answers reviews, leader or not.
                "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}],
            },
        }));
    }
    out
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
                        "ports": container_ports(install),
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

fn container_ports(install: &Install) -> Value {
    let mut ports = vec![
        json!({"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}),
        json!({"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}),
    ];
    if install.webhook.is_some() {
        ports.push(json!({"name": "webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"}));
    }
    json!(ports)
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
/// replicas: `minAvailable: 1` of 1 replica would block node drains), and last the
/// ValidatingWebhookConfiguration (unless `--no-admission-webhook`).
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
    if let Some(webhook) = &install.webhook {
        out.push(webhook_configuration(install, webhook));
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
