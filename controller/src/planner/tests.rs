//! Every reconcile rule, decided without a cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kseal_crds::{SealedSecret, SealedSecretSpec, SecretTemplateSpec};
use kseal_crypto::{Keyring, PrivateKey};
use pretty_assertions::assert_eq;

use super::*;

const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");
/// go-00-strict: `supersecret` sealed for default/mysecret by Bitnami's Go code.
const FOO: &str = "AQDA2x1W+GKC4f00DEeZ3xQCC31ZiiVkBnm/r4PoGWknGljq/Xc4hXk/0TjSUZJw/DYxAa1NX+iEnenBsro83T/AHe7PU8FDZXD/lhs/fQ3DK49RNsyXDyBORr/SK4EKOQ5z8nLLYh59WUfutOQ2/sQEuSx1zFw5wnWZxINiJde5LZ8FtK5RKxCvf4diJZ7H3wNKfP4eNYBG5nAXNiXhR20DfiejkFWeBcN9N2DklcZZCcaCBRlHHru9NqpVI6d9c6Mqe/FnCE84lXZaZmVPo71d1+1j/X3T9S1I+PTK0BLNP9cTxyOjta0fxpkAxRIj8q11o/6fLJJes5sXjvYvEBEwPvD4Oc/FrJGP2PuEh8UTWrUiOqdZW+uaUnK4";
const PLAIN: &[u8] = b"supersecret";

fn ring() -> Keyring {
    [PrivateKey::from_pem(GO_KEY).unwrap()]
        .into_iter()
        .collect()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn ss() -> SealedSecret {
    SealedSecret {
        metadata: ObjectMeta {
            name: Some("mysecret".into()),
            namespace: Some("default".into()),
            uid: Some("ss-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: SealedSecretSpec {
            template: SecretTemplateSpec {
                metadata: Some(ObjectMeta {
                    name: Some("mysecret".into()),
                    namespace: Some("default".into()),
                    labels: map(&[("mylabel", "myvalue")]),
                    ..Default::default()
                }),
                type_: Some("Opaque".into()),
                immutable: None,
                data: None,
            },
            data: None,
            encrypted_data: BTreeMap::from([("foo".to_string(), FOO.to_string())]),
        },
        status: None,
    }
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "bitnami.com/v1alpha1".into(),
        kind: "SealedSecret".into(),
        name: "mysecret".into(),
        uid: "ss-uid".into(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn data(pairs: &[(&str, &[u8])]) -> Option<BTreeMap<String, ByteString>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
            .collect(),
    )
}

fn existing(annotations: &[(&str, &str)], labels: &[(&str, &str)], d: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("mysecret".into()),
            namespace: Some("default".into()),
            resource_version: Some("7".into()),
            annotations: if annotations.is_empty() {
                None
            } else {
                map(annotations)
            },
            labels: if labels.is_empty() { None } else { map(labels) },
            ..Default::default()
        },
        data: if d.is_empty() { None } else { data(d) },
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

fn go(ss: &SealedSecret, current: Option<&Secret>) -> Plan {
    let ring = ring();
    let signer = ring.iter().next().cloned();
    plan(
        ss,
        current,
        &ring,
        signer.as_deref(),
        t(0),
        PlanOptions::default(),
    )
}

/// Annotations without kseal's own ownership mark (which the Bitnami scenarios do not know about).
fn user_annotations(s: &Secret) -> Option<BTreeMap<String, String>> {
    let mut a = s.metadata.annotations.clone().unwrap_or_default();
    a.remove(ANNOTATION_OWNERSHIP);
    Some(a).filter(|a| !a.is_empty())
}

#[test]
fn r01_r02_creates_the_secret_from_the_template_with_an_owner() {
    let p = go(&ss(), None);
    let Write::Create(s) = &p.write else {
        panic!("{:?}", p.write)
    };
    assert_eq!(s.data, data(&[("foo", PLAIN)]));
    assert_eq!(s.metadata.labels, map(&[("mylabel", "myvalue")]));
    assert_eq!(s.metadata.owner_references, Some(vec![owner()]));
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        p.event,
        EventSpec {
            type_: "Normal",
            reason: "Unsealed",
            message: "SealedSecret unsealed successfully".into()
        }
    );
    assert!(p.failure.is_none());
    assert_eq!(p.keys_used.len(), 1);
}

#[test]
fn r02_skip_set_owner_references() {
    let mut s = ss();
    s.spec.template.metadata.as_mut().unwrap().annotations = map(&[(
        "sealedsecrets.bitnami.com/skip-set-owner-references",
        "true",
    )]);
    let Write::Create(secret) = go(&s, None).write else {
        panic!()
    };
    assert_eq!(secret.metadata.owner_references, None);
}

#[test]
fn r03_an_unmanaged_secret_is_left_alone() {
    let cur = existing(&[], &[], &[("foo", b"other")]);
    let p = go(&ss(), Some(&cur));
    assert_eq!(p.write, Write::Nothing);
    assert_eq!(p.failure.as_ref().unwrap().0, Failure::Unmanaged);
    assert_eq!(
        p.failure.as_ref().unwrap().1,
        "failed update: Resource \"mysecret\" already exists and is not managed by SealedSecret"
    );
    assert_eq!(p.event.reason, "ErrUpdateFailed");
    assert_eq!(
        p.event.message,
        "Resource \"mysecret\" already exists and is not managed by SealedSecret"
    );
    assert_eq!(
        crate::metrics::UnsealErrorReason::from(Failure::Unmanaged).as_str(),
        "unmanaged"
    );
    assert!(
        !Failure::Unmanaged.retry(),
        "IT-11: no retry that would create the Secret once the unmanaged one is deleted"
    );
    assert!(Failure::Unseal.retry());
    let c = &p.status.unwrap().conditions.unwrap()[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("SecretNotManaged"))
    );
}

#[test]
fn r04_managed_takes_over_and_replaces() {
    // IT-05
    let cur = existing(
        &[("sealedsecrets.bitnami.com/managed", "true")],
        &[("mylabel", "myvalue"), ("anotherlabel", "x")],
        &[("foo", b"bar1"), ("foo2", b"bar2")],
    );
    let Write::Update(s) = go(&ss(), Some(&cur)).write else {
        panic!()
    };
    assert_eq!(s.metadata.owner_references, Some(vec![owner()]));
    assert_eq!(s.data, data(&[("foo", PLAIN)]));
    assert_eq!(
        user_annotations(&s),
        None,
        "the managed annotation itself goes"
    );
    assert_eq!(s.metadata.labels, map(&[("mylabel", "myvalue")]));
    assert_eq!(
        s.metadata.resource_version.as_deref(),
        Some("7"),
        "update what was read"
    );
}

#[test]
fn r05_patch_with_managed_merges_and_takes_ownership() {
    // IT-06
    let ann = [
        ("sealedsecrets.bitnami.com/managed", "true"),
        ("sealedsecrets.bitnami.com/patch", "true"),
    ];
    let cur = existing(
        &ann,
        &[("anotherlabel", "x")],
        &[("foo", b"bar1"), ("foo2", b"bar2")],
    );
    let Write::Update(s) = go(&ss(), Some(&cur)).write else {
        panic!()
    };
    assert_eq!(s.metadata.owner_references, Some(vec![owner()]));
    assert_eq!(s.data, data(&[("foo", PLAIN), ("foo2", b"bar2")]));
    assert_eq!(user_annotations(&s), map(&ann));
    assert_eq!(
        s.metadata.labels,
        map(&[("anotherlabel", "x"), ("mylabel", "myvalue")])
    );
}

#[test]
fn r05_patch_alone_merges_without_ownership() {
    // IT-07 and IT-08
    let cur = existing(
        &[("sealedsecrets.bitnami.com/patch", "true")],
        &[("anotherlabel", "x")],
        &[("foo2", b"bar2")],
    );
    let Write::Update(s) = go(&ss(), Some(&cur)).write else {
        panic!()
    };
    assert_eq!(s.metadata.owner_references, None);
    assert_eq!(s.data, data(&[("foo", PLAIN), ("foo2", b"bar2")]));
    let empty = existing(&[("sealedsecrets.bitnami.com/patch", "true")], &[], &[]);
    let Write::Update(s) = go(&ss(), Some(&empty)).write else {
        panic!()
    };
    assert_eq!(s.data, data(&[("foo", PLAIN)]));
    assert_eq!(s.metadata.labels, map(&[("mylabel", "myvalue")]));
    assert_eq!(
        user_annotations(&s),
        map(&[("sealedsecrets.bitnami.com/patch", "true")])
    );
}

#[test]
fn an_owned_secret_that_matches_needs_no_write() {
    let Write::Create(mut s) = go(&ss(), None).write else {
        panic!()
    };
    s.metadata.resource_version = Some("9".into());
    let p = go(&ss(), Some(&s));
    assert_eq!(p.write, Write::Nothing);
    assert_eq!(
        p.event.reason, "Unsealed",
        "emitted on every successful pass, as Bitnami does"
    );
}

#[test]
fn a_hand_edited_owned_secret_is_restored() {
    let Write::Create(mut s) = go(&ss(), None).write else {
        panic!()
    };
    s.data = data(&[("foo", b"tampered"), ("extra", b"x")]);
    s.metadata.labels = map(&[("mylabel", "changed")]);
    let Write::Update(fixed) = go(&ss(), Some(&s)).write else {
        panic!()
    };
    assert_eq!(fixed.data, data(&[("foo", PLAIN)]));
    assert_eq!(fixed.metadata.labels, map(&[("mylabel", "myvalue")]));
}

#[test]
fn r07_type_follows_the_template_and_immutable_is_create_only() {
    let mut s = ss();
    s.spec.template.type_ = Some("kubernetes.io/dockerconfigjson".into());
    s.spec.template.immutable = Some(true);
    let Write::Create(created) = go(&s, None).write else {
        panic!()
    };
    assert_eq!(
        created.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(created.immutable, Some(true));
    let mut cur = existing(
        &[("sealedsecrets.bitnami.com/managed", "true")],
        &[],
        &[("foo", PLAIN)],
    );
    cur.immutable = Some(false);
    let Write::Update(updated) = go(&s, Some(&cur)).write else {
        panic!()
    };
    assert_eq!(
        updated.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(
        updated.immutable,
        Some(false),
        "immutable is not changed on an existing Secret"
    );
}

#[test]
fn r08_immutable_secret_with_new_data_fails_without_retry() {
    // IT-16
    let Write::Create(mut cur) = go(&ss(), None).write else {
        panic!()
    };
    cur.immutable = Some(true);
    cur.data = data(&[("foo", b"old")]);
    let mut s = ss();
    s.metadata.generation = Some(2);
    let p = go(&s, Some(&cur));
    assert_eq!(p.write, Write::Nothing);
    let (f, msg) = p.failure.clone().unwrap();
    assert_eq!(f, Failure::Immutable);
    assert!(!f.retry());
    assert!(
        msg.starts_with("Error updating default/mysecret: the target Secret is immutable."),
        "{msg}"
    );
    assert_eq!(p.event.reason, "ErrUpdateFailed");
    assert_eq!(p.status.unwrap().observed_generation, Some(2));
    // Same data on an immutable Secret: nothing to do, no error.
    // (Kubernetes allows metadata changes on an immutable Secret, so adding the mark is fine.)
    cur.data = data(&[("foo", PLAIN)]);
    match go(&s, Some(&cur)).write {
        Write::Nothing => {}
        Write::Update(u) => assert_eq!(u.data, cur.data),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unseal_failures_are_reported_with_bitnamis_texts() {
    // IT-13, IT-17: wrong key, renamed strict SealedSecret.
    let mut s = ss();
    s.metadata.name = Some("not-testsecret".into());
    let p = go(&s, None);
    assert_eq!(p.write, Write::Nothing);
    assert_eq!(p.failure.as_ref().unwrap().0, Failure::Unseal);
    assert_eq!(p.event.reason, "ErrUnsealFailed");
    assert_eq!(
        p.event.message,
        "Failed to unseal: no key could decrypt secret (foo)"
    );
    let c = &p.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
    assert_eq!(
        c.message.as_deref(),
        Some("no key could decrypt secret (foo)")
    );
    assert_eq!(
        plan(
            &ss(),
            None,
            &Keyring::new(),
            None,
            t(0),
            PlanOptions::default()
        )
        .failure
        .unwrap()
        .1,
        "no key could decrypt secret (foo)"
    );
}

#[test]
fn status_is_written_only_when_it_changes() {
    let mut s = ss();
    let first = go(&s, None).status.unwrap();
    let c = &first.conditions.as_ref().unwrap()[0];
    // IT-01: first sync, lastTransitionTime == lastUpdateTime.
    assert_eq!(c.status, "True");
    assert_eq!(c.last_transition_time, c.last_update_time);
    assert_eq!(first.observed_generation, Some(1));
    s.status = Some(first.clone());
    assert_eq!(
        plan(&s, None, &ring(), None, t(60), PlanOptions::default()).status,
        None,
        "same condition, same generation"
    );
    // IT-02: a spec update bumps the generation: written, transition time kept.
    s.metadata.generation = Some(2);
    let second = plan(&s, None, &ring(), None, t(60), PlanOptions::default())
        .status
        .unwrap();
    let c2 = &second.conditions.as_ref().unwrap()[0];
    assert_eq!(second.observed_generation, Some(2));
    assert_eq!(c2.last_transition_time, Some(Time(t(0))));
    assert_eq!(c2.last_update_time, Some(Time(t(60))));
    assert_ne!(c2.last_transition_time, c2.last_update_time);
}

#[test]
fn status_recovers_once_the_error_is_fixed() {
    let mut s = ss();
    let broken = plan(
        &s,
        None,
        &Keyring::new(),
        None,
        t(0),
        PlanOptions::default(),
    )
    .status
    .unwrap();
    s.status = Some(broken);
    let fixed = plan(&s, None, &ring(), None, t(30), PlanOptions::default())
        .status
        .unwrap();
    let c = &fixed.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        ("True", Some("Unsealed"), None)
    );
    assert_eq!(c.last_transition_time, Some(Time(t(30))));
}

#[test]
fn status_updates_can_be_turned_off() {
    let opts = PlanOptions {
        update_status: false,
        ..Default::default()
    };
    assert_eq!(plan(&ss(), None, &ring(), None, t(0), opts).status, None);
}

#[test]
fn deprecated_v1_data_follows_the_flag() {
    let mut s = ss();
    s.spec.encrypted_data.clear();
    s.spec.data = Some("AQID".into());
    let off = PlanOptions {
        accept_deprecated_v1_data: false,
        ..Default::default()
    };
    assert_eq!(
        plan(&s, None, &ring(), None, t(0), off).failure.unwrap().1,
        "using deprecated 'data' field, use 'encryptedData' or flip the feature flag"
    );
    s.spec.encrypted_data.insert("foo".into(), FOO.into());
    assert_eq!(
        go(&s, None).failure.unwrap().1,
        "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
    );
}

#[test]
fn debug_output_of_a_plan_never_shows_plaintext() {
    // k8s-openapi prints ByteString as a list of numbers: look for that form too.
    let bytes = format!("{PLAIN:?}");
    let as_numbers = &bytes[1..bytes.len() - 1];
    let managed = existing(&[("sealedsecrets.bitnami.com/managed", "true")], &[], &[]);
    for p in [go(&ss(), None), go(&ss(), Some(&managed))] {
        assert!(
            matches!(p.write, Write::Create(_) | Write::Update(_)),
            "the plan writes a Secret"
        );
        // The whole plan, including the Secret it would write.
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("supersecret") && !shown.contains(as_numbers),
            "{shown}"
        );
        assert!(shown.contains("\"foo\""), "item names are shown: {shown}");
    }
}

#[test]
fn restart_path_needs_no_decryption_for_an_unchanged_pair() {
    let Write::Create(mut made) = go(&ss(), None).write else {
        panic!()
    };
    assert!(
        made.metadata.annotations.as_ref().unwrap()[ANNOTATION_OWNERSHIP]
            .starts_with("v1;key=SHA256:")
    );
    made.metadata.resource_version = Some("3".into());
    let p = go(&ss(), Some(&made));
    assert_eq!(p.write, Write::Nothing);
    assert!(
        p.keys_used.is_empty(),
        "no key was used: nothing was decrypted"
    );
    assert_eq!(p.event.reason, "Unsealed");
}

#[test]
fn restart_path_survives_the_api_servers_defaults() {
    let mut ss = ss();
    ss.spec.template.type_ = None;
    let ss = &ss;
    // The API server stores no type as "Opaque" and drops empty maps: the mark must still
    // match the Secret as it reads back.
    let Write::Create(mut made) = go(ss, None).write else {
        panic!()
    };
    assert_eq!(made.type_, None);
    if made.type_.is_none() {
        made.type_ = Some("Opaque".into());
    }
    made.immutable = None;
    if made.metadata.labels.as_ref().is_some_and(|l| l.is_empty()) {
        made.metadata.labels = None;
    }
    let p = go(ss, Some(&made));
    assert_eq!(p.write, Write::Nothing);
    assert!(p.keys_used.is_empty());
}

#[test]
fn restart_path_still_catches_edits_and_changes() {
    let Write::Create(made) = go(&ss(), None).write else {
        panic!()
    };
    // A hand edit of the data, of a label, or of the mark itself: full path, restored.
    let mut edited = made.clone();
    edited.data = data(&[("foo", b"hacked")]);
    let p = go(&ss(), Some(&edited));
    let Write::Update(fixed) = p.write else {
        panic!("{:?}", p.write)
    };
    assert_eq!(fixed.data, data(&[("foo", PLAIN)]));
    assert_eq!(p.keys_used.len(), 1, "decrypted to restore");
    let mut relabelled = made.clone();
    relabelled.metadata.labels = map(&[("mylabel", "x")]);
    assert!(matches!(
        go(&ss(), Some(&relabelled)).write,
        Write::Update(_)
    ));
    // The SealedSecret changed (new generation with another item): full path.
    let mut changed = ss();
    changed.spec.encrypted_data.insert("bar".into(), FOO.into());
    assert!(!go(&changed, Some(&made)).keys_used.is_empty());
    // A mark made with a key we do not hold proves nothing.
    let other = kseal_crypto::keygen::generate(
        &mut rand::rngs::OsRng,
        &kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let Write::Create(foreign) = plan(
        &ss(),
        None,
        &ring(),
        Some(&other),
        t(0),
        PlanOptions::default(),
    )
    .write
    else {
        panic!()
    };
    assert!(!go(&ss(), Some(&foreign)).keys_used.is_empty());
}

#[test]
fn a_matching_secret_without_ownership_mark_gets_one() {
    // E.g. a Secret written by Bitnami's controller before the switch: one update adds the mark.
    let Write::Create(mut made) = go(&ss(), None).write else {
        panic!()
    };
    made.metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(ANNOTATION_OWNERSHIP);
    made.metadata.annotations = None;
    let Write::Update(u) = go(&ss(), Some(&made)).write else {
        panic!()
    };
    assert_eq!(u.data, made.data);
    assert!(u
        .metadata
        .annotations
        .unwrap()
        .contains_key(ANNOTATION_OWNERSHIP));
}

#[test]
fn the_ownership_mark_reveals_nothing() {
    let Write::Create(made) = go(&ss(), None).write else {
        panic!()
    };
    let mark = &made.metadata.annotations.as_ref().unwrap()[ANNOTATION_OWNERSHIP];
    assert!(!mark.contains("supersecret"));
    assert!(
        !mark.contains(&kseal_crypto::sha256_hex(PLAIN)),
        "not a plain hash of the value"
    );
}

// ---------------------------------------------------------------------------------------------
// hardening: the controller's keys, and bounds

fn in_controller_namespace(mut s: SealedSecret) -> SealedSecret {
    s.metadata.namespace = Some("kube-system".into());
    s
}

fn protected() -> PlanOptions {
    PlanOptions {
        protected: Some(std::sync::Arc::new(ProtectedKeys {
            namespace: "kube-system".into(),
            key_prefix: "sealed-secrets-key".into(),
        })),
        ..Default::default()
    }
}

fn go_with(ss: &SealedSecret, current: Option<&Secret>, opts: PlanOptions) -> Plan {
    let ring = ring();
    let signer = ring.iter().next().cloned();
    plan(ss, current, &ring, signer.as_deref(), t(0), opts)
}

#[test]
fn no_sealed_secret_can_make_or_touch_a_key_secret_in_the_controller_namespace() {
    // A template label that marks keys (RSA or age), whatever its value.
    for label in [
        "sealedsecrets.bitnami.com/sealed-secrets-key",
        "sealedsecrets.kseal.dev/age-identity",
    ] {
        let mut s = in_controller_namespace(ss());
        s.spec.template.metadata.as_mut().unwrap().labels = map(&[(label, "active")]);
        let p = go_with(&s, None, protected());
        assert_eq!(p.write, Write::Nothing, "{label}");
        let (f, msg) = p.failure.clone().unwrap();
        assert_eq!(f, Failure::KeySecret);
        assert!(msg.contains(label), "{msg}");
        assert!(p.keys_used.is_empty(), "refused before decrypting");
        assert_eq!(p.event.reason, "ErrUpdateFailed");
        let c = &p.status.unwrap().conditions.unwrap()[0];
        assert_eq!(c.reason.as_deref(), Some("KeySecretRefused"));
        assert!(!f.retry());
        // The same object elsewhere is fine (keys are read only in the controller namespace).
        let mut elsewhere = s.clone();
        elsewhere.metadata.namespace = Some("default".into());
        assert!(go_with(&elsewhere, None, protected()).failure.is_none());
    }
    // The legacy key's name, and names of generated keys and identities.
    for name in [
        "sealed-secrets-key",
        "sealed-secrets-keyab12c",
        "sealed-secrets-key-age-x",
    ] {
        let mut s = in_controller_namespace(ss());
        s.metadata.name = Some(name.into());
        let p = go_with(&s, None, protected());
        assert_eq!(p.failure.unwrap().0, Failure::KeySecret, "{name}");
    }
    // An existing key Secret is never replaced, even if someone marked it managed.
    let s = in_controller_namespace(ss());
    let mut key = existing(
        &[("sealedsecrets.bitnami.com/managed", "true")],
        &[("sealedsecrets.bitnami.com/sealed-secrets-key", "active")],
        &[("tls.key", b"...")],
    );
    key.metadata.namespace = Some("kube-system".into());
    let p = go_with(&s, Some(&key), protected());
    assert_eq!(p.write, Write::Nothing);
    assert_eq!(p.failure.unwrap().0, Failure::KeySecret);
    // Any other Secret in the controller namespace is made as usual (this one is sealed for
    // `default`, so it then fails to decrypt, as it should, not as a key Secret).
    let (f, _) = go_with(&s, None, protected()).failure.unwrap();
    assert_eq!(f, Failure::Unseal);
}

#[test]
fn an_object_over_a_bound_fails_with_the_bound_named_and_is_not_retried() {
    let mut s = ss();
    for i in 0..300 {
        s.spec
            .encrypted_data
            .insert(format!("k{i}"), FOO.to_string());
    }
    let p = go(&s, None);
    let (f, msg) = p.failure.clone().unwrap();
    assert_eq!(f, Failure::Limit);
    assert!(msg.contains("over the limit of 256"), "{msg}");
    assert!(p.keys_used.is_empty());
    assert!(!f.retry());
    assert_eq!(p.event.reason, "ErrUnsealFailed");
    let c = &p.status.unwrap().conditions.unwrap()[0];
    assert_eq!(c.reason.as_deref(), Some("LimitExceeded"));
    assert_eq!(c.message.as_deref(), Some(msg.as_str()));
}

#[test]
fn template_errors_in_status_and_events_never_carry_values() {
    let mut s = ss();
    s.spec.template.data = map(&[("x", "{{ index . .foo }}"), ("y", "{{ printf .foo }}")]);
    let p = go(&s, None);
    let (_, msg) = p.failure.clone().unwrap();
    assert!(!msg.contains("supersecret"), "{msg}");
    assert!(!p.event.message.contains("supersecret"));
    let status = serde_json::to_string(&p.status).unwrap();
    assert!(!status.contains("supersecret"), "{status}");
    // Hostile sizes are errors, not aborts.
    s.spec.template.data = map(&[("x", "{{ repeat 9223372036854775807 .foo }}")]);
    let (_, msg) = go(&s, None).failure.unwrap();
    assert!(
        msg.contains("repeat: the result would exceed the limit"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// A write the API refused (plan_write_failure)

/// The details of an `Invalid` answer about the Secret `mysecret`, with one field cause.
fn details(reason: &str, message: &str, field: &str) -> kube::core::response::StatusDetails {
    kube::core::response::StatusDetails {
        name: "mysecret".into(),
        group: String::new(),
        kind: "secrets".into(),
        uid: String::new(),
        causes: vec![kube::core::response::StatusCause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }],
        retry_after_seconds: 0,
    }
}

/// What the API server answers to new data for an immutable Secret (apimachinery's
/// `NewInvalid` over `field.Forbidden(data, …)`).
fn immutable_refusal() -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        status: Some(kube::core::response::StatusSummary::Failure),
        code: 422,
        message: "Secret \"mysecret\" is invalid: data: Forbidden: field is immutable when `immutable` is set".into(),
        metadata: None,
        reason: "Invalid".into(),
        details: Some(details(
            "FieldValueForbidden",
            "Forbidden: field is immutable when `immutable` is set",
            "data",
        )),
    }))
}

fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
    kube::Error::Api(Box::new(
        kube::core::Status::failure(message, reason).with_code(code),
    ))
}

fn refused(error: &kube::Error) -> Plan {
    let mut s = ss();
    s.metadata.generation = Some(3);
    plan_write_failure(&s, error, t(5), &PlanOptions::default())
}

fn condition(p: &Plan) -> SealedSecretCondition {
    let status = p
        .status
        .clone()
        .expect("a failed write is recorded in the status");
    assert_eq!(status.observed_generation, Some(3));
    status.conditions.unwrap().remove(0)
}

#[test]
fn an_immutable_refusal_is_the_immutable_failure_final_and_counted_once() {
    let p = refused(&immutable_refusal());
    assert_eq!(p.write, Write::Nothing);
    let (f, msg) = p.failure.clone().unwrap();
    assert_eq!(
        f,
        Failure::Immutable,
        "the same failure as the planner's own check"
    );
    assert!(!f.retry(), "final, as Bitnami");
    assert_eq!(
        msg,
        "Error updating default/mysecret: the target Secret is immutable. Once a Secret is marked as immutable, it is not possible to revert this change nor to mutate the contents of the data field. You can only delete and recreate the Secret."
    );
    assert_eq!(p.event.type_, "Warning");
    assert_eq!(p.event.reason, "ErrUpdateFailed");
    assert_eq!(p.event.message, msg);
    let c = condition(&p);
    assert_eq!(c.status, "False");
    assert_eq!(c.reason.as_deref(), Some("SecretImmutable"));
    assert_eq!(c.message.as_deref(), Some(msg.as_str()));
    // One failure, so one count of unseal_errors_total{reason="update"}.
    assert_eq!(
        crate::metrics::UnsealErrorReason::from(f).as_str(),
        "update"
    );
}

#[test]
fn other_refusals_are_write_failures_retried_with_the_apis_message() {
    let conflict = api_error(
        409,
        "Conflict",
        "Operation cannot be fulfilled on secrets \"mysecret\": the object has been modified; please apply your changes to the latest version and try again",
    );
    let exists = api_error(409, "AlreadyExists", "secrets \"mysecret\" already exists");
    let forbidden = api_error(
        403,
        "Forbidden",
        "secrets \"mysecret\" is forbidden: User \"system:serviceaccount:kube-system:sealed-secrets\" cannot update resource \"secrets\" in API group \"\" in the namespace \"default\"",
    );
    // The Secret's type is immutable too, but that is not the immutable-Secret rule.
    let type_changed = kube::Error::Api(Box::new(
        kube::core::Status::failure(
            "Secret \"mysecret\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable",
            "Invalid",
        )
        .with_code(422)
        .with_details(details(
            "FieldValueInvalid",
            "Invalid value: \"kubernetes.io/tls\": field is immutable",
            "type",
        )),
    ));
    let unavailable = api_error(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
    );
    for (error, message) in [
        (&conflict, "Operation cannot be fulfilled on secrets \"mysecret\": the object has been modified; please apply your changes to the latest version and try again"),
        (&exists, "secrets \"mysecret\" already exists"),
        (&forbidden, "secrets \"mysecret\" is forbidden: User \"system:serviceaccount:kube-system:sealed-secrets\" cannot update resource \"secrets\" in API group \"\" in the namespace \"default\""),
        (&type_changed, "Secret \"mysecret\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
        (&unavailable, "the server is currently unable to handle the request"),
    ] {
        let p = refused(error);
        assert_eq!(p.write, Write::Nothing);
        let (f, msg) = p.failure.clone().unwrap();
        assert_eq!(f, Failure::Write, "{message}");
        assert!(f.retry(), "{message}");
        assert_eq!(msg, message, "the API's message, as Bitnami's err.Error()");
        assert_eq!(p.event.type_, "Warning");
        assert_eq!(p.event.reason, "ErrUpdateFailed");
        assert_eq!(p.event.message, message);
        let c = condition(&p);
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("UpdateFailed"));
        assert_eq!(c.message.as_deref(), Some(message));
        assert_eq!(crate::metrics::UnsealErrorReason::from(f).as_str(), "update");
    }
}

#[test]
fn a_write_without_an_answer_is_a_write_failure_with_the_clients_error() {
    // No Status from the API server (the connection failed): the client's own error.
    let error = kube::Error::LinesCodecMaxLineLengthExceeded;
    let p = refused(&error);
    let (f, msg) = p.failure.clone().unwrap();
    assert_eq!(f, Failure::Write);
    assert!(f.retry());
    assert_eq!(msg, error.to_string());
    assert_eq!(condition(&p).reason.as_deref(), Some("UpdateFailed"));
}

#[test]
fn a_refused_write_with_status_updates_off_writes_no_status() {
    let opts = PlanOptions {
        update_status: false,
        ..Default::default()
    };
    let p = plan_write_failure(&ss(), &immutable_refusal(), t(0), &opts);
    assert_eq!(p.status, None);
    assert_eq!(p.failure.unwrap().0, Failure::Immutable);
}
