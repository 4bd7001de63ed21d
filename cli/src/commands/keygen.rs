//! `kseal keygen`: a key pair and certificate with the controller's profile, and optionally the
//! key Secret the controller reads.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use kseal_crypto::keygen::{generate, KeyProfile};
use kseal_sealing::key_secret::{key_secret, key_secret_yaml, KeySecretName, DEFAULT_KEY_PREFIX};

use crate::io::write_new;

/// `kseal keygen`
#[derive(Debug, Args)]
#[command(after_help = "\
The key file is written with mode 0600. Nothing is overwritten without --force, and nothing is
written unless every target can be.")]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#1 PEM)
    #[arg(long, value_name = "FILE", default_value = "tls.key")]
    pub key_file: PathBuf,

    /// Where to write the certificate (PEM)
    #[arg(long, value_name = "FILE", default_value = "tls.crt")]
    pub cert_file: PathBuf,

    /// Also write the key Secret the controller reads. Load it with `kubectl create -f FILE`: it
    /// uses generateName, which `kubectl apply` refuses (with --secret-name, apply works too)
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Namespace of the key Secret (the controller's namespace)
    #[arg(
        long,
        value_name = "NAMESPACE",
        default_value = "kube-system",
        requires = "secret_file"
    )]
    pub secret_namespace: String,

    /// Name of the key Secret [default: generateName sealed-secrets-key]
    #[arg(long, value_name = "NAME", requires = "secret_file")]
    pub secret_name: Option<String>,

    /// RSA key size in bits
    #[arg(long, default_value_t = 4096, value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["2048", "3072", "4096", "8192"]), |s: String| s.parse::<usize>().expect("listed values are numbers")))]
    pub bits: usize,

    /// Certificate common name [default: empty subject, like the controller]
    #[arg(long, value_name = "CN")]
    pub cn: Option<String>,

    /// Certificate validity in days
    #[arg(long, value_name = "DAYS", default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub validity_days: u32,

    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: KeygenArgs) -> Result<ExitCode> {
    // Check every target first, so that a refusal leaves nothing half-written.
    let mut targets = vec![&args.key_file, &args.cert_file];
    targets.extend(args.secret_file.as_ref());
    if !args.force {
        if let Some(t) = targets.iter().find(|t| t.exists()) {
            bail!("{} already exists (use --force to overwrite)", t.display());
        }
    }
    let profile = KeyProfile {
        bits: args.bits,
        common_name: args.cn.clone(),
        validity: time::Duration::days(i64::from(args.validity_days)),
    };
    let key = generate(
        &mut rand::rngs::OsRng,
        &profile,
        time::OffsetDateTime::now_utc(),
    )?;
    let cert = key
        .certificate()
        .expect("generated keys carry their certificate");
    let secret = match &args.secret_file {
        Some(_) => {
            let name = match args.secret_name.as_deref() {
                Some(n) => KeySecretName::Exact(n),
                None => KeySecretName::Generate(DEFAULT_KEY_PREFIX),
            };
            let none = Default::default();
            let mut secret = key_secret(&key, name, Some(&args.secret_namespace), &none, &none)?;
            let yaml = key_secret_yaml(&secret);
            kseal_sealing::scrub::secret(&mut secret);
            Some(yaml)
        }
        None => None,
    };
    write_new(
        &args.key_file,
        key.to_pkcs1_pem()?.as_bytes(),
        0o600,
        args.force,
    )?;
    write_new(&args.cert_file, cert.to_pem().as_bytes(), 0o644, args.force)?;
    if let (Some(path), Some(yaml)) = (&args.secret_file, secret) {
        write_new(path, yaml.as_bytes(), 0o600, args.force)?;
    }
    eprintln!(
        "wrote {} (private, mode 0600) and {}; fingerprint {}",
        args.key_file.display(),
        args.cert_file.display(),
        key.fingerprint()
    );
    if let Some(path) = &args.secret_file {
        let verb = if args.secret_name.is_some() {
            "apply"
        } else {
            "create"
        };
        eprintln!(
            "wrote the key Secret {} (private, mode 0600); load it into the controller's namespace with: kubectl {verb} -f {}",
            path.display(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
