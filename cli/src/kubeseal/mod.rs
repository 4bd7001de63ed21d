//! The kubeseal front: when the binary is invoked as `kubeseal` (a symlink or a copy), it takes
//! kubeseal's flags, `SEALED_SECRETS_*` variables, outputs, messages and exit codes
//! (docs/compatibility.md, “The kubeseal CLI”), so scripts written for Bitnami's kubeseal run
//! unchanged.
//!
//! - Flags are parsed as pflag parses them ([`flags`]); a flag error prints the message and the
//!   usage on stderr and exits 2; `--help` prints the usage on stdout and exits 0.
//! - Every other error is `error: <message>` on stderr, exit 1.
//! - The mode is chosen in kubeseal's order (docs/compatibility.md, “Mode selection”):
//!   `--version`, `--help`, `--from-file` without `--raw`, the input, `--recovery-unseal`, `--validate`, `--re-encrypt`, the
//!   certificate, `--fetch-cert`, `--merge-into`, `--raw`, and sealing.
//! - Output documents are rendered as kubeseal renders them (Go JSON / YAML) and, like
//!   kubeseal's, carry no kseal annotation; `-w` replaces its file atomically, only on success.
//!
//! The cluster is reached through kseal's [`crate::cluster`] (the certificate from the published
//! ConfigMap, else `/v1/cert.pem` through the service proxy; `/v1/verify`, `/v1/rotate`), with
//! client-go's override flags applied by [`client`].

mod client;
mod flags;

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kseal_crds::{SealedSecret, ANNOTATION_SEALED_WITH};
use kseal_crypto::{Certificate, Keyring, Scope};
use kseal_gocompat::quote::go_quote;
use kseal_sealing::seal::{seal_secret, SealOptions};
use kseal_sealing::unseal::UnsealOptions;
use serde_json::Value;
use zeroize::Zeroizing;

use self::flags::Flags;
#[doc(hidden)]
pub use self::{client::request_timeout, flags::parse as parse_flags, flags::Parsed};
use crate::cli::Format;
use crate::cluster::{block_on, default_namespace, Controller};
use crate::commands::documents::{self, Doc};
use crate::io::{Limit, Output, ReadError};

const TTY_HINT: &str = "(tty detected: expecting json/yaml k8s resource in stdin)";
const TTY_HINT_RAW: &str = "(tty detected: expecting a secret to encrypt in stdin)";
const NO_SECRETS: &str = "no secrets found. Ensure the input is valid and UTF-8 encoded";

/// Whether the program name (argv\[0\]) asks for the kubeseal front: its file name is
/// `kubeseal` (or `kubeseal.exe`).
pub fn invoked_as_kubeseal(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "kubeseal" || n.eq_ignore_ascii_case("kubeseal.exe"))
}

/// Runs kubeseal with `args` (the first is the program name) and returns the exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = args.first().cloned().unwrap_or_else(|| "kubeseal".into());
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let (parsed, notes) = flags::parse(args.get(1..).unwrap_or_default(), &env);
    for note in notes {
        eprintln!("{note}");
    }
    let f = match parsed {
        Parsed::Help => return print_usage(&program),
        Parsed::Error(e) => {
            eprint!("{e}\n{}", flags::usage(&program));
            return ExitCode::from(2);
        }
        Parsed::Run(f) => *f,
    };
    if f.version {
        return match Output::Stdout
            .write(format!("kubeseal version: v{}\n", env!("CARGO_PKG_VERSION")).as_bytes())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        };
    }
    if f.help {
        return print_usage(&program);
    }
    match run(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn print_usage(program: &str) -> ExitCode {
    match Output::Stdout.write(flags::usage(program).as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// `error: <message>` on stderr, exit 1 (a closed stdout pipe is not an error).
fn report(err: &anyhow::Error) -> ExitCode {
    let broken_pipe = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {err:#}");
    ExitCode::from(1)
}

/// Where the documents come from: the `-f` file (already read: kubeseal opens it before
/// choosing a mode) or stdin (read when a mode needs it).
enum Input {
    File {
        name: String,
        bytes: Zeroizing<Vec<u8>>,
    },
    Stdin,
}

impl Input {
    fn read(self) -> Result<(String, Zeroizing<Vec<u8>>)> {
        match self {
            Input::File { name, bytes } => Ok((name, bytes)),
            Input::Stdin => Ok(("<stdin>".into(), read_stdin(crate::io::MANIFEST)?)),
        }
    }
}

/// Stdin, at most `limit` (see [`crate::io`]).
fn read_stdin(limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    crate::io::read_stdin(limit).map_err(|e| match e {
        ReadError::Io(e) => anyhow!("read /dev/stdin: {}", go_errno(&e)),
        other => anyhow!("read /dev/stdin: {other}"),
    })
}

/// A file, at most `limit` (see [`crate::io`]), with Go's error text:
/// `open <path>: no such file or directory`.
fn read_path(path: &str, limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    crate::io::read_file(Path::new(path), limit).map_err(|e| match e {
        ReadError::Io(e) => path_error("open", path, &e),
        other => anyhow!("read {path}: {other}"),
    })
}

/// Go's text of an OS error: `no such file or directory`, `permission denied`, ...
fn go_errno(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Go's `*PathError` text: `open <path>: no such file or directory`.
fn path_error(op: &str, path: &str, e: &std::io::Error) -> anyhow::Error {
    anyhow!("{op} {path}: {}", go_errno(e))
}

/// Go's `filepath.Ext(path) == ".yaml" || ".yml"`.
fn yaml_extension(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(base.rfind('.').map(|i| &base[i..]), Some(".yaml" | ".yml"))
}

/// `-o` as kubeseal reads it when writing a document (case-insensitive; empty is JSON).
fn output_format(f: &Flags) -> Result<Format> {
    match f.format.to_lowercase().as_str() {
        "json" | "" => Ok(Format::Json),
        "yaml" => Ok(Format::Yaml),
        _ => bail!("unsupported output format: {}", f.format),
    }
}

fn run(mut f: Flags) -> Result<()> {
    if !f.from_file.is_empty() && !f.raw {
        bail!("--from-file requires --raw");
    }
    let input = if !f.input_file.is_empty() {
        let bytes = crate::io::read_file(Path::new(&f.input_file), crate::io::MANIFEST).map_err(
            |e| match e {
                ReadError::TooLarge(_) => {
                    anyhow!("Could not read file specified with --secret-file: {e}")
                }
                _ => anyhow!("Could not read file specified with --secret-file"),
            },
        )?;
        Input::File {
            name: f.input_file.clone(),
            bytes,
        }
    } else {
        if !f.raw && !f.fetch_cert && std::io::stdin().is_terminal() {
            eprintln!("{TTY_HINT}");
        }
        Input::Stdin
    };
    // --re-encrypt is the only in-place mode: with -f and no -w it rewrites the input file.
    if f.re_encrypt && f.output_file.is_empty() && !f.input_file.is_empty() {
        f.output_file = f.input_file.clone();
    }
    if !f.output_file.is_empty() && yaml_extension(&f.output_file) {
        f.format = "yaml".into();
    }

    let mut out = Zeroizing::new(Vec::new());
    // Modes that print nothing leave an -w file alone (kubeseal would replace it with nothing).
    let mut has_output = true;
    let mut plaintext = false;
    if f.recovery_unseal {
        recovery_unseal(&f, input, &mut out)?;
        plaintext = true;
    } else {
        if !f.recovery_keys.is_empty() && std::io::stderr().is_terminal() {
            eprintln!("warning: ignoring --recovery-private-key because unseal command not chosen with --recovery-unseal");
        }
        if f.validate {
            validate(&f, input)?;
            has_output = false;
        } else if f.re_encrypt {
            re_encrypt(&f, input, &mut out)?;
        } else {
            let pem = open_cert(&f)?;
            if f.fetch_cert {
                out.extend_from_slice(&pem);
            } else {
                let cert = parse_cert(&pem)?;
                if !f.merge_into.is_empty() {
                    merge_into(&f, input, &cert)?;
                    has_output = false;
                } else if f.raw {
                    raw(&f, &cert, &mut out)?;
                } else {
                    seal(&f, input, &cert, &mut out)?;
                }
            }
        }
    }

    if f.output_file.is_empty() {
        Output::Stdout.write(&out)
    } else if has_output {
        // An unsealed Secret holds plaintext: its file is private.
        let mode = if plaintext { 0o600 } else { 0o644 };
        Output::new(Some(Path::new(&f.output_file)), mode).write(&out)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The certificate.

/// The certificate bytes: `--cert` (a file, or an `http(s)://` / `file://` URL), else the
/// cluster's (published ConfigMap, then `/v1/cert.pem` through the service proxy).
fn open_cert(f: &Flags) -> Result<Vec<u8>> {
    if !f.cert.is_empty() {
        return open_cert_local(&f.cert);
    }
    block_on(async {
        let c = controller(f).await?;
        c.certificate().await
    })?
}

async fn controller(f: &Flags) -> Result<Controller> {
    let client = client::client(f).await?;
    Ok(Controller::with_client(client, &client::cluster_args(f)))
}

/// The scheme of a URL as Go's `url.Parse` finds it (empty: a file name).
fn url_scheme(s: &str) -> &str {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i > 0 => return &s[..i],
            _ => return "",
        }
    }
    ""
}

/// kubeseal's `openCertLocal`: a path (or a Windows drive letter), else a URL.
fn open_cert_local(src: &str) -> Result<Vec<u8>> {
    let scheme = url_scheme(src);
    if scheme.len() <= 1 {
        return Ok(read_path(src, crate::io::CERTIFICATE)?.to_vec());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => fetch_url(src),
        "file" => fetch_file_url(src),
        _ => bail!(
            "Get {}: unsupported protocol scheme {}",
            go_quote(src),
            go_quote(scheme)
        ),
    }
}

/// A `file://` URL as Go's `http.NewFileTransport(http.Dir("/"))` serves it.
fn fetch_file_url(url: &str) -> Result<Vec<u8>> {
    let rest = &url[url.find("://").map_or(url.len(), |i| i + 3)..];
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = percent_decode(path);
    match crate::io::read_file(Path::new(&path), crate::io::CERTIFICATE) {
        Ok(b) => Ok(b.to_vec()),
        Err(ReadError::Io(e)) => {
            let status = match e.kind() {
                std::io::ErrorKind::NotFound => "404 Not Found",
                std::io::ErrorKind::PermissionDenied => "403 Forbidden",
                _ => "500 Internal Server Error",
            };
            bail!("cannot fetch {}: {status}", go_quote(url))
        }
        Err(e) => bail!("cannot fetch {}: {e}", go_quote(url)),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// GET an `http(s)://` certificate URL (proxy variables honoured): 200 or
/// `cannot fetch "<url>": 404 Not Found`.
fn fetch_url(url: &str) -> Result<Vec<u8>> {
    crate::io::fetch_certificate_url(url).map_err(|e| match e {
        crate::io::FetchError::Status(status) => anyhow!(
            "cannot fetch {}: {} {}",
            go_quote(url),
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        e => anyhow!("Get {}: {e}", go_quote(url)),
    })
}

/// kubeseal's `ParseKey`: the first PEM certificate, with an RSA key, not expired.
fn parse_cert(pem: &[u8]) -> Result<Certificate> {
    let cert = Certificate::from_pem(pem).map_err(|e| match e {
        kseal_crypto::Error::NoCertificate | kseal_crypto::Error::KeyInsteadOfCertificate => {
            anyhow!("data does not contain any valid RSA or ECDSA certificates")
        }
        kseal_crypto::Error::NotRsaCertificate(alg) => {
            anyhow!("expected RSA public key but found {alg}")
        }
        e => anyhow!(e),
    })?;
    cert.check_not_expired(time::OffsetDateTime::now_utc())?;
    Ok(cert)
}

// ---------------------------------------------------------------------------------------------
// Sealing.

/// The documents of a stream of Secrets; input that is not UTF-8 has none.
fn secret_docs(bytes: &[u8], source: &str) -> Result<Vec<Doc>> {
    if std::str::from_utf8(bytes).is_err() {
        bail!(NO_SECRETS);
    }
    let docs = documents::parse_stream(bytes, source)?;
    if docs.is_empty() {
        bail!(NO_SECRETS);
    }
    Ok(docs)
}

/// A Secret from one document. kubeseal decodes every document as a Secret without looking at
/// its kind, and so does this.
fn secret_of(doc: &Doc, source: &str) -> Result<k8s_openapi::api::core::v1::Secret> {
    let mut value = doc.value.clone();
    if let Value::Object(m) = &mut value {
        m.remove("kind");
        m.remove("apiVersion");
    }
    crate::commands::seal::read_secret(
        &Doc {
            index: doc.index,
            value,
        },
        source,
    )
}

/// kubeseal writes no kseal annotation.
fn drop_hint(ss: &mut SealedSecret) {
    if let Some(a) = ss.metadata.annotations.as_mut() {
        a.remove(ANNOTATION_SEALED_WITH);
        if a.is_empty() {
            ss.metadata.annotations = None;
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

fn seal(f: &Flags, input: Input, cert: &Certificate, out: &mut Vec<u8>) -> Result<()> {
    let (source, bytes) = input.read()?;
    let docs = secret_docs(&bytes, &source)?;
    let default_ns = default_namespace(&client::cluster_args(f));
    let opts = SealOptions {
        scope: Some(f.scope),
        name: non_empty(&f.name),
        namespace: f.namespace_override(),
        default_namespace: &default_ns,
        allow_empty_data: f.allow_empty_data,
    };
    let mut sealed = Vec::with_capacity(docs.len());
    for doc in &docs {
        let secret = secret_of(doc, &source)?;
        let mut ss = seal_secret(&mut rand::rngs::OsRng, cert.public_key(), secret, &opts)?;
        drop_hint(&mut ss);
        sealed.push(ss);
    }
    out.extend_from_slice(documents::render(&sealed, output_format(f)?)?.as_bytes());
    Ok(())
}

/// `--raw`: one value, base64 of its ciphertext, without a newline.
fn raw(f: &Flags, cert: &Certificate, out: &mut Vec<u8>) -> Result<()> {
    let mut namespace = String::new();
    if f.scope != Scope::ClusterWide {
        namespace = match f.namespace_override() {
            Some(n) => n.to_string(),
            None => default_namespace(&client::cluster_args(f)),
        };
        if namespace.is_empty() {
            bail!(
                "must provide the --namespace flag with --raw and --scope {}",
                f.scope.as_str()
            );
        }
        if f.name.is_empty() && f.scope == Scope::Strict {
            bail!("must provide the --name flag with --raw and --scope strict");
        }
    }
    let value = if let Some(spec) = f.from_file.first() {
        if f.from_file.len() > 1 {
            bail!("must provide only one --from-file when encrypting a single item with --raw");
        }
        // `[key=]path`: the key names an item in kubectl; a raw value has none.
        let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
        read_path(path, crate::io::RAW_VALUE)?
    } else {
        if std::io::stdin().is_terminal() {
            eprintln!("{TTY_HINT_RAW}");
        }
        read_stdin(crate::io::RAW_VALUE)?
    };
    let blob = kseal_crypto::seal(
        cert.public_key(),
        &f.scope.label(&namespace, &f.name),
        &value,
    )?;
    out.extend_from_slice(STANDARD.encode(blob).as_bytes());
    Ok(())
}

/// `--merge-into FILE`: seal the input with the file's name, namespace and scope, add its items
/// and template labels/annotations to the file's, and rewrite the whole file in `-o` (as
/// kubeseal does: JSON unless `-o yaml`, whatever the file's extension).
fn merge_into(f: &Flags, input: Input, cert: &Certificate) -> Result<()> {
    let target = f.merge_into.as_str();
    let text = read_path(target, crate::io::MANIFEST)?;
    let tdocs = documents::parse_stream(&text, target)?;
    let tdoc = tdocs
        .first()
        .ok_or_else(|| anyhow!("{target} holds no SealedSecret"))?;
    let mut existing: SealedSecret = documents::typed(
        tdoc,
        target,
        kseal_crds::KIND,
        kseal_crds::API_VERSION,
        true,
    )?;

    let (source, bytes) = input.read()?;
    let docs = secret_docs(&bytes, &source)?;
    if docs.len() != 1 {
        bail!(
            "--merge-into takes exactly one input Secret, {source} has {}",
            docs.len()
        );
    }
    let mut secret = secret_of(&docs[0], &source)?;
    // The items must open where the file's SealedSecret is: its name, namespace and scope.
    let file_scope = Scope::from_annotations(existing.annotations());
    if f.scope_set && f.scope != file_scope {
        bail!(
            "scope mismatch: {target} is sealed {file_scope} but --scope {} was given",
            f.scope.as_str()
        );
    }
    file_scope.apply_to(
        secret
            .metadata
            .annotations
            .get_or_insert_with(Default::default),
    );
    if let Some(n) = existing.metadata.name.clone().filter(|n| !n.is_empty()) {
        secret.metadata.name = Some(n);
    }
    if let Some(ns) = existing
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
    {
        secret.metadata.namespace = Some(ns);
    }
    let default_ns = default_namespace(&client::cluster_args(f));
    let opts = SealOptions {
        scope: None,
        name: None,
        namespace: f.namespace_override(),
        default_namespace: &default_ns,
        allow_empty_data: f.allow_empty_data,
    };
    let update = seal_secret(&mut rand::rngs::OsRng, cert.public_key(), secret, &opts)?;

    existing
        .spec
        .encrypted_data
        .extend(update.spec.encrypted_data.clone());
    let new_meta = update.spec.template.metadata.clone().unwrap_or_default();
    let has_new = new_meta.labels.as_ref().is_some_and(|l| !l.is_empty())
        || new_meta.annotations.as_ref().is_some_and(|a| !a.is_empty());
    if has_new {
        let meta = existing
            .spec
            .template
            .metadata
            .get_or_insert_with(Default::default);
        if let Some(l) = new_meta.labels.filter(|l| !l.is_empty()) {
            meta.labels.get_or_insert_with(Default::default).extend(l);
        }
        if let Some(a) = new_meta.annotations.filter(|a| !a.is_empty()) {
            meta.annotations
                .get_or_insert_with(Default::default)
                .extend(a);
        }
    }
    // A file that names its sealing keys (kseal's hint) keeps naming all of them.
    if let Some(recorded) = existing
        .annotations()
        .and_then(|a| a.get(ANNOTATION_SEALED_WITH))
        .cloned()
    {
        if let Some(value) = kseal_sealing::hint::merge_sealed_with(
            Some(&recorded),
            &kseal_sealing::sealed_with(&update),
        ) {
            existing
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANNOTATION_SEALED_WITH.to_string(), value);
        }
    }
    // kubeseal writes no seal records: drop those of the items replaced now, so `kseal verify`
    // reports them as unverifiable instead of as edited.
    if let Some(annotations) = existing.metadata.annotations.as_mut() {
        if let Some(value) = annotations.get(kseal_crds::ANNOTATION_SEAL_RECORDS) {
            let mut records = kseal_sealing::seal_record::parse_records(value).unwrap_or_default();
            records.retain(|item, _| !update.spec.encrypted_data.contains_key(item));
            if records.is_empty() {
                annotations.remove(kseal_crds::ANNOTATION_SEAL_RECORDS);
            } else {
                annotations.insert(
                    kseal_crds::ANNOTATION_SEAL_RECORDS.to_string(),
                    kseal_sealing::seal_record::format_records(&records),
                );
            }
        }
    }
    let rendered = documents::render(&[existing], output_format(f)?)?;
    crate::io::write_atomic(Path::new(target), rendered.as_bytes(), 0o644)
}

// ---------------------------------------------------------------------------------------------
// Recovery and the controller's endpoints.

/// `--recovery-unseal`: the input's SealedSecret decrypted offline with the keys of
/// `--recovery-private-key` (PEM keys, key Secrets or Lists of them).
fn recovery_unseal(f: &Flags, input: Input, out: &mut Vec<u8>) -> Result<()> {
    let mut keyring = Keyring::new();
    for path in &f.recovery_keys {
        let bytes = read_path(path, crate::io::KEY_FILE)?;
        for k in kseal_sealing::key_secret::read_key_file(&bytes)? {
            keyring.insert(k.key);
        }
    }
    let (source, bytes) = input.read()?;
    let docs = documents::parse_stream(&bytes, &source)?;
    let doc = docs
        .first()
        .ok_or_else(|| anyhow!("no SealedSecret found in {source}"))?;
    let ss: SealedSecret = documents::typed(
        doc,
        &source,
        kseal_crds::KIND,
        kseal_crds::API_VERSION,
        true,
    )?;
    let unsealed = kseal_sealing::unseal::unseal(
        &ss,
        &keyring,
        &kseal_sealing::sealed_with(&ss),
        UnsealOptions::default(),
    )?;
    let secrets = [crate::commands::unseal::SecretOut(unsealed.secret)];
    let rendered = Zeroizing::new(documents::render(&secrets, output_format(f)?)?);
    for s in secrets {
        kseal_sealing::scrub::maps(s.0.data.unwrap_or_default(), Default::default());
    }
    out.extend_from_slice(rendered.as_bytes());
    Ok(())
}

/// The name of a document's object, for messages.
fn doc_name(doc: &Doc) -> &str {
    doc.value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `--validate`: each input SealedSecret to the controller's `/v1/verify`.
fn validate(f: &Flags, input: Input) -> Result<()> {
    let (source, bytes) = input.read()?;
    let docs = documents::parse_stream(&bytes, &source)
        .map_err(|_| anyhow!("unable to decrypt sealed secret"))?;
    if docs.is_empty() {
        bail!("unable to decrypt sealed secret");
    }
    block_on(async {
        let c = controller(f).await?;
        for doc in &docs {
            if !c.verify(serde_json::to_vec(&doc.value)?).await? {
                bail!("unable to decrypt sealed secret: {}", doc_name(doc));
            }
        }
        Ok(())
    })?
}

/// `--re-encrypt`: each input SealedSecret re-sealed by the controller (`/v1/rotate`), written
/// in `-o` without creationTimestamp, deletionTimestamp and generation.
fn re_encrypt(f: &Flags, input: Input, out: &mut Vec<u8>) -> Result<()> {
    let (source, bytes) = input.read()?;
    let docs = documents::parse_stream(&bytes, &source)?;
    if docs.is_empty() {
        bail!("no SealedSecret found in {source}");
    }
    let rotated = block_on(async {
        let c = controller(f).await?;
        let mut rotated = Vec::with_capacity(docs.len());
        for doc in &docs {
            let answer = c.rotate(serde_json::to_vec(&doc.value)?).await?;
            let mut ss: SealedSecret = kseal_sealing::redact::from_json_slice(&answer)
                .map_err(|e| anyhow!("cannot re-encrypt secret: invalid answer: {e}"))?;
            ss.metadata.creation_timestamp = None;
            ss.metadata.deletion_timestamp = None;
            ss.metadata.generation = None;
            rotated.push(ss);
        }
        anyhow::Ok(rotated)
    })??;
    out.extend_from_slice(documents::render(&rotated, output_format(f)?)?.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names() {
        let yes = [
            "kubeseal",
            "/usr/local/bin/kubeseal",
            "./kubeseal",
            "kubeseal.exe",
        ];
        for n in yes {
            assert!(invoked_as_kubeseal(Some(&OsString::from(n))), "{n}");
        }
        for n in ["kseal", "/bin/kubeseal-x", "kubeseal/kseal", ""] {
            assert!(!invoked_as_kubeseal(Some(&OsString::from(n))), "{n}");
        }
        assert!(!invoked_as_kubeseal(None));
    }

    #[test]
    fn schemes_as_go_finds_them() {
        assert_eq!(url_scheme("/?this/file/cannot/possibly/exist/right?"), "");
        assert_eq!(url_scheme("cert.pem"), "");
        assert_eq!(url_scheme("C:\\certs\\c.pem"), "C");
        assert_eq!(url_scheme("https://x/c.pem"), "https");
        assert_eq!(url_scheme("file:///tmp/c.pem"), "file");
        assert_eq!(url_scheme("./a:b"), "");
        assert_eq!(percent_decode("/tmp/a%20b"), "/tmp/a b");
    }

    #[test]
    fn go_error_texts() {
        let e = std::fs::read("/nonexistent/x").unwrap_err();
        assert_eq!(
            path_error("open", "/nonexistent/x", &e).to_string(),
            "open /nonexistent/x: no such file or directory"
        );
        assert!(yaml_extension("dir.json/out.yaml"));
        assert!(yaml_extension("out.yml"));
        assert!(!yaml_extension("out.yaml.json"));
    }
}
