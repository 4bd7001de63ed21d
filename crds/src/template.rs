//! Rendering of `spec.template.data` (placeholder: see `render_all`).

use std::collections::BTreeMap;

use kseal_crypto::SecretBytes;

use crate::Error;

/// Renders every template in `templates` over the decrypted items.
pub fn render_all(
    templates: &BTreeMap<String, String>,
    _items: &BTreeMap<String, SecretBytes>,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let keys: Vec<&str> = templates.keys().map(String::as_str).collect();
    Err(Error::Template(format!("spec.template.data is not supported yet ({})", keys.join(", "))))
}
