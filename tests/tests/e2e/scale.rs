//! A measurement, not a pass/fail test (ignored by default): how long the controller takes to
//! turn N SealedSecrets into Secrets on the test control plane, its peak RSS, and how many RSA
//! private-key operations it performed; then the same after a restart, when every Secret
//! already matches (its ownership mark: no decryption expected).
//!
//! Run it with `tests/bench/scale.sh` (release build of the controller, N=1000 by default;
//! `KSEAL_SCALE_N` changes N).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_crds::SealedSecret;
use kseal_e2e::controller::{seal, string_map};
use kseal_e2e::kube::api::{ListParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{Controller, TestNamespace};

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmHWM")
}

async fn count_secrets(api: &Api<Secret>) -> Result<usize> {
    Ok(api
        .list_metadata(&ListParams::default().labels("kseal-scale=1"))
        .await?
        .items
        .len())
}

async fn wait_all(api: &Api<Secret>, n: usize, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if count_secrets(api).await? >= n {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!(
                "only {} of {n} Secrets after {timeout:?}",
                count_secrets(api).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "a measurement: run tests/bench/scale.sh"]
async fn scale_sealed_secrets_to_secrets() -> Result<()> {
    let n: usize = std::env::var("KSEAL_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let apps = TestNamespace::new("scale").await?;
    let mut ctl = Controller::builder()
        .prefix("scale-ctl")
        .watch(apps.name())
        .flag("--key-size", "4096")
        .start()
        .await?;
    let cert = ctl.sealing_certificate().await?;
    // The SealedSecrets exist before the controller sees them: stop it, create, start.
    ctl.stop().await?;

    let sealed_at = Instant::now();
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("s-{i:05}")),
                namespace: Some(apps.name().to_owned()),
                labels: Some(string_map(&[("kseal-scale", "1")])),
                ..Default::default()
            },
            string_data: Some(string_map(&[
                ("username", "app"),
                ("password", &format!("pw-{i}-{}", rand::random::<u64>())),
            ])),
            ..Default::default()
        };
        items.push(seal(&cert, secret)?);
    }
    let seal_time = sealed_at.elapsed();
    let ss_api: Api<SealedSecret> = apps.api();
    let created_at = Instant::now();
    futures::stream::iter(items.into_iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(16, |ss| {
            let api = ss_api.clone();
            async move {
                api.create(&PostParams::default(), &ss).await?;
                Ok(())
            }
        })
        .await?;
    let create_time = created_at.elapsed();

    let secrets: Api<Secret> = apps.api();
    let started = Instant::now();
    ctl.start_again().await?;
    let ready = started.elapsed();
    let unsealed = wait_all(&secrets, n, Duration::from_secs(900)).await?;
    let total = started.elapsed();
    let m = ctl.metrics().await?;
    let decryptions = metric(&m, "sealed_secrets_controller_rsa_decryptions_total");
    let requests = metric(&m, "sealed_secrets_controller_unseal_requests_total");
    let rss = peak_rss_kib(ctl.pid().context("no pid")?)?;

    // Restart: every Secret matches its ownership mark.
    ctl.stop().await?;
    let restarted = Instant::now();
    ctl.start_again().await?;
    let mut resync = None;
    let mut m2 = String::new();
    while restarted.elapsed() < Duration::from_secs(600) {
        m2 = ctl.metrics().await?;
        if metric(&m2, "sealed_secrets_controller_unseal_requests_total") >= n as f64 {
            resync = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resync = resync.context("the restarted controller did not pass over every SealedSecret")?;
    let decryptions2 = metric(&m2, "sealed_secrets_controller_rsa_decryptions_total");
    let rss2 = peak_rss_kib(ctl.pid().context("no pid")?)?;
    let still = count_secrets(&secrets).await?;

    let report = serde_json::json!({
        "sealed_secrets": n,
        "items_per_sealed_secret": 2,
        "key_bits": 4096,
        "seal_seconds": seal_time.as_secs_f64(),
        "create_seconds": create_time.as_secs_f64(),
        "controller_ready_seconds": ready.as_secs_f64(),
        "first_start": {
            "seconds_to_all_secrets": total.as_secs_f64(),
            "seconds_after_ready": unsealed.as_secs_f64(),
            "secrets_per_second": n as f64 / total.as_secs_f64(),
            "rsa_decryptions": decryptions,
            "unseal_requests": requests,
            "peak_rss_mib": rss as f64 / 1024.0,
        },
        "restart": {
            "seconds_to_pass_over_all": resync.as_secs_f64(),
            "rsa_decryptions": decryptions2,
            "peak_rss_mib": rss2 as f64 / 1024.0,
            "secrets_present": still,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Ok(path) = std::env::var("KSEAL_SCALE_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path}"))?;
    }
    ctl.finish().await?;
    apps.cleanup().await
}
