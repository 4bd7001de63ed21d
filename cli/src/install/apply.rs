//! Applying rendered objects by server-side apply, after the checks that keep an install from
//! taking over another one (see the module docs of `install`).

use anyhow::{anyhow, bail, Result};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::Client;
use serde_json::{json, Value};

use crate::cluster::explain;

use super::*;

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
        "ValidatingWebhookConfiguration" => ("validatingwebhookconfigurations", false),
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
pub(super) fn explain_install(e: &kube::Error) -> String {
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
