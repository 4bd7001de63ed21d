//! The SealedSecret CRD on a real API server: it installs, and SealedSecrets as kubeseal and
//! kseal write them (old and new forms) validate unchanged; what the schema requires is refused.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kseal_crds::{SealedSecret, SealedSecretCondition, SealedSecretStatus};
use kseal_e2e::kube::api::{Patch, PatchParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{eventually, is_api_error, TestNamespace};

/// Applies the CRD (server-side apply, idempotent: other tests need it too) and waits until it
/// is established.
async fn install_crd(client: kseal_e2e::kube::Client) -> Result<()> {
    let crds = Api::<CustomResourceDefinition>::all(client);
    let crd = kseal_crds::crd::crd();
    crds.patch(
        "sealedsecrets.bitnami.com",
        &PatchParams::apply("kseal-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("apply the SealedSecret CRD")?;
    eventually(
        "the CRD to be established",
        Duration::from_secs(60),
        || async {
            let c = crds.get("sealedsecrets.bitnami.com").await?;
            let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            Ok(ok.then_some(()))
        },
    )
    .await
}

fn parse(yaml: &str, ns: &str) -> Result<SealedSecret> {
    let mut ss: SealedSecret = serde_yaml::from_str(yaml)?;
    ss.metadata.namespace = Some(ns.to_string());
    Ok(ss)
}

#[tokio::test]
async fn crd_accepts_sealed_secrets_as_tools_write_them() -> Result<()> {
    let ns = TestNamespace::new("crd").await?;
    install_crd(ns.client().clone()).await?;
    let api = ns.api::<SealedSecret>();

    // kseal's own output (the committed example) and an older kubeseal file with
    // creationTimestamp: null in both metadata blocks and a namespace-wide annotation.
    let example = parse(
        include_str!("../../../keys-example/sealed-secret.yaml"),
        ns.name(),
    )?;
    api.create(&PostParams::default(), &example)
        .await
        .context("create the example SealedSecret")?;
    let old = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  creationTimestamp: null\n  name: old\n  annotations:\n    sealedsecrets.bitnami.com/namespace-wide: \"true\"\nspec:\n  encryptedData:\n    foo: AgBy3i4OJSWK+PiTySYZZA==\n  template:\n    data: null\n    metadata:\n      creationTimestamp: null\n      name: old\n      labels: {app: web}\n      annotations:\n        sealedsecrets.bitnami.com/namespace-wide: \"true\"\n      finalizers: [example.com/x]\n      extraUnknownField: kept\n    type: kubernetes.io/dockerconfigjson\n    immutable: true\n".to_string();
    let created = api
        .create(&PostParams::default(), &parse(&old, ns.name())?)
        .await
        .context("create an old kubeseal-style SealedSecret")?;
    ensure!(created.spec.template.immutable == Some(true));
    ensure!(created.spec.template.type_.as_deref() == Some("kubernetes.io/dockerconfigjson"));

    // The status subresource: a status written through it is kept, with observedGeneration.
    let mut with_status = created.clone();
    with_status.status = Some(SealedSecretStatus {
        observed_generation: created.metadata.generation,
        conditions: Some(vec![SealedSecretCondition {
            type_: "Synced".into(),
            status: "True".into(),
            ..Default::default()
        }]),
    });
    let stored = api
        .replace_status("old", &PostParams::default(), &with_status)
        .await
        .context("write status")?;
    ensure!(
        stored.status.and_then(|s| s.observed_generation) == created.metadata.generation,
        "status not stored"
    );

    // encryptedData is required, as in Bitnami's CRD.
    let mut missing: serde_json::Value = serde_json::to_value(parse(
        &old.replace("name: old", "name: missing"),
        ns.name(),
    )?)?;
    missing["spec"]
        .as_object_mut()
        .context("spec")?
        .remove("encryptedData");
    let raw: Api<kseal_e2e::kube::api::DynamicObject> = Api::namespaced_with(
        ns.client().clone(),
        ns.name(),
        &kseal_e2e::kube::api::ApiResource::erase::<SealedSecret>(&()),
    );
    let refused = raw
        .create(&PostParams::default(), &serde_json::from_value(missing)?)
        .await;
    ensure!(
        is_api_error(&refused, 422),
        "a SealedSecret without encryptedData was accepted: {refused:?}"
    );
    ns.cleanup().await
}
