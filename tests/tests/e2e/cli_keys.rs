//! The cluster-facing CLI without the service proxy (issue 5): `kseal cert`/`seal` with the
//! certificate the controller publishes (as a user who may only read that ConfigMap),
//! `kseal keys list|backup|restore|renew` against the real controller, and the one-line errors
//! for an unreachable cluster, a missing controller and RBAC denied.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_e2e::bins::{kseal, Run};
use kseal_e2e::controller::{base_secret, check_data, eventually_secret, seal};
use kseal_e2e::kube::api::{ListParams, Patch, PatchParams, PostParams};
use kseal_e2e::{rule, Cluster, Controller, TestNamespace};

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

fn one_line_error(r: &Run, code: i32, what: &str) -> Result<String> {
    ensure!(
        r.code == Some(code),
        "{what}: exit {:?}, want {code}; stderr: {}",
        r.code,
        r.stderr
    );
    let line = r.stderr.trim_end();
    ensure!(
        line.lines().count() == 1 && line.starts_with("kseal: error: "),
        "{what}: want one error line, got {line:?}"
    );
    Ok(line.to_owned())
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn cert_and_seal_use_the_published_certificate() -> Result<()> {
    let home = TestNamespace::new("cli-cert").await?;
    let ctl_ns = home.name().to_owned();
    // A user who may only read the certificate ConfigMap (what the shipped
    // sealed-secrets-cert-reader Role grants every authenticated user).
    let mut reader_rule = rule(&[""], &["configmaps"], &["get"]);
    reader_rule.resource_names = Some(vec!["sealed-secrets-cert".into()]);
    let user = home.identity("cert-reader", vec![reader_rule]).await?;
    let apps = TestNamespace::new("cli-cert-apps").await?;
    let ctl = Controller::builder()
        .in_namespace(home)
        .watch(apps.name())
        .start()
        .await?;
    let want = ctl.sealing_certificate().await?.fingerprint().to_string();
    let kc = path_str(user.kubeconfig_path());

    // The certificate appears in the ConfigMap shortly after start-up.
    let r = kseal_e2e::eventually("kseal cert", std::time::Duration::from_secs(15), || {
        let kc = kc.clone();
        let ns = ctl_ns.clone();
        async move {
            let r = kseal(
                &[
                    "cert",
                    "--fingerprint",
                    "--kubeconfig",
                    &kc,
                    "--controller-namespace",
                    &ns,
                ],
                None,
            )?;
            Ok((r.code == Some(0)).then_some(r))
        }
    })
    .await?;
    ensure!(r.stdout.trim() == want, "{} != {want}", r.stdout.trim());

    // Sealing without --cert, the namespace from -n.
    let secret = serde_json::to_vec(&base_secret(apps.name()))?;
    let r = kseal(
        &[
            "seal",
            "--kubeconfig",
            &kc,
            "--controller-namespace",
            &ctl_ns,
            "-o",
            "yaml",
        ],
        Some(&secret),
    )?;
    ok(&r, "kseal seal without --cert")?;
    let ss: SealedSecret = serde_yaml::from_str(&r.stdout)?;
    apps.api::<SealedSecret>()
        .create(&PostParams::default(), &ss)
        .await?;
    eventually_secret(&apps.api::<Secret>(), "testsecret", |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;

    // No controller in that namespace: one line saying what to do.
    let r = kseal(
        &[
            "cert",
            "--kubeconfig",
            &kc,
            "--controller-namespace",
            "no-such-namespace",
        ],
        None,
    )?;
    let line = one_line_error(&r, 2, "cert from a namespace without controller")?;
    ensure!(line.contains("--controller-name"), "{line}");

    // An unreachable cluster.
    let dir = tempfile::tempdir()?;
    let dead = dir.path().join("kubeconfig");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )?;
    let r = kseal(&["cert", "--kubeconfig", &path_str(&dead)], None)?;
    let line = one_line_error(&r, 2, "cert from an unreachable cluster")?;
    ensure!(
        line.contains("reachable") || line.contains("--cert"),
        "{line}"
    );
    ctl.finish().await?;
    apps.cleanup().await
}

#[tokio::test]
async fn keys_list_renew_backup_restore() -> Result<()> {
    let home = TestNamespace::new("cli-keys").await?;
    let ctl_ns = home.name().to_owned();
    // The key-renewer Role: patch the renewal ConfigMap; the certificate is only readable.
    let mut renew_rule = rule(&[""], &["configmaps"], &["get", "patch"]);
    renew_rule.resource_names = Some(vec!["sealed-secrets-cert-renewal".into()]);
    let mut read_cert = rule(&[""], &["configmaps"], &["get"]);
    read_cert.resource_names = Some(vec!["sealed-secrets-cert".into()]);
    let renewer = home
        .identity("renewer", vec![renew_rule, read_cert])
        .await?;
    let nobody = home.identity("nobody", vec![]).await?;
    let ctl = Controller::builder().in_namespace(home).start().await?;
    let admin = path_str(Cluster::shared()?.kubeconfig_path());
    let keys_cmd = |sub: &[&str], kc: &str| {
        let mut args = vec!["keys"];
        args.extend_from_slice(sub);
        args.extend_from_slice(&["--kubeconfig", kc, "--controller-namespace", &ctl_ns]);
        kseal(&args, None)
    };

    // list: one RSA key and one age identity, each the sealing one of its type.
    let rsa_keys = |stdout: &str| -> Result<Vec<serde_json::Value>> {
        let all: serde_json::Value = serde_json::from_str(stdout)?;
        let all = all.as_array().context("a JSON array")?.clone();
        ensure!(
            all.iter().any(|k| k["type"] == "age") && all.iter().any(|k| k["type"] == "age-pq"),
            "the controller's age identities (X25519 and post-quantum) are listed: {all:?}"
        );
        Ok(all.into_iter().filter(|k| k["type"] == "rsa").collect())
    };
    // The controller writes its age identity a moment after its RSA key (which start() waits
    // for): list until both are there.
    let keys = kseal_e2e::eventually(
        "keys list to show the RSA key and the age identity",
        std::time::Duration::from_secs(60),
        || async {
            let r = keys_cmd(&["list", "-o", "json"], &admin)?;
            ok(&r, "keys list")?;
            Ok(rsa_keys(&r.stdout).ok())
        },
    )
    .await?;
    ensure!(keys.len() == 1, "{keys:?}");
    ensure!(keys[0]["sealing"] == true && keys[0]["state"] == "active");
    let first = keys[0]["fingerprint"].as_str().context("fp")?.to_owned();

    // Seal something with the first key.
    let cert1 = ctl.sealing_certificate().await?;
    let ss = seal(&cert1, base_secret(&ctl_ns))?;
    let dir = tempfile::tempdir()?;
    let ss_file = dir.path().join("ss.json");
    std::fs::write(&ss_file, serde_json::to_vec(&ss)?)?;

    // renew as a user who may only patch the ConfigMap; a user without rights is refused.
    let r = keys_cmd(&["renew"], &path_str(nobody.kubeconfig_path()))?;
    let line = one_line_error(&r, 2, "keys renew without RBAC")?;
    ensure!(
        line.contains("sealed-secrets-key-renewer") || line.contains("forbidden"),
        "{line}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100)); // key times have 1 s resolution
    let r = keys_cmd(
        &["renew", "--timeout", "60"],
        &path_str(renewer.kubeconfig_path()),
    )?;
    ok(&r, "keys renew")?;
    let second = r.stdout.trim().to_owned();
    ensure!(second.starts_with("SHA256:") && second != first, "{second}");
    let r = keys_cmd(&["list", "-o", "json"], &admin)?;
    ok(&r, "keys list")?;
    let list = rsa_keys(&r.stdout)?;
    ensure!(list.len() == 2, "{list:?}");
    let sealing: Vec<_> = list.iter().filter(|k| k["sealing"] == true).collect();
    ensure!(
        sealing.len() == 1 && sealing[0]["fingerprint"] == second.as_str(),
        "the new key seals: {list:?}"
    );

    // Renewal also made a second age identity of each kind, X25519 and post-quantum (right
    // after the RSA key).
    let ctl_secrets = kseal_e2e::kube::Api::<Secret>::namespaced(
        Cluster::shared()?.admin_client().await?,
        &ctl_ns,
    );
    kseal_e2e::eventually(
        "a second age identity",
        std::time::Duration::from_secs(15),
        || {
            let api = ctl_secrets.clone();
            async move {
                let n = api
                    .list(&ListParams::default().labels("sealedsecrets.kseal.dev/age-identity"))
                    .await?
                    .items
                    .len();
                Ok((n == 4).then_some(()))
            }
        },
    )
    .await?;

    // backup: 0600, opens what the first key sealed, never overwrites.
    let backup = dir.path().join("backup.yaml");
    let r = keys_cmd(&["backup", "-w", &path_str(&backup)], &admin)?;
    ok(&r, "keys backup")?;
    let mode = std::fs::metadata(&backup)?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "backup mode {mode:o}");
    let r = kseal(
        &[
            "unseal",
            "--key",
            &path_str(&backup),
            "-f",
            &path_str(&ss_file),
        ],
        None,
    )?;
    ok(&r, "unseal with the backup")?;
    ensure!(r.stdout.contains("\"foo\": \"YmFy\""), "{}", r.stdout);
    // The output applies as it is (no ownerReference with an empty uid, which the API server
    // refuses): a server-side dry run of `kubectl apply`.
    let unsealed: Secret = serde_json::from_str(&r.stdout).context("unseal prints a Secret")?;
    let name = unsealed.metadata.name.clone().context("name")?;
    let ns = unsealed.metadata.namespace.clone().context("namespace")?;
    let mut apply = PatchParams::apply("kubectl").force();
    apply.dry_run = true;
    kseal_e2e::kube::Api::<Secret>::namespaced(ctl.admin_client()?.clone(), &ns)
        .patch(&name, &apply, &Patch::Apply(&unsealed))
        .await
        .context("the unsealed Secret applies as it is")?;
    let r = keys_cmd(&["backup", "-w", &path_str(&backup)], &admin)?;
    one_line_error(&r, 2, "backup over an existing file")?;

    // restore into another namespace (a new cluster): both RSA keys and the four age identities
    // (two X25519, two post-quantum) created, then kept.
    let other = TestNamespace::new("cli-keys-restore").await?;
    let restore = |kc: &str| {
        kseal(
            &[
                "keys",
                "restore",
                &path_str(&backup),
                "--kubeconfig",
                kc,
                "--controller-namespace",
                other.name(),
            ],
            None,
        )
    };
    let r = restore(&admin)?;
    ok(&r, "keys restore")?;
    ensure!(r.stdout.matches("restored").count() == 6, "{}", r.stdout);
    let restored = other
        .api::<Secret>()
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"))
        .await?;
    ensure!(restored.items.len() == 2);
    let age = other
        .api::<Secret>()
        .list(&ListParams::default().labels("sealedsecrets.kseal.dev/age-identity=active"))
        .await?;
    ensure!(age.items.len() == 4, "age identities restored");
    let pq = age
        .items
        .iter()
        .filter(|s| {
            s.data
                .as_ref()
                .and_then(|d| d.get("age.key"))
                .is_some_and(|k| String::from_utf8_lossy(&k.0).contains("AGE-SECRET-KEY-PQ-1"))
        })
        .count();
    ensure!(pq == 2, "post-quantum identities restored: {pq}");
    let r = restore(&admin)?;
    ok(&r, "keys restore again")?;
    ensure!(r.stdout.matches("exists").count() == 6, "{}", r.stdout);

    ctl.finish().await?;
    other.cleanup().await
}
