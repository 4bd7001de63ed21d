//! The validating admission webhook as installed: `kseal install --apply --wait` on a control
//! plane of its own with a node (the controller's image from this run's binary, as in
//! [`crate::pods`]), then `kubectl apply` and `kubectl apply --dry-run=server` as a user and a
//! CI job run them. One node per machine, so this is skipped when the shared control plane holds
//! the node (`KSEAL_E2E_NODE=1`), without root, and against an external cluster, as `pods::` is.
//!
//! Checked: both replicas serve the webhook with the certificate they made and put into the
//! ValidatingWebhookConfiguration; a good 2-item SealedSecret is admitted; one sealed for another
//! cluster's key, one moved to another namespace and one renamed are refused by `kubectl apply`
//! with a message naming the item, and `--dry-run=server` gives the same answers; a bad
//! template is refused; a kubeseal-style file (no seal records) is admitted with a warning; with
//! the controller scaled to zero, applies pass again (`failurePolicy: Ignore`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod};
use kseal_e2e::kube::api::{ListParams, LogParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{eventually, OwnCluster};
use serde_json::Value;

use crate::pods::{build_image, install, no_own_node, ready_pods, run};

const NS: &str = "kube-system";
const NAME: &str = "sealed-secrets-controller";
const SELECTOR: &str = "name=sealed-secrets-controller";
const WAIT: Duration = Duration::from_secs(180);
const CANARY: &str = "kseal-admission-canary-9d2b";
const DENIED: &str = "admission webhook \"sealedsecrets.kseal.dev\" denied the request: ";

/// `kubectl apply -f FILE` (with `--dry-run=server` when `dry_run`).
fn kubectl_apply(kubeconfig: &Path, file: &Path, dry_run: bool) -> Result<Output> {
    let mut cmd = Command::new("kubectl");
    cmd.arg("apply").arg("-f").arg(file);
    if dry_run {
        cmd.arg("--dry-run=server");
    }
    cmd.env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl (the e2e tests need it on PATH)")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Applies `file` for real and as a server-side dry run; both must be refused with a message
/// that holds every part of `expect`, or both admitted when `expect` is empty. Returns the
/// stderr of the real apply.
fn both_answer(kubeconfig: &Path, file: &Path, expect: &[&str]) -> Result<String> {
    let mut last = String::new();
    for dry_run in [true, false] {
        let out = kubectl_apply(kubeconfig, file, dry_run)?;
        let err = stderr(&out);
        ensure!(
            !err.contains(CANARY),
            "kubectl's stderr holds the value: {err}"
        );
        if expect.is_empty() {
            ensure!(
                out.status.success(),
                "{} (dry run: {dry_run}) was refused: {err}",
                file.display()
            );
        } else {
            ensure!(
                !out.status.success() && err.contains(DENIED),
                "{} (dry run: {dry_run}) was not refused by the webhook: {err}",
                file.display()
            );
            for part in expect {
                ensure!(
                    err.contains(part),
                    "{} (dry run: {dry_run}): the refusal does not say {part:?}: {err}",
                    file.display()
                );
            }
        }
        last = err;
    }
    Ok(last)
}

fn write_json(dir: &Path, name: &str, v: &Value) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(v)?)?;
    Ok(path)
}

#[tokio::test]
async fn the_webhook_refuses_what_this_cluster_cannot_open() -> Result<()> {
    if let Some(why) = no_own_node()? {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();
    let started = Instant::now();
    let cluster = OwnCluster::up_with_node(&dir.join("cluster"))?;
    let kc = cluster.kubeconfig_path().to_path_buf();
    let client = cluster.client().await?;
    let image = build_image(&cluster, &dir.join("kseal-controller.oci.tar"))?;
    let kseal = kseal_e2e::bins::kseal_binary()?;
    install(&kseal, &image, &kc)?;
    let ready_after = started.elapsed();

    // Both replicas serve the webhook; its CA is in the configuration.
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let vwcs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let t = Instant::now();
    eventually("the webhook's CA in the configuration", WAIT, || async {
        let vwc = vwcs.get(NAME).await?;
        Ok(vwc
            .webhooks
            .unwrap_or_default()
            .first()
            .and_then(|w| w.client_config.ca_bundle.clone())
            .filter(|b| !b.0.is_empty())
            .map(drop))
    })
    .await?;
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), NS);
    eventually("two webhook endpoints", WAIT, || async {
        let n = endpoints
            .get_opt(&format!("{NAME}-webhook"))
            .await?
            .and_then(|e| e.subsets)
            .unwrap_or_default()
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        Ok((n == 2).then_some(()))
    })
    .await?;
    let replicas = ready_pods(&pods).await?;
    ensure!(replicas.len() == 2, "ready replicas: {replicas:?}");
    let mut serving = 0;
    for pod in &replicas {
        let log = pods.logs(pod, &LogParams::default()).await?;
        ensure!(
            log.contains("admission webhook serving (TLS)"),
            "{pod} does not serve the webhook:\n{log}"
        );
        serving += usize::from(log.contains("serving the webhook's certificate"));
    }
    ensure!(serving == 2, "not every replica serves the certificate");

    // What to apply: a good 2-item SealedSecret for apps/db, sealed by kseal seal with this
    // cluster's certificate, and one sealed for another cluster's key.
    for ns in ["apps", "prod"] {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?,
            )
            .await?;
    }
    let pem = eventually("kseal cert", WAIT, || async {
        Ok(run(&kseal, &["cert", "--pem"], &kc).ok())
    })
    .await?;
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, &pem)?;
    let other = kseal_crypto::keygen::generate(
        &mut rand::rngs::OsRng,
        &kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )?;
    let other_cert = dir.join("other-cluster.pem");
    std::fs::write(
        &other_cert,
        other.certificate().context("a certificate")?.to_pem(),
    )?;
    let secret = dir.join("db.yaml");
    std::fs::write(
        &secret,
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: apps}}\nstringData: {{password: {CANARY}, user: admin}}\n"),
    )?;
    let seal = |cert: &Path| -> Result<Value> {
        let out = run(
            &kseal,
            &[
                "seal",
                "--cert",
                cert.to_str().context("path")?,
                secret.to_str().context("path")?,
            ],
            &kc,
        )?;
        Ok(serde_json::from_str(&out)?)
    };
    let good = seal(&cert)?;
    let good_file = write_json(dir, "good.json", &good)?;
    let foreign_file = write_json(dir, "other-cluster.json", &seal(&other_cert)?)?;
    let mut moved = good.clone();
    moved["metadata"]["namespace"] = "prod".into();
    let moved_file = write_json(dir, "moved.json", &moved)?;
    let mut renamed = good.clone();
    renamed["metadata"]["name"] = "db2".into();
    let renamed_file = write_json(dir, "renamed.json", &renamed)?;
    let mut bad_template = good.clone();
    bad_template["spec"]["template"]["data"] =
        serde_json::json!({"url": "{{ if .password }}yes{{ end }}"});
    let bad_template_file = write_json(dir, "bad-template.json", &bad_template)?;
    // A kubeseal-style file (no seal records, no hint), sealed for apps/legacy.
    std::fs::write(
        &secret,
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: legacy, namespace: apps}}\nstringData: {{password: {CANARY}, user: admin}}\n"),
    )?;
    let mut legacy = seal(&cert)?;
    legacy["metadata"]
        .as_object_mut()
        .context("metadata")?
        .remove("annotations");
    let legacy_file = write_json(dir, "legacy.json", &legacy)?;

    // The webhook is in effect once the API server trusts its certificate.
    eventually(
        "the webhook to refuse a moved SealedSecret",
        WAIT,
        || async {
            let out = kubectl_apply(&kc, &moved_file, true)?;
            Ok(stderr(&out).contains(DENIED).then_some(()))
        },
    )
    .await?;
    let in_effect = t.elapsed();

    let t = Instant::now();
    both_answer(&kc, &good_file, &[])?;
    both_answer(
        &kc,
        &foreign_file,
        &[
            "SealedSecret apps/db refused by kseal: this cluster cannot open 2 items",
            "item \"password\": no key could decrypt secret (sealed for a key this cluster does not hold",
            other.fingerprint().as_str(),
            "item \"user\"",
        ],
    )?;
    both_answer(
        &kc,
        &moved_file,
        &[
            "SealedSecret prod/db refused by kseal",
            "item \"password\": no key could decrypt secret (moved: sealed for namespace apps; seal it again for strict for prod/db)",
        ],
    )?;
    both_answer(
        &kc,
        &renamed_file,
        &[
            "SealedSecret apps/db2 refused by kseal",
            "item \"user\": no key could decrypt secret (renamed: sealed for name db;",
        ],
    )?;
    both_answer(
        &kc,
        &bad_template_file,
        &["SealedSecret apps/db refused by kseal: invalid template data[\"url\"]"],
    )?;
    let warned = both_answer(&kc, &legacy_file, &[])?;
    ensure!(
        warned.contains("Warning: items \"password\", \"user\" have no seal record"),
        "no admission warning for a file without seal records: {warned}"
    );
    let answers = t.elapsed();
    // What the API server measured for its calls (informational: the means of its histogram).
    let metrics = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let webhook_calls = api_server_webhook_means(&metrics);

    // The controller scaled to zero: nothing answers, and applies pass (failurePolicy Ignore).
    run(
        Path::new("kubectl"),
        &["-n", NS, "scale", "deployment", NAME, "--replicas=0"],
        &kc,
    )?;
    eventually("no controller Pod", WAIT, || async {
        Ok(pods
            .list(&ListParams::default().labels(SELECTOR))
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await?;
    let t = Instant::now();
    both_answer(&kc, &moved_file, &[])?;
    both_answer(&kc, &renamed_file, &[])?;
    let down = t.elapsed();
    eprintln!(
        "admission: node, image and kseal install --apply --wait {ready_after:.1?}; webhook in effect {in_effect:.1?} later; \
         12 answers (6 files, real and dry run) {answers:.1?}; 4 applies with the controller at zero replicas {down:.1?}; \
         the API server's webhook calls: {webhook_calls}"
    );
    drop(cluster);
    Ok(())
}

/// `rejected=false: N calls, mean X ms; rejected=true: …` from the API server's
/// `apiserver_admission_webhook_admission_duration_seconds` for kseal's webhook.
fn api_server_webhook_means(metrics: &str) -> String {
    let series = |suffix: &str, rejected: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "apiserver_admission_webhook_admission_duration_seconds_{suffix}{{"
                )) && l.contains("name=\"sealedsecrets.kseal.dev\"")
                    && l.contains(&format!("rejected=\"{rejected}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    ["false", "true"]
        .iter()
        .map(|r| {
            let (sum, count) = (series("sum", r), series("count", r));
            if count == 0.0 {
                format!("rejected={r}: none")
            } else {
                format!(
                    "rejected={r}: {count} calls, mean {:.1} ms",
                    sum / count * 1e3
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
