//! The admission decision, without a cluster: good objects admitted (with their warnings),
//! each kind of refusal named by item, and the checks that must come before any decryption.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kseal_crds::SealedSecret;
use kseal_crypto::{AgeIdentity, PrivateKey};
use kseal_sealing::seal::{seal_secret_with, SealOptions, Sealer};

use super::*;
use crate::keys::registry::{RegisteredAgeIdentity, RegisteredKey};

const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");
const CANARY: &str = "kseal-admission-canary-51f3";

fn key_2048() -> PrivateKey {
    kseal_crypto::keygen::generate(
        &mut rand::rngs::OsRng,
        &kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

struct Cluster {
    registry: KeyRegistry,
    rsa: Arc<PrivateKey>,
    age: Arc<AgeIdentity>,
}

/// A cluster with the Go test key (ordering time t(0)) and one age identity (t(10)).
fn cluster() -> Cluster {
    let rsa = Arc::new(PrivateKey::from_pem(GO_KEY).unwrap());
    let age = Arc::new(AgeIdentity::generate());
    let mut registry = KeyRegistry::default();
    registry.register(RegisteredKey {
        key: rsa.clone(),
        ordering_time: t(0),
        secret_name: None,
    });
    registry.register_age(RegisteredAgeIdentity {
        identity: age.clone(),
        ordering_time: t(10),
        secret_name: None,
    });
    Cluster { registry, rsa, age }
}

fn ctx(c: &Cluster) -> Context<'_> {
    Context {
        registry: &c.registry,
        cutoff: None,
        unseal: UnsealOptions {
            accept_deprecated_v1_data: true,
        },
        protected: None,
    }
}

fn secret(ns: &str, name: &str, items: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn seal(sealer: Sealer<'_>, ns: &str, name: &str) -> SealedSecret {
    seal_secret_with(
        &mut rand::rngs::OsRng,
        sealer,
        secret(ns, name, &[("password", CANARY), ("user", "admin")]),
        &SealOptions {
            default_namespace: "default",
            ..Default::default()
        },
    )
    .unwrap()
}

fn rsa_sealed(c: &Cluster, ns: &str, name: &str) -> SealedSecret {
    seal(Sealer::Bitnami(c.rsa.public_key()), ns, name)
}

fn refusal(d: &Decision) -> &str {
    let r = d.refusal.as_deref().expect("refused");
    assert!(!r.contains(CANARY), "a refusal holds the value: {r}");
    r
}

fn without_records(mut ss: SealedSecret) -> SealedSecret {
    if let Some(a) = ss.metadata.annotations.as_mut() {
        a.remove(kseal_crds::ANNOTATION_SEAL_RECORDS);
        a.remove(kseal_crds::ANNOTATION_SEALED_WITH);
    }
    ss
}

#[test]
fn a_good_rsa_and_a_good_age_sealed_secret_are_admitted_without_warnings() {
    let c = cluster();
    let mut ss = rsa_sealed(&c, "apps", "db");
    let d = decide(&mut ss, None, ctx(&c));
    assert_eq!(
        d,
        Decision {
            refusal: None,
            warnings: vec![],
            decrypted: true
        }
    );
    let recipients = [c.age.recipient().clone()];
    let mut ss = seal(Sealer::Age(&recipients), "apps", "db");
    let d = decide(&mut ss, None, ctx(&c));
    assert!(d.allowed() && d.warnings.is_empty(), "{d:?}");
    // The object comes back as it was (templates put back, nothing decrypted left in it).
    assert!(serde_json::to_string(&ss).unwrap().find(CANARY).is_none());
}

#[test]
fn another_clusters_key_is_refused_naming_every_item() {
    let c = cluster();
    let other = key_2048();
    let mut ss = seal(Sealer::Bitnami(other.public_key()), "apps", "db");
    let d = decide(&mut ss, None, ctx(&c));
    let r = refusal(&d);
    assert!(
        r.starts_with("SealedSecret apps/db refused by kseal: this cluster cannot open 2 items: "),
        "{r}"
    );
    assert!(r.contains("item \"password\": no key could decrypt secret (sealed for a key this cluster does not hold ("), "{r}");
    assert!(r.contains(other.fingerprint().as_str()), "{r}");
    assert!(r.contains("item \"user\""), "{r}");
    // The same for an age file sealed to a stranger's recipient.
    let stranger = [AgeIdentity::generate().recipient().clone()];
    let mut ss = seal(Sealer::Age(&stranger), "apps", "db");
    let r = refusal(&decide(&mut ss, None, ctx(&c))).to_string();
    assert!(r.contains("this cluster does not hold"), "{r}");
}

#[test]
fn moved_renamed_and_rescoped_objects_are_refused_with_where_they_were_sealed_for() {
    let c = cluster();
    let mut moved = rsa_sealed(&c, "prod", "db");
    moved.metadata.namespace = Some("dev".into());
    let r = refusal(&decide(&mut moved, None, ctx(&c))).to_string();
    assert!(
        r.contains("item \"password\": no key could decrypt secret (moved: sealed for namespace prod; seal it again for strict for dev/db)"),
        "{r}"
    );
    let mut renamed = rsa_sealed(&c, "prod", "db");
    renamed.metadata.name = Some("db2".into());
    let r = refusal(&decide(&mut renamed, None, ctx(&c))).to_string();
    assert!(r.contains("renamed: sealed for name db"), "{r}");
    let mut rescoped = rsa_sealed(&c, "prod", "db");
    rescoped
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            kseal_crypto::scope::ANNOTATION_CLUSTER_WIDE.into(),
            "true".into(),
        );
    let r = refusal(&decide(&mut rescoped, None, ctx(&c))).to_string();
    assert!(r.contains("scope changed"), "{r}");
    // An age item knows its label itself: unseal's message says what it must be sealed for.
    let recipients = [c.age.recipient().clone()];
    let mut moved = seal(Sealer::Age(&recipients), "prod", "db");
    moved.metadata.namespace = Some("dev".into());
    let r = refusal(&decide(&mut moved, None, ctx(&c))).to_string();
    assert!(
        r.contains("item \"password\": sealed for another name, namespace or scope, not for strict scope, label \"dev/db\""),
        "{r}"
    );
}

#[test]
fn without_a_seal_record_a_refusal_says_what_it_may_be_and_an_admission_warns() {
    let c = cluster();
    let mut moved = without_records(rsa_sealed(&c, "prod", "db"));
    moved.metadata.namespace = Some("dev".into());
    let r = refusal(&decide(&mut moved, None, ctx(&c))).to_string();
    assert!(
        r.contains("(sealed for another cluster's key, or for another name, namespace or scope than strict for dev/db; kseal verify tells which)"),
        "{r}"
    );
    let mut kubeseal_file = without_records(rsa_sealed(&c, "apps", "db"));
    let d = decide(&mut kubeseal_file, None, ctx(&c));
    assert!(d.allowed(), "{d:?}");
    assert_eq!(
        d.warnings,
        ["items \"password\", \"user\" have no seal record (sealed by kubeseal?): kseal verify cannot check them offline"]
    );
}

#[test]
fn a_key_older_than_the_cutoff_is_a_warning() {
    let c = cluster();
    let mut ss = rsa_sealed(&c, "apps", "db");
    let mut cx = ctx(&c);
    cx.cutoff = Some(t(5)); // after the RSA key, before the age identity
    let d = decide(&mut ss, None, cx);
    assert!(d.allowed());
    assert_eq!(d.warnings.len(), 1, "{d:?}");
    assert!(d.warnings[0]
        .starts_with("sealed with a key older than the controller's --key-cutoff-time (SHA256:"));
    let recipients = [c.age.recipient().clone()];
    let mut ss = seal(Sealer::Age(&recipients), "apps", "db");
    assert!(decide(&mut ss, None, cx).warnings.is_empty());
}

#[test]
fn templates_are_checked_without_values_and_before_any_decryption() {
    let c = cluster();
    let mut ss = rsa_sealed(&c, "apps", "db");
    ss.spec.template.data = Some(BTreeMap::from([(
        "url".to_string(),
        "{{ if .password }}x{{ end }}".to_string(),
    )]));
    let d = decide(&mut ss, None, ctx(&c));
    let r = refusal(&d);
    assert!(
        r.starts_with("SealedSecret apps/db refused by kseal: invalid template data[\"url\"]: "),
        "{r}"
    );
    assert!(
        !d.decrypted,
        "a bad template is refused before any private-key work"
    );
    // A supported template over the items is admitted, and is never rendered: one that would
    // fail on the value (b64dec of a non-base64 password) passes, so no answer depends on it.
    ss.spec.template.data = Some(BTreeMap::from([(
        "url".to_string(),
        "postgres://{{ .user }}:{{ b64dec .password }}@db".to_string(),
    )]));
    let d = decide(&mut ss, None, ctx(&c));
    assert!(d.allowed(), "{d:?}");
    assert_eq!(
        ss.spec.template.data.as_ref().unwrap().len(),
        1,
        "the templates are put back"
    );
}

#[test]
fn the_bounds_come_first() {
    let c = cluster();
    let mut ss = rsa_sealed(&c, "apps", "db");
    for i in 0..kseal_sealing::limits::MAX_ITEMS {
        ss.spec
            .encrypted_data
            .insert(format!("k{i}"), "AgA=".into());
    }
    let d = decide(&mut ss, None, ctx(&c));
    assert_eq!(
        refusal(&d),
        "SealedSecret apps/db refused by kseal: spec.encryptedData and spec.template.data hold 258 items, over the limit of 256"
    );
    assert!(!d.decrypted);
    let mut ss = rsa_sealed(&c, "apps", "db");
    ss.spec.encrypted_data.insert(
        "big".into(),
        "A".repeat(kseal_sealing::limits::MAX_SEALED_VALUE_BYTES + 1),
    );
    assert!(refusal(&decide(&mut ss, None, ctx(&c))).contains("spec.encryptedData[\"big\"]"));
}

#[test]
fn a_malformed_value_is_named() {
    let c = cluster();
    let mut ss = rsa_sealed(&c, "apps", "db");
    ss.spec.encrypted_data.insert("user".into(), "!!!".into());
    let r = refusal(&decide(&mut ss, None, ctx(&c))).to_string();
    assert!(
        r.contains(
            "this cluster cannot open 1 item: item \"user\": illegal base64 data at input byte 0"
        ),
        "{r}"
    );
}

#[test]
fn the_controllers_own_key_secrets_are_protected() {
    let c = cluster();
    let protected = ProtectedKeys {
        namespace: "kube-system".into(),
        key_prefix: "sealed-secrets-key".into(),
    };
    let mut ss = rsa_sealed(&c, "kube-system", "sealed-secrets-keyabc");
    let mut cx = ctx(&c);
    cx.protected = Some(&protected);
    let d = decide(&mut ss, None, cx);
    assert!(refusal(&d).contains("are reserved for its keys"), "{d:?}");
    assert!(!d.decrypted);
}

#[test]
fn updates_that_cannot_change_the_items_and_deletions_need_no_work() {
    let c = cluster();
    let other = key_2048();
    let old = seal(Sealer::Bitnami(other.public_key()), "apps", "db");
    // A label added to an object this cluster cannot open (say, one admitted while the
    // controller was down): admitted, nothing decrypted.
    let mut new = old.clone();
    new.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
    let d = decide(&mut new, Some(&old), ctx(&c));
    assert!(d.allowed() && !d.decrypted, "{d:?}");
    // A finalizer removed while it is being deleted.
    let mut deleting = old.clone();
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    assert!(decide(&mut deleting, Some(&old), ctx(&c)).allowed());
    // A changed spec is checked, and so is a rename.
    let mut changed = old.clone();
    changed.spec.template.type_ = Some("Opaque".into());
    assert!(!decide(&mut changed, Some(&old), ctx(&c)).allowed());
    assert!(needs_check(&old, None));
    let good = rsa_sealed(&c, "apps", "db");
    let mut moved = good.clone();
    moved.metadata.namespace = Some("dev".into());
    assert!(needs_check(&moved, Some(&good)));
}

#[test]
fn long_warnings_are_cut_and_item_lists_shortened() {
    let names: Vec<String> = (0..12).map(|i| format!("item-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        list_items(&refs),
        "items \"item-0\", \"item-1\", \"item-2\", \"item-3\", \"item-4\", … (12 in all)"
    );
    let cut = truncate("x".repeat(400), MAX_WARNING_CHARS);
    assert_eq!(cut.chars().count(), MAX_WARNING_CHARS);
}
