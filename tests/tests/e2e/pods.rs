//! The controller as real Pods, installed the way a user installs it: the image built by
//! `controller/image/build.sh` (from this run's controller binary), imported into the node's
//! containerd, then `kseal install --apply --wait --image …` on a control plane of its own with
//! a node (`cluster.sh up --node`: kube-scheduler, containerd + runc, kubelet, kube-proxy).
//! Its own, because the install watches every namespace from kube-system under the default names,
//! as in a user's cluster; one node per machine, so this is skipped when the shared control
//! plane holds the node (`KSEAL_E2E_NODE=1`), and without root.
//!
//! Checked: two replicas Ready (probes, uid 1001, read-only root filesystem and the `/tmp`
//! emptyDir work, or they would not be), one leader, exactly one key; `kseal cert` and
//! `kubeseal --fetch-cert` (through the API server's service proxy to a Pod) give that key's
//! certificate; a SealedSecret sealed by `kseal seal` becomes its Secret; the leader Pod deleted,
//! the other replica leads within the lease and the Deployment replaces the Pod, still one key;
//! `kubectl logs` (pods/log) is JSON without the plaintext; metrics are scraped from a Pod.
//! Then, on a second cluster: an upgrade over Bitnami's release layout and the README's
//! uninstall ([`upgrade_from_bitnami`]); on a third, the kustomize base applied with
//! `kubectl apply -k` ([`kustomize_on_the_node`]).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_e2e::controller::{controller_binary, KEY_LABEL_SELECTOR};
use kseal_e2e::kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kseal_e2e::kube::{Api, Client};
use kseal_e2e::{apply_kustomization, eventually, OwnCluster};

const NS: &str = "kube-system";
const NAME: &str = "sealed-secrets-controller";
const SELECTOR: &str = "name=sealed-secrets-controller";
const CANARY: &str = "kseal-pods-canary-7c1e";
const WAIT: Duration = Duration::from_secs(180);

pub(crate) fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `program args…` with `KUBECONFIG`; its stdout, or an error with its stderr.
pub(crate) fn run(program: &Path, args: &[&str], kubeconfig: &Path) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    ensure!(
        out.status.success(),
        "{} {args:?}: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The controller image from this run's controller binary (`controller/image/build.sh
/// --binary`), written to `archive` and imported into `cluster`'s node; its reference.
pub(crate) fn build_image(cluster: &OwnCluster, archive: &Path) -> Result<String> {
    let out = Command::new("bash")
        .arg(repo().join("controller/image/build.sh"))
        .arg("--binary")
        .arg(controller_binary()?)
        .arg("-o")
        .arg(archive)
        .args(["-t", "kseal.local/kseal-controller:e2e"])
        .output()?;
    ensure!(
        out.status.success(),
        "build.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.script("image", &[archive.as_os_str()])
}

/// `kseal install --apply --wait --image IMAGE`, as a user installs the controller.
pub(crate) fn install(kseal: &Path, image: &str, kubeconfig: &Path) -> Result<()> {
    run(
        kseal,
        &[
            "install",
            "--apply",
            "--wait",
            "--timeout",
            "240s",
            "--image",
            image,
        ],
        kubeconfig,
    )
    .map(drop)
}

pub(crate) async fn ready_pods(pods: &Api<Pod>) -> Result<Vec<String>> {
    let list = pods.list(&ListParams::default().labels(SELECTOR)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect())
}

async fn key_count(client: &Client) -> Result<usize> {
    Ok(Api::<Secret>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(KEY_LABEL_SELECTOR))
        .await?
        .items
        .len())
}

/// The Pod that holds the Lease (the holder identity is `<pod name>_<random>`).
async fn leader(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt(NAME)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .and_then(|h| h.rsplit_once('_').map(|(pod, _)| pod.to_owned())))
}

/// Why a test that starts a node of its own cannot run here, if it cannot: against an external
/// cluster, while the shared control plane holds this machine's node (`KSEAL_E2E_NODE=1`), or
/// without root.
pub(crate) fn no_own_node() -> Result<Option<&'static str>> {
    let shared = kseal_e2e::Cluster::shared()?;
    let Some(state) = shared.local_state()? else {
        return Ok(Some(
            "an external cluster (the test starts a node of its own)",
        ));
    };
    if state.vars.get("NODE_RUNNING").map(String::as_str) == Some("1") {
        return Ok(Some("the shared control plane holds this machine's node"));
    }
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(Some("a node needs root (containerd, runc, iptables)"));
    }
    Ok(None)
}

#[tokio::test]
async fn the_controller_runs_as_pods_installed_by_kseal_install() -> Result<()> {
    if let Some(why) = no_own_node()? {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    let started = Instant::now();
    let cluster = OwnCluster::up_with_node(&scratch.path().join("cluster"))?;
    let node_up = started.elapsed();
    let kc = cluster.kubeconfig_path().to_path_buf();
    let client = cluster.client().await?;

    // The image, from this run's controller binary, imported into the node.
    let archive = scratch.path().join("kseal-controller.oci.tar");
    let t = Instant::now();
    let image = build_image(&cluster, &archive)?;
    let image_built = t.elapsed();

    // kseal install --apply --wait.
    let kseal = kseal_e2e::bins::kseal_binary()?;
    let t = Instant::now();
    install(&kseal, &image, &kc)?;
    let install_to_ready = t.elapsed();
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let leases = Api::<Lease>::namespaced(client.clone(), NS);
    let ready = ready_pods(&pods).await?;
    ensure!(ready.len() == 2, "ready controller Pods: {ready:?}");
    let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
        .get(NAME)
        .await?;
    let pod_spec = deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("Deployment has no Pod spec")?;
    let container = &pod_spec.containers[0];
    let sc = container.security_context.clone().unwrap_or_default();
    ensure!(sc.read_only_root_filesystem == Some(true));
    let uid = pod_spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or(sc.run_as_user);
    ensure!(uid == Some(1001), "runAsUser {uid:?}");

    // One leader among the Pods, exactly one key.
    let first_leader = eventually("a leader among the Pods", WAIT, || async {
        Ok(leader(&leases).await?.filter(|h| ready.contains(h)))
    })
    .await?;
    eventually("the first key", WAIT, || async {
        Ok((key_count(&client).await? >= 1).then_some(()))
    })
    .await?;

    // kseal cert and kubeseal --fetch-cert: the same certificate, the key's.
    let kseal_pem = eventually("kseal cert", WAIT, || async {
        Ok(run(&kseal, &["cert", "--pem"], &kc).ok())
    })
    .await?;
    let kubeseal = scratch.path().join("kubeseal");
    std::os::unix::fs::symlink(&kseal, &kubeseal)?;
    let fetched = run(&kubeseal, &["--fetch-cert"], &kc)?;
    let cert = Certificate::from_pem(kseal_pem.as_bytes())?;
    ensure!(
        Certificate::from_pem(fetched.as_bytes())? == cert,
        "kubeseal --fetch-cert (through the service proxy to a Pod) gave another certificate"
    );

    // A SealedSecret sealed by kseal seal becomes its Secret.
    let apps = "apps";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": apps}}))?,
        )
        .await?;
    let cert_file = scratch.path().join("cert.pem");
    std::fs::write(&cert_file, &kseal_pem)?;
    let secret_file = scratch.path().join("db.yaml");
    std::fs::write(
        &secret_file,
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {apps}}}\nstringData: {{password: {CANARY}}}\n"),
    )?;
    let sealed = run(
        &kseal,
        &[
            "seal",
            "--cert",
            cert_file.to_str().context("path")?,
            secret_file.to_str().context("path")?,
        ],
        &kc,
    )?;
    let ss: SealedSecret = serde_json::from_str(&sealed)?;
    Api::<SealedSecret>::namespaced(client.clone(), apps)
        .create(&PostParams::default(), &ss)
        .await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), apps);
    let t = Instant::now();
    let secret = eventually("the Secret db", WAIT, || async {
        Ok(secrets.get_opt("db").await?)
    })
    .await?;
    let unsealed_after = t.elapsed();
    let value = secret
        .data
        .and_then(|d| d.get("password").cloned())
        .context("Secret db has no password")?;
    ensure!(
        value.0 == CANARY.as_bytes(),
        "the Secret holds another value"
    );

    // Metrics, scraped from a Pod through the API server's pod proxy.
    let pod = &ready[0];
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{NS}/pods/{pod}:8081/proxy/metrics"
    ))
    .body(Vec::new())?;
    let metrics = client.request_text(req).await?;
    ensure!(
        metrics.contains("sealed_secrets_controller_build_info"),
        "no kseal metrics from {pod}:\n{metrics}"
    );

    // The leader Pod deleted: the other replica leads, the Deployment replaces the Pod.
    let t = Instant::now();
    pods.delete(&first_leader, &DeleteParams::default()).await?;
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let second_leader = eventually("another leader", WAIT, || async {
        let holder = leader(&leases).await?;
        let mut seen = seen.lock().unwrap();
        let h = format!("{holder:?}");
        if seen.last() != Some(&h) {
            seen.push(h);
        }
        Ok(holder.filter(|h| h != &first_leader))
    })
    .await
    .with_context(|| {
        format!(
            "after deleting {first_leader} (replicas {ready:?}); Lease holders seen: {:?}",
            seen.lock().unwrap()
        )
    })?;
    let other_replica_took_over = ready.contains(&second_leader);
    let failover = t.elapsed();
    eventually("two ready Pods again", WAIT, || async {
        let now = ready_pods(&pods).await?;
        Ok((now.len() == 2 && !now.contains(&first_leader)).then_some(()))
    })
    .await?;
    let replaced = t.elapsed();
    ensure!(
        key_count(&client).await? == 1,
        "more than one key after the first key and a leader change"
    );

    // Logs: JSON lines, never the plaintext.
    let mut lines = 0;
    for pod in ready_pods(&pods).await?.iter().chain([&second_leader]) {
        let log = pods.logs(pod, &LogParams::default()).await?;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            serde_json::from_str::<serde_json::Value>(line)
                .with_context(|| format!("{pod} logged a line that is not JSON: {line}"))?;
            lines += 1;
        }
        ensure!(!log.contains(CANARY), "{pod}'s log holds the plaintext");
    }
    ensure!(lines > 0, "the controller Pods logged nothing");

    // The Pods' memory, as the kubelet reports it.
    let req = http::Request::get("/api/v1/nodes/kseal-node/proxy/stats/summary").body(Vec::new())?;
    let memory: Vec<String> = match client.request::<serde_json::Value>(req).await {
        Ok(summary) => summary["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["podRef"]["namespace"] == NS)
            .map(|p| {
                let containers: f64 = p["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["memory"]["workingSetBytes"].as_f64())
                    .sum();
                let pod = p["memory"]["workingSetBytes"].as_f64().unwrap_or(0.0);
                format!(
                    "{} {:.1} MiB",
                    p["podRef"]["name"].as_str().unwrap_or("?"),
                    pod.max(containers) / 1048576.0
                )
            })
            .collect(),
        Err(e) => vec![format!("no stats summary: {e}")],
    };
    // The node's parts killed (-9) and started again by `cluster.sh restart` under the running
    // Pods: containers outlive containerd and the kubelet (their shims keep them), kube-proxy's
    // rules stay, and the controller keeps serving and unsealing.
    let t = Instant::now();
    for part in ["kubelet", "containerd", "kube-proxy", "kube-scheduler"] {
        cluster.restart(part, Duration::ZERO)?;
    }
    eventually(
        "two ready Pods after the node's parts restarted",
        WAIT,
        || async { Ok((ready_pods(&pods).await?.len() == 2).then_some(())) },
    )
    .await?;
    let mut after = ss.clone();
    after.metadata = kseal_e2e::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some("db2".into()),
        namespace: Some(apps.into()),
        ..Default::default()
    };
    // Sealed for "db" (strict scope): under another name the controller must refuse it, either
    // at the door (the webhook, through the Service kube-proxy routes) or, should the webhook
    // be unreachable (failurePolicy Ignore), in its status. Either proves it works after the
    // restarts without a second sealing round trip.
    match Api::<SealedSecret>::namespaced(client.clone(), apps)
        .create(&PostParams::default(), &after)
        .await
    {
        Err(kseal_e2e::kube::Error::Api(s)) if s.code == 403 => ensure!(
            s.message.contains("apps/db2") && s.message.contains("item \"password\""),
            "the webhook's refusal names neither the object nor the item: {}",
            s.message
        ),
        Err(e) => return Err(e.into()),
        Ok(_) => {
            eventually("db2 reported as not decryptable", WAIT, || async {
                let got = Api::<SealedSecret>::namespaced(client.clone(), apps)
                    .get("db2")
                    .await?;
                Ok(kseal_e2e::controller::synced_condition(&got)
                    .filter(|c| c.status == "False")
                    .map(|_| ()))
            })
            .await?;
        }
    }
    let node_parts_restarted = t.elapsed();
    eprintln!(
        "pods: kubelet, containerd, kube-proxy and kube-scheduler restarted; Pods Ready and reconciling after {node_parts_restarted:.1?}"
    );
    eprintln!(
        "pods: node up {node_up:.1?}; image built and imported {image_built:.1?}; \
         kseal install --apply --wait to Ready {install_to_ready:.1?}; Secret after {unsealed_after:.1?}; \
         leader {first_leader} deleted → {second_leader} (the other replica: {other_replica_took_over}) leads after {failover:.1?}, two Pods ready again after {replaced:.1?}; \
         memory (working set): {memory:?}"
    );
    drop(cluster);

    upgrade_from_bitnami(&scratch.path().join("bitnami"), &archive).await?;
    kustomize_on_the_node(&scratch.path().join("kustomize"), &archive).await
}

/// The committed kustomize base (`deploy/kustomize`), through an overlay that sets the image as
/// the base's comment shows, applied with `kubectl apply -k` (as Argo CD or Flux would): the
/// controller runs, two replicas Ready, and `kseal cert` gets its certificate. Kubernetes 1.20
/// has no policy/v1, so only the base's PodDisruptionBudget is refused here.
async fn kustomize_on_the_node(dir: &Path, archive: &Path) -> Result<()> {
    let cluster = OwnCluster::up_with_node(dir)?;
    let kc = cluster.kubeconfig_path().to_path_buf();
    let client = cluster.client().await?;
    let image = cluster.script("image", &[archive.as_os_str()])?;
    let (name, tag) = image
        .rsplit_once(':')
        .context("an image reference with a tag")?;
    let overlay = dir.join("overlay");
    std::fs::create_dir(&overlay)?;
    std::os::unix::fs::symlink(repo().join("deploy/kustomize"), dir.join("base"))?;
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\nimages:\n  - name: ghcr.io/kseal/kseal-controller\n    newName: {name}\n    newTag: {tag}\n"
        ),
    )?;
    apply_kustomization(&kc, &overlay)?;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let t = Instant::now();
    eventually("two ready Pods from the kustomize base", WAIT, || async {
        Ok((ready_pods(&pods).await?.len() == 2).then_some(()))
    })
    .await?;
    let kseal = kseal_e2e::bins::kseal_binary()?;
    let pem = eventually("kseal cert", WAIT, || async {
        Ok(run(&kseal, &["cert", "--pem"], &kc).ok())
    })
    .await?;
    Certificate::from_pem(pem.as_bytes())?;
    ensure!(key_count(&client).await? == 1, "not exactly one key");
    eprintln!(
        "pods: kubectl apply -k to two ready Pods and a certificate: {:.1?}",
        t.elapsed()
    );
    drop(cluster);
    Ok(())
}

/// Bitnami's static release manifest (controller.yaml's names, labels, selector and unnamed
/// Service port), its Deployment running kseal's image (Bitnami's cannot be pulled here; only
/// the command differs), with a Bitnami key Secret (the Go test key) and a SealedSecret that
/// kubeseal sealed for it.
fn bitnami_manifest(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: sealed-secrets-controller, namespace: kube-system, labels: {{name: sealed-secrets-controller}}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: secrets-unsealer, labels: {{name: secrets-unsealer}}}}
rules:
- {{apiGroups: [bitnami.com], resources: [sealedsecrets], verbs: [get, list, watch]}}
- {{apiGroups: [bitnami.com], resources: [sealedsecrets/status], verbs: [update]}}
- {{apiGroups: [""], resources: [secrets], verbs: [get, list, create, update, delete, watch]}}
- {{apiGroups: [""], resources: [events], verbs: [create, patch]}}
- {{apiGroups: [""], resources: [namespaces], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: sealed-secrets-controller, labels: {{name: sealed-secrets-controller}}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secrets-unsealer}}
subjects: [{{kind: ServiceAccount, name: sealed-secrets-controller, namespace: kube-system}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: sealed-secrets-key-admin, namespace: kube-system, labels: {{name: sealed-secrets-key-admin}}}}
rules: [{{apiGroups: [""], resources: [secrets], verbs: [create, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sealed-secrets-controller, namespace: kube-system, labels: {{name: sealed-secrets-controller}}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: sealed-secrets-key-admin}}
subjects: [{{kind: ServiceAccount, name: sealed-secrets-controller, namespace: kube-system}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: sealed-secrets-service-proxier, namespace: kube-system, labels: {{name: sealed-secrets-service-proxier}}}}
rules:
- {{apiGroups: [""], resources: [services], resourceNames: [sealed-secrets-controller], verbs: [get]}}
- {{apiGroups: [""], resources: [services/proxy], resourceNames: ["http:sealed-secrets-controller:", sealed-secrets-controller], verbs: [create, get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sealed-secrets-service-proxier, namespace: kube-system, labels: {{name: sealed-secrets-service-proxier}}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: sealed-secrets-service-proxier}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: sealed-secrets-controller, namespace: kube-system, labels: {{name: sealed-secrets-controller}}}}
spec: {{type: ClusterIP, selector: {{name: sealed-secrets-controller}}, ports: [{{port: 8080, targetPort: 8080}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: sealed-secrets-controller, namespace: kube-system, labels: {{name: sealed-secrets-controller}}}}
spec:
  replicas: 1
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{name: sealed-secrets-controller}}}}
  template:
    metadata: {{labels: {{name: sealed-secrets-controller}}}}
    spec:
      serviceAccountName: sealed-secrets-controller
      securityContext: {{fsGroup: 65534}}
      containers:
      - name: sealed-secrets-controller
        image: {image}
        imagePullPolicy: IfNotPresent
        command: [kseal-controller]
        args: []
        ports: [{{name: http, containerPort: 8080}}, {{name: metrics, containerPort: 8081}}]
        livenessProbe: {{httpGet: {{path: /healthz, port: http}}}}
        readinessProbe: {{httpGet: {{path: /healthz, port: http}}}}
        securityContext: {{readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 1001}}
        volumeMounts: [{{name: tmp, mountPath: /tmp}}]
      volumes: [{{name: tmp, emptyDir: {{}}}}]
"#
    )
}

/// A cluster laid out as Bitnami's release installs it, then `kseal install --apply --wait`:
/// the Secret is unchanged, the old key still opens new and old SealedSecrets, kubeseal's
/// `--fetch-cert` and `--validate` still work; then the README's uninstall keeps Secrets and keys.
async fn upgrade_from_bitnami(dir: &Path, archive: &Path) -> Result<()> {
    let cluster = OwnCluster::up_with_node(dir)?;
    let kc = cluster.kubeconfig_path().to_path_buf();
    let client = cluster.client().await?;
    let image = cluster.script("image", &[archive.as_os_str()])?;
    let kseal = kseal_e2e::bins::kseal_binary()?;
    let kubeseal = dir.join("kubeseal");
    std::os::unix::fs::symlink(&kseal, &kubeseal)?;
    let kubectl = Path::new("kubectl");
    let data = repo().join("crypto/tests/data");

    // The CRD, Bitnami's key Secret, Bitnami's manifest.
    run(
        kubectl,
        &[
            "apply",
            "-f",
            repo()
                .join("crds/sealedsecret-crd.yaml")
                .to_str()
                .context("path")?,
        ],
        &kc,
    )?;
    let key = std::fs::read(data.join("go_rsa2048.key"))?;
    let crt = std::fs::read(data.join("go_rsa2048.crt"))?;
    let key_secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sealed-secrets-keyq7k2x", "namespace": NS,
                     "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"}},
        "type": "kubernetes.io/tls",
        "data": {"tls.key": base64_of(&key), "tls.crt": base64_of(&crt)},
    }))?;
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &key_secret)
        .await?;
    let manifest = dir.join("controller.yaml");
    std::fs::write(&manifest, bitnami_manifest(&image))?;
    run(
        kubectl,
        &["apply", "-f", manifest.to_str().context("path")?],
        &kc,
    )?;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    eventually("Bitnami's Deployment to run", WAIT, || async {
        Ok((ready_pods(&pods).await?.len() == 1).then_some(()))
    })
    .await?;

    // A SealedSecret sealed by kubeseal for Bitnami's key becomes its Secret.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "apps"}}))?,
        )
        .await?;
    let go_cert = data.join("go_rsa2048.crt");
    let seal_with_kubeseal = |name: &str, value: &str| -> Result<String> {
        let input = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &input,
            format!(
                "apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: apps}}
stringData: {{password: {value}}}
"
            ),
        )?;
        run(
            &kubeseal,
            &[
                "--cert",
                go_cert.to_str().context("path")?,
                "-f",
                input.to_str().context("path")?,
            ],
            &kc,
        )
    };
    let create = |json: String| {
        let client = client.clone();
        async move {
            let ss: SealedSecret = serde_json::from_str(&json)?;
            Api::<SealedSecret>::namespaced(client, "apps")
                .create(&PostParams::default(), &ss)
                .await?;
            anyhow::Ok(())
        }
    };
    let old_sealed = seal_with_kubeseal("old", "from-bitnami-days")?;
    create(old_sealed.clone()).await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), "apps");
    let before = eventually("the Secret of Bitnami's days", WAIT, || async {
        Ok(secrets.get_opt("old").await?)
    })
    .await?;

    // The upgrade.
    install(&kseal, &image, &kc)?;
    let ready = ready_pods(&pods).await?;
    ensure!(ready.len() == 2, "after the upgrade, ready Pods: {ready:?}");
    let after = secrets.get("old").await?;
    ensure!(
        after.metadata.uid == before.metadata.uid && after.data == before.data,
        "the upgrade changed the Secret of Bitnami's days"
    );
    ensure!(
        Api::<Secret>::namespaced(client.clone(), NS)
            .get_opt("sealed-secrets-keyq7k2x")
            .await?
            .is_some(),
        "Bitnami's key Secret is gone"
    );
    // The old key still opens a new SealedSecret sealed for it.
    create(seal_with_kubeseal("new", "after-the-upgrade")?).await?;
    let new = eventually("a new Secret sealed for the old key", WAIT, || async {
        Ok(secrets.get_opt("new").await?)
    })
    .await?;
    ensure!(new
        .data
        .and_then(|d| d.get("password").cloned())
        .is_some_and(|v| v.0 == b"after-the-upgrade"));
    // kubeseal scripts: --fetch-cert gives the old key's certificate (the newest), --validate
    // says the committed file opens.
    let fetched = run(&kubeseal, &["--fetch-cert"], &kc)?;
    ensure!(
        Certificate::from_pem(fetched.as_bytes())? == Certificate::from_pem(&crt)?,
        "kubeseal --fetch-cert after the upgrade gave another certificate"
    );
    let file = dir.join("old-sealed.json");
    std::fs::write(&file, &old_sealed)?;
    run(
        &kubeseal,
        &["--validate", "-f", file.to_str().context("path")?],
        &kc,
    )?;

    // The README's uninstall: the controller goes, Secrets and keys stay.
    let readme = std::fs::read_to_string(repo().join("README.md"))?;
    let block = crate::readme::quickstart(&readme, "uninstall")?;
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block])
        .current_dir(dir)
        .env("KUBECONFIG", &kc)
        .env(
            "PATH",
            format!(
                "{}:/usr/bin:/bin",
                kseal.parent().context("bin dir")?.display()
            ),
        )
        .output()?;
    ensure!(
        out.status.success(),
        "the README's uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the controller Pods to go", WAIT, || async {
        Ok(pods
            .list(&ListParams::default().labels(SELECTOR))
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await?;
    ensure!(secrets.get_opt("old").await?.is_some() && secrets.get_opt("new").await?.is_some());
    ensure!(
        key_count(&client).await? >= 1,
        "the uninstall deleted the keys"
    );
    drop(cluster);
    Ok(())
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
