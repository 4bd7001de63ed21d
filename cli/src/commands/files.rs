//! Finding the SealedSecrets in files and directories (`kseal verify`, `validate`, `reencrypt`,
//! `rotate`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use kseal_crds::SealedSecret;

use super::documents::{self, Doc};

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

/// Deepest directory a walk descends into below a path given on the command line.
pub const MAX_WALK_DEPTH: usize = 64;

/// How directories are walked (`-L/--follow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Follow symlinks to files and directories (loops are refused).
    pub follow_symlinks: bool,
}

/// A file to read: named on the command line, or found by a walk.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    path: PathBuf,
    /// Found by a walk: read only as a regular file, never blocking.
    walked: bool,
    follow: bool,
}

impl Found {
    /// Its path, as given or as found under a given directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What [`collect`] found, and how many entries it reported and left unread.
#[derive(Debug, Default)]
pub struct Walk {
    files: Vec<Found>,
    skipped: usize,
}

impl Walk {
    /// The files to read, sorted.
    pub fn files(&self) -> &[Found] {
        &self.files
    }

    /// Entries the walk reported on stderr and did not read.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The command's exit code: `code`, or [`crate::EXIT_ERROR`] when the walk skipped
    /// something (as ripgrep does: the run finishes, the exit code says that not everything
    /// was read).
    pub fn exit_code(&self, code: u8) -> u8 {
        if self.skipped > 0 {
            crate::EXIT_ERROR
        } else {
            code
        }
    }

    fn skip(&mut self, path: &Path, why: &str) {
        eprintln!("kseal: skipped {}: {why}", path.display());
        self.skipped += 1;
    }
}

/// Every file under `paths`. Directories are walked recursively for `.yaml`, `.yml` and
/// `.json` files, skipping hidden directories (`.git`); files named explicitly are always
/// read, whatever their type or name (`/dev/stdin` too), following symlinks.
///
/// A walk reads regular files only and opens nothing else. What it does not read is reported
/// with one line on stderr (`kseal: skipped PATH: why`) and makes the command exit 2 once
/// everything else is done: a symlink with a manifest's name, or to a directory, unless
/// `follow_symlinks`; with it, a broken symlink or a loop (a directory that contains itself);
/// a FIFO, socket or device with a manifest's name. Other names are not looked at. A walk
/// deeper than [`MAX_WALK_DEPTH`] levels is an error.
pub fn collect(paths: &[PathBuf], opts: WalkOptions) -> Result<Walk> {
    let mut out = Walk::default();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut ancestors = vec![dir_id(&meta)];
            walk(p, opts, 0, &mut ancestors, &mut out)?;
        } else {
            out.files.push(Found {
                path: p.clone(),
                walked: false,
                follow: true,
            });
        }
    }
    // Named and found: read as named.
    out.files.sort();
    out.files.dedup_by(|later, first| later.path == first.path);
    Ok(out)
}

fn dir_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

fn walk(
    dir: &Path,
    opts: WalkOptions,
    depth: usize,
    ancestors: &mut Vec<(u64, u64)>,
    out: &mut Walk,
) -> Result<()> {
    if depth >= MAX_WALK_DEPTH {
        bail!(
            "{}: more than {MAX_WALK_DEPTH} directory levels, the limit of a walk",
            dir.display()
        );
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            // Hidden: directories are skipped, files read like others.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
        }
        let ft = e
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let meta = if ft.is_symlink() {
            // stat, not open: harmless on a FIFO or a device.
            let target = std::fs::metadata(&path);
            let to_dir = target.as_ref().is_ok_and(|m| m.is_dir());
            if !opts.follow_symlinks {
                if to_dir {
                    out.skip(&path, "a symlink to a directory (-L/--follow follows it)");
                } else if wanted(&path) {
                    out.skip(&path, "a symlink (-L/--follow follows it)");
                }
                continue;
            }
            match target {
                Ok(m) => m,
                Err(_) => {
                    if wanted(&path) {
                        out.skip(&path, "a broken symlink");
                    }
                    continue;
                }
            }
        } else if ft.is_dir() {
            std::fs::metadata(&path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
        } else {
            if ft.is_file() && wanted(&path) {
                out.files.push(Found {
                    path,
                    walked: true,
                    follow: opts.follow_symlinks,
                });
            } else if wanted(&path) {
                let why = format!("{}, not a regular file", crate::io::kind_of(&ft));
                out.skip(&path, &why);
            }
            continue;
        };
        // A directory, or what a followed symlink points to.
        if meta.is_dir() {
            let id = dir_id(&meta);
            if ancestors.contains(&id) {
                out.skip(
                    &path,
                    "a loop (it leads back to a directory that contains it)",
                );
                continue;
            }
            ancestors.push(id);
            walk(&path, opts, depth + 1, ancestors, out)?;
            ancestors.pop();
        } else if meta.is_file() && wanted(&path) {
            out.files.push(Found {
                path,
                walked: true,
                follow: true,
            });
        } else if wanted(&path) {
            let why = format!(
                "a symlink to {}, not a regular file",
                crate::io::kind_of(&meta.file_type())
            );
            out.skip(&path, &why);
        }
    }
    Ok(())
}

/// Reads a file and picks its SealedSecret documents. Other documents are ignored; a file that
/// does not parse as YAML/JSON is an error naming it. At most [`crate::io::MANIFEST`] bytes.
pub fn read(found: &Found) -> Result<SourceFile> {
    let path = found.path();
    let mut bytes = if found.walked {
        crate::io::read_walked(path, crate::io::MANIFEST, found.follow)
    } else {
        crate::io::read_file(path, crate::io::MANIFEST)
    }
    .with_context(|| format!("cannot read {}", path.display()))?;
    parse(path, std::mem::take(&mut *bytes))
}

/// [`read`] on the bytes of the file at `path`, already read.
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<SourceFile> {
    let name = path.display().to_string();
    // SealedSecrets hold ciphertext only: the text need not stay zeroized.
    let mut text = crate::io::into_text(zeroize::Zeroizing::new(bytes))
        .map_err(|at| anyhow::anyhow!("{name} is not valid UTF-8 (byte {at})"))?;
    let text = std::mem::take(&mut *text);
    let mut sealed = Vec::new();
    for doc in documents::parse_stream(text.as_bytes(), &name)? {
        if is_sealed_secret(&doc) {
            let ss: SealedSecret = kseal_sealing::redact::from_value(doc.value).map_err(|e| {
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
