//! Planning, applying and verifying one [`Edit`] at a time.
//!
//! Each edit is turned into byte splices on the current text, applied, and
//! the result is parsed again.  Re-parsing after every edit keeps offsets
//! trivially right (an insertion by one edit shifts everything after it) and
//! lets a later edit see a parent mapping created by an earlier one.  The
//! re-parse doubles as a self-check: the new tree must equal the old tree
//! with exactly the requested change ([`verify`]), else the edit is refused.

use std::ops::Range;

use crate::render::{block_value, double_quoted, is_plain_safe, single_quoted};
use crate::tree::{self, line_end, line_start, skip_blank_and_comments, Doc, Kind, Node, Style};
use crate::{display_path, Edit, Error};

/// YAML's limit for implicit keys, in characters.
const MAX_KEY_CHARS: usize = 1024;

struct Splice {
    range: Range<usize>,
    text: String,
}

struct Ctx<'t> {
    text: &'t str,
    /// The line break used for inserted lines: the file's first one.
    eol: &'static str,
    /// The indentation step for new nested mappings (see [`indent_step`]).
    step: usize,
}

/// The most keys an edit's path may have. kseal's own paths have three
/// (`spec`, `encryptedData`, item); Kubernetes objects are rarely deeper than ten.
pub const MAX_PATH_KEYS: usize = 32;

/// Applies `edits` in order to document `doc` of `text` (already parsed as
/// `docs`).
pub(crate) fn apply_edits(
    text: &str,
    mut docs: Vec<Doc>,
    doc: usize,
    edits: &[Edit],
) -> Result<String, Error> {
    if doc >= docs.len() {
        return Err(Error::DocumentOutOfRange {
            index: doc,
            count: docs.len(),
        });
    }
    let mut current = text.to_owned();
    for edit in edits {
        let splices = plan(&current, &docs[doc], edit)?;
        let next = splice(&current, splices);
        let internal = |detail: String| Error::Internal {
            path: display_path(&edit.path),
            detail,
        };
        let new_docs = tree::parse(&next)
            .map_err(|e| internal(format!("the edited text does not parse ({e})")))?;
        verify(&docs, &new_docs, doc, edit).map_err(internal)?;
        current = next;
        docs = new_docs;
    }
    Ok(current)
}

/// Applies non-overlapping splices, from the last to the first so that the
/// offsets of the ones still to apply stay valid.
fn splice(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| std::cmp::Reverse((s.range.start, s.range.end)));
    let mut out = text.to_owned();
    for s in splices {
        out.replace_range(s.range, &s.text);
    }
    out
}

fn plan(text: &str, doc: &Doc, edit: &Edit) -> Result<Vec<Splice>, Error> {
    let path = &edit.path;
    if path.is_empty() {
        return Err(Error::EmptyPath);
    }
    // Checked before any work: a path is the caller's input, and a deep one would build (and
    // re-parse) a chain of nested mappings as deep as it is (found by the `yamledit` fuzz
    // target: hundreds of keys overflowed the stack).
    if path.len() > MAX_PATH_KEYS {
        return Err(Error::PathTooDeep {
            keys: path.len(),
            max: MAX_PATH_KEYS,
        });
    }
    let ctx = Ctx {
        text,
        eol: detect_eol(text),
        step: indent_step(&doc.root),
    };
    if let Some(k) = explicit_key(text, &doc.root) {
        // A `? key` entry without a value swallows what an insertion puts after it; kseal's
        // manifests never use explicit keys, so refuse rather than guess (found by the
        // `yamledit` fuzz target).
        return Err(Error::Unsupported {
            what: "an explicit mapping key (`? key`) without a value",
            line: k.line,
            column: k.col + 1,
        });
    }
    let mut node = &doc.root;
    // The mapping holding `node`, and `node`'s key in it.
    let mut parent: Option<(&Node, &Node)> = None;
    for (i, component) in path.iter().enumerate() {
        check_editable(node, &path[..i])?;
        let Kind::Mapping { flow, entries } = &node.kind else {
            return match parent {
                Some((map, key)) if node.is_null() => {
                    fill_null(&ctx, map, key, node, path, i, &edit.value)
                }
                _ => Err(not_a_mapping(node, &path[..i])),
            };
        };
        // An empty key (`: v`) reads as null, and a plain `?` value beside it turns into an
        // explicit-key indicator once an entry follows: refuse such a mapping rather than guess
        // (found by the `yamledit` fuzz target).
        if let Some((k, _)) = entries.iter().find(|(k, _)| k.start == k.end) {
            return Err(Error::Unsupported {
                what: "a mapping with an empty key",
                line: k.line,
                column: k.col + 1,
            });
        }
        match find_key(entries, component, &path[..i])? {
            Some((key, value)) if i + 1 == path.len() => {
                return replace_value(&ctx, *flow, key, value, path, &edit.value);
            }
            Some((key, value)) => {
                parent = Some((node, key));
                node = value;
            }
            None => {
                if let Some((merge, _)) = entries.iter().find(|(k, _)| is_merge_key(k)) {
                    return Err(Error::MergeKey {
                        path: display_path(&path[..i]),
                        key: component.clone(),
                        line: merge.line,
                        column: merge.col + 1,
                    });
                }
                return insert_into(&ctx, node, parent, &path[i..], &edit.value, &path[..i]);
            }
        }
    }
    unreachable_path(path)
}

fn unreachable_path(path: &[String]) -> Result<Vec<Splice>, Error> {
    // The loop above returns on its last iteration; this is only reached if
    // that invariant is broken.
    Err(Error::Internal {
        path: display_path(path),
        detail: "the path walk ended without a decision".into(),
    })
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { value, style: Style::Plain } if value == "<<")
}

/// Refuses aliases, anchors and tags on a node that the edit goes through or
/// replaces.
fn check_editable(node: &Node, path: &[String]) -> Result<(), Error> {
    let (line, column) = (node.line, node.col + 1);
    if matches!(node.kind, Kind::Alias) {
        return Err(Error::Alias {
            path: display_path(path),
            line,
            column,
        });
    }
    if let Some((line, column)) = node.anchor {
        return Err(Error::Anchor {
            path: display_path(path),
            line,
            column,
        });
    }
    if let Some((tag, line, column)) = &node.tag {
        return Err(Error::Tag {
            path: display_path(path),
            tag: tag.clone(),
            line: *line,
            column: *column,
        });
    }
    Ok(())
}

pub(crate) fn not_a_mapping(node: &Node, path: &[String]) -> Error {
    if matches!(node.kind, Kind::Alias) {
        return Error::Alias {
            path: display_path(path),
            line: node.line,
            column: node.col + 1,
        };
    }
    Error::NotAMapping {
        path: display_path(path),
        found: if path.is_empty() && node.is_null() {
            "an empty document"
        } else {
            node.describe()
        },
        line: node.line,
        column: node.col + 1,
    }
}

/// The first mapping key in `root` written as an explicit key (`? key`) with no value, found without
/// recursion (the nesting depth is the input's choice).
fn explicit_key<'n>(text: &str, root: &'n Node) -> Option<&'n Node> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &node.kind {
            Kind::Mapping { entries, .. } => {
                for (k, v) in entries {
                    let line_start = text[..k.start].rfind('\n').map_or(0, |i| i + 1);
                    if v.start == v.end && text[line_start..k.start].trim_end().ends_with('?') {
                        return Some(k);
                    }
                    stack.push(k);
                    stack.push(v);
                }
            }
            Kind::Sequence { items } => stack.extend(items.iter()),
            _ => {}
        }
    }
    None
}

/// The entry with key `component` in a mapping; a duplicate is an error.
pub(crate) fn find_key<'n>(
    entries: &'n [(Node, Node)],
    component: &str,
    path: &[String],
) -> Result<Option<(&'n Node, &'n Node)>, Error> {
    let mut found = entries
        .iter()
        .filter(|(k, _)| k.key_text() == Some(component));
    let first = found.next();
    if let Some((dup, _)) = found.next() {
        return Err(Error::DuplicateKey {
            path: display_path(path),
            key: component.to_owned(),
            line: dup.line,
            column: dup.col + 1,
        });
    }
    Ok(first.map(|(k, v)| (k, v)))
}

/// Replaces the scalar `value` of `key` (in a mapping of style `flow`).
fn replace_value(
    ctx: &Ctx<'_>,
    flow: bool,
    key: &Node,
    value: &Node,
    path: &[String],
    new: &str,
) -> Result<Vec<Splice>, Error> {
    check_editable(value, path)?;
    let Kind::Scalar { style, .. } = &value.kind else {
        return Err(Error::NotAScalar {
            path: display_path(path),
            found: value.describe(),
            line: value.line,
            column: value.col + 1,
        });
    };
    let rendered = if flow {
        // In flow context plain scalars have extra restrictions (`,[]{}`),
        // and a JSON file must stay JSON: always a JSON string.
        double_quoted(new)
    } else {
        match style {
            Style::DoubleQuoted => double_quoted(new),
            Style::SingleQuoted => single_quoted(new).unwrap_or_else(|| double_quoted(new)),
            Style::Plain | Style::Block => block_value(new),
        }
    };
    if value.is_empty_scalar() {
        // `key:` with nothing after the colon.
        let at = colon_end(ctx, key)?;
        return Ok(vec![Splice {
            range: at..at,
            text: format!(" {rendered}"),
        }]);
    }
    let start = if *style == Style::Block {
        // The parser's span of a block scalar starts at its content; the
        // header (`|`, `>-`, ...) is the first token after the colon.
        let after = colon_end(ctx, key)?;
        let header = skip_blank_and_comments(ctx.text, after);
        if !matches!(ctx.text.as_bytes().get(header), Some(b'|' | b'>')) || header > value.end {
            return Err(unsupported(
                ctx.text,
                header,
                "a block scalar header was expected after the colon",
            ));
        }
        header
    } else {
        value.start
    };
    Ok(vec![Splice {
        range: start..value.end,
        text: rendered,
    }])
}

/// Inserts the chain `keys` (the first one missing from `map`, the others
/// to be created under it) with the string `new` at its end.
fn insert_into(
    ctx: &Ctx<'_>,
    map: &Node,
    parent: Option<(&Node, &Node)>,
    keys: &[String],
    new: &str,
    map_path: &[String],
) -> Result<Vec<Splice>, Error> {
    let Kind::Mapping { flow, entries } = &map.kind else {
        return Err(not_a_mapping(map, map_path));
    };
    if let Some((last_key, last_value)) = entries.last() {
        if *flow {
            // `, "key": value` right after the last value; on its own line at
            // the siblings' column when the mapping is laid out on lines.
            let multiline = last_key.line > map.line;
            let at = last_key.end.max(last_value.end);
            let indent = if multiline {
                last_key.col
            } else {
                line_indent(ctx.text, map.start)
            };
            let sep = if multiline {
                format!(",{}{}", ctx.eol, spaces(last_key.col))
            } else {
                ", ".to_owned()
            };
            let entry = flow_entry(ctx, keys, new, indent, multiline, map_path)?;
            return Ok(vec![Splice {
                range: at..at,
                text: format!("{sep}{entry}"),
            }]);
        }
        // An explicit key (`? key`) without a value has no `:`; the layout
        // around such entries is not worth guessing at.
        colon_end(ctx, last_key)?;
        // A new line after the last entry's last line (after its comment).
        let at = line_end(ctx.text, map.end.max(last_key.end));
        if ends_in_unterminated_block_scalar(map) {
            // `key: |` + content up to the end of the file: without a line
            // break the content has no final newline; the line break before
            // a new entry would add one to it (or move its last blank line).
            return Err(unsupported(
                ctx.text,
                line_start(ctx.text, at),
                "a block scalar ends the file without a final line break; add one first",
            ));
        }
        let entry = block_chain(ctx, keys, new, last_key.entry_indent(), map_path)?;
        return Ok(vec![Splice {
            range: at..at,
            text: format!("{}{entry}", ctx.eol),
        }]);
    }
    // An empty mapping can only be a flow one: `{}`.
    match parent {
        Some((parent_map, parent_key)) if !is_flow_map(parent_map) => {
            // `key: {}` in a block mapping becomes a block mapping:
            // `key:` + new lines one indentation step deeper.
            let from = colon_end(ctx, parent_key)?;
            let at = line_end(ctx.text, map.end);
            let entry = block_chain(
                ctx,
                keys,
                new,
                parent_key.entry_indent() + ctx.step,
                map_path,
            )?;
            Ok(vec![
                Splice {
                    range: from..map.end,
                    text: String::new(),
                },
                Splice {
                    range: at..at,
                    text: format!("{}{entry}", ctx.eol),
                },
            ])
        }
        _ => {
            let multiline = parent.is_some_and(|(m, _)| is_multiline_flow(m));
            let indent = line_indent(ctx.text, map.start);
            let object = flow_value(ctx, keys, new, indent, multiline, map_path)?;
            Ok(vec![Splice {
                range: map.start..map.end,
                text: object,
            }])
        }
    }
}

/// Replaces the null value `null` of `key` in `map` by a mapping holding the
/// chain `keys`.
///
/// `path[..depth]` is the path of the null value, `path[depth..]` the chain.
fn fill_null(
    ctx: &Ctx<'_>,
    map: &Node,
    key: &Node,
    null: &Node,
    path: &[String],
    depth: usize,
    new: &str,
) -> Result<Vec<Splice>, Error> {
    let (map_path, keys) = path.split_at(depth);
    let colon = colon_end(ctx, key)?;
    if is_flow_map(map) {
        let indent = line_indent(ctx.text, key.start);
        let object = flow_value(ctx, keys, new, indent, is_multiline_flow(map), map_path)?;
        if null.is_empty_scalar() {
            return Ok(vec![Splice {
                range: colon..colon,
                text: format!(" {object}"),
            }]);
        }
        return Ok(vec![Splice {
            range: null.start..null.end,
            text: object,
        }]);
    }
    let entry = block_chain(ctx, keys, new, key.entry_indent() + ctx.step, map_path)?;
    if null.is_empty_scalar() {
        let at = line_end(ctx.text, colon);
        return Ok(vec![Splice {
            range: at..at,
            text: format!("{}{entry}", ctx.eol),
        }]);
    }
    // `key: null  # c` becomes `key:  # c` + the new lines.
    let at = line_end(ctx.text, null.end);
    Ok(vec![
        Splice {
            range: colon..null.end,
            text: String::new(),
        },
        Splice {
            range: at..at,
            text: format!("{}{entry}", ctx.eol),
        },
    ])
}

/// Whether the last node of `node` (its last value, recursively) is an
/// unterminated block scalar (see [`Node::unterminated`]).
fn ends_in_unterminated_block_scalar(node: &Node) -> bool {
    match &node.kind {
        Kind::Mapping { entries, .. } => entries
            .last()
            .is_some_and(|(_, v)| ends_in_unterminated_block_scalar(v)),
        Kind::Sequence { items } => items.last().is_some_and(ends_in_unterminated_block_scalar),
        Kind::Scalar { .. } | Kind::Alias => node.unterminated,
    }
}

fn is_flow_map(node: &Node) -> bool {
    matches!(node.kind, Kind::Mapping { flow: true, .. })
}

/// A flow mapping whose entries are on lines of their own (pretty JSON).
fn is_multiline_flow(map: &Node) -> bool {
    match &map.kind {
        Kind::Mapping {
            flow: true,
            entries,
        } => entries.first().is_some_and(|(k, _)| k.line > map.line),
        _ => false,
    }
}

/// A key rendered for block (`flow == false`) or flow context.
fn render_key(key: &str, flow: bool, map_path: &[String]) -> Result<String, Error> {
    let rendered = if !flow && is_plain_safe(key) {
        key.to_owned()
    } else {
        double_quoted(key)
    };
    if rendered.chars().count() > MAX_KEY_CHARS {
        return Err(Error::KeyTooLong {
            key: key.chars().take(40).collect(),
            path: display_path(map_path),
        });
    }
    Ok(rendered)
}

/// Block lines for `keys` (each one level deeper) ending in `: new`, the
/// first at `indent`; no leading or trailing line break.
fn block_chain(
    ctx: &Ctx<'_>,
    keys: &[String],
    new: &str,
    indent: usize,
    map_path: &[String],
) -> Result<String, Error> {
    let mut out = String::new();
    for (depth, key) in keys.iter().enumerate() {
        if depth > 0 {
            out.push_str(ctx.eol);
        }
        out.push_str(&spaces(indent + depth * ctx.step));
        out.push_str(&render_key(key, false, map_path)?);
        out.push(':');
    }
    out.push(' ');
    out.push_str(&block_value(new));
    Ok(out)
}

/// `"k1": <flow_value of the rest>`.
fn flow_entry(
    ctx: &Ctx<'_>,
    keys: &[String],
    new: &str,
    indent: usize,
    multiline: bool,
    map_path: &[String],
) -> Result<String, Error> {
    let Some((first, rest)) = keys.split_first() else {
        return Ok(double_quoted(new));
    };
    let value = flow_value(ctx, rest, new, indent, multiline, map_path)?;
    Ok(format!("{}: {value}", render_key(first, true, map_path)?))
}

/// The JSON string `new` if `keys` is empty, else a flow object holding the
/// chain; `indent` is the indentation of the line the object starts on.
fn flow_value(
    ctx: &Ctx<'_>,
    keys: &[String],
    new: &str,
    indent: usize,
    multiline: bool,
    map_path: &[String],
) -> Result<String, Error> {
    if keys.is_empty() {
        return Ok(double_quoted(new));
    }
    let inner = indent + ctx.step;
    let entry = flow_entry(ctx, keys, new, inner, multiline, map_path)?;
    Ok(if multiline {
        format!(
            "{{{eol}{}{entry}{eol}{}}}",
            spaces(inner),
            spaces(indent),
            eol = ctx.eol
        )
    } else {
        format!("{{{entry}}}")
    })
}

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

/// `\r\n` if the first line break of the text is one, else `\n`.
fn detect_eol(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// The number of spaces that starts the line holding `pos`.
fn line_indent(text: &str, pos: usize) -> usize {
    let start = line_start(text, pos);
    text[start..].bytes().take_while(|&b| b == b' ').count()
}

/// The file's indentation step: the smallest positive column difference
/// between a key and the first key of a mapping nested under it on a later
/// line (block or flow alike); 2 when there is no such pair.
fn indent_step(root: &Node) -> usize {
    fn walk(node: &Node, best: &mut Option<usize>) {
        match &node.kind {
            Kind::Mapping { entries, .. } => {
                for (key, value) in entries {
                    if let Kind::Mapping { entries: inner, .. } = &value.kind {
                        if let Some((first, _)) = inner.first() {
                            if first.line > key.line && first.entry_indent() > key.entry_indent() {
                                let step = first.entry_indent() - key.entry_indent();
                                *best = Some(best.map_or(step, |b| b.min(step)));
                            }
                        }
                    }
                    walk(value, best);
                }
            }
            Kind::Sequence { items } => items.iter().for_each(|item| walk(item, best)),
            Kind::Scalar { .. } | Kind::Alias => {}
        }
    }
    let mut best = None;
    walk(root, &mut best);
    best.unwrap_or(2)
}

/// The byte offset just past the `:` that follows `key`.
fn colon_end(ctx: &Ctx<'_>, key: &Node) -> Result<usize, Error> {
    let pos = skip_blank_and_comments(ctx.text, key.end);
    if ctx.text.as_bytes().get(pos) == Some(&b':') {
        Ok(pos + 1)
    } else {
        Err(unsupported(ctx.text, key.start, "no `:` after the key"))
    }
}

fn unsupported(text: &str, pos: usize, what: &'static str) -> Error {
    let start = line_start(text, pos);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[start..pos].chars().count() + 1;
    Error::Unsupported { what, line, column }
}

// ---------------------------------------------------------------------------
// Self-check.

/// Content of a node for comparison: scalars by value and whether plain
/// (which decides their type); `New` stands for a string written by this
/// crate, in whatever style.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Scalar { value: String, plain: bool },
    Map(Vec<(Value, Value)>),
    Seq(Vec<Value>),
    Alias,
    New(String),
}

impl Value {
    fn of(node: &Node) -> Value {
        match &node.kind {
            Kind::Scalar { value, style } => Value::Scalar {
                value: value.clone(),
                plain: *style == Style::Plain,
            },
            Kind::Mapping { entries, .. } => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (Value::of(k), Value::of(v)))
                    .collect(),
            ),
            Kind::Sequence { items } => Value::Seq(items.iter().map(Value::of).collect()),
            Kind::Alias => Value::Alias,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Value::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn is_key(&self, key: &str) -> bool {
        matches!(self, Value::Scalar { value, .. } | Value::New(value) if value == key)
    }

    /// `self` with `path` set to `new` the way [`plan`] means to.
    fn set(&mut self, path: &[String], new: &str) -> bool {
        let Some((first, rest)) = path.split_first() else {
            *self = Value::New(new.to_owned());
            return true;
        };
        if self.is_null() {
            *self = Value::Map(Vec::new());
        }
        let Value::Map(entries) = self else {
            return false;
        };
        if let Some((_, value)) = entries.iter_mut().find(|(k, _)| k.is_key(first)) {
            return value.set(rest, new);
        }
        let mut value = Value::Map(Vec::new());
        value.set(rest, new);
        entries.push((Value::New(first.clone()), value));
        true
    }

    /// Whether `actual` is what `self` (an expectation) describes.
    fn matches(&self, actual: &Value) -> bool {
        match (self, actual) {
            (Value::New(s), Value::Scalar { value, plain }) => {
                s == value && (!plain || is_plain_safe(s))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka.matches(kb) && va.matches(vb))
            }
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.matches(y))
            }
            (a, b) => a == b,
        }
    }
}

/// Checks that `after` is `before` with exactly `edit` applied to `doc`.
fn verify(before: &[Doc], after: &[Doc], doc: usize, edit: &Edit) -> Result<(), String> {
    if before.len() != after.len() {
        return Err(format!(
            "the document count changed from {} to {}",
            before.len(),
            after.len()
        ));
    }
    for (i, (old, new)) in before.iter().zip(after).enumerate() {
        let mut expected = Value::of(&old.root);
        if i == doc && !expected.set(&edit.path, &edit.value) {
            return Err("the path cannot be set".into());
        }
        if !expected.matches(&Value::of(&new.root)) {
            return Err(format!("document {i} would not read back as expected"));
        }
    }
    Ok(())
}
