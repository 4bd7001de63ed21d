//! `.kseal.yaml`: discovery, rule selection by path, relative files, default scope, flags that
//! override it, `--config`/`--no-config`, errors with file:line, and `kseal verify` without flags.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// A repository with two rules: `clusters/prod/` for two age recipients (one inline, one in a
/// relative recipients file), `clusters/dev/` for `tls.crt` with namespace-wide scope.
/// Returns (prod identity files, dev certificate path).
fn two_rule_repo(d: &Path) -> (Vec<std::path::PathBuf>, String) {
    fs::create_dir_all(d.join("clusters/prod")).unwrap();
    fs::create_dir_all(d.join("clusters/dev/apps")).unwrap();
    fs::create_dir_all(d.join("keys")).unwrap();
    let (k1, r1) = identity(d, "prod-a");
    let (k2, r2) = identity(d, "prod-recovery");
    fs::write(d.join("keys/prod.txt"), format!("# recovery\n{r2}\n")).unwrap();
    fs::copy(fix("tls.crt"), d.join("keys/dev.pem")).unwrap();
    fs::write(
        d.join(".kseal.yaml"),
        format!(
            "# which keys seal which paths\nrules:\n  - path: \"^clusters/prod/\"\n    recipients: [{r1}]\n    recipients_file: keys/prod.txt\n  - path: \"^clusters/dev/\"\n    cert: keys/dev.pem\n    scope: namespace-wide\n"
        ),
    )
    .unwrap();
    (vec![k1, k2], "keys/dev.pem".to_string())
}

fn blob_of(v: &serde_json::Value, item: &str) -> Vec<u8> {
    unb64(v["spec"]["encryptedData"][item].as_str().unwrap())
}

#[test]
fn the_first_matching_rule_chooses_keys_and_scope() {
    let dir = repo();
    let d = dir.path();
    let (prod_keys, _) = two_rule_repo(d);
    let input = d.join("secret.yaml");
    fs::write(&input, secret("prod", "db", &[("pw", "x")])).unwrap();

    // The written file's path chooses the rule: age for both prod recipients.
    let out = kseal_in(
        Some(d),
        &[
            "seal",
            "-f",
            "secret.yaml",
            "-w",
            "clusters/prod/db.json",
            "--verbose",
        ],
        &[],
        None,
    );
    ok(&out);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("kseal: keys from rule 1 of ")
            && stderr.contains("age format, 2 recipients"),
        "{stderr}"
    );
    let prod = json(&fs::read_to_string(d.join("clusters/prod/db.json")).unwrap());
    assert!(blob_of(&prod, "pw").starts_with(b"age-encryption.org/v1\n"));
    for key in &prod_keys {
        ok(&kseal(
            &[
                "unseal",
                "-i",
                p(key),
                "-f",
                p(&d.join("clusters/prod/db.json")),
            ],
            None,
        ));
    }

    // Under clusters/dev/ (any depth): the certificate, relative to the config, and its scope.
    let out = kseal_in(
        Some(d),
        &[
            "seal",
            "-f",
            "secret.yaml",
            "-w",
            "clusters/dev/apps/db.json",
        ],
        &[],
        None,
    );
    ok(&out);
    assert!(out.stderr.is_empty(), "quiet without --verbose");
    let dev = json(&fs::read_to_string(d.join("clusters/dev/apps/db.json")).unwrap());
    assert_eq!(blob_of(&dev, "pw")[..2], [0x02, 0x00], "Bitnami, RSA-4096");
    assert_eq!(
        dev["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"],
        "true"
    );
    ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("sealed-secrets-key.yaml")),
            "-f",
            p(&d.join("clusters/dev/apps/db.json")),
        ],
        None,
    ));

    // --scope wins over the rule's scope.
    let out = ok(&kseal_in(
        Some(d),
        &[
            "seal",
            "-f",
            "secret.yaml",
            "-w",
            "clusters/dev/strict.json",
            "--scope",
            "strict",
        ],
        &[],
        None,
    ));
    assert!(out.is_empty());
    let strict = json(&fs::read_to_string(d.join("clusters/dev/strict.json")).unwrap());
    assert!(strict["metadata"]["annotations"]
        .get("sealedsecrets.bitnami.com/namespace-wide")
        .is_none());

    // Stdin to stdout: the current directory chooses (clusters/prod/ matches "^clusters/prod/").
    let out = ok(&kseal_in(
        Some(&d.join("clusters/prod")),
        &["seal"],
        &[],
        Some(secret("prod", "api", &[("t", "v")]).as_bytes()),
    ));
    assert!(blob_of(&json(&out), "t").starts_with(b"age-encryption.org/v1\n"));

    // Explicit flags override the configuration; so does --no-config (then: the cluster).
    let out = ok(&kseal_in(
        Some(d),
        &[
            "seal",
            "-f",
            "secret.yaml",
            "-w",
            "clusters/prod/x.json",
            "--cert",
            p(&fix("go_rsa2048.crt")),
        ],
        &[],
        None,
    ));
    assert!(out.is_empty());
    let x = json(&fs::read_to_string(d.join("clusters/prod/x.json")).unwrap());
    assert_eq!(blob_of(&x, "pw")[..2], [0x01, 0x00]);
    let (code, err) = failed(&kseal_in(
        Some(d),
        &[
            "seal",
            "-f",
            "secret.yaml",
            "-w",
            "clusters/prod/y.json",
            "--no-config",
        ],
        &[],
        None,
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot get the cluster's certificate"),
        "{err}"
    );

    // KSEAL_CERT is only a default: the configuration beats it.
    ok(&kseal_in(
        Some(d),
        &["seal", "-f", "secret.yaml", "-w", "clusters/prod/z.json"],
        &[("KSEAL_CERT", p(&fix("go_rsa2048.crt")))],
        None,
    ));
    let z = json(&fs::read_to_string(d.join("clusters/prod/z.json")).unwrap());
    assert!(blob_of(&z, "pw").starts_with(b"age-encryption.org/v1\n"));

    // A path no rule matches is an error, not a silent fallback.
    let (code, err) = failed(&kseal_in(
        Some(d),
        &["seal", "-f", "secret.yaml", "-w", "elsewhere.json"],
        &[],
        None,
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("no rule of ") && err.contains("matches "),
        "{err}"
    );

    // kseal verify needs no flags: each file is checked against its own rule.
    let out = kseal_in(Some(d), &["verify", "clusters"], &[], None);
    let report = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    // x.json was sealed (by flag) with a certificate the prod rule does not name.
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL clusters/prod/x.json: prod/db item pw: sealed for another cluster's key: SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4 (expected one of SHA256:")),
        "{report}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ok ")).count(),
        4,
        "{report}"
    );
}

#[test]
fn config_flag_discovery_limits_and_errors() {
    let dir = repo();
    let d = dir.path();
    two_rule_repo(d);
    let input = secret("prod", "db", &[("pw", "x")]);

    // --config names a file elsewhere; its rules match paths relative to it.
    let other = tempfile::tempdir().unwrap();
    let cfg = other.path().join("kseal.yaml");
    fs::write(
        &cfg,
        format!("rules:\n  - cert: {}\n", p(&fix("go_rsa2048.crt"))),
    )
    .unwrap();
    let out = ok(&kseal_in(
        Some(d),
        &["seal", "--config", p(&cfg), "-w", "clusters/prod/c.json"],
        &[],
        Some(input.as_bytes()),
    ));
    assert!(out.is_empty());
    let c = json(&fs::read_to_string(d.join("clusters/prod/c.json")).unwrap());
    assert_eq!(
        c["metadata"]["annotations"][SEALED_WITH],
        "SHA256:36conBMtagqqo3lrH7A1f9KbsA8D7mqxgEhitQ81Uv4"
    );

    // A bad configuration names the file and the line.
    let bad = d.join("sub");
    fs::create_dir(&bad).unwrap();
    fs::write(
        bad.join(".kseal.yaml"),
        "rules:\n  - path: ok\n    cert: c.pem\n  - path: x\n    cert: c.pem\n    recipients_file: r.txt\n",
    )
    .unwrap();
    let (code, err) = failed(&kseal_in(
        Some(&bad),
        &["seal", "-w", "s.json"],
        &[],
        Some(input.as_bytes()),
    ));
    assert_eq!(code, 2);
    assert!(err.contains(".kseal.yaml:4:"), "{err}");
    assert!(err.contains("not both"), "{err}");
    fs::write(
        bad.join(".kseal.yaml"),
        "rules:\n  - cert: c.pem\n    sope: strict\n",
    )
    .unwrap();
    let (_, err) = failed(&kseal_in(
        Some(&bad),
        &["seal", "-w", "s.json"],
        &[],
        Some(input.as_bytes()),
    ));
    assert!(
        err.contains(".kseal.yaml:3:") && err.contains("unknown field `sope`"),
        "{err}"
    );
    fs::write(
        bad.join(".kseal.yaml"),
        "rules:\n  - path: '[unclosed'\n    cert: c.pem\n",
    )
    .unwrap();
    let (_, err) = failed(&kseal_in(
        Some(&bad),
        &["seal", "-w", "s.json"],
        &[],
        Some(input.as_bytes()),
    ));
    assert!(err.contains("invalid path regex"), "{err}");

    // Discovery stops at the repository root (.git): a config above it is not used.
    let outer = tempfile::tempdir().unwrap();
    fs::write(
        outer.path().join(".kseal.yaml"),
        format!("rules:\n  - cert: {}\n", p(&fix("go_rsa2048.crt"))),
    )
    .unwrap();
    let inner = outer.path().join("repo");
    fs::create_dir_all(inner.join(".git")).unwrap();
    let (_, err) = failed(&kseal_in(
        Some(&inner),
        &["seal"],
        &[],
        Some(input.as_bytes()),
    ));
    assert!(
        err.contains("cannot get the cluster's certificate"),
        "{err}"
    );
    // Without the .git marker, the walk goes on up and finds it.
    fs::remove_dir(inner.join(".git")).unwrap();
    ok(&kseal_in(
        Some(&inner),
        &["seal"],
        &[],
        Some(input.as_bytes()),
    ));
}
