//! The age format from the command line: one SealedSecret for several clusters and an offline
//! recovery identity, `kseal unseal --identity`, the refusal of `--cert` with `--recipient`,
//! `--raw` and `--merge-into` in age, and the negative cases (wrong identity, tampered,
//! truncated, bad header, moved).

mod common;

use std::fs;

use common::*;

#[test]
fn one_file_for_two_clusters_and_a_recovery_identity_opens_with_each() {
    let dir = repo();
    let d = dir.path();
    let (a_key, a) = identity(d, "cluster-a");
    let (b_key, b) = identity(d, "cluster-b");
    let (r_key, r) = identity(d, "recovery");
    let rfile = d.join("recovery.txt");
    fs::write(&rfile, format!("# the offline recovery key\n\n{r}\n")).unwrap();
    let input = secret("prod", "db", &[("password", "s3cr3t"), ("user", "admin")]);
    let sealed = ok(&kseal_in(
        Some(d),
        &[
            "seal",
            "--recipient",
            &a,
            "-r",
            &b,
            "--recipients-file",
            p(&rfile),
        ],
        &[],
        Some(input.as_bytes()),
    ));
    let ss = json(&sealed);
    for item in ["password", "user"] {
        let blob = unb64(ss["spec"]["encryptedData"][item].as_str().unwrap());
        assert!(
            blob.starts_with(b"age-encryption.org/v1\n"),
            "one age blob per item"
        );
        let header = kseal_crypto::inspect_age(&blob).unwrap();
        assert_eq!(header.x25519_stanzas(), 3, "one stanza per recipient");
    }
    // The hint and every record name the three recipients.
    let fps: Vec<String> = [&a, &b, &r]
        .iter()
        .map(|t| {
            t.parse::<kseal_crypto::AgeRecipient>()
                .unwrap()
                .fingerprint()
                .to_string()
        })
        .collect();
    let mut sorted = fps.clone();
    sorted.sort();
    assert_eq!(ss["metadata"]["annotations"][SEALED_WITH], sorted.join(","));
    let recs = records(&ss);
    assert_eq!(recs.len(), 2);
    for rec in recs.values() {
        let fields: Vec<&str> = rec.as_str().unwrap().split(';').collect();
        assert_eq!(fields[0], "v1");
        assert_eq!(fields[1], sorted.join(","));
        assert_eq!(unb64(fields[2]), b"prod/db");
    }
    // Each cluster's identity, and the recovery identity alone, open it offline.
    for key in [&a_key, &b_key, &r_key] {
        let out = ok(&kseal(
            &["unseal", "--identity", p(key), "-o", "json"],
            Some(sealed.as_bytes()),
        ));
        let v = json(&out);
        assert_eq!(v["data"]["password"], b64(b"s3cr3t"));
        assert_eq!(v["data"]["user"], b64(b"admin"));
        assert!(!out.contains(SEAL_RECORDS) && !out.contains(SEALED_WITH));
    }
    // verify passes, offline, for any one of the keys.
    let file = d.join("db.json");
    fs::write(&file, &sealed).unwrap();
    let report = ok(&kseal(&["verify", "-r", &b, p(&file)], None));
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{report}"
    );
}

#[test]
fn cert_and_recipient_are_one_or_the_other() {
    let dir = repo();
    let (_, a) = identity(dir.path(), "a");
    let input = secret("default", "s", &[("k", "v")]);
    let out = kseal(
        &["seal", "--cert", p(&fix("tls.crt")), "--recipient", &a],
        Some(input.as_bytes()),
    );
    let (code, err) = failed(&out);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "kseal: error: a value is one blob: choose --cert (Bitnami format) or --recipient (age format)\n"
    );
    assert!(out.stdout.is_empty());
    // KSEAL_CERT is only a default: an explicit --recipient wins over it.
    let sealed = ok(&kseal_in(
        Some(dir.path()),
        &["seal", "--recipient", &a],
        &[("KSEAL_CERT", p(&fix("tls.crt")))],
        Some(input.as_bytes()),
    ));
    let blob = unb64(
        json(&sealed)["spec"]["encryptedData"]["k"]
            .as_str()
            .unwrap(),
    );
    assert!(blob.starts_with(b"age-encryption.org/v1\n"));
}

#[test]
fn a_raw_age_value_opens_where_it_was_sealed_for() {
    let dir = repo();
    let (key, a) = identity(dir.path(), "a");
    let raw = ok(&kseal(
        &["seal", "--raw", "-r", &a, "-n", "prod", "--name", "db"],
        Some(b"v4lue"),
    ));
    assert!(unb64(&raw).starts_with(b"age-encryption.org/v1\n"), "{raw}");
    let ss = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData:\n    pw: {raw}\n"
    );
    let out = ok(&kseal(&["unseal", "-i", p(&key)], Some(ss.as_bytes())));
    assert_eq!(json(&out)["data"]["pw"], b64(b"v4lue"));
    // Pasted under another name it is refused, naming the item.
    let moved = ss.replace("name: db", "name: web");
    let (code, err) = failed(&kseal(&["unseal", "-i", p(&key)], Some(moved.as_bytes())));
    assert_eq!(code, 1);
    assert!(
        err.contains("sealed for another name, namespace or scope, not for strict scope, label \"prod/web\" (pw)"),
        "{err}"
    );
}

#[test]
fn merge_into_mixes_formats_keeps_the_scope_and_updates_the_records() {
    let dir = repo();
    let d = dir.path();
    let (key, a) = identity(d, "a");
    let target = d.join("sealed.yaml");
    // An RSA file, namespace-wide.
    let first = secret("prod", "db", &[("old", "1"), ("keep", "2")]);
    ok(&kseal(
        &[
            "seal",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "--scope",
            "namespace-wide",
            "-w",
            p(&target),
        ],
        Some(first.as_bytes()),
    ));
    let before = fs::read_to_string(&target).unwrap();
    let update = secret("prod", "db", &[("old", "new"), ("added", "3")]);
    ok(&kseal(
        &["seal", "-r", &a, "--merge-into", p(&target)],
        Some(update.as_bytes()),
    ));
    let after = fs::read_to_string(&target).unwrap();
    let keep_line = |t: &str| {
        t.lines()
            .find(|l| l.contains("keep: "))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        keep_line(&before),
        keep_line(&after),
        "other items untouched"
    );
    let ss: serde_json::Value = serde_yaml_to_json(&after);
    let recs = records(&ss);
    assert_eq!(recs.len(), 3, "{after}");
    for item in ["old", "added"] {
        let fields: Vec<&str> = recs[item].as_str().unwrap().split(';').collect();
        assert_eq!(unb64(fields[2]), b"prod", "the file's namespace-wide scope");
        assert!(!fields[1].contains(','), "one age recipient");
    }
    // Both keys are needed now; together they open everything.
    let out = ok(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "-i",
            p(&key),
            "-f",
            p(&target),
        ],
        None,
    ));
    let v = json(&out);
    assert_eq!(v["data"]["old"], b64(b"new"));
    assert_eq!(v["data"]["added"], b64(b"3"));
    assert_eq!(v["data"]["keep"], b64(b"2"));
    let (code, err) = failed(&kseal(
        &[
            "unseal",
            "--key",
            p(&fix("go_rsa2048.key")),
            "-f",
            p(&target),
        ],
        None,
    ));
    assert_eq!(code, 1);
    assert!(err.contains("its age items need --identity"), "{err}");
    // And verify, with both public keys, passes.
    let report = ok(&kseal(
        &[
            "verify",
            "--cert",
            p(&fix("go_rsa2048.crt")),
            "-r",
            &a,
            p(&target),
        ],
        None,
    ));
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        3,
        "{report}"
    );
}

fn serde_yaml_to_json(text: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_yaml::from_str(text.trim_start_matches("---\n")).unwrap();
    v
}

fn sealed_for(recipient: &str) -> (String, String) {
    let input = secret("default", "s", &[("pw", "secret-value")]);
    let sealed = ok(&kseal(&["seal", "-r", recipient], Some(input.as_bytes())));
    let value = json(&sealed)["spec"]["encryptedData"]["pw"]
        .as_str()
        .unwrap()
        .to_string();
    (sealed, value)
}

#[test]
fn broken_age_items_are_refused_by_name_without_their_values() {
    let dir = repo();
    let d = dir.path();
    let (key, a) = identity(d, "a");
    let (other_key, _) = identity(d, "other");
    let (sealed, value) = sealed_for(&a);
    let blob = unb64(&value);
    let unseal = |text: &str, key: &std::path::Path| {
        let (code, err) = failed(&kseal(&["unseal", "-i", p(key)], Some(text.as_bytes())));
        assert!(!err.contains("secret-value"));
        (code, err)
    };
    let with_blob = |b: &[u8]| sealed.replace(&value, &b64(b));

    // The wrong identity.
    let (code, err) = unseal(&sealed, &other_key);
    assert_eq!(code, 1);
    assert!(err.ends_with("no key could decrypt secret (pw)\n"), "{err}");
    // A flipped payload bit, a truncated payload, an extended one.
    let mut tampered = blob.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x40;
    let mut extended = blob.clone();
    extended.extend_from_slice(b"more");
    for b in [tampered, blob[..blob.len() - 7].to_vec(), extended] {
        let (code, err) = unseal(&with_blob(&b), &key);
        assert_eq!(code, 1);
        assert!(err.ends_with("no key could decrypt secret (pw)\n"), "{err}");
    }
    // A header that does not parse, and one cut short.
    let text = String::from_utf8_lossy(&blob).into_owned();
    let header_end = text.find("\n---").unwrap();
    let (code, err) = unseal(&with_blob(&blob[..header_end / 2]), &key);
    assert_eq!(code, 1);
    assert!(err.contains("malformed age blob"), "{err}");
    let mut bad = blob.clone();
    bad[25] = b'!'; // inside the first stanza's type
    let (code, err) = unseal(&with_blob(&bad), &key);
    assert_eq!(code, 1);
    assert!(err.contains("(pw)"), "{err}");
}

#[test]
fn identity_files_take_comments_and_several_keys_and_errors_name_the_line() {
    let dir = repo();
    let d = dir.path();
    let (k1, _) = identity(d, "one");
    let (k2, b) = identity(d, "two");
    let both = d.join("both.txt");
    fs::write(
        &both,
        format!(
            "# first\n{}\n\n# second\n{}",
            fs::read_to_string(&k1).unwrap(),
            fs::read_to_string(&k2).unwrap()
        ),
    )
    .unwrap();
    let (sealed, _) = sealed_for(&b);
    ok(&kseal(&["unseal", "-i", p(&both)], Some(sealed.as_bytes())));

    let bad = d.join("bad.txt");
    fs::write(&bad, "# ok\nAGE-SECRET-KEY-1NOTAKEY\n").unwrap();
    let (code, err) = failed(&kseal(&["unseal", "-i", p(&bad)], Some(sealed.as_bytes())));
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("NOTAKEY"), "never quotes a key line: {err}");
}

/// Post-quantum from end to end offline: `kseal age-keygen --pq` (and `-y`), one SealedSecret
/// for two PQ recipients and a PQ recovery file through a `.kseal.yaml` rule, each identity opens
/// it, verify reads the PQ stanzas, a moved item is refused by name, and X25519 recipients are
/// not mixed in.
#[test]
fn post_quantum_recipients_from_age_keygen_to_unseal() {
    let dir = repo();
    let d = dir.path();
    let mut keys = Vec::new();
    for name in ["a", "b", "recovery"] {
        let path = d.join(format!("{name}.key"));
        let out = kseal(&["age-keygen", "--pq", "-o", p(&path)], None);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        assert!(err.starts_with("Public key: age1pq1"), "{err}");
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# created: "), "{text}");
        assert!(lines[1].starts_with("# public key: age1pq1"));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"));
        let public = ok(&kseal(&["age-keygen", "-y", p(&path)], None));
        assert_eq!(public.trim(), &lines[1]["# public key: ".len()..]);
        keys.push((path, public.trim().to_string()));
    }
    // Never overwritten.
    let (code, err) = failed(&kseal(&["age-keygen", "-o", p(&keys[0].0)], None));
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let rfile = d.join("recovery.txt");
    fs::write(&rfile, format!("{}\n", keys[2].1)).unwrap();
    fs::write(
        d.join(".kseal.yaml"),
        format!(
            "rules:\n  - path: '.*'\n    recipients: [{}, {}]\n    recipients_file: recovery.txt\n",
            keys[0].1, keys[1].1
        ),
    )
    .unwrap();
    let input = secret("prod", "db", &[("password", "s3cr3t")]);
    let target = d.join("db.yaml");
    ok(&kseal_in(
        Some(d),
        &["seal", "-w", p(&target)],
        &[],
        Some(input.as_bytes()),
    ));
    let sealed = fs::read_to_string(&target).unwrap();
    let ss: serde_yaml::Value = serde_yaml::from_str(&sealed).unwrap();
    let blob = unb64(ss["spec"]["encryptedData"]["password"].as_str().unwrap());
    let header = kseal_crypto::inspect_age(&blob).unwrap();
    assert_eq!((header.pq_stanzas(), header.x25519_stanzas()), (3, 0));
    for (key, _) in &keys {
        let out = ok(&kseal(
            &["unseal", "-i", p(key), "-o", "json"],
            Some(sealed.as_bytes()),
        ));
        assert_eq!(json(&out)["data"]["password"], b64(b"s3cr3t"));
    }
    let report = ok(&kseal(&["verify", "-r", &keys[1].1, p(&target)], None));
    assert!(report.starts_with("ok "), "{report}");
    // Moved to another namespace: refused, naming the item.
    let moved = sealed.replace("namespace: prod", "namespace: staging");
    let (code, err) = failed(&kseal(
        &["unseal", "-i", p(&keys[2].0)],
        Some(moved.as_bytes()),
    ));
    assert_eq!(code, 1);
    assert!(
        err.contains("sealed for another name, namespace or scope"),
        "{err}"
    );
    assert!(err.contains("(password)"), "{err}");
    // age's rule: no X25519 recipient next to PQ ones.
    let (_, classic) = identity(d, "classic");
    let (code, err) = failed(&kseal_in(
        Some(d),
        &["seal", "-r", &keys[0].1, "-r", &classic],
        &[],
        Some(input.as_bytes()),
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot be mixed with X25519 recipients"),
        "{err}"
    );
}
