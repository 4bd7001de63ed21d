//! The `sealedsecrets.bitnami.com` CustomResourceDefinition, built in code.
//!
//! It matches Bitnami's Helm CRD (`helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml`):
//! same names, scope, printer columns, status subresource and schema, so objects that validate
//! under Bitnami's CRD validate under ours and an install can be swapped in place. The committed
//! copy is `crds/sealedsecret-crd.yaml`; `cargo run -p kseal-crds --bin crdgen` regenerates it
//! and the `committed_crd_is_current` test fails when it is stale.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

/// The CRD object.
pub fn crd() -> CustomResourceDefinition {
    let string = json!({"type": "string"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let value = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "sealedsecrets.bitnami.com",
            "annotations": {"controller-gen.kubebuilder.io/version": "v0.16.5"},
        },
        "spec": {
            "group": "bitnami.com",
            "names": {
                "kind": "SealedSecret",
                "listKind": "SealedSecretList",
                "plural": "sealedsecrets",
                "singular": "sealedsecret",
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"jsonPath": ".status.conditions[0].message", "name": "Status", "type": "string"},
                    {"jsonPath": ".status.conditions[0].status", "name": "Synced", "type": "string"},
                    {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"},
                ],
                "schema": {"openAPIV3Schema": {
                    "description": "SealedSecret is the K8s representation of a \"sealed Secret\" - a\nregular k8s Secret that has been sealed (encrypted) using the\ncontroller's key.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object.\nServers should convert recognized schemas to the latest internal value, and\nmay reject unrecognized values.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"},
                        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents.\nServers may infer this from the endpoint the client submits requests to.\nCannot be updated.\nIn CamelCase.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
                        "metadata": {"type": "object"},
                        "spec": {
                            "description": "SealedSecretSpec is the specification of a SealedSecret.",
                            "type": "object",
                            "required": ["encryptedData"],
                            "properties": {
                                "data": {
                                    "description": "Data is deprecated and will be removed eventually. Use per-value EncryptedData instead.",
                                    "type": "string",
                                    "format": "byte",
                                },
                                "encryptedData": {
                                    "type": "object",
                                    "additionalProperties": string,
                                    "x-kubernetes-preserve-unknown-fields": true,
                                },
                                "template": {
                                    "description": "Template defines the structure of the Secret that will be\ncreated from this sealed secret.",
                                    "type": "object",
                                    "properties": {
                                        "data": {
                                            "description": "Keys that should be templated using decrypted data.",
                                            "type": "object",
                                            "nullable": true,
                                            "additionalProperties": string,
                                        },
                                        "immutable": {
                                            "description": "Immutable, if set to true, ensures that data stored in the Secret cannot\nbe updated (only object metadata can be modified).\nIf not set to true, the field can be modified at any time.\nDefaulted to nil.",
                                            "type": "boolean",
                                        },
                                        "metadata": {
                                            "description": "Standard object's metadata.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                                            "type": "object",
                                            "nullable": true,
                                            "x-kubernetes-preserve-unknown-fields": true,
                                            "properties": {
                                                "annotations": string_map,
                                                "finalizers": {"type": "array", "items": string},
                                                "labels": string_map,
                                                "name": string,
                                                "namespace": string,
                                            },
                                        },
                                        "type": {
                                            "description": "Used to facilitate programmatic handling of secret data.\nMore info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
                                            "type": "string",
                                        },
                                    },
                                },
                            },
                        },
                        "status": {
                            "description": "SealedSecretStatus is the most recently observed status of the SealedSecret.",
                            "type": "object",
                            "properties": {
                                "conditions": {
                                    "description": "Represents the latest available observations of a sealed secret's current state.",
                                    "type": "array",
                                    "items": {
                                        "description": "SealedSecretCondition describes the state of a sealed secret at a certain point.",
                                        "type": "object",
                                        "required": ["status", "type"],
                                        "properties": {
                                            "lastTransitionTime": {"description": "Last time the condition transitioned from one status to another.", "type": "string", "format": "date-time"},
                                            "lastUpdateTime": {"description": "The last time this condition was updated.", "type": "string", "format": "date-time"},
                                            "message": {"description": "A human readable message indicating details about the transition.", "type": "string"},
                                            "reason": {"description": "The reason for the condition's last transition.", "type": "string"},
                                            "status": {"description": "Status of the condition for a sealed secret.\nValid values for \"Synced\": \"True\", \"False\", or \"Unknown\".", "type": "string"},
                                            "type": {"description": "Type of condition for a sealed secret.\nValid value: \"Synced\"", "type": "string"},
                                        },
                                    },
                                },
                                "observedGeneration": {
                                    "description": "ObservedGeneration reflects the generation most recently observed by the sealed-secrets controller.",
                                    "type": "integer",
                                    "format": "int64",
                                },
                            },
                        },
                    },
                }},
            }],
        },
    });
    serde_json::from_value(value).expect("the CRD literal is a valid CustomResourceDefinition")
}

/// The CRD as YAML, the form committed under `crds/`.
pub fn crd_yaml() -> String {
    let mut out =
        String::from("# Generated by `cargo run -p kseal-crds --bin crdgen`; do not edit.\n---\n");
    out.push_str(&kseal_gocompat::to_k8s_yaml(&crd()).expect("the CRD serializes"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_matches_bitnami() {
        let c = crd();
        assert_eq!(
            c.metadata.name.as_deref(),
            Some("sealedsecrets.bitnami.com")
        );
        assert_eq!(c.spec.scope, "Namespaced");
        assert_eq!(c.spec.names.list_kind.as_deref(), Some("SealedSecretList"));
        let v = &c.spec.versions[0];
        assert!(v.served && v.storage);
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(cols, ["Status", "Synced", "Age"]);
        assert!(v.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn committed_crd_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sealedsecret-crd.yaml");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let fresh = crd_yaml();
        if std::env::var_os("KSEAL_BLESS").is_some() {
            std::fs::write(path, &fresh).unwrap();
            return;
        }
        assert!(
            committed == fresh,
            "crds/sealedsecret-crd.yaml is stale: run `cargo run -p kseal-crds --bin crdgen > crds/sealedsecret-crd.yaml`"
        );
    }
}
