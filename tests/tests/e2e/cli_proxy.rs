//! `kseal validate`, `kseal reencrypt` and `kseal rotate` through the real API server's service
//! proxy to the real controller (running in a network namespace; see tests/src/netns.rs).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_crds::SealedSecret;
use kseal_e2e::bins::{kseal, Run};
use kseal_e2e::controller::{check_data, eventually_secret, seal, string_map};
use kseal_e2e::kube::api::PostParams;
use kseal_e2e::netns::service_proxier_rules;
use kseal_e2e::{Cluster, ProxiedController};

fn ok(r: &Run, what: &str) -> Result<()> {
    ensure!(
        r.code == Some(0),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
    Ok(())
}

fn secret(ns: &str, name: &str, i: usize) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some(string_map(&[
            ("username", &format!("user-{i}")),
            ("password", &format!("pw-{i}")),
        ])),
        ..Default::default()
    }
}

/// A SealedSecret file with comments, as people commit them.
fn commented_yaml(ss: &SealedSecret, i: usize) -> Result<String> {
    let body = kseal_gocompat::to_k8s_yaml(ss)?;
    Ok(format!(
        "# app {i}: database credentials\n# rotate with kseal rotate\n{}",
        body.replace("spec:\n", "spec:\n  # sealed for the test cluster\n")
    ))
}

fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

fn args<'a>(base: &[&'a str], kc: &'a str, pc: &'a ProxiedController) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend_from_slice(&["--kubeconfig", kc, "--controller-namespace", pc.namespace()]);
    v
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn validate_names_what_fails_and_passes_what_is_right() -> Result<()> {
    let pc = ProxiedController::start().await?;
    let ns = pc.namespace().to_owned();
    let cert = pc.controller().sealing_certificate().await?;
    let admin = p(Cluster::shared()?.kubeconfig_path());
    // A user with only Bitnami's service-proxier rules (what every authenticated user gets).
    let user = pc
        .test_namespace()?
        .identity("proxy-user", service_proxier_rules(pc.service_name())?)
        .await?;
    let user_kc = p(user.kubeconfig_path());

    let dir = tempfile::tempdir()?;
    let good = seal(&cert, secret(&ns, "good", 1))?;
    std::fs::write(dir.path().join("good.yaml"), commented_yaml(&good, 1)?)?;
    // Renamed after sealing (strict scope): no item opens.
    let mut renamed = seal(&cert, secret(&ns, "original", 2))?;
    renamed.metadata.name = Some("renamed".into());
    if let Some(t) = renamed.spec.template.metadata.as_mut() {
        t.name = Some("renamed".into());
    }
    // Items copied together from two SealedSecrets: only the foreign one fails.
    let mut mixed = seal(&cert, secret(&ns, "mixed", 3))?;
    let other = seal(&cert, secret(&ns, "other", 4))?;
    mixed.spec.encrypted_data.insert(
        "copied".into(),
        other.spec.encrypted_data["password"].clone(),
    );
    std::fs::create_dir(dir.path().join("sub"))?;
    std::fs::write(
        dir.path().join("sub/bad.yaml"),
        format!(
            "{}---\n{}",
            kseal_gocompat::to_k8s_yaml(&renamed)?,
            kseal_gocompat::to_k8s_yaml(&mixed)?
        ),
    )?;
    std::fs::write(
        dir.path().join("notes.yaml"),
        "kind: ConfigMap\napiVersion: v1\n",
    )?;

    let r = kseal(&args(&["validate", &p(dir.path())], &user_kc, &pc), None)?;
    ensure!(
        r.code == Some(1),
        "exit {:?}: {}{}",
        r.code,
        r.stdout,
        r.stderr
    );
    ensure!(
        r.stdout
            .contains(&format!("ok    {}", p(&dir.path().join("good.yaml")))),
        "{}",
        r.stdout
    );
    ensure!(
        r.stdout.contains(&format!(
            "{ns}/renamed: cannot decrypt items password, username"
        )),
        "{}",
        r.stdout
    );
    ensure!(
        r.stdout
            .contains(&format!("{ns}/mixed: cannot decrypt item copied")),
        "{}",
        r.stdout
    );
    ensure!(
        r.stderr.contains("3 SealedSecrets checked, 2 failed"),
        "{}",
        r.stderr
    );

    let r = kseal(
        &args(
            &["validate", "-o", "json", &p(&dir.path().join("good.yaml"))],
            &admin,
            &pc,
        ),
        None,
    )?;
    ok(&r, "validate a good file")?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout)?;
    ensure!(
        v[0]["ok"] == true && v[0]["object"] == format!("{ns}/good"),
        "{v}"
    );

    // A user without the proxy rules: one line saying what is wrong.
    let nobody = pc.test_namespace()?.identity("nobody", vec![]).await?;
    let r = kseal(
        &args(
            &["validate", &p(dir.path())],
            &p(nobody.kubeconfig_path()),
            &pc,
        ),
        None,
    )?;
    ensure!(r.code == Some(2), "{r:?}");
    ensure!(
        r.stderr.trim_end().lines().count() == 1 && r.stderr.contains("RBAC"),
        "{}",
        r.stderr
    );
    pc.finish().await
}

#[tokio::test]
async fn reencrypt_and_rotate_change_only_encrypted_data() -> Result<()> {
    let pc = ProxiedController::start().await?;
    let ns = pc.namespace().to_owned();
    let admin = p(Cluster::shared()?.kubeconfig_path());
    let cert1 = pc.controller().sealing_certificate().await?;
    let dir = tempfile::tempdir()?;
    let mut originals = BTreeMap::new();
    for i in 0..20 {
        let ss = seal(&cert1, secret(&ns, &format!("app-{i:02}"), i))?;
        let text = commented_yaml(&ss, i)?;
        let path = dir.path().join(format!("app-{i:02}.yaml"));
        std::fs::write(&path, &text)?;
        originals.insert(path, text);
    }
    std::fs::write(dir.path().join("README.md"), "not yaml")?;
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\n",
    )?;

    // Nothing to do while the first key is the newest.
    let r = kseal(&args(&["reencrypt", &p(dir.path())], &admin, &pc), None)?;
    ok(&r, "reencrypt with the same key")?;
    ensure!(
        r.stderr
            .contains("0 changed, 20 unchanged, 0 failed, 1 skipped"),
        "{}",
        r.stderr
    );

    // rotate = renew + reencrypt.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = kseal(&args(&["rotate", &p(dir.path())], &admin, &pc), None)?;
    ok(&r, "rotate")?;
    ensure!(
        r.stderr
            .contains("20 changed, 0 unchanged, 0 failed, 1 skipped"),
        "{}",
        r.stderr
    );
    let keys = pc.controller().key_secrets().await?;
    ensure!(keys.len() == 2, "{} keys", keys.len());
    let cert2 = pc.controller().sealing_certificate().await?;
    ensure!(cert2.fingerprint() != cert1.fingerprint());

    for (path, before) in &originals {
        let after = std::fs::read_to_string(path)?;
        for (a, b) in changed_lines(before, &after) {
            let key = a.trim_start().split(':').next().unwrap_or("");
            ensure!(
                [
                    "password",
                    "username",
                    "sealedsecrets.kseal.dev/sealed-with"
                ]
                .contains(&key),
                "{}: unexpected change {a:?} -> {b:?}",
                path.display()
            );
        }
        ensure!(after.lines().count() == before.lines().count());
        ensure!(after.starts_with("# app "), "comments kept");
        let ss: SealedSecret = serde_yaml::from_str(&after)?;
        ensure!(
            kseal_sealing::sealed_with(&ss) == vec![cert2.fingerprint().clone()],
            "sealed with the new key"
        );
    }
    // Everything still decrypts: the controller unseals every re-encrypted file.
    let api = kseal_e2e::kube::Api::<SealedSecret>::namespaced(pc.admin_client()?.clone(), &ns);
    for path in originals.keys() {
        let ss: SealedSecret = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
        api.create(&PostParams::default(), &ss).await?;
    }
    let secrets = kseal_e2e::kube::Api::<Secret>::namespaced(pc.admin_client()?.clone(), &ns);
    for i in 0..20 {
        eventually_secret(&secrets, &format!("app-{i:02}"), |s| {
            check_data(
                s,
                &[
                    ("username", &format!("user-{i}")),
                    ("password", &format!("pw-{i}")),
                ],
            )
        })
        .await
        .with_context(|| format!("app-{i:02}"))?;
    }
    // And a second run changes nothing.
    let r = kseal(&args(&["reencrypt", &p(dir.path())], &admin, &pc), None)?;
    ok(&r, "reencrypt again")?;
    ensure!(r.stderr.contains("0 changed, 20 unchanged"), "{}", r.stderr);
    pc.finish().await
}
