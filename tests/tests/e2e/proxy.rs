//! The controller's HTTP API through the REAL API server's service proxy, as kubeseal and
//! `kseal cert` / `validate` / `reencrypt` reach it: the controller runs in a network namespace
//! behind a selector-less Service (`kseal_e2e::netns`), and the requests come from a
//! ServiceAccount that holds nothing but Bitnami's `sealed-secrets-service-proxier` rules.

use anyhow::{ensure, Context as _, Result};
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_e2e::controller::{base_secret, seal};
use kseal_e2e::netns::{
    client_without_retry, proxy_get, proxy_post, service_proxy_path, ProxiedController,
};
use kseal_e2e::Permissions;

/// GET `/v1/cert.pem` through `path`: 200 and the controller's newest certificate.
async fn check_cert(
    client: &kseal_e2e::kube::Client,
    path: &str,
    want: &Certificate,
) -> Result<()> {
    let r = proxy_get(client, path).await?;
    ensure!(r.status == 200, "GET {path}: {} {:?}", r.status, r.body);
    let got = Certificate::from_pem(r.body.as_bytes())
        .with_context(|| format!("GET {path} answered {:?}", r.body))?;
    ensure!(
        &got == want,
        "GET {path} gave certificate {got:?}, the key Secret has {want:?}"
    );
    Ok(())
}

#[tokio::test]
async fn cert_verify_and_rotate_through_the_service_proxy() -> Result<()> {
    let pc = ProxiedController::start().await?;
    ensure!(
        pc.forwarder().connections() > 0,
        "the controller never connected through the API server forwarder"
    );
    let want = pc.controller().sealing_certificate().await?;
    let user = pc.proxier_identity("kubeseal", pc.service_name()).await?;
    let client = client_without_retry(user.kubeconfig_path()).await?;

    // kubeseal --fetch-cert / kseal cert.
    check_cert(&client, &pc.proxy_path("/v1/cert.pem"), &want).await?;

    // The port name must match: `http:<svc>:` (the unnamed port) finds no endpoint here.
    let unnamed = service_proxy_path(
        pc.namespace(),
        &format!("http:{}:", pc.service_name()),
        "/v1/cert.pem",
    );
    let r = proxy_get(&client, &unnamed).await?;
    ensure!(
        r.status == 503,
        "GET {unnamed} on a named port: {} {:?}",
        r.status,
        r.body
    );

    // kubeseal --validate / kseal validate: 200 when it opens, 409 when not (a renamed copy:
    // the strict scope binds the name).
    let sealed = seal(&want, base_secret(pc.namespace()))?;
    let verify = pc.proxy_path("/v1/verify");
    let r = proxy_post(&client, &verify, serde_json::to_vec(&sealed)?).await?;
    ensure!(r.status == 200, "verify: {} {:?}", r.status, r.body);
    let mut renamed = sealed.clone();
    renamed.metadata.name = Some("renamed".to_owned());
    let r = proxy_post(&client, &verify, serde_json::to_vec(&renamed)?).await?;
    ensure!(
        r.status == 409,
        "verify of a renamed copy: {} {:?}",
        r.status,
        r.body
    );

    // kubeseal --re-encrypt / kseal reencrypt: the SealedSecret back, re-sealed.
    let r = proxy_post(
        &client,
        &pc.proxy_path("/v1/rotate"),
        serde_json::to_vec(&sealed)?,
    )
    .await?;
    ensure!(r.status == 200, "rotate: {} {:?}", r.status, r.body);
    let rotated: SealedSecret =
        serde_json::from_str(&r.body).with_context(|| format!("rotate answered {:?}", r.body))?;
    ensure!(
        rotated.metadata.name == sealed.metadata.name
            && rotated.metadata.namespace == sealed.metadata.namespace,
        "rotate changed the identity: {:?}",
        rotated.metadata
    );
    let items = |ss: &SealedSecret| ss.spec.encrypted_data.clone();
    ensure!(
        items(&rotated).keys().eq(items(&sealed).keys()),
        "rotate changed the items: {:?} -> {:?}",
        items(&sealed).keys().collect::<Vec<_>>(),
        items(&rotated).keys().collect::<Vec<_>>()
    );
    ensure!(
        items(&rotated) != items(&sealed),
        "rotate returned the same ciphertexts"
    );
    let r = proxy_post(&client, &verify, serde_json::to_vec(&rotated)?).await?;
    ensure!(
        r.status == 200,
        "verify of the rotated SealedSecret: {} {:?}",
        r.status,
        r.body
    );

    // RBAC is what gates it: rules for another Service's name, or none, get 403.
    let other = pc.proxier_identity("other", "another-controller").await?;
    let r = proxy_get(
        &client_without_retry(other.kubeconfig_path()).await?,
        &pc.proxy_path("/v1/cert.pem"),
    )
    .await?;
    ensure!(
        r.status == 403,
        "proxier of another Service: {} {:?}",
        r.status,
        r.body
    );
    let nobody = pc
        .test_namespace()?
        .identity_with("nobody", Permissions::default())
        .await?;
    let r = proxy_post(
        &client_without_retry(nobody.kubeconfig_path()).await?,
        &verify,
        serde_json::to_vec(&sealed)?,
    )
    .await?;
    ensure!(
        r.status == 403,
        "identity without rules: {} {:?}",
        r.status,
        r.body
    );

    drop((user, other, nobody));
    pc.finish().await
}

/// Bitnami's static manifest names no Service port: kubeseal's path is then
/// `http:<svc>:` (also plain `<svc>`), and `http:<svc>:http` finds no endpoint.
#[tokio::test]
async fn unnamed_service_port_is_reached_as_http_svc_colon() -> Result<()> {
    const STATIC: &str = "sealed-secrets-static";
    let pc = ProxiedController::start().await?;
    pc.expose(STATIC, None).await?;
    let want = pc.controller().sealing_certificate().await?;
    let user = pc.proxier_identity("kubeseal", STATIC).await?;
    let client = client_without_retry(user.kubeconfig_path()).await?;
    let ns = pc.namespace().to_owned();

    for spec in [format!("http:{STATIC}:"), STATIC.to_owned()] {
        check_cert(
            &client,
            &service_proxy_path(&ns, &spec, "/v1/cert.pem"),
            &want,
        )
        .await?;
    }
    let sealed = seal(&want, base_secret(&ns))?;
    let verify = service_proxy_path(&ns, &format!("http:{STATIC}:"), "/v1/verify");
    let r = proxy_post(&client, &verify, serde_json::to_vec(&sealed)?).await?;
    ensure!(r.status == 200, "verify: {} {:?}", r.status, r.body);

    // The API server matches the port name exactly: no port named `http` here.
    let named = service_proxy_path(&ns, &format!("http:{STATIC}:http"), "/v1/cert.pem");
    let r = proxy_get(&client, &named).await?;
    ensure!(
        r.status == 503,
        "GET {named} on an unnamed port: {} {:?}",
        r.status,
        r.body
    );

    drop(user);
    pc.finish().await
}

/// Two network namespaces of one process get distinct subnets and names, and both go away.
#[tokio::test]
async fn network_namespaces_are_distinct_and_removed() -> Result<()> {
    // Needs no cluster.
    let a = kseal_e2e::NetNs::create()?;
    let b = kseal_e2e::NetNs::create()?;
    ensure!(a.name() != b.name(), "same name {}", a.name());
    ensure!(
        u32::from(a.host_addr()) / 4 != u32::from(b.host_addr()) / 4,
        "same subnet {} / {}",
        a.host_addr(),
        b.host_addr()
    );
    // Inside: the veth end with its address, and loopback.
    let out = a
        .command("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .context("ip netns exec … ip addr")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains(&format!("{}/30", a.inner_addr())) && text.contains("lo "),
        "addresses inside {}: {text}",
        a.name()
    );
    let names = [a.name().to_owned(), b.name().to_owned()];
    drop((a, b));
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()?;
    let list = String::from_utf8_lossy(&list.stdout);
    for name in names {
        ensure!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "network namespace {name} still exists: {list}"
        );
    }
    Ok(())
}
