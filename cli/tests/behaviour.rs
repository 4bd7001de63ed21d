//! End-to-end behaviour of the `kseal` binary: round trips, atomic output, key files, merges,
//! pipes, and that secret values never reach error output.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/fixtures");

fn fix(name: &str) -> PathBuf {
    Path::new(FIX).join(name)
}

fn kseal(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kseal"));
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("KSEAL_CERT")
        .env_remove("KSEAL_KEYS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // The command may exit before reading its input (e.g. a bad certificate is checked first).
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn seal_then_unseal_with_the_go_key_in_both_formats() {
    for fmt in ["json", "yaml"] {
        let sealed = ok(&kseal(
            &[
                "seal",
                "--cert",
                p(&fix("go_rsa2048.crt")),
                "-f",
                p(&fix("secret.yaml")),
                "-o",
                fmt,
            ],
            None,
        ));
        let secret = ok(&kseal(
            &["unseal", "--key", p(&fix("go_rsa2048.key")), "-o", "json"],
            Some(sealed.as_bytes()),
        ));
        let v: serde_json::Value = serde_json::from_str(&secret).unwrap();
        assert_eq!(v["data"]["foo"], "YmFy");
        assert_eq!(
            v["data"]["greeting"], "aGVsbG8gPHdvcmxkPiAmIGFsbA==",
            "stringData is sealed too"
        );
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        assert!(v["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none());
        assert!(
            v["metadata"].get("ownerReferences").is_none(),
            "applicable as it is: no ownerReference with an empty uid"
        );
        let kept = ok(&kseal(
            &[
                "unseal",
                "--key",
                p(&fix("go_rsa2048.key")),
                "-o",
                "json",
                "--owner-reference",
            ],
            Some(sealed.as_bytes()),
        ));
        let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "SealedSecret");
    }
}

#[test]
fn string_data_wins_over_data() {
    let input = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ndata: {k: YQ==}\nstringData: {k: b}\n";
    let sealed = ok(&kseal(
        &["seal", "--cert", p(&fix("go_rsa2048.crt"))],
        Some(input.as_bytes()),
    ));
    let secret = ok(&kseal(
        &["unseal", "--key", p(&fix("go_rsa2048.key"))],
        Some(sealed.as_bytes()),
    ));
    let v: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert_eq!(v["data"]["k"], "Yg==");
}

#[test]
fn keygen_keys_round_trip_and_are_protected() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let crt = dir.path().join("c.pem");
    let sec = dir.path().join("s.yaml");
    let out = kseal(
        &[
            "keygen",
            "--bits",
            "2048",
            "--key-file",
            p(&key),
            "--cert-file",
            p(&crt),
            "--secret-file",
            p(&sec),
        ],
        None,
    );
    ok(&out);
    // The key Secret uses generateName, which `kubectl apply` refuses: the advice is `create`,
    // and the message names the file it wrote.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("kubectl create -f {}", sec.display())),
        "{said}"
    );
    assert!(fs::read_to_string(&sec).unwrap().contains("generateName:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = fs::read(&key).unwrap();
    let again = kseal(
        &[
            "keygen",
            "--bits",
            "2048",
            "--key-file",
            p(&dir.path().join("new.pem")),
            "--cert-file",
            p(&crt),
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("already exists (use --force to overwrite)"));
    assert!(
        !dir.path().join("new.pem").exists(),
        "nothing written when one target exists"
    );
    assert_eq!(fs::read(&key).unwrap(), before);

    let sealed = ok(&kseal(
        &["seal", "--cert", p(&crt), "-f", p(&fix("secret.yaml"))],
        None,
    ));
    for k in [&key, &sec] {
        let secret = ok(&kseal(&["unseal", "--key", p(k)], Some(sealed.as_bytes())));
        assert!(secret.contains("\"foo\": \"YmFy\""));
    }
}

#[test]
fn raw_value_has_no_newline_and_opens_under_its_label() {
    let out = ok(&kseal(
        &[
            "seal",
            "--raw",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-n",
            "default",
            "--name",
            "mysecret",
        ],
        Some(b"s3cr3t\n"),
    ));
    assert!(!out.ends_with('\n'));
    assert!(
        out.starts_with("AQ"),
        "2048-bit key blobs start 01 00: {out}"
    );
    let ss = format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: mysecret, namespace: default}}\nspec:\n  encryptedData:\n    v: {out}\n");
    let secret = ok(&kseal(
        &["unseal", "--key", p(&fix("go_rsa2048.key"))],
        Some(ss.as_bytes()),
    ));
    assert!(
        secret.contains("\"v\": \"czNjcjN0Cg==\""),
        "the value is not trimmed: {secret}"
    );
}

#[test]
fn failures_leave_the_output_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.yaml");
    fs::write(&target, "precious: content\n").unwrap();
    let t = p(&target);
    // (command, certificate or key, input file, extra flags): every one must fail.
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("seal", "missing.crt", "secret.yaml", &[]),
        ("seal", "expired.crt", "secret.yaml", &[]),
        ("seal", "ec_cert.pem", "secret.yaml", &[]),
        ("seal", "tls.crt", "empty.yaml", &[]),
        ("seal", "tls.crt", "malformed.yaml", &[]),
        ("seal", "tls.crt", "malformed.json", &[]),
        ("seal", "tls.crt", "configmap.yaml", &[]),
        ("seal", "tls.crt", "bad-base64.yaml", &[]),
        ("seal", "tls.crt", "secret.yaml", &["-n", "prod"]),
        // The second document fails: the first must not be written either.
        ("seal", "tls.crt", "second-fails.yaml", &[]),
        ("seal", "tls.crt", "secret.yaml", &["--raw"]),
        ("unseal", "go_rsa2048.key", "ss-tampered.yaml", &[]),
        ("unseal", "go_rsa2048.key", "ss-renamed.yaml", &[]),
    ];
    let cases = cases.iter().map(|(cmd, key, input, extra)| {
        let key_flag = if *cmd == "seal" { "--cert" } else { "--key" };
        let mut a: Vec<String> = vec![cmd.to_string(), key_flag.into(), p(&fix(key)).into()];
        if extra.contains(&"--raw") {
            a.extend(["--from-file".into(), p(&fix(input)).into()]);
        } else {
            a.extend(["-f".into(), p(&fix(input)).into()]);
        }
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    });
    for mut args in cases {
        args.extend(["-w".to_string(), t.to_string()]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kseal(&a, None);
        assert!(!out.status.success(), "{a:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("kseal: error: ") && err.lines().count() == 1,
            "{a:?}: {err}"
        );
        assert_eq!(
            fs::read_to_string(&target).unwrap(),
            "precious: content\n",
            "{a:?} touched the file"
        );
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn output_file_extension_selects_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.yml");
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("tls.crt")),
            "-f",
            p(&fix("secret.json")),
            "-w",
            p(&target),
        ],
        None,
    ));
    assert!(fs::read_to_string(&target)
        .unwrap()
        .starts_with("---\napiVersion: bitnami.com/v1alpha1\n"));
}

#[test]
fn secret_values_never_reach_error_output() {
    let canary = "CANARY-7f3a9c-do-not-print";
    let b64 = base64_encode(canary.as_bytes());
    let inputs = [
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\nstringData: {{k: {canary}}}\n"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\ndata: {{k: {b64}}}\n"),
    ];
    for input in &inputs {
        // Namespace mismatch, expired certificate, non-RSA certificate: all after reading the secret.
        for args in [
            vec!["seal", "--cert", p(&fix("tls.crt")), "-n", "b"],
            vec!["seal", "--cert", p(&fix("expired.crt"))],
            vec!["seal", "--cert", p(&fix("ec_cert.pem"))],
            vec![
                "seal",
                "--cert",
                p(&fix("tls.crt")),
                "--merge-into",
                "/nonexistent/x.yaml",
            ],
        ] {
            let out = kseal(&args, Some(input.as_bytes()));
            assert!(!out.status.success());
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !all.contains(canary) && !all.contains(&b64),
                "{args:?} leaked: {all}"
            );
        }
    }
    // A sealed canary that fails to open must not leak either (wrong key).
    let sealed = ok(&kseal(
        &["seal", "--cert", p(&fix("go_rsa2048.crt"))],
        Some(inputs[0].as_bytes()),
    ));
    let out = kseal(
        &["unseal", "--key", p(&fix("sealed-secrets-key.yaml"))],
        Some(sealed.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(canary));

    // Input that does not parse: serde's messages quote the value; ours name the field.
    let malformed = [
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\ndata: {canary}\n"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\ndata: {{k: {canary}}}\n"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\nstringData: {{k: [{canary}]}}\n"),
        format!("{{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {{\"name\": \"s\"}}, \"stringData\": {{\"k\": {{\"x\": \"{canary}\"}}}}}}"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: a}}\ntype: [{canary}]\n"),
    ];
    for input in &malformed {
        let out = kseal(
            &["seal", "--cert", p(&fix("tls.crt"))],
            Some(input.as_bytes()),
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains(canary) && !err.contains("CANARY"),
            "leaked: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("Secret"), "{err}");
    }

    // Templates whose errors would quote a decrypted value (`index . .k`, `printf .k`).
    for template in [
        "{{ index . .k }}",
        "{{ repeat .k \"x\" }}",
        "{{ .k | b64dec }}",
    ] {
        let sealed = ok(&kseal(
            &["seal", "--cert", p(&fix("go_rsa2048.crt")), "-o", "yaml"],
            Some(inputs[0].as_bytes()),
        ));
        let with_template = sealed.replace(
            "  template:\n",
            &format!("  template:\n    data:\n      t: '{template}'\n"),
        );
        assert_ne!(with_template, sealed);
        let out = kseal(
            &["unseal", "--key", p(&fix("go_rsa2048.key"))],
            Some(with_template.as_bytes()),
        );
        assert!(!out.status.success(), "{template}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains(canary) && !err.contains("CANARY"),
            "{template} leaked: {err}"
        );
        assert!(err.contains("template data[\"t\"]"), "{err}");
    }
}

#[test]
fn broken_pipe_exits_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kseal"))
        .args(["completion", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn merge_into_changes_only_the_merged_items() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.yaml");
    let original = ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-f",
            p(&fix("secret.yaml")),
            "-o",
            "yaml",
        ],
        None,
    ));
    // Hand edits a user would make: comments, and a reordered key.
    let edited = original
        .replacen(
            "spec:\n",
            "# Database credentials for the payments team.\nspec:\n",
            1,
        )
        .replacen(
            "  encryptedData:\n",
            "  encryptedData: # rotated quarterly\n",
            1,
        );
    fs::write(&target, &edited).unwrap();
    let update = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mysecret\n  labels: {tier: db}\nstringData:\n  foo: new-value\n  extra: added\n";
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--merge-into",
            p(&target),
        ],
        Some(update.as_bytes()),
    ));
    let merged = fs::read_to_string(&target).unwrap();

    let before: Vec<&str> = edited.lines().collect();
    let after: Vec<&str> = merged.lines().collect();
    // Every line that is not an item we merged is byte-for-byte the same, in the same order.
    let keep = |l: &&&str| {
        !l.contains("sealedsecrets.kseal.dev/seal-records")
            && !l.trim_start().starts_with("foo:")
            && !l.trim_start().starts_with("extra:")
            && !l.trim_start().starts_with("tier:")
            && !l.trim_start().starts_with("labels:")
    };
    assert_eq!(
        before.iter().filter(keep).collect::<Vec<_>>(),
        after.iter().filter(keep).collect::<Vec<_>>()
    );
    let foo_before = before
        .iter()
        .find(|l| l.trim_start().starts_with("foo:"))
        .unwrap();
    let foo_after = after
        .iter()
        .find(|l| l.trim_start().starts_with("foo:"))
        .unwrap();
    assert_ne!(foo_before, foo_after, "foo was re-sealed");
    let greeting = |ls: &[&str]| {
        ls.iter()
            .find(|l| l.trim_start().starts_with("greeting:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        greeting(&before),
        greeting(&after),
        "untouched items keep their ciphertext"
    );

    let secret = ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "-f",
            p(&target),
        ],
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert_eq!(v["metadata"]["name"], "mysecret");
    assert_eq!(v["data"]["foo"], base64_encode(b"new-value"));
    assert_eq!(v["data"]["extra"], base64_encode(b"added"));
    assert_eq!(v["data"]["greeting"], base64_encode(b"hello <world> & all"));
    assert_eq!(v["metadata"]["labels"]["tier"], "db");
    assert_eq!(v["metadata"]["labels"]["app"], "web");
}

#[test]
fn merge_into_refuses_scope_and_namespace_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.json");
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-f",
            p(&fix("secret.yaml")),
            "-w",
            p(&target),
        ],
        None,
    ));
    let before = fs::read(&target).unwrap();
    let input = fs::read(fix("secret.yaml")).unwrap();
    let out = kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--merge-into",
            p(&target),
            "--scope",
            "cluster-wide",
        ],
        Some(&input),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scope mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--merge-into",
            p(&target),
            "-n",
            "prod",
        ],
        Some(&input),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("namespace mismatch"));
    // An input Secret of another name or namespace is refused with one line; the file is kept.
    for (input, want) in [
        (
            "kind: Secret\napiVersion: v1\nmetadata: {name: other}\nstringData: {new: v}\n",
            "name mismatch: ",
        ),
        (
            "kind: Secret\napiVersion: v1\nmetadata: {name: mysecret, namespace: prod}\nstringData: {new: v}\n",
            "namespace mismatch: ",
        ),
    ] {
        let out = kseal(
            &[
                "seal",
                "--cert",
                p(&fix("go_rsa2048.crt")),
                "--merge-into",
                p(&target),
            ],
            Some(input.as_bytes()),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("dg=="), "{err}");
    }
    assert_eq!(fs::read(&target).unwrap(), before);
    // A JSON target stays JSON and still opens.
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--merge-into",
            p(&target),
        ],
        Some(b"kind: Secret\napiVersion: v1\nmetadata: {}\nstringData: {new: v}\n"),
    ));
    let merged = fs::read_to_string(&target).unwrap();
    assert!(merged.starts_with("{\n  \"kind\": \"SealedSecret\""));
    let secret = ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "-f",
            p(&target),
        ],
        None,
    ));
    assert!(secret.contains("\"new\": \"dg==\""));
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(unix)]
#[test]
fn keygen_force_gives_the_new_key_mode_0600_even_over_a_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    fs::write(&key, "old").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let crt = dir.path().join("c.pem");
    ok(&kseal(
        &[
            "keygen",
            "--bits",
            "2048",
            "--force",
            "--key-file",
            p(&key),
            "--cert-file",
            p(&crt),
        ],
        None,
    ));
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
}

#[cfg(unix)]
#[test]
fn unsealed_output_is_private_even_over_a_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secret.yaml");
    fs::write(&out, "old").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
    ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "-f",
            p(&fix("ss-go.yaml")),
            "-w",
            p(&out),
        ],
        None,
    ));
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

const GO_FP: &str = "SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4";
const TLS_FP: &str = "SHA256:2S153aXBdE8nMzbcUJ49TobRZJKsfU3Iu6AmpeWx1Ac";
const SEALED_WITH: &str = "sealedsecrets.kseal.dev/sealed-with";
const SEAL_RECORDS: &str = "sealedsecrets.kseal.dev/seal-records";

/// `text` without its seal-records annotation line (its value changes with every seal).
fn without_records(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains(SEAL_RECORDS))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn seal_records_the_sealing_key_on_the_sealed_secret_only() {
    let sealed = ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-f",
            p(&fix("secret.yaml")),
        ],
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&sealed).unwrap();
    assert_eq!(v["metadata"]["annotations"][SEALED_WITH], GO_FP);
    assert!(v["spec"]["template"]["metadata"]["annotations"]
        .get(SEALED_WITH)
        .is_none());
    // The Secret does not get it.
    let secret = ok(&kseal(
        &["unseal", "--key", p(&fix("go_rsa2048.key"))],
        Some(sealed.as_bytes()),
    ));
    assert!(!secret.contains(SEALED_WITH), "{secret}");

    // --raw prints the blob alone.
    let raw = ok(&kseal(
        &[
            "seal",
            "--raw",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-n",
            "default",
            "--name",
            "x",
        ],
        Some(b"v"),
    ));
    assert!(
        raw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{raw}"
    );
}

/// The string a one-line YAML scalar (plain, single- or double-quoted JSON-style) stands for.
fn serde_yaml_value(scalar: &str) -> Option<String> {
    if scalar.starts_with('"') {
        serde_json::from_str(scalar).ok()
    } else if let Some(inner) = scalar.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner.replace("''", "'"))
    } else {
        Some(scalar.to_string())
    }
}

/// `before` with the lines of `inserted` (in order) added: every old line stays, in order.
fn assert_only_inserted(before: &str, after: &str, inserted: &[&str]) {
    let mut expected: Vec<&str> = before.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    for line in inserted {
        let at = after_lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line:?} not in:\n{after}"));
        expected.insert(at, line);
    }
    assert_eq!(expected, after_lines, "after:\n{after}");
}

#[test]
fn merge_into_unions_the_sealing_key_hint() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.yaml");
    // A kubeseal file (no hint), with a user's comments.
    let original = fs::read_to_string(fix("ss-go.yaml"))
        .unwrap()
        .replacen("metadata:\n", "metadata: # owned by payments\n", 1)
        .replacen("spec:\n", "# do not edit by hand\nspec:\n", 1);
    fs::write(&target, &original).unwrap();
    let merge = |cert: &str, item: &str| {
        let input =
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{}}\nstringData: {{{item}: v}}\n");
        ok(&kseal(
            &["seal", "--cert", p(&fix(cert)), "--merge-into", p(&target)],
            Some(input.as_bytes()),
        ));
        let text = fs::read_to_string(&target).unwrap();
        // Every item merged so far has its seal record; the kubeseal item has none.
        let records: serde_json::Value = serde_json::from_str(
            text.lines()
                .find(|l| l.contains(SEAL_RECORDS))
                .and_then(|l| serde_yaml_value(l.split_once(": ").unwrap().1))
                .unwrap()
                .as_str(),
        )
        .unwrap();
        assert!(records.get(item).is_some(), "{text}");
        assert!(records.get("foo").is_none(), "{text}");
        without_records(&text)
    };

    // The old items' key is unknown: the hint names the new key only.
    let first = merge("tls.crt", "bar");
    let bar = first
        .lines()
        .find(|l| l.trim_start().starts_with("bar: "))
        .unwrap();
    assert_only_inserted(
        &original,
        &first,
        &[
            "  annotations:",
            &format!("    {SEALED_WITH}: {TLS_FP}"),
            bar,
        ],
    );

    // Another key: the union, sorted, replacing the value in place.
    let second = merge("go_rsa2048.crt", "baz");
    let union = format!("    {SEALED_WITH}: {TLS_FP},{GO_FP}");
    let baz = second
        .lines()
        .find(|l| l.trim_start().starts_with("baz: "))
        .unwrap();
    let expected_first = first.replace(&format!("    {SEALED_WITH}: {TLS_FP}"), &union);
    assert_only_inserted(&expected_first, &second, &[baz]);

    // A key already named: the annotation stays as it is.
    let third = merge("tls.crt", "qux");
    let qux = third
        .lines()
        .find(|l| l.trim_start().starts_with("qux: "))
        .unwrap();
    assert_only_inserted(&second, &third, &[qux]);

    // Both keys open it; the template (and so the Secret) never gets the hint.
    let secret = ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "--key",
            p(&fix("sealed-secrets-key.yaml")),
            "-f",
            p(&target),
        ],
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&secret).unwrap();
    for item in ["foo", "bar", "baz", "qux"] {
        assert!(v["data"].get(item).is_some(), "{item}: {secret}");
    }
    assert!(!secret.contains(SEALED_WITH));
}

#[test]
fn merge_into_a_json_file_adds_the_hint_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.json");
    let original = "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n  \"metadata\": {\n    \"name\": \"mysecret\",\n    \"namespace\": \"default\",\n    \"annotations\": {\n      \"sealedsecrets.bitnami.com/namespace-wide\": \"true\"\n    }\n  },\n  \"spec\": {\n    \"template\": {\n      \"metadata\": {\n        \"name\": \"mysecret\",\n        \"namespace\": \"default\",\n        \"annotations\": {\n          \"sealedsecrets.bitnami.com/namespace-wide\": \"true\"\n        }\n      }\n    },\n    \"encryptedData\": {}\n  }\n}\n";
    fs::write(&target, original).unwrap();
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--merge-into",
            p(&target),
        ],
        Some(b"kind: Secret\napiVersion: v1\nmetadata: {}\nstringData: {new: v}\n"),
    ));
    let merged = fs::read_to_string(&target).unwrap();
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["metadata"]["annotations"][SEALED_WITH], GO_FP);
    assert!(
        merged.contains(&format!(
            "      \"sealedsecrets.bitnami.com/namespace-wide\": \"true\",\n      \"{SEALED_WITH}\": \"{GO_FP}\",\n      \"{SEAL_RECORDS}\": \"{{\\\"new\\\":\\\"v1;{GO_FP};ZGVmYXVsdA==;"
        )),
        "{merged}"
    );
    assert!(merged.contains("\\\"}\"\n    }\n  },"), "{merged}");
    assert_eq!(
        v["spec"]["template"]["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn cert_given_the_private_key_file_says_so() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-example/tls.key");
    let out = kseal(&["cert", "--cert", key], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("this is a private key"), "{said}");
    assert!(said.contains("tls.crt"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
}

#[test]
fn the_project_example_verifies_and_opens() {
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-example");
    let sealed = format!("{ex}/sealed-secret.yaml");
    let out = kseal(
        &["verify", "--cert", &format!("{ex}/tls.crt"), &sealed],
        None,
    );
    let report = ok(&out);
    assert!(
        report.lines().all(|l| l.starts_with("ok ")),
        "every item has a seal record and passes: {report}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 ok, 0 failed, 0 unverifiable"));
    let opened = ok(&kseal(
        &[
            "unseal",
            "--key",
            &format!("{ex}/sealed-secrets-key.yaml"),
            &sealed,
            "-o",
            "json",
        ],
        None,
    ));
    let opened: serde_json::Value = serde_json::from_str(&opened).unwrap();
    // keys-example/secret.yaml: username in data, password in stringData.
    assert_eq!(opened["data"]["username"], "YWRtaW4=");
    assert_eq!(
        opened["data"]["password"],
        "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ=="
    );
}
