//! `kseal verify`, offline: what it catches (another cluster's key, renamed, moved, copied from
//! another SealedSecret, edited), what it passes, kubeseal's files as unverifiable, the JSON
//! report and the exit codes.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Seals `namespace/name` with `cert` (a fixture) into `dir/file` as JSON and returns the value.
fn seal_to(dir: &Path, file: &str, cert: &str, namespace: &str, name: &str) -> serde_json::Value {
    let input = secret(namespace, name, &[("password", "pw"), ("user", "me")]);
    let out = ok(&kseal(
        &["seal", "--cert", p(&fix(cert))],
        Some(input.as_bytes()),
    ));
    fs::write(dir.join(file), &out).unwrap();
    json(&out)
}

fn write(dir: &Path, file: &str, v: &serde_json::Value) {
    fs::write(dir.join(file), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Runs verify with `tls.crt` on `files` in `dir`: (exit code, stdout lines).
fn verify(dir: &Path, files: &[&str]) -> (i32, Vec<String>) {
    let cert = fix("tls.crt");
    let mut args = vec!["verify", "--cert", p(&cert)];
    args.extend_from_slice(files);
    let out = kseal_in(Some(dir), &args, &[], None);
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        stdout.lines().map(str::to_string).collect(),
    )
}

#[test]
fn a_correct_file_passes_and_each_mistake_is_named() {
    let dir = repo();
    let d = dir.path();
    let good = seal_to(d, "good.json", "tls.crt", "prod", "db");
    let (code, lines) = verify(d, &["good.json"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("ok good.json: prod/db item ")),
        "{lines:?}"
    );

    // Sealed for another cluster's certificate.
    seal_to(d, "other.json", "go_rsa2048.crt", "prod", "db");
    let (code, lines) = verify(d, &["other.json"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines[0],
        "FAIL other.json: prod/db item password: sealed for another cluster's key: SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4 (expected SHA256:2S153aXBdE8nMzbcUJ49TobRZJKsfU3Iu6AmpeWx1Ac)"
    );

    // Renamed.
    let mut renamed = good.clone();
    renamed["metadata"]["name"] = "web".into();
    write(d, "renamed.json", &renamed);
    let (code, lines) = verify(d, &["renamed.json"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines[0],
        "FAIL renamed.json: prod/web item password: renamed: sealed for name db"
    );

    // Moved to another namespace.
    let mut moved = good.clone();
    moved["metadata"]["namespace"] = "staging".into();
    write(d, "moved.json", &moved);
    let (code, lines) = verify(d, &["moved.json"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines[1],
        "FAIL moved.json: staging/db item user: moved: sealed for namespace prod"
    );

    // An item copied, with its record entry, from another SealedSecret into a correct one.
    let mut web = seal_to(d, "web.json", "tls.crt", "prod", "web");
    let copy = |web: &mut serde_json::Value, from: &str, to: &str| {
        web["spec"]["encryptedData"][to] = good["spec"]["encryptedData"][from].clone();
        let mut recs = records(web);
        recs.insert(to.into(), records(&good)[from].clone());
        web["metadata"]["annotations"][SEAL_RECORDS] = serde_json::to_string(&recs).unwrap().into();
    };
    copy(&mut web, "password", "password");
    copy(&mut web, "user", "login");
    write(d, "web.json", &web);
    let (code, lines) = verify(d, &["web.json"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        [
            "FAIL web.json: prod/web item login: the item's ciphertext does not match its record: copied from prod/db",
            "FAIL web.json: prod/web item password: copied from prod/db",
            "ok web.json: prod/web item user: bitnami for SHA256:2S153aXBdE8nMzbcUJ49TobRZJKsfU3Iu6AmpeWx1Ac, strict for prod/web",
        ]
    );
    // With the original in the set, it says where it is.
    let (_, lines) = verify(d, &["good.json", "web.json"]);
    assert!(
        lines.contains(
            &"FAIL web.json: prod/web item password: copied from prod/db (in good.json)"
                .to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"FAIL web.json: prod/web item login: the item's ciphertext does not match its record: copied from prod/db item user (in good.json)".to_string()
        ),
        "{lines:?}"
    );

    // An edited value no longer matches its record.
    let mut edited = good.clone();
    edited["spec"]["encryptedData"]["user"] = edited["spec"]["encryptedData"]["password"].clone();
    write(d, "edited.json", &edited);
    let (_, lines) = verify(d, &["edited.json"]);
    assert_eq!(
        lines[1],
        "FAIL edited.json: prod/db item user: the item's ciphertext does not match its record: copied from item password"
    );

    // A directory: every file, sorted; exit 1 because some fail.
    let (code, lines) = verify(d, &["."]);
    assert_eq!(code, 1);
    assert!(lines.len() >= 10, "{lines:?}");
}

#[test]
fn kubeseal_files_are_unverifiable_not_failures() {
    let dir = repo();
    let d = dir.path();
    // The kubeseal front writes no kseal annotation.
    let link = d.join("kubeseal");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kseal"), &link).unwrap();
    let input = secret("default", "legacy", &[("token", "t")]);
    let out = std::process::Command::new(&link)
        .args(["--cert", p(&fix("tls.crt"))])
        .env("KUBECONFIG", "/nonexistent")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("kseal.dev"));
    fs::write(d.join("legacy.json"), &out.stdout).unwrap();
    fs::copy(fix("ss-go.yaml"), d.join("go.yaml")).unwrap();
    let (code, lines) = verify(d, &["legacy.json", "go.yaml"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines,
        [
            "UNVERIFIABLE go.yaml: default/mysecret item foo: no seal record: sealed by kubeseal?",
            "UNVERIFIABLE legacy.json: default/legacy item token: no seal record: sealed by kubeseal?",
        ]
    );
}

#[test]
fn json_report_and_exit_codes() {
    let dir = repo();
    let d = dir.path();
    seal_to(d, "a.json", "tls.crt", "ns", "a");
    seal_to(d, "b.json", "go_rsa2048.crt", "ns", "b");
    let out = kseal_in(
        Some(d),
        &["verify", "-o", "json", "--cert", p(&fix("tls.crt")), "."],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(report["ok"], false);
    assert_eq!(report["summary"]["items"], 4);
    assert_eq!(report["summary"]["failed"], 2);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items[0]["file"], "./a.json");
    assert_eq!(items[0]["status"], "ok");
    assert_eq!(items[0]["format"], "bitnami");
    assert_eq!(items[2]["status"], "fail");
    assert_eq!(items[2]["name"], "b");
    assert!(items[2]["reason"]
        .as_str()
        .unwrap()
        .starts_with("sealed for another cluster's key"));

    // Both certificates: all pass.
    let out = kseal_in(
        Some(d),
        &[
            "verify",
            "--cert",
            p(&fix("tls.crt")),
            "--cert",
            p(&fix("go_rsa2048.crt")),
            ".",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(0));

    // Bad input: one line, exit 2, nothing on stdout.
    fs::write(
        d.join("broken.yaml"),
        "kind: SealedSecret\napiVersion: bitnami.com/v1alpha1\nspec: [\n",
    )
    .unwrap();
    let out = kseal_in(
        Some(d),
        &["verify", "--cert", p(&fix("tls.crt")), "."],
        &[],
        None,
    );
    let (code, err) = failed(&out);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn merge_into_keeps_the_file_verifiable() {
    let dir = repo();
    let d = dir.path();
    seal_to(d, "db.json", "tls.crt", "prod", "db");
    let update = secret("prod", "db", &[("password", "new"), ("extra", "e")]);
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("tls.crt")),
            "--merge-into",
            p(&d.join("db.json")),
        ],
        Some(update.as_bytes()),
    ));
    let (code, lines) = verify(d, &["db.json"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 3);
    let v = json(&fs::read_to_string(d.join("db.json")).unwrap());
    assert_eq!(records(&v).len(), 3);
}
