//! Core dumps are off in the real `kseal-controller`: started as another user than root
//! against an API server that never answers (a listener that accepts and stays silent), it
//! serves and waits, and meanwhile `/proc/<pid>/limits` says `Max core file size 0 0` and its
//! `/proc/<pid>/*` files belong to root (the kernel's sign of `PR_SET_DUMPABLE 0`: no core
//! dump whatever `core_pattern` says, no ptrace and no `/proc/<pid>/mem` for its own user).
//! The soft core limit is raised before exec, so that an inherited `ulimit -c 0` proves
//! nothing; `cli/tests/hygiene.rs` checks a control process the same way.

use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OTHER_UID: u32 = 65534;

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// (soft, hard) core limits and the owner of `/proc/<pid>/status`.
fn core_state(pid: u32) -> Option<(String, String, u32)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let mut f = line["Max core file size".len()..].split_whitespace();
    let owner = std::fs::metadata(format!("/proc/{pid}/status")).ok()?.uid();
    Some((f.next()?.to_string(), f.next()?.to_string(), owner))
}

#[test]
fn the_controller_turns_core_dumps_off_at_start() {
    // The "API server": accepts connections (the kernel does, into the backlog) and never
    // answers, so the controller stays up waiting for its first request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("kseal-ctl-hygiene-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -S -c "$(ulimit -H -c)"; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_kseal-controller"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", "kseal-hygiene", "--leader-elect=false"])
        .args([
            "--listen-addr",
            "127.0.0.1:0",
            "--listen-metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--log-level", "DEBUG"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let user = if my_uid() == 0 {
        cmd.uid(OTHER_UID).gid(OTHER_UID);
        OTHER_UID
    } else {
        my_uid()
    };
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    let mut seen = false;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let runs = std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.file_name().is_some_and(|n| n == "kseal-controller"));
        if runs {
            last = core_state(pid);
            if last == Some(("0".into(), "0".into(), 0)) {
                seen = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Core dumps go off first thing; the line saying so is logged once logging is set up, a
    // moment later (on an idle machine the limits were seen and the process killed before).
    if seen {
        std::thread::sleep(Duration::from_millis(1500));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        seen,
        "limits/owner {last:?} (running as {user}; running: {still_running}); log:\n{log}"
    );
    assert!(still_running, "{log}");
    assert_ne!(user, 0);
    assert!(
        log.contains("core dumps disabled (RLIMIT_CORE 0, not dumpable)"),
        "no debug line: {log}"
    );
    drop(silent);
}
