//! Format-preserving edits of YAML and JSON `SealedSecret` files.
//!
//! `kseal seal --merge-into FILE` and `kseal reencrypt FILE` change a few
//! string values of an existing manifest.  A serialise-again approach would
//! lose comments, key order, quoting and layout; this crate instead changes
//! only the bytes of the values it sets, and inserts new entries in the
//! style of their neighbours.  Everything else stays byte for byte.
//!
//! # What it does
//!
//! * [`documents`] lists the documents of a (multi-document) stream and
//!   where they are, so a caller can pick the `SealedSecret`s.
//! * [`set_strings`] sets string values at mapping paths (`spec`,
//!   `encryptedData`, `foo`) in one document, replacing existing values or
//!   inserting missing keys, and returns the new text.
//! * [`map_keys`] and [`get_string`] read a document without a second
//!   parser; [`Stream`] does all of these on one parse.
//!
//! # Boundaries
//!
//! * Only mappings are walked: a path is a list of mapping keys, matched
//!   against the text of scalar keys (`1: x` matches the key `"1"`).
//!   Sequences are never edited.
//! * Only string values are written.  Replacing a mapping or a sequence by a
//!   string is refused ([`Error::NotAScalar`]).
//! * Nodes that an edit goes through or replaces may not be aliases,
//!   anchored or tagged, and a key may not be missing from a mapping with a
//!   merge key (`<<`): each of these would change data elsewhere or in a
//!   way the edit cannot see, so they are refused with an [`Error`] that
//!   names the place (`line:column`).  Duplicate keys on the path are
//!   refused too.
//! * A few layouts are refused rather than guessed at
//!   ([`Error::Unsupported`]): any edit of a document holding an explicit
//!   key (`? key`) without a value, or of a path through a mapping with an
//!   empty key (`: v`); inserting after a block scalar (`|`, `>`) that
//!   runs to the end of a file without a final line break (the new line
//!   break would become part of its content).  Text with a carriage return
//!   not followed by a line feed is refused as invalid ([`Error::Syntax`]).
//! * Other documents of the stream, `---` / `...` markers, directives and
//!   comments between documents are never touched, and edits never change
//!   the number of documents, so document indices stay valid from one call
//!   to the next.
//! * Every edit is checked: the edited text is parsed again, and it must be
//!   the old content with exactly that change, or the call fails with
//!   [`Error::Internal`] and returns no text.
//!
//! # How values are written
//!
//! * Replacing a value changes only the bytes of that scalar: indentation,
//!   the key and its quoting, a comment after the value and the following
//!   lines stay.  A multi-line plain or quoted value, or a block scalar
//!   (`|`, `>`, from its header to its last content line), becomes a
//!   one-line scalar.
//! * In block context a value keeps its double- or single-quoted style
//!   (single quotes fall back to double for characters they cannot hold);
//!   a plain or block scalar is written plain when that is safe, else
//!   double-quoted.  *Plain-safe* means: not empty, no leading or trailing
//!   space, only printable characters (no tab, line break, NEL, LS, PS,
//!   BOM), no leading indicator (`-?:,[]{}#&*!|>'"%@` and backquote), no
//!   `: ` or ` #` and no trailing `:`, and nothing that a YAML 1.1 or 1.2
//!   reader could take for a non-string: null (`~`, `null`), booleans
//!   (`true`, also YAML 1.1's `yes`/`no`/`on`/`off`/`y`/`n`, any case),
//!   numbers and timestamps (anything starting with an optional sign and a
//!   digit made only of number/date characters, `.5`, `.inf`, `.nan`), `=`
//!   and `<<`.  So a base64 value (`AgBy3i4O+/=`) or a key such as
//!   `.dockerconfigjson` is written plain, `"true"` or `"a: b"` quoted.
//! * Double-quoted strings are JSON strings that YAML reads the same way:
//!   `\"`, `\\`, `\n`, `\t`... and `\uXXXX` for other control and
//!   non-printable characters.
//! * In flow context (a JSON file, or `{...}` in YAML) keys and values are
//!   always JSON strings.
//! * A missing key is appended at the end of its mapping: in a block
//!   mapping on a new line at the column of its siblings (after the last
//!   entry's trailing comment); in a flow mapping as `, "key": "value"`,
//!   on a new line at the siblings' column when the entries are on lines of
//!   their own (pretty JSON).  Missing parent mappings are created as a
//!   chain (`template:` / `metadata:` / `labels:` / `key: value`), each level
//!   one indentation step deeper; the step is the file's own (the smallest
//!   key-to-nested-key indentation found in the document; 2 if none).  An
//!   empty flow mapping `key: {}` in block context, and a null value (`key:`,
//!   `key: null`, `key: ~`), become a block mapping under the key; in flow
//!   context they become a JSON object.
//! * Inserted lines use the file's line break (that of its first line), and
//!   a missing final line break stays missing.
//! * Replacing a block scalar keeps the blank lines after it; inserting after
//!   one puts the new entry right after its last content line (after its
//!   trailing blank lines when they are content, with `|+`).
//!
//! # Parser
//!
//! Positions come from `granit-parser` (a YAML 1.2 parser descended from
//! `yaml-rust`/`saphyr-parser`), which reports byte spans for scalars and
//! flow collections; block collections and block scalars, whose spans do not
//! say where their text ends, get their end computed here.  It accepts some
//! YAML 1.1-era documents that strict YAML 1.2 refuses; the writing rules
//! above keep the output readable by YAML 1.1 readers (go-yaml, libyaml).
//!
//! # Example
//!
//! ```
//! use kseal_yamledit::{set_strings, Edit};
//!
//! let text = "spec:\n  encryptedData:\n    foo: AgBold== # keep me\n";
//! let out = set_strings(text, 0, &[
//!     Edit::new(["spec", "encryptedData", "foo"], "AgBnew=="),
//!     Edit::new(["spec", "template", "metadata", "labels", "app"], "web"),
//! ])?;
//! assert_eq!(out, "spec:\n  encryptedData:\n    foo: AgBnew== # keep me\n  \
//!                  template:\n    metadata:\n      labels:\n        app: web\n");
//! # Ok::<(), kseal_yamledit::Error>(())
//! ```

mod edit;
mod error;
mod render;
mod tree;

use std::ops::Range;

pub use edit::MAX_PATH_KEYS;
pub use error::Error;
use tree::{Doc, Kind, Node};

/// Set the string at `path` (a list of mapping keys) to `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Mapping keys from the document root, e.g. `["spec", "encryptedData", "foo"]`.
    pub path: Vec<String>,
    /// The new string value.
    pub value: String,
}

impl Edit {
    /// An edit setting `path` to `value`.
    pub fn new<P, S>(path: P, value: impl Into<String>) -> Self
    where
        P: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Edit {
            path: path.into_iter().map(Into::into).collect(),
            value: value.into(),
        }
    }
}

/// What kind of node a document's root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A mapping (block, or a flow `{...}` such as a JSON object).
    Mapping,
    /// A sequence.
    Sequence,
    /// A scalar other than null.
    Scalar,
    /// A null scalar, which includes an empty document.
    Null,
    /// An alias.
    Alias,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DocSpan {
    /// Byte range of the document: from its `---` marker, or for an implicit
    /// document from the start of its first line, to the end of its content
    /// (comments after it and a `...` marker excluded).  `&text[range]` can
    /// be parsed on its own as that single document, unless the document
    /// relies on `%TAG` directives given before its `---`.
    pub range: Range<usize>,
    /// 1-based line where `range` starts.
    pub line: usize,
    /// Whether the document starts with `---`.
    pub explicit_start: bool,
    /// Whether the document ends with `...`.
    pub explicit_end: bool,
    /// The kind of the root node.
    pub root: NodeKind,
    /// Whether the root is a flow collection (`{...}` or `[...]`), as in a
    /// JSON file.
    pub flow: bool,
}

/// A parsed YAML or JSON stream, for several queries on one parse.
#[derive(Debug)]
pub struct Stream<'a> {
    text: &'a str,
    docs: Vec<Doc>,
}

impl<'a> Stream<'a> {
    /// Parses `text` (YAML 1.2, which includes JSON).
    ///
    /// # Errors
    ///
    /// [`Error::Syntax`] when the text is not valid YAML.
    pub fn parse(text: &'a str) -> Result<Self, Error> {
        // YAML takes a lone carriage return as a line break; the editor's line arithmetic
        // knows `\n` and `\r\n` only, so such text is refused rather than mis-edited (found by
        // the `yamledit` fuzz target).
        let bytes = text.as_bytes();
        if let Some(at) =
            (0..bytes.len()).find(|&i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            return Err(Error::Syntax {
                line,
                column,
                message:
                    "a carriage return without a line feed (old Mac line ending) is not supported"
                        .into(),
            });
        }
        Ok(Stream {
            text,
            docs: tree::parse(text)?,
        })
    }

    /// The parsed text.
    #[must_use]
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The number of documents.  A text with only comments has none.
    #[must_use]
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the stream holds no document.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Where each document is, in order.
    #[must_use]
    pub fn documents(&self) -> Vec<DocSpan> {
        self.docs
            .iter()
            .map(|d| {
                let root = &d.root;
                DocSpan {
                    range: d.start..root.end.max(d.start),
                    line: self.text[..d.start].matches('\n').count() + 1,
                    explicit_start: d.explicit_start,
                    explicit_end: d.explicit_end,
                    root: match &root.kind {
                        Kind::Mapping { .. } => NodeKind::Mapping,
                        Kind::Sequence { .. } => NodeKind::Sequence,
                        Kind::Alias => NodeKind::Alias,
                        Kind::Scalar { .. } if root.is_null() => NodeKind::Null,
                        Kind::Scalar { .. } => NodeKind::Scalar,
                    },
                    flow: matches!(root.kind, Kind::Mapping { flow: true, .. })
                        || (matches!(root.kind, Kind::Sequence { .. })
                            && self.text.as_bytes().get(root.start) == Some(&b'[')),
                }
            })
            .collect()
    }

    /// The keys (scalar keys, in document order) of the mapping at `path` in
    /// document `doc`; an empty path means the root.  `Ok(None)` when the
    /// path is absent or its value is null; an error when a node on the way
    /// is not a mapping (or is an alias).
    ///
    /// # Errors
    ///
    /// [`Error::DocumentOutOfRange`], [`Error::NotAMapping`],
    /// [`Error::Alias`] or [`Error::DuplicateKey`] on the way.
    pub fn map_keys<S: AsRef<str>>(
        &self,
        doc: usize,
        path: &[S],
    ) -> Result<Option<Vec<&str>>, Error> {
        let path = owned(path);
        let Some(node) = self.lookup(doc, &path)? else {
            return Ok(None);
        };
        match &node.kind {
            Kind::Mapping { entries, .. } => Ok(Some(
                entries.iter().filter_map(|(k, _)| k.key_text()).collect(),
            )),
            _ if node.is_null() => Ok(None),
            _ => Err(edit::not_a_mapping(node, &path)),
        }
    }

    /// The scalar at `path` in document `doc`, as parsed (escapes resolved,
    /// whatever its style).  `Ok(None)` when the path is absent or the
    /// value is null; an error when it is a collection or an alias, or a
    /// node on the way is not a mapping.
    ///
    /// # Errors
    ///
    /// [`Error::NotAScalar`] for a collection; else as [`Self::map_keys`].
    pub fn get_string<S: AsRef<str>>(&self, doc: usize, path: &[S]) -> Result<Option<&str>, Error> {
        let path = owned(path);
        let Some(node) = self.lookup(doc, &path)? else {
            return Ok(None);
        };
        match &node.kind {
            _ if node.is_null() => Ok(None),
            Kind::Scalar { value, .. } => Ok(Some(value)),
            Kind::Alias => Err(edit::not_a_mapping(node, &path)),
            _ => Err(Error::NotAScalar {
                path: display_path(&path),
                found: node.describe(),
                line: node.line,
                column: node.col + 1,
            }),
        }
    }

    /// Applies `edits` in order to document `doc` and returns the new text
    /// of the whole stream; see [`set_strings`].
    ///
    /// # Errors
    ///
    /// As [`set_strings`].
    pub fn set_strings(&self, doc: usize, edits: &[Edit]) -> Result<String, Error> {
        // The tree is consumed by the edit loop, which re-parses after each
        // edit; parse a copy instead of cloning the tree.
        edit::apply_edits(self.text, tree::parse(self.text)?, doc, edits)
    }

    /// The node at `path`, `None` if a key is missing or a value on the way
    /// is null.
    fn lookup(&self, doc: usize, path: &[String]) -> Result<Option<&Node>, Error> {
        let d = self.docs.get(doc).ok_or(Error::DocumentOutOfRange {
            index: doc,
            count: self.docs.len(),
        })?;
        let mut node = &d.root;
        for (i, component) in path.iter().enumerate() {
            match &node.kind {
                Kind::Mapping { entries, .. } => {
                    match edit::find_key(entries, component, &path[..i])? {
                        Some((_, value)) => node = value,
                        None => return Ok(None),
                    }
                }
                _ if node.is_null() => return Ok(None),
                _ => return Err(edit::not_a_mapping(node, &path[..i])),
            }
        }
        Ok(Some(node))
    }
}

fn owned<S: AsRef<str>>(path: &[S]) -> Vec<String> {
    path.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Where the documents of `text` are; see [`DocSpan`].
///
/// # Errors
///
/// [`Error::Syntax`] when the text is not valid YAML.
pub fn documents(text: &str) -> Result<Vec<DocSpan>, Error> {
    Ok(Stream::parse(text)?.documents())
}

/// Applies `edits`, in order, to document `doc` (0-based) of `text` and
/// returns the new text of the whole stream.
///
/// Each edit sets the string at its path: an existing scalar value is
/// replaced in place; a missing key is appended to its mapping, with any
/// missing parent mappings (see the [crate docs](crate) for the layout).
/// A later edit sees the result of the earlier ones.  On any error nothing
/// is returned: there is no partial result.
///
/// # Errors
///
/// [`Error::Syntax`] for invalid YAML, [`Error::DocumentOutOfRange`], and
/// for each edit the refusals listed on [`Error`]: a path through a sequence
/// or scalar, a collection to replace, aliases, anchors, tags, merge keys,
/// duplicate keys, over-long keys, unsupported layouts.
pub fn set_strings(text: &str, doc: usize, edits: &[Edit]) -> Result<String, Error> {
    edit::apply_edits(text, tree::parse(text)?, doc, edits)
}

/// The keys of the mapping at `path` in document `doc`; see [`Stream::map_keys`].
///
/// # Errors
///
/// [`Error::Syntax`], and as [`Stream::map_keys`].
pub fn map_keys<S: AsRef<str>>(
    text: &str,
    doc: usize,
    path: &[S],
) -> Result<Option<Vec<String>>, Error> {
    Ok(Stream::parse(text)?
        .map_keys(doc, path)?
        .map(|keys| keys.into_iter().map(str::to_owned).collect()))
}

/// The scalar at `path` in document `doc`; see [`Stream::get_string`].
///
/// # Errors
///
/// [`Error::Syntax`], and as [`Stream::get_string`].
pub fn get_string<S: AsRef<str>>(
    text: &str,
    doc: usize,
    path: &[S],
) -> Result<Option<String>, Error> {
    Ok(Stream::parse(text)?
        .get_string(doc, path)?
        .map(str::to_owned))
}

/// A path for messages: `` `spec.encryptedData.foo` ``; a key that is empty,
/// contains `.`, `` ` `` or `"`, or has spaces at its ends is shown as a JSON
/// string (`` `data."a.b"` ``); the empty path is "the document root".
pub(crate) fn display_path(path: &[String]) -> String {
    if path.is_empty() {
        return "the document root".to_owned();
    }
    let parts: Vec<String> = path
        .iter()
        .map(|k| {
            let plain = !k.is_empty()
                && k.trim() == k
                && !k.contains(['.', '`', '"'])
                && !k.chars().any(char::is_control);
            if plain {
                k.clone()
            } else {
                render::double_quoted(k)
            }
        })
        .collect();
    format!("`{}`", parts.join("."))
}
