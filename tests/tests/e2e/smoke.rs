//! Smoke test: the control plane really is one (storage, CRDs with a status
//! subresource, garbage collection, RBAC), proven with the harness's own API.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kseal_e2e::kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kseal_e2e::kube::{Api, Client};
use kseal_e2e::{eventually, is_api_error, rule, TestNamespace};
use serde_json::json;

/// Generous: the garbage collector and namespace controller poll and resync.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn smoke() -> Result<()> {
    let ns = TestNamespace::new("smoke").await?;
    let client = ns.client().clone();

    // A Secret round-trips through etcd.
    let secrets = ns.api::<Secret>();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("s1".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("password".into(), "hunter2".into())])),
        ..Default::default()
    };
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .context("create Secret")?;
    let read = secrets.get("s1").await.context("get Secret")?;
    let value = read
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .context("Secret lost its data")?;
    ensure!(value.0 == b"hunter2", "Secret data changed: {:?}", value.0);

    custom_resource_with_status(&ns, &client).await?;

    // A ConfigMap owned by the Secret is garbage-collected after the Secret is deleted.
    let configmaps = ns.api::<ConfigMap>();
    let owned = ConfigMap {
        metadata: ObjectMeta {
            name: Some("owned-by-s1".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Secret".into(),
                name: "s1".into(),
                uid: created.metadata.uid.clone().context("Secret has no uid")?,
                ..Default::default()
            }]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Default::default()
    };
    configmaps
        .create(&PostParams::default(), &owned)
        .await
        .context("create owned ConfigMap")?;
    secrets
        .delete("s1", &DeleteParams::default())
        .await
        .context("delete Secret")?;
    eventually(
        "the garbage collector to delete the owned ConfigMap",
        CONTROLLER_TIMEOUT,
        || async {
            let got = configmaps.get("owned-by-s1").await;
            if is_api_error(&got, 404) {
                Ok(Some(()))
            } else {
                got.map(|_| None).map_err(Into::into)
            }
        },
    )
    .await?;

    // A non-admin identity can do what its Role allows and nothing else.
    let reader = ns
        .identity(
            "configmap-reader",
            vec![rule(&[""], &["configmaps"], &["get", "list"])],
        )
        .await?;
    let kubeconfig = std::fs::read_to_string(reader.kubeconfig_path())?;
    ensure!(
        !kubeconfig.contains("client-key-data"),
        "the identity's kubeconfig must not carry the admin's key"
    );
    let as_reader = reader.client().await?;
    let reader_configmaps: Api<ConfigMap> = Api::namespaced(as_reader.clone(), ns.name());
    reader_configmaps
        .list(&Default::default())
        .await
        .context("listing ConfigMaps inside the Role was refused")?;
    let listed_secrets = Api::<Secret>::namespaced(as_reader.clone(), ns.name())
        .list(&Default::default())
        .await;
    ensure!(
        is_api_error(&listed_secrets, 403),
        "listing Secrets (outside the Role) gave {listed_secrets:?}, not 403"
    );
    let created_cm = reader_configmaps
        .create(&PostParams::default(), &owned)
        .await;
    ensure!(
        is_api_error(&created_cm, 403),
        "creating a ConfigMap (verb outside the Role) gave {created_cm:?}, not 403"
    );
    let other_ns = Api::<ConfigMap>::namespaced(as_reader, "default")
        .list(&Default::default())
        .await;
    ensure!(
        is_api_error(&other_ns, 403),
        "listing ConfigMaps of another namespace gave {other_ns:?}, not 403"
    );

    ns.cleanup().await
}

/// A CRD with a status subresource: create it, create an instance, write its
/// status through `/status`, and check the main resource ignores status writes.
async fn custom_resource_with_status(ns: &TestNamespace, client: &Client) -> Result<()> {
    // CRDs are cluster-scoped: a per-namespace group keeps concurrent tests apart,
    // and the ownerReference lets the garbage collector remove it with the namespace.
    let group = format!("{}.e2e.kseal.test", ns.name());
    let mut crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "properties": { "size": { "type": "integer" } } },
                        "status": { "type": "object", "properties": { "phase": { "type": "string" } } },
                    },
                }},
            }],
        },
    }))?;
    crd.metadata.owner_references = Some(vec![ns.owner_reference()]);
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd_name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), &crd)
        .await
        .context("create CRD")?;
    eventually("the CRD to be established", CONTROLLER_TIMEOUT, || async {
        let crd = crds.get(&crd_name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        Ok(established.then_some(()))
    })
    .await?;

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let widget = DynamicObject::new("w1", &resource)
        .within(ns.name())
        .data(json!({ "spec": { "size": 3 } }));
    // Established can precede the resource being served for a moment.
    eventually(
        "the new resource to be served",
        CONTROLLER_TIMEOUT,
        || async {
            let created = widgets.create(&PostParams::default(), &widget).await;
            if is_api_error(&created, 404) {
                return Ok(None);
            }
            Ok(Some(created.context("create Widget")?))
        },
    )
    .await?;

    let patched = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
        )
        .await
        .context("patch Widget status")?;
    ensure!(
        patched.data["status"]["phase"] == "Ready",
        "status not written: {:?}",
        patched.data
    );
    ensure!(
        patched.data["spec"]["size"] == 3,
        "status write changed spec: {:?}",
        patched.data
    );

    // With the status subresource on, the main resource ignores status changes.
    let main = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 4 }, "status": { "phase": "Hacked" } })),
        )
        .await
        .context("patch Widget")?;
    ensure!(
        main.data["spec"]["size"] == 4,
        "spec not written: {:?}",
        main.data
    );
    ensure!(
        main.data["status"]["phase"] == "Ready",
        "main resource wrote status: {:?}",
        main.data
    );
    Ok(())
}
