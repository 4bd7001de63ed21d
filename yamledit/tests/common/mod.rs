//! Helpers shared by the integration tests.
#![allow(dead_code)] // Each test binary uses a different subset.

use kseal_yamledit::{documents, set_strings, Edit};
use pretty_assertions::assert_eq;
use serde::Deserialize;
use serde_yaml::Value;

/// Every document of `text`, as serde_yaml reads it.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("serde_yaml: {e}\n{text}")))
        .collect()
}

/// Sets `path` to the string `new` in `value` the way `set_strings` should:
/// missing or null parents become mappings, new keys go last.
pub fn set_path(value: &mut Value, path: &[String], new: &str) {
    let Some((first, rest)) = path.split_first() else {
        *value = Value::String(new.to_owned());
        return;
    };
    if value.is_null() {
        *value = Value::Mapping(serde_yaml::Mapping::new());
    }
    let map = value.as_mapping_mut().expect("a mapping on the path");
    let child = map
        .entry(Value::String(first.clone()))
        .or_insert(Value::Null);
    set_path(child, rest, new);
}

/// Applies `edits` and checks: the result is byte-exactly `expected`; it
/// parses with serde_yaml to the original documents with the edits applied;
/// the document count is unchanged.  Returns the output.
pub fn check(text: &str, doc: usize, edits: &[Edit], expected: &str) -> String {
    let out = set_strings(text, doc, edits).unwrap_or_else(|e| panic!("set_strings failed: {e}"));
    assert_eq!(out, expected, "golden text");
    check_semantics(text, doc, edits, &out);
    out
}

/// The semantic half of [`check`].
pub fn check_semantics(text: &str, doc: usize, edits: &[Edit], out: &str) {
    let mut expected = yaml_docs(text);
    assert_eq!(
        expected.len(),
        documents(text).unwrap().len(),
        "fixture: doc count of both parsers"
    );
    for edit in edits {
        set_path(&mut expected[doc], &edit.path, &edit.value);
    }
    assert_eq!(yaml_docs(out), expected, "semantics of the output");
    assert_eq!(
        documents(out).unwrap().len(),
        documents(text).unwrap().len()
    );
}

/// Shorthand for an edit from a dotted path (keys here hold no dots).
pub fn e(path: &str, value: &str) -> Edit {
    Edit::new(path.split('.'), value)
}
