//! Byte-exact expected outputs for typical and awkward inputs.  Every case
//! also checks with serde_yaml that the output means the input plus the
//! edits, and nothing else (see `common::check`).

mod common;

use common::{check, e};
use kseal_yamledit::Edit;

const KUBESEAL_YAML: &str = "\
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  creationTimestamp: null
  name: mysecret
  namespace: default
spec:
  encryptedData:
    foo: AgBy3i4OJSWK+PiTySYZZA==   # a comment
    bar: AgBbar==
  template:
    metadata:
      creationTimestamp: null
      name: mysecret
      namespace: default
    type: Opaque
";

#[test]
fn kubeseal_yaml_merge() {
    check(
        KUBESEAL_YAML,
        0,
        &[
            e("spec.encryptedData.foo", "AgNEWfoo+/="),
            e("spec.encryptedData.baz", "AgBaz=="),
            e("spec.template.metadata.labels.app", "web"),
            Edit::new(
                [
                    "spec",
                    "template",
                    "metadata",
                    "annotations",
                    "sealedsecrets.bitnami.com/managed",
                ],
                "true",
            ),
            Edit::new(["spec", "template", "data", ".dockerconfigjson"], "a: b"),
        ],
        "\
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  creationTimestamp: null
  name: mysecret
  namespace: default
spec:
  encryptedData:
    foo: AgNEWfoo+/=   # a comment
    bar: AgBbar==
    baz: AgBaz==
  template:
    metadata:
      creationTimestamp: null
      name: mysecret
      namespace: default
      labels:
        app: web
      annotations:
        sealedsecrets.bitnami.com/managed: \"true\"
    type: Opaque
    data:
      .dockerconfigjson: \"a: b\"
",
    );
}

#[test]
fn kubeseal_yaml_reencrypt_all_values() {
    check(
        KUBESEAL_YAML,
        0,
        &[
            e("spec.encryptedData.foo", "AgX1"),
            e("spec.encryptedData.bar", "AgX2"),
        ],
        &KUBESEAL_YAML
            .replace("AgBy3i4OJSWK+PiTySYZZA==", "AgX1")
            .replace("AgBbar==", "AgX2"),
    );
}

#[test]
fn four_space_indent_and_sequences() {
    let text = "\
# leading comment
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
    name: app
    finalizers:
    - one
    - two
    ownerReferences:
        -   kind: Thing
            name: x
spec:
    encryptedData:
        password: AgAAA==
";
    check(
        text,
        0,
        &[
            e("spec.encryptedData.password", "AgBnew=="),
            e("spec.template.metadata.labels.tier", "backend"),
            e("spec.encryptedData.user", "AgBuser=="),
            e("metadata.annotations.note", "x"),
        ],
        "\
# leading comment
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
    name: app
    finalizers:
    - one
    - two
    ownerReferences:
        -   kind: Thing
            name: x
    annotations:
        note: x
spec:
    encryptedData:
        password: AgBnew==
        user: AgBuser==
    template:
        metadata:
            labels:
                tier: backend
",
    );
}

#[test]
fn quoted_values_keep_their_style_when_possible() {
    let text = "\
data:
  dq: \"old value\"   # dq
  sq: 'old'
  sq2: 'old'
  plain: old
  tricky: old
  multi: \"first
    second\"
  empty:
  \"quoted key\": x
";
    check(
        text,
        0,
        &[
            e("data.dq", "new \"x\""),
            e("data.sq", "it's"),
            e("data.sq2", "two\nlines"),
            e("data.plain", "true"),
            e("data.tricky", "a: b"),
            e("data.multi", "AgB"),
            e("data.empty", "now set"),
            e("data.quoted key", "y2"),
        ],
        "\
data:
  dq: \"new \\\"x\\\"\"   # dq
  sq: 'it''s'
  sq2: \"two\\nlines\"
  plain: \"true\"
  tricky: \"a: b\"
  multi: \"AgB\"
  empty: now set
  \"quoted key\": y2
",
    );
}

#[test]
fn keys_are_quoted_when_needed() {
    let text = "data:\n  a: b\n";
    check(
        text,
        0,
        &[
            e("data.foo bar", "1"),
            e("data.a: b", "2"),
            e("data.true", "3"),
            e("data.", "4"),
            e("data.-x", "5"),
        ],
        "data:\n  a: b\n  foo bar: \"1\"\n  \"a: b\": \"2\"\n  \"true\": \"3\"\n  \"\": \"4\"\n  \"-x\": \"5\"\n",
    );
}

#[test]
fn folded_plain_value_is_replaced_whole() {
    let text = "a:\n  k: this is\n    folded plain   # c\n  next: 1\n";
    check(text, 0, &[e("a.k", "v")], "a:\n  k: v   # c\n  next: 1\n");
}

#[test]
fn block_scalars_are_replaced_from_header_to_last_line() {
    let text = "\
s:
  lit: |
    line1
    line2

  fold: >- # folded
    abc
    def
  last: |2
      indented
# trailing comment
t: 1
";
    check(
        text,
        0,
        &[e("s.lit", "L"), e("s.fold", "F"), e("s.last", "X")],
        "\
s:
  lit: L

  fold: F
  last: X
# trailing comment
t: 1
",
    );
}

#[test]
fn insert_after_block_scalars_keeps_their_content() {
    let text = "\
t:
  keep: |+
    kept

u:
  clip: |
    clipped

  # comment
v: 1
";
    check(
        text,
        0,
        &[e("t.new", "a"), e("u.new", "b")],
        "\
t:
  keep: |+
    kept

  new: a
u:
  clip: |
    clipped
  new: b

  # comment
v: 1
",
    );
}

#[test]
fn crlf_without_final_newline() {
    let text = "a: 1\r\nspec:\r\n  encryptedData:\r\n    foo: old # c\r\n  x: y";
    check(
        text,
        0,
        &[
            e("spec.encryptedData.foo", "new"),
            e("spec.encryptedData.bar", "b"),
            e("spec.template.metadata.labels.l", "v"),
            e("spec.x", "z"),
        ],
        "a: 1\r\nspec:\r\n  encryptedData:\r\n    foo: new # c\r\n    bar: b\r\n  x: z\r\n  template:\r\n    metadata:\r\n      labels:\r\n        l: v",
    );
}

#[test]
fn no_final_newline_lf() {
    check("a:\n  b: c", 0, &[e("a.d", "e")], "a:\n  b: c\n  d: e");
    check("a:\n  b: c", 0, &[e("a.b", "x")], "a:\n  b: x");
    check("a: {}", 0, &[e("a.b", "x")], "a:\n  b: x");
    check("a:", 0, &[e("a.b", "x")], "a:\n  b: x");
}

#[test]
fn multi_document_edits_only_the_addressed_one() {
    let text = "\
# first
---
apiVersion: v1
kind: ConfigMap
data:
  a: b
...
# between docs
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
spec:
  encryptedData:
    foo: AgOld==
# after doc 2
---
kind: Other
data:
  foo: AgOld==
";
    check(
        text,
        1,
        &[
            e("spec.encryptedData.foo", "AgNew=="),
            e("spec.encryptedData.bar", "AgBar=="),
        ],
        "\
# first
---
apiVersion: v1
kind: ConfigMap
data:
  a: b
...
# between docs
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
spec:
  encryptedData:
    foo: AgNew==
    bar: AgBar==
# after doc 2
---
kind: Other
data:
  foo: AgOld==
",
    );
    check(
        text,
        2,
        &[e("data.foo", "x")],
        &text.replace(
            "kind: Other\ndata:\n  foo: AgOld==",
            "kind: Other\ndata:\n  foo: x",
        ),
    );
}

const KUBESEAL_JSON: &str = r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "mysecret",
    "namespace": "default",
    "creationTimestamp": null
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "mysecret",
        "namespace": "default",
        "creationTimestamp": null
      }
    },
    "encryptedData": {
      "foo": "AgBy3i4OJSWK+PiTySYZZA=="
    }
  }
}
"#;

#[test]
fn kubeseal_json_replace_and_insert() {
    let out = check(
        KUBESEAL_JSON,
        0,
        &[
            e("spec.encryptedData.foo", "AgNEW=="),
            e("spec.encryptedData.bar", "true"),
            e("spec.template.metadata.labels.app", "web"),
            e("spec.template.type", "Opaque"),
        ],
        r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "mysecret",
    "namespace": "default",
    "creationTimestamp": null
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "mysecret",
        "namespace": "default",
        "creationTimestamp": null,
        "labels": {
          "app": "web"
        }
      },
      "type": "Opaque"
    },
    "encryptedData": {
      "foo": "AgNEW==",
      "bar": "true"
    }
  }
}
"#,
    );
    serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
}

/// `kseal seal --merge-into` records the sealing keys in the top-level
/// `metadata.annotations`: created in a kubeseal file, added next to a scope
/// annotation, replaced when it is there.
#[test]
fn sealing_key_hint_on_the_top_level_metadata() {
    const KEY: &str = "sealedsecrets.kseal.dev/sealed-with";
    let hint = |v: &str| Edit::new(["metadata", "annotations", KEY], v);
    let yaml = check(
        KUBESEAL_YAML,
        0,
        &[hint("SHA256:aaa"), e("spec.encryptedData.baz", "AgBaz==")],
        &KUBESEAL_YAML
            .replace(
                "  namespace: default\nspec:",
                "  namespace: default\n  annotations:\n    sealedsecrets.kseal.dev/sealed-with: SHA256:aaa\nspec:",
            )
            .replace("    bar: AgBbar==\n", "    bar: AgBbar==\n    baz: AgBaz==\n"),
    );
    check(
        &yaml,
        0,
        &[hint("SHA256:aaa,SHA256:bbb")],
        &yaml.replace("SHA256:aaa", "SHA256:aaa,SHA256:bbb"),
    );

    let scoped = KUBESEAL_JSON.replace(
        "    \"creationTimestamp\": null\n  },",
        "    \"creationTimestamp\": null,\n    \"annotations\": {\n      \"sealedsecrets.bitnami.com/namespace-wide\": \"true\"\n    }\n  },",
    );
    let json = check(
        &scoped,
        0,
        &[hint("SHA256:aaa")],
        &scoped.replace(
            "namespace-wide\": \"true\"\n    }",
            "namespace-wide\": \"true\",\n      \"sealedsecrets.kseal.dev/sealed-with\": \"SHA256:aaa\"\n    }",
        ),
    );
    serde_json::from_str::<serde_json::Value>(&json).expect("still JSON");
    check(
        KUBESEAL_JSON,
        0,
        &[hint("SHA256:aaa")],
        &KUBESEAL_JSON.replace(
            "    \"creationTimestamp\": null\n  },",
            "    \"creationTimestamp\": null,\n    \"annotations\": {\n      \"sealedsecrets.kseal.dev/sealed-with\": \"SHA256:aaa\"\n    }\n  },",
        ),
    );
}

#[test]
fn json_empty_object_null_and_missing_parent() {
    let text = r#"{
  "spec": {
    "encryptedData": {},
    "other": null
  }
}"#;
    let out = check(
        text,
        0,
        &[
            e("spec.encryptedData.a", "x"),
            e("spec.other.k", "v"),
            e("spec.template.metadata.annotations.b\"c", "y\u{1}"),
        ],
        r#"{
  "spec": {
    "encryptedData": {
      "a": "x"
    },
    "other": {
      "k": "v"
    },
    "template": {
      "metadata": {
        "annotations": {
          "b\"c": "y\u0001"
        }
      }
    }
  }
}"#,
    );
    serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
}

#[test]
fn one_line_flow_mappings() {
    check(
        "a: {b: c}\nd: {}\n",
        0,
        &[e("a.x", "1"), e("a.b", "z")],
        "a: {b: \"z\", \"x\": \"1\"}\nd: {}\n",
    );
    check("{}", 0, &[e("a.b", "c")], r#"{"a": {"b": "c"}}"#);
    check(r#"{"a": {}}"#, 0, &[e("a.b", "c")], r#"{"a": {"b": "c"}}"#);
}

#[test]
fn empty_and_null_parents_become_block_mappings() {
    let text = "\
spec:
  encryptedData: {}
  template:
    metadata:
      labels: null
      annotations: ~ # none yet
      finalizers:
";
    check(
        text,
        0,
        &[
            e("spec.encryptedData.foo", "AgB=="),
            e("spec.template.metadata.labels.a", "x"),
            e("spec.template.metadata.annotations.b", "yes please"),
            e("spec.template.metadata.finalizers.c", "z"),
        ],
        "\
spec:
  encryptedData:
    foo: AgB==
  template:
    metadata:
      labels:
        a: x
      annotations: # none yet
        b: yes please
      finalizers:
        c: z
",
    );
}

#[test]
fn missing_template_entirely() {
    let text = "\
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: s
spec:
  encryptedData:
    a: AgA=
";
    check(
        text,
        0,
        &[
            e("spec.template.metadata.labels.app", "web"),
            e("spec.template.metadata.annotations.note", "hello world"),
            e("spec.template.data.config", "k=v"),
        ],
        "\
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: s
spec:
  encryptedData:
    a: AgA=
  template:
    metadata:
      labels:
        app: web
      annotations:
        note: hello world
    data:
      config: k=v
",
    );
}

#[test]
fn values_that_need_escapes() {
    let text = "d:\n  a: x\n";
    check(
        text,
        0,
        &[
            e("d.a", "tab\there"),
            e("d.b", " lead"),
            e("d.c", "nel\u{85}ls\u{2028}"),
            e("d.d", "ü and 😀"),
            e("d.e", ""),
            e("d.f", "0x1F"),
            e("d.g", "~"),
        ],
        "d:\n  a: \"tab\\there\"\n  b: \" lead\"\n  c: \"nel\\u0085ls\\u2028\"\n  d: ü and 😀\n  e: \"\"\n  f: \"0x1F\"\n  g: \"~\"\n",
    );
}

#[test]
fn leading_comments_and_directives_stay() {
    let text =
        "%YAML 1.1\n--- # doc\n# c\nspec: # s\n  # inner\n  encryptedData: # e\n    k: v # k\n";
    check(
        text,
        0,
        &[e("spec.encryptedData.k", "w"), e("spec.encryptedData.j", "x")],
        "%YAML 1.1\n--- # doc\n# c\nspec: # s\n  # inner\n  encryptedData: # e\n    k: w # k\n    j: x\n",
    );
}

#[test]
fn byte_order_mark_stays() {
    let text = "\u{feff}spec:\n  k: v\n";
    let out = kseal_yamledit::set_strings(text, 0, &[e("spec.k", "w"), e("spec.j", "x")]).unwrap();
    // serde_yaml does not take a BOM in a &str, so only the bytes are checked.
    assert_eq!(out, "\u{feff}spec:\n  k: w\n  j: x\n");
}

#[test]
fn no_edits_is_identity() {
    assert_eq!(
        kseal_yamledit::set_strings(KUBESEAL_YAML, 0, &[]).unwrap(),
        KUBESEAL_YAML
    );
}

#[test]
fn missing_top_level_key_is_appended_to_the_root() {
    check(
        "apiVersion: v1\nkind: SealedSecret\n---\nkind: Next\n",
        0,
        &[e("spec.encryptedData.k", "AgK=")],
        "apiVersion: v1\nkind: SealedSecret\nspec:\n  encryptedData:\n    k: AgK=\n---\nkind: Next\n",
    );
    check(
        "--- |\n  text\n---\na: 1\n...\n",
        1,
        &[e("b", "2")],
        "--- |\n  text\n---\na: 1\nb: \"2\"\n...\n",
    );
}

#[test]
fn crlf_block_scalars() {
    check(
        "a:\r\n  lit: |\r\n    one\r\n    two\r\n  keep: |+\r\n    k\r\n\r\nb: 1\r\n",
        0,
        &[e("a.lit", "x"), e("a.new", "yy")],
        "a:\r\n  lit: x\r\n  keep: |+\r\n    k\r\n\r\n  new: yy\r\nb: 1\r\n",
    );
}

#[test]
fn multi_line_flow_mapping_in_yaml() {
    check(
        "labels: {\n  a: b,\n  c: d\n}\nnext: 1\n",
        0,
        &[e("labels.e", "f"), e("labels.a", "B")],
        "labels: {\n  a: \"B\",\n  c: d,\n  \"e\": \"f\"\n}\nnext: 1\n",
    );
}

#[test]
fn compact_json() {
    let out = check(
        r#"{"kind":"SealedSecret","spec":{"encryptedData":{"a":"AgA"}}}"#,
        0,
        &[
            e("spec.encryptedData.a", "AgZ"),
            e("spec.encryptedData.b", "AgB"),
            e("spec.template.type", "Opaque"),
        ],
        r#"{"kind":"SealedSecret","spec":{"encryptedData":{"a":"AgZ", "b": "AgB"}, "template": {"type": "Opaque"}}}"#,
    );
    serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
}

#[test]
fn json_with_crlf() {
    let text = "{\r\n  \"spec\": {\r\n    \"encryptedData\": {\r\n      \"a\": \"AgA\"\r\n    }\r\n  }\r\n}";
    check(
        text,
        0,
        &[e("spec.encryptedData.b", "AgB"), e("spec.template.metadata.name", "n")],
        "{\r\n  \"spec\": {\r\n    \"encryptedData\": {\r\n      \"a\": \"AgA\",\r\n      \"b\": \"AgB\"\r\n    },\r\n    \"template\": {\r\n      \"metadata\": {\r\n        \"name\": \"n\"\r\n      }\r\n    }\r\n  }\r\n}",
    );
}

#[test]
fn comment_lines_inside_and_after_a_mapping() {
    check(
        "encryptedData:\n  # about a\n  a: AgA # a\n  # commented: out\ntemplate:\n  type: Opaque\n",
        0,
        &[e("encryptedData.b", "AgB")],
        "encryptedData:\n  # about a\n  a: AgA # a\n  b: AgB\n  # commented: out\ntemplate:\n  type: Opaque\n",
    );
    check(
        "encryptedData:\n  # nothing yet\ntemplate: {}\n",
        0,
        &[e("encryptedData.b", "AgB")],
        "encryptedData:\n  b: AgB\n  # nothing yet\ntemplate: {}\n",
    );
}

#[test]
fn explicit_keys_and_blank_block_scalars() {
    // Found by the fuzz property; kept as plain cases.
    check("? a\n: b", 0, &[e("b", "Ag")], "? a\n: b\nb: Ag");
    check(
        "  a: |+\n\n---",
        0,
        &[e("b", "Ag")],
        "  a: |+\n\n  b: Ag\n---",
    );
    check(
        "a: |+\n\n\nb: 1\n",
        0,
        &[e("c", "Ag")],
        "a: |+\n\n\nb: 1\nc: Ag\n",
    );
    // A line with more spaces than the indentation is content (" ").
    check(
        "s:\n  a: |\n    x\n     \n  b: 1\n",
        0,
        &[e("s.a", "Ag")],
        "s:\n  a: Ag\n  b: 1\n",
    );
    check(
        "s:\n  a: |\n    x\n     \nt: 1\n",
        0,
        &[e("s.c", "Ag")],
        "s:\n  a: |\n    x\n     \n  c: Ag\nt: 1\n",
    );
}
