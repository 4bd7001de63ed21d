//! Reading inputs and writing outputs: named sources for error messages, atomic replacement of
//! output files, and certificates from files or URLs.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Bytes read from a file or stdin, with a name to put in error messages.
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads `file`, or stdin when `None` (warning on stderr when stdin is a terminal).
pub fn read_input(file: Option<&Path>, tty_hint: &str) -> Result<Input> {
    match file {
        Some(p) => Ok(Input {
            name: p.display().to_string(),
            bytes: fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        }),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("{tty_hint}");
            }
            let mut bytes = Vec::new();
            stdin
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            Ok(Input {
                name: "<stdin>".into(),
                bytes,
            })
        }
    }
}

/// Where output goes.
#[derive(Debug)]
pub enum Output {
    Stdout,
    /// Replaced atomically; `mode` applies to a new file (an existing file keeps its mode).
    File {
        path: PathBuf,
        mode: u32,
    },
}

impl Output {
    pub fn new(path: Option<&Path>, mode: u32) -> Self {
        match path {
            Some(p) => Output::File {
                path: p.to_path_buf(),
                mode,
            },
            None => Output::Stdout,
        }
    }

    /// True when the target file's extension asks for YAML.
    pub fn wants_yaml(&self) -> bool {
        matches!(self, Output::File { path, .. } if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
    }

    /// Writes all of `bytes`; a file is replaced only now, after everything succeeded.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()?;
                Ok(())
            }
            // A private mode (no group/other bits) marks secret content, e.g. an unsealed
            // Secret: it always gets that mode, never an existing file's broader one.
            Output::File { path, mode } => write_atomic_with(path, bytes, *mode, mode & 0o077 != 0),
        }
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`, so
/// readers see the old content or the new, never a part. A new file gets `mode`; an existing
/// one keeps its permissions.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(path, bytes, mode, true)
}

/// [`write_atomic`], choosing whether an existing file's permissions are kept. The mode is set
/// on the temporary file before the rename, so the content is never visible with other
/// permissions.
fn write_atomic_with(path: &Path, bytes: &[u8], mode: u32, keep_existing_mode: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".kseal-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perm = match fs::metadata(path) {
            Ok(m) if keep_existing_mode => m.permissions(),
            _ => fs::Permissions::from_mode(mode),
        };
        fs::set_permissions(tmp.path(), perm)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Creates a new file with `mode`; refuses to replace an existing one unless `force`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<()> {
    if !force && path.exists() {
        bail!(
            "{} already exists (use --force to overwrite)",
            path.display()
        );
    }
    // The new file always gets `mode`: a key must not inherit an old file's 0644.
    write_atomic_with(path, bytes, mode, false)
}

/// Reads a certificate from a path, a `file://` URL or an `http(s)://` URL (proxy variables
/// honoured). Returns the raw bytes.
pub fn read_cert_source(src: &str) -> Result<Vec<u8>> {
    if let Some(rest) = src.strip_prefix("file://") {
        return fs::read(rest).with_context(|| format!("cannot read certificate {rest}"));
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        return fetch_url(src);
    }
    fs::read(src).with_context(|| format!("cannot read certificate {src}"))
}

fn fetch_url(url: &str) -> Result<Vec<u8>> {
    let agent = crate::http_client::agent();
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot fetch {url:?}"))?;
    let status = resp.status();
    if status != 200 {
        bail!("cannot fetch {url:?}: {status}");
    }
    resp.body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .with_context(|| format!("cannot fetch {url:?}"))
}
