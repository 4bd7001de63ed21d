//! Hostile tenants on a real API server (the hardening cases): objects built to crash, stall
//! or read through the controller. While one namespace holds them, a SealedSecret in another
//! namespace still becomes a Secret within seconds, the controller process never restarts or
//! panics, every hostile object's status names the bound it hit, and a canary value appears
//! nowhere (log, events, status).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Event, Secret};
use kseal_crds::SealedSecret;
use kseal_e2e::controller::{
    base_secret, bytes_map, check_data, consistently_absent, eventually_secret, seal, seal_item,
    string_map, synced_condition, wait_synced,
};
use kseal_e2e::kube::api::{ListParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{Controller, TestNamespace};

/// A SealedSecret with only templated data (no encrypted items), as any tenant can write.
fn templated(namespace: &str, name: &str, template: &str) -> Result<SealedSecret> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"encryptedData": {}, "template": {"data": {"x": template}}},
    }))?)
}

async fn create(api: &Api<SealedSecret>, ss: &SealedSecret) -> Result<()> {
    api.create(&PostParams::default(), ss)
        .await
        .with_context(|| format!("creating {:?}", ss.metadata.name))?;
    Ok(())
}

/// Waits for Synced=False and returns the condition's message and reason.
async fn refused(api: &Api<SealedSecret>, name: &str) -> Result<(String, String)> {
    let ss = wait_synced(api, name, "False").await?;
    let c = synced_condition(&ss).context("no condition")?;
    Ok((
        c.message.clone().unwrap_or_default(),
        c.reason.clone().unwrap_or_default(),
    ))
}

#[tokio::test]
async fn hostile_objects_never_crash_stall_or_leak() -> Result<()> {
    let hostile = TestNamespace::new("hostile").await?;
    let good = TestNamespace::new("hostile-good").await?;
    let ctl = Controller::builder()
        .prefix("hostile-ctl")
        .watch(hostile.name())
        .watch(good.name())
        .flag("--log-level", "DEBUG")
        .start()
        .await?;
    let pid = ctl.pid().context("the controller runs as a process")?;
    let cert = ctl.sealing_certificate().await?;
    let ss_api: Api<SealedSecret> = hostile.api();
    let ns = hostile.name();
    let canary = format!("kseal-hostile-canary-{}", rand::random::<u64>());

    // 1. Templates that abort, panic or overflow the stack of an unbounded engine.
    let cases = [
        (
            "repeat-huge",
            r#"{{ repeat 100000000000 "x" }}"#.to_string(),
            "repeat: the result would exceed the limit of 1048576 bytes",
        ),
        (
            "repeat-max",
            r#"{{ repeat 9223372036854775807 "x" }}"#.to_string(),
            "repeat: the result would exceed the limit of 1048576 bytes",
        ),
        (
            "indent-huge",
            r#"{{ indent 100000000000 "x" }}"#.to_string(),
            "indent: the result would exceed the limit of 1048576 bytes",
        ),
        (
            "deep-parens",
            format!(
                "{{{{ {}\"x\"{} }}}}",
                "(".repeat(12_000),
                ")".repeat(12_000)
            ),
            "parentheses nest deeper than the limit of 32",
        ),
        (
            "work",
            r#"{{ repeat 1000000 "x" | upper | lower | upper | lower | upper | lower | len }}"#
                .repeat(4),
            "the templates exceed the work limit of 16777216 bytes of values",
        ),
    ];
    for (name, template, _) in &cases {
        create(&ss_api, &templated(ns, name, template)?).await?;
    }

    // 2. Too many items: refused before any decryption.
    let mut many = templated(ns, "too-many-items", "x")?;
    many.spec.template.data = None;
    for i in 0..300 {
        many.spec
            .encrypted_data
            .insert(format!("k{i}"), "AgA=".to_string());
    }
    create(&ss_api, &many).await?;

    // 3. Read-through: a template that would quote the decrypted value in its error.
    let mut secret = base_secret(ns);
    secret.metadata.name = Some("read-through".into());
    secret.data = Some(bytes_map(&[("foo", &canary)]));
    let mut read = seal(&cert, secret)?;
    read.spec.template.data = Some(string_map(&[
        ("a", "{{ index . .foo }}"),
        ("b", "{{ printf .foo }}"),
    ]));
    create(&ss_api, &read).await?;

    // Meanwhile another tenant's SealedSecret converges at its normal pace.
    let start = Instant::now();
    let good_ss = seal(&cert, base_secret(good.name()))?;
    create(&good.api(), &good_ss).await?;
    let good_secrets: Api<Secret> = good.api();
    eventually_secret(&good_secrets, "testsecret", |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    let converged = start.elapsed();
    ensure!(
        converged < Duration::from_secs(10),
        "the other namespace took {converged:?}"
    );
    eprintln!("other namespace converged in {converged:?} next to the hostile objects");

    // Every hostile object says which bound it hit; none became a Secret.
    for (name, _, want) in &cases {
        let (message, reason) = refused(&ss_api, name).await?;
        ensure!(message.contains(want), "{name}: {message}");
        ensure!(reason == "UnsealFailed", "{name}: reason {reason}");
    }
    let (message, reason) = refused(&ss_api, "too-many-items").await?;
    ensure!(
        message.contains("hold 300 items, over the limit of 256") && reason == "LimitExceeded",
        "{reason}: {message}"
    );
    let (message, _) = refused(&ss_api, "read-through").await?;
    ensure!(
        message.contains("the name is computed from a secret value and not shown"),
        "{message}"
    );
    let secrets: Api<Secret> = hostile.api();
    for name in [
        "repeat-huge",
        "deep-parens",
        "too-many-items",
        "read-through",
    ] {
        consistently_absent(&secrets, name).await?;
    }

    // Never restarted, never panicked.
    ensure!(ctl.pid() == Some(pid), "the controller was restarted");
    ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the controller is gone"
    );
    let logs = ctl.logs();
    ensure!(!logs.contains("panicked"), "the controller panicked");

    // The canary is nowhere.
    let events = Api::<Event>::namespaced(hostile.client().clone(), ns)
        .list(&ListParams::default())
        .await?;
    let statuses = ss_api.list(&ListParams::default()).await?;
    for (place, text) in [
        ("the log", logs),
        ("the events", serde_json::to_string(&events.items)?),
        (
            "the status",
            serde_json::to_string(&statuses.items.iter().map(|s| &s.status).collect::<Vec<_>>())?,
        ),
    ] {
        ensure!(!text.contains(&canary), "the canary appears in {place}");
    }
    ctl.finish().await?;
    good.cleanup().await?;
    hostile.cleanup().await
}

/// Case 6: a SealedSecret in the controller's namespace cannot hand the controller a key,
/// neither through a key label on its template nor by the legacy key's name.
#[tokio::test]
async fn a_sealed_secret_cannot_plant_a_key() -> Result<()> {
    let ctl = Controller::builder().prefix("plant").start().await?;
    let ns = ctl.namespace().to_owned();
    let admin = ctl.admin_client()?.clone();
    let cert = ctl.sealing_certificate().await?;
    let ss_api: Api<SealedSecret> = Api::namespaced(admin.clone(), &ns);

    // An attacker's key pair, sealed so that it would open.
    let attacker = kseal_crypto::keygen::generate(
        &mut rand::rngs::OsRng,
        &kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    )?;
    let key_pem = attacker.to_pkcs1_pem()?.to_string();
    let crt_pem = attacker.certificate().context("a certificate")?.to_pem();
    let plant = |name: &str, label: bool| -> Result<SealedSecret> {
        let mut s = base_secret(&ns);
        s.metadata.name = Some(name.into());
        s.type_ = Some("kubernetes.io/tls".into());
        s.metadata.labels = label
            .then(|| string_map(&[("sealedsecrets.bitnami.com/sealed-secrets-key", "active")]));
        s.data = Some(bytes_map(&[("tls.key", &key_pem), ("tls.crt", &crt_pem)]));
        seal(&cert, s)
    };
    create(&ss_api, &plant("innocent", true)?).await?;
    create(&ss_api, &plant("sealed-secrets-key", false)?).await?;
    for name in ["innocent", "sealed-secrets-key"] {
        let (message, reason) = refused(&ss_api, name).await?;
        ensure!(reason == "KeySecretRefused", "{name}: {reason}: {message}");
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    consistently_absent(&secrets, "innocent").await?;
    ensure!(
        ctl.key_secrets().await?.len() == 1,
        "one key, the controller's"
    );
    let served = ctl.get("/v1/cert.pem").await?;
    let served = kseal_crypto::Certificate::from_pem(served.body.as_bytes())?;
    ensure!(
        served.fingerprint() == cert.fingerprint(),
        "the sealing key changed"
    );
    // A plain Secret there is made as usual.
    let mut ok = base_secret(&ns);
    ok.metadata.name = Some("app-config".into());
    let mut sealed_ok = seal(&cert, ok)?;
    sealed_ok.spec.encrypted_data.insert(
        "extra".into(),
        seal_item(&cert, &format!("{ns}/app-config"), b"v")?,
    );
    create(&ss_api, &sealed_ok).await?;
    eventually_secret(&secrets, "app-config", |s| {
        check_data(s, &[("foo", "bar"), ("extra", "v")])
    })
    .await?;
    ctl.finish().await
}
