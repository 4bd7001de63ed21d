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
