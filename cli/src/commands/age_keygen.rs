//! `kseal age-keygen`: age identities (X25519, or post-quantum with `--pq`) in the format of
//! age's `age-keygen`, and `-y` to print the recipients of an identity file. docs/cli.md.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kseal_crypto::{AgeIdentity, AgeKeyType};

use crate::io::write_new;

/// `kseal age-keygen`
#[derive(Debug, Args)]
#[command(after_help = "\
Writes an identity file as age-keygen does:
  # created: <RFC 3339 time>
  # public key: age1…            (age1pq1… with --pq)
  AGE-SECRET-KEY-1…              (AGE-SECRET-KEY-PQ-1… with --pq)
With -o the file is created with mode 0600 and never overwritten, and the public key is
printed to stderr. -y FILE prints the recipient of every identity in FILE (stdin if FILE is -).")]
pub struct AgeKeygenArgs {
    /// A post-quantum mlkem768x25519 identity (ML-KEM-768 + X25519) instead of X25519
    #[arg(long, conflicts_with = "to_public")]
    pub pq: bool,

    /// Write the identity to FILE (mode 0600, must not exist) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the recipients (public keys) of the identities in FILE instead
    #[arg(short = 'y', value_name = "FILE", conflicts_with = "pq")]
    pub to_public: Option<PathBuf>,
}

pub fn run(args: AgeKeygenArgs) -> Result<ExitCode> {
    if let Some(path) = &args.to_public {
        return to_public(path, args.output.as_ref());
    }
    let kind = if args.pq {
        AgeKeyType::MlKem768X25519
    } else {
        AgeKeyType::X25519
    };
    let id = AgeIdentity::generate_of(kind);
    let created = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds are valid")
        .format(&time::format_description::well_known::Rfc3339)
        .context("cannot format the time")?;
    let mut text = zeroize::Zeroizing::new(format!("# created: {created}\n"));
    text.push_str(&id.to_identity_file());
    match &args.output {
        Some(path) => {
            if path.exists() {
                anyhow::bail!(
                    "{} already exists: an identity file is never overwritten",
                    path.display()
                );
            }
            write_new(path, text.as_bytes(), 0o600, false)?;
            eprintln!("Public key: {}", id.recipient());
        }
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("Public key: {}", id.recipient());
            }
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write the identity to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_public(path: &std::path::Path, output: Option<&PathBuf>) -> Result<ExitCode> {
    let text = if path.as_os_str() == "-" {
        let bytes = crate::io::read_stdin(crate::io::IDENTITY_FILE)
            .map_err(|e| anyhow::anyhow!("cannot read stdin: {e}"))?;
        crate::io::into_text(bytes)
            .map_err(|at| anyhow::anyhow!("stdin: not UTF-8 text (byte {at})"))?
    } else {
        crate::io::read_text(
            path,
            crate::io::IDENTITY_FILE,
            &format!("age identity file {}", path.display()),
        )?
    };
    let ids = AgeIdentity::parse_identity_file(&text)
        .with_context(|| format!("cannot read age identities from {}", path.display()))?;
    let mut out = String::new();
    for id in &ids {
        out.push_str(id.recipient().as_str());
        out.push('\n');
    }
    match output {
        Some(o) => write_new(o, out.as_bytes(), 0o644, false)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
