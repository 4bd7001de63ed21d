//! `kseal verify FILE|DIR…`: offline checks of SealedSecret files with public keys only (no
//! cluster, no private key), for CI.
//!
//! For every item of every SealedSecret found (the files and directories `kseal validate` reads):
//!
//! 1. its value is base64;
//! 2. the blob's format is known ([`Format::detect`]) and its structure holds: a Bitnami blob's
//!    length prefix fits and an AES-GCM tag follows; an age blob's header parses and has an
//!    X25519 or post-quantum mlkem768x25519 stanza ([`kseal_crypto::inspect_age`]);
//! 3. with the item's seal record ([`kseal_sealing::seal_record`]): the record is the one made for
//!    this ciphertext and item name (else the value was copied from another item or
//!    SealedSecret, or edited); it was sealed for this SealedSecret's current name, namespace
//!    and scope (else renamed, moved, scope changed, or copied from another SealedSecret); and
//!    for one of the given certificates/recipients (else another cluster's key).
//!
//! Items without a record (kubeseal's) are unverifiable, which is not a failure. Copies are
//! traced across every file given: an identical ciphertext elsewhere, or a record whose label is
//! that of another SealedSecret in the set, names where the value came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Args;
use kseal_crds::SealedSecret;
use kseal_crypto::{Certificate, Fingerprint, Format, Scope};
use kseal_sealing::seal_record::{records_of, RecordError, SealRecord, SealedFor};
use serde::Serialize;

use super::files::{self, describe};
use crate::cli::{ReportFormat, WalkArgs};
use crate::config::{self, Config, RuleKeys};

/// `kseal verify`
#[derive(Debug, Args)]
#[command(after_help = "\
Offline: no cluster and no private key. For every item of every SealedSecret it checks the base64,
the ciphertext's format (Bitnami or age) and structure, and, with the item's seal record (the
sealedsecrets.kseal.dev/seal-records annotation kseal seal writes), that the ciphertext is the one
recorded (not copied or edited), that it was sealed for this SealedSecret's current name,
namespace and scope (else: renamed, moved, scope changed, copied from another SealedSecret), and
for one of the given certificates/recipients (else: sealed for another cluster's key). Items
without a record (sealed by kubeseal) are reported as unverifiable, which is not a failure.

Without --cert/--recipient/--recipients-file, each file is checked against the keys of the
.kseal.yaml rule that matches it. Directories are searched recursively for .yaml, .yml, .json.
Exit code 1 when any item fails, 0 otherwise; 2 for bad input.")]
pub struct VerifyArgs {
    /// Files or directories
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// A certificate the items may be sealed for (repeatable; file, file:// or http(s):// URL)
    #[arg(long = "cert", value_name = "FILE|URL")]
    pub certs: Vec<String>,

    /// An age recipient the items may be sealed for (repeatable)
    #[arg(short = 'r', long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,

    /// A file of age recipients, one per line, # comments (repeatable)
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Report format
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: ReportFormat,

    /// Use this configuration file instead of looking for .kseal.yaml
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore .kseal.yaml files
    #[arg(long)]
    pub no_config: bool,
}

/// The public keys items may be sealed for.
#[derive(Debug, Default)]
pub struct KeySet {
    /// Fingerprint → RSA key size in bytes (certificates) or `None` (age recipients).
    keys: HashMap<Fingerprint, Option<usize>>,
}

impl KeySet {
    fn add_cert(&mut self, cert: &Certificate) {
        self.keys.insert(
            cert.fingerprint().clone(),
            Some(cert.public_key().size_bytes()),
        );
    }

    fn add_recipients(&mut self, recipients: &[kseal_crypto::AgeRecipient]) {
        for r in recipients {
            self.keys.insert(r.fingerprint().clone(), None);
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn load_cert(&mut self, src: &str) -> Result<()> {
        let pem = crate::io::read_cert_source(src)?;
        // An expired certificate still names its key: no expiry check here.
        let cert =
            Certificate::from_pem(&pem).with_context(|| format!("cannot use certificate {src}"))?;
        self.add_cert(&cert);
        Ok(())
    }

    /// The keys of the command line; empty when none was given.
    fn from_flags(args: &VerifyArgs) -> Result<KeySet> {
        let mut set = KeySet::default();
        for c in &args.certs {
            set.load_cert(c)?;
        }
        set.add_recipients(&config::parse_recipient_flags(&args.recipients)?);
        for f in &args.recipients_files {
            set.add_recipients(&config::read_recipients_file(f)?);
        }
        Ok(set)
    }
}

/// The verdict on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check passed.
    Ok,
    /// A check failed.
    Fail,
    /// No seal record: only the structure could be checked.
    Unverifiable,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Unverifiable => "UNVERIFIABLE",
        }
    }
}

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct ItemReport {
    pub file: String,
    pub document: usize,
    pub namespace: String,
    pub name: String,
    pub item: String,
    pub status: Status,
    /// `bitnami` or `age` when the blob's format is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// The keys its seal record names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    files: usize,
    #[serde(rename = "sealedSecrets")]
    sealed_secrets: usize,
    items: usize,
    ok: usize,
    failed: usize,
    unverifiable: usize,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    ok: bool,
    summary: &'a Summary,
    items: &'a [ItemReport],
}

/// One SealedSecret of the set, with what the checks need.
struct Entry {
    file: String,
    document: usize,
    ss: SealedSecret,
    /// What it opens as now; for a file without a namespace, the namespace is filled in from a
    /// record per item (kustomize and `kubectl apply -n` set it at apply time).
    now: SealedFor,
    namespace_missing: bool,
    records: Result<Option<HashMap<String, String>>, RecordError>,
}

impl Entry {
    fn record(&self, item: &str) -> Option<Result<SealRecord, RecordError>> {
        match &self.records {
            Ok(Some(m)) => m.get(item).map(|r| r.parse()),
            _ => None,
        }
    }

    /// What this SealedSecret opens as, for a record sealed for `then`.
    fn now_for(&self, then: &SealedFor) -> SealedFor {
        match (&self.now, then) {
            (SealedFor::Strict { name, .. }, SealedFor::Strict { namespace, .. })
                if self.namespace_missing =>
            {
                SealedFor::Strict {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }
            }
            (SealedFor::NamespaceWide { .. }, SealedFor::NamespaceWide { namespace })
                if self.namespace_missing =>
            {
                SealedFor::NamespaceWide {
                    namespace: namespace.clone(),
                }
            }
            (now, _) => now.clone(),
        }
    }

    fn where_(&self, other: &Entry) -> String {
        self.where_item(other, None)
    }

    /// `ns/name`, `ns/name item k`, followed by ` (in file)` when it is another file.
    fn where_item(&self, other: &Entry, item: Option<&str>) -> String {
        let mut s = describe(&other.ss);
        if let Some(i) = item {
            s.push_str(&format!(" item {i}"));
        }
        if other.file != self.file {
            s.push_str(&format!(" (in {})", other.file));
        }
        s
    }
}

/// Everything given, indexed for tracing copies.
struct Set {
    entries: Vec<Entry>,
    /// Base64 value → (entry, item) holding it.
    by_value: HashMap<String, Vec<(usize, String)>>,
}

impl Set {
    fn new(entries: Vec<Entry>) -> Set {
        let mut by_value: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            for (item, v) in &e.ss.spec.encrypted_data {
                by_value
                    .entry(v.clone())
                    .or_default()
                    .push((i, item.clone()));
            }
        }
        Set { entries, by_value }
    }

    /// Other places holding exactly `value` (not `(at, item)` itself).
    fn copies_of<'a>(
        &'a self,
        value: &str,
        at: usize,
        item: &'a str,
    ) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        self.by_value
            .get(value)
            .into_iter()
            .flatten()
            .filter(move |(e, i)| !(*e == at && i == item))
            .map(|(e, i)| (*e, i.as_str()))
    }

    /// Whether `(at, item)` is where `blob` belongs: its own record matches it and names where
    /// that SealedSecret is now.
    fn is_home(&self, at: usize, item: &str, blob: &[u8]) -> bool {
        let e = &self.entries[at];
        e.record(item)
            .and_then(Result::ok)
            .is_some_and(|r| r.matches(item, blob) && e.now_for(&r.sealed_for()) == r.sealed_for())
    }

    /// Other places holding `value`, the best witnesses first: where it belongs (its record
    /// matches and names that place), then where a record vouches for it, then the rest.
    fn ranked_copies<'a>(
        &'a self,
        value: &str,
        at: usize,
        item: &'a str,
        blob: &[u8],
    ) -> Vec<(usize, &'a str)> {
        let mut copies: Vec<(usize, &str)> = self.copies_of(value, at, item).collect();
        copies.sort_by_key(|(o, i)| {
            let recorded = self.entries[*o]
                .record(i)
                .and_then(Result::ok)
                .is_some_and(|r| r.matches(i, blob));
            (!self.is_home(*o, i, blob), !recorded)
        });
        copies
    }

    /// Where a value that is not this item's came from: another item of the same
    /// SealedSecret whose record matches it, then the same ciphertext elsewhere.
    fn origin(&self, at: usize, item: &str, value: &str, blob: &[u8]) -> Option<String> {
        let e = &self.entries[at];
        if let Ok(Some(m)) = &e.records {
            for (other, r) in m {
                if other != item
                    && r.parse::<SealRecord>()
                        .is_ok_and(|r| r.matches(other, blob))
                {
                    return Some(format!("copied from item {other}"));
                }
            }
        }
        self.ranked_copies(value, at, item, blob)
            .first()
            .map(|(o, i)| {
                if *o == at {
                    format!("copied from item {i}")
                } else {
                    format!("copied from {}", e.where_item(&self.entries[*o], Some(i)))
                }
            })
    }

    /// Another SealedSecret of the set holding the same ciphertext and opening as `then`: where
    /// a value sealed for `then` was copied from.
    fn sealed_secret_for(&self, at: usize, then: &SealedFor, value: &str) -> Option<usize> {
        self.copies_of(value, at, "")
            .map(|(o, _)| o)
            .find(|o| *o != at && self.entries[*o].now_for(then) == *then)
    }

    /// Any other SealedSecret of the set that opens as `then`.
    fn named(&self, at: usize, then: &SealedFor) -> Option<usize> {
        (0..self.entries.len()).find(|o| *o != at && self.entries[*o].now_for(then) == *then)
    }
}

struct Verdict {
    status: Status,
    format: Option<&'static str>,
    fingerprints: Vec<String>,
    reason: String,
}

impl Verdict {
    fn fail(format: Option<&'static str>, reason: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Fail,
            format,
            fingerprints: Vec::new(),
            reason: reason.into(),
        }
    }
}

/// The structural checks of one blob; the error is the failure's reason.
fn structure(
    blob: &[u8],
) -> std::result::Result<(Format, Option<usize>), (Option<Format>, String)> {
    let format = Format::detect(blob).map_err(|e| (None, e.to_string()))?;
    match format {
        Format::BitnamiHybrid => kseal_crypto::hybrid::wrapped_key_len(blob)
            .map(|n| (format, Some(n)))
            .map_err(|e| (Some(format), format!("Bitnami ciphertext: {e}"))),
        Format::Age => {
            let h = kseal_crypto::inspect_age(blob).map_err(|e| (Some(format), e.to_string()))?;
            if h.recipient_stanzas() == 0 {
                return Err((
                    Some(format),
                    "age header has no X25519 or mlkem768x25519 recipient stanza".to_string(),
                ));
            }
            Ok((format, None))
        }
        _ => Err((Some(format), format!("unsupported format {format}"))),
    }
}

fn check_item(set: &Set, at: usize, item: &str, value: &str, keys: &KeySet) -> Verdict {
    let e = &set.entries[at];
    let blob = match STANDARD.decode(value) {
        Ok(b) => b,
        Err(err) => {
            return Verdict::fail(
                None,
                format!(
                    "not base64: {}",
                    kseal_sealing::unseal::go_base64_error(&err)
                ),
            )
        }
    };
    let (format, rsa_len) = match structure(&blob) {
        Ok(s) => s,
        Err((f, why)) => return Verdict::fail(f.map(Format::as_str), why),
    };
    let fmt = Some(format.as_str());

    let record = match (&e.records, e.record(item)) {
        (Err(err), _) => return Verdict::fail(fmt, err.to_string()),
        (_, Some(Err(err))) => return Verdict::fail(fmt, err.to_string()),
        (_, Some(Ok(r))) => r,
        (Ok(annotation), None) => {
            return without_record(set, at, item, value, &blob, fmt, annotation.is_some(), keys)
        }
    };
    let fingerprints: Vec<String> = record.fingerprints.iter().map(|f| f.to_string()).collect();
    let mut v = Verdict {
        status: Status::Fail,
        format: fmt,
        fingerprints,
        reason: String::new(),
    };
    if !record.matches(item, &blob) {
        // Where it came from: a place holding it, else what the (copied) record says.
        let then = record.sealed_for();
        let origin = set.origin(at, item, value, &blob).or_else(|| {
            (e.now_for(&then) != then).then(|| match &then {
                SealedFor::Strict { namespace, name } => format!("copied from {namespace}/{name}"),
                other => format!("copied from a SealedSecret sealed {other}"),
            })
        });
        v.reason = format!(
            "the item's ciphertext does not match its record: {}",
            origin.unwrap_or_else(|| "copied from another SealedSecret or edited".to_string())
        );
        return v;
    }
    let then = record.sealed_for();
    let now = e.now_for(&then);
    let mut problems = Vec::new();
    if then != now {
        problems.push(label_problem(set, at, &then, &now, value));
    }
    match key_problem(&record, rsa_len, keys) {
        Ok(matching) if problems.is_empty() => {
            v.status = Status::Ok;
            v.reason = format!("{format} for {matching}, {then}");
            if e.namespace_missing && then.namespace().is_some() {
                v.reason
                    .push_str(" (the file has no namespace: it must be applied there)");
            }
        }
        Ok(_) => v.reason = problems.join("; "),
        Err(p) => {
            problems.push(p);
            v.reason = problems.join("; ");
        }
    }
    v
}

/// An item without a record of its own: unverifiable, unless the same ciphertext is recorded
/// elsewhere in the set (a copy), whose record then tells where it may be opened.
#[allow(clippy::too_many_arguments)]
fn without_record(
    set: &Set,
    at: usize,
    item: &str,
    value: &str,
    blob: &[u8],
    format: Option<&'static str>,
    has_annotation: bool,
    keys: &KeySet,
) -> Verdict {
    let e = &set.entries[at];
    for (o, other_item) in set.ranked_copies(value, at, item, blob) {
        let other = &set.entries[o];
        let Some(Ok(r)) = other.record(other_item) else {
            continue;
        };
        if !r.matches(other_item, blob) {
            continue;
        }
        let from = if o == at {
            format!("item {other_item}")
        } else if other_item == item {
            e.where_(other)
        } else {
            e.where_item(other, Some(other_item))
        };
        let then = r.sealed_for();
        let now = e.now_for(&then);
        if then != now || other_item != item {
            let mut reason = format!("copied from {from}");
            if then != now && !set.is_home(o, other_item, blob) {
                reason.push_str(&format!(", sealed {then}"));
            }
            return Verdict {
                status: Status::Fail,
                format,
                fingerprints: r.fingerprints.iter().map(|f| f.to_string()).collect(),
                reason,
            };
        }
        // Same item name and a scope under which it opens here too (namespace-wide or
        // cluster-wide): as good as its own record.
        return match key_problem(&r, None, keys) {
            Ok(matching) => Verdict {
                status: Status::Ok,
                format,
                fingerprints: r.fingerprints.iter().map(|f| f.to_string()).collect(),
                reason: format!(
                    "{} for {matching}, {then} (as recorded in {from})",
                    format.unwrap_or("")
                ),
            },
            Err(p) => Verdict::fail(format, p),
        };
    }
    Verdict {
        status: Status::Unverifiable,
        format,
        fingerprints: Vec::new(),
        reason: if has_annotation {
            "no seal record for this item: added by kubeseal or by hand?".into()
        } else {
            "no seal record: sealed by kubeseal?".into()
        },
    }
}

/// Why the record's label is not this SealedSecret's: a copy from another SealedSecret of the
/// set, or of a value sealed elsewhere into a SealedSecret whose other items are right; else
/// renamed, moved or re-scoped.
fn label_problem(set: &Set, at: usize, then: &SealedFor, now: &SealedFor, value: &str) -> String {
    let e = &set.entries[at];
    if let Some(o) = set.sealed_secret_for(at, then, value) {
        return format!("copied from {}", e.where_(&set.entries[o]));
    }
    // Other items of this SealedSecret recorded for where it is now: this one came from
    // elsewhere.
    let others_right = match &e.records {
        Ok(Some(m)) => m.values().any(|r| {
            r.parse::<SealRecord>()
                .is_ok_and(|r| e.now_for(&r.sealed_for()) == r.sealed_for())
        }),
        _ => false,
    };
    if others_right {
        let mut reason = match then {
            SealedFor::Strict { namespace, name } => format!("copied from {namespace}/{name}"),
            other => format!("copied from a SealedSecret sealed {other}"),
        };
        if let Some(o) = set
            .named(at, then)
            .filter(|o| set.entries[*o].file != e.file)
        {
            reason.push_str(&format!(" (in {})", set.entries[o].file));
        }
        return reason;
    }
    then.mismatch(now)
        .unwrap_or_else(|| "sealed for another name, namespace or scope".into())
}

/// The record's keys among the given ones (`Ok`, joined), or why not.
fn key_problem(
    record: &SealRecord,
    rsa_len: Option<usize>,
    keys: &KeySet,
) -> std::result::Result<String, String> {
    let matching: Vec<&Fingerprint> = record
        .fingerprints
        .iter()
        .filter(|f| keys.keys.contains_key(f))
        .collect();
    if matching.is_empty() {
        let fps: Vec<&str> = record.fingerprints.iter().map(|f| f.as_str()).collect();
        let mut expected: Vec<&str> = keys.keys.keys().map(|f| f.as_str()).collect();
        expected.sort_unstable();
        return Err(format!(
            "sealed for another cluster's key: {} (expected {})",
            fps.join(", "),
            match expected.len() {
                1 => expected[0].to_string(),
                _ => format!("one of {}", expected.join(", ")),
            }
        ));
    }
    // A Bitnami blob's RSA part is one modulus long: a record naming a key of another size was
    // not made with this ciphertext's key.
    if let Some(len) = rsa_len {
        if !matching
            .iter()
            .any(|f| keys.keys.get(*f).copied().flatten() == Some(len))
        {
            return Err(format!(
                "the record names {} but the ciphertext's RSA part ({len} bytes) was not made with that key",
                matching
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(matching
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", "))
}

/// The keys a file is checked against: the command line's, else its `.kseal.yaml` rule's.
struct KeySource<'a> {
    flags: Option<Rc<KeySet>>,
    args: &'a VerifyArgs,
    explicit_config: Option<Config>,
    by_rule: HashMap<(PathBuf, usize), Rc<KeySet>>,
}

impl KeySource<'_> {
    fn for_file(&mut self, path: &Path) -> Result<Rc<KeySet>> {
        if let Some(k) = &self.flags {
            return Ok(k.clone());
        }
        if self.args.no_config {
            bail!("no --cert, --recipient or --recipients-file given (and --no-config)");
        }
        let discovered;
        let config = match &self.explicit_config {
            Some(c) => c,
            None => {
                let abs = config::absolute(path)?;
                let dir = abs.parent().unwrap_or(Path::new("/"));
                discovered = Config::discover(dir)?;
                match &discovered {
                    Some(c) => c,
                    None => bail!(
                        "{}: no --cert, --recipient or --recipients-file given and no .kseal.yaml applies to it",
                        path.display()
                    ),
                }
            }
        };
        let Some(m) = config.rule_for(path, false)? else {
            bail!(
                "{}: no rule of {} matches it",
                path.display(),
                config.path.display()
            );
        };
        let key = (config.path.clone(), m.number);
        if let Some(k) = self.by_rule.get(&key) {
            return Ok(k.clone());
        }
        let mut set = KeySet::default();
        match m.keys()? {
            RuleKeys::Cert(src) => set.load_cert(&src).with_context(|| m.describe())?,
            RuleKeys::Recipients(r) => set.add_recipients(&r),
        }
        let set = Rc::new(set);
        self.by_rule.insert(key, set.clone());
        Ok(set)
    }
}

fn entry(file: &str, document: usize, ss: SealedSecret) -> Entry {
    let scope = Scope::from_annotations(ss.metadata.annotations.as_ref());
    let namespace_missing =
        scope != Scope::ClusterWide && ss.metadata.namespace.as_deref().unwrap_or("").is_empty();
    let records = records_of(&ss).map(|o| o.map(|m| m.into_iter().collect()));
    Entry {
        file: file.to_string(),
        document,
        now: SealedFor::of_sealed_secret(&ss),
        namespace_missing,
        records,
        ss,
    }
}

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let paths = files::collect(&args.paths, args.walk.options())?;
    let flags = KeySet::from_flags(&args)?;
    let explicit_config = match (&args.config, flags.is_empty()) {
        (Some(p), true) => Some(Config::load(p)?),
        _ => None,
    };
    let mut source = KeySource {
        flags: Some(flags).filter(|f| !f.is_empty()).map(Rc::new),
        args: &args,
        explicit_config,
        by_rule: HashMap::new(),
    };

    let mut entries = Vec::new();
    let mut keysets = Vec::new();
    let mut summary = Summary::default();
    for found in paths.files() {
        let path = found.path();
        let f = files::read(found)?;
        if f.sealed.is_empty() {
            continue;
        }
        summary.files += 1;
        let keys = source.for_file(path)?;
        let name = path.display().to_string();
        for (document, ss) in f.sealed {
            entries.push(entry(&name, document, ss));
            keysets.push(keys.clone());
        }
    }
    if entries.is_empty() {
        bail!("no SealedSecrets found in the given files");
    }
    summary.sealed_secrets = entries.len();
    let reports = check_all(entries, &keysets);
    for r in &reports {
        summary.items += 1;
        match r.status {
            Status::Ok => summary.ok += 1,
            Status::Fail => summary.failed += 1,
            Status::Unverifiable => summary.unverifiable += 1,
        }
    }
    match args.output {
        ReportFormat::Json => {
            let report = Report {
                ok: summary.failed == 0,
                summary: &summary,
                items: &reports,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        ReportFormat::Text => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for r in &reports {
                writeln!(
                    out,
                    "{} {}: {}/{} item {}: {}",
                    r.status.word(),
                    r.file,
                    r.namespace,
                    r.name,
                    r.item,
                    r.reason
                )?;
            }
            out.flush()?;
            eprintln!(
                "{} item{} in {} SealedSecret{} checked: {} ok, {} failed, {} unverifiable",
                summary.items,
                if summary.items == 1 { "" } else { "s" },
                summary.sealed_secrets,
                if summary.sealed_secrets == 1 { "" } else { "s" },
                summary.ok,
                summary.failed,
                summary.unverifiable
            );
        }
    }
    Ok(ExitCode::from(paths.exit_code(if summary.failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    })))
}

/// The report of every item of `entries`, each checked against its key set (`keysets[i]` for
/// `entries[i]`).
fn check_all(entries: Vec<Entry>, keysets: &[Rc<KeySet>]) -> Vec<ItemReport> {
    let set = Set::new(entries);
    let mut reports = Vec::new();
    for (at, e) in set.entries.iter().enumerate() {
        let mut items: Vec<(&String, &String)> = e.ss.spec.encrypted_data.iter().collect();
        items.sort();
        let mut verdicts: Vec<(String, Verdict)> = items
            .into_iter()
            .map(|(item, value)| {
                (
                    item.clone(),
                    check_item(&set, at, item, value, &keysets[at]),
                )
            })
            .collect();
        if e.ss.spec.data.is_some() {
            verdicts.push((
                "data".to_string(),
                Verdict {
                    status: Status::Unverifiable,
                    format: None,
                    fingerprints: Vec::new(),
                    reason: "the deprecated v1 spec.data field has no seal record".into(),
                },
            ));
        }
        for (item, v) in verdicts {
            reports.push(ItemReport {
                file: e.file.clone(),
                document: e.document,
                namespace: e.ss.metadata.namespace.clone().unwrap_or_default(),
                name: e.ss.metadata.name.clone().unwrap_or_default(),
                item,
                status: v.status,
                format: v.format,
                fingerprints: v.fingerprints,
                reason: v.reason,
            });
        }
    }
    reports
}

/// `kseal verify`'s checks on files already read, every one against the same certificates and
/// recipients, without touching the file system: for the fuzz targets in `fuzz/` only.
#[doc(hidden)]
pub fn check_files(
    files: &[(&Path, &[u8])],
    certs: &[Certificate],
    recipients: &[kseal_crypto::AgeRecipient],
) -> Result<Vec<ItemReport>> {
    let mut keys = KeySet::default();
    for c in certs {
        keys.add_cert(c);
    }
    keys.add_recipients(recipients);
    let keys = Rc::new(keys);
    let mut entries = Vec::new();
    for (path, bytes) in files {
        let name = path.display().to_string();
        for (document, ss) in files::parse(path, bytes.to_vec())?.sealed {
            entries.push(entry(&name, document, ss));
        }
    }
    let keysets = vec![keys; entries.len()];
    Ok(check_all(entries, &keysets))
}
