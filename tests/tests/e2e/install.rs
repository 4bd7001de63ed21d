//! `kseal install` against the real API server: the rendered manifests pass a server-side dry
//! run, `--apply` creates every object and is idempotent, an install over a Bitnami-layout
//! install upgrades it in place and keeps its key Secrets, `--wait` follows the Deployment's
//! rollout, and RBAC denial or a missing namespace give one line that says what to do.
//!
//! Each test installs into its own namespace under the namespace's (unique) name, so the
//! cluster-scoped objects (`<name>-secrets-unsealer`, `<name>`) never collide; after an apply
//! they get an ownerReference to the namespace, so the garbage collector removes them with it.
//! Only the Bitnami test uses the default name (Bitnami's global names), and waits for any
//! other holder of those names to disappear first. The CRD is shared (applying it is
//! idempotent) and never deleted.
//!
//! There is no kubelet: pods never run. For `--wait` the test does the kubelet's part and
//! writes the pods' Ready condition through the status subresource; the real
//! kube-controller-manager (ReplicaSet and Deployment controllers) then derives the
//! Deployment's status. Writing the Deployment's status directly does not work here: the
//! deployment controller rewrites it from the ReplicaSet within milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::ByteString;
use kseal_e2e::bins::{kseal, Run};
use kseal_e2e::kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kseal_e2e::kube::core::ApiResource;
use kseal_e2e::{eventually, rule, Cluster, TestNamespace};
use serde_json::{json, Value};

/// The image the tests install (no image is published; pods never run here anyway).
const IMAGE: &str = "registry.example/kseal-controller:e2e";

/// Runs `kseal install ARGS` as the admin (or with the `--kubeconfig` ARGS name) off the
/// async runtime.
async fn install(args: &[&str]) -> Result<Run> {
    let mut all: Vec<String> = vec!["install".into()];
    if !args.contains(&"--kubeconfig") {
        all.push("--kubeconfig".into());
        all.push(Cluster::shared()?.kubeconfig_path().display().to_string());
    }
    all.extend(args.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        kseal(&refs, None)
    })
    .await
    .context("joining the kseal run")?
}

fn succeeded(run: &Run, what: &str) -> Result<()> {
    ensure!(
        run.code == Some(0),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        run.code,
        run.stdout,
        run.stderr
    );
    Ok(())
}

/// Exit 2 and exactly one `kseal: error:` line on stderr, the last one, containing `expect`.
fn one_line_error<'a>(run: &'a Run, expect: &str) -> Result<&'a str> {
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("kseal: error: "))
        .collect();
    ensure!(
        run.code == Some(2) && errors.len() == 1 && run.stderr.trim_end().ends_with(errors[0]),
        "expected exit 2 and one error line, got exit {:?}, stderr: {}",
        run.code,
        run.stderr
    );
    eprintln!("as expected: {}", errors[0]);
    ensure!(
        errors[0].contains(expect),
        "the error should contain {expect:?}: {}",
        errors[0]
    );
    Ok(errors[0])
}

/// The objects `kseal install ARGS -o json` renders.
async fn rendered(args: &[&str]) -> Result<Vec<Value>> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = install(&all).await?;
    succeeded(&run, "kseal install -o json")?;
    let list: Value = serde_json::from_str(&run.stdout).context("parsing the JSON List")?;
    Ok(list["items"].as_array().context("no items")?.clone())
}

/// An Api for a rendered object (the PDB in whichever policy version the server serves).
async fn api_for(ns: &TestNamespace, obj: &Value) -> Result<Api<DynamicObject>> {
    let client = ns.client().clone();
    let kind = obj["kind"].as_str().context("kind")?;
    let mut api_version = obj["apiVersion"].as_str().context("apiVersion")?.to_owned();
    if kind == "PodDisruptionBudget" && client.list_api_group_resources("policy/v1").await.is_err()
    {
        api_version = "policy/v1beta1".into();
    }
    let plural = match kind {
        "NetworkPolicy" => "networkpolicies".to_owned(),
        _ => format!("{}s", kind.to_ascii_lowercase()),
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let ar = ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.clone(),
        kind: kind.to_owned(),
        plural,
    };
    Ok(match obj["metadata"]["namespace"].as_str() {
        Some(n) => Api::namespaced_with(client, n, &ar),
        None => Api::all_with(client, &ar),
    })
}

/// Gives the install's cluster-scoped RBAC objects an ownerReference to the test namespace,
/// so the garbage collector deletes them with it (the CRD is shared and stays).
async fn adopt_cluster_objects(ns: &TestNamespace, objects: &[Value]) -> Result<()> {
    let patch = json!({"metadata": {"ownerReferences": [ns.owner_reference()]}});
    for obj in objects {
        if !matches!(
            obj["kind"].as_str(),
            Some("ClusterRole" | "ClusterRoleBinding")
        ) {
            continue;
        }
        let name = obj["metadata"]["name"].as_str().context("name")?;
        api_for(ns, obj)
            .await?
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("adopting {} {name}", obj["kind"]))?;
    }
    Ok(())
}

/// The flag sets whose manifests must pass the server-side dry run: the default, every
/// NetworkPolicy and RBAC option, and none (one replica: no PodDisruptionBudget).
const VARIANTS: &[&[&str]] = &[
    &[],
    &[
        "--old-gc-behavior",
        "--network-policy-from",
        "10.0.0.0/8,192.0.2.7/32",
        "--network-policy-from",
        "fd00::/64",
        "--metrics-namespace-selector",
        "team=observability,kubernetes.io/metadata.name=monitoring",
    ],
    &["--metrics-namespace-selector", ""],
    &["--no-network-policy", "--replicas", "1"],
    &[
        "--webhook-failure-policy",
        "Fail",
        "--webhook-exclude-namespace",
        "ci,scratch",
    ],
];

#[tokio::test]
async fn server_side_dry_run_is_clean_and_persists_nothing() -> Result<()> {
    let ns = TestNamespace::new("install-dry").await?;
    let name = ns.name().to_owned();
    for variant in VARIANTS {
        let mut args = vec!["--namespace", ns.name(), "--name", &name, "--image", IMAGE];
        args.extend_from_slice(variant);
        let objects = rendered(&args).await?;
        let np = objects.iter().any(|o| o["kind"] == "NetworkPolicy");
        ensure!(
            np != variant.contains(&"--no-network-policy"),
            "{variant:?}: NetworkPolicy rendered: {np}"
        );

        let mut dry = args.clone();
        dry.push("--dry-run=server");
        let run = install(&dry).await?;
        succeeded(&run, &format!("kseal install --dry-run=server {variant:?}"))?;
        let lines: Vec<&str> = run.stdout.lines().collect();
        ensure!(
            lines.len() == objects.len()
                && lines
                    .iter()
                    .all(|l| l.ends_with(" serverside-applied (server dry run)")),
            "{variant:?}: one dry-run line per object expected:\n{}",
            run.stdout
        );
        ensure!(
            !np || lines
                .iter()
                .any(|l| l.starts_with("networkpolicy.networking.k8s.io/")),
            "{variant:?}: no dry-run line for the NetworkPolicy:\n{}",
            run.stdout
        );

        // Nothing was created (the CRD may exist: other tests install it).
        for obj in objects
            .iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition")
        {
            let oname = obj["metadata"]["name"].as_str().context("name")?;
            let found = api_for(&ns, obj).await?.get_opt(oname).await?;
            ensure!(
                found.is_none(),
                "{variant:?}: the dry run created {} {oname}",
                obj["kind"]
            );
        }
    }
    ns.cleanup().await
}

#[tokio::test]
async fn apply_creates_every_object_and_is_idempotent() -> Result<()> {
    let ns = TestNamespace::new("install-apply").await?;
    let name = ns.name().to_owned();
    let args = [
        "--namespace",
        ns.name(),
        "--name",
        &name,
        "--image",
        IMAGE,
        // No webhook on the shared control plane: it has no node, so the API server could not
        // reach it and every other test's SealedSecret would wait for its timeout (the
        // webhook is tested as installed, on a node: admission::).
        "--no-admission-webhook",
        "--apply",
    ];
    let objects = rendered(&args[..7]).await?;

    let run = install(&args).await?;
    adopt_cluster_objects(&ns, &objects).await?;
    succeeded(&run, "kseal install --apply")?;
    ensure!(
        run.stdout.lines().count() == objects.len(),
        "one line per object expected:\n{}",
        run.stdout
    );

    // Every object exists, applied by field manager "kseal".
    for obj in &objects {
        let oname = obj["metadata"]["name"].as_str().context("name")?;
        let got = api_for(&ns, obj)
            .await?
            .get_opt(oname)
            .await?
            .with_context(|| format!("{} {oname} was not created", obj["kind"]))?;
        let managers: Vec<_> = got
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| m.operation.as_deref() == Some("Apply"))
            .filter_map(|m| m.manager.clone())
            .collect();
        ensure!(
            managers.iter().any(|m| m == "kseal"),
            "{} {oname}: apply managers {managers:?}",
            obj["kind"]
        );
    }
    let deployments = ns.api::<Deployment>();
    let before = deployments.get(&name).await?;
    let spec = before.spec.as_ref().context("spec")?;
    ensure!(spec.replicas == Some(2), "replicas {:?}", spec.replicas);
    let template = spec.template.spec.as_ref().context("pod spec")?;
    ensure!(template.service_account_name.as_deref() == Some(name.as_str()));
    ensure!(template.containers[0].image.as_deref() == Some(IMAGE));
    let binding = Api::<ClusterRoleBinding>::all(ns.client().clone())
        .get(&name)
        .await?;
    let subject = &binding.subjects.as_ref().context("subjects")?[0];
    ensure!(
        subject.name == name && subject.namespace.as_deref() == Some(ns.name()),
        "ClusterRoleBinding subject {subject:?}"
    );

    // The NetworkPolicy as served: metrics from the monitoring namespace, nothing else.
    let np = api_for(&ns, find_kind(&objects, "NetworkPolicy")?)
        .await?
        .get(&name)
        .await?;
    ensure!(
        np.data["spec"]["podSelector"] == json!({"matchLabels": {"name": name}})
            && np.data["spec"]["ingress"]
                == json!([{
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                    "ports": [{"port": 8081, "protocol": "TCP"}],
                }]),
        "NetworkPolicy spec {}",
        np.data["spec"]
    );
    ensure!(
        run.stderr.contains("--network-policy-from CIDR"),
        "no note about the HTTP port: {}",
        run.stderr
    );
    let unsealer = format!("{name}-secrets-unsealer");
    ensure!(
        !secret_verbs(&ns, &unsealer)
            .await?
            .contains(&"delete".to_owned()),
        "ClusterRole {unsealer} grants Secret delete without --old-gc-behavior"
    );

    // Again: nothing changes (the same generation: the spec is the same).
    let run = install(&args).await?;
    succeeded(&run, "the second kseal install --apply")?;
    let after = deployments.get(&name).await?;
    ensure!(
        after.metadata.generation == before.metadata.generation
            && after.metadata.uid == before.metadata.uid,
        "re-applying changed the Deployment: generation {:?} → {:?}",
        before.metadata.generation,
        after.metadata.generation
    );

    // --old-gc-behavior adds Secret delete and the controller's flag; applying without it
    // again takes both away (server-side apply drops what the manager no longer sets).
    for old_gc in [true, false] {
        let mut again = args.to_vec();
        if old_gc {
            again.push("--old-gc-behavior");
        }
        let run = install(&again).await?;
        succeeded(&run, &format!("kseal install --apply (old gc: {old_gc})"))?;
        let verbs = secret_verbs(&ns, &unsealer).await?;
        ensure!(
            verbs.contains(&"delete".to_owned()) == old_gc,
            "old gc {old_gc}: Secret verbs {verbs:?}"
        );
        let d = deployments.get(&name).await?;
        let container_args = d
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers[0].args.clone().unwrap_or_default())
            .unwrap_or_default();
        ensure!(
            container_args.iter().any(|a| a == "--old-gc-behavior") == old_gc,
            "old gc {old_gc}: args {container_args:?}"
        );
    }
    ns.cleanup().await
}

/// The first rendered object of `kind`.
fn find_kind<'a>(objects: &'a [Value], kind: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .with_context(|| format!("no {kind} rendered"))
}

/// The verbs of ClusterRole `name`'s rules on all Secrets, as the API server serves them.
async fn secret_verbs(ns: &TestNamespace, name: &str) -> Result<Vec<String>> {
    let role = Api::<ClusterRole>::all(ns.client().clone())
        .get(name)
        .await?;
    Ok(role
        .rules
        .iter()
        .flatten()
        .filter(|r| {
            r.resources.iter().flatten().any(|x| x == "secrets")
                && r.resource_names.as_ref().is_none_or(Vec::is_empty)
        })
        .flat_map(|r| r.verbs.clone())
        .collect())
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).context("building a fixture")
}

/// Bitnami's static manifest (controller.yaml, docs/compatibility.md, “Deployment conventions”) in namespace `ns`: its names,
/// labels, the Deployment with selector `name: sealed-secrets-controller`, the Service with an
/// UNNAMED port. Cluster-scoped objects are owned by the test namespace.
async fn create_bitnami_install(ns: &TestNamespace) -> Result<()> {
    const NAME: &str = "sealed-secrets-controller";
    let n = ns.name();
    let client = ns.client().clone();
    let pp = PostParams::default();
    let owner = json!([ns.owner_reference()]);
    let name_label = json!({ "name": NAME });

    ns.api::<ServiceAccount>()
        .create(
            &pp,
            &from_json(json!({"metadata": {"name": NAME, "namespace": n, "labels": name_label}}))?,
        )
        .await
        .context("creating Bitnami's ServiceAccount")?;
    let cluster_role: ClusterRole = from_json(json!({
        "metadata": {"name": "secrets-unsealer", "labels": {"name": "secrets-unsealer"}, "ownerReferences": owner},
        "rules": [
            {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets/status"], "verbs": ["update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "update", "delete", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        ],
    }))?;
    Api::<ClusterRole>::all(client.clone())
        .create(&pp, &cluster_role)
        .await
        .context("creating Bitnami's ClusterRole secrets-unsealer")?;
    let cluster_binding: ClusterRoleBinding = from_json(json!({
        "metadata": {"name": NAME, "labels": name_label, "ownerReferences": owner},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secrets-unsealer"},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": n}],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&pp, &cluster_binding)
        .await
        .context("creating Bitnami's ClusterRoleBinding")?;
    for (role, rules, binding, subject) in [
        (
            "sealed-secrets-key-admin",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "list"]}]),
            NAME,
            json!({"kind": "ServiceAccount", "name": NAME, "namespace": n}),
        ),
        (
            "sealed-secrets-service-proxier",
            json!([
                {"apiGroups": [""], "resources": ["services"], "resourceNames": [NAME], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["services/proxy"], "resourceNames": ["http:sealed-secrets-controller:", NAME], "verbs": ["create", "get"]},
            ]),
            "sealed-secrets-service-proxier",
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}),
        ),
    ] {
        ns.api::<Role>()
            .create(&pp, &from_json(json!({"metadata": {"name": role, "namespace": n, "labels": {"name": role}}, "rules": rules}))?)
            .await
            .with_context(|| format!("creating Bitnami's Role {role}"))?;
        ns.api::<RoleBinding>()
            .create(&pp, &from_json(json!({
                "metadata": {"name": binding, "namespace": n, "labels": {"name": binding}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [subject],
            }))?)
            .await
            .with_context(|| format!("creating Bitnami's RoleBinding {binding}"))?;
    }
    ns.api::<Service>()
        .create(&pp, &from_json(json!({
            "metadata": {"name": NAME, "namespace": n, "labels": name_label},
            "spec": {"type": "ClusterIP", "selector": name_label, "ports": [{"port": 8080, "targetPort": 8080}]},
        }))?)
        .await
        .context("creating Bitnami's Service")?;
    ns.api::<Service>()
        .create(&pp, &from_json(json!({
            "metadata": {"name": "sealed-secrets-controller-metrics", "namespace": n, "labels": {"name": "sealed-secrets-controller-metrics"}},
            "spec": {"type": "ClusterIP", "selector": name_label, "ports": [{"port": 8081, "targetPort": 8081}]},
        }))?)
        .await
        .context("creating Bitnami's metrics Service")?;
    let probe = json!({"httpGet": {"path": "/healthz", "port": "http"}});
    ns.api::<Deployment>()
        .create(&pp, &from_json(json!({
            "metadata": {"name": NAME, "namespace": n, "labels": name_label},
            "spec": {
                "replicas": 1,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": name_label},
                "template": {
                    "metadata": {"labels": name_label},
                    "spec": {
                        "serviceAccountName": NAME,
                        "securityContext": {"fsGroup": 65534},
                        "containers": [{
                            "name": NAME,
                            "image": "docker.io/bitnami/sealed-secrets-controller:0.27.1",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["controller"],
                            "args": [],
                            "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 8081}],
                            "livenessProbe": probe,
                            "readinessProbe": probe,
                            "securityContext": {"readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 1001},
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        }))?)
        .await
        .context("creating Bitnami's Deployment")?;
    Ok(())
}

/// A key Secret as Bitnami's controller writes it (the contents do not matter here).
fn key_secret(ns: &str, name: &str, active_label: bool) -> Result<Secret> {
    let mut s: Secret = from_json(json!({
        "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/tls",
    }))?;
    if active_label {
        s.metadata.labels = labels(&[("sealedsecrets.bitnami.com/sealed-secrets-key", "active")]);
    }
    s.data = Some(BTreeMap::from([
        (
            "tls.crt".to_owned(),
            ByteString(format!("cert of {name}").into_bytes()),
        ),
        (
            "tls.key".to_owned(),
            ByteString(format!("key of {name}").into_bytes()),
        ),
    ]));
    Ok(s)
}

#[tokio::test]
async fn install_over_a_bitnami_install_upgrades_in_place_and_keeps_its_keys() -> Result<()> {
    let ns = TestNamespace::new("install-bitnami").await?;
    let client = ns.client().clone();
    // Bitnami's cluster-wide names are global: wait until no other test (or leftover of a
    // killed run, deleted by the garbage collector with its namespace) holds them.
    eventually(
        "no other Bitnami-layout install in the cluster",
        Duration::from_secs(90),
        || {
            let crb = Api::<ClusterRoleBinding>::all(client.clone());
            let cr = Api::<ClusterRole>::all(client.clone());
            async move {
                let busy = crb.get_opt("sealed-secrets-controller").await?.is_some()
                    || cr.get_opt("secrets-unsealer").await?.is_some();
                Ok((!busy).then_some(()))
            }
        },
    )
    .await?;
    create_bitnami_install(&ns).await?;
    let secrets = ns.api::<Secret>();
    let pp = PostParams::default();
    let keys = [
        secrets
            .create(
                &pp,
                &key_secret(ns.name(), "sealed-secrets-keyx7k2p", true)?,
            )
            .await?,
        // The legacy key, named after the key prefix.
        secrets
            .create(&pp, &key_secret(ns.name(), "sealed-secrets-key", false)?)
            .await?,
    ];
    let deployments = ns.api::<Deployment>();
    let old = deployments.get("sealed-secrets-controller").await?;

    let run = install(&[
        "--namespace",
        ns.name(),
        "--image",
        IMAGE,
        "--no-admission-webhook",
        "--apply",
    ])
    .await?;
    succeeded(&run, "kseal install over Bitnami's install")?;

    // The key Secrets are untouched.
    for key in &keys {
        let name = key.metadata.name.as_deref().context("name")?;
        let now = secrets.get(name).await?;
        ensure!(
            now.metadata.resource_version == key.metadata.resource_version
                && now.data == key.data
                && now.metadata.labels == key.metadata.labels,
            "key Secret {name} changed"
        );
    }

    // The same Deployment (upgraded, not replaced), now running kseal.
    let new = deployments.get("sealed-secrets-controller").await?;
    ensure!(
        new.metadata.uid == old.metadata.uid,
        "the Deployment was replaced"
    );
    let spec = new.spec.as_ref().context("spec")?;
    ensure!(
        spec.selector.match_labels == labels(&[("name", "sealed-secrets-controller")]),
        "selector {:?}",
        spec.selector
    );
    ensure!(spec.replicas == Some(2), "replicas {:?}", spec.replicas);
    let pod = spec.template.spec.as_ref().context("pod spec")?;
    ensure!(
        pod.containers.len() == 1,
        "containers: {:?}",
        pod.containers.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    let c = &pod.containers[0];
    ensure!(c.image.as_deref() == Some(IMAGE), "image {:?}", c.image);
    ensure!(c.command.as_deref() == Some(&["kseal-controller".to_owned()][..]));
    let args = c.args.clone().unwrap_or_default();
    for want in [
        "--leader-elect",
        "--leader-election-id=sealed-secrets-controller",
        "--cert-configmap=sealed-secrets-cert",
        "--key-prefix=sealed-secrets-key",
    ] {
        ensure!(args.iter().any(|a| a == want), "args {args:?} lack {want}");
    }

    // The Service's port is now named, so the proxy name is http:<name>:http.
    let svc = ns.api::<Service>().get("sealed-secrets-controller").await?;
    let ports = svc.spec.and_then(|s| s.ports).unwrap_or_default();
    ensure!(
        ports.len() == 1 && ports[0].port == 8080 && ports[0].name.as_deref() == Some("http"),
        "Service ports {ports:?}"
    );

    // Bitnami's RBAC objects carry kseal's rules now (the Lease for leader election).
    let key_admin = ns.api::<Role>().get("sealed-secrets-key-admin").await?;
    ensure!(
        key_admin.rules.iter().flatten().any(|r| r
            .resources
            .iter()
            .flatten()
            .any(|x| x == "leases")),
        "Role sealed-secrets-key-admin has no Lease rule: {:?}",
        key_admin.rules
    );
    // Bitnami's Secret delete is gone (only --old-gc-behavior needs it), and the
    // NetworkPolicy now guards the pods.
    let verbs = secret_verbs(&ns, "secrets-unsealer").await?;
    ensure!(
        !verbs.contains(&"delete".to_owned()),
        "ClusterRole secrets-unsealer still grants Secret delete: {verbs:?}"
    );
    let np_ar = ApiResource {
        group: "networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "networking.k8s.io/v1".into(),
        kind: "NetworkPolicy".into(),
        plural: "networkpolicies".into(),
    };
    Api::<DynamicObject>::namespaced_with(client.clone(), ns.name(), &np_ar)
        .get("sealed-secrets-controller")
        .await
        .context("the NetworkPolicy sealed-secrets-controller")?;
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get("sealed-secrets-controller")
        .await?;
    ensure!(
        binding.role_ref.name == "secrets-unsealer",
        "{:?}",
        binding.role_ref
    );
    ns.cleanup().await
}

/// The kubelet's part: reports every pod of `selector` Running and Ready.
async fn make_pods_ready(pods: &Api<Pod>, selector: &str) -> Result<()> {
    for pod in pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
    {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            continue;
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }});
        pods.patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .context("writing a pod's status")?;
    }
    Ok(())
}

#[tokio::test]
async fn wait_follows_the_rollout_and_times_out_with_one_line() -> Result<()> {
    let ns = TestNamespace::new("install-wait").await?;
    let client = ns.client().clone();
    if !Api::<Node>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await?
        .items
        .is_empty()
    {
        eprintln!(
            "skipped: the cluster has nodes, so kubelets own the pods' status (this test plays the kubelet)"
        );
        return ns.cleanup().await;
    }
    let name = ns.name().to_owned();
    let base = [
        "--namespace",
        ns.name(),
        "--name",
        &name,
        "--image",
        IMAGE,
        "--no-admission-webhook",
        "--apply",
        "--wait",
        "--timeout",
    ];
    let objects = rendered(&base[..7]).await?;

    // Nobody makes the pods ready: a one-line timeout error after the progress lines.
    let mut args = base.to_vec();
    args.push("5s");
    let run = install(&args).await?;
    adopt_cluster_objects(&ns, &objects).await?;
    let line = one_line_error(
        &run,
        "kseal: error: timed out after 5s waiting for deployment",
    )?;
    ensure!(
        line.contains("raise --timeout"),
        "the timeout should say what to do: {line}"
    );
    ensure!(
        run.stderr.contains("rollout to finish"),
        "no progress on stderr: {}",
        run.stderr
    );

    // Now the "kubelet" reports the pods ready: the ReplicaSet and Deployment controllers
    // make the Deployment available and --wait returns 0.
    let mut args = base.to_vec();
    args.push("20");
    let kubelet = {
        let pods: Api<Pod> = ns.api();
        let selector = format!("name={name}");
        async move {
            loop {
                if let Err(e) = make_pods_ready(&pods, &selector).await {
                    break e;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    let run = tokio::select! {
        run = install(&args) => run?,
        err = kubelet => return Err(err.context("playing the kubelet")),
    };
    succeeded(&run, "kseal install --apply --wait")?;
    ensure!(
        run.stderr.contains("successfully rolled out"),
        "stderr: {}",
        run.stderr
    );
    let d = ns.api::<Deployment>().get(&name).await?;
    let status = d.status.context("status")?;
    ensure!(
        status.available_replicas == Some(2) && status.updated_replicas == Some(2),
        "{status:?}"
    );
    ns.cleanup().await
}

#[tokio::test]
async fn rbac_denied_and_missing_namespace_are_one_line() -> Result<()> {
    let ns = TestNamespace::new("install-denied").await?;
    let name = ns.name().to_owned();
    // A user who may read ConfigMaps in the namespace and nothing else.
    let user = ns
        .identity("user", vec![rule(&[""], &["configmaps"], &["get"])])
        .await?;
    let kubeconfig = user.kubeconfig_path().display().to_string();
    for mode in ["--apply", "--dry-run=server"] {
        let run = install(&[
            "--namespace",
            ns.name(),
            "--name",
            &name,
            "--kubeconfig",
            &kubeconfig,
            mode,
        ])
        .await?;
        let line = one_line_error(&run, "forbidden")?;
        ensure!(
            line.contains("cluster-admin") && line.contains("without --apply"),
            "the error should say what to do: {line}"
        );
    }

    let missing = format!("{name}-missing");
    let run = install(&["--namespace", &missing, "--name", &name, "--apply"]).await?;
    one_line_error(
        &run,
        &format!("namespace \"{missing}\" does not exist: create it first"),
    )?;
    ns.cleanup().await
}
