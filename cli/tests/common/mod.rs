//! Helpers shared by the CLI tests of the age format, `kseal verify` and `.kseal.yaml`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kseal_crypto::AgeIdentity;

pub const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/fixtures");
pub const SEAL_RECORDS: &str = "sealedsecrets.kseal.dev/seal-records";
pub const SEALED_WITH: &str = "sealedsecrets.kseal.dev/sealed-with";

pub fn fix(name: &str) -> PathBuf {
    Path::new(FIX).join(name)
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `kseal` in `dir` (or the current directory) with `env` set on top of a clean
/// environment (no kubeconfig, no KSEAL_* variables).
pub fn kseal_in(
    dir: Option<&Path>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kseal"));
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("KSEAL_CERT")
        .env_remove("KSEAL_KEYS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn kseal(args: &[&str], stdin: Option<&[u8]>) -> Output {
    kseal_in(None, args, &[], stdin)
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit code and stderr of a run expected to fail.
pub fn failed(out: &Output) -> (i32, String) {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr.clone()).unwrap(),
    )
}

/// A new age identity, written as an identity file in `dir`; returns the file and the public
/// recipient text.
pub fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let id = AgeIdentity::generate();
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, id.to_identity_file().as_bytes()).unwrap();
    (path, id.recipient().to_string())
}

/// A Secret manifest with string items.
pub fn secret(namespace: &str, name: &str, items: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nstringData:\n"
    );
    for (k, v) in items {
        s.push_str(&format!("  {k}: {v:?}\n"));
    }
    s
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// The records annotation of a JSON SealedSecret, parsed.
pub fn records(ss: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let text = ss["metadata"]["annotations"][SEAL_RECORDS]
        .as_str()
        .unwrap_or_else(|| panic!("no records: {ss}"));
    match json(text) {
        serde_json::Value::Object(m) => m,
        v => panic!("{v}"),
    }
}

/// `base64` of `bytes` (standard alphabet, padded).
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A fresh directory that `.kseal.yaml` discovery cannot leave (it stops at `.git`).
pub fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    dir
}
