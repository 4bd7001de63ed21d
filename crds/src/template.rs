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

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kseal_crypto::SecretBytes;
use zeroize::Zeroizing;

use crate::Error;

type Items = BTreeMap<String, SecretBytes>;

/// Renders every template over the decrypted items; each result overrides an item of the same
/// name (as in Bitnami's controller).
pub fn render_all(
    templates: &BTreeMap<String, String>,
    items: &Items,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let mut out = BTreeMap::new();
    for (key, src) in templates {
        let rendered = render(src, items)
            .map_err(|e| Error::Template(format!("cannot render template data[{key:?}]: {e}")))?;
        // `rendered` is zeroized when it drops at the end of this iteration.
        out.insert(key.clone(), SecretBytes::from_slice(rendered.as_bytes()));
    }
    Ok(out)
}

/// Renders one template source. Errors never quote item values.
pub fn render(src: &str, items: &Items) -> Result<Zeroizing<String>, String> {
    let mut out = Zeroizing::new(String::new());
    let mut rest = src;
    let mut trim_next_text = false;
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
        out.push_str(text);
        let close = after.find("}}").ok_or("unclosed action: missing }}")?;
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
                return Err("unclosed comment".into());
            }
            continue;
        }
        let tokens = lex(action)?;
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
        };
        let pipeline = p.pipeline()?;
        if p.pos != tokens.len() {
            return Err(format!("unexpected {} in action", tokens[p.pos].describe()));
        }
        let v = eval_pipeline(&pipeline, items)?;
        out.push_str(&v.to_text());
    }
    out.push_str(if trim_next_text {
        rest.trim_start()
    } else {
        rest
    });
    Ok(out)
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
            Tok::Int(i) => format!("`{i}`"),
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

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1
            }
            '$' => return Err("variables ($...) are not supported".into()),
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start {
                    toks.push(Tok::Dot);
                } else {
                    if j < b.len() && b[j] == b'.' {
                        return Err(format!(
                            "nested field `.{}.…`: items are strings",
                            &s[start..j]
                        ));
                    }
                    toks.push(Tok::Field(s[start..j].to_string()));
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
                    return Err("unterminated string".into());
                }
                let lit: String = serde_json::from_str(&s[i..=j])
                    .map_err(|_| "invalid escape in string".to_string())?;
                toks.push(Tok::Str(lit));
                i = j + 1;
            }
            '`' => {
                let end = s[i + 1..].find('`').ok_or("unterminated raw string")?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let n = s[i..j]
                    .parse()
                    .map_err(|_| format!("invalid number `{}`", &s[i..j]))?;
                toks.push(Tok::Int(n));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let w = &s[i..j];
                if KEYWORDS.contains(&w) {
                    return Err(format!(
                        "`{w}` is not supported (only expressions and pipelines are)"
                    ));
                }
                toks.push(match w {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => return Err("`nil` is not supported".into()),
                    _ => Tok::Ident(w.to_string()),
                });
                i = j;
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(toks)
}

#[derive(Debug)]
enum Operand {
    Dot,
    Field(String),
    Lit(Val),
    Func(String),
    Sub(Vec<Vec<Operand>>),
}

struct Parser<'t> {
    tokens: &'t [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn pipeline(&mut self) -> Result<Vec<Vec<Operand>>, String> {
        let mut cmds = vec![self.command()?];
        while self.tokens.get(self.pos) == Some(&Tok::Pipe) {
            self.pos += 1;
            cmds.push(self.command()?);
        }
        Ok(cmds)
    }

    fn command(&mut self) -> Result<Vec<Operand>, String> {
        let mut ops = Vec::new();
        while let Some(t) = self.tokens.get(self.pos) {
            let op = match t {
                Tok::Pipe | Tok::RParen => break,
                Tok::Dot => Operand::Dot,
                Tok::Field(f) => Operand::Field(f.clone()),
                Tok::Ident(i) => Operand::Func(i.clone()),
                Tok::Str(s) => Operand::Lit(Val::Str(Zeroizing::new(s.clone()))),
                Tok::Int(n) => Operand::Lit(Val::Int(*n)),
                Tok::Bool(b) => Operand::Lit(Val::Bool(*b)),
                Tok::LParen => {
                    self.pos += 1;
                    let p = self.pipeline()?;
                    if self.tokens.get(self.pos) != Some(&Tok::RParen) {
                        return Err("missing `)`".into());
                    }
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

/// A template value. Strings may be secret: `Debug` never shows them.
enum Val {
    Map,
    Str(Zeroizing<String>),
    Int(i64),
    Bool(bool),
}

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Map => f.write_str("Map"),
            Val::Str(_) => f.write_str("Str(<redacted>)"),
            Val::Int(i) => write!(f, "Int({i})"),
            Val::Bool(b) => write!(f, "Bool({b})"),
        }
    }
}

impl Val {
    fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(match self {
            Val::Map => "map[…]".to_string(),
            Val::Str(s) => s.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
        })
    }

    fn str(s: impl Into<String>) -> Val {
        Val::Str(Zeroizing::new(s.into()))
    }
}

fn item(items: &Items, key: &str) -> Result<Val, String> {
    let v = items
        .get(key)
        .ok_or_else(|| format!("no item {key:?} in encryptedData"))?;
    let s =
        std::str::from_utf8(v.expose()).map_err(|_| format!("item {key:?} is not UTF-8 text"))?;
    Ok(Val::str(s))
}

fn eval_pipeline(cmds: &[Vec<Operand>], items: &Items) -> Result<Val, String> {
    let mut piped: Option<Val> = None;
    for cmd in cmds {
        piped = Some(eval_command(cmd, piped.take(), items)?);
    }
    piped.ok_or_else(|| "empty pipeline".to_string())
}

fn eval_operand(op: &Operand, items: &Items) -> Result<Val, String> {
    match op {
        Operand::Dot => Ok(Val::Map),
        Operand::Field(f) => item(items, f),
        Operand::Lit(Val::Str(s)) => Ok(Val::Str(s.clone())),
        Operand::Lit(Val::Int(i)) => Ok(Val::Int(*i)),
        Operand::Lit(Val::Bool(b)) => Ok(Val::Bool(*b)),
        Operand::Lit(Val::Map) => Ok(Val::Map),
        Operand::Sub(p) => eval_pipeline(p, items),
        Operand::Func(f) => call(f, Vec::new(), items),
    }
}

fn eval_command(cmd: &[Operand], piped: Option<Val>, items: &Items) -> Result<Val, String> {
    match &cmd[0] {
        Operand::Func(name) => {
            let mut args = cmd[1..]
                .iter()
                .map(|o| eval_operand(o, items))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped);
            call(name, args, items)
        }
        single if cmd.len() == 1 && piped.is_none() => eval_operand(single, items),
        _ => Err("only a function can take arguments or a piped value".into()),
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
        Val::Str(s) => s.parse().map_err(|_| "expected a number".to_string()),
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

fn call(name: &str, args: Vec<Val>, items: &Items) -> Result<Val, String> {
    let one = |args: &[Val]| -> Result<Zeroizing<String>, String> {
        arity(name, args, 1)?;
        text(&args[0])
    };
    Ok(match name {
        "index" => {
            arity(name, &args, 2)?;
            if !matches!(args[0], Val::Map) {
                return Err("index works on `.` only".into());
            }
            item(items, &text(&args[1])?)?
        }
        "print" | "cat" => {
            let parts: Vec<Zeroizing<String>> = args.iter().map(text).collect::<Result<_, _>>()?;
            let sep = if name == "cat" { " " } else { "" };
            Val::str(
                parts
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(sep),
            )
        }
        "printf" => {
            let (fmt, rest) = args.split_first().ok_or("printf needs a format")?;
            Val::str(printf(&text(fmt)?, rest)?)
        }
        "len" => Val::Int(one(&args)?.chars().count() as i64),
        "upper" => Val::str(one(&args)?.to_uppercase()),
        "lower" => Val::str(one(&args)?.to_lowercase()),
        "title" => Val::str(title(&one(&args)?)),
        "trim" => Val::str(one(&args)?.trim()),
        "nospace" => Val::str(
            one(&args)?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
        ),
        "toString" => Val::str(one(&args)?.as_str()),
        "toJson" => {
            Val::str(serde_json::to_string(one(&args)?.as_str()).map_err(|e| e.to_string())?)
        }
        "quote" => Val::str(format!("{:?}", one(&args)?.as_str())),
        "squote" => Val::str(format!("'{}'", one(&args)?.as_str())),
        "b64enc" => Val::str(STANDARD.encode(one(&args)?.as_bytes())),
        "b64dec" => {
            let raw = Zeroizing::new(
                STANDARD
                    .decode(one(&args)?.as_bytes())
                    .map_err(|_| "b64dec: invalid base64".to_string())?,
            );
            Val::str(
                String::from_utf8(raw.to_vec())
                    .map_err(|_| "b64dec: result is not UTF-8".to_string())?,
            )
        }
        "sha256sum" => Val::str(kseal_crypto::sha256_hex(one(&args)?.as_bytes())),
        "urlquery" => Val::str(urlquery(&one(&args)?)),
        "trimAll" | "trimPrefix" | "trimSuffix" | "repeat" | "indent" | "nindent" | "default" => {
            arity(name, &args, 2)?;
            let a = text(&args[0])?;
            let s = text(&args[1])?;
            match name {
                "trimAll" => Val::str(s.trim_matches(|c| a.contains(c))),
                "trimPrefix" => Val::str(s.strip_prefix(a.as_str()).unwrap_or(&s)),
                "trimSuffix" => Val::str(s.strip_suffix(a.as_str()).unwrap_or(&s)),
                "repeat" => Val::str(s.repeat(
                    usize::try_from(int(&args[0])?).map_err(|_| "repeat: negative count")?,
                )),
                "indent" | "nindent" => {
                    let pad = " ".repeat(
                        usize::try_from(int(&args[0])?).map_err(|_| "indent: negative width")?,
                    );
                    let body = s
                        .split('\n')
                        .map(|l| format!("{pad}{l}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    Val::str(if name == "nindent" {
                        format!("\n{body}")
                    } else {
                        body
                    })
                }
                _ => {
                    if s.is_empty() {
                        Val::Str(a)
                    } else {
                        Val::Str(s)
                    }
                }
            }
        }
        "replace" => {
            arity(name, &args, 3)?;
            Val::str(text(&args[2])?.replace(text(&args[0])?.as_str(), &text(&args[1])?))
        }
        other => return Err(format!("function `{other}` is not supported")),
    })
}

fn printf(fmt: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
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
            Some(other) => return Err(format!("printf verb %{other} is not supported")),
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
        render(src, &items()).map(|s| s.to_string())
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
        assert_eq!(
            r("{{ .host | replace \".\" \"-\" }}").unwrap(),
            "db-example"
        );
        assert_eq!(r("a\n  {{- .user -}}  \nb").unwrap(), "aadminb");
        assert_eq!(r("{{/* comment */}}x").unwrap(), "x");
        assert_eq!(
            r("user: {{ .user }}\nkey: |{{ .host | nindent 2 }}").unwrap(),
            "user: admin\nkey: |\n  db.example"
        );
        assert_eq!(r("{{ .user | b64enc | b64dec }}").unwrap(), "admin");
        assert_eq!(r("{{ len .user }}").unwrap(), "5");
    }

    #[test]
    fn beyond_the_subset_is_refused_clearly() {
        assert_eq!(
            r("{{ if .user }}x{{ end }}").unwrap_err(),
            "`if` is not supported (only expressions and pipelines are)"
        );
        assert_eq!(
            r("{{ $x := .user }}").unwrap_err(),
            "variables ($...) are not supported"
        );
        assert_eq!(
            r("{{ env \"HOME\" }}").unwrap_err(),
            "function `env` is not supported"
        );
        assert_eq!(
            r("{{ .missing }}").unwrap_err(),
            "no item \"missing\" in encryptedData"
        );
        assert_eq!(r("{{ .user").unwrap_err(), "unclosed action: missing }}");
        assert_eq!(
            r("{{ .user.name }}").unwrap_err(),
            "nested field `.user.…`: items are strings"
        );
    }

    #[test]
    fn errors_never_quote_values() {
        let e = r("{{ .password | repeat }}").unwrap_err();
        assert!(!e.contains("p@ss"), "{e}");
        let all = render_all(
            &BTreeMap::from([(
                "url".to_string(),
                "{{ printf \"%x\" .password }}".to_string(),
            )]),
            &items(),
        )
        .unwrap_err();
        assert!(!all.to_string().contains("p@ss"));
        assert_eq!(
            all.to_string(),
            "cannot render template data[\"url\"]: printf verb %x is not supported"
        );
    }
}
