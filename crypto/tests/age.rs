//! The age format (kseal-age/v1): round trips, the scope-label binding, and every way a blob can
//! be wrong, as `negative.rs` does for the Bitnami format.

mod common;

use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use kseal_crypto::age::{MAX_HEADER_BYTES, PAYLOAD_MAGIC};
use kseal_crypto::{
    inspect_age, open_age, seal, seal_age, AgeIdentity, AgeKeyType, AgeRecipient, Error,
    Fingerprint, Format, Keyring, Scope,
};
use proptest::prelude::*;

const GO_IDENTITIES: &str = include_str!("data/age_go_identities.txt");
const GO_VECTOR: &[u8] = include_bytes!("data/age_go_vector.age");
const GO_RECIPIENT_1: &str = "age1z75r8a3kv20sxsk65k8rkyjmespc63cz9sredhxsqfsf248zcqss7ge8vz";
const GO_RECIPIENT_2: &str = "age1qwpa3qw8cuwj9am27c7kgxsglmdmf6pcndupuqqyxsrv53289g4qcxpp4x";
const GO_SECRET_1: &str =
    "AGE-SECRET-KEY-1S409ZK9YL3E09ADPWK0GJKZ3TM3DTR9NU2TC0Z26T6UM70YSGPEQTHHADK";

const LABEL: &[u8] = b"default/mysecret";
const MISMATCH: &str = "sealed for another name, namespace or scope";

/// Three identities, generated once per test binary.
fn ids() -> &'static [AgeIdentity; 3] {
    static IDS: OnceLock<[AgeIdentity; 3]> = OnceLock::new();
    IDS.get_or_init(|| {
        [
            AgeIdentity::generate(),
            AgeIdentity::generate(),
            AgeIdentity::generate(),
        ]
    })
}

fn id() -> &'static AgeIdentity {
    &ids()[0]
}

/// A second copy of an identity, through its identity file (`AgeIdentity` is not `Clone`).
fn copy(i: &AgeIdentity) -> AgeIdentity {
    AgeIdentity::parse_identity_file(&i.to_identity_file())
        .unwrap()
        .remove(0)
}

fn blob() -> Vec<u8> {
    seal_age(&[id().to_public()], LABEL, b"supersecret").unwrap()
}

fn open_err(blob: &[u8]) -> Error {
    open_age(&[id()], LABEL, blob).unwrap_err()
}

/// Where the header ends: just after the `--- <mac>\n` line.
fn header_len(blob: &[u8]) -> usize {
    let mac_line = blob.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    mac_line + blob[mac_line..].iter().position(|&b| b == b'\n').unwrap() + 1
}

#[test]
fn round_trip_for_each_scope_label() {
    for scope in Scope::ALL {
        let label = scope.label("prod", "db");
        for value in [
            &b""[..],
            b"s3cr3t",
            &[0u8, 255, 10, 13][..],
            &[7u8; 70_000][..],
        ] {
            let b = seal_age(&[id().to_public()], &label, value).unwrap();
            assert!(b.starts_with(b"age-encryption.org/v1\n"));
            assert_eq!(Format::detect(&b).unwrap(), Format::Age);
            let opened = open_age(&[id()], &label, &b).unwrap();
            assert_eq!(opened.expose(), value, "{scope}");
        }
    }
}

#[test]
fn several_recipients_each_identity_alone_opens() {
    let recipients: Vec<AgeRecipient> = ids().iter().map(|i| i.to_public()).collect();
    let b = seal_age(&recipients, LABEL, b"for everyone").unwrap();
    assert_eq!(b.windows(9).filter(|w| w == b"-> X25519").count(), 3);
    for i in ids() {
        assert_eq!(open_age(&[i], LABEL, &b).unwrap().expose(), b"for everyone");
        let mut ring = Keyring::new();
        ring.insert_age_identity(copy(i));
        let (p, fp) = ring.open_with_hint(&[], LABEL, &b).unwrap();
        assert_eq!(p.expose(), b"for everyone");
        assert_eq!(&fp, i.fingerprint());
    }
}

#[test]
fn duplicate_recipients_are_sealed_for_once() {
    let r = id().to_public();
    let b = seal_age(&[r.clone(), r.clone(), r], LABEL, b"x").unwrap();
    assert_eq!(b.windows(9).filter(|w| w == b"-> X25519").count(), 1);
}

#[test]
fn too_many_stanzas_are_refused_before_any_secret_operation() {
    use kseal_crypto::age::MAX_STANZAS;
    let many: Vec<AgeRecipient> = (0..MAX_STANZAS)
        .map(|_| AgeIdentity::generate().to_public())
        .collect();
    let e = seal_age(&many, LABEL, b"x").unwrap_err();
    assert!(e.to_string().contains("too many recipients"), "{e}");
    // The most kseal writes (plus age's grease stanza) still opens.
    let mut most = many[..MAX_STANZAS - 2].to_vec();
    most.push(id().to_public());
    let b = seal_age(&most, LABEL, b"x").unwrap();
    assert_eq!(open_age(&[id()], LABEL, &b).unwrap().expose(), b"x");
    // A header with more stanzas (made with plain age) is refused as malformed.
    let plain: Vec<age::x25519::Recipient> = many
        .iter()
        .chain([&id().to_public()])
        .map(|r| r.as_str().parse().unwrap())
        .collect();
    let payload = [
        PAYLOAD_MAGIC,
        &(LABEL.len() as u16).to_be_bytes(),
        LABEL,
        b"x",
    ]
    .concat();
    let enc =
        age::Encryptor::with_recipients(plain.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut crafted = Vec::new();
    let mut w = enc.wrap_output(&mut crafted).unwrap();
    w.write_all(&payload).unwrap();
    w.finish().unwrap();
    assert_eq!(
        open_err(&crafted).to_string(),
        "malformed age blob: too many recipient stanzas"
    );
}

#[test]
fn empty_recipient_list_is_refused() {
    let e = seal_age(&[], LABEL, b"x").unwrap_err();
    assert!(matches!(e, Error::NoAgeRecipients));
    assert_eq!(e.to_string(), "no age recipient given");
}

#[test]
fn wrong_identity() {
    let other = AgeIdentity::generate();
    let e = open_age(&[&other], LABEL, &blob()).unwrap_err();
    assert!(matches!(e, Error::NoKeyCouldDecrypt), "{e}");
    assert_eq!(e.to_string(), "no key could decrypt secret");
    // No identity at all: the same.
    assert!(matches!(
        open_age(&[], LABEL, &blob()),
        Err(Error::NoKeyCouldDecrypt)
    ));
    // The right identity after a wrong one still opens.
    assert_eq!(
        open_age(&[&other, id()], LABEL, &blob()).unwrap().expose(),
        b"supersecret"
    );
}

#[test]
fn moved_renamed_copied_or_rescoped_values_are_refused() {
    let sealed_for = Scope::Strict.label("prod", "db");
    let b = seal_age(&[id().to_public()], &sealed_for, b"v").unwrap();
    let elsewhere = [
        Scope::Strict.label("dev", "db"),     // moved to another namespace
        Scope::Strict.label("prod", "db2"),   // renamed
        Scope::Strict.label("prod", "other"), // copied into another SealedSecret
        Scope::NamespaceWide.label("prod", "db"), // scope widened
        Scope::ClusterWide.label("prod", "db"),
        b"prod/db\0".to_vec(),
        b"Prod/db".to_vec(),
    ];
    for label in elsewhere {
        let e = open_age(&[id()], &label, &b).unwrap_err();
        assert!(matches!(e, Error::LabelMismatch), "{label:?}: {e}");
        assert_eq!(e.to_string(), MISMATCH);
    }
    // And the other way round: a namespace-wide and a cluster-wide value do not open as strict.
    for scope in [Scope::NamespaceWide, Scope::ClusterWide] {
        let b = seal_age(&[id().to_public()], &scope.label("prod", "db"), b"v").unwrap();
        let e = open_age(&[id()], &Scope::Strict.label("prod", "db"), &b).unwrap_err();
        assert!(matches!(e, Error::LabelMismatch), "{scope}: {e}");
    }
}

#[test]
fn a_value_moved_between_sealed_secrets_is_refused_through_the_keyring() {
    let mut ring = Keyring::new();
    ring.insert_age_identity(copy(id()));
    let a = seal_age(&[id().to_public()], b"ns/a", b"value of a").unwrap();
    let b = seal_age(&[id().to_public()], b"ns/b", b"value of b").unwrap();
    assert_eq!(ring.open(b"ns/a", &a).unwrap().expose(), b"value of a");
    assert_eq!(ring.open(b"ns/b", &b).unwrap().expose(), b"value of b");
    // Swapping the two items' blobs: each is refused where it now sits.
    assert_eq!(ring.open(b"ns/a", &b).unwrap_err().to_string(), MISMATCH);
    assert_eq!(ring.open(b"ns/b", &a).unwrap_err().to_string(), MISMATCH);
}

#[test]
fn tampering_any_byte_is_refused() {
    let b = blob();
    let header = header_len(&b);
    for i in 0..b.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = b.clone();
            t[i] ^= bit;
            let r = open_age(&[id()], LABEL, &t);
            assert!(r.is_err(), "byte {i} ^ {bit:#x} still opened");
            if i >= header {
                // Nonce or payload: only the secret operation notices.
                assert!(
                    matches!(r, Err(Error::NoKeyCouldDecrypt)),
                    "byte {i}: {r:?}"
                );
            }
        }
    }
}

#[test]
fn tampered_header_stanza_and_mac() {
    let b = blob();
    // The wrapped file key: the line after the stanza line.
    let stanza_body = b.windows(9).position(|w| w == b"-> X25519").unwrap();
    let body = stanza_body + b[stanza_body..].iter().position(|&c| c == b'\n').unwrap() + 1;
    let mut t = b.clone();
    t[body + 3] = if t[body + 3] == b'A' { b'B' } else { b'A' };
    assert!(matches!(open_err(&t), Error::NoKeyCouldDecrypt));
    // The header MAC (last base64 character before the newline that ends the header).
    let mut t = b.clone();
    let mac_end = header_len(&b) - 2;
    t[mac_end - 5] = if t[mac_end - 5] == b'A' { b'B' } else { b'A' };
    assert!(matches!(open_err(&t), Error::NoKeyCouldDecrypt));
}

#[test]
fn truncated_or_extended() {
    let b = blob();
    let header = header_len(&b);
    for n in 0..b.len() {
        let r = open_age(&[id()], LABEL, &b[..n]);
        assert!(r.is_err(), "prefix of {n} bytes opened");
    }
    // Inside the header: structure, no secret operation.
    assert_eq!(
        open_err(&b[..header - 3]).to_string(),
        "malformed age blob: truncated header"
    );
    // Inside the payload: the STREAM tag or the last-chunk flag catches it.
    assert!(matches!(
        open_err(&b[..b.len() - 1]),
        Error::NoKeyCouldDecrypt
    ));
    assert!(matches!(
        open_err(&b[..header + 16]),
        Error::NoKeyCouldDecrypt
    ));
    let mut longer = b.clone();
    longer.push(0);
    assert!(open_age(&[id()], LABEL, &longer).is_err());
    let mut twice = b.clone();
    twice.extend_from_slice(&b[header..]);
    assert!(open_age(&[id()], LABEL, &twice).is_err());
}

#[test]
fn bad_header() {
    let b = blob();
    let mut v2 = b.clone();
    v2[20] = b'2'; // age-encryption.org/v2
    assert_eq!(
        open_err(&v2).to_string(),
        "malformed age blob: unsupported age version"
    );
    let garbage = b"age-encryption.org/v1\nthis is not a stanza\n--- AAAA\n".to_vec();
    assert_eq!(
        open_err(&garbage).to_string(),
        "malformed age blob: invalid header"
    );
    // The prefix alone is still "age", and malformed.
    assert!(matches!(
        open_err(b"age-encryption.org/"),
        Error::MalformedAge(_)
    ));
    // A Bitnami blob handed to open_age directly.
    assert!(matches!(
        open_err(&[1, 0, 0, 0]),
        Error::MalformedAge("not an age file")
    ));
}

#[test]
fn bad_payload_magic() {
    // A real age file for our identity, but not a kseal-age payload: made by plain age.
    let r: age::x25519::Recipient = id().to_public().as_str().parse().unwrap();
    for payload in [
        &b"supersecret"[..],
        b"",
        b"kseal-age/v1\n\x00",
        b"kseal-age/v1\n\x00\x05ab",
    ] {
        let plain = age::encrypt(&r, payload).unwrap();
        assert_eq!(
            open_err(&plain).to_string(),
            "malformed age blob: payload is not kseal-age/v1",
            "{payload:?}"
        );
    }
    // The magic of a future version.
    let mut p = b"kseal-age/v2\n".to_vec();
    p.extend_from_slice(&(LABEL.len() as u16).to_be_bytes());
    p.extend_from_slice(LABEL);
    let plain = age::encrypt(&r, &p).unwrap();
    assert!(matches!(open_err(&plain), Error::MalformedAge(_)));
}

#[test]
fn armored_input_is_refused() {
    let r: age::x25519::Recipient = id().to_public().as_str().parse().unwrap();
    let payload = [
        PAYLOAD_MAGIC,
        &(LABEL.len() as u16).to_be_bytes(),
        LABEL,
        b"v",
    ]
    .concat();
    let mut armored = Vec::new();
    {
        // Armor by hand (the crate's armor feature is off): the standard PEM-like wrapping.
        use base64::Engine as _;
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(age::encrypt(&r, &payload).unwrap());
        writeln!(armored, "-----BEGIN AGE ENCRYPTED FILE-----").unwrap();
        for line in b64.as_bytes().chunks(64) {
            armored.extend_from_slice(line);
            armored.push(b'\n');
        }
        writeln!(armored, "-----END AGE ENCRYPTED FILE-----").unwrap();
    }
    let e = open_err(&armored);
    assert!(matches!(e, Error::ArmoredAge), "{e}");
    assert!(e.to_string().contains("armored age input is not accepted"));
    assert!(matches!(Format::detect(&armored), Err(Error::ArmoredAge)));
    let mut ring = Keyring::new();
    ring.insert_age_identity(AgeIdentity::generate());
    assert!(matches!(ring.open(LABEL, &armored), Err(Error::ArmoredAge)));
}

#[test]
fn format_detect_tells_the_two_apart() {
    let rsa = seal(common::fresh_key().public_key(), LABEL, b"x").unwrap();
    assert_eq!(Format::detect(&rsa).unwrap(), Format::BitnamiHybrid);
    assert_eq!(Format::detect(&blob()).unwrap(), Format::Age);
    assert_eq!(Format::detect(GO_VECTOR).unwrap(), Format::Age);
    assert_eq!(Format::Age.to_string(), "age");
    assert_eq!(Format::BitnamiHybrid.to_string(), "bitnami");
    assert!(matches!(
        Format::detect(b"AGE-ENCRYPTION.ORG/v1"),
        Err(Error::UnknownFormat(_))
    ));
}

#[test]
fn keyring_with_rsa_key_and_age_identity_opens_both_formats() {
    let rsa_key = common::fresh_key();
    let mut ring = Keyring::new();
    ring.insert_arc(Arc::new(common::go_key()));
    let rsa_fp = {
        let k = kseal_crypto::PrivateKey::from_pem(common::GO_KEY).unwrap();
        k.fingerprint().clone()
    };
    let [a, b, _] = ids();
    let a2 = copy(a);
    let b2 = copy(b);
    assert!(ring.insert_age_identity(a2));
    assert!(ring.insert_age_identity(b2));
    // The same identity again is a duplicate.
    assert!(!ring.insert_age_identity(copy(a)));
    assert_eq!((ring.len(), ring.age_len()), (1, 2));
    assert!(ring.contains(a.fingerprint()) && ring.contains(&rsa_fp));
    assert!(ring.get(a.fingerprint()).is_none());
    assert!(ring.get_age_identity(&rsa_fp).is_none());

    let go = common::go_key();
    let rsa_blob = seal(go.public_key(), LABEL, b"rsa value").unwrap();
    let age_blob = seal_age(&[b.to_public()], LABEL, b"age value").unwrap();
    let (p, fp) = ring.open_with_hint(&[], LABEL, &rsa_blob).unwrap();
    assert_eq!((p.expose(), &fp), (&b"rsa value"[..], &rsa_fp));
    let (p, fp) = ring.open_with_hint(&[], LABEL, &age_blob).unwrap();
    assert_eq!((p.expose(), &fp), (&b"age value"[..], b.fingerprint()));
    // Hints order the identities; a wrong or foreign hint costs nothing but time.
    for hint in [
        vec![a.fingerprint().clone()],
        vec![b.fingerprint().clone()],
        vec![rsa_fp.clone(), ids()[2].fingerprint().clone()],
    ] {
        let (p, fp) = ring.open_with_hint(&hint, LABEL, &age_blob).unwrap();
        assert_eq!((p.expose(), &fp), (&b"age value"[..], b.fingerprint()));
    }
    let order: Vec<Fingerprint> = ring
        .ordered_age(&[b.fingerprint().clone()])
        .map(|i| i.fingerprint().clone())
        .collect();
    assert_eq!(order, [b.fingerprint().clone(), a.fingerprint().clone()]);
    // Label mismatch through the keyring, for both formats.
    assert_eq!(
        ring.open(b"default/other", &age_blob)
            .unwrap_err()
            .to_string(),
        MISMATCH
    );
    assert!(matches!(
        ring.open(b"default/other", &rsa_blob),
        Err(Error::NoKeyCouldDecrypt)
    ));
    // A blob for a key the ring lacks, in each format.
    let other_rsa = seal(rsa_key.public_key(), LABEL, b"x").unwrap();
    assert!(matches!(
        ring.open(LABEL, &other_rsa),
        Err(Error::NoKeyCouldDecrypt)
    ));
    let other_age = seal_age(&[ids()[2].to_public()], LABEL, b"x").unwrap();
    assert!(matches!(
        ring.open(LABEL, &other_age),
        Err(Error::NoKeyCouldDecrypt)
    ));
    // An RSA-only keyring and an age blob, an age-only keyring and an RSA blob.
    let rsa_only: Keyring = [common::go_key()].into_iter().collect();
    assert!(matches!(
        rsa_only.open(LABEL, &age_blob),
        Err(Error::NoKeyCouldDecrypt)
    ));
    let mut age_only = Keyring::new();
    age_only.insert_age_identity(copy(b));
    assert!(matches!(
        age_only.open(LABEL, &rsa_blob),
        Err(Error::NoKeyCouldDecrypt)
    ));
    assert_eq!(
        age_only.open(LABEL, &age_blob).unwrap().expose(),
        b"age value"
    );
}

#[test]
fn opens_a_file_written_by_the_go_age_tools() {
    let go_ids = AgeIdentity::parse_identity_file(GO_IDENTITIES).unwrap();
    assert_eq!(go_ids.len(), 2);
    assert_eq!(go_ids[0].to_public().as_str(), GO_RECIPIENT_1);
    assert_eq!(go_ids[1].to_public().as_str(), GO_RECIPIENT_2);
    for i in &go_ids {
        assert_eq!(
            open_age(&[i], LABEL, GO_VECTOR).unwrap().expose(),
            b"supersecret"
        );
        let e = open_age(&[i], b"default/other", GO_VECTOR).unwrap_err();
        assert!(matches!(e, Error::LabelMismatch));
    }
    assert!(matches!(
        open_age(&[id()], LABEL, GO_VECTOR),
        Err(Error::NoKeyCouldDecrypt)
    ));
}

#[test]
fn recipient_text_display_and_fingerprint() {
    let r: AgeRecipient = format!("  {GO_RECIPIENT_1}\n").parse().unwrap();
    assert_eq!(r.to_string(), GO_RECIPIENT_1);
    assert_eq!(r.as_str(), GO_RECIPIENT_1);
    assert_eq!(r.key_type(), AgeKeyType::X25519);
    assert_eq!(r.key_type().to_string(), "X25519");
    // printf %s age1z75r… | openssl dgst -sha256 -binary | base64 | tr -d =
    assert_eq!(
        r.fingerprint().as_str(),
        "SHA256:7vA91CIPCw+crYoOVhm3GSmKLY4HPAxdDcWVjCED+EU"
    );
    assert_eq!(
        r.fingerprint().as_str().parse::<Fingerprint>().unwrap(),
        *r.fingerprint()
    );
    assert_eq!(format!("{r:?}"), format!("AgeRecipient({GO_RECIPIENT_1})"));
    // Upper-case Bech32 is accepted and printed canonically.
    let upper: AgeRecipient = GO_RECIPIENT_1.to_uppercase().parse().unwrap();
    assert_eq!(upper, r);
    assert_eq!(upper.to_string(), GO_RECIPIENT_1);
    // Serde: the text.
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, format!("\"{GO_RECIPIENT_1}\""));
    assert_eq!(serde_json::from_str::<AgeRecipient>(&json).unwrap(), r);
    assert!(serde_json::from_str::<AgeRecipient>("\"age1nope\"").is_err());
}

#[test]
fn recipient_errors_never_quote_the_input() {
    let cases = [
        (
            GO_SECRET_1,
            "this is an age identity (secret key), not a recipient",
        ),
        (
            &GO_SECRET_1.to_lowercase(),
            "this is an age identity (secret key), not a recipient",
        ),
        (
            "age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            "age1pq1",
        ),
        (
            "age1tag1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            "tagged",
        ),
        (
            "age1tagpq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            "tagged",
        ),
        (
            "age1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            "plugin",
        ),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN",
            "SSH",
        ),
        (
            "age1z75r8a3kv20sxsk65k8rkyjmespc63cz9sredhxsqfsf248zcqss7ge8vy",
            "expected an X25519 recipient",
        ),
        ("", "expected an X25519 recipient"),
        ("é", "expected an X25519 recipient"),
        ("AGE-SECRET-KEY-é", "this is an age identity"),
    ];
    for (input, want) in cases {
        let e = input.parse::<AgeRecipient>().unwrap_err();
        assert!(matches!(e, Error::InvalidAgeRecipient(_)));
        let msg = e.to_string();
        assert!(msg.starts_with("invalid age recipient: "), "{msg}");
        assert!(msg.contains(want), "{input:?}: {msg}");
        if input.len() > 8 {
            assert!(!msg.contains(&input[8..]), "{msg} quotes its input");
        }
    }
}

#[test]
fn identity_file_round_trip_and_errors() {
    let i = id();
    let file = i.to_identity_file();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("# public key: {}", i.to_public()));
    assert!(lines[1].starts_with("AGE-SECRET-KEY-1"));
    let back = lines[1].parse::<AgeIdentity>().unwrap();
    assert_eq!(back.to_public(), i.to_public());
    assert_eq!(back.recipient(), i.recipient());
    assert_eq!(back.key_type(), AgeKeyType::X25519);
    assert_eq!(*back.to_identity_file(), *file);
    let all = AgeIdentity::parse_identity_file(&file).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fingerprint(), i.fingerprint());
    // CRLF, indentation and blank lines are fine.
    let crlf = format!("\r\n# a comment\r\n  {}  \r\n\r\n", lines[1]);
    assert_eq!(AgeIdentity::parse_identity_file(&crlf).unwrap().len(), 1);

    let secret_tail = &lines[1][20..];
    let bad_file = format!("# ok\n{}\n{}X\n", lines[1], lines[1]);
    let e = AgeIdentity::parse_identity_file(&bad_file).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("invalid age identity: line 3: "), "{msg}");
    assert!(!msg.contains(secret_tail), "{msg}");
    for (text, want) in [
        (
            "",
            "no AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line found",
        ),
        (
            "# only comments\n\n",
            "no AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line found",
        ),
        (
            GO_RECIPIENT_1,
            "line 1: this is a recipient (public key), not an identity",
        ),
        (
            "AGE-PLUGIN-YUBIKEY-1QQQQQQ",
            "line 1: age plugin identities are not supported",
        ),
        (
            "-----BEGIN PRIVATE KEY-----",
            "line 1: expected an X25519 identity",
        ),
    ] {
        let msg = AgeIdentity::parse_identity_file(text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(want), "{text:?}: {msg}");
    }
}

#[test]
fn debug_never_shows_the_secret_key() {
    let i = AgeIdentity::parse_identity_file(GO_IDENTITIES)
        .unwrap()
        .remove(0);
    let secret = GO_SECRET_1;
    // The canary really is this identity's secret.
    assert!(i.to_identity_file().contains(secret));
    let mut ring = Keyring::new();
    let shared = Arc::new(i);
    ring.insert_age_identity_arc(shared.clone());
    let shown = [
        format!("{shared:?}"),
        format!("{shared:#?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
    ];
    for s in &shown {
        assert!(!s.contains(secret), "{s}");
        assert!(
            !s.to_lowercase().contains(&secret.to_lowercase()[16..]),
            "{s}"
        );
        assert!(!s.contains("AGE-SECRET-KEY"), "{s}");
    }
    assert!(shown[0].contains(GO_RECIPIENT_1) && shown[0].contains("<redacted>"));
    // Plaintext Debug stays redacted too.
    let p = open_age(&[&shared], LABEL, GO_VECTOR).unwrap();
    assert!(!format!("{p:?}").contains("supersecret"));
}

#[test]
fn errors_never_quote_labels_or_values() {
    let b = seal_age(&[id().to_public()], b"ns/secret-name", b"canary-value").unwrap();
    let msgs = [
        open_age(&[id()], b"ns/other-name", &b)
            .unwrap_err()
            .to_string(),
        open_age(&[&AgeIdentity::generate()], b"ns/secret-name", &b)
            .unwrap_err()
            .to_string(),
    ];
    for m in msgs {
        assert!(
            !m.contains("secret-name") && !m.contains("other-name") && !m.contains("canary"),
            "{m}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_values_and_labels_round_trip(
        value in proptest::collection::vec(any::<u8>(), 0..3000),
        label in proptest::collection::vec(any::<u8>(), 0..300),
        other in proptest::collection::vec(any::<u8>(), 0..300),
        who in 0usize..3,
    ) {
        let recipients: Vec<AgeRecipient> = ids().iter().map(|i| i.to_public()).collect();
        let b = seal_age(&recipients, &label, &value).unwrap();
        prop_assert_eq!(Format::detect(&b).unwrap(), Format::Age);
        let opened = open_age(&[&ids()[who]], &label, &b).unwrap();
        prop_assert_eq!(opened.expose(), &value[..]);
        if other != label {
            prop_assert!(matches!(open_age(&[&ids()[who]], &other, &b), Err(Error::LabelMismatch)));
        }
    }
}

/// Issue 10, case 3: age's header parser is quadratic in the header's length, so the header
/// is measured before age sees it. 8,000 stanzas (780 KB) once cost 25 s in `kseal verify`.
#[test]
fn long_headers_are_refused_before_age_parses_them() {
    use kseal_crypto::age::{inspect_age, MAX_HEADER_BYTES};
    let stanza = "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    let blob_of = |header: String| {
        let mut b = header.into_bytes();
        b.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        b.extend_from_slice(&[0u8; 64]);
        b
    };
    // Many stanzas: refused by count.
    let many = blob_of(format!("age-encryption.org/v1\n{}", stanza.repeat(8000)));
    let started = std::time::Instant::now();
    assert_eq!(
        open_err(&many).to_string(),
        "malformed age blob: too many recipient stanzas"
    );
    assert_eq!(
        inspect_age(&many).unwrap_err().to_string(),
        "malformed age blob: too many recipient stanzas"
    );
    // Few stanzas with long bodies: refused by length.
    let body = format!("{}\n", "A".repeat(64)).repeat(MAX_HEADER_BYTES / 65 + 1);
    let long = blob_of(format!(
        "age-encryption.org/v1\n-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n{body}AAAA\n"
    ));
    assert_eq!(
        open_err(&long).to_string(),
        "malformed age blob: header too long"
    );
    assert_eq!(
        inspect_age(&long).unwrap_err().to_string(),
        "malformed age blob: header too long"
    );
    // No MAC line at all, megabytes of stanza body: too long as well.
    let endless = format!(
        "age-encryption.org/v1\n-> X25519 A\n{}",
        "A".repeat(4 << 20)
    );
    assert_eq!(
        open_err(endless.as_bytes()).to_string(),
        "malformed age blob: header too long"
    );
    // A linear scan: a few milliseconds even in a debug build (age took seconds).
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}

/// The post-quantum mlkem768x25519 type: same envelope, label binding and failure reports.
mod post_quantum {
    use super::*;

    fn pq() -> &'static [AgeIdentity; 3] {
        static IDS: OnceLock<[AgeIdentity; 3]> = OnceLock::new();
        IDS.get_or_init(|| {
            [
                AgeIdentity::generate_pq(),
                AgeIdentity::generate_pq(),
                AgeIdentity::generate_pq(),
            ]
        })
    }

    #[test]
    fn seal_open_and_label_binding() {
        let [a, b, c] = pq();
        let recipients = [a.to_public(), b.to_public()];
        let blob = seal_age(&recipients, b"ns/name", b"secret value").unwrap();
        let h = inspect_age(&blob).unwrap();
        assert_eq!((h.pq_stanzas(), h.x25519_stanzas()), (2, 0), "{h:?}");
        assert_eq!(h.recipient_stanzas(), 2);
        for id in [a, b] {
            assert_eq!(
                open_age(&[id], b"ns/name", &blob).unwrap().expose(),
                b"secret value"
            );
        }
        assert!(matches!(
            open_age(&[c], b"ns/name", &blob),
            Err(Error::NoKeyCouldDecrypt)
        ));
        // Moved, renamed or rescoped: refused, without naming either label.
        for other in [&b"ns/other"[..], b"other/name", b"ns", b""] {
            assert!(matches!(
                open_age(&[a], other, &blob),
                Err(Error::LabelMismatch)
            ));
        }
        // Every X25519 identity tries and fails, a PQ one among them opens.
        let classic = AgeIdentity::generate();
        assert!(open_age(&[&classic, c, b], b"ns/name", &blob).is_ok());
    }

    #[test]
    fn key_text_round_trip() {
        let a = &pq()[0];
        assert_eq!(a.key_type(), AgeKeyType::MlKem768X25519);
        assert!(a.to_public().is_post_quantum());
        assert_eq!(a.to_public().key_type().as_str(), "mlkem768x25519");
        let file = a.to_identity_file();
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines[0], format!("# public key: {}", a.to_public()));
        assert!(lines[0].starts_with("# public key: age1pq1"));
        assert!(lines[1].starts_with("AGE-SECRET-KEY-PQ-1"));
        let back = AgeIdentity::parse_identity_file(&file).unwrap();
        assert_eq!(back[0].to_public(), a.to_public());
        // age-keygen's output of the Go tools reads back too (lower case is also accepted).
        let lower = lines[1].to_lowercase().parse::<AgeIdentity>().unwrap();
        assert_eq!(lower.to_public(), a.to_public());
        let r: AgeRecipient = a.to_public().as_str().parse().unwrap();
        assert_eq!(r, a.to_public());
        // 1216 bytes of key in Bech32: 1959 characters.
        assert_eq!(r.as_str().len(), 1959);
        assert!(format!("{a:?}").contains("<redacted>"));
        assert!(!format!("{a:?}").contains(&lines[1][20..]));
    }

    #[test]
    fn bad_pq_text_is_refused_without_quoting_it() {
        let a = pq()[0].to_public().to_string();
        let mut flipped = a.clone().into_bytes();
        let n = flipped.len() - 10;
        flipped[n] = if flipped[n] == b'q' { b'p' } else { b'q' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [flipped.as_str(), &a[..a.len() - 1], "age1pq1qqqq"] {
            let msg = bad.parse::<AgeRecipient>().unwrap_err().to_string();
            assert!(msg.contains("age1pq1"), "{msg}");
            if bad.len() > 20 {
                assert!(!msg.contains(&bad[10..]), "{msg} quotes its input");
            }
        }
        let secret = pq()[0].to_identity_file();
        let secret = secret.lines().nth(1).unwrap();
        let msg = secret[..secret.len() - 1]
            .parse::<AgeIdentity>()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("AGE-SECRET-KEY-PQ-1"), "{msg}");
        assert!(!msg.contains(&secret[20..40]), "{msg}");
    }

    #[test]
    fn pq_and_x25519_recipients_are_not_mixed() {
        let e = seal_age(&[pq()[0].to_public(), id().to_public()], b"l", b"v").unwrap_err();
        assert!(matches!(e, Error::InvalidAgeRecipient(_)));
        let msg = e.to_string();
        assert!(msg.contains("cannot be mixed with X25519"), "{msg}");
    }

    #[test]
    fn tampering_is_refused() {
        let a = &pq()[0];
        let blob = seal_age(&[a.to_public()], b"l", b"value").unwrap();
        // A byte of the share, of the wrapped key, of the MAC and of the payload.
        let h = header_len(&blob);
        for at in [40, 1200, 1540, h - 5, h + 20, blob.len() - 1] {
            let mut t = blob.clone();
            t[at] ^= 0x01;
            assert!(open_age(&[a], b"l", &t).is_err(), "byte {at}");
        }
    }

    #[test]
    fn header_fits_about_forty_pq_recipients() {
        let ids: Vec<AgeIdentity> = (0..41).map(|_| AgeIdentity::generate_pq()).collect();
        let rs: Vec<AgeRecipient> = ids.iter().map(|i| i.to_public()).collect();
        let blob = seal_age(&rs, b"l", b"v").unwrap();
        assert!(
            header_len(&blob) < MAX_HEADER_BYTES,
            "{}",
            header_len(&blob)
        );
        let more: Vec<AgeRecipient> = rs
            .iter()
            .cloned()
            .chain((0..2).map(|_| AgeIdentity::generate_pq().to_public()))
            .collect();
        let e = seal_age(&more, b"l", b"v").unwrap_err().to_string();
        assert!(e.contains("header would exceed"), "{e}");
    }
}
