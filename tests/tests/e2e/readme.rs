//! The README's quick starts, run as a new user runs them: the `sh` blocks between
//! `<!-- quickstart:NAME -->` and `<!-- /quickstart -->`, unchanged but for the controller's
//! listen ports (free ones instead of 8080/8081), in a scratch directory that holds nothing but
//! links to `keys-example/` and `crds/`, with the workspace's `kseal` and `kseal-controller`
//! first on `PATH` (what the README's `cargo build … && export PATH=…` line gives) and `kubectl`.
//!
//! The cluster steps run on a control plane of their own (`cluster.sh up` in its own state
//! directory): a user's first cluster has nothing in kube-system, and a controller watching
//! every namespace must not meet the other tests' SealedSecrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kseal_e2e::kube::api::ListParams;
use kseal_e2e::kube::Api;
use kseal_e2e::OwnCluster;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The shell of the `sh` blocks between `<!-- quickstart:NAME -->` and the next
/// `<!-- /quickstart -->`.
pub(crate) fn quickstart(readme: &str, name: &str) -> Result<String> {
    let marker = format!("<!-- quickstart:{name} -->");
    let start = readme
        .find(&marker)
        .with_context(|| format!("the README has no {marker}"))?;
    let rest = &readme[start + marker.len()..];
    let end = rest
        .find("<!-- /quickstart -->")
        .with_context(|| format!("{marker} is not closed"))?;
    let mut script = String::new();
    let mut in_block = false;
    for line in rest[..end].lines() {
        match (in_block, line.trim_start()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, _) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    ensure!(!script.trim().is_empty(), "{marker} holds no sh block");
    Ok(script)
}

/// A free loopback port.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Output of one script.
struct Ran {
    stdout: String,
    stderr: String,
}

/// Runs `script` with `bash -euo pipefail` in `dir`, stopping its background jobs when it
/// ends, killed after `limit`.
fn run_script(
    script: &str,
    dir: &Path,
    bin: &Path,
    kubeconfig: Option<&Path>,
    limit: Duration,
) -> Result<Ran> {
    let file = dir.join(".quickstart.sh");
    std::fs::write(
        &file,
        format!("trap 'kill $(jobs -p) 2> /dev/null || true' EXIT\n{script}"),
    )?;
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail"])
        .arg(&file)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let child = cmd.spawn().context("starting bash")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.context("running the quick start")?,
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            bail!("the quick start did not finish within {limit:?}");
        }
    };
    let ran = Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    ensure!(
        out.status.success(),
        "the quick start failed ({}):\n--- script\n{script}--- stdout\n{}--- stderr\n{}",
        out.status,
        ran.stdout,
        ran.stderr
    );
    Ok(ran)
}

#[tokio::test]
async fn the_readme_quick_starts_work_as_written() -> Result<()> {
    if !kseal_e2e::Cluster::shared()?.is_local() {
        eprintln!("skipped: the quick starts run on a control plane of their own (cluster.sh)");
        return Ok(());
    }
    let readme = std::fs::read_to_string(repo().join("README.md"))?;
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("work");
    std::fs::create_dir(&dir)?;
    for link in ["keys-example", "crds"] {
        std::os::unix::fs::symlink(repo().join(link), dir.join(link))?;
    }
    let kseal = kseal_e2e::bins::kseal_binary()?;
    let controller = kseal_e2e::controller::controller_binary()?;
    let bin = kseal.parent().context("kseal's directory")?.to_path_buf();
    ensure!(
        controller.parent() == Some(bin.as_path()),
        "kseal and kseal-controller must be in one directory: {} {}",
        kseal.display(),
        controller.display()
    );

    // Without a cluster: seal, verify, unseal, keygen.
    let ran = run_script(
        &quickstart(&readme, "no-cluster")?,
        &dir,
        &bin,
        None,
        Duration::from_secs(120),
    )?;
    ensure!(
        ran.stdout.lines().filter(|l| l.starts_with("ok ")).count() == 2,
        "kseal verify: two ok lines expected:\n{}{}",
        ran.stdout,
        ran.stderr
    );
    // keys-example/secret.yaml's password, as `kseal unseal -o yaml` prints it (base64).
    ensure!(
        ran.stdout
            .contains("Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ=="),
        "kseal unseal did not print the example's password:\n{}",
        ran.stdout
    );
    for f in ["database.sealed.yaml", "my.key", "my.crt"] {
        ensure!(dir.join(f).is_file(), "the quick start wrote no {f}");
    }

    // With a cluster: CRD, controller, certificate, seal, apply, the Secret.
    let started = Instant::now();
    let cluster = OwnCluster::up(&scratch.path().join("cluster"))?;
    let script = quickstart(&readme, "cluster")?;
    ensure!(
        script.contains("127.0.0.1:8080") && script.contains("127.0.0.1:8081"),
        "the cluster quick start's listen addresses changed: update this test"
    );
    let script = script
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", free_port()?))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", free_port()?));
    let ran = run_script(
        &script,
        &dir,
        &bin,
        Some(cluster.kubeconfig_path()),
        Duration::from_secs(240),
    )
    .with_context(|| {
        let log = std::fs::read_to_string(dir.join("controller.log")).unwrap_or_default();
        format!("controller.log:\n{log}")
    })?;
    ensure!(
        ran.stdout.trim_end().ends_with("s3cr3t"),
        "the Secret's password was not printed last:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let client = cluster.client().await?;
    let secret = Api::<Secret>::namespaced(client.clone(), "default")
        .get("db")
        .await?;
    ensure!(
        secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "SealedSecret" && o.name == "db"),
        "the Secret db is not owned by its SealedSecret"
    );
    eprintln!(
        "cluster quick start: {:.1}s (control plane included)",
        started.elapsed().as_secs_f64()
    );

    // Uninstall what `kseal install --apply` made; the CRD, the Secrets and the keys stay.
    let out = Command::new(&kseal)
        .args(["install", "--apply"])
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .output()?;
    ensure!(
        out.status.success(),
        "kseal install --apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "kube-system");
    ensure!(deployments
        .get_opt("sealed-secrets-controller")
        .await?
        .is_some());
    run_script(
        &quickstart(&readme, "uninstall")?,
        &dir,
        &bin,
        Some(cluster.kubeconfig_path()),
        Duration::from_secs(120),
    )?;
    let ours = ListParams::default().labels("app.kubernetes.io/managed-by=kseal");
    ensure!(deployments.list(&ours).await?.items.is_empty());
    ensure!(Api::<Service>::namespaced(client.clone(), "kube-system")
        .list(&ours)
        .await?
        .items
        .is_empty());
    ensure!(Api::<ClusterRole>::all(client.clone())
        .list(&ours)
        .await?
        .items
        .is_empty());
    ensure!(Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&ours)
        .await?
        .items
        .is_empty());
    ensure!(
        Api::<CustomResourceDefinition>::all(client.clone())
            .get_opt("sealedsecrets.bitnami.com")
            .await?
            .is_some(),
        "the uninstall deleted the CRD"
    );
    let keys = Api::<Secret>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
        .await?;
    ensure!(!keys.items.is_empty(), "the uninstall deleted the keys");
    ensure!(
        Api::<Secret>::namespaced(client, "default")
            .get_opt("db")
            .await?
            .is_some(),
        "the uninstall deleted the Secret"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("keys-backup.yaml"))?
        .permissions()
        .mode();
    ensure!(mode & 0o077 == 0, "keys-backup.yaml has mode {mode:o}");
    drop(cluster);
    Ok(())
}
