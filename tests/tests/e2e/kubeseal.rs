//! Bitnami's kubeseal integration scenarios IT-24..IT-32 (docs/compatibility.md, “Integration scenarios”) through kseal's
//! kubeseal front (the `kseal` binary run through a symlink named `kubeseal`), against the real
//! control plane and the real controller.
//!
//! The controller runs in a network namespace behind a selector-less Service
//! ([`ProxiedController`]), so the API server's service proxy reaches it as kubeseal expects:
//! `--fetch-cert` and sealing without `--cert` (the published ConfigMap, else `/v1/cert.pem`
//! through the proxy), `--validate` (`/v1/verify`) and `--re-encrypt` (`/v1/rotate`). The
//! controller's namespace is not `kube-system`, so kubeseal is told with
//! `--controller-namespace` (or `SEALED_SECRETS_CONTROLLER_NAMESPACE` where Bitnami's test
//! passes no argument at all). "Unseals with the cluster key" is checked the strongest way: the
//! SealedSecret is created and the controller must produce the Secret.
//!
//! IT-33..IT-35 need no cluster; they are in `cli/tests/kubeseal.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_e2e::controller::{check_data, eventually_secret, SECRET_NAME};
use kseal_e2e::kube::api::PostParams;
use kseal_e2e::kube::Api;
use kseal_e2e::{Cluster, Controller, ProxiedController, TestNamespace};
use tokio::io::AsyncWriteExt as _;

/// One kubeseal run.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> Result<&str> {
        ensure!(
            self.code == Some(0),
            "kubeseal failed ({:?}): {}",
            self.code,
            self.stderr
        );
        Ok(&self.stdout)
    }
}

/// A directory with `kubeseal` → the kseal binary, and kubeconfigs.
struct Kubeseal {
    dir: tempfile::TempDir,
}

impl Kubeseal {
    fn new() -> Result<Kubeseal> {
        let dir = tempfile::Builder::new()
            .prefix("kseal-e2e-kubeseal-")
            .tempdir()?;
        let kseal = kseal_e2e::bins::kseal_binary()?;
        std::os::unix::fs::symlink(&kseal, dir.path().join("kubeseal"))
            .context("linking kubeseal to kseal")?;
        Ok(Kubeseal { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A copy of the admin kubeconfig whose current context has `namespace`, and (when given)
    /// another server.
    fn kubeconfig(
        &self,
        name: &str,
        namespace: Option<&str>,
        server: Option<&str>,
    ) -> Result<PathBuf> {
        let admin = Cluster::shared()?.kubeconfig_path();
        let text = std::fs::read_to_string(admin)
            .with_context(|| format!("reading {}", admin.display()))?;
        let mut kc: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let current = kc["current-context"]
            .as_str()
            .context("admin kubeconfig has no current-context")?
            .to_owned();
        let mut cluster_name = String::new();
        for ctx in kc["contexts"].as_sequence_mut().context("no contexts")? {
            if ctx["name"].as_str() == Some(current.as_str()) {
                if let Some(ns) = namespace {
                    ctx["context"]["namespace"] = ns.into();
                }
                cluster_name = ctx["context"]["cluster"].as_str().unwrap_or("").to_owned();
            }
        }
        if let Some(server) = server {
            for c in kc["clusters"].as_sequence_mut().context("no clusters")? {
                if c["name"].as_str() == Some(cluster_name.as_str()) {
                    c["cluster"]["server"] = server.into();
                }
            }
        }
        let path = self.path(name);
        std::fs::write(&path, serde_yaml::to_string(&kc)?)?;
        Ok(path)
    }

    /// Runs `kubeseal args` with `env` only (no KUBECONFIG or SEALED_SECRETS_* of the test's
    /// own environment), in the temporary directory.
    async fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Result<Run> {
        let mut cmd = tokio::process::Command::new(self.path("kubeseal"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SEALED_SECRETS_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting kubeseal")?;
        let mut input = child.stdin.take().context("stdin")?;
        let _ = input.write_all(stdin).await;
        drop(input);
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            child.wait_with_output(),
        )
        .await
        .context("kubeseal did not finish within 120 s")??;
        Ok(Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Bitnami's base fixture as YAML input: Secret `testsecret`, label `mylabel=myvalue`,
/// `foo=bar`, in `namespace` (or none).
fn base_yaml(namespace: Option<&str>) -> String {
    let ns = namespace.map_or(String::new(), |n| format!("  namespace: {n}\n"));
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {SECRET_NAME}\n{ns}  labels:\n    mylabel: myvalue\ndata:\n  foo: YmFy\n")
}

/// Parses kubeseal's JSON output into one SealedSecret.
fn sealed(out: &str) -> Result<SealedSecret> {
    let v: serde_json::Value =
        serde_json::from_str(out).with_context(|| format!("kubeseal printed {out:?}"))?;
    ensure!(v["kind"] == "SealedSecret", "kind is {}", v["kind"]);
    ensure!(
        v["metadata"].get("annotations").is_none(),
        "kubeseal output carries annotations: {}",
        v["metadata"]
    );
    Ok(serde_json::from_value(v)?)
}

/// Creates `ss` in `namespace` and waits for the controller's Secret `foo=bar` there.
async fn expect_unsealed(ns: &TestNamespace, ss: &SealedSecret) -> Result<Secret> {
    Api::<SealedSecret>::namespaced(ns.client().clone(), ns.name())
        .create(&PostParams::default(), ss)
        .await
        .with_context(|| format!("creating the SealedSecret in {}", ns.name()))?;
    let secrets: Api<Secret> = ns.api();
    let secret =
        eventually_secret(&secrets, SECRET_NAME, |s| check_data(s, &[("foo", "bar")])).await?;
    ensure!(
        secret.metadata.namespace.as_deref() == Some(ns.name()),
        "Secret in {:?}",
        secret.metadata.namespace
    );
    Ok(secret)
}

/// PEM certificates of a PEM text, parsed.
fn certificates(pem: &str) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for block in pem.split_inclusive("-----END CERTIFICATE-----") {
        if block.contains("-----BEGIN CERTIFICATE-----") {
            out.push(Certificate::from_pem(block.as_bytes())?);
        }
    }
    Ok(out)
}

/// IT-24..IT-30: sealing through the cluster, namespaces, offline sealing, empty input, the
/// certificate, the version.
#[tokio::test]
async fn it24_to_it30_sealing_with_the_cluster() -> Result<()> {
    let testns = TestNamespace::new("testns").await?;
    let nons = TestNamespace::new("nons").await?;
    let argns = TestNamespace::new("argns").await?;
    let pc = ProxiedController::start_with(
        Controller::builder()
            .prefix("kubeseal")
            .watch(testns.name())
            .watch(nons.name())
            .watch(argns.name()),
    )
    .await?;
    let ctl_ns = pc.namespace().to_owned();
    let ks = Kubeseal::new()?;
    let admin = ks.kubeconfig("admin", None, None)?;
    let admin = admin.to_str().context("path")?;
    let want = pc.controller().sealing_certificate().await?;

    // IT-24: a Secret in testns, sealed with the cluster's certificate (fetched by kubeseal).
    let out = ks
        .run(
            &["--kubeconfig", admin, "--controller-namespace", &ctl_ns],
            &[],
            base_yaml(Some(testns.name())).as_bytes(),
        )
        .await?;
    let ss = sealed(out.ok()?)?;
    ensure!(ss.metadata.name.as_deref() == Some(SECRET_NAME));
    ensure!(ss.metadata.namespace.as_deref() == Some(testns.name()));
    let secret = expect_unsealed(&testns, &ss).await?;
    ensure!(
        secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("mylabel"))
            .map(String::as_str)
            == Some("myvalue"),
        "labels {:?}",
        secret.metadata.labels
    );

    // IT-25: no namespace in the input; the kubeconfig's context namespace.
    let with_ns = ks.kubeconfig("nons", Some(nons.name()), None)?;
    let out = ks
        .run(
            &["--controller-namespace", &ctl_ns],
            &[("KUBECONFIG", with_ns.to_str().context("path")?)],
            base_yaml(None).as_bytes(),
        )
        .await?;
    let ss = sealed(out.ok()?)?;
    ensure!(
        ss.metadata.namespace.as_deref() == Some(nons.name()),
        "IT-25: namespace {:?}",
        ss.metadata.namespace
    );
    expect_unsealed(&nons, &ss).await?;

    // IT-26: no namespace in the input; -n.
    let out = ks
        .run(
            &[
                "--kubeconfig",
                admin,
                "--controller-namespace",
                &ctl_ns,
                "-n",
                argns.name(),
            ],
            &[],
            base_yaml(None).as_bytes(),
        )
        .await?;
    let ss = sealed(out.ok()?)?;
    ensure!(
        ss.metadata.namespace.as_deref() == Some(argns.name()),
        "IT-26: namespace {:?}",
        ss.metadata.namespace
    );
    expect_unsealed(&argns, &ss).await?;

    // IT-29: --fetch-cert prints exactly the newest key Secret's certificate(s): from the
    // published ConfigMap ...
    let out = ks
        .run(
            &[
                "--kubeconfig",
                admin,
                "--controller-namespace",
                &ctl_ns,
                "--fetch-cert",
            ],
            &[],
            b"",
        )
        .await?;
    let got = certificates(out.ok()?)?;
    ensure!(
        got == vec![want.clone()],
        "IT-29: --fetch-cert gave {got:?}, want {want:?}"
    );
    // ... and, with Bitnami's static Service (unnamed port, no ConfigMap for that name), from
    // /v1/cert.pem through the API server's service proxy, as a user holding only Bitnami's
    // service-proxier rules.
    const STATIC: &str = "sealed-secrets-static";
    pc.expose(STATIC, None).await?;
    let proxier = pc.proxier_identity("kubeseal", STATIC).await?;
    let proxier_kc = proxier.kubeconfig_path().to_str().context("path")?;
    let out = ks
        .run(
            &[
                "--kubeconfig",
                proxier_kc,
                "--controller-namespace",
                &ctl_ns,
                "--controller-name",
                STATIC,
                "--fetch-cert",
            ],
            &[],
            b"",
        )
        .await?;
    let proxied = certificates(out.ok()?)?;
    ensure!(
        proxied == vec![want.clone()],
        "IT-29 through the proxy: {proxied:?}"
    );
    let cert_file = ks.path("cert.pem");
    std::fs::write(&cert_file, &out.stdout)?;

    // IT-27: the API server unreachable; --cert with the cluster's certificate still seals.
    let unreachable = ks.kubeconfig("unreachable", None, Some("http://0.0.0.0:1"))?;
    let out = ks
        .run(
            &[
                "--kubeconfig",
                unreachable.to_str().context("path")?,
                "--cert",
                cert_file.to_str().context("path")?,
            ],
            &[],
            base_yaml(Some(testns.name()))
                .replace(SECRET_NAME, "offline")
                .as_bytes(),
        )
        .await?;
    let ss = sealed(out.ok()?)?;
    Api::<SealedSecret>::namespaced(testns.client().clone(), testns.name())
        .create(&PostParams::default(), &ss)
        .await?;
    eventually_secret(&testns.api(), "offline", |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;

    // IT-28: empty stdin and no arguments (the controller's namespace from the environment).
    let out = ks
        .run(
            &[],
            &[
                ("KUBECONFIG", admin),
                ("SEALED_SECRETS_CONTROLLER_NAMESPACE", &ctl_ns),
            ],
            b"",
        )
        .await?;
    ensure!(out.code.is_some_and(|c| c != 0), "IT-28: {out:?}");
    ensure!(
        out.stderr == "error: no secrets found. Ensure the input is valid and UTF-8 encoded\n",
        "IT-28: {out:?}"
    );

    // IT-30: the version.
    let out = ks.run(&["--version"], &[], b"").await?;
    let v = out.ok()?;
    let rest = v
        .strip_prefix("kubeseal version: v")
        .with_context(|| format!("IT-30: {v:?}"))?;
    let num = rest.trim_end().trim_end_matches("+dirty");
    ensure!(
        num.split('.').count() == 3 && num.split('.').all(|p| p.parse::<u32>().is_ok()),
        "IT-30: {v:?}"
    );

    drop(proxier);
    pc.finish().await?;
    for ns in [testns, nons, argns] {
        ns.cleanup().await?;
    }
    Ok(())
}

/// IT-31, IT-32: --validate of a freshly sealed SealedSecret, and after renaming it; then
/// --re-encrypt (and the deprecated --rotate) through `/v1/rotate`.
#[tokio::test]
async fn it31_it32_validate_and_re_encrypt() -> Result<()> {
    let verifyns = TestNamespace::new("testverifyns").await?;
    let pc = ProxiedController::start_with(
        Controller::builder()
            .prefix("kubeseal-verify")
            .watch(verifyns.name()),
    )
    .await?;
    let ctl_ns = pc.namespace().to_owned();
    let ks = Kubeseal::new()?;
    let admin = ks.kubeconfig("admin", None, None)?;
    let admin = admin.to_str().context("path")?;
    // A kubeseal user: nothing but Bitnami's service-proxier rules.
    let user = pc.proxier_identity("kubeseal", pc.service_name()).await?;
    let user_kc = user.kubeconfig_path().to_str().context("path")?;

    let out = ks
        .run(
            &[
                "--kubeconfig",
                admin,
                "--controller-namespace",
                &ctl_ns,
                "-o",
                "yaml",
            ],
            &[],
            base_yaml(Some(verifyns.name())).as_bytes(),
        )
        .await?;
    let yaml = out.ok()?.to_owned();
    ensure!(
        yaml.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        "{yaml}"
    );

    // IT-31: it validates.
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--validate",
            ],
            &[],
            yaml.as_bytes(),
        )
        .await?;
    ensure!(
        out.code == Some(0) && out.stdout.is_empty(),
        "IT-31: {out:?}"
    );

    // IT-32: renamed, it does not.
    let renamed = yaml.replace(
        &format!("  name: {SECRET_NAME}\n  namespace"),
        "  name: a-completely-different-name\n  namespace",
    );
    ensure!(renamed != yaml, "the rename did not apply to {yaml}");
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--validate",
            ],
            &[],
            renamed.as_bytes(),
        )
        .await?;
    ensure!(out.code.is_some_and(|c| c != 0), "IT-32: {out:?}");
    ensure!(
        out.stderr == "error: unable to decrypt sealed secret: a-completely-different-name\n",
        "IT-32: {out:?}"
    );

    // --re-encrypt with -f and no -w rewrites the file in place (YAML: its extension).
    let file = ks.path("sealed.yaml");
    std::fs::write(&file, &yaml)?;
    let f = file.to_str().context("path")?;
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--re-encrypt",
                "-f",
                f,
            ],
            &[],
            b"",
        )
        .await?;
    ensure!(
        out.code == Some(0) && out.stdout.is_empty(),
        "--re-encrypt: {out:?}"
    );
    let rotated = std::fs::read_to_string(&file)?;
    ensure!(
        rotated.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n"),
        "{rotated}"
    );
    ensure!(rotated != yaml, "--re-encrypt left the file as it was");
    ensure!(!rotated.contains("creationTimestamp"), "{rotated}");
    let before: serde_yaml::Value = serde_yaml::from_str(&yaml)?;
    let after: serde_yaml::Value = serde_yaml::from_str(&rotated)?;
    ensure!(
        before["spec"]["encryptedData"]["foo"] != after["spec"]["encryptedData"]["foo"],
        "the item was not re-sealed"
    );
    ensure!(after["metadata"]["name"] == before["metadata"]["name"]);
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--validate",
                "-f",
                f,
            ],
            &[],
            b"",
        )
        .await?;
    ensure!(out.code == Some(0), "validate after --re-encrypt: {out:?}");
    // The deprecated --rotate, stdin to stdout in JSON; the controller unseals the result.
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--rotate",
            ],
            &[],
            rotated.as_bytes(),
        )
        .await?;
    ensure!(
        out.stderr
            .starts_with("Flag --rotate has been deprecated, please use --re-encrypt instead\n"),
        "{out:?}"
    );
    let ss: SealedSecret = serde_json::from_str(out.ok()?)?;
    expect_unsealed(&verifyns, &ss).await?;
    // --re-encrypt of a SealedSecret the controller cannot open.
    let out = ks
        .run(
            &[
                "--kubeconfig",
                user_kc,
                "--controller-namespace",
                &ctl_ns,
                "--re-encrypt",
            ],
            &[],
            renamed.as_bytes(),
        )
        .await?;
    ensure!(
        out.code == Some(1) && out.stderr.starts_with("error: unable to rotate secret"),
        "{out:?}"
    );

    // client-go's override flags: no kubeconfig at all, --server, --token and
    // --insecure-skip-tls-verify from the user's kubeconfig, a request timeout.
    let (server, token) = server_and_token(user.kubeconfig_path())?;
    let out = ks
        .run(
            &[
                "--server",
                &server,
                "--token",
                &token,
                "--insecure-skip-tls-verify",
                "--request-timeout",
                "30s",
                "--controller-namespace",
                &ctl_ns,
                "--validate",
            ],
            &[("KUBECONFIG", "/nonexistent/kubeconfig")],
            yaml.as_bytes(),
        )
        .await?;
    ensure!(out.code == Some(0), "--server/--token: {out:?}");
    // A wrong token is refused by the API server.
    let out = ks
        .run(
            &[
                "--server",
                &server,
                "--token",
                "not-a-token",
                "--insecure-skip-tls-verify",
                "--controller-namespace",
                &ctl_ns,
                "--validate",
            ],
            &[("KUBECONFIG", "/nonexistent/kubeconfig")],
            yaml.as_bytes(),
        )
        .await?;
    ensure!(
        out.code == Some(1) && (out.stderr.contains("401") || out.stderr.contains("Unauthorized")),
        "wrong token: {out:?}"
    );

    drop(user);
    pc.finish().await?;
    verifyns.cleanup().await
}

/// IT-33..IT-35 (no cluster access by kubeseal itself), with the real cluster's keys: a
/// certificate file that does not exist; recovery without a key; recovery with the JSON dump of
/// the controller's labelled key Secrets (`kubectl get secret -l … -o json`).
#[tokio::test]
async fn it33_to_it35_offline_with_the_clusters_keys() -> Result<()> {
    let ctl = Controller::builder()
        .prefix("kubeseal-recovery")
        .start()
        .await?;
    let ks = Kubeseal::new()?;
    let nowhere = "/?this/file/cannot/possibly/exist/right?";

    // IT-33.
    let out = ks
        .run(
            &["--cert", nowhere],
            &[],
            base_yaml(Some("testns")).as_bytes(),
        )
        .await?;
    ensure!(out.code.is_some_and(|c| c != 0), "IT-33: {out:?}");
    ensure!(
        out.stderr.starts_with("error:")
            && out.stderr.trim_end().ends_with("no such file or directory"),
        "IT-33: {out:?}"
    );

    // A SealedSecret for the cluster's newest key.
    let cert = ks.path("cert.pem");
    std::fs::write(&cert, ctl.sealing_certificate().await?.to_pem())?;
    let out = ks
        .run(
            &["--cert", cert.to_str().context("path")?],
            &[],
            base_yaml(Some("testns")).as_bytes(),
        )
        .await?;
    let sealed = out.ok()?.to_owned();

    // IT-34: no key, a kubeconfig that does not exist.
    let out = ks
        .run(
            &["--recovery-unseal", "--kubeconfig", nowhere],
            &[],
            sealed.as_bytes(),
        )
        .await?;
    ensure!(out.code.is_some_and(|c| c != 0), "IT-34: {out:?}");
    ensure!(
        out.stderr.starts_with("error:") && out.stderr.contains("key could decrypt secret ("),
        "IT-34: {out:?}"
    );

    // IT-35: the key Secrets as a JSON List.
    let keys = ctl.key_secrets().await?;
    ensure!(!keys.is_empty(), "the controller has no key Secret");
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": keys.iter().map(|k| {
            let mut v = serde_json::to_value(k).unwrap_or_default();
            v["apiVersion"] = "v1".into();
            v["kind"] = "Secret".into();
            v
        }).collect::<Vec<_>>(),
        "metadata": {"resourceVersion": ""},
    });
    let dump = ks.path("keys.json");
    std::fs::write(&dump, serde_json::to_string_pretty(&list)?)?;
    let out = ks
        .run(
            &[
                "--recovery-unseal",
                "--kubeconfig",
                nowhere,
                "--recovery-private-key",
                dump.to_str().context("path")?,
            ],
            &[],
            sealed.as_bytes(),
        )
        .await?;
    let secret: Secret = serde_json::from_str(out.ok()?)?;
    check_data(&secret, &[("foo", "bar")]).context("IT-35")?;

    ctl.finish().await
}

/// The server and bearer token of an identity's kubeconfig.
fn server_and_token(kubeconfig: &Path) -> Result<(String, String)> {
    let kc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("no server")?
        .to_owned();
    let Some(token) = kc["users"][0]["user"]["token"].as_str() else {
        bail!("the identity's kubeconfig has no token");
    };
    Ok((server, token.to_owned()))
}

/// The kubeseal front needs nothing but the `kseal` binary: a check that it is there, so a
/// missing build fails here with a clear message rather than deep inside a scenario.
#[test]
fn kseal_binary_is_built() -> Result<()> {
    let bin = kseal_e2e::bins::kseal_binary()?;
    ensure!(bin.is_file(), "{}", bin.display());
    Ok(())
}
