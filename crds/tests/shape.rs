//! SealedSecrets serialize exactly as kubeseal prints them (docs/compatibility.md, “kubeseal's output document”) and read every form
//! found in the wild.

use kseal_crds::SealedSecret;
use kseal_gocompat::{to_go_json, to_k8s_yaml};
use pretty_assertions::assert_eq;

const KUBESEAL_JSON: &str = r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "mysecret",
    "namespace": "default",
    "annotations": {
      "sealedsecrets.bitnami.com/namespace-wide": "true"
    }
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "mysecret",
        "namespace": "default",
        "labels": {
          "app": "\u003cweb\u003e"
        },
        "annotations": {
          "sealedsecrets.bitnami.com/namespace-wide": "true"
        }
      },
      "type": "Opaque",
      "immutable": true
    },
    "encryptedData": {
      "foo": "AgBy3i4OJSWK+PiTySYZZA=="
    }
  }
}"#;

#[test]
fn json_round_trips_byte_for_byte_in_go_order() {
    let ss: SealedSecret = serde_json::from_str(KUBESEAL_JSON).unwrap();
    assert_eq!(to_go_json(&ss, true).unwrap(), KUBESEAL_JSON);
}

#[test]
fn yaml_is_sorted_like_sigs_k8s_io_yaml() {
    let ss: SealedSecret = serde_json::from_str(KUBESEAL_JSON).unwrap();
    let expected = "apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  annotations:
    sealedsecrets.bitnami.com/namespace-wide: \"true\"
  name: mysecret
  namespace: default
spec:
  encryptedData:
    foo: AgBy3i4OJSWK+PiTySYZZA==
  template:
    immutable: true
    metadata:
      annotations:
        sealedsecrets.bitnami.com/namespace-wide: \"true\"
      labels:
        app: <web>
      name: mysecret
      namespace: default
    type: Opaque
";
    assert_eq!(to_k8s_yaml(&ss).unwrap(), expected);
}

#[test]
fn older_files_with_creation_timestamp_null_still_read() {
    let old = "apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  creationTimestamp: null
  name: mysecret
  namespace: default
spec:
  encryptedData:
    foo: AgA=
    notastring: 12
  template:
    data: null
    metadata:
      creationTimestamp: null
      name: mysecret
      namespace: default
";
    let ss: SealedSecret = serde_yaml::from_str(old).unwrap();
    assert_eq!(ss.metadata.name.as_deref(), Some("mysecret"));
    assert!(ss.metadata.creation_timestamp.is_none());
    // Values that are not strings are dropped, as Bitnami's tolerant unmarshaller does.
    assert_eq!(ss.spec.encrypted_data.len(), 1);
    assert!(ss.spec.template.data.is_none());
    // Written back without creationTimestamp (kubeseal >= 0.32).
    assert!(!to_k8s_yaml(&ss).unwrap().contains("creationTimestamp"));
}

#[test]
fn empty_template_and_data_are_still_written() {
    let ss: SealedSecret = serde_json::from_str(
        r#"{"metadata":{"name":"a"},"spec":{"template":null,"encryptedData":null}}"#,
    )
    .unwrap();
    assert_eq!(
        to_go_json(&ss, false).unwrap(),
        r#"{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{"name":"a"},"spec":{"template":{"metadata":{}},"encryptedData":{}}}"#
    );
}

#[test]
fn status_and_deprecated_data_read() {
    let ss: SealedSecret = serde_json::from_str(
        r#"{"metadata":{"name":"a","generation":2},"spec":{"data":"AQID","encryptedData":{}},
            "status":{"observedGeneration":2,"conditions":[{"type":"Synced","status":"False","message":"boom",
            "lastUpdateTime":"2026-11-21T10:00:00Z","lastTransitionTime":"2026-11-21T10:00:00Z"}]}}"#,
    )
    .unwrap();
    assert_eq!(ss.spec.data.as_deref(), Some("AQID"));
    let st = ss.status.as_ref().unwrap();
    assert_eq!(st.observed_generation, Some(2));
    assert_eq!(
        st.conditions.as_ref().unwrap()[0].message.as_deref(),
        Some("boom")
    );
    let json = to_go_json(&ss, false).unwrap();
    assert!(json.ends_with(r#""status":{"observedGeneration":2,"conditions":[{"type":"Synced","status":"False","lastUpdateTime":"2026-11-21T10:00:00Z","lastTransitionTime":"2026-11-21T10:00:00Z","message":"boom"}]}}"#), "{json}");
}
