//! Bounds on what one SealedSecret may hold, checked before any decryption or rendering.
//!
//! Any tenant who may create a SealedSecret chooses these sizes, and the controller spends a
//! private-key operation per item (per key it could be, for items without a sealing-key hint) and
//! renders every template, so each count and size has a bound. They are generous for real
//! Secrets (a Secret is at most 1 MiB in all) and listed in the README's "Limits" section; an
//! object over a bound gets a status message naming the bound and is not retried.

use crate::Error;
use kseal_crds::SealedSecret;

/// Items per SealedSecret: `spec.encryptedData` and `spec.template.data` entries together.
pub const MAX_ITEMS: usize = 256;

/// Length of one item name (Kubernetes allows 253 characters for a Secret key).
pub const MAX_ITEM_NAME_BYTES: usize = 253;

/// Length of one sealed value as stored (base64), and of the deprecated `spec.data`. A Secret
/// holds at most 1 MiB, which seals to about 1.34 MiB of base64.
pub const MAX_SEALED_VALUE_BYTES: usize = 1_572_864;

/// Length of one `spec.template.data` source.
pub const MAX_TEMPLATE_SOURCE_BYTES: usize = 64 * 1024;

/// How deep parentheses may nest in a template action.
pub const MAX_TEMPLATE_DEPTH: usize = 32;

/// Bytes of values the templates of one SealedSecret may produce in all, intermediate results
/// included (each function call costs at least 16).
pub const MAX_TEMPLATE_WORK_BYTES: usize = 16 * 1024 * 1024;

/// Size of one rendered value, and of all rendered template data of one SealedSecret together.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// Checks the counts and sizes above; the error names the field and the bound, never a value.
pub fn check(ss: &SealedSecret) -> Result<(), Error> {
    let spec = &ss.spec;
    let templates = spec.template.data.as_ref();
    let items = spec.encrypted_data.len() + templates.map_or(0, |t| t.len());
    if items > MAX_ITEMS {
        return Err(Error::Limit(format!(
            "spec.encryptedData and spec.template.data hold {items} items, over the limit of {MAX_ITEMS}"
        )));
    }
    let names = spec
        .encrypted_data
        .keys()
        .map(|k| ("spec.encryptedData", k))
        .chain(
            templates
                .into_iter()
                .flatten()
                .map(|(k, _)| ("spec.template.data", k)),
        );
    for (field, name) in names {
        if name.len() > MAX_ITEM_NAME_BYTES {
            return Err(Error::Limit(format!(
                "an item name in {field} is {} bytes long, over the limit of {MAX_ITEM_NAME_BYTES}",
                name.len()
            )));
        }
    }
    for (name, value) in &spec.encrypted_data {
        if value.len() > MAX_SEALED_VALUE_BYTES {
            return Err(Error::Limit(format!(
                "spec.encryptedData[{name:?}] is {} bytes long, over the limit of {MAX_SEALED_VALUE_BYTES}",
                value.len()
            )));
        }
    }
    if let Some(v1) = &spec.data {
        if v1.len() > MAX_SEALED_VALUE_BYTES {
            return Err(Error::Limit(format!(
                "spec.data is {} bytes long, over the limit of {MAX_SEALED_VALUE_BYTES}",
                v1.len()
            )));
        }
    }
    for (name, src) in templates.into_iter().flatten() {
        if src.len() > MAX_TEMPLATE_SOURCE_BYTES {
            return Err(Error::Limit(format!(
                "spec.template.data[{name:?}] is {} bytes long, over the limit of {MAX_TEMPLATE_SOURCE_BYTES}",
                src.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_are_bounded() {
        let mut ss = SealedSecret::default();
        for i in 0..MAX_ITEMS {
            ss.spec
                .encrypted_data
                .insert(format!("k{i}"), "AgA=".into());
        }
        assert!(check(&ss).is_ok());
        ss.spec
            .template
            .data
            .get_or_insert_with(Default::default)
            .insert("t".into(), "x".into());
        assert_eq!(
            check(&ss).unwrap_err().to_string(),
            "spec.encryptedData and spec.template.data hold 257 items, over the limit of 256"
        );
        let mut ss = SealedSecret::default();
        ss.spec
            .encrypted_data
            .insert("big".into(), "A".repeat(MAX_SEALED_VALUE_BYTES + 1));
        assert!(check(&ss)
            .unwrap_err()
            .to_string()
            .contains("spec.encryptedData[\"big\"]"));
        let mut ss = SealedSecret::default();
        ss.spec
            .encrypted_data
            .insert("n".repeat(300), "AgA=".into());
        assert!(check(&ss).unwrap_err().to_string().contains("item name"));
    }
}
