//! Finding the SealedSecrets in files and directories (`kseal validate`, `reencrypt`, `rotate`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use kseal_crds::SealedSecret;

use super::docs::{self, Doc};

/// One file given on the command line or found under a directory.
#[derive(Debug)]
pub struct SourceFile {
    /// Its path.
    pub path: PathBuf,
    /// Its text (read once).
    pub text: String,
    /// The SealedSecret documents in it, with their 1-based document position.
    pub sealed: Vec<(usize, SealedSecret)>,
}

/// Whether a document is a SealedSecret (apiVersion and kind checked).
pub fn is_sealed_secret(doc: &Doc) -> bool {
    doc.value.get("kind").and_then(|k| k.as_str()) == Some(kseal_crds::KIND)
        && doc
            .value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .is_some_and(|v| v.starts_with("bitnami.com/"))
}

fn wanted(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Every file under `paths` (directories recursively: `.yaml`, `.yml`, `.json`; hidden
/// directories such as `.git` skipped; files named explicitly always read), sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        let ft = e.file_type()?;
        if ft.is_dir() {
            if !hidden {
                walk(&path, out)?;
            }
        } else if (ft.is_file() || ft.is_symlink()) && wanted(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file and picks its SealedSecret documents. Other documents are ignored; a file that
/// does not parse as YAML/JSON is an error naming it.
pub fn read(path: &Path) -> Result<SourceFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(path, bytes)
}

/// [`read`] on the bytes of the file at `path`, already read.
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<SourceFile> {
    let name = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name} is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let mut sealed = Vec::new();
    for doc in docs::parse_stream(text.as_bytes(), &name)? {
        if is_sealed_secret(&doc) {
            let ss: SealedSecret = kseal_crds::redact::from_value(doc.value).map_err(|e| {
                anyhow::anyhow!(
                    "{name}: document {} is not a valid SealedSecret: {e}",
                    doc.index
                )
            })?;
            sealed.push((doc.index, ss));
        }
    }
    Ok(SourceFile {
        path: path.to_path_buf(),
        text,
        sealed,
    })
}

/// `namespace/name` of a SealedSecret, for reports.
pub fn describe(ss: &SealedSecret) -> String {
    format!(
        "{}/{}",
        ss.metadata.namespace.as_deref().unwrap_or(""),
        ss.metadata.name.as_deref().unwrap_or("")
    )
}
