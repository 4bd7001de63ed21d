//! The cluster-facing commands' bad inputs that need no cluster: one line on stderr that says
//! what to do, exit 2, nothing written.

use std::process::Command;

fn kseal(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kseal"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-home")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_line(stderr: &str) -> &str {
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line: {stderr:?}");
    assert!(line.starts_with("kseal: error: "), "{stderr:?}");
    line
}

#[test]
fn unreadable_paths_are_named() {
    for cmd in ["validate", "reencrypt", "rotate"] {
        let (code, stdout, stderr) = kseal(&[cmd, "/no/such/dir"]);
        assert_eq!(code, Some(2), "{cmd}: {stderr}");
        assert!(stdout.is_empty());
        let line = one_line(&stderr);
        assert!(line.contains("/no/such/dir"), "{cmd}: {line}");
    }
}

#[test]
fn no_kubeconfig_says_how_to_seal_offline() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\ndata: {k: dg==}\n",
    )
    .unwrap();
    let (code, _, stderr) = kseal(&["seal", "-f", secret.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    let line = one_line(&stderr);
    assert!(line.contains("--cert"), "{line}");
    let (code, _, stderr) = kseal(&["keys", "list"]);
    assert_eq!(code, Some(2));
    let line = one_line(&stderr);
    assert!(
        line.contains("KUBECONFIG") || line.contains("--kubeconfig"),
        "{line}"
    );
}

#[test]
fn a_missing_kubeconfig_file_is_named() {
    let (code, _, stderr) = kseal(&["cert", "--kubeconfig", "/no/such/kubeconfig"]);
    assert_eq!(code, Some(2));
    let line = one_line(&stderr);
    assert!(line.contains("/no/such/kubeconfig"), "{line}");
}

#[test]
fn a_directory_without_sealed_secrets_is_skipped_by_validate() {
    // Files are read before the cluster is contacted: a directory of other files fails with a
    // clear message only once the cluster is reachable; without a kubeconfig it says so.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\n",
    )
    .unwrap();
    let (code, _, stderr) = kseal(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(2));
    one_line(&stderr);
}

/// A fake API server on 127.0.0.1 (plain HTTP): the controller's Service exists, and every
/// request through the service proxy gets a 200 whose body never ends.
fn endless_proxy() -> u16 {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut path = String::new();
                    let mut length = 0usize;
                    let mut first = true;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first {
                            path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                            first = false;
                        } else if let Some(v) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if path.contains("/proxy/") {
                        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
                        let chunk = vec![b' '; 64 << 10];
                        while out.write_all(&chunk).is_ok() {}
                        return;
                    }
                    let (status, json) = if path.contains("/services/sealed-secrets-controller") {
                        (
                            "200 OK",
                            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"sealed-secrets-controller","namespace":"kube-system"},"spec":{"ports":[{"name":"http","port":8080}]}}"#,
                        )
                    } else {
                        (
                            "404 Not Found",
                            r#"{"apiVersion":"v1","kind":"Status","status":"Failure","message":"not found","reason":"NotFound","code":404}"#,
                        )
                    };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", json.len());
                    if out
                        .write_all(head.as_bytes())
                        .and_then(|()| out.write_all(json.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn an_endless_answer_of_the_controller_stops_at_the_bound() {
    let port = endless_proxy();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"),
    )
    .unwrap();
    let sealed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/fixtures/ss-go.yaml");
    let start = std::time::Instant::now();
    let (code, stdout, stderr) = kseal(&[
        "validate",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        sealed,
    ]);
    let took = start.elapsed();
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        one_line(&stderr)
            .ends_with("larger than 16 MiB, the limit for an answer of the controller"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_missing_kubeconfig_says_which_file_and_what_to_do() {
    // No KUBECONFIG: the default file is named, and that KUBECONFIG is not set.
    let (code, _, stderr) = kseal(&["keys", "list"]);
    assert_eq!(code, Some(2));
    let line = one_line(&stderr);
    assert!(
        line.contains("/nonexistent-home/.kube/config does not exist and KUBECONFIG is not set"),
        "{line}"
    );
    assert_eq!(line.matches("os error").count(), 0, "{line}");
    // KUBECONFIG set to a file that is not there: that is what it says, not "set KUBECONFIG".
    let out = Command::new(env!("CARGO_BIN_EXE_kseal"))
        .args(["keys", "list"])
        .env("KUBECONFIG", "/no/such/dir/config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line(&stderr);
    assert!(
        line.contains("KUBECONFIG names /no/such/dir/config, which does not exist"),
        "{line}"
    );
    assert!(!line.contains("set KUBECONFIG"), "{line}");
}

#[test]
fn sealing_with_a_certificate_never_reads_the_kubeconfig() {
    // KUBECONFIG is a FIFO nobody writes to: opening it would block, so a run that finishes
    // did not read it. The Secret names its namespace, so no context namespace is needed.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("kubeconfig");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let secret = dir.path().join("s.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\ndata: {k: dg==}\n",
    )
    .unwrap();
    let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-example/tls.crt");
    let target = dir.path().join("sealed.yaml");
    for args in [
        vec!["seal", "--cert", cert, secret.to_str().unwrap()],
        vec![
            "seal",
            "--cert",
            cert,
            secret.to_str().unwrap(),
            "-w",
            target.to_str().unwrap(),
        ],
        vec![
            "seal",
            "--cert",
            cert,
            "--merge-into",
            target.to_str().unwrap(),
            secret.to_str().unwrap(),
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kseal"))
            .args(&args)
            .env("KUBECONFIG", &fifo)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{args:?} blocked on reading the kubeconfig FIFO");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.success(), "{args:?}");
    }
}
