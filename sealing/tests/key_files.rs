//! Key files (`kseal unseal --key`, `kubeseal --recovery-private-key`) and the key Secret YAML
//! of `kseal keygen --secret-file`: `kseal_sealing::key_secret`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kseal_crypto::{Certificate, PrivateKey};
use kseal_sealing::key_secret::{
    key_secret, key_secret_yaml, read_key_file, KeySecretName, DEFAULT_KEY_PREFIX,
};

const GO_KEY: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.key");
const GO_CERT: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.crt");

fn go_key() -> PrivateKey {
    PrivateKey::from_pem(GO_KEY)
        .unwrap()
        .with_certificate(Certificate::from_pem(GO_CERT).unwrap())
        .unwrap()
}

fn secret_doc(name: &str, with_key: bool) -> String {
    let key = STANDARD.encode(GO_KEY);
    let crt = STANDARD.encode(GO_CERT);
    let key_line = if with_key {
        format!("    tls.key: {key}\n")
    } else {
        String::new()
    };
    format!(
        "- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: {name}\n    creationTimestamp: \"2026-11-21T13:23:34Z\"\n    labels:\n      sealedsecrets.bitnami.com/sealed-secrets-key: active\n  type: kubernetes.io/tls\n  data:\n    tls.crt: {crt}\n{key_line}"
    )
}

#[test]
fn key_file_forms() {
    // (a) PEM
    let k = read_key_file(GO_KEY).unwrap();
    assert_eq!(k.len(), 1);
    assert!(k[0].key.certificate().is_none());
    // (b) a List, as `kubectl get secret -l ... -o yaml` prints it
    let list = format!(
        "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{}{}",
        secret_doc("sealed-secrets-keyabcde", true),
        secret_doc("sealed-secrets-keyfghij", true)
    );
    let k = read_key_file(list.as_bytes()).unwrap();
    assert_eq!(k.len(), 2);
    assert_eq!(k[0].secret_name.as_deref(), Some("sealed-secrets-keyabcde"));
    assert_eq!(
        k[0].created.map(|t| t.as_second()),
        Some(1_795_267_414),
        "2026-11-21T13:23:34Z"
    );
    assert!(k[0].key.certificate().is_some());
    // The same List as JSON.
    let v: serde_yaml::Value = serde_yaml::from_str(&list).unwrap();
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(read_key_file(json.as_bytes()).unwrap().len(), 2);
    // (c) Secret documents
    let docs: Vec<String> = (0..2)
        .map(|i| {
            let d = secret_doc(&format!("k{i}"), true);
            d.lines()
                .map(|l| l.get(2..).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let stream = format!("---\n{}\n---\n{}\n", docs[0], docs[1]);
    assert_eq!(read_key_file(stream.as_bytes()).unwrap().len(), 2);
    // A Secret without tls.key: Bitnami's message.
    let nokey = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}",
        secret_doc("x", false)
    );
    assert_eq!(
        read_key_file(nokey.as_bytes()).unwrap_err().to_string(),
        "secret must contain a 'tls.data' key"
    );
    assert!(read_key_file(b"")
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

#[test]
fn key_secret_yaml_reads_back() {
    let key = go_key();
    let mut secret = key_secret(
        &key,
        KeySecretName::Generate(DEFAULT_KEY_PREFIX),
        Some("kube-system"),
        &BTreeMap::new(),
        &BTreeMap::new(),
    )
    .unwrap();
    let yaml = key_secret_yaml(&secret);
    kseal_sealing::scrub::secret(&mut secret);
    assert!(yaml.contains("generateName: \"sealed-secrets-key\""));
    assert!(yaml.contains("namespace: \"kube-system\""));
    assert!(yaml.contains("\"sealedsecrets.bitnami.com/sealed-secrets-key\": \"active\""));
    assert!(yaml.contains("type: \"kubernetes.io/tls\""));
    let back = read_key_file(yaml.as_bytes()).unwrap();
    assert_eq!(back[0].key.fingerprint(), key.fingerprint());
    assert_eq!(back[0].key.certificate(), key.certificate());
}
