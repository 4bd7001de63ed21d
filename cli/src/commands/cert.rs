//! `kseal cert`: what a sealing certificate is.

use std::process::ExitCode;

use anyhow::{Context, Result};
use kseal_crypto::Certificate;
use time::format_description::well_known::Rfc3339;

use crate::cluster::ClusterArgs;

use clap::{Args, ValueEnum};

/// `kseal cert`
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Certificate: a file, file:// or http(s):// URL
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// Print only the fingerprint
    #[arg(long, conflicts_with = "output")]
    pub fingerprint: bool,

    /// Print the certificate PEM as it is
    #[arg(long, conflicts_with_all = ["output", "fingerprint"])]
    pub pem: bool,

    /// Output format
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<CertFormat>,

    /// Without --cert: fetch the cluster's certificate
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kseal cert -o`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertFormat {
    /// Aligned `field: value` lines
    Text,
    /// One JSON object
    Json,
}

pub fn run(args: CertArgs) -> Result<ExitCode> {
    let bytes = crate::cluster::certificate_pem(args.cert.as_deref(), &args.cluster)?;
    let cert = Certificate::from_pem(&bytes).context("cannot use the certificate")?;
    let out = if args.pem {
        // As it came (kubeseal --fetch-cert copies the bytes unchanged).
        String::from_utf8_lossy(&bytes).into_owned()
    } else if args.fingerprint {
        format!("{}\n", cert.fingerprint())
    } else {
        describe(&cert, args.output.unwrap_or(CertFormat::Text))?
    };
    crate::io::Output::Stdout.write(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn describe(c: &Certificate, format: CertFormat) -> Result<String> {
    let now = time::OffsetDateTime::now_utc();
    let expired = now > c.not_after();
    let ts = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    Ok(match format {
        CertFormat::Json => {
            let v = serde_json::json!({
                "fingerprint": c.fingerprint().as_str(),
                "subject": c.subject(),
                "issuer": c.issuer(),
                "serial": c.serial_hex(),
                "notBefore": ts(c.not_before()),
                "notAfter": ts(c.not_after()),
                "expired": expired,
                "keyAlgorithm": "RSA",
                "keyBits": c.public_key().bits(),
            });
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        CertFormat::Text => {
            let subject = if c.subject().is_empty() {
                "(empty)"
            } else {
                c.subject()
            };
            format!(
                "Fingerprint: {}\nSubject:     {}\nIssuer:      {}\nSerial:      {}\nNot before:  {}\nNot after:   {}{}\nKey:         RSA {} bits\n",
                c.fingerprint(),
                subject,
                if c.issuer().is_empty() { "(empty)" } else { c.issuer() },
                c.serial_hex(),
                ts(c.not_before()),
                ts(c.not_after()),
                if expired { " (EXPIRED)" } else { "" },
                c.public_key().bits()
            )
        }
    })
}
