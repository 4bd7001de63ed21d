//! The repository configuration `.kseal.yaml` (SOPS creation-rules style) and the other sources
//! of public keys: age recipients given on the command line or in recipients files.
//!
//! ```yaml
//! rules:
//!   - path: "^clusters/prod/"        # regex against the path relative to this file's directory
//!     recipients: [age1…, age1…]     # and/or
//!     recipients_file: keys/prod.txt # relative to this file
//!   - path: "^clusters/dev/"
//!     cert: certs/dev.pem            # the Bitnami format instead (file or URL)
//!     scope: namespace-wide          # optional default scope
//! ```
//!
//! The file is found by walking up from a start directory to the filesystem root; the first
//! `.kseal.yaml` wins, and the walk also stops at a directory holding `.git` (after looking in
//! it), so a repository's configuration never comes from outside it. The first rule whose `path`
//! matches wins; a rule without `path` matches everything.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use kseal_crypto::{AgeRecipient, Scope};
use regex::Regex;
use serde::{Deserialize, Deserializer};

/// The configuration file's name.
pub const CONFIG_FILE: &str = ".kseal.yaml";

/// A loaded `.kseal.yaml`.
#[derive(Debug)]
pub struct Config {
    /// The file (absolute).
    pub path: PathBuf,
    /// Its directory: rule paths are relative to it, and so are `recipients_file` and `cert`.
    pub dir: PathBuf,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Vec<RawRule>,
}

/// One rule.
#[derive(Debug)]
pub struct Rule {
    /// Matched against the '/'-separated path relative to the configuration's directory; `None`
    /// matches every path.
    pub path: Option<Regex>,
    /// Age recipients given inline.
    pub recipients: Vec<AgeRecipient>,
    /// A recipients file, relative to the configuration's directory.
    pub recipients_file: Option<String>,
    /// A certificate (file relative to the configuration's directory, or URL).
    pub cert: Option<String>,
    /// The scope for Secrets that do not choose one with their annotations.
    pub scope: Option<Scope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default, deserialize_with = "regex")]
    path: Option<Regex>,
    #[serde(default)]
    recipients: Vec<AgeRecipient>,
    #[serde(default)]
    recipients_file: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default, deserialize_with = "scope")]
    scope: Option<Scope>,
}

fn regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
    let s = String::deserialize(d)?;
    Regex::new(&s)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid path regex: {e}")))
}

fn scope<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Scope>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "strict" | "namespace-wide" | "cluster-wide" => s.parse().map(Some).map_err(|_| {
            serde::de::Error::custom("scope must be one of: strict, namespace-wide, cluster-wide")
        }),
        _ => Err(serde::de::Error::custom(
            "scope must be one of: strict, namespace-wide, cluster-wide",
        )),
    }
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(r: RawRule) -> Result<Self, String> {
        let age = !r.recipients.is_empty() || r.recipients_file.is_some();
        if r.cert.is_some() && age {
            return Err("a rule gives either cert (Bitnami format) or recipients/recipients_file (age format), not both".into());
        }
        if r.cert.is_none() && !age {
            return Err("a rule needs cert, recipients or recipients_file".into());
        }
        Ok(Rule {
            path: r.path,
            recipients: r.recipients,
            recipients_file: r.recipients_file,
            cert: r.cert,
            scope: r.scope,
        })
    }
}

/// The public keys a rule (or the command line) names.
#[derive(Debug)]
pub enum RuleKeys {
    /// A certificate source: a path (already resolved against the configuration's directory)
    /// or a URL.
    Cert(String),
    /// Age recipients (inline ones, then those of the recipients file).
    Recipients(Vec<AgeRecipient>),
}

/// A rule chosen for a path, with what it needs to be used.
#[derive(Debug)]
pub struct Match<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The rule's 1-based position.
    pub number: usize,
    /// The rule.
    pub rule: &'a Rule,
    /// The path it was matched against.
    pub matched: String,
}

impl Match<'_> {
    /// The rule's keys, with relative files resolved against the configuration's directory.
    pub fn keys(&self) -> Result<RuleKeys> {
        let what = || format!("rule {} of {}", self.number, self.config.path.display());
        if let Some(cert) = &self.rule.cert {
            return Ok(RuleKeys::Cert(self.config.resolve_source(cert)));
        }
        let mut recipients = self.rule.recipients.clone();
        if let Some(file) = &self.rule.recipients_file {
            let path = self.config.dir.join(file);
            recipients.extend(read_recipients_file(&path).with_context(what)?);
        }
        Ok(RuleKeys::Recipients(recipients))
    }

    /// `rule 2 of /repo/.kseal.yaml (path "^clusters/prod/")`, for `--verbose`.
    pub fn describe(&self) -> String {
        match &self.rule.path {
            Some(re) => format!(
                "rule {} of {} (path {:?} matches {:?})",
                self.number,
                self.config.path.display(),
                re.as_str(),
                self.matched
            ),
            None => format!(
                "rule {} of {} (no path: matches everything)",
                self.number,
                self.config.path.display()
            ),
        }
    }
}

impl Config {
    /// Reads and checks a configuration file. Errors name the file and, where the YAML parser
    /// knows it, the line and column.
    pub fn load(path: &Path) -> Result<Config> {
        let abs = absolute(path)?;
        let text = crate::io::read_text(
            &abs,
            crate::io::CONFIG_FILE,
            &format!("configuration {}", path.display()),
        )?;
        let raw: RawConfig = serde_yaml::from_str(&text).map_err(|e| match e.location() {
            Some(l) => anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                l.line(),
                l.column(),
                strip_location(&e.to_string())
            ),
            None => anyhow!("{}: {e}", path.display()),
        })?;
        if raw.rules.is_empty() {
            bail!("{}: no rules", path.display());
        }
        let lines = rule_lines(&text).filter(|l| l.len() == raw.rules.len());
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Rule::try_from(r).map_err(|e| match lines.as_ref().map(|l| l[i]) {
                    Some(line) => anyhow!("{}:{line}: rule {}: {e}", path.display(), i + 1),
                    None => anyhow!("{}: rule {}: {e}", path.display(), i + 1),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Config {
            path: abs,
            dir,
            rules,
        })
    }

    /// The configuration that applies in `start` (a directory): see the module docs.
    pub fn discover(start: &Path) -> Result<Option<Config>> {
        let start = absolute(start)?;
        for dir in start.ancestors() {
            let candidate = dir.join(CONFIG_FILE);
            if candidate.is_file() {
                return Config::load(&candidate).map(Some);
            }
            if dir.join(".git").exists() {
                break;
            }
        }
        Ok(None)
    }

    /// The first rule matching `target` (a file, or a directory ending in `/` for stdin).
    /// Inside the configuration's directory the path matched is relative to it, with `/`
    /// separators; outside it, the absolute path.
    pub fn rule_for(&self, target: &Path, is_dir: bool) -> Result<Option<Match<'_>>> {
        let abs = absolute(target)?;
        let rel = abs.strip_prefix(&self.dir).unwrap_or(&abs);
        let mut matched = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/");
        if rel.is_absolute() {
            matched.insert(0, '/');
        }
        if is_dir && !matched.is_empty() {
            matched.push('/');
        }
        Ok(self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.path.as_ref().is_none_or(|re| re.is_match(&matched)))
            .map(|(i, rule)| Match {
                config: self,
                number: i + 1,
                rule,
                matched: matched.clone(),
            }))
    }

    /// A `cert` value: URLs as they are, paths relative to the configuration's directory.
    fn resolve_source(&self, src: &str) -> String {
        if src.starts_with("http://") || src.starts_with("https://") {
            return src.to_string();
        }
        let path = src.strip_prefix("file://").unwrap_or(src);
        self.dir.join(path).display().to_string()
    }
}

/// The 1-based line of each block-sequence item under `rules:` (`- …` at the first item's
/// indentation), for messages; `None` for layouts this simple scan does not follow (flow style).
fn rule_lines(text: &str) -> Option<Vec<usize>> {
    let mut lines = text.lines().enumerate();
    lines.find(|(_, l)| l.trim_end().starts_with("rules:"))?;
    let mut indent = None;
    let mut out = Vec::new();
    for (i, l) in lines {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = l.len() - trimmed.len();
        if trimmed.starts_with("- ") || trimmed == "-" {
            match indent {
                None => indent = Some(at),
                Some(n) if n != at => continue,
                Some(_) => {}
            }
            out.push(i + 1);
        } else if at == 0 {
            break; // the next top-level key
        }
    }
    Some(out)
}

/// `path` made absolute (against the current directory) and normalised: `.` dropped, `..`
/// resolved lexically, and the longest existing prefix canonicalised (symlinks resolved), so
/// that a file that does not exist yet still gets a stable path.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    // Canonicalise the longest existing ancestor, keep the rest.
    let mut existing = out.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut p = c;
            for part in rest.iter().rev() {
                p.push(part);
            }
            return Ok(p);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return Ok(out),
        }
    }
}

/// Reads an age recipients file, as `age -R` does: one `age1…` recipient per line; blank lines
/// and `#` comments are ignored. Errors name the file and line, never the line's content.
pub fn read_recipients_file(path: &Path) -> Result<Vec<AgeRecipient>> {
    let text = crate::io::read_text(
        path,
        crate::io::RECIPIENTS_FILE,
        &format!("recipients file {}", path.display()),
    )?;
    parse_recipients(&text, &path.display().to_string())
}

/// [`read_recipients_file`] for text read already; `source` names it in errors.
pub fn parse_recipients(text: &str, source: &str) -> Result<Vec<AgeRecipient>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(
            line.parse::<AgeRecipient>()
                .with_context(|| format!("{source}:{}", i + 1))?,
        );
    }
    if out.is_empty() {
        bail!("{source}: no age recipient found (one age1… or age1pq1… per line)");
    }
    Ok(out)
}

/// age's rule: post-quantum (`age1pq1…`) and X25519 recipients are never mixed in one value;
/// `source` names where the recipients came from.
pub fn check_pq_mix(recipients: &[AgeRecipient], source: &str) -> Result<()> {
    let pq = recipients.iter().filter(|r| r.is_post_quantum()).count();
    if pq > 0 && pq < recipients.len() {
        bail!("{source}: {}", kseal_crypto::age::MIXED_PQ);
    }
    Ok(())
}

/// `--recipient` values (never quoted back: a secret key may have been pasted by mistake).
pub fn parse_recipient_flags(values: &[String]) -> Result<Vec<AgeRecipient>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<AgeRecipient>()
                .with_context(|| format!("--recipient number {}", i + 1))
        })
        .collect()
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn load(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    #[test]
    fn rules_match_in_order_on_relative_paths() {
        let cfg = load(&format!(
            "rules:\n  - path: '^clusters/prod/'\n    recipients: [{R1}]\n  - cert: dev.pem\n    scope: namespace-wide\n"
        ))
        .unwrap();
        let m = cfg
            .rule_for(&cfg.dir.join("clusters/prod/db.yaml"), false)
            .unwrap()
            .unwrap();
        assert_eq!((m.number, m.matched.as_str()), (1, "clusters/prod/db.yaml"));
        let m = cfg
            .rule_for(&cfg.dir.join("clusters/dev/db.yaml"), false)
            .unwrap()
            .unwrap();
        assert_eq!(m.number, 2);
        assert_eq!(m.rule.scope, Some(Scope::NamespaceWide));
        match m.keys().unwrap() {
            RuleKeys::Cert(c) => assert!(c.ends_with("/dev.pem"), "{c}"),
            k => panic!("{k:?}"),
        }
        let m = cfg
            .rule_for(&cfg.dir.join("clusters/prod"), true)
            .unwrap()
            .unwrap();
        assert_eq!((m.number, m.matched.as_str()), (1, "clusters/prod/"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = load(&format!(
            "rules:\n  - path: x\n    cert: c.pem\n    recipients: [{R1}]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(".kseal.yaml:2:"), "{e}");
        assert!(e.contains("not both"), "{e}");
        let e = load("rules:\n  - path: '(('\n    cert: c\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid path regex"), "{e}");
        let e = load("rules:\n  - cert: c\n    scop: strict\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":3:") && e.contains("unknown field `scop`"),
            "{e}"
        );
        let e = load("rules:\n  - path: x\n").unwrap_err().to_string();
        assert!(
            e.contains("needs cert, recipients or recipients_file"),
            "{e}"
        );
        let e = load("rules:\n  - recipients: [AGE-SECRET-KEY-1XYZ]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("identity (secret key)"), "{e}");
        assert!(!e.contains("1XYZ"), "never quoted: {e}");
        assert!(load("rules: []\n")
            .unwrap_err()
            .to_string()
            .contains("no rules"));
    }

    #[test]
    fn recipients_files_allow_comments() {
        let r = parse_recipients(&format!("# prod\n\n  {R1}  # not a comment here\n"), "f");
        assert!(r.is_err(), "a trailing comment is not part of age's format");
        let r = parse_recipients(&format!("# prod\n\n  {R1}\n"), "f").unwrap();
        assert_eq!(r.len(), 1);
        let e = parse_recipients("# nothing\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no age recipient"), "{e}");
        let e = format!("{:#}", parse_recipients("\nnope\n", "f").unwrap_err());
        assert!(e.starts_with("f:2: invalid age recipient"), "{e}");
    }

    #[test]
    fn discovery_stops_at_the_repository_root() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let sub = repo.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "rules:\n  - cert: c\n").unwrap();
        assert!(Config::discover(&sub).unwrap().is_some(), "found above");
        std::fs::create_dir(repo.join(".git")).unwrap();
        assert!(
            Config::discover(&sub).unwrap().is_none(),
            "not outside the repo"
        );
        std::fs::write(repo.join(CONFIG_FILE), "rules:\n  - cert: c\n").unwrap();
        let c = Config::discover(&sub).unwrap().unwrap();
        assert_eq!(c.dir, repo.canonicalize().unwrap());
    }
}
