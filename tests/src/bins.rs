//! The workspace's binaries, for tests that run them as a user would.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context as _, Result};

/// Path of binary `name`: `$<env>`, else next to the test executable (`target/debug/deps/x` →
/// `target/debug/<name>`; `tests/run-e2e.sh` builds the binaries first).
pub fn workspace_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "{env}={} is not a file", path.display());
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    bail!(
        "the {name} binary is missing (looked at {}); build it with `cargo build --bins` \
         (tests/run-e2e.sh does), or set {env}",
        tried.join(", ")
    )
}

/// The `kseal` CLI (`$KSEAL_BIN` overrides).
pub fn kseal_binary() -> Result<PathBuf> {
    workspace_binary("kseal", "KSEAL_BIN")
}

/// The output of one run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// Runs `kseal` with `args`, no `KUBECONFIG` or `SEALED_SECRETS_*`/`KSEAL_*` from the test's
/// environment, stdin from `stdin`.
pub fn kseal(args: &[&str], stdin: Option<&[u8]>) -> Result<Run> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(kseal_binary()?);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SEALED_SECRETS_") || (k.starts_with("KSEAL_") && k != "KSEAL_BIN") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().context("starting kseal")?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input)
            .context("writing kseal's stdin")?;
    }
    let out = child.wait_with_output().context("running kseal")?;
    Ok(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
