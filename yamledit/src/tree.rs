//! A minimal node tree with byte positions, built from `granit-parser` events.
//!
//! The parser reports exact byte ranges for scalars and flow collections.
//! Block collections have no closing token, so their end is computed here as
//! the end of their last child; block scalars' spans start at their content
//! and run up to the next token, so their end is computed from the content
//! lines (see [`block_scalar_end`]).

use granit_parser::{Event, Marker, Options, Parser, ScalarStyle, Span, StructureStyle, Tag};

use crate::Error;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `|` or `>`.
    Block,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Scalar {
        value: String,
        style: Style,
    },
    Mapping {
        flow: bool,
        entries: Vec<(Node, Node)>,
    },
    Sequence {
        items: Vec<Node>,
    },
    Alias,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte offset where the node's text starts (for a block scalar: its
    /// first content character; for a block mapping: its first key; for a
    /// block sequence: its first `-`).
    pub start: usize,
    /// Byte offset just past the node's last character (see module docs).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 0-based column of `start`, in characters.
    pub col: usize,
    /// For a block mapping key: the indentation of its entry, as the parser
    /// reports it (differs from `col` for an explicit `? key`).
    pub key_indent: Option<usize>,
    /// For a block scalar: it runs to the end of a text that has no final
    /// line break, so a line break after it would change its content.
    pub unterminated: bool,
    /// 1-based line and column of the node's anchor (`&name`), if any.
    pub anchor: Option<(usize, usize)>,
    /// The node's tag, with the 1-based line and column where it is written.
    pub tag: Option<(String, usize, usize)>,
}

impl Node {
    /// A plain `~`, `null` (any common case) or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: Style::Plain }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// An empty plain scalar, as in `key:` with nothing after the colon.
    pub fn is_empty_scalar(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Scalar {
                style: Style::Plain,
                ..
            }
        ) && self.start == self.end
    }

    /// "a mapping", "a sequence", ... for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Mapping { .. } => "a mapping",
            Kind::Sequence { .. } => "a sequence",
            Kind::Alias => "an alias",
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
        }
    }

    /// The column at which a block mapping entry with this key starts.
    pub fn entry_indent(&self) -> usize {
        self.key_indent.unwrap_or(self.col)
    }

    /// The scalar text of a key, if the node is a scalar.
    pub fn key_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Doc {
    pub root: Node,
    pub explicit_start: bool,
    pub explicit_end: bool,
    /// Byte offset of the `---` marker, or of the start of the first line of
    /// an implicit document's content.
    pub start: usize,
}

/// Parses every document of `text`.
pub(crate) fn parse(text: &str) -> Result<Vec<Doc>, Error> {
    let mut options = Options::default();
    // Comments are found by scanning the text where needed; events for them
    // would only have to be skipped.
    options.emit_comments = false;
    // Anchor events carry the position of `&name`, for error messages.
    options.emit_anchor_events = true;
    let mut builder = Builder {
        text,
        parser: Parser::new_from_str_with_options(text, options),
        pending: None,
    };
    builder.stream()
}

struct Builder<'t> {
    text: &'t str,
    parser: Parser<'t, granit_parser::StrInput<'t>>,
    /// An event read ahead while looking for an anchor event.
    pending: Option<(Event<'t>, Span)>,
}

/// 1-based line and column of a marker.
pub(crate) fn line_col(m: &Marker) -> (usize, usize) {
    (m.line(), m.col() + 1)
}

fn unexpected(span: &Span, what: &'static str) -> Error {
    let (line, column) = line_col(&span.start);
    Error::Unsupported { what, line, column }
}

impl<'t> Builder<'t> {
    /// The next structural event; anchor and comment events are skipped
    /// (see [`Self::properties`] for anchors).
    fn pull(&mut self) -> Result<(Event<'t>, Span), Error> {
        if let Some(pending) = self.pending.take() {
            return Ok(pending);
        }
        loop {
            let Some(next) = self.parser.next() else {
                return Err(Error::Syntax {
                    line: 0,
                    column: 0,
                    message: "unexpected end of the event stream".into(),
                });
            };
            let (event, span) = next.map_err(|e| {
                let (line, column) = line_col(e.marker());
                Error::Syntax {
                    line,
                    column,
                    message: e.info(),
                }
            })?;
            match event {
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::Alias(_)
                | Event::UnresolvedAlias(_)
                | Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd => return Ok((event, span)),
                // `Anchor`, and `Comment` when granit's `comments` feature is on.
                _ => {}
            }
        }
    }

    /// Records a node's anchor and tag with their positions.  The parser
    /// emits an anchor event right after the anchored node's event.
    fn properties(
        &mut self,
        node: &mut Node,
        anchor: usize,
        tag: Option<&Tag>,
        span: &Span,
    ) -> Result<(), Error> {
        if let Some(tag) = tag {
            let (line, column) = line_col(&span.tag_start().unwrap_or(span.start));
            node.tag = Some((tag.to_string(), line, column));
        }
        if anchor != 0 {
            let (line, column) = line_col(&span.start);
            node.anchor = Some((line, column));
            let next = self.parser.next().transpose().map_err(|e| {
                let (line, column) = line_col(e.marker());
                Error::Syntax {
                    line,
                    column,
                    message: e.info(),
                }
            })?;
            match next {
                Some((Event::Anchor(..), anchor_span)) => {
                    node.anchor = Some(line_col(&anchor_span.start));
                }
                Some(other) => self.pending = Some(other),
                None => {}
            }
        }
        Ok(())
    }

    fn byte(&self, m: &Marker) -> Result<usize, Error> {
        // Always `Some` for a parser over a `&str`; refuse rather than guess.
        m.byte_offset()
            .filter(|&b| b <= self.text.len() && self.text.is_char_boundary(b))
            .ok_or_else(|| {
                let (line, column) = line_col(m);
                Error::Unsupported {
                    what: "the parser reported no byte offset",
                    line,
                    column,
                }
            })
    }

    fn stream(&mut self) -> Result<Vec<Doc>, Error> {
        let (event, span) = self.pull()?;
        if !matches!(event, Event::StreamStart) {
            return Err(unexpected(
                &span,
                "the event stream does not start with a stream start",
            ));
        }
        let mut docs = Vec::new();
        loop {
            let (event, span) = self.pull()?;
            match event {
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(explicit, _) => {
                    let marker = self.byte(&span.start)?;
                    let start = if explicit {
                        marker
                    } else {
                        line_start(self.text, marker)
                    };
                    let (event, span) = self.pull()?;
                    let root = self.node(event, span)?;
                    let (event, span) = self.pull()?;
                    if !matches!(event, Event::DocumentEnd) {
                        return Err(unexpected(&span, "expected the end of a document"));
                    }
                    let explicit_end = span.slice(self.text) == Some("...");
                    docs.push(Doc {
                        root,
                        explicit_start: explicit,
                        explicit_end,
                        start,
                    });
                }
                _ => return Err(unexpected(&span, "expected a document")),
            }
        }
    }

    fn node(&mut self, event: Event<'t>, span: Span) -> Result<Node, Error> {
        let start = self.byte(&span.start)?;
        let mut node = Node {
            kind: Kind::Alias,
            start,
            end: start,
            line: span.start.line(),
            col: span.start.col(),
            key_indent: None,
            unterminated: false,
            anchor: None,
            tag: None,
        };
        match event {
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                node.end = self.byte(&span.end)?;
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.properties(&mut node, anchor, tag.as_deref(), &span)?;
                let span_end = self.byte(&span.end)?;
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                };
                if style != Style::Block {
                    node.key_indent = span.indent;
                }
                node.unterminated = style == Style::Block
                    && span_end == self.text.len()
                    && !self.text.ends_with('\n');
                node.end = if style == Style::Block {
                    block_scalar_end(
                        self.text,
                        start,
                        span_end,
                        span.indent,
                        value.ends_with("\n\n"),
                    )
                } else {
                    span_end
                };
                node.kind = Kind::Scalar {
                    value: value.into_owned(),
                    style,
                };
            }
            Event::MappingStart(style, anchor, tag) => {
                self.properties(&mut node, anchor, tag.as_deref(), &span)?;
                let flow = style == StructureStyle::Flow;
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.pull()?;
                    if matches!(event, Event::MappingEnd) {
                        node.end = if flow {
                            self.byte(&span.end)?
                        } else {
                            entries.last().map_or(start, |(_, v): &(Node, Node)| v.end)
                        };
                        break;
                    }
                    let key = self.node(event, span)?;
                    let (event, span) = self.pull()?;
                    let mut value = self.node(event, span)?;
                    if value.is_empty_scalar() {
                        // The parser puts the empty value of `key:` at the
                        // colon; put it just past the colon, so that the
                        // mapping does not end before its own text does.
                        let colon = skip_blank_and_comments(self.text, key.end);
                        if self.text.as_bytes().get(colon) == Some(&b':') && colon + 1 > value.start
                        {
                            value.start = colon + 1;
                            value.end = colon + 1;
                        }
                    }
                    entries.push((key, value));
                }
                node.kind = Kind::Mapping { flow, entries };
            }
            Event::SequenceStart(style, anchor, tag) => {
                self.properties(&mut node, anchor, tag.as_deref(), &span)?;
                let flow = style == StructureStyle::Flow;
                if !flow {
                    // The parser puts a block sequence at its first item's
                    // content; report it at the first `-` instead.
                    let before = self.text[..start].trim_end_matches([' ', '\t']);
                    if before.ends_with('-') {
                        let dash = before.len() - 1;
                        node.col = node.col.saturating_sub(start - dash);
                        node.start = dash;
                    }
                }
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.pull()?;
                    if matches!(event, Event::SequenceEnd) {
                        node.end = if flow {
                            self.byte(&span.end)?
                        } else {
                            items.last().map_or(start, |v: &Node| v.end)
                        };
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                node.kind = Kind::Sequence { items };
            }
            _ => return Err(unexpected(&span, "expected a node")),
        }
        Ok(node)
    }
}

/// Skips spaces, tabs, line breaks and comments from `pos`.
pub(crate) fn skip_blank_and_comments(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while let Some(&b) = bytes.get(pos) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => pos = line_end(text, pos),
            _ => break,
        }
    }
    pos
}

/// Byte offset of the start of the line holding `pos`.
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the end of the line holding `pos`: its `\r\n` or `\n`, or
/// the end of the text.
pub(crate) fn line_end(text: &str, pos: usize) -> usize {
    match text[pos..].find('\n') {
        Some(i) => {
            let nl = pos + i;
            if nl > pos && text.as_bytes()[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            }
        }
        None => text.len(),
    }
}

/// The end of a block scalar (`|`, `>`) whose parser span is
/// `start..span_end`.
///
/// The span starts at the first content character and runs over trailing
/// empty lines up to the next token.  The end is put at the end of the last
/// content line, so that an entry inserted after the scalar keeps the blank
/// lines that follow it.  A content line is one with something beyond the
/// content indentation `indent` (even just spaces: those are content too).
/// With keep chomping (`|+`, detected as a value ending in two line breaks)
/// the trailing empty lines are content, so the end is put at the last line
/// break of the span instead; so it is when the parser gives no indentation
/// (content made of blank lines only).  An empty block scalar ends at the
/// end of its header line, found as the last non-blank character before the
/// span.
fn block_scalar_end(
    text: &str,
    start: usize,
    span_end: usize,
    indent: Option<usize>,
    keep: bool,
) -> usize {
    // The start of the last line break in `text[from..span_end]`.
    let last_break = |from: usize| {
        text[from..span_end].rfind('\n').map(|i| {
            let i = from + i;
            if i > from && text.as_bytes()[i - 1] == b'\r' {
                i - 1
            } else {
                i
            }
        })
    };
    let Some(indent) = indent else {
        // Blank content only (the span may even be empty, after the blank
        // lines): keep every line up to the span's end in the scalar.
        let header = header_end(text, start);
        return last_break(header).unwrap_or(header);
    };
    let span = &text[start..span_end];
    let mut last_content_end = None;
    let mut offset = 0;
    for (i, line) in span.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let leading = body.len() - body.trim_start_matches(' ').len();
        // The first line starts at the content itself, past the indentation.
        let content = if i == 0 {
            !body.is_empty()
        } else {
            leading >= indent && body.len() > indent
        };
        if content {
            last_content_end = Some(start + offset + body.len());
        }
        offset += line.len();
    }
    match last_content_end {
        None => header_end(text, start),
        Some(end) if keep => last_break(start).filter(|&b| b >= end).unwrap_or(end),
        Some(end) => end,
    }
}

/// The end of the last non-blank text before `pos`: for a block scalar
/// starting at `pos`, the end of its header line (or of a comment after it).
fn header_end(text: &str, pos: usize) -> usize {
    text[..pos].trim_end_matches([' ', '\t', '\r', '\n']).len()
}
