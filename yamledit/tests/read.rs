//! The read side: documents, keys and values.

mod common;

use kseal_yamledit::{documents, get_string, map_keys, DocSpan, NodeKind, Stream};
use pretty_assertions::assert_eq;

const MULTI: &str = "\
# head
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
spec:
  encryptedData:
    b: AgB
    a: \"AgA\"
    n:
...
# between
---
- x
---
{\"kind\": \"Json\"}
";

#[test]
fn documents_are_located() {
    let docs = documents(MULTI).unwrap();
    let summary: Vec<(usize, bool, bool, NodeKind, bool)> = docs
        .iter()
        .map(|d: &DocSpan| (d.line, d.explicit_start, d.explicit_end, d.root, d.flow))
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, true, true, NodeKind::Mapping, false),
            (12, true, false, NodeKind::Sequence, false),
            (14, true, false, NodeKind::Mapping, true),
        ]
    );
    // Each range parses on its own as its document.
    let all = common::yaml_docs(MULTI);
    for (doc, value) in docs.iter().zip(&all) {
        let alone: serde_yaml::Value = serde_yaml::from_str(&MULTI[doc.range.clone()]).unwrap();
        assert_eq!(&alone, value);
    }
    assert!(MULTI[docs[0].range.clone()].starts_with("---\napiVersion"));
    assert!(MULTI[docs[0].range.clone()].ends_with("n:"));
    assert_eq!(&MULTI[docs[1].range.clone()], "---\n- x");
    assert_eq!(&MULTI[docs[2].range.clone()], "---\n{\"kind\": \"Json\"}");
}

#[test]
fn implicit_and_empty_documents() {
    let docs = documents("a: 1\n---\n").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].range, 0..4);
    assert!(!docs[0].explicit_start);
    assert_eq!(docs[1].root, NodeKind::Null);
    assert!(documents("").unwrap().is_empty());
    assert!(documents("# only a comment\n").unwrap().is_empty());
}

#[test]
fn keys_and_values() {
    let stream = Stream::parse(MULTI).unwrap();
    assert_eq!(stream.len(), 3);
    assert_eq!(
        stream.map_keys(0, &["spec", "encryptedData"]).unwrap(),
        Some(vec!["b", "a", "n"])
    );
    assert_eq!(stream.map_keys(0, &["spec", "template"]).unwrap(), None);
    assert_eq!(
        stream.map_keys(0, &["spec", "encryptedData", "n"]).unwrap(),
        None
    );
    assert_eq!(
        stream
            .get_string(0, &["spec", "encryptedData", "a"])
            .unwrap(),
        Some("AgA")
    );
    assert_eq!(
        stream
            .get_string(0, &["spec", "encryptedData", "n"])
            .unwrap(),
        None
    );
    assert_eq!(
        stream.get_string(0, &["kind"]).unwrap(),
        Some("SealedSecret")
    );
    assert_eq!(stream.get_string(2, &["kind"]).unwrap(), Some("Json"));
    assert_eq!(
        stream.get_string(0, &["spec"]).unwrap_err().to_string(),
        "`spec` at 6:3 is a mapping, not a string scalar"
    );
    assert_eq!(
        stream.map_keys(1, &["a"]).unwrap_err().to_string(),
        "the document root at 13:1 is a sequence, not a mapping"
    );
    assert!(stream.map_keys(5, &["a"]).is_err());
    assert_eq!(
        map_keys(MULTI, 0, &[] as &[&str]).unwrap().unwrap(),
        ["apiVersion", "kind", "spec"]
    );
    assert_eq!(
        get_string(MULTI, 0, &["apiVersion"]).unwrap().as_deref(),
        Some("bitnami.com/v1alpha1")
    );
}

#[test]
fn stream_set_strings_matches_free_function() {
    let stream = Stream::parse(MULTI).unwrap();
    let edits = [kseal_yamledit::Edit::new(
        ["spec", "encryptedData", "a"],
        "AgZ",
    )];
    let out = stream.set_strings(0, &edits).unwrap();
    assert_eq!(out, kseal_yamledit::set_strings(MULTI, 0, &edits).unwrap());
    assert_eq!(out, MULTI.replace("a: \"AgA\"", "a: \"AgZ\""));
}
