//! The controller's container image (`controller/image/`), without a container engine: the OCI
//! archive that `build.sh` writes (from the controller binary of this test run, so the test
//! costs no release build) or `$KSEAL_IMAGE_ARCHIVE` (e.g. the release image:
//! `controller/image/build.sh -o /tmp/kseal.oci.tar && KSEAL_IMAGE_ARCHIVE=/tmp/kseal.oci.tar
//! tests/run-e2e.sh image::`), unpacked with `umoci` and run with `runc` the way the Deployment
//! of `kseal install` runs it: uid 1001 with group 65534 (fsGroup), read-only root filesystem, a
//! tmpfs at `/tmp`, no capabilities, no new privileges; host network, the controller's
//! least-privilege kubeconfig bind-mounted read-only at `/kubeconfig`.
//!
//! Checked: the image's config (user, entrypoint, PATH, ports, labels) and files (the binary,
//! the libraries `ldd` names, CA bundle, passwd/group, an empty `/tmp`; no shell), `--version`,
//! and the containerized controller making a key, answering `/healthz` and `/v1/cert.pem`, and
//! unsealing a SealedSecret sealed with that certificate. Skipped (with a line on stderr) when
//! not root or when `umoci` or `runc` is missing (Debian: `apt-get install umoci runc`;
//! `.ci/run` installs them). The Containerfile's build stage needs the Rust toolchain image from
//! a registry: one test builds its final stage with Buildah on rootfs.sh's files and compares the
//! image with build.sh's, and a plain one keeps its version and config lines equal to build.sh's.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kseal_e2e::controller::{
    base_secret, check_data, controller_binary, controller_permissions, ensure_crd,
    eventually_secret, http_get, seal, KEY_LABEL_SELECTOR, SECRET_NAME,
};
use kseal_e2e::kube::api::{ListParams, PostParams};
use kseal_e2e::TestNamespace;
use serde_json::{json, Value};

/// An image archive to check instead of building one.
const ARCHIVE_ENV: &str = "KSEAL_IMAGE_ARCHIVE";
/// The reference the test builds.
const REFERENCE: &str = "localhost/kseal-controller:e2e";
/// The uid `kseal install` runs the controller as, and its fsGroup.
const UID: u64 = 1001;
const FS_GROUP: u64 = 65534;
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// From `runc run` to a key Secret and /healthz (a 2048-bit key on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Whether `tool --version` runs.
fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the runc test cannot run on this machine, if it cannot.
fn cannot_run() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        return Some("runc needs root".into());
    }
    for tool in ["umoci", "runc", "tar"] {
        if !have(tool) {
            return Some(format!(
                "{tool} is missing (Debian: apt-get install umoci runc)"
            ));
        }
    }
    None
}

/// Runs `command`; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The archive to check: `$KSEAL_IMAGE_ARCHIVE`, or one `build.sh` makes in `dir` from the
/// controller binary of this test run.
fn image_archive(dir: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ARCHIVE_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "{ARCHIVE_ENV}={} is not a file",
            path.display()
        );
        eprintln!("image: checking {ARCHIVE_ENV}={}", path.display());
        return Ok(path);
    }
    let binary = controller_binary()?;
    let archive = dir.join("image.oci.tar");
    let started = std::time::Instant::now();
    let stdout = run(Command::new("bash")
        .arg(repo_root().join("controller/image/build.sh"))
        .arg("--binary")
        .arg(&binary)
        .arg("-o")
        .arg(&archive)
        .args(["-t", REFERENCE]))?;
    let last = stdout.lines().last().unwrap_or_default();
    ensure!(
        last == REFERENCE,
        "build.sh printed {last:?} last, not the reference {REFERENCE}"
    );
    eprintln!(
        "image: build.sh --binary {} took {:.1?}, {} bytes",
        binary.display(),
        started.elapsed(),
        std::fs::metadata(&archive)?.len()
    );
    Ok(archive)
}

/// An unpacked image: the layout, its one reference, its config, and a runtime bundle.
struct Unpacked {
    reference: String,
    config: Value,
    bundle: PathBuf,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

fn unpack(archive: &Path, dir: &Path) -> Result<Unpacked> {
    let layout = dir.join("layout");
    std::fs::create_dir(&layout)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&layout))?;
    let index = read_json(&layout.join("index.json"))?;
    let manifests = index["manifests"]
        .as_array()
        .context("index.json has no manifests")?;
    ensure!(
        manifests.len() == 1,
        "index.json has {} manifests",
        manifests.len()
    );
    let reference = manifests[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .context("the manifest has no org.opencontainers.image.ref.name")?
        .to_owned();
    // `ctr images import` keeps a name with a `/` and a `:` as it is and prefixes others.
    ensure!(
        reference.contains('/') && reference.contains(':'),
        "ref name {reference:?} is not a full reference"
    );
    let blob = |digest: &Value| -> Result<Value> {
        let digest = digest.as_str().context("a digest is not a string")?;
        read_json(&layout.join("blobs").join(digest.replacen(':', "/", 1)))
    };
    let manifest = blob(&manifests[0]["digest"])?;
    let config = blob(&manifest["config"]["digest"])?;
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{reference}", layout.display()))
        .arg(&bundle))?;
    Ok(Unpacked {
        reference,
        config,
        bundle,
    })
}

/// The image config as `kseal install` needs it, and the labels.
fn check_config(config: &Value) -> Result<()> {
    let c = &config["config"];
    ensure!(c["User"] == json!(UID.to_string()), "User is {}", c["User"]);
    ensure!(
        c["Entrypoint"] == json!(["/usr/local/bin/kseal-controller"]),
        "Entrypoint is {}",
        c["Entrypoint"]
    );
    ensure!(c["Cmd"].is_null(), "Cmd is {}", c["Cmd"]);
    ensure!(
        c["Env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!(PATH_ENV))),
        "Env is {} (the Deployment's command `kseal-controller` needs PATH)",
        c["Env"]
    );
    let ports: BTreeSet<&str> = c["ExposedPorts"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    ensure!(
        ports == BTreeSet::from(["8080/tcp", "8081/tcp"]),
        "ExposedPorts is {ports:?}"
    );
    let label = |name: &str| c["Labels"][format!("org.opencontainers.image.{name}")].as_str();
    ensure!(
        label("version") == Some(env!("CARGO_PKG_VERSION")),
        "version label {:?}",
        label("version")
    );
    ensure!(label("licenses") == Some("Apache-2.0"), "licenses label");
    ensure!(label("title") == Some("kseal-controller"), "title label");
    for name in ["revision", "description"] {
        ensure!(
            label(name).is_some_and(|v| !v.is_empty()),
            "no {name} label"
        );
    }
    Ok(())
}

/// Exactly the binary, libraries, CA bundle, passwd/group, nsswitch.conf and an empty /tmp.
fn check_files(rootfs: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32)>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                walk(root, &entry.path(), out)?;
            } else {
                let rel = entry.path().strip_prefix(root)?.display().to_string();
                out.push((rel, meta.permissions().mode() & 0o7777));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(rootfs, rootfs, &mut files)?;
    files.sort();
    let mut libraries = Vec::new();
    for (path, mode) in &files {
        match path.as_str() {
            "usr/local/bin/kseal-controller" => {
                ensure!(*mode == 0o755, "{path} has mode {mode:o}")
            }
            "etc/ssl/certs/ca-certificates.crt"
            | "etc/passwd"
            | "etc/group"
            | "etc/nsswitch.conf" => {}
            p if (p.starts_with("lib") || p.starts_with("usr/lib")) && p.contains(".so") => {
                libraries.push(p.to_owned())
            }
            p => bail!("unexpected file in the image: /{p}"),
        }
    }
    for required in [
        "usr/local/bin/kseal-controller",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
    ] {
        ensure!(
            rootfs.join(required).is_file(),
            "the image has no /{required}"
        );
    }
    ensure!(
        libraries.iter().any(|l| l.contains("libc.so")),
        "no libc in {libraries:?}"
    );
    for shell in ["bin/sh", "usr/bin/sh", "bin/busybox", "usr/bin/dpkg"] {
        ensure!(!rootfs.join(shell).exists(), "the image has /{shell}");
    }
    let tmp = rootfs.join("tmp");
    ensure!(
        std::fs::read_dir(&tmp)
            .context("the image has no /tmp")?
            .next()
            .is_none(),
        "/tmp is not empty"
    );
    let mode = std::fs::metadata(&tmp)?.permissions().mode() & 0o7777;
    ensure!(mode == 0o1777, "/tmp has mode {mode:o}");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd"))?;
    ensure!(
        passwd.lines().any(|l| l.split(':').nth(2) == Some("1001")),
        "/etc/passwd has no uid 1001:\n{passwd}"
    );
    Ok(libraries)
}

/// umoci's runtime config (the image's user, entrypoint and env) made the Pod's, running the
/// entrypoint with `args`.
fn runtime_config(original: &Value, args: &[String], kubeconfig: Option<&Path>) -> Value {
    let mut c = original.clone();
    c["root"]["readonly"] = json!(true);
    c["process"]["terminal"] = json!(false);
    if let Some(list) = c["process"]["args"].as_array_mut() {
        list.extend(args.iter().map(|a| json!(a)));
    }
    c["process"]["user"]["additionalGids"] = json!([FS_GROUP]);
    c["process"]["noNewPrivileges"] = json!(true);
    c["process"]["capabilities"] = json!({
        "bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []
    });
    if let Some(env) = c["process"]["env"].as_array_mut() {
        env.push(json!("RUST_BACKTRACE=1"));
    }
    if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
    }
    if let Some(mounts) = c["mounts"].as_array_mut() {
        mounts.push(json!({
            "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=16m"],
        }));
        if let Some(kubeconfig) = kubeconfig {
            mounts.push(json!({
                "destination": "/kubeconfig", "type": "bind", "source": kubeconfig,
                "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
            }));
        }
    }
    c
}

/// A runc container of the test; killed and deleted on drop.
struct Container {
    runc_root: PathBuf,
    id: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Container {
    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.runc_root);
        c
    }

    /// The init process's pid on the host.
    fn pid(&self) -> Result<u32> {
        let state: Value = serde_json::from_str(&run(self.runc().args(["state", &self.id]))?)?;
        Ok(u32::try_from(
            state["pid"].as_u64().context("no pid in runc state")?,
        )?)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit code (an error after 10 s).
    async fn stop(&mut self) -> Result<Option<i32>> {
        run(self.runc().args(["kill", &self.id, "TERM"]))?;
        let child = self.child.as_mut().context("not running")?;
        for _ in 0..100 {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status.code());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the container did not exit within 10 s of SIGTERM")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self
                .runc()
                .args(["kill", &self.id, "KILL"])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
            eprintln!(
                "--- container log ({}) ---\n{}\n--- end ---",
                self.log.display(),
                self.log()
            );
        }
        let _ = self
            .runc()
            .args(["delete", "-f", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn proc_field(pid: u32, file: &str, f: impl Fn(&str) -> Option<String>) -> Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))?;
    text.lines()
        .find_map(f)
        .with_context(|| format!("nothing found in /proc/{pid}/{file}:\n{text}"))
}

#[tokio::test]
async fn the_image_runs_the_controller_under_runc() -> Result<()> {
    if let Some(why) = cannot_run() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let dir = tempfile::Builder::new()
        .prefix("kseal-e2e-image-")
        .tempdir()?;
    let archive = image_archive(dir.path())?;
    let image = unpack(&archive, dir.path())?;
    check_config(&image.config)?;
    let libraries = check_files(&image.bundle.join("rootfs"))?;
    eprintln!("image: {} with libraries {libraries:?}", image.reference);

    let config_path = image.bundle.join("config.json");
    let original = read_json(&config_path)?;
    ensure!(
        original["process"]["user"]["uid"] == json!(UID)
            && original["process"]["user"]["gid"] == json!(UID),
        "umoci resolved the image's user to {}",
        original["process"]["user"]
    );
    let runc_root = dir.path().join("runc");
    std::fs::create_dir(&runc_root)?;
    let id = format!("kseal-e2e-image-{}", std::process::id());

    // --version in the container, as the image's entrypoint.
    std::fs::write(
        &config_path,
        runtime_config(&original, &["--version".into()], None).to_string(),
    )?;
    let version = run(Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["run", "--bundle"])
        .arg(&image.bundle)
        .arg(format!("{id}-version")))?;
    ensure!(
        version.trim() == concat!("controller version: v", env!("CARGO_PKG_VERSION")),
        "--version printed {version:?}"
    );

    // The controller against the cluster, with rbac.yaml's rules in a namespace of its own.
    let ns = TestNamespace::new("image").await?;
    ensure_crd(ns.client()).await?;
    let identity = ns
        .identity_with("sealed-secrets-controller", controller_permissions()?)
        .await?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::copy(identity.kubeconfig_path(), &kubeconfig)?;
    std::os::unix::fs::chown(&kubeconfig, Some(UID as u32), Some(UID as u32))?;
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o400))?;
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let args: Vec<String> = vec![
        "--kubeconfig=/kubeconfig".into(),
        format!("--namespace={}", ns.name()),
        "--all-namespaces=false".into(),
        "--key-size=2048".into(),
        format!("--listen-addr={http}"),
        format!("--listen-metrics-addr={metrics}"),
    ];
    std::fs::write(
        &config_path,
        runtime_config(&original, &args, Some(&kubeconfig)).to_string(),
    )?;
    let log = dir.path().join("controller.log");
    let out = std::fs::File::create(&log)?;
    let mut container = Container {
        runc_root: runc_root.clone(),
        id: id.clone(),
        child: None,
        log,
    };
    container.child = Some(
        container
            .runc()
            .args(["run", "--bundle"])
            .arg(&image.bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting runc")?,
    );

    let secrets = ns.api::<Secret>();
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = container
            .child
            .as_mut()
            .and_then(|c| c.try_wait().transpose())
        {
            container.child = None;
            bail!(
                "the container exited ({}) before it was ready:\n{}",
                status?,
                container.log()
            );
        }
        let healthy = http_get(http, "/healthz")
            .await
            .is_ok_and(|r| r.status == 200);
        let keys = secrets
            .list(&ListParams::default().labels(KEY_LABEL_SELECTOR))
            .await?;
        if healthy && !keys.items.is_empty() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no /healthz 200 and key Secret after {START_TIMEOUT:?} (healthz {healthy}, {} keys)",
            keys.items.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cert = http_get(http, "/v1/cert.pem").await?;
    ensure!(cert.status == 200, "/v1/cert.pem answered {}", cert.status);
    let cert = Certificate::from_pem(cert.body.as_bytes()).context("parsing /v1/cert.pem")?;
    let metrics_page = http_get(metrics, "/metrics").await?;
    ensure!(
        metrics_page.status == 200,
        "/metrics answered {}",
        metrics_page.status
    );

    // Running as the Pod would: uid 1001, group 65534, read-only root, tmpfs /tmp.
    let pid = container.pid()?;
    let uid = proc_field(pid, "status", |l| {
        l.strip_prefix("Uid:")
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
    })?;
    ensure!(uid == UID.to_string(), "the controller runs as uid {uid}");
    let groups = proc_field(pid, "status", |l| {
        l.strip_prefix("Groups:").map(|v| v.trim().to_owned())
    })?;
    ensure!(
        groups == FS_GROUP.to_string(),
        "supplementary groups {groups:?}"
    );
    let mount = |target: &'static str| {
        proc_field(pid, "mountinfo", move |l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(4) == Some(&target)).then(|| format!("{} {}", f[5], f[sep + 1]))
        })
    };
    let root = mount("/")?;
    ensure!(
        root.starts_with("ro,") || root.starts_with("ro "),
        "/ is mounted {root}"
    );
    let tmp = mount("/tmp")?;
    ensure!(tmp.ends_with(" tmpfs"), "/tmp is mounted {tmp}");

    // It unseals: a SealedSecret sealed with the certificate it served becomes a Secret.
    let sealed = seal(&cert, base_secret(ns.name()))?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await
        .context("creating the SealedSecret")?;
    eventually_secret(&secrets, SECRET_NAME, |s| check_data(s, &[("foo", "bar")]))
        .await
        .map_err(|e| e.context(container.log()))?;

    let code = container.stop().await?;
    ensure!(
        code == Some(0),
        "the controller exited with {code:?} after SIGTERM:\n{}",
        container.log()
    );
    drop(container);
    ns.cleanup().await
}

/// The Containerfile's final stage, built by Buildah on rootfs.sh's files (its build stage needs
/// the Rust toolchain image from a registry), gives build.sh's image: same config, same layer
/// entries (`controller/image/check-containerfile.sh`). Skipped without root, buildah, umoci or jq.
#[test]
fn the_containerfile_final_stage_builds_the_build_sh_image() -> Result<()> {
    if let Some(why) = cannot_run() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    for tool in ["buildah", "jq"] {
        if !have(tool) {
            eprintln!("skipped: {tool} is missing (Debian: apt-get install buildah jq)");
            return Ok(());
        }
    }
    run(Command::new("bash")
        .arg(repo_root().join("controller/image/check-containerfile.sh"))
        .arg(controller_binary()?))?;
    Ok(())
}

/// The value of `ARG name=value` in the Containerfile.
fn containerfile_arg<'a>(containerfile: &'a str, name: &str) -> Option<&'a str> {
    containerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("ARG {name}=")))
}

/// The Containerfile (not buildable here: no engine, no registry) and build.sh describe the
/// same image: version, user, entrypoint, PATH, ports and the set of labels.
#[test]
fn the_containerfile_and_build_sh_describe_the_same_image() -> Result<()> {
    let dir = repo_root().join("controller/image");
    let containerfile = std::fs::read_to_string(dir.join("Containerfile"))?;
    let build = std::fs::read_to_string(dir.join("build.sh"))?;
    ensure!(
        containerfile_arg(&containerfile, "VERSION") == Some(env!("CARGO_PKG_VERSION")),
        "the Containerfile's ARG VERSION is {:?}, the workspace version {}",
        containerfile_arg(&containerfile, "VERSION"),
        env!("CARGO_PKG_VERSION")
    );
    let final_stage = containerfile
        .split("\nFROM scratch")
        .nth(1)
        .context("the Containerfile has no FROM scratch stage")?;
    for (containerfile_line, build_sh) in [
        ("USER 1001", "--config.user 1001"),
        (
            "ENTRYPOINT [\"/usr/local/bin/kseal-controller\"]",
            "--config.entrypoint /usr/local/bin/kseal-controller",
        ),
        (
            &format!("ENV {PATH_ENV}"),
            &format!("--config.env {PATH_ENV}"),
        ),
        (
            "EXPOSE 8080/tcp 8081/tcp",
            "--config.exposedports 8080/tcp --config.exposedports 8081/tcp",
        ),
        ("COPY --from=build /rootfs/ /", "rootfs.sh"),
    ] {
        ensure!(
            final_stage.contains(containerfile_line),
            "the Containerfile's final stage lacks {containerfile_line:?}"
        );
        ensure!(build.contains(build_sh), "build.sh lacks {build_sh:?}");
    }
    // Every `org.opencontainers.image.<key>=`.
    let labels = |text: &str| -> BTreeSet<String> {
        text.match_indices("org.opencontainers.image.")
            .filter_map(|(i, _)| {
                let rest = &text[i..];
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))?;
                rest[end..].starts_with('=').then(|| rest[..end].to_owned())
            })
            .collect()
    };
    let ours = labels(final_stage);
    let theirs = labels(&build);
    ensure!(
        ours == theirs && ours.len() == 5,
        "labels differ: Containerfile {ours:?}, build.sh {theirs:?}"
    );
    Ok(())
}
