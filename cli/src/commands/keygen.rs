//! `kseal keygen`: a key pair and certificate with the controller's profile, and optionally the
//! key Secret the controller reads.

use std::process::ExitCode;

use anyhow::{bail, Result};
use kseal_crypto::keygen::{generate, KeyProfile};
use kseal_sealing::key_secret::{key_secret, key_secret_yaml, KeySecretName, DEFAULT_KEY_PREFIX};

use crate::cli::KeygenArgs;
use crate::io::write_new;

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
    Ok(ExitCode::SUCCESS)
}
