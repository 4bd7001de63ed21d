//! The one error type of this crate.
//!
//! Every message is a single line that names what was wrong and, where the
//! problem sits in the text, where: `line:column`, both 1-based, the column
//! counted in characters.  Paths are shown as `spec.encryptedData.foo`, a key
//! that itself contains a `.` (or is empty, or has spaces at its ends) as a
//! JSON string: `spec.template.data."a.b"`.

/// Why a query or an edit could not be carried out.
///
/// No edit is ever half-applied: when any [`Edit`](crate::Edit) of a call
/// fails, the call returns this error and no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid YAML (JSON is YAML, so this covers broken JSON too).
    #[error("invalid YAML at {line}:{column}: {message}")]
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// The parser's description.
        message: String,
    },

    /// The document index is not in the stream.
    #[error("document index {index} is out of range: the text holds {count} document(s)")]
    DocumentOutOfRange {
        /// The index asked for (0-based).
        index: usize,
        /// How many documents the text holds.
        count: usize,
    },

    /// An edit or a query was given an empty path; the document root itself
    /// cannot be set to a string.
    #[error("empty path: an edit or query needs at least one mapping key")]
    EmptyPath,

    /// A node on the path exists but is not a mapping, so a key cannot be
    /// looked up or inserted in it.
    #[error("{path} at {line}:{column} is {found}, not a mapping")]
    NotAMapping {
        /// The path of the offending node, already formatted for display.
        path: String,
        /// What was found instead ("a sequence", "a scalar", ...).
        found: &'static str,
        /// 1-based line of the node.
        line: usize,
        /// 1-based column of the node.
        column: usize,
    },

    /// The value to replace (or read) is a mapping or a sequence, not a scalar.
    #[error("{path} at {line}:{column} is {found}, not a string scalar")]
    NotAScalar {
        /// The path of the offending node, already formatted for display.
        path: String,
        /// What was found instead ("a mapping", "a sequence").
        found: &'static str,
        /// 1-based line of the node.
        line: usize,
        /// 1-based column of the node.
        column: usize,
    },

    /// A node on the path is an alias (`*name`): editing through it would
    /// edit the anchored node it refers to, elsewhere in the file.
    #[error("{path} at {line}:{column} is an alias (`*name`); edits through aliases are refused")]
    Alias {
        /// The path of the alias, already formatted for display.
        path: String,
        /// 1-based line of the alias.
        line: usize,
        /// 1-based column of the alias.
        column: usize,
    },

    /// A node on the path carries an anchor (`&name`): editing it would also
    /// silently change every alias that refers to it.
    #[error("{path} carries an anchor (`&name`) at {line}:{column}; edits of anchored nodes are refused")]
    Anchor {
        /// The path of the anchored node, already formatted for display.
        path: String,
        /// 1-based line of the anchor.
        line: usize,
        /// 1-based column of the anchor.
        column: usize,
    },

    /// A node on the path carries an explicit tag (`!!str`, `!custom`...),
    /// whose meaning a string edit could not preserve.
    #[error(
        "{path} carries the tag `{tag}` at {line}:{column}; edits of tagged nodes are refused"
    )]
    Tag {
        /// The path of the tagged node, already formatted for display.
        path: String,
        /// The tag as resolved by the parser.
        tag: String,
        /// 1-based line of the tag.
        line: usize,
        /// 1-based column of the tag.
        column: usize,
    },

    /// A key is missing from a mapping that has a merge key (`<<`), so it
    /// may be inherited; inserting it would shadow the merged value.
    #[error("{path} has a merge key (`<<`) at {line}:{column} and no key `{key}`; inserting into merged mappings is refused")]
    MergeKey {
        /// The path of the mapping, already formatted for display.
        path: String,
        /// The key that was to be inserted.
        key: String,
        /// 1-based line of the merge key.
        line: usize,
        /// 1-based column of the merge key.
        column: usize,
    },

    /// A mapping on the path holds the same key twice (invalid YAML that
    /// some parsers accept); which one to edit would be a guess.
    #[error("{path} has the key `{key}` twice (again at {line}:{column})")]
    DuplicateKey {
        /// The path of the mapping, already formatted for display.
        path: String,
        /// The duplicated key.
        key: String,
        /// 1-based line of the second occurrence.
        line: usize,
        /// 1-based column of the second occurrence.
        column: usize,
    },

    /// A key to insert is longer than the 1024 characters that YAML allows
    /// for an implicit key.
    #[error(
        "key `{key}` of {path} is too long: YAML allows at most 1024 characters in an implicit key"
    )]
    KeyTooLong {
        /// The first characters of the key, for display.
        key: String,
        /// The path of the mapping the key was to be inserted in.
        path: String,
    },

    /// An edit's path has more keys than [`crate::MAX_PATH_KEYS`].
    #[error("the path has {keys} keys; at most {max} are edited")]
    PathTooDeep {
        /// How many keys the path has.
        keys: usize,
        /// The bound.
        max: usize,
    },

    /// The text around the edited node has a layout that this crate does not
    /// edit (it would rather refuse than guess).
    #[error("unsupported layout at {line}:{column}: {what}")]
    Unsupported {
        /// What was found.
        what: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },

    /// A self-check failed: the edited text did not parse back to the
    /// original content with exactly the requested change.  The edit was
    /// not applied.  This is a bug in this crate; please report it with the
    /// input.
    #[error("internal error while editing {path}: {detail}; no change was made")]
    Internal {
        /// The path of the edit, already formatted for display.
        path: String,
        /// What went wrong.
        detail: String,
    },
}
