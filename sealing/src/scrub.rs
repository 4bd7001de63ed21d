//! Wiping plaintext and key material held in k8s-openapi types before they are freed. Those
//! types cannot zeroize on drop, so every path that held a decrypted value or a private key in
//! a `Secret` (or its data maps) calls one of these; the one home for it in the CLI and the
//! controller.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use zeroize::Zeroize as _;

/// Overwrites and drops a Secret's `data` and `stringData` (the rest is public).
pub fn secret(secret: &mut Secret) {
    maps(
        secret.data.take().unwrap_or_default(),
        secret.string_data.take().unwrap_or_default(),
    );
}

/// Overwrites and drops every Secret's `data` and `stringData`.
pub fn secrets(secrets: &mut [Secret]) {
    secrets.iter_mut().for_each(secret);
}

/// Overwrites the values of `data` and `stringData` maps taken out of a Secret, then drops
/// them.
pub fn maps(mut data: BTreeMap<String, ByteString>, mut string_data: BTreeMap<String, String>) {
    for v in data.values_mut() {
        v.0.zeroize();
    }
    for v in string_data.values_mut() {
        v.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_both_maps_out() {
        let mut s = Secret {
            data: Some(BTreeMap::from([("a".into(), ByteString(b"x".to_vec()))])),
            string_data: Some(BTreeMap::from([("b".into(), "y".into())])),
            ..Default::default()
        };
        secrets(std::slice::from_mut(&mut s));
        assert!(s.data.is_none() && s.string_data.is_none());
    }
}
