//! The sealing-key hint: `seal_secret` records the certificate's fingerprint on the
//! SealedSecret's own metadata (not the template), `sealed_with` reads it back, and `unseal`
//! takes it as its hint.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kseal_crds::{SealedSecret, ANNOTATION_SEALED_WITH};
use kseal_crypto::{Certificate, Fingerprint, Keyring, PrivateKey};
use kseal_gocompat::{to_go_json, to_k8s_yaml};
use kseal_sealing::seal::{seal_secret, SealOptions};
use kseal_sealing::sealed_with;
use kseal_sealing::unseal::{unseal, UnsealOptions};

const CERT: &[u8] = include_bytes!("../../keys-example/tls.crt");
const KEY: &[u8] = include_bytes!("../../keys-example/tls.key");
/// A second key that did not seal anything here, added to the keyring first.
const OTHER_KEY: &[u8] = include_bytes!("../../cli/tests/cmd/fixtures/go_rsa2048.key");

fn cert() -> Certificate {
    Certificate::from_pem(CERT).unwrap()
}

fn secret(items: &[(&str, &str)]) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some("db".into());
    s.metadata.namespace = Some("prod".into());
    s.metadata.annotations = Some(BTreeMap::from([("team".into(), "payments".into())]));
    s.data = Some(
        items
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
    );
    s
}

fn opts() -> SealOptions<'static> {
    SealOptions {
        default_namespace: "default",
        ..Default::default()
    }
}

fn seal(items: &[(&str, &str)], o: &SealOptions<'_>) -> SealedSecret {
    seal_secret(
        &mut rand::rngs::OsRng,
        cert().public_key(),
        secret(items),
        o,
    )
    .unwrap()
}

#[test]
fn seal_records_the_certificate_on_the_top_level_only() {
    let ss = seal(&[("password", "s3cr3t"), ("user", "admin")], &opts());
    let fp = cert().fingerprint().clone();
    assert_eq!(
        ss.metadata.annotations.as_ref().unwrap()[ANNOTATION_SEALED_WITH],
        fp.as_str()
    );
    assert_eq!(sealed_with(&ss), std::slice::from_ref(&fp));
    let template = ss.spec.template.metadata.as_ref().unwrap();
    assert!(!template
        .annotations
        .as_ref()
        .unwrap()
        .contains_key(ANNOTATION_SEALED_WITH));

    // It survives rendering and reading back, in both formats.
    let json = to_go_json(&ss, true).unwrap();
    let yaml = to_k8s_yaml(&ss).unwrap();
    assert!(
        json.contains(&format!(
            "\"annotations\": {{\n      \"{ANNOTATION_SEALED_WITH}\": \"{fp}\"\n    }}"
        )),
        "{json}"
    );
    assert!(
        yaml.contains(&format!(
            "metadata:\n  annotations:\n    {ANNOTATION_SEALED_WITH}: {fp}\n  name: db\n"
        )),
        "{yaml}"
    );
    let back: SealedSecret = serde_json::from_str(&json).unwrap();
    assert_eq!(sealed_with(&back), std::slice::from_ref(&fp));
    let back: SealedSecret = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(sealed_with(&back), [fp]);
}

#[test]
fn the_hint_sits_next_to_the_scope_annotation() {
    let o = SealOptions {
        scope: Some(kseal_crypto::Scope::ClusterWide),
        ..opts()
    };
    let ss = seal(&[("k", "v")], &o);
    let top = ss.metadata.annotations.as_ref().unwrap();
    assert_eq!(top["sealedsecrets.bitnami.com/cluster-wide"], "true");
    assert_eq!(top[ANNOTATION_SEALED_WITH], cert().fingerprint().as_str());
    assert_eq!(top.len(), 2);
}

#[test]
fn nothing_sealed_records_nothing() {
    let o = SealOptions {
        allow_empty_data: true,
        ..opts()
    };
    let ss = seal(&[], &o);
    assert!(ss.metadata.annotations.is_none());
    assert!(sealed_with(&ss).is_empty());
}

#[test]
fn unseal_takes_the_recorded_hint_and_any_hint_only_orders() {
    let ss = seal(&[("password", "s3cr3t")], &opts());
    let other = PrivateKey::from_pem(OTHER_KEY).unwrap();
    let key = PrivateKey::from_pem(KEY).unwrap();
    let ring: Keyring = [other, key].into_iter().collect();

    let hint = sealed_with(&ss);
    let u = unseal(&ss, &ring, &hint, UnsealOptions::default()).unwrap();
    assert_eq!(u.keys_used.iter().collect::<Vec<_>>(), [&hint[0]]);
    assert_eq!(u.secret.data.as_ref().unwrap()["password"].0, b"s3cr3t");
    u.scrub();

    // A stale or foreign hint, or none, still opens.
    let foreign = Fingerprint::of_rsa(&[1, 0, 1], &[0xc1; 256]);
    for hint in [vec![], vec![foreign]] {
        let u = unseal(&ss, &ring, &hint, UnsealOptions::default()).unwrap();
        assert_eq!(u.secret.data.as_ref().unwrap()["password"].0, b"s3cr3t");
        u.scrub();
    }
}

#[test]
fn kubeseal_files_have_no_hint() {
    let ss: SealedSecret = serde_yaml::from_str(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a, namespace: b}\nspec: {encryptedData: {k: AgA=}}\n",
    )
    .unwrap();
    assert!(sealed_with(&ss).is_empty());
}
