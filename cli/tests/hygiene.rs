//! Core dumps are off in the real `kseal` binary: while it waits for stdin, its
//! `/proc/<pid>/limits` says `Max core file size 0 0` and it is not dumpable (its `/proc/<pid>/*`
//! files belong to root although it runs as another user: that is how the kernel shows
//! `PR_SET_DUMPABLE 0`). A control process started the same way shows the opposite, so the
//! checks can see the difference. The soft core limit is raised before exec, so that an
//! inherited `ulimit -c 0` proves nothing.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/fixtures");
/// `nobody`: the user the processes run as when the test runs as root.
const OTHER_UID: u32 = 65534;

/// Starts `program args` with the soft core limit raised to the hard one, as another user
/// than root (as `nobody` when the test is root; otherwise as the test's user, which is not
/// root either).
fn start(program: &str, args: &[&str]) -> Child {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -S -c "$(ulimit -H -c)"; exec "$@""#)
        .arg("sh")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("KUBECONFIG", "/nonexistent")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if my_uid() == 0 {
        cmd.uid(OTHER_UID).gid(OTHER_UID);
    }
    cmd.spawn().unwrap()
}

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Soft and hard core limits, and the owner of `/proc/<pid>/status` (the directory itself
/// keeps the process's owner; the files in it go to root when it is not dumpable).
#[derive(Debug, PartialEq, Eq)]
struct CoreState {
    soft: String,
    hard: String,
    proc_owner: u32,
}

fn core_state(pid: u32) -> Option<CoreState> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let mut fields = line["Max core file size".len()..].split_whitespace();
    Some(CoreState {
        soft: fields.next()?.to_string(),
        hard: fields.next()?.to_string(),
        proc_owner: std::fs::metadata(format!("/proc/{pid}/status")).ok()?.uid(),
    })
}

/// Polls until `pid` runs `exe` (after the shell's exec) and `done` holds for its state.
fn wait_for(child: &mut Child, exe: &str, done: impl Fn(&CoreState) -> bool) -> CoreState {
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        let runs_exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.file_name().is_some_and(|n| n == exe));
        if runs_exe {
            last = core_state(pid);
            if let Some(s) = &last {
                if done(s) {
                    return last.unwrap();
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    panic!("{exe}: last state {last:?}; stderr: {stderr}");
}

fn user() -> u32 {
    if my_uid() == 0 {
        OTHER_UID
    } else {
        my_uid()
    }
}

#[test]
fn the_control_process_is_dumpable_with_a_core_limit() {
    let mut sleep = start("sleep", &["30"]);
    let s = wait_for(&mut sleep, "sleep", |s| s.proc_owner == user());
    assert_ne!(s.soft, "0", "the soft core limit was not raised: {s:?}");
    sleep.kill().unwrap();
    sleep.wait().unwrap();
}

#[test]
fn kseal_turns_core_dumps_off_at_start() {
    let cert = format!("{FIX}/tls.crt");
    let args = ["seal", "--raw", "--cert", &cert, "-n", "ns", "--name", "n"];
    let mut kseal = start(env!("CARGO_BIN_EXE_kseal"), &args);
    let s = wait_for(&mut kseal, "kseal", |s| s.soft == "0" && s.proc_owner == 0);
    assert_eq!(s.hard, "0", "{s:?}");
    // It still works: the value on stdin is sealed.
    let mut stdin = kseal.stdin.take().unwrap();
    stdin.write_all(b"value").unwrap();
    drop(stdin);
    let out = kseal.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
}

#[test]
fn dev_stdin_still_opens_when_not_dumpable() {
    // `--from-file /dev/stdin` (kubeseal's tip) opens /proc/self/fd/0, which a process that is
    // not dumpable may still open for itself. Stdin is a file the user may read (a pipe made
    // by this test, as root, would not be).
    let dir = tempfile::tempdir().unwrap();
    let value = dir.path().join("value");
    std::fs::write(&value, "value").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&value, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cert = format!("{FIX}/tls.crt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kseal"));
    cmd.args(["seal", "--raw", "--cert", &cert, "-n", "ns", "--name", "n"])
        .args(["--from-file", "/dev/stdin"])
        .env_clear()
        .env("KUBECONFIG", "/nonexistent")
        .current_dir("/")
        .stdin(std::fs::File::open(&value).unwrap());
    if my_uid() == 0 {
        cmd.uid(OTHER_UID).gid(OTHER_UID);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
}
