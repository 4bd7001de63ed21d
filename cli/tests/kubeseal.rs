//! The kubeseal front, offline: the `kseal` binary run through a symlink named `kubeseal`, with
//! kubeseal's flags, environment variables, outputs, messages and exit codes (docs/compatibility.md, “The kubeseal CLI”),
//! and Bitnami's integration scenarios that need no cluster (IT-28, IT-33, IT-34, IT-35).
//!
//! Goldens of the messages and help text are in `tests/kubeseal/*.trycmd` (run by
//! `kubeseal_golden` below); regenerate with
//! `TRYCMD=overwrite cargo test -p kseal --test kubeseal`, then review the diff.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-example");

fn example(name: &str) -> String {
    Path::new(KEYS).join(name).display().to_string()
}

/// A directory holding `kubeseal` → the kseal binary (made once per test process).
fn kubeseal_bin() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("kubeseal-front-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kseal"), dir.path().join("kubeseal"))
            .unwrap();
        dir
    });
    Box::leak(dir.path().join("kubeseal").into_boxed_path())
}

/// Runs `kubeseal args` with `env`, no cluster (KUBECONFIG names a missing file), no
/// `SEALED_SECRETS_*` of the test's own environment, and `stdin`.
fn kubeseal_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(kubeseal_bin());
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SEALED_SECRETS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // It may exit before reading (e.g. an error first).
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

fn kubeseal(args: &[&str], stdin: Option<&[u8]>) -> Output {
    kubeseal_env(args, &[], stdin)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit code 1 and `error: <message>` on stderr; returns the message.
fn fails(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout {:?} stderr {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    let msg = err
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("stderr does not start with `error: `: {err:?}"));
    assert!(out.stdout.is_empty(), "stdout on error: {:?}", out.stdout);
    msg.trim_end_matches('\n').to_string()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Opens a SealedSecret (JSON or YAML text) with the example key; returns the Secret (JSON).
fn unseal(sealed: &str) -> Value {
    json(&ok(&kubeseal(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &example("tls.key"),
        ],
        Some(sealed.as_bytes()),
    )))
}

/// Base64 (standard, padded), for expected values.
fn b64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &c| n << 8 | u32::from(c)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mysecret\n  namespace: myns\n  labels: {app: web}\ndata:\n  foo: YmFy\nstringData:\n  greeting: hello <world> & all\n";

#[test]
fn kubeseal_golden() {
    trycmd::TestCases::new()
        .register_bin("kubeseal", kubeseal_bin())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .case("tests/kubeseal/*.trycmd");
}

#[test]
fn seals_in_json_and_yaml_with_kubeseals_layout() {
    let cert = example("tls.crt");
    let out = ok(&kubeseal(&["--cert", &cert], Some(SECRET.as_bytes())));
    assert!(out.starts_with(
        "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n"
    ));
    assert!(out.ends_with("}\n") && !out.ends_with("}\n\n"));
    let ss = json(&out);
    // Top-level metadata: name and namespace only (no kseal annotation).
    assert_eq!(
        ss["metadata"],
        serde_json::json!({"name": "mysecret", "namespace": "myns"})
    );
    assert_eq!(ss["spec"]["template"]["metadata"]["labels"]["app"], "web");
    let secret = unseal(&out);
    assert_eq!(secret["data"]["foo"], b64(b"bar"));
    assert_eq!(secret["data"]["greeting"], b64(b"hello <world> & all"));

    for format in ["yaml", "YAML", "Yaml"] {
        let out = ok(&kubeseal(
            &["--cert", &cert, "-o", format],
            Some(SECRET.as_bytes()),
        ));
        assert!(
            out.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n"),
            "{out}"
        );
        assert!(!out.contains("sealed-with"));
        assert_eq!(unseal(&out)["data"]["foo"], b64(b"bar"));
    }
    // pflag's spellings of the same flags.
    let cert_arg = format!("--cert={cert}");
    let out = ok(&kubeseal(&[&cert_arg, "-oyaml"], Some(SECRET.as_bytes())));
    assert!(out.starts_with("---\n"));
    let out = ok(&kubeseal(
        &["--cert", &cert, "-o=json"],
        Some(SECRET.as_bytes()),
    ));
    assert!(out.starts_with("{\n"));
}

#[test]
fn several_secrets_give_several_sealed_secrets() {
    let two = format!("{SECRET}---\n{}", SECRET.replace("mysecret", "other"));
    let out = ok(&kubeseal(
        &["--cert", &example("tls.crt")],
        Some(two.as_bytes()),
    ));
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["metadata"]["name"], "other");
    let out = ok(&kubeseal(
        &["--cert", &example("tls.crt"), "-o", "yaml"],
        Some(two.as_bytes()),
    ));
    assert_eq!(out.matches("---\n").count(), 2);
}

#[test]
fn output_file_is_replaced_atomically_and_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.yaml");
    let t = target.to_str().unwrap();
    fs::write(&target, "old content\n").unwrap();
    // A failure leaves the file as it was.
    let msg = fails(&kubeseal(
        &["--cert", &example("tls.crt"), "-w", t],
        Some(b"apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: y}\n"),
    ));
    assert!(
        msg.starts_with("secret.data is empty in input Secret"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "old content\n");
    // Success: YAML (the extension wins over -o), nothing on stdout, no temporary left behind.
    let out = kubeseal(
        &["--cert", &example("tls.crt"), "-o", "json", "-w", t],
        Some(SECRET.as_bytes()),
    );
    assert_eq!(ok(&out), "");
    let written = fs::read_to_string(&target).unwrap();
    assert!(
        written.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        "{written}"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // Another extension: -o decides (JSON by default).
    let target = dir.path().join("sealed.txt");
    ok(&kubeseal(
        &[
            "--cert",
            &example("tls.crt"),
            "-w",
            target.to_str().unwrap(),
        ],
        Some(SECRET.as_bytes()),
    ));
    assert!(fs::read_to_string(&target).unwrap().starts_with("{\n"));
}

/// A SealedSecret holding one raw value, to open it with --recovery-unseal.
fn raw_ss(name: &str, ns: &str, scope_annotation: Option<&str>, value: &str) -> String {
    let mut meta = serde_json::json!({"name": name, "namespace": ns});
    if let Some(a) = scope_annotation {
        meta["annotations"] = serde_json::json!({ a: "true" });
    }
    serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": meta,
        "spec": {"encryptedData": {"item": value}},
    })
    .to_string()
}

#[test]
fn raw_values_from_stdin_and_from_file() {
    let cert = example("tls.crt");
    let v = ok(&kubeseal(
        &["--raw", "--cert", &cert, "-n", "prod", "--name", "db"],
        Some(b"s3cr3t"),
    ));
    assert!(v.starts_with("Ag") && !v.ends_with('\n'), "{v:?}");
    let secret = unseal(&raw_ss("db", "prod", None, &v));
    assert_eq!(secret["data"]["item"], b64(b"s3cr3t"));
    // Strict: another name does not open it.
    let msg = fails(&kubeseal(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &example("tls.key"),
        ],
        Some(raw_ss("other", "prod", None, &v).as_bytes()),
    ));
    assert_eq!(msg, "no key could decrypt secret (item)");

    // --from-file ([key=]path, the key ignored), namespace-wide: any name in the namespace.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    fs::write(&file, b"line\n").unwrap();
    let spec = format!("password={}", file.display());
    let v = ok(&kubeseal(
        &[
            "--raw",
            "--cert",
            &cert,
            "-n",
            "prod",
            "--scope",
            "namespace-wide",
            "--from-file",
            &spec,
        ],
        None,
    ));
    let secret = unseal(&raw_ss(
        "anything",
        "prod",
        Some("sealedsecrets.bitnami.com/namespace-wide"),
        &v,
    ));
    assert_eq!(secret["data"]["item"], b64(b"line\n"), "not trimmed");

    // Cluster-wide needs neither name nor namespace.
    let v = ok(&kubeseal(
        &["--raw", "--cert", &cert, "--scope", "cluster-wide"],
        Some(b"x"),
    ));
    let secret = unseal(&raw_ss(
        "n",
        "elsewhere",
        Some("sealedsecrets.bitnami.com/cluster-wide"),
        &v,
    ));
    assert_eq!(secret["data"]["item"], b64(b"x"));

    assert_eq!(
        fails(&kubeseal(&["--raw", "--cert", &cert], Some(b"x"))),
        "must provide the --name flag with --raw and --scope strict"
    );
    assert_eq!(
        fails(&kubeseal(
            &[
                "--raw",
                "--cert",
                &cert,
                "--name",
                "a",
                "--from-file",
                "a,b"
            ],
            None
        )),
        "must provide only one --from-file when encrypting a single item with --raw"
    );
    assert_eq!(
        fails(&kubeseal(&["--from-file", "a", "--cert", &cert], None)),
        "--from-file requires --raw"
    );
}

#[test]
fn namespace_from_flag_kubeconfig_context_or_default() {
    let cert = example("tls.crt");
    let no_ns = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {foo: YmFy}\n";
    // IT-26 offline: -n fills it.
    let ss = json(&ok(&kubeseal(
        &["--cert", &cert, "-n", "argns"],
        Some(no_ns.as_bytes()),
    )));
    assert_eq!(ss["metadata"]["namespace"], "argns");
    assert_eq!(
        unseal(&serde_json::to_string(&ss).unwrap())["metadata"]["namespace"],
        "argns"
    );
    // IT-25 offline: the kubeconfig context's namespace.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("config");
    fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: x, user: u, namespace: nons}\n- name: d\n  context: {cluster: x, user: u, namespace: dns}\nclusters:\n- name: x\n  cluster: {server: 'http://0.0.0.0:1'}\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let kcs = kc.to_str().unwrap();
    let ss = json(&ok(&kubeseal(
        &["--cert", &cert, "--kubeconfig", kcs],
        Some(no_ns.as_bytes()),
    )));
    assert_eq!(ss["metadata"]["namespace"], "nons");
    let ss = json(&ok(&kubeseal(
        &["--cert", &cert, "--kubeconfig", kcs, "--context", "d"],
        Some(no_ns.as_bytes()),
    )));
    assert_eq!(ss["metadata"]["namespace"], "dns");
    let ss = json(&ok(&kubeseal_env(
        &["--cert", &cert],
        &[("KUBECONFIG", kcs)],
        Some(no_ns.as_bytes()),
    )));
    assert_eq!(ss["metadata"]["namespace"], "nons");
    // No kubeconfig: "default".
    let ss = json(&ok(&kubeseal(&["--cert", &cert], Some(no_ns.as_bytes()))));
    assert_eq!(ss["metadata"]["namespace"], "default");
    // -n against the Secret's own namespace.
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert, "-n", "other"],
            Some(SECRET.as_bytes())
        )),
        "namespace mismatch: input secret is in namespace \"myns\" but \"other\" was specified"
    );
    // --name overrides the name of every input Secret.
    let ss = json(&ok(&kubeseal(
        &["--cert", &cert, "--name", "renamed"],
        Some(SECRET.as_bytes()),
    )));
    assert_eq!(ss["metadata"]["name"], "renamed");
    assert_eq!(ss["spec"]["template"]["metadata"]["name"], "renamed");
}

#[test]
fn environment_variables_set_every_flag_and_the_command_line_wins() {
    let cert = example("tls.crt");
    let env = [
        ("SEALED_SECRETS_CERT", cert.as_str()),
        ("SEALED_SECRETS_SCOPE", "cluster-wide"),
        ("SEALED_SECRETS_FORMAT", "yaml"),
    ];
    let out = ok(&kubeseal_env(&[], &env, Some(SECRET.as_bytes())));
    assert!(out.starts_with("---\n"));
    assert!(
        out.contains("sealedsecrets.bitnami.com/cluster-wide: \"true\""),
        "{out}"
    );
    let out = ok(&kubeseal_env(
        &["-o", "json", "--scope", "strict"],
        &env,
        Some(SECRET.as_bytes()),
    ));
    let ss = json(&out);
    assert!(ss["metadata"].get("annotations").is_none(), "{out}");
    // Input and output files, and the namespace (a client-go flag).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.yaml");
    fs::write(&input, SECRET.replace("  namespace: myns\n", "")).unwrap();
    let output = dir.path().join("out.json");
    let env = [
        ("SEALED_SECRETS_CERT", cert.as_str()),
        ("SEALED_SECRETS_SECRET_FILE", input.to_str().unwrap()),
        (
            "SEALED_SECRETS_SEALED_SECRET_FILE",
            output.to_str().unwrap(),
        ),
        ("SEALED_SECRETS_NAMESPACE", "envns"),
    ];
    assert_eq!(ok(&kubeseal_env(&[], &env, None)), "");
    let ss = json(&fs::read_to_string(&output).unwrap());
    assert_eq!(ss["metadata"]["namespace"], "envns");
    // Recovery from the environment alone; a bool that does not parse is ignored, as pflagenv does.
    let key = example("tls.key");
    let env = [
        ("SEALED_SECRETS_RECOVERY_UNSEAL", "true"),
        ("SEALED_SECRETS_RECOVERY_PRIVATE_KEY", key.as_str()),
        ("SEALED_SECRETS_ALLOW_EMPTY_DATA", "maybe"),
    ];
    let sealed = fs::read(example("sealed-secret.yaml")).unwrap();
    let secret = json(&ok(&kubeseal_env(&[], &env, Some(&sealed))));
    assert_eq!(secret["data"]["username"], b64(b"admin"));
    // SEALED_SECRETS_VERSION is a flag too.
    let out = ok(&kubeseal_env(
        &[],
        &[("SEALED_SECRETS_VERSION", "true")],
        None,
    ));
    assert!(out.starts_with("kubeseal version: v"));
}

#[test]
fn merge_into_rewrites_the_whole_file_in_the_output_format() {
    let cert = example("tls.crt");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sealed.yaml");
    let t = target.to_str().unwrap();
    // A kubeseal-made YAML file with one item.
    let first = "apiVersion: v1\nkind: Secret\nmetadata: {name: mysecret, namespace: myns, labels: {app: web}}\ndata: {foo: YmFy}\n";
    fs::write(
        &target,
        ok(&kubeseal(
            &["--cert", &cert, "-o", "yaml"],
            Some(first.as_bytes()),
        )),
    )
    .unwrap();
    let before =
        json(&serde_json::to_string(&unseal(&fs::read_to_string(&target).unwrap())).unwrap());
    assert_eq!(before["data"]["foo"], b64(b"bar"));

    // Merge a new item and a new label (the input's name and namespace do not matter): kubeseal
    // rewrites the file as JSON, -o's default, even though it is called .yaml.
    let second = "apiVersion: v1\nkind: Secret\nmetadata: {name: ignored, labels: {tier: db}}\nstringData: {extra: more}\n";
    assert_eq!(
        ok(&kubeseal(
            &["--cert", &cert, "--merge-into", t],
            Some(second.as_bytes())
        )),
        ""
    );
    let merged = fs::read_to_string(&target).unwrap();
    let ss = json(&merged);
    assert_eq!(
        ss["metadata"],
        serde_json::json!({"name": "mysecret", "namespace": "myns"})
    );
    assert_eq!(
        ss["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({"app": "web", "tier": "db"})
    );
    let secret = unseal(&merged);
    assert_eq!(secret["data"]["foo"], b64(b"bar"));
    assert_eq!(secret["data"]["extra"], b64(b"more"));

    // -o yaml writes YAML.
    let third = "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {foo: changed}\n";
    ok(&kubeseal(
        &["--cert", &cert, "--merge-into", t, "-o", "yaml"],
        Some(third.as_bytes()),
    ));
    let merged = fs::read_to_string(&target).unwrap();
    assert!(
        merged.starts_with("---\napiVersion: bitnami.com/v1alpha1\n"),
        "{merged}"
    );
    let secret = unseal(&merged);
    assert_eq!(secret["data"]["foo"], b64(b"changed"));
    assert_eq!(secret["data"]["extra"], b64(b"more"));

    // -n against the file's namespace, a missing file, a scope the file is not sealed for.
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert, "--merge-into", t, "-n", "other"],
            Some(third.as_bytes())
        )),
        "namespace mismatch: input secret is in namespace \"myns\" but \"other\" was specified"
    );
    let missing = dir.path().join("missing.json");
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert, "--merge-into", missing.to_str().unwrap()],
            Some(third.as_bytes())
        )),
        format!("open {}: no such file or directory", missing.display())
    );
    let msg = fails(&kubeseal(
        &[
            "--cert",
            &cert,
            "--merge-into",
            t,
            "--scope",
            "cluster-wide",
        ],
        Some(third.as_bytes()),
    ));
    assert!(msg.starts_with("scope mismatch"), "{msg}");
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        merged,
        "failures leave the file"
    );
}

#[test]
fn merge_into_a_kseal_file_keeps_its_sealing_key_hint() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ss.yaml");
    fs::copy(example("sealed-secret.yaml"), &target).unwrap();
    let second = "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {extra: more}\n";
    ok(&kubeseal(
        &[
            "--cert",
            &example("tls.crt"),
            "--merge-into",
            target.to_str().unwrap(),
        ],
        Some(second.as_bytes()),
    ));
    let ss = json(&fs::read_to_string(&target).unwrap());
    assert_eq!(
        ss["metadata"]["annotations"]["sealedsecrets.kseal.dev/sealed-with"],
        "SHA256:2S153aXBdE8nMzbcUJ49TobRZJKsfU3Iu6AmpeWx1Ac"
    );
    let secret = unseal(&serde_json::to_string(&ss).unwrap());
    assert_eq!(secret["data"]["extra"], b64(b"more"));
    assert_eq!(secret["data"]["username"], b64(b"admin"));
}

#[test]
fn recovery_unseal_with_the_example_keys() {
    let sealed = fs::read(example("sealed-secret.yaml")).unwrap();
    for key in ["tls.key", "sealed-secrets-key.yaml"] {
        let secret = json(&ok(&kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &example(key)],
            Some(&sealed),
        )));
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["data"]["username"], b64(b"admin"));
        assert_eq!(
            secret["data"]["password"],
            b64(b"correct horse battery staple")
        );
        assert_eq!(
            secret["metadata"]["ownerReferences"][0]["kind"],
            "SealedSecret"
        );
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "");
    }
    // Several keys, comma-separated: the wrong one is skipped.
    let other = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cmd/fixtures/go_rsa2048.key"
    );
    let keys = format!("{other},{}", example("tls.key"));
    ok(&kubeseal(
        &["--recovery-unseal", "--recovery-private-key", &keys],
        Some(&sealed),
    ));
    // -w: the plaintext file is private.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secret.yaml");
    ok(&kubeseal(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            &example("tls.key"),
            "-w",
            out.to_str().unwrap(),
        ],
        Some(&sealed),
    ));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&out)
        .unwrap()
        .starts_with("---\napiVersion: v1\n"));
}

/// IT-34: recovery without a key, and a kubeconfig that does not exist.
#[test]
fn it34_recovery_without_a_key() {
    let sealed = fs::read(example("sealed-secret.yaml")).unwrap();
    let out = kubeseal(
        &[
            "--recovery-unseal",
            "--kubeconfig",
            "/?this/file/cannot/possibly/exist/right?",
        ],
        Some(&sealed),
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    let first = stderr.lines().next().unwrap();
    assert!(first.contains("key could decrypt secret ("), "{stderr}");
    assert!(first.ends_with(')'), "{stderr}");
}

/// The labelled key Secrets as `kubectl get secret -o json` prints them: a v1 List.
fn key_list_json() -> String {
    let yaml = fs::read_to_string(example("sealed-secrets-key.yaml")).unwrap();
    let field = |name: &str| {
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_string()
    };
    serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [{
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "sealed-secrets-keyabcde",
                "namespace": "kube-system",
                "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
            },
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": field("tls.crt"), "tls.key": field("tls.key")},
        }],
        "metadata": {"resourceVersion": ""},
    }))
    .unwrap()
}

/// IT-35: recovery with a JSON dump of the key Secret List, no cluster access.
#[test]
fn it35_recovery_with_a_json_key_list() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    fs::write(&keys, key_list_json()).unwrap();
    // Bitnami's fixture: Secret testsecret, data foo=bar, sealed with the cluster's key.
    let secret = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"testsecret\",\"namespace\":\"testns\",\"labels\":{\"mylabel\":\"myvalue\"}},\"data\":{\"foo\":\"YmFy\"}}";
    let sealed = ok(&kubeseal(
        &["--cert", &example("tls.crt")],
        Some(secret.as_bytes()),
    ));
    let out = kubeseal(
        &[
            "--recovery-unseal",
            "--recovery-private-key",
            keys.to_str().unwrap(),
        ],
        Some(sealed.as_bytes()),
    );
    let unsealed = json(&ok(&out));
    assert_eq!(unsealed["kind"], "Secret");
    assert_eq!(unsealed["data"], serde_json::json!({"foo": b64(b"bar")}));
    assert_eq!(unsealed["metadata"]["labels"]["mylabel"], "myvalue");
}

/// IT-33: a certificate file that does not exist.
#[test]
fn it33_missing_certificate_file() {
    let out = kubeseal(
        &["--cert", "/?this/file/cannot/possibly/exist/right?"],
        Some(SECRET.as_bytes()),
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(
        stderr
            .lines()
            .next()
            .unwrap()
            .ends_with("no such file or directory"),
        "{stderr}"
    );
}

/// IT-28: empty stdin and no arguments fails (here: no cluster for the certificate; with
/// `--cert`: no Secret in the input).
#[test]
fn it28_empty_stdin_fails() {
    let out = kubeseal(&[], Some(b""));
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(
        fails(&kubeseal(&["--cert", &example("tls.crt")], Some(b""))),
        "no secrets found. Ensure the input is valid and UTF-8 encoded"
    );
}

#[test]
fn version_help_and_flag_errors() {
    let out = ok(&kubeseal(&["--version"], None));
    assert_eq!(
        out,
        format!("kubeseal version: v{}\n", env!("CARGO_PKG_VERSION"))
    );
    // --version comes before everything else, --help next.
    assert!(ok(&kubeseal(
        &["--version", "--help", "--from-file", "x"],
        None
    ))
    .starts_with("kubeseal version:"));
    for args in [&["--help"][..], &["-h"], &["--help", "--from-file", "x"]] {
        let out = kubeseal(args, None);
        let text = ok(&out);
        assert!(text.starts_with("Usage of "), "{text}");
        assert!(text.contains("\n      --recovery-unseal "), "{text}");
        assert!(out.stderr.is_empty());
    }
    for (args, message) in [
        (&["--nope"][..], "unknown flag: --nope"),
        (&["-x"], "unknown shorthand flag: 'x' in -x"),
        (&["--cert"], "flag needs an argument: --cert"),
        (&["--raw=maybe"], "invalid argument \"maybe\" for \"--raw\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        (&["--scope", "wide"], "invalid argument \"wide\" for \"--scope\" flag: must be one of: strict, namespace-wide, cluster-wide"),
    ] {
        let out = kubeseal(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let (first, rest) = stderr.split_once('\n').unwrap();
        assert_eq!(first, message);
        assert!(rest.starts_with("Usage of "), "{rest}");
    }
}

#[test]
fn fetch_cert_copies_the_certificate_source() {
    let cert = fs::read(example("tls.crt")).unwrap();
    let out = kubeseal(&["--fetch-cert", "--cert", &example("tls.crt")], None);
    assert_eq!(out.stdout, cert);
    let url = format!(
        "file://{}",
        fs::canonicalize(example("tls.crt")).unwrap().display()
    );
    let out = kubeseal(&["--fetch-cert", "--cert", &url], None);
    assert_eq!(out.stdout, cert);
    assert_eq!(
        fails(&kubeseal(
            &["--fetch-cert", "--cert", "file:///nonexistent/cert.pem"],
            None
        )),
        "cannot fetch \"file:///nonexistent/cert.pem\": 404 Not Found"
    );
    // Sealing through the file:// URL.
    let ss = json(&ok(&kubeseal(&["--cert", &url], Some(SECRET.as_bytes()))));
    assert_eq!(ss["kind"], "SealedSecret");
}

#[test]
fn cluster_modes_without_a_cluster_fail_with_one_message() {
    let sealed = fs::read(example("sealed-secret.yaml")).unwrap();
    for args in [
        &["--validate"][..],
        &["--re-encrypt"],
        &["--fetch-cert"],
        &["--rotate"],
    ] {
        let out = kubeseal(args, Some(&sealed));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("error: "), "{stderr}");
        if args == ["--rotate"] {
            assert!(stderr.starts_with(
                "Flag --rotate has been deprecated, please use --re-encrypt instead\n"
            ));
        }
    }
    // client-go's flags: --server replaces the kubeconfig's server (nothing listens there).
    let out = kubeseal(
        &[
            "--fetch-cert",
            "--server",
            "http://127.0.0.1:1",
            "--request-timeout",
            "5s",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let msg = fails(&kubeseal(
        &[
            "--fetch-cert",
            "--request-timeout",
            "soon",
            "--server",
            "http://127.0.0.1:1",
        ],
        None,
    ));
    assert!(msg.starts_with("Invalid timeout value."), "{msg}");
    let msg = fails(&kubeseal(
        &["--fetch-cert", "--proxy-url", "http://proxy:3128"],
        None,
    ));
    assert!(msg.starts_with("--proxy-url is not supported"), "{msg}");
}

#[test]
fn input_and_certificate_errors() {
    let cert = example("tls.crt");
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert, "-f", "/nonexistent/secret.yaml"],
            None
        )),
        "Could not read file specified with --secret-file"
    );
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &example("secret.yaml")],
            Some(SECRET.as_bytes())
        )),
        "data does not contain any valid RSA or ECDSA certificates"
    );
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert, "-o", "xml"],
            Some(SECRET.as_bytes())
        )),
        "unsupported output format: xml"
    );
    assert_eq!(
        fails(&kubeseal(&["--cert", &cert], Some(&[0xff, 0xfe, 0x00][..]))),
        "no secrets found. Ensure the input is valid and UTF-8 encoded"
    );
    assert_eq!(
        fails(&kubeseal(
            &["--cert", &cert],
            Some(b"apiVersion: v1\nkind: Secret\ndata: {a: YQ==}\n")
        )),
        "missing metadata.name in input Secret"
    );
    // kubeseal decodes every document as a Secret, whatever its kind: a SealedSecret has no data.
    let sealed = fs::read(example("sealed-secret.yaml")).unwrap();
    assert!(fails(&kubeseal(&["--cert", &cert], Some(&sealed))).starts_with("secret.data is empty"));
    ok(&kubeseal(
        &["--cert", &cert, "--allow-empty-data"],
        Some(&sealed),
    ));
}

#[test]
fn secret_values_never_reach_error_output() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ndata: {a: bm90LWJhc2U2NA=, b: c3VwZXJzZWNyZXQ=}\n";
    let out = kubeseal(
        &["--cert", &example("tls.crt"), "-o", "xml"],
        Some(secret.as_bytes()),
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("c3VwZXJzZWNyZXQ") && !stderr.contains("supersecret"),
        "{stderr}"
    );
}

#[test]
fn the_kseal_name_still_runs_kseal() {
    let dir = tempfile::tempdir().unwrap();
    let link: PathBuf = dir.path().join("kubeseal-not");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kseal"), &link).unwrap();
    let out = Command::new(&link).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("kseal {}\n", env!("CARGO_PKG_VERSION"))
    );
}
