//! Core dumps are off in the running controller: a `kseal-controller` on the real control
//! plane, having just unsealed a SealedSecret, has `Max core file size 0 0` in
//! `/proc/<pid>/limits` and is not dumpable (`PR_SET_DUMPABLE 0`).
//!
//! Not dumpable shows as: the kernel makes root the owner of a non-dumpable process's
//! `/proc/<pid>/` files (no core dump, no ptrace and no `/proc/<pid>/mem` for its own user).
//! So the controller runs as another user than root (`nobody`, 65534, when the test runs as
//! root), and a control process of the same user (a `sleep`) owns its files; the control
//! also shows that the core limits are not merely inherited.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_e2e::controller::{base_secret, check_data, eventually_secret, seal, SECRET_NAME};
use kseal_e2e::kube::api::PostParams;
use kseal_e2e::{Controller, TestNamespace};

/// The user the controller runs as when the test runs as root.
const NOBODY: u32 = 65534;

/// The (soft, hard) core file size limits of `pid`.
fn core_limits(pid: u32) -> Result<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .with_context(|| format!("reading /proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .context("no core file size in the limits")?;
    let mut f = line.split_whitespace();
    Ok((
        f.next().unwrap_or_default().to_owned(),
        f.next().unwrap_or_default().to_owned(),
    ))
}

/// The real uid of `pid` (the `Uid:` line) and the owner of its `/proc/<pid>/status`.
fn uid_and_proc_owner(pid: u32) -> Result<(u32, u32)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .context("no Uid line")?;
    Ok((uid, std::fs::metadata(&path)?.uid()))
}

#[tokio::test]
async fn the_running_controller_has_core_dumps_off_and_is_not_dumpable() -> Result<()> {
    let me = std::fs::metadata("/proc/self")?.uid();
    let user = if me == 0 { NOBODY } else { me };
    let ns = TestNamespace::new("hygiene").await?;
    let mut builder = Controller::builder().prefix("hygiene-ctl").watch(ns.name());
    if me == 0 {
        builder = builder.run_as(NOBODY);
    }
    let ctl = builder.start().await?;
    // It works: a SealedSecret becomes its Secret.
    let cert = ctl.sealing_certificate().await?;
    let sealed = seal(&cert, base_secret(ns.name()))?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await
        .context("creating the SealedSecret")?;
    eventually_secret(&ns.api::<Secret>(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;

    let pid = ctl.pid().context("the controller runs")?;
    let mut control = Command::new("sleep");
    control.arg("120").stdin(Stdio::null());
    if me == 0 {
        control.uid(NOBODY).gid(NOBODY);
    }
    let mut control = control.spawn().context("starting the control process")?;
    let result = (|| -> Result<()> {
        let inherited = core_limits(control.id())?;
        let limits = core_limits(pid)?;
        let (control_uid, control_owner) = uid_and_proc_owner(control.id())?;
        let (uid, owner) = uid_and_proc_owner(pid)?;
        eprintln!(
            "controller: core file size {limits:?}, uid {uid}, /proc owner {owner}; \
             control process: {inherited:?}, uid {control_uid}, /proc owner {control_owner}"
        );
        ensure!(
            limits == ("0".to_owned(), "0".to_owned()),
            "the controller's core file size limits are {limits:?}"
        );
        ensure!(
            uid == user && control_uid == user && user != 0,
            "the check needs both processes to run as {user}, not root: {uid}, {control_uid}"
        );
        ensure!(
            control_owner == user,
            "the control process's /proc files belong to {control_owner}: the check proves nothing"
        );
        ensure!(
            owner == 0,
            "the controller is dumpable: its /proc files belong to {owner}"
        );
        Ok(())
    })();
    let _ = control.kill();
    let _ = control.wait();
    result?;
    ctl.finish().await?;
    ns.cleanup().await
}
