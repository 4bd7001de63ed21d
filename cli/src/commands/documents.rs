//! Reading streams of Kubernetes documents (YAML with `---`, or concatenated JSON objects) and
//! writing them back in kubeseal's layout.

use anyhow::{anyhow, bail, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::Format;

/// One non-empty document of a stream, as a JSON value, with its 1-based position.
pub struct Doc {
    pub index: usize,
    pub value: Value,
}

/// Documents may be Secrets with plaintext: `Debug` shows only the position.
impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Doc({}, <redacted>)", self.index)
    }
}

/// True when the stream is JSON (its first non-blank character is `{` or `[`).
pub fn is_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

/// Splits a YAML or JSON stream into documents; empty documents are skipped.
pub fn parse_stream(bytes: &[u8], source: &str) -> Result<Vec<Doc>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| anyhow!("{source} is not valid UTF-8 (byte {})", e.valid_up_to()))?;
    let mut docs = Vec::new();
    if is_json(bytes) {
        for (i, v) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let value = v.map_err(|e| {
                anyhow!(
                    "invalid JSON in {source} at line {} column {}: {}",
                    e.line(),
                    e.column(),
                    serde_message(&strip_location(&e.to_string()))
                )
            })?;
            docs.push(Doc {
                index: i + 1,
                value,
            });
        }
    } else {
        for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(de).map_err(|e| match e.location() {
                Some(l) => anyhow!(
                    "invalid YAML in {source} at line {} column {}: {}",
                    l.line(),
                    l.column(),
                    serde_message(&strip_location(&e.to_string()))
                ),
                None => anyhow!(
                    "invalid YAML in {source}: {}",
                    serde_message(&e.to_string())
                ),
            })?;
            if !value.is_null() {
                docs.push(Doc {
                    index: i + 1,
                    value,
                });
            }
        }
    }
    Ok(docs)
}

use kseal_sealing::redact::{serde_message, strip_location};

/// Checks `kind`/`apiVersion` (when present, or always with `require_type_meta`) and converts a
/// document into `T`.
pub fn typed<T: DeserializeOwned>(
    doc: &Doc,
    source: &str,
    kind: &str,
    api_version: &str,
    require_type_meta: bool,
) -> Result<T> {
    check_type(doc, source, kind, api_version, require_type_meta)?;
    // The error names the field, never the value (a Secret's data is plaintext).
    kseal_sealing::redact::from_value(doc.value.clone()).map_err(|e| {
        anyhow!(
            "document {} of {source} is not a valid {kind}: {e}",
            doc.index
        )
    })
}

/// Checks that a document is an object of the expected kind.
pub fn check_type(
    doc: &Doc,
    source: &str,
    kind: &str,
    api_version: &str,
    require_type_meta: bool,
) -> Result<()> {
    let got_kind = doc.value.get("kind").and_then(Value::as_str);
    let got_api = doc.value.get("apiVersion").and_then(Value::as_str);
    if !doc.value.is_object() {
        bail!("document {} of {source} is not an object", doc.index);
    }
    if require_type_meta && (got_kind.is_none() || got_api.is_none()) {
        bail!(
            "document {} of {source} has no apiVersion and kind (expected {api_version} {kind})",
            doc.index
        );
    }
    if let Some(k) = got_kind.filter(|k| *k != kind) {
        bail!("document {} of {source} is a {k}, not a {kind}", doc.index);
    }
    if let Some(a) = got_api.filter(|a| *a != api_version) {
        bail!(
            "document {} of {source} has apiVersion {a}, expected {api_version}",
            doc.index
        );
    }
    Ok(())
}

/// Renders objects one after another as kubeseal does: indented JSON objects each followed by a
/// newline, or YAML documents each starting with `---`.
pub fn render<T: Serialize>(items: &[T], format: Format) -> Result<String> {
    let mut out = String::new();
    for item in items {
        match format {
            Format::Json => {
                out.push_str(&kseal_gocompat::to_go_json(item, true)?);
                out.push('\n');
            }
            Format::Yaml => {
                out.push_str("---\n");
                out.push_str(&kseal_gocompat::to_k8s_yaml(item)?);
            }
        }
    }
    Ok(out)
}
