//! Reading inputs and writing outputs: named sources for error messages, atomic replacement of
//! output files, and certificates from files or URLs.
//!
//! Every byte kseal reads from a file, a URL or stdin goes through [`read_limited`]: at most
//! the input's [`Limit`] plus one byte is read (a regular file larger than the limit is refused
//! from its size, before reading), so `/dev/zero` or a huge file fails at once with the file's
//! name and the limit, and memory never grows past the limit. The buffers are zeroized when
//! dropped, growth included (a raw value, a Secret on stdin and key files hold secrets).
//! Files found by a directory walk are opened by [`read_walked`]: regular files only, without
//! following a symlink unless asked, and never blocking (a FIFO put there after the walk looked
//! is refused, not waited on).

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use zeroize::Zeroizing;

/// Largest manifest (Secret, SealedSecret, List, key backup), key file, raw value or kubeconfig
/// kseal reads: 16 MiB. A Kubernetes object is at most about 1.5 MiB (etcd's request limit),
/// so this leaves room for files of many documents.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;
/// Largest certificate (file or URL answer), `.kseal.yaml`, recipients or age identity file:
/// 1 MiB (a certificate is about 2 KB).
pub const MAX_SMALL_FILE_BYTES: u64 = 1 << 20;

/// The bound on one input, and what to call it in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The most bytes accepted.
    pub bytes: u64,
    /// What the input is, for the message (`a manifest`, `a key file`, ...).
    pub what: &'static str,
}

/// Secrets and SealedSecrets (`-f`, stdin, `--merge-into`, the files of verify, validate and
/// reencrypt), key backups.
pub const MANIFEST: Limit = Limit {
    bytes: MAX_INPUT_BYTES,
    what: "a manifest",
};
/// `--key`, `--recovery-private-key`.
pub const KEY_FILE: Limit = Limit {
    bytes: MAX_INPUT_BYTES,
    what: "a key file",
};
/// `--raw` values (`--from-file`, stdin).
pub const RAW_VALUE: Limit = Limit {
    bytes: MAX_INPUT_BYTES,
    what: "a raw value",
};
/// The kubeconfig files read for the current context's namespace.
pub const KUBECONFIG: Limit = Limit {
    bytes: MAX_INPUT_BYTES,
    what: "a kubeconfig",
};
/// `--cert` files, `file://` and `http(s)://` answers.
pub const CERTIFICATE: Limit = Limit {
    bytes: MAX_SMALL_FILE_BYTES,
    what: "a certificate",
};
/// An answer of the controller through the API server's service proxy (`/v1/cert.pem`,
/// `/v1/verify`, `/v1/rotate`).
pub const CONTROLLER_ANSWER: Limit = Limit {
    bytes: MAX_INPUT_BYTES,
    what: "an answer of the controller",
};
/// `.kseal.yaml` (`--config` or found).
pub const CONFIG_FILE: Limit = Limit {
    bytes: MAX_SMALL_FILE_BYTES,
    what: "a configuration file",
};
/// `--recipients-file` and a rule's `recipients_file`.
pub const RECIPIENTS_FILE: Limit = Limit {
    bytes: MAX_SMALL_FILE_BYTES,
    what: "a recipients file",
};
/// `--identity`.
pub const IDENTITY_FILE: Limit = Limit {
    bytes: MAX_SMALL_FILE_BYTES,
    what: "an identity file",
};

impl Limit {
    fn human(&self) -> String {
        if self.bytes >= 1 << 20 && self.bytes % (1 << 20) == 0 {
            format!("{} MiB", self.bytes >> 20)
        } else if self.bytes >= 1 << 10 && self.bytes % (1 << 10) == 0 {
            format!("{} KiB", self.bytes >> 10)
        } else {
            format!("{} bytes", self.bytes)
        }
    }
}

/// Why a read failed. The message names neither the file (the caller's context does) nor any
/// of its content.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system's error (missing file, permission, ...).
    Io(std::io::Error),
    /// More than the limit.
    TooLarge(Limit),
    /// A walk found something that is not a regular file there (it changed after the walk
    /// looked, or a symlink that is not followed).
    NotRegular(&'static str),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge(l) => {
                write!(f, "larger than {}, the limit for {}", l.human(), l.what)
            }
            ReadError::NotRegular(kind) => write!(f, "not a regular file ({kind})"),
        }
    }
}

// No `source`: the message already holds the operating system's error, once.
impl std::error::Error for ReadError {}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// What a file type is called in messages.
pub fn kind_of(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "a special file"
    }
}

/// Reads at most `limit.bytes` from `r`; one byte more is an error. `hint` sizes the first
/// buffer (a regular file's length). Growing copies into a new buffer and zeroizes the old
/// one, so no copy of the input is left in freed memory.
pub fn read_limited(
    mut r: impl Read,
    limit: Limit,
    hint: u64,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    const CHUNK: usize = 64 << 10;
    let max = usize::try_from(limit.bytes).unwrap_or(usize::MAX - 1);
    let first = usize::try_from(hint)
        .unwrap_or(max)
        .min(max)
        .saturating_add(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(first.max(1024)));
    let mut chunk = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        // Never ask for more than one byte past the limit.
        let want = (max + 1 - buf.len()).min(CHUNK);
        let n = match r.read(&mut chunk[..want]) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        if buf.len() + n > buf.capacity() {
            let cap = (buf.capacity() * 2).max(buf.len() + n).min(max + 1);
            let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > max {
            return Err(ReadError::TooLarge(limit));
        }
    }
}

/// Reads a file named on the command line (or by a configuration): symlinks are followed and
/// any file type is read (`/dev/stdin`, `<(…)`), at most `limit`. A regular file larger than
/// the limit is refused from its size.
pub fn read_file(path: &Path, limit: Limit) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit.bytes {
        return Err(ReadError::TooLarge(limit));
    }
    read_limited(file, limit, if meta.is_file() { meta.len() } else { 0 })
}

/// Reads a file a directory walk found: it must (still) be a regular file, a symlink is not
/// followed unless `follow`, and opening never blocks (O_NONBLOCK: a FIFO does not wait for a
/// writer; O_NOCTTY). At most `limit`.
pub fn read_walked(
    path: &Path,
    limit: Limit,
    follow: bool,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| {
            // O_NOFOLLOW on a symlink: ELOOP.
            if !follow && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                ReadError::NotRegular("a symlink")
            } else {
                ReadError::Io(e)
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit.bytes {
        return Err(ReadError::TooLarge(limit));
    }
    read_limited(file, limit, meta.len())
}

/// Reads stdin, at most `limit`.
pub fn read_stdin(limit: Limit) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    read_limited(std::io::stdin().lock(), limit, 0)
}

/// The bytes as text, without copying them (the buffer stays zeroized on drop). `Err` holds
/// the offset of the first byte that is not UTF-8.
pub fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, usize> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            drop(Zeroizing::new(e.into_bytes()));
            Err(at)
        }
    }
}

/// [`read_file`] as UTF-8 text; `what` names the file in errors (`configuration x.yaml`).
pub fn read_text(path: &Path, limit: Limit, what: &str) -> Result<Zeroizing<String>> {
    let bytes = read_file(path, limit).with_context(|| format!("cannot read {what}"))?;
    into_text(bytes).map_err(|at| anyhow::anyhow!("{what} is not valid UTF-8 (byte {at})"))
}

/// Bytes read from a file or stdin, with a name to put in error messages.
pub struct Input {
    pub name: String,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Reads `file`, or stdin when `None` (warning on stderr when stdin is a terminal), at most
/// `limit`.
pub fn read_input(file: Option<&Path>, tty_hint: &str, limit: Limit) -> Result<Input> {
    match file {
        Some(p) => Ok(Input {
            name: p.display().to_string(),
            bytes: read_file(p, limit).with_context(|| format!("cannot read {}", p.display()))?,
        }),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("{tty_hint}");
            }
            Ok(Input {
                name: "<stdin>".into(),
                bytes: read_stdin(limit).context("cannot read stdin")?,
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
/// honoured), at most [`CERTIFICATE`]. Returns the raw bytes.
pub fn read_cert_source(src: &str) -> Result<Vec<u8>> {
    let path = match src.strip_prefix("file://") {
        Some(rest) => rest,
        None if src.starts_with("http://") || src.starts_with("https://") => {
            return fetch_url(src);
        }
        None => src,
    };
    Ok(read_file(Path::new(path), CERTIFICATE)
        .with_context(|| format!("cannot read certificate {path}"))?
        .to_vec())
}

fn fetch_url(url: &str) -> Result<Vec<u8>> {
    fetch_certificate_url(url).map_err(|e| match e {
        FetchError::Status(status) => anyhow!("cannot fetch {url:?}: {status}"),
        e => anyhow!("cannot fetch {url:?}: {e}"),
    })
}

/// Why [`fetch_certificate_url`] failed; each caller words it (kseal's style, or kubeseal's
/// `Get "URL": …`).
#[derive(Debug)]
pub enum FetchError {
    /// The request did not complete.
    Transport(ureq::Error),
    /// The server answered, but not 200.
    Status(ureq::http::StatusCode),
    /// The body was too large or could not be read.
    Body(ReadError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transport(e) => write!(f, "{e}"),
            FetchError::Status(s) => write!(f, "{s}"),
            FetchError::Body(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// GETs a certificate over HTTP(S) (`--cert https://…`), the body bounded like a certificate
/// file; the one place both fronts fetch a URL.
pub fn fetch_certificate_url(url: &str) -> Result<Vec<u8>, FetchError> {
    let mut resp = crate::http_client::agent()
        .get(url)
        .call()
        .map_err(FetchError::Transport)?;
    let status = resp.status();
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    read_url_body(resp.body_mut(), CERTIFICATE).map_err(FetchError::Body)
}

/// An HTTP answer's body, at most `limit` (the body is read through [`read_limited`], so the
/// error is the same as a file's).
pub fn read_url_body(body: &mut ureq::Body, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let reader = body
        .with_config()
        .limit(limit.bytes.saturating_add(1))
        .reader();
    Ok(read_limited(reader, limit, 0)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limit = Limit {
        bytes: 10,
        what: "a test input",
    };

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        assert_eq!(
            &**read_limited(&b"0123456789"[..], SMALL, 0).unwrap(),
            b"0123456789"
        );
        let e = read_limited(&b"0123456789X"[..], SMALL, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than 10 bytes, the limit for a test input"
        );
        // An endless source stops one byte past the limit.
        let e = read_limited(std::io::repeat(0), MANIFEST, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than 16 MiB, the limit for a manifest"
        );
    }

    #[test]
    fn growth_keeps_every_byte() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_limited(&data[..], MANIFEST, 7).unwrap();
        assert_eq!(&**got, &data[..]);
    }

    #[test]
    fn a_large_regular_file_is_refused_from_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::File::create(&path)
            .unwrap()
            .set_len(MAX_SMALL_FILE_BYTES + 1)
            .unwrap();
        assert!(matches!(
            read_file(&path, CERTIFICATE),
            Err(ReadError::TooLarge(CERTIFICATE))
        ));
        assert!(matches!(
            read_walked(&path, CERTIFICATE, false),
            Err(ReadError::TooLarge(CERTIFICATE))
        ));
    }

    #[test]
    fn a_walk_reads_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        fs::write(&file, "x: 1\n").unwrap();
        let link = dir.path().join("b.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(&**read_walked(&file, MANIFEST, false).unwrap(), b"x: 1\n");
        assert!(matches!(
            read_walked(&link, MANIFEST, false),
            Err(ReadError::NotRegular("a symlink"))
        ));
        assert_eq!(&**read_walked(&link, MANIFEST, true).unwrap(), b"x: 1\n");
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_walked(&zero, MANIFEST, true),
            Err(ReadError::NotRegular("a character device"))
        ));
        // A FIFO (put there after the walk looked): refused at once, not waited on.
        let fifo = dir.path().join("fifo.yaml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(matches!(
            read_walked(&fifo, MANIFEST, true),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        // Named explicitly, a device is read, up to the limit.
        assert!(matches!(
            read_file(&zero, MANIFEST),
            Err(ReadError::TooLarge(MANIFEST))
        ));
    }

    #[test]
    fn text_conversion_names_the_first_bad_byte() {
        assert_eq!(&**into_text(Zeroizing::new(b"ab".to_vec())).unwrap(), "ab");
        assert_eq!(
            into_text(Zeroizing::new(b"ab\xff".to_vec())).unwrap_err(),
            2
        );
    }

    /// Masks of the canaries of [`read_buffers_leave_no_copy_in_freed_memory`]: the plain
    /// bytes (`b ^ MASK`, ASCII) exist only in the buffers they are read into, never in the
    /// binary. One for the test, one for its control.
    const MASK: u8 = 0xA5;
    const CANARY: &[u8] = &[
        0xCE, 0xD6, 0xC0, 0xC4, 0xC9, 0x88, 0xDF, 0xC0, 0xD7, 0xCA, 0xCC, 0xDF, 0xC0, 0x88, 0xC6,
        0xC4, 0xCB, 0xC4, 0xD7, 0xDC, 0x88, 0xE4, 0x88, 0x92, 0xF4, 0xDD, 0x97,
    ];
    const CONTROL: &[u8] = &[
        0xCE, 0xD6, 0xC0, 0xC4, 0xC9, 0x88, 0xDF, 0xC0, 0xD7, 0xCA, 0xCC, 0xDF, 0xC0, 0x88, 0xC6,
        0xCA, 0xCB, 0xD1, 0xD7, 0xCA, 0xC9, 0x88, 0xE7, 0x88, 0x9C, 0xF3, 0xD2, 0x91,
    ];

    /// Reads `len` bytes of a canary, repeated, unmasked byte by byte into the caller's
    /// buffer.
    struct Canary {
        masked: &'static [u8],
        at: usize,
        len: usize,
    }

    impl Read for Canary {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(self.len - self.at).min(4096);
            for (i, b) in out[..n].iter_mut().enumerate() {
                *b = self.masked[(self.at + i) % self.masked.len()] ^ MASK;
            }
            self.at += n;
            Ok(n)
        }
    }

    /// Scans this process's writable memory (heap, thread arenas, stacks) through
    /// `/proc/self/mem` (plain file reads). Its buffers are allocated once, up front, so a
    /// scan does not reuse the freed memory it looks at; they are zeroized, so a scan leaves
    /// no copy behind.
    #[cfg(target_os = "linux")]
    struct Scanner {
        maps: Zeroizing<Vec<u8>>,
        buf: Zeroizing<Vec<u8>>,
    }

    #[cfg(target_os = "linux")]
    impl Scanner {
        fn new() -> Self {
            Scanner {
                maps: Zeroizing::new(Vec::with_capacity(4 << 20)),
                buf: Zeroizing::new(vec![0u8; 1 << 20]),
            }
        }

        /// Whether the canary `masked` is anywhere in writable memory.
        fn finds(&mut self, masked: &[u8]) -> bool {
            use std::io::{Seek as _, SeekFrom};
            self.maps.clear();
            fs::File::open("/proc/self/maps")
                .unwrap()
                .read_to_end(&mut self.maps)
                .unwrap();
            let mut mem = fs::File::open("/proc/self/mem").unwrap();
            let found_in = |hay: &[u8]| {
                hay.windows(masked.len())
                    .any(|w| w.iter().zip(masked).all(|(a, m)| a ^ MASK == *m))
            };
            let maps = std::str::from_utf8(&self.maps).unwrap();
            for line in maps.lines() {
                let mut f = line.split_whitespace();
                let (Some(range), Some(perms)) = (f.next(), f.next()) else {
                    continue;
                };
                if !perms.starts_with("rw") {
                    continue;
                }
                let (start, end) = range.split_once('-').unwrap();
                let start = u64::from_str_radix(start, 16).unwrap();
                let end = u64::from_str_radix(end, 16).unwrap();
                let mut at = start;
                while at < end {
                    let n = usize::try_from((end - at).min(self.buf.len() as u64)).unwrap();
                    let buf = &mut self.buf[..n];
                    if mem.seek(SeekFrom::Start(at)).is_err() || mem.read_exact(buf).is_err() {
                        break;
                    }
                    if found_in(buf) {
                        return true;
                    }
                    if at + n as u64 >= end {
                        break;
                    }
                    // Overlap, so that a canary across two reads is seen.
                    at += (n - masked.len()) as u64;
                }
            }
            false
        }
    }

    /// The buffers of [`read_limited`] (the growing one, the read chunk) and the text made
    /// from them leave no copy of the input in freed memory: [`zeroize_probe`] in a process
    /// of its own (other tests' threads would allocate meanwhile).
    #[cfg(target_os = "linux")]
    #[test]
    fn read_buffers_leave_no_copy_in_freed_memory() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "io::tests::zeroize_probe", "--ignored"])
            .args(["--test-threads=1", "--nocapture"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Controls: the scan finds a canary in a live buffer, and in a plain `Vec` freed
    /// without zeroizing; then the canary read by [`read_limited`] is gone once dropped.
    #[cfg(target_os = "linux")]
    #[test]
    #[ignore = "run by read_buffers_leave_no_copy_in_freed_memory, in a process of its own"]
    fn zeroize_probe() {
        let mut scan = Scanner::new();
        assert!(!scan.finds(CANARY) && !scan.finds(CONTROL));

        // Control: a plain Vec, freed (a live allocation after it keeps the allocator from
        // merging it into free space it may return to the system).
        let mut plain = Vec::with_capacity(32 << 10);
        let control = Canary {
            masked: CONTROL,
            at: 0,
            len: 32 << 10,
        };
        control.take(32 << 10).read_to_end(&mut plain).unwrap();
        let guard = vec![1u8; 4096];
        drop(plain);
        assert!(
            scan.finds(CONTROL),
            "the scan does not see freed memory: the test below would prove nothing"
        );
        drop(guard);

        // 200 KB from a source of unknown size: the buffer grows from 1 KiB, eight times.
        let len = 200_000;
        let input = Canary {
            masked: CANARY,
            at: 0,
            len,
        };
        let bytes = read_limited(input, MANIFEST, 0).unwrap();
        assert_eq!(bytes.len(), len);
        assert!(scan.finds(CANARY), "the scan does not see the live buffer");
        let text = into_text(bytes).unwrap();
        assert_eq!(text.len(), len);
        drop(text);
        assert!(
            !scan.finds(CANARY),
            "a copy of the input is left in freed memory"
        );
    }
}
