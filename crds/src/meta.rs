//! `ObjectMeta` in Go's field order.
//!
//! k8s-openapi serializes `ObjectMeta` fields alphabetically; Go's `metav1.ObjectMeta` prints
//! them in struct order (name, generateName, namespace, ...). kubeseal's JSON follows Go, so the
//! JSON we write does too. YAML output is sorted anyway (see `render`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ManagedFieldsEntry, ObjectMeta, OwnerReference,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// Serializes an `ObjectMeta` in Go order, leaving out empty fields (`omitempty`).
pub fn serialize<S: Serializer>(meta: &ObjectMeta, s: S) -> Result<S::Ok, S::Error> {
    GoObjectMeta(meta).serialize(s)
}

/// Serializes an optional `ObjectMeta`; `None` is written as `{}` (Go's zero struct).
pub fn serialize_opt<S: Serializer>(meta: &Option<ObjectMeta>, s: S) -> Result<S::Ok, S::Error> {
    match meta {
        Some(m) => GoObjectMeta(m).serialize(s),
        None => GoObjectMeta(&ObjectMeta::default()).serialize(s),
    }
}

/// Wrapper that gives an `ObjectMeta` Go's JSON field order.
#[derive(Debug)]
pub struct GoObjectMeta<'a>(pub &'a ObjectMeta);

impl Serialize for GoObjectMeta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(v) = m.name.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("name", v)?;
        }
        if let Some(v) = m.generate_name.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("generateName", v)?;
        }
        if let Some(v) = m.namespace.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("namespace", v)?;
        }
        if let Some(v) = m.self_link.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("selfLink", v)?;
        }
        if let Some(v) = m.uid.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("uid", v)?;
        }
        if let Some(v) = m.resource_version.as_deref().filter(|v| !v.is_empty()) {
            map.serialize_entry("resourceVersion", v)?;
        }
        if let Some(v) = m.generation.filter(|v| *v != 0) {
            map.serialize_entry("generation", &v)?;
        }
        if let Some(v) = &m.creation_timestamp {
            map.serialize_entry("creationTimestamp", v)?;
        }
        if let Some(v) = &m.deletion_timestamp {
            map.serialize_entry("deletionTimestamp", v)?;
        }
        if let Some(v) = m.deletion_grace_period_seconds {
            map.serialize_entry("deletionGracePeriodSeconds", &v)?;
        }
        if let Some(v) = m.labels.as_ref().filter(|v| !v.is_empty()) {
            map.serialize_entry("labels", v)?;
        }
        if let Some(v) = m.annotations.as_ref().filter(|v| !v.is_empty()) {
            map.serialize_entry("annotations", v)?;
        }
        if let Some(v) = m.owner_references.as_ref().filter(|v| !v.is_empty()) {
            let v: Vec<GoOwnerRef<'_>> = v.iter().map(GoOwnerRef).collect();
            map.serialize_entry("ownerReferences", &v)?;
        }
        if let Some(v) = m.finalizers.as_ref().filter(|v| !v.is_empty()) {
            map.serialize_entry("finalizers", v)?;
        }
        if let Some(v) = m.managed_fields.as_ref().filter(|v| !v.is_empty()) {
            let v: Vec<GoManagedFields<'_>> = v.iter().map(GoManagedFields).collect();
            map.serialize_entry("managedFields", &v)?;
        }
        map.end()
    }
}

struct GoOwnerRef<'a>(&'a OwnerReference);

impl Serialize for GoOwnerRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("apiVersion", &o.api_version)?;
        map.serialize_entry("kind", &o.kind)?;
        map.serialize_entry("name", &o.name)?;
        map.serialize_entry("uid", &o.uid)?;
        if let Some(v) = o.controller {
            map.serialize_entry("controller", &v)?;
        }
        if let Some(v) = o.block_owner_deletion {
            map.serialize_entry("blockOwnerDeletion", &v)?;
        }
        map.end()
    }
}

struct GoManagedFields<'a>(&'a ManagedFieldsEntry);

impl Serialize for GoManagedFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(v) = &e.manager {
            map.serialize_entry("manager", v)?;
        }
        if let Some(v) = &e.operation {
            map.serialize_entry("operation", v)?;
        }
        if let Some(v) = &e.api_version {
            map.serialize_entry("apiVersion", v)?;
        }
        if let Some(v) = &e.time {
            map.serialize_entry("time", v)?;
        }
        if let Some(v) = &e.fields_type {
            map.serialize_entry("fieldsType", v)?;
        }
        if let Some(v) = &e.fields_v1 {
            map.serialize_entry("fieldsV1", v)?;
        }
        if let Some(v) = &e.subresource {
            map.serialize_entry("subresource", v)?;
        }
        map.end()
    }
}
