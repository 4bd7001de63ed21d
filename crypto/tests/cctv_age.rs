//! The C2SP CCTV age test vectors, every file through kseal's age decryption
//! ([`kseal_crypto::decrypt_age_file`]: the same header bounds, parser and identities as
//! [`kseal_crypto::open_age`], without the kseal-age/v1 label check, which these files lack).
//!
//! The vectors live in the shared reference folder (`../shared/compat/vectors/cctv-age` from the
//! workspace root, see its README); `KSEAL_CCTV_AGE_DIR` points elsewhere. A vector passes when
//! decryption succeeds exactly when it says `expect: success`, with the payload's SHA-256 equal
//! to its `payload:` line. Vectors for features kseal does not read (ASCII armor, passphrase
//! files) are counted as skipped, by feature; `compressed: zlib` files are inflated first; every other vector, classic and post-quantum
//! (`hybrid*`), must pass. docs/testing.md describes the test.

use std::path::PathBuf;

use kseal_crypto::{decrypt_age_file, sha256_hex, AgeIdentity};

struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    passphrase: bool,
    armored: bool,
    compressed: bool,
    file: Vec<u8>,
}

fn vector_dir() -> PathBuf {
    match std::env::var_os("KSEAL_CCTV_AGE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/vectors/cctv-age")
        }
    }
}

fn parse(name: String, raw: &[u8]) -> Vector {
    let split = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or_else(|| panic!("{name}: no blank line after the vector's header"));
    let header = std::str::from_utf8(&raw[..split])
        .unwrap_or_else(|_| panic!("{name}: the vector's header is not UTF-8"));
    let mut v = Vector {
        name,
        expect: String::new(),
        payload: None,
        identities: Vec::new(),
        passphrase: false,
        armored: false,
        compressed: false,
        file: raw[split + 2..].to_vec(),
    };
    for line in header.lines() {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{}: header line without ': '", v.name));
        match key {
            "expect" => v.expect = value.to_string(),
            "payload" => v.payload = Some(value.to_string()),
            "identity" => v.identities.push(value.to_string()),
            "passphrase" => v.passphrase = true,
            "armored" => v.armored = value == "yes",
            "compressed" => {
                assert_eq!(value, "zlib", "{}: unknown compression", v.name);
                v.compressed = true;
            }
            "file key" | "comment" => {}
            other => panic!("{}: unknown header field {other:?}", v.name),
        }
    }
    assert!(!v.expect.is_empty(), "{}: no expect line", v.name);
    if v.compressed {
        v.file = miniz_oxide::inflate::decompress_to_vec_zlib(&v.file)
            .unwrap_or_else(|e| panic!("{}: zlib body does not inflate: {e:?}", v.name));
    }
    v
}

/// `Ok(())` when kseal's result matches the vector, else why not.
fn check(v: &Vector) -> Result<(), String> {
    let identities: Vec<AgeIdentity> = v
        .identities
        .iter()
        .map(|s| s.parse::<AgeIdentity>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("identity does not parse: {e}"))?;
    let refs: Vec<&AgeIdentity> = identities.iter().collect();
    let result = decrypt_age_file(&refs, &v.file);
    match (v.expect.as_str(), result) {
        ("success", Ok(plain)) => {
            let want = v
                .payload
                .as_deref()
                .ok_or("success vector without payload")?;
            let got = sha256_hex(plain.expose());
            if got == want {
                Ok(())
            } else {
                Err(format!("payload SHA-256 {got}, expected {want}"))
            }
        }
        ("success", Err(e)) => Err(format!("expected success, got: {e}")),
        (expect, Ok(_)) => Err(format!("expected {expect}, but it decrypted")),
        (_, Err(_)) => Ok(()),
    }
}

#[test]
fn every_cctv_age_vector() {
    let dir = vector_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the CCTV age vectors are missing: cannot read {} ({e}); set KSEAL_CCTV_AGE_DIR to the \
             cctv-age folder (docs/testing.md)",
            dir.display()
        )
    });
    let mut vectors: Vec<Vector> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            parse(name, &std::fs::read(&p).unwrap())
        })
        .collect();
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        vectors.len() >= 100,
        "{}: only {} vectors",
        dir.display(),
        vectors.len()
    );

    let (mut checked, mut passed, mut hybrid) = (0, 0, 0);
    let (mut skipped_armor, mut skipped_scrypt) = (0, 0);
    let mut failures = Vec::new();
    for v in &vectors {
        if v.armored {
            skipped_armor += 1;
            continue;
        }
        if v.passphrase {
            skipped_scrypt += 1;
            continue;
        }
        checked += 1;
        if v.name.starts_with("hybrid") {
            hybrid += 1;
        }
        match check(v) {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{}: {why}", v.name)),
        }
    }
    println!(
        "cctv-age ({}): {} vectors, checked {checked} ({hybrid} hybrid mlkem768x25519), passed \
         {passed}, skipped {} (armor: {skipped_armor}, scrypt passphrase: {skipped_scrypt}; kseal \
         reads neither)",
        dir.display(),
        vectors.len(),
        skipped_armor + skipped_scrypt
    );
    assert!(
        failures.is_empty(),
        "failed vectors:\n{}",
        failures.join("\n")
    );
    assert!(hybrid > 0, "no hybrid (post-quantum) vector was checked");
}
