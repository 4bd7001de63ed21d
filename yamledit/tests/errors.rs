//! Refusals: each names what is wrong and where, in one line.

mod common;

use common::e;
use kseal_yamledit::{set_strings, Edit, Error};

fn err(text: &str, doc: usize, edits: &[Edit]) -> Error {
    match set_strings(text, doc, edits) {
        Ok(out) => panic!("expected an error, got:\n{out}"),
        Err(err) => err,
    }
}

#[test]
fn sequence_on_the_path() {
    let error = err(
        "spec:\n  encryptedData:\n  - a\n",
        0,
        &[e("spec.encryptedData.foo", "x")],
    );
    assert_eq!(
        error.to_string(),
        "`spec.encryptedData` at 3:3 is a sequence, not a mapping"
    );
    assert!(matches!(
        error,
        Error::NotAMapping {
            found: "a sequence",
            line: 3,
            column: 3,
            ..
        }
    ));
}

#[test]
fn scalar_on_the_path() {
    let error = err("kind: X\nspec: x\n", 0, &[e("spec.encryptedData.foo", "x")]);
    assert_eq!(
        error.to_string(),
        "`spec` at 2:7 is a scalar, not a mapping"
    );
    // A quoted "null" is a string, not a null to fill.
    let error = err("spec: 'null'\n", 0, &[e("spec.a", "x")]);
    assert_eq!(
        error.to_string(),
        "`spec` at 1:7 is a scalar, not a mapping"
    );
}

#[test]
fn root_that_is_not_a_mapping() {
    assert_eq!(
        err("- a\n", 0, &[e("a", "x")]).to_string(),
        "the document root at 1:1 is a sequence, not a mapping"
    );
    assert_eq!(
        err("---\n", 0, &[e("a.b", "x")]).to_string(),
        "the document root at 1:4 is an empty document, not a mapping"
    );
}

#[test]
fn document_out_of_range() {
    let error = err("a: 1\n---\nb: 2\n", 2, &[e("a", "x")]);
    assert_eq!(error, Error::DocumentOutOfRange { index: 2, count: 2 });
    assert_eq!(
        error.to_string(),
        "document index 2 is out of range: the text holds 2 document(s)"
    );
    // Comments only: no document at all, even for an empty edit list.
    assert_eq!(
        err("# nothing\n", 0, &[]),
        Error::DocumentOutOfRange { index: 0, count: 0 }
    );
}

#[test]
fn invalid_yaml() {
    let error = err("a: b: c\n", 0, &[e("a", "x")]);
    assert!(
        matches!(
            error,
            Error::Syntax {
                line: 1,
                column: 5,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("invalid YAML at 1:5: "),
        "{error}"
    );
    let error = err("{\"a\": [1,\n", 0, &[e("a", "x")]);
    assert!(matches!(error, Error::Syntax { .. }), "{error:?}");
}

#[test]
fn aliases_anchors_and_tags_are_refused() {
    let error = err("base: &b {x: 1}\nspec: *b\n", 0, &[e("spec.x", "2")]);
    assert_eq!(
        error.to_string(),
        "`spec` at 2:7 is an alias (`*name`); edits through aliases are refused"
    );
    let error = err("spec: &a\n  k: v\nother: *a\n", 0, &[e("spec.k", "w")]);
    assert_eq!(
        error.to_string(),
        "`spec` carries an anchor (`&name`) at 1:7; edits of anchored nodes are refused"
    );
    let error = err("spec:\n  k: &v value\n", 0, &[e("spec.k", "w")]);
    assert!(
        matches!(
            error,
            Error::Anchor {
                line: 2,
                column: 6,
                ..
            }
        ),
        "{error:?}"
    );
    let error = err("spec: !!map\n  k: v\n", 0, &[e("spec.k", "w")]);
    assert!(
        matches!(
            error,
            Error::Tag {
                line: 1,
                column: 7,
                ..
            }
        ),
        "{error:?}"
    );
    let error = err("spec:\n  k: !!binary AAAA\n", 0, &[e("spec.k", "w")]);
    assert_eq!(
        error.to_string(),
        "`spec.k` carries the tag `tag:yaml.org,2002:binary` at 2:6; edits of tagged nodes are refused"
    );
    let error = err("spec:\n  k: *nowhere\n", 0, &[e("spec.k", "w")]);
    assert!(
        matches!(error, Error::Syntax { .. } | Error::Alias { .. }),
        "{error:?}"
    );
}

#[test]
fn merge_keys() {
    let text = "base: &b\n  x: 1\nspec:\n  <<: *b\n  y: 2\n";
    let error = err(text, 0, &[e("spec.x", "3")]);
    assert_eq!(
        error.to_string(),
        "`spec` has a merge key (`<<`) at 4:3 and no key `x`; inserting into merged mappings is refused"
    );
    // An explicit key next to a merge key is unambiguous.
    assert_eq!(
        set_strings(text, 0, &[e("spec.y", "3")]).unwrap(),
        "base: &b\n  x: 1\nspec:\n  <<: *b\n  y: \"3\"\n"
    );
}

#[test]
fn duplicate_keys() {
    let error = err("a:\n  k: 1\n  k: 2\n", 0, &[e("a.k", "x")]);
    assert_eq!(
        error.to_string(),
        "`a` has the key `k` twice (again at 3:3)"
    );
}

#[test]
fn empty_path_and_collections_as_values() {
    assert_eq!(
        err("a: 1\n", 0, &[Edit::new(Vec::<String>::new(), "x")]),
        Error::EmptyPath
    );
    let error = err(
        "spec:\n  encryptedData:\n    a: b\n",
        0,
        &[e("spec.encryptedData", "x")],
    );
    assert_eq!(
        error.to_string(),
        "`spec.encryptedData` at 3:5 is a mapping, not a string scalar"
    );
    let error = err(
        "spec:\n  encryptedData: {}\n",
        0,
        &[e("spec.encryptedData", "x")],
    );
    assert!(
        matches!(
            error,
            Error::NotAScalar {
                found: "a mapping",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn key_too_long() {
    let key = "k".repeat(2000);
    let error = err("a:\n  b: c\n", 0, &[Edit::new(["a".to_owned(), key], "x")]);
    assert!(matches!(error, Error::KeyTooLong { .. }), "{error:?}");
    assert!(
        error.to_string().contains("at most 1024 characters"),
        "{error}"
    );
}

#[test]
fn paths_with_dots_are_shown_quoted() {
    let error = err(
        "data:\n  a.b: [1]\n",
        0,
        &[Edit::new(["data", "a.b", "c"], "x")],
    );
    assert_eq!(
        error.to_string(),
        "`data.\"a.b\"` at 2:8 is a sequence, not a mapping"
    );
}

#[test]
fn a_failed_edit_returns_no_partial_result() {
    // The first edit is fine, the second is refused: the call fails whole.
    let error = err("a:\n  b: c\nd: [1]\n", 0, &[e("a.b", "x"), e("d.e", "y")]);
    assert!(matches!(error, Error::NotAMapping { .. }), "{error:?}");
}

#[test]
fn block_scalar_at_the_end_of_a_file_without_final_newline() {
    // Inserting after it would give its content a final newline.
    let error = err("a:\n  b: |\n    text", 0, &[e("a.c", "x")]);
    assert_eq!(
        error.to_string(),
        "unsupported layout at 3:1: a block scalar ends the file without a final line break; add one first"
    );
    let error = err("a:\n  b: |-\n    text", 0, &[e("a.c", "x")]);
    assert!(matches!(error, Error::Unsupported { .. }), "{error:?}");
    // Replacing it, or inserting after one followed by a line break, is fine.
    assert_eq!(
        set_strings("a:\n  b: |\n    text", 0, &[e("a.b", "x")]).unwrap(),
        "a:\n  b: x"
    );
    assert_eq!(
        set_strings("a:\n  b: |\n    text\n", 0, &[e("a.c", "x")]).unwrap(),
        "a:\n  b: |\n    text\n  c: x\n"
    );
}

#[test]
fn unterminated_blank_block_scalars() {
    for text in ["\"a\": |+\n  ", "\"a\": |\n a:\n  "] {
        let error = err(text, 0, &[e("b", "Ag")]);
        assert!(
            matches!(error, Error::Unsupported { .. }),
            "{text:?}: {error:?}"
        );
    }
    let error = err("? a\n", 0, &[e("b", "Ag")]);
    assert_eq!(
        error.to_string(),
        "unsupported layout at 1:3: an explicit mapping key (`? key`) without a value"
    );
}

/// A lone carriage return is a line break to YAML but not to the editor: refused, with where
/// (found by the `yamledit` fuzz target, `fuzz/regressions/yamledit/`).
#[test]
fn lone_carriage_return_is_refused() {
    let e = kseal_yamledit::Stream::parse("a: b\nc: d\r  e: f\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid YAML at 2:5: a carriage return without a line feed (old Mac line ending) is not supported"
    );
    // CRLF line endings still parse.
    assert!(kseal_yamledit::Stream::parse("a: b\r\nc: d\r\n").is_ok());
}

/// The fuzz target's original finding: an explicit key with no value at the end of a
/// document, and an insertion after it.
#[test]
fn explicit_key_without_value_is_refused() {
    let text = "spec:\n  encryptedData:\n    foo: x\n    ? o\tne\n";
    let error = err(text, 0, &[e("spec.template.app", "web")]);
    assert_eq!(
        error.to_string(),
        "unsupported layout at 4:7: an explicit mapping key (`? key`) without a value"
    );
}

/// A mapping with an empty (null) key is refused as a layout: a plain `?` value beside it
/// becomes an explicit-key indicator once an entry is inserted after it (found by the
/// `yamledit` fuzz target, `fuzz/regressions/yamledit/empty-key-beside-question-mark`).
#[test]
fn mapping_with_an_empty_key_is_refused() {
    let error = err(
        "sp:\n : ?\n",
        0,
        &[Edit::new(vec!["="], ""), Edit::new(vec!["sp", "t"], "")],
    );
    assert_eq!(
        error.to_string(),
        "unsupported layout at 2:2: a mapping with an empty key"
    );
    // The first form of the finding: an empty key edited under such a mapping.
    let error = err("c:\n : ?\n", 0, &[Edit::new(vec!["c", ""], "")]);
    assert_eq!(
        error.to_string(),
        "unsupported layout at 2:2: a mapping with an empty key"
    );
}
