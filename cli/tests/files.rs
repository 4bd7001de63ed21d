//! Hostile files: what directory walks read (regular files only, symlinks only with
//! `-L/--follow`, never a FIFO or a device), and the size bound on every input, checked before
//! reading everything (`/dev/zero` and a huge file fail at once, naming the file and the bound).

mod common;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The bound of manifests, key files and raw values (`cli/src/io.rs`).
const MAX_INPUT_BYTES: u64 = 16 << 20;
/// Longer than any of these runs may take: they must not read much, nor wait.
const FAST: Duration = Duration::from_secs(20);

/// Runs kseal in `dir` with `stdin`, killing it after [`FAST`]; panics if it had to be killed.
fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> (i32, String, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kseal"))
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("KSEAL_CERT")
        .env_remove("KSEAL_KEYS")
        // The certificate URL test serves on 127.0.0.1 itself.
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > FAST {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "kseal {args:?} still ran after {FAST:?} (stderr: {})",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
        elapsed,
    )
}

/// A directory with one good SealedSecret (sealed for `tls.crt`) in `good.json`.
fn repo_with_good_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let input = secret("prod", "db", &[("password", "pw")]);
    let out = ok(&kseal(
        &["seal", "--cert", p(&fix("tls.crt"))],
        Some(input.as_bytes()),
    ));
    fs::write(dir.path().join("good.json"), out).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn a_symlink_to_dev_zero_in_a_walked_directory_fails_fast_and_is_named() {
    let dir = repo_with_good_file();
    symlink("/dev/zero", dir.path().join("evil.yaml")).unwrap();
    let cert = fix("tls.crt");
    for follow in [false, true] {
        let mut args = vec!["verify", "--cert", p(&cert), "."];
        if follow {
            args.insert(1, "-L");
        }
        let (code, stdout, stderr, took) = run(dir.path(), &args, b"");
        assert_eq!(code, 2, "{stderr}");
        let want = if follow {
            "kseal: skipped ./evil.yaml: a symlink to a character device, not a regular file\n"
        } else {
            "kseal: skipped ./evil.yaml: a symlink (-L/--follow follows it)\n"
        };
        assert!(stderr.starts_with(want), "{stderr}");
        // The rest of the run happened.
        assert!(
            stdout.contains("ok ./good.json: prod/db item password"),
            "{stdout}"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

#[test]
fn dev_zero_named_explicitly_stops_at_the_bound() {
    let dir = repo_with_good_file();
    symlink("/dev/zero", dir.path().join("evil.yaml")).unwrap();
    let (code, _, stderr, _) = run(
        dir.path(),
        &["verify", "--cert", p(&fix("tls.crt")), "evil.yaml"],
        b"",
    );
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "kseal: error: cannot read evil.yaml: larger than 16 MiB, the limit for a manifest\n"
    );
}

#[test]
fn a_fifo_in_a_walked_directory_does_not_hang() {
    let dir = repo_with_good_file();
    mkfifo(&dir.path().join("pipe.yaml"));
    mkfifo(&dir.path().join("other-pipe")); // not a manifest's name: not even reported
                                            // What used to hang: a symlink to a FIFO, read as a file.
    symlink("pipe.yaml", dir.path().join("link-to-pipe.yaml")).unwrap();
    let (code, stdout, stderr, _) = run(
        dir.path(),
        &["verify", "-L", "--cert", p(&fix("tls.crt")), "."],
        b"",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(
            "kseal: skipped ./link-to-pipe.yaml: a symlink to a FIFO, not a regular file\n\
             kseal: skipped ./pipe.yaml: a FIFO, not a regular file\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("other-pipe"), "{stderr}");
    assert!(stdout.contains("ok ./good.json"), "{stdout}");
}

#[test]
fn a_symlink_to_a_file_outside_is_followed_only_when_asked() {
    let dir = repo_with_good_file();
    let outside = tempfile::tempdir().unwrap();
    // Outside: a SealedSecret for another cluster's key, which verify would fail.
    let input = secret("prod", "other", &[("password", "pw")]);
    let sealed = ok(&kseal(
        &["seal", "--cert", p(&fix("go_rsa2048.crt"))],
        Some(input.as_bytes()),
    ));
    let target = outside.path().join("other.json");
    fs::write(&target, sealed).unwrap();
    symlink(&target, dir.path().join("link.json")).unwrap();
    let cert = fix("tls.crt");

    let (code, stdout, stderr, _) = run(dir.path(), &["verify", "--cert", p(&cert), "."], b"");
    assert_eq!(code, 2, "{stderr}");
    assert!(!stdout.contains("link.json"), "read without -L: {stdout}");
    assert!(
        stderr.contains("kseal: skipped ./link.json: a symlink (-L/--follow follows it)\n"),
        "{stderr}"
    );

    let (code, stdout, stderr, _) = run(
        dir.path(),
        &["verify", "--follow", "--cert", p(&cert), "."],
        b"",
    );
    assert_eq!(code, 1, "followed, checked and failed: {stderr}");
    assert!(stdout.contains("FAIL ./link.json: prod/other"), "{stdout}");
    assert!(!stderr.contains("skipped"), "{stderr}");
}

#[test]
fn a_directory_loop_is_reported_once_and_the_walk_ends() {
    let dir = repo_with_good_file();
    fs::create_dir(dir.path().join("sub")).unwrap();
    symlink("..", dir.path().join("sub/up")).unwrap();
    let (code, stdout, stderr, _) = run(
        dir.path(),
        &["verify", "-L", "--cert", p(&fix("tls.crt")), "."],
        b"",
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap(),
        "kseal: skipped ./sub/up: a loop (it leads back to a directory that contains it)"
    );
    assert_eq!(stdout.matches("good.json").count(), 1, "{stdout}");
}

#[test]
fn oversized_inputs_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: 16 MiB + 1 byte of size, no data on disk; refused from its size.
    let big = dir.path().join("big.yaml");
    fs::File::create(&big)
        .unwrap()
        .set_len(MAX_INPUT_BYTES + 1)
        .unwrap();
    let cert = fix("tls.crt");
    let cert = p(&cert);
    let secret = fix("secret.yaml");
    let secret = p(&secret);
    let cases: [(&[&str], &str); 6] = [
        (
            &["seal", "--cert", cert, "-f", "big.yaml"],
            "kseal: error: cannot read big.yaml: larger than 16 MiB, the limit for a manifest\n",
        ),
        (
            &["seal", "--cert", cert, "-f", "/dev/zero"],
            "kseal: error: cannot read /dev/zero: larger than 16 MiB, the limit for a manifest\n",
        ),
        (
            &["seal", "--raw", "--cert", cert, "-n", "ns", "--name", "n", "--from-file", "big.yaml"],
            "kseal: error: cannot read big.yaml: larger than 16 MiB, the limit for a raw value\n",
        ),
        (
            &["seal", "--cert", "big.yaml", "-f", "/dev/null"],
            "kseal: error: cannot read certificate big.yaml: larger than 1 MiB, the limit for a certificate\n",
        ),
        (
            &["seal", "--cert", cert, "-f", secret, "--merge-into", "big.yaml"],
            "kseal: error: cannot read big.yaml: larger than 16 MiB, the limit for a manifest\n",
        ),
        (
            &["unseal", "--key", "big.yaml", "-f", "/dev/null"],
            "kseal: error: cannot read key file big.yaml: larger than 16 MiB, the limit for a key file\n",
        ),
    ];
    for (args, want) in cases {
        let (code, _, stderr, took) = run(dir.path(), args, b"");
        assert_eq!((code, stderr.as_str()), (2, want), "{args:?}");
        assert!(took < Duration::from_secs(5), "{args:?}: {took:?}");
    }

    // Through stdin: one byte more than the bound is refused, the bound itself is not (it
    // then fails as YAML).
    let cert_args = ["seal", "--cert", cert];
    let too_big = vec![b' '; MAX_INPUT_BYTES as usize + 1];
    let (code, _, stderr, _) = run(dir.path(), &cert_args, &too_big);
    assert_eq!(
        (code, stderr.as_str()),
        (
            2,
            "kseal: error: cannot read stdin: larger than 16 MiB, the limit for a manifest\n"
        )
    );
    let (_, _, stderr, _) = run(dir.path(), &cert_args, &too_big[1..]);
    assert!(!stderr.contains("larger than"), "{stderr}");

    // The kubeseal front has the same bounds.
    let kubeseal = dir.path().join("kubeseal");
    symlink(env!("CARGO_BIN_EXE_kseal"), &kubeseal).unwrap();
    let out = Command::new(&kubeseal)
        .args(["--cert", cert, "-f", "big.yaml"])
        .current_dir(dir.path())
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: Could not read file specified with --secret-file: larger than 16 MiB, the limit for a manifest\n"
    );
}

#[test]
fn an_endless_certificate_url_stops_at_the_bound() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [b'A'; 64 << 10];
            while s.write_all(&chunk).is_ok() {}
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/cert.pem");
    let (code, _, stderr, took) = run(
        dir.path(),
        &["seal", "--cert", &url, "-f", p(&fix("secret.yaml"))],
        b"",
    );
    assert_eq!(
        (code, stderr),
        (
            2,
            format!("kseal: error: cannot fetch {url:?}: larger than 1 MiB, the limit for a certificate\n")
        )
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn named_pipes_and_process_substitution_still_work_when_named() {
    // `kseal seal -f <(…)` and `-f /dev/stdin`: a pipe named on the command line is read.
    let dir = tempfile::tempdir().unwrap();
    let input = secret("prod", "db", &[("password", "pw")]);
    let (code, stdout, stderr, _) = run(
        dir.path(),
        &["seal", "--cert", p(&fix("tls.crt")), "-f", "/dev/stdin"],
        input.as_bytes(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"encryptedData\""), "{stdout}");
}
