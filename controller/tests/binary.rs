//! The binary's own behaviour that needs no cluster: version, usage and start-up errors.

use std::process::Command;

fn controller() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kseal-controller"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SEALED_SECRETS_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn version_matches_bitnamis_format() {
    // IT-23: ^controller version: (v[0-9]+\.[0-9]+\.[0-9]+|[0-9a-f]{40})(\+dirty)?
    let out = controller().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let v = text
        .strip_prefix("controller version: v")
        .and_then(|v| v.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected: {text:?}"));
    let parts: Vec<&str> = v.split('.').collect();
    assert_eq!(parts.len(), 3, "{text:?}");
    assert!(parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
}

#[test]
fn usage_and_configuration_errors_exit_2_with_one_line() {
    let out = controller().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = controller()
        .args(["--key-prefix", "Bad_Prefix"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("error: invalid value for --key-prefix"),
        "{err:?}"
    );

    // Flags also come from SEALED_SECRETS_* variables; the command line wins.
    let out = controller()
        .env("SEALED_SECRETS_KEY_CUTOFF_TIME", "yesterday")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--key-cutoff-time"));
    let out = controller()
        .env("SEALED_SECRETS_AGE", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--age"));
}

#[test]
fn an_unreachable_kubeconfig_is_a_start_up_error() {
    let dir = std::env::temp_dir().join(format!("kseal-ctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = controller()
        .args(["--kubeconfig"])
        .arg(dir.join("missing.yaml"))
        .args([
            "--listen-addr",
            "127.0.0.1:0",
            "--listen-metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: cannot read kubeconfig"), "{err:?}");
    // kube's error shows its cause and returns it as its source: printed once all the same.
    assert_eq!(
        last.matches("(os error 2)").count(),
        1,
        "each cause once: {last:?}"
    );
}
