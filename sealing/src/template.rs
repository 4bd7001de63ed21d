//! Rendering of `spec.template.data`: the subset of Go `text/template` + Sprig that SealedSecret
//! templates use in practice. Bitnami renders these with the full Go engine; kseal implements
//! the forms people write and refuses anything else with a message that names the construct,
//! instead of guessing.
//!
//! Supported:
//! - text with actions `{{ ... }}`, whitespace trimming `{{-` / `-}}`, comments `{{/* ... */}}`;
//! - the dot (the map of decrypted items), fields `.name`, `index . "name"`;
//! - string (`"..."`, `` `...` ``), integer and boolean literals, parentheses, pipelines `a | f b`;
//! - functions: `index`, `print`, `printf` (`%s %v %d %q %%`), `len`, `cat`, `upper`, `lower`,
//!   `title`, `trim`, `trimAll`, `trimPrefix`, `trimSuffix`, `replace`, `quote`, `squote`,
//!   `nospace`, `indent`, `nindent`, `repeat`, `default`, `toString`, `toJson`, `b64enc`,
//!   `b64dec`, `sha256sum`, `urlquery`.
//!
//! Not supported (error): control structures (`if`, `range`, `with`, `define`, `template`,
//! `block`), variables (`$x`), method calls, and every other function.
//!
//! One deliberate difference: a missing item (`.nope`, `index . "nope"`) is an error. Go prints
//! `<no value>` or an empty string, which silently turns a typo into a broken credential.
//!
//! # Hostile templates
//!
//! Any tenant who may create a SealedSecret writes these sources, and the controller renders
//! them, so every cost is bounded before it is paid (the bounds are in [`crate::limits`] and the
//! README's "Limits" section):
//! - a source longer than [`MAX_TEMPLATE_SOURCE_BYTES`] is refused before it is parsed;
//! - parentheses nest at most [`MAX_TEMPLATE_DEPTH`] deep (the parser and the evaluator recurse,
//!   and a worker thread's stack is small);
//! - every value a function produces is charged, *before* it is allocated, to one budget per
//!   SealedSecret ([`MAX_TEMPLATE_WORK_BYTES`]); `repeat`, `indent` and `replace` compute their
//!   exact result size first, so `repeat 9223372036854775807 "x"` is an error, not an abort;
//! - a rendered item is at most [`MAX_RENDERED_BYTES`], and all rendered items together too
//!   (a Secret cannot be larger than 1 MiB anyway).
//!
//! # Errors never carry values
//!
//! Every value is tracked as secret (derived from a decrypted item) or public (a literal of the
//! source). Errors name the template item and the position (line and column) of the action, and
//! quote only function names and item names written in the source; an item name or a `printf`
//! format computed from a secret value is never shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kseal_crypto::SecretBytes;
use zeroize::Zeroizing;

use crate::limits::{
    MAX_RENDERED_BYTES, MAX_TEMPLATE_DEPTH, MAX_TEMPLATE_SOURCE_BYTES, MAX_TEMPLATE_WORK_BYTES,
};
use crate::Error;

type Items = BTreeMap<String, SecretBytes>;

/// Renders every template over the decrypted items; each result overrides an item of the same
/// name (as in Bitnami's controller). All templates share one work budget.
pub fn render_all(
    templates: &BTreeMap<String, String>,
    items: &Items,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    // Every template is parsed before any is rendered, so a syntax error is reported the same
    // whatever the values are (an earlier template failing on a value must not hide it).
    for (key, src) in templates {
        check(src)
            .map_err(|e| Error::Template(format!("cannot render template data[{key:?}]: {e}")))?;
    }
    let mut budget = Budget::new(MAX_TEMPLATE_WORK_BYTES);
    let mut out = BTreeMap::new();
    let mut total = 0usize;
    for (key, src) in templates {
        let rendered = render_with(src, items, &mut budget)
            .map_err(|e| Error::Template(format!("cannot render template data[{key:?}]: {e}")))?;
        total += rendered.len();
        if total > MAX_RENDERED_BYTES {
            return Err(Error::Template(format!(
                "cannot render template data[{key:?}]: the rendered template data exceeds the limit of {MAX_RENDERED_BYTES} bytes in all"
            )));
        }
        // `rendered` is zeroized when it drops at the end of this iteration.
        out.insert(key.clone(), SecretBytes::from_slice(rendered.as_bytes()));
    }
    Ok(out)
}

/// Checks that every template parses and uses only supported constructs and functions,
/// without rendering it (no values are needed). The first error names the item.
pub fn check_all(templates: &BTreeMap<String, String>) -> Result<(), Error> {
    for (key, src) in templates {
        check(src).map_err(|e| Error::Template(format!("invalid template data[{key:?}]: {e}")))?;
    }
    Ok(())
}

/// Parses one template source without rendering it.
pub fn check(src: &str) -> Result<(), TemplateError> {
    for_each_action(src, |_, action| {
        if action.text.is_empty() {
            return Ok(()); // a comment
        }
        let pipeline = parse_action(&action)?;
        check_functions(&pipeline).map_err(|m| TemplateError::at(action.start, m))
    })
    .map(|_| ())
}

/// Renders one template source with its own budget. Errors never quote item values.
pub fn render(src: &str, items: &Items) -> Result<Zeroizing<String>, TemplateError> {
    render_with(src, items, &mut Budget::new(MAX_TEMPLATE_WORK_BYTES))
}

/// A template error: what is wrong, and where in the source (a byte offset, shown as line and
/// column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset in the source, `None` for the whole source.
    pub offset: Option<usize>,
    /// Line and column (1-based) of `offset`, filled in by the caller that has the source.
    pub line_col: Option<(usize, usize)>,
    /// The message; never contains a value.
    pub message: String,
}

impl TemplateError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        TemplateError {
            offset: Some(offset),
            line_col: None,
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        TemplateError {
            offset: None,
            line_col: None,
            message: message.into(),
        }
    }

    fn locate(mut self, src: &str) -> Self {
        if let Some(off) = self.offset {
            let before = &src.as_bytes()[..off.min(src.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            self.line_col = Some((line, col));
        }
        self
    }
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "line {line}, column {col}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The work budget of one SealedSecret's templates: bytes of values produced.
struct Budget {
    left: usize,
}

impl Budget {
    fn new(bytes: usize) -> Self {
        Budget { left: bytes }
    }

    /// Charges `n` bytes (the size of a value about to be built, or a bound on it) before they
    /// are allocated.
    fn charge(&mut self, n: usize) -> Result<(), String> {
        // Every call costs something, so many tiny calls are bounded too.
        let cost = n.max(16);
        if cost > self.left {
            return Err(format!(
                "the templates exceed the work limit of {MAX_TEMPLATE_WORK_BYTES} bytes of values"
            ));
        }
        self.left -= cost;
        Ok(())
    }
}

/// One `{{ ... }}` action: its trimmed text and where that text starts in the source.
struct Action<'s> {
    text: &'s str,
    start: usize,
}

/// Walks the source: calls `f(text_before, action)` for every action (comments skipped) and
/// returns the text after the last one. Trimming markers are applied to the text parts.
fn for_each_action<'s>(
    src: &'s str,
    mut f: impl FnMut(&'s str, Action<'s>) -> Result<(), TemplateError>,
) -> Result<&'s str, TemplateError> {
    if src.len() > MAX_TEMPLATE_SOURCE_BYTES {
        return Err(TemplateError::whole(format!(
            "the template source exceeds the limit of {MAX_TEMPLATE_SOURCE_BYTES} bytes"
        )));
    }
    let mut rest = src;
    let mut trim_next_text = false;
    let offset = |s: &str| s.as_ptr() as usize - src.as_ptr() as usize;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next_text {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let (trim_left, after) = match after.strip_prefix('-') {
            Some(a) if a.starts_with([' ', '\t', '\n', '\r']) => (true, a),
            _ => (false, after),
        };
        if trim_left {
            text = text.trim_end();
        }
        let close = after.find("}}").ok_or_else(|| {
            TemplateError::at(offset(rest) + open, "unclosed action: missing }}").locate(src)
        })?;
        let mut action = &after[..close];
        trim_next_text = false;
        if let Some(a) = action.strip_suffix('-') {
            if a.ends_with([' ', '\t', '\n', '\r']) {
                action = a;
                trim_next_text = true;
            }
        }
        rest = &after[close + 2..];
        let action = action.trim();
        if action.starts_with("/*") {
            if !action.ends_with("*/") {
                return Err(TemplateError::at(offset(action), "unclosed comment").locate(src));
            }
            f(
                text,
                Action {
                    text: "",
                    start: offset(action),
                },
            )
            .map_err(|e| e.locate(src))?;
            continue;
        }
        f(
            text,
            Action {
                text: action,
                start: offset(action),
            },
        )
        .map_err(|e| e.locate(src))?;
    }
    Ok(if trim_next_text {
        rest.trim_start()
    } else {
        rest
    })
}

fn render_with(
    src: &str,
    items: &Items,
    budget: &mut Budget,
) -> Result<Zeroizing<String>, TemplateError> {
    // Parse the whole source first, as Go's text/template does (Parse, then Execute): a syntax
    // error late in the source is reported whatever the values make of the actions before it.
    check(src)?;
    let mut out = Zeroizing::new(String::new());
    let push = |out: &mut Zeroizing<String>, s: &str, at: usize| {
        if out.len() + s.len() > MAX_RENDERED_BYTES {
            return Err(TemplateError::at(
                at,
                format!("the rendered template exceeds the limit of {MAX_RENDERED_BYTES} bytes"),
            ));
        }
        out.push_str(s);
        Ok(())
    };
    let tail = for_each_action(src, |text, action| {
        push(&mut out, text, action.start)?;
        if action.text.is_empty() {
            return Ok(()); // a comment
        }
        let pipeline = parse_action(&action)?;
        let v = Eval { items, budget }
            .pipeline(&pipeline)
            .map_err(|m| TemplateError::at(action.start, m))?;
        push(&mut out, &v.to_text(), action.start)
    })?;
    push(&mut out, tail, src.len()).map_err(|e| e.locate(src))?;
    Ok(out)
}

fn parse_action(action: &Action<'_>) -> Result<Vec<Vec<Operand>>, TemplateError> {
    let tokens = lex(action.text).map_err(|(at, m)| TemplateError::at(action.start + at, m))?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let pipeline = p
        .pipeline()
        .map_err(|m| TemplateError::at(action.start + p.offset(action.text.len()), m))?;
    if p.pos != tokens.len() {
        return Err(TemplateError::at(
            action.start + tokens[p.pos].1,
            format!("unexpected {} in action", tokens[p.pos].0.describe()),
        ));
    }
    Ok(pipeline)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Ident(String),
    Str(String),
    Int(i64),
    Bool(bool),
    Pipe,
    LParen,
    RParen,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Dot => "`.`".into(),
            Tok::Field(f) => format!("`.{f}`"),
            Tok::Ident(i) => format!("`{i}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Int(_) => "a number".into(),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::Pipe => "`|`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
        }
    }
}

const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Tokens with their byte offset in the action. Errors carry an offset too.
fn lex(s: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut toks = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        let at = i;
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                toks.push((Tok::Pipe, at));
                i += 1
            }
            '(' => {
                toks.push((Tok::LParen, at));
                i += 1
            }
            ')' => {
                toks.push((Tok::RParen, at));
                i += 1
            }
            '$' => return Err((at, "variables ($...) are not supported".into())),
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start {
                    toks.push((Tok::Dot, at));
                } else {
                    if j < b.len() && b[j] == b'.' {
                        return Err((
                            at,
                            format!("nested field `.{}.…`: items are strings", &s[start..j]),
                        ));
                    }
                    toks.push((Tok::Field(s[start..j].to_string()), at));
                }
                i = j;
            }
            '"' => {
                let mut j = i + 1;
                let mut esc = false;
                while j < b.len() && (esc || b[j] != b'"') {
                    esc = !esc && b[j] == b'\\';
                    j += 1;
                }
                if j >= b.len() {
                    return Err((at, "unterminated string".into()));
                }
                let lit: String = serde_json::from_str(&s[i..=j])
                    .map_err(|_| (at, "invalid escape in string".to_string()))?;
                toks.push((Tok::Str(lit), at));
                i = j + 1;
            }
            '`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or((at, "unterminated raw string".to_string()))?;
                toks.push((Tok::Str(s[i + 1..i + 1 + end].to_string()), at));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let n = s[i..j]
                    .parse()
                    .map_err(|_| (at, "invalid or too large number".to_string()))?;
                toks.push((Tok::Int(n), at));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let w = &s[i..j];
                if KEYWORDS.contains(&w) {
                    return Err((
                        at,
                        format!("`{w}` is not supported (only expressions and pipelines are)"),
                    ));
                }
                toks.push((
                    match w {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => return Err((at, "`nil` is not supported".into())),
                        _ => Tok::Ident(w.to_string()),
                    },
                    at,
                ));
                i = j;
            }
            _ => return Err((at, "unexpected character".into())),
        }
    }
    Ok(toks)
}

#[derive(Debug)]
enum Operand {
    Dot,
    Field(String),
    Lit(Lit),
    Func(String),
    Sub(Vec<Vec<Operand>>),
}

#[derive(Debug)]
enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
}

struct Parser<'t> {
    tokens: &'t [(Tok, usize)],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    /// Offset of the current token (or the end of the action).
    fn offset(&self, end: usize) -> usize {
        self.tokens.get(self.pos).map_or(end, |t| t.1)
    }

    fn pipeline(&mut self) -> Result<Vec<Vec<Operand>>, String> {
        let mut cmds = vec![self.command()?];
        while self.tokens.get(self.pos).map(|t| &t.0) == Some(&Tok::Pipe) {
            self.pos += 1;
            cmds.push(self.command()?);
        }
        Ok(cmds)
    }

    fn command(&mut self) -> Result<Vec<Operand>, String> {
        let mut ops = Vec::new();
        while let Some((t, _)) = self.tokens.get(self.pos) {
            let op = match t {
                Tok::Pipe | Tok::RParen => break,
                Tok::Dot => Operand::Dot,
                Tok::Field(f) => Operand::Field(f.clone()),
                Tok::Ident(i) => Operand::Func(i.clone()),
                Tok::Str(s) => Operand::Lit(Lit::Str(s.clone())),
                Tok::Int(n) => Operand::Lit(Lit::Int(*n)),
                Tok::Bool(b) => Operand::Lit(Lit::Bool(*b)),
                Tok::LParen => {
                    if self.depth >= MAX_TEMPLATE_DEPTH {
                        return Err(format!(
                            "parentheses nest deeper than the limit of {MAX_TEMPLATE_DEPTH}"
                        ));
                    }
                    self.depth += 1;
                    self.pos += 1;
                    let p = self.pipeline()?;
                    if self.tokens.get(self.pos).map(|t| &t.0) != Some(&Tok::RParen) {
                        return Err("missing `)`".into());
                    }
                    self.depth -= 1;
                    Operand::Sub(p)
                }
            };
            self.pos += 1;
            ops.push(op);
        }
        if ops.is_empty() {
            return Err("empty command".into());
        }
        Ok(ops)
    }
}

const FUNCTIONS: [&str; 26] = [
    "index",
    "print",
    "cat",
    "printf",
    "len",
    "upper",
    "lower",
    "title",
    "trim",
    "nospace",
    "toString",
    "toJson",
    "quote",
    "squote",
    "b64enc",
    "b64dec",
    "sha256sum",
    "urlquery",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "repeat",
    "indent",
    "nindent",
    "default",
    "replace",
];

fn check_functions(pipeline: &[Vec<Operand>]) -> Result<(), String> {
    for cmd in pipeline {
        for op in cmd {
            match op {
                Operand::Func(f) if !FUNCTIONS.contains(&f.as_str()) => {
                    return Err(format!("function `{f}` is not supported"))
                }
                Operand::Sub(p) => check_functions(p)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// A template value. Strings remember whether they derive from a decrypted item (`secret`);
/// `Debug` never shows them.
enum Val {
    Map,
    Str { s: Zeroizing<String>, secret: bool },
    Int(i64),
    Bool(bool),
}

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Map => f.write_str("Map"),
            Val::Str { .. } => f.write_str("Str(<redacted>)"),
            Val::Int(i) => write!(f, "Int({i})"),
            Val::Bool(b) => write!(f, "Bool({b})"),
        }
    }
}

impl Val {
    fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(match self {
            Val::Map => "map[…]".to_string(),
            Val::Str { s, .. } => s.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
        })
    }

    fn secret(&self) -> bool {
        matches!(self, Val::Str { secret: true, .. })
    }
}

fn text(v: &Val) -> Result<Zeroizing<String>, String> {
    match v {
        Val::Map => Err("expected a string, got the item map `.`".into()),
        other => Ok(other.to_text()),
    }
}

fn int(v: &Val) -> Result<i64, String> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Str { s, .. } => s
            .trim()
            .parse()
            .map_err(|_| "expected a number".to_string()),
        _ => Err("expected a number".into()),
    }
}

fn arity(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "{name} takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        ));
    }
    Ok(())
}

/// The evaluator: the items, and the budget every produced value is charged to.
struct Eval<'a> {
    items: &'a Items,
    budget: &'a mut Budget,
}

impl Eval<'_> {
    /// A new string value, charged before it is built. `secret` when any input was.
    fn make(
        &mut self,
        size: usize,
        secret: bool,
        build: impl FnOnce() -> String,
    ) -> Result<Val, String> {
        self.budget.charge(size)?;
        let s = build();
        if s.len() > MAX_RENDERED_BYTES {
            return Err(format!(
                "a value would exceed the limit of {MAX_RENDERED_BYTES} bytes"
            ));
        }
        Ok(Val::Str {
            s: Zeroizing::new(s),
            secret,
        })
    }

    fn item(&mut self, key: &str, key_secret: bool) -> Result<Val, String> {
        let Some(v) = self.items.get(key) else {
            return Err(if key_secret {
                "no item of that name in encryptedData (the name is computed from a secret value and not shown)".to_string()
            } else {
                format!("no item {key:?} in encryptedData")
            });
        };
        let Ok(s) = std::str::from_utf8(v.expose()) else {
            return Err(if key_secret {
                "an item named by a computed value is not UTF-8 text".to_string()
            } else {
                format!("item {key:?} is not UTF-8 text")
            });
        };
        self.make(s.len(), true, || s.to_string())
    }

    fn pipeline(&mut self, cmds: &[Vec<Operand>]) -> Result<Val, String> {
        let mut piped: Option<Val> = None;
        for cmd in cmds {
            piped = Some(self.command(cmd, piped.take())?);
        }
        piped.ok_or_else(|| "empty pipeline".to_string())
    }

    fn operand(&mut self, op: &Operand) -> Result<Val, String> {
        match op {
            Operand::Dot => Ok(Val::Map),
            Operand::Field(f) => self.item(f, false),
            Operand::Lit(Lit::Str(s)) => self.make(s.len(), false, || s.clone()),
            Operand::Lit(Lit::Int(i)) => Ok(Val::Int(*i)),
            Operand::Lit(Lit::Bool(b)) => Ok(Val::Bool(*b)),
            Operand::Sub(p) => self.pipeline(p),
            Operand::Func(f) => self.call(f, Vec::new()),
        }
    }

    fn command(&mut self, cmd: &[Operand], piped: Option<Val>) -> Result<Val, String> {
        match &cmd[0] {
            Operand::Func(name) => {
                let mut args = Vec::with_capacity(cmd.len());
                for o in &cmd[1..] {
                    args.push(self.operand(o)?);
                }
                args.extend(piped);
                self.call(name, args)
            }
            single if cmd.len() == 1 && piped.is_none() => self.operand(single),
            _ => Err("only a function can take arguments or a piped value".into()),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Val>) -> Result<Val, String> {
        let secret = args.iter().any(Val::secret);
        let one = |args: &[Val]| -> Result<Zeroizing<String>, String> {
            arity(name, args, 1)?;
            text(&args[0])
        };
        match name {
            "index" => {
                arity(name, &args, 2)?;
                if !matches!(args[0], Val::Map) {
                    return Err("index works on `.` only".into());
                }
                let key = text(&args[1])?;
                self.item(&key, args[1].secret())
            }
            "print" | "cat" => {
                let parts: Vec<Zeroizing<String>> =
                    args.iter().map(text).collect::<Result<_, _>>()?;
                let sep = if name == "cat" { " " } else { "" };
                let size = parts.iter().map(|p| p.len()).sum::<usize>()
                    + sep.len() * parts.len().saturating_sub(1);
                self.make(size, secret, || {
                    parts
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(sep)
                })
            }
            "printf" => {
                let (fmt, rest) = args.split_first().ok_or("printf needs a format")?;
                let fmt_secret = fmt.secret();
                let fmt = text(fmt)?;
                // The result is at most the format plus every argument quoted (`%q` escapes a
                // byte as at most 10 characters) or printed.
                let mut size = fmt.len();
                for a in rest {
                    size =
                        size.saturating_add(text(a).map_or(0, |t| t.len()).saturating_mul(10) + 2);
                }
                self.budget.charge(size.min(MAX_RENDERED_BYTES))?;
                let s = printf(&fmt, rest).map_err(|e| {
                    if fmt_secret {
                        "printf: a format computed from a secret value is invalid (not shown)"
                            .to_string()
                    } else {
                        e
                    }
                })?;
                self.make(0, secret, || s.to_string())
            }
            "len" => Ok(Val::Int(one(&args)?.chars().count() as i64)),
            "upper" | "lower" | "title" => {
                let s = one(&args)?;
                // Case mapping can grow a character to three.
                self.make(s.len().saturating_mul(3), secret, || match name {
                    "upper" => s.to_uppercase(),
                    "lower" => s.to_lowercase(),
                    _ => title(&s),
                })
            }
            "trim" | "nospace" | "toString" => {
                let s = one(&args)?;
                self.make(s.len(), secret, || match name {
                    "trim" => s.trim().to_string(),
                    "nospace" => s.chars().filter(|c| !c.is_whitespace()).collect(),
                    _ => s.to_string(),
                })
            }
            "toJson" | "quote" => {
                let s = one(&args)?;
                // JSON and Go quoting escape one byte into at most ten characters.
                self.make(s.len().saturating_mul(10) + 2, secret, || {
                    if name == "toJson" {
                        serde_json::to_string(s.as_str()).expect("a string serializes")
                    } else {
                        format!("{:?}", s.as_str())
                    }
                })
            }
            "squote" => {
                let s = one(&args)?;
                self.make(s.len() + 2, secret, || format!("'{}'", s.as_str()))
            }
            "b64enc" => {
                let s = one(&args)?;
                self.make(s.len().div_ceil(3) * 4, secret, || {
                    STANDARD.encode(s.as_bytes())
                })
            }
            "b64dec" => {
                let s = one(&args)?;
                self.budget.charge(s.len())?;
                let raw = Zeroizing::new(
                    STANDARD
                        .decode(s.as_bytes())
                        .map_err(|_| "b64dec: invalid base64".to_string())?,
                );
                let decoded = std::str::from_utf8(&raw)
                    .map_err(|_| "b64dec: result is not UTF-8".to_string())?;
                self.make(0, secret, || decoded.to_string())
            }
            "sha256sum" => {
                let s = one(&args)?;
                self.make(64, secret, || kseal_crypto::sha256_hex(s.as_bytes()))
            }
            "urlquery" => {
                let s = one(&args)?;
                self.make(s.len().saturating_mul(3), secret, || urlquery(&s))
            }
            "trimAll" | "trimPrefix" | "trimSuffix" | "default" => {
                arity(name, &args, 2)?;
                let a = text(&args[0])?;
                let s = text(&args[1])?;
                match name {
                    "trimAll" => {
                        self.make(s.len(), secret, || s.trim_matches(|c| a.contains(c)).into())
                    }
                    "trimPrefix" => self.make(s.len(), secret, || {
                        s.strip_prefix(a.as_str()).unwrap_or(&s).into()
                    }),
                    "trimSuffix" => self.make(s.len(), secret, || {
                        s.strip_suffix(a.as_str()).unwrap_or(&s).into()
                    }),
                    _ => {
                        let chosen = if s.is_empty() { &args[0] } else { &args[1] };
                        let t = text(chosen)?;
                        self.make(t.len(), chosen.secret(), || t.to_string())
                    }
                }
            }
            "repeat" => {
                arity(name, &args, 2)?;
                let n = usize::try_from(int(&args[0])?).map_err(|_| "repeat: negative count")?;
                let s = text(&args[1])?;
                let size = n
                    .checked_mul(s.len())
                    .filter(|&size| size <= MAX_RENDERED_BYTES)
                    .ok_or_else(|| {
                        format!("repeat: the result would exceed the limit of {MAX_RENDERED_BYTES} bytes")
                    })?;
                self.make(size, secret, || s.repeat(n))
            }
            "indent" | "nindent" => {
                arity(name, &args, 2)?;
                let width =
                    usize::try_from(int(&args[0])?).map_err(|_| "indent: negative width")?;
                let s = text(&args[1])?;
                let lines = s.split('\n').count();
                let size = width
                    .checked_mul(lines)
                    .and_then(|pad| pad.checked_add(s.len() + 1))
                    .filter(|&size| size <= MAX_RENDERED_BYTES)
                    .ok_or_else(|| {
                        format!("{name}: the result would exceed the limit of {MAX_RENDERED_BYTES} bytes")
                    })?;
                self.make(size, secret, || {
                    let pad = " ".repeat(width);
                    let mut out = String::with_capacity(size);
                    if name == "nindent" {
                        out.push('\n');
                    }
                    for (i, l) in s.split('\n').enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        out.push_str(&pad);
                        out.push_str(l);
                    }
                    out
                })
            }
            "replace" => {
                arity(name, &args, 3)?;
                let (old, new, s) = (text(&args[0])?, text(&args[1])?, text(&args[2])?);
                let hits = if old.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(old.as_str()).count()
                };
                let size = hits
                    .checked_mul(new.len())
                    .and_then(|added| added.checked_add(s.len()))
                    .filter(|&size| size <= MAX_RENDERED_BYTES)
                    .ok_or_else(|| {
                        format!("replace: the result would exceed the limit of {MAX_RENDERED_BYTES} bytes")
                    })?;
                self.make(size, secret, || s.replace(old.as_str(), &new))
            }
            other => Err(format!("function `{other}` is not supported")),
        }
    }
}

fn printf(fmt: &str, args: &[Val]) -> Result<Zeroizing<String>, String> {
    let mut out = Zeroizing::new(String::new());
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(v @ ('s' | 'v' | 'd' | 'q')) => {
                let a = it.next().ok_or("printf: missing argument")?;
                let t = text(a)?;
                match v {
                    'q' => write!(out, "{:?}", t.as_str()).expect("writing to a String"),
                    'd' => write!(out, "{}", int(a)?).expect("writing to a String"),
                    _ => out.push_str(&t),
                }
            }
            Some(other) if other.is_ascii_alphabetic() => {
                return Err(format!("printf verb %{other} is not supported"))
            }
            Some(_) => return Err("printf: unsupported verb or flag after %".into()),
            None => return Err("printf: format ends with %".into()),
        }
    }
    Ok(out)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn urlquery(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => write!(out, "%{b:02X}").expect("writing to a String"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Items {
        [
            ("user", "admin"),
            ("password", "p@ss w\"rd"),
            ("host", "db.example"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretBytes::from_slice(v.as_bytes())))
        .collect()
    }

    fn r(src: &str) -> Result<String, String> {
        render(src, &items())
            .map(|s| s.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_forms_users_write() {
        assert_eq!(r(r#"{{ index . "user" }}"#).unwrap(), "admin");
        assert_eq!(
            r("{{ .user }}:{{ .password }}@{{ .host }}").unwrap(),
            "admin:p@ss w\"rd@db.example"
        );
        assert_eq!(r("{{ .password | toJson }}").unwrap(), r#""p@ss w\"rd""#);
        assert_eq!(r("{{ toJson .password }}").unwrap(), r#""p@ss w\"rd""#);
        assert_eq!(
            r("{{ printf \"%s:%s\" .user .password | b64enc }}").unwrap(),
            STANDARD.encode("admin:p@ss w\"rd")
        );
        assert_eq!(r("{{ .user | upper | quote }}").unwrap(), "\"ADMIN\"");
        assert_eq!(
            r("{{ default \"x\" (index . \"user\") }}").unwrap(),
            "admin"
        );
        assert_eq!(r("{{ default \"x\" \"\" }}").unwrap(), "x");
        assert_eq!(
            r("{{ .host | replace \".\" \"-\" }}").unwrap(),
            "db-example"
        );
        assert_eq!(r("{{ replace \"\" \"-\" \"ab\" }}").unwrap(), "-a-b-");
        assert_eq!(r("a\n  {{- .user -}}  \nb").unwrap(), "aadminb");
        assert_eq!(r("{{/* comment */}}x").unwrap(), "x");
        assert_eq!(
            r("user: {{ .user }}\nkey: |{{ .host | nindent 2 }}").unwrap(),
            "user: admin\nkey: |\n  db.example"
        );
        assert_eq!(r("{{ indent 2 \"a\\nb\" }}").unwrap(), "  a\n  b");
        assert_eq!(r("{{ .user | b64enc | b64dec }}").unwrap(), "admin");
        assert_eq!(r("{{ len .user }}").unwrap(), "5");
        assert_eq!(r("{{ repeat 3 .user }}").unwrap(), "adminadminadmin");
        assert_eq!(r("{{ .user | title }}").unwrap(), "Admin");
        assert_eq!(r("{{ .host | urlquery }}").unwrap(), "db.example");
    }

    #[test]
    fn beyond_the_subset_is_refused_clearly() {
        assert_eq!(
            r("{{ if .user }}x{{ end }}").unwrap_err(),
            "line 1, column 4: `if` is not supported (only expressions and pipelines are)"
        );
        assert_eq!(
            r("{{ $x := .user }}").unwrap_err(),
            "line 1, column 4: variables ($...) are not supported"
        );
        assert_eq!(
            r("{{ env \"HOME\" }}").unwrap_err(),
            "line 1, column 4: function `env` is not supported"
        );
        assert_eq!(
            r("a\n{{ .missing }}").unwrap_err(),
            "line 2, column 4: no item \"missing\" in encryptedData"
        );
        assert_eq!(
            r("{{ .user").unwrap_err(),
            "line 1, column 1: unclosed action: missing }}"
        );
        assert_eq!(
            r("{{ .user.name }}").unwrap_err(),
            "line 1, column 4: nested field `.user.…`: items are strings"
        );
    }

    #[test]
    fn check_parses_without_values() {
        assert!(check("{{ .anything | b64enc }} and {{ index . \"x\" }}").is_ok());
        assert_eq!(
            check("{{ .a | env }}").unwrap_err().to_string(),
            "line 1, column 4: function `env` is not supported"
        );
        assert_eq!(
            check("x {{ range . }}").unwrap_err().to_string(),
            "line 1, column 6: `range` is not supported (only expressions and pipelines are)"
        );
        let e = check_all(&BTreeMap::from([(
            "dsn".to_string(),
            "{{ ( }}".to_string(),
        )]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "invalid template data[\"dsn\"]: line 1, column 5: empty command"
        );
    }

    const CANARY: &str = "CANARY-5ecr3t%x";

    fn canary_items() -> Items {
        [("password", CANARY), ("user", "admin")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), SecretBytes::from_slice(v.as_bytes())))
            .collect()
    }

    /// The whole source is parsed before anything is rendered: a syntax error is reported
    /// whatever an earlier action makes of a value (found by the `template` fuzz target).
    #[test]
    fn syntax_errors_come_before_rendering() {
        let src = "{{ b64dec .user }}{{ .user * }}";
        assert_eq!(
            r(src).unwrap_err(),
            "line 1, column 28: unexpected character"
        );
        let t = BTreeMap::from([
            ("a".to_string(), "{{ b64dec .user }}".to_string()),
            ("b".to_string(), "{{ ( }}".to_string()),
        ]);
        let e = render_all(&t, &items()).unwrap_err().to_string();
        assert!(e.contains(r#"data["b"]"#), "{e}");
    }

    #[test]
    fn errors_never_quote_values() {
        let cases = [
            "{{ .password | repeat }}",
            "{{ index . .password }}",
            "{{ index . (.password | upper) }}",
            "{{ printf .password }}",
            "{{ printf .password .user }}",
            "{{ repeat .password .user }}",
            "{{ indent .password .user }}",
            "{{ .password | b64dec }}",
            "{{ .password | int }}",
            "{{ printf \"%d\" .password }}",
            "{{ len . .password }}",
            "{{ default . .password }}",
        ];
        for src in cases {
            let e = render(src, &canary_items()).unwrap_err().to_string();
            assert!(!e.contains("CANARY") && !e.contains("5ecr3t"), "{src}: {e}");
            let all = render_all(
                &BTreeMap::from([("url".to_string(), src.to_string())]),
                &canary_items(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                !all.contains("CANARY") && !all.contains("5ecr3t"),
                "{src}: {all}"
            );
        }
        assert_eq!(
            render("{{ index . .password }}", &canary_items())
                .unwrap_err()
                .to_string(),
            "line 1, column 4: no item of that name in encryptedData (the name is computed from a secret value and not shown)"
        );
        let all = render_all(
            &BTreeMap::from([(
                "url".to_string(),
                "{{ printf \"%x\" .password }}".to_string(),
            )]),
            &items(),
        )
        .unwrap_err();
        assert_eq!(
            all.to_string(),
            "cannot render template data[\"url\"]: line 1, column 4: printf verb %x is not supported"
        );
    }

    #[test]
    fn hostile_sizes_are_errors_before_allocation() {
        for (src, want) in [
            (
                "{{ repeat 100000000000 \"x\" }}",
                "repeat: the result would exceed the limit of 1048576 bytes",
            ),
            (
                "{{ repeat 9223372036854775807 \"x\" }}",
                "repeat: the result would exceed the limit of 1048576 bytes",
            ),
            (
                "{{ indent 9223372036854775807 \"x\" }}",
                "indent: the result would exceed the limit of 1048576 bytes",
            ),
            (
                "{{ nindent 600000 \"a\\nb\" }}",
                "nindent: the result would exceed the limit of 1048576 bytes",
            ),
            (
                "{{ replace \"\" (repeat 1000 \"x\") (repeat 2000 \"y\") }}",
                "replace: the result would exceed the limit of 1048576 bytes",
            ),
            (
                "{{ repeat 99999999999999999999 \"x\" }}",
                "invalid or too large number",
            ),
        ] {
            let e = r(src).unwrap_err();
            assert!(e.ends_with(want), "{src}: {e}");
        }
        // Many large values: the work budget, not memory, runs out.
        let src = "{{ repeat 700000 \"x\" | upper | lower | sha256sum }}".repeat(20);
        let e = r(&src).unwrap_err();
        assert!(e.contains("work limit"), "{e}");
        // One output too large in all.
        let e = r(&"{{ repeat 600000 \"x\" }}".repeat(2)).unwrap_err();
        assert!(e.contains("the rendered template exceeds"), "{e}");
    }

    #[test]
    fn deep_nesting_and_long_sources_are_refused() {
        let deep = format!(
            "{{{{ {}.user{} }}}}",
            "(".repeat(12_000),
            ")".repeat(12_000)
        );
        let e = r(&deep).unwrap_err();
        assert!(
            e.contains("parentheses nest deeper than the limit of 32"),
            "{e}"
        );
        let ok = format!("{{{{ {}.user{} }}}}", "(".repeat(32), ")".repeat(32));
        assert_eq!(r(&ok).unwrap(), "admin");
        let long = "x".repeat(MAX_TEMPLATE_SOURCE_BYTES + 1);
        assert_eq!(
            r(&long).unwrap_err(),
            "the template source exceeds the limit of 65536 bytes"
        );
    }
}
