//! `kseal unseal`: recovery. SealedSecrets → Secrets with private keys, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use kseal_crds::SealedSecret;
use kseal_crypto::{AgeIdentity, Keyring};
use kseal_sealing::key_secret::read_key_file;
use kseal_sealing::unseal::{label_of, unseal, UnsealOptions};

use super::documents;
use super::seal::output_format;
use crate::cli::Format;
use crate::io::{read_input, Output};

/// `kseal unseal`
#[derive(Debug, Args)]
#[command(after_help = "\
Keys may be PEM private keys (PKCS#1 or PKCS#8), key Secrets, or the List printed by
  kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml
Age identity files hold AGE-SECRET-KEY-1… lines (# comments allowed), as age-keygen writes them.
--key opens Bitnami-format items, --identity age-format items; give both for files with both.
Exit code 1 when an item cannot be decrypted.")]
#[command(group(clap::ArgGroup::new("private_keys").args(["keys", "identities"]).required(true).multiple(true)))]
pub struct UnsealArgs {
    /// Private key file (repeatable)
    #[arg(
        long = "key",
        short = 'k',
        value_name = "FILE",
        env = "KSEAL_KEYS",
        value_delimiter = ','
    )]
    pub keys: Vec<PathBuf>,

    /// Age identity file (repeatable)
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,

    /// Read SealedSecrets from FILE instead of stdin
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Read from FILE (the same as -f FILE)
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub input: Option<PathBuf>,

    /// Keep the ownerReference to the SealedSecret that the controller would set. Offline its
    /// uid is unknown (empty), which the API server refuses, so by default it is left out and
    /// the output can be applied as it is
    #[arg(long)]
    pub owner_reference: bool,

    /// Write to FILE (atomically, mode 0600) instead of stdout
    #[arg(short = 'w', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Output format [default: json, or yaml for a .yaml/.yml output file]
    #[arg(
        short = 'o',
        long = "format",
        visible_alias = "output",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: Option<Format>,

    /// Also accept the deprecated v1 `spec.data` field
    #[arg(long)]
    pub accept_deprecated_data: bool,
}

pub fn run(args: UnsealArgs) -> Result<ExitCode> {
    let mut keyring = Keyring::new();
    for path in &args.keys {
        let bytes = crate::io::read_file(path, crate::io::KEY_FILE)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        let keys = read_key_file(&bytes)
            .with_context(|| format!("cannot read keys from {}", path.display()))?;
        for k in keys {
            keyring.insert(k.key);
        }
    }
    for path in &args.identities {
        let text = crate::io::read_text(
            path,
            crate::io::IDENTITY_FILE,
            &format!("age identity file {}", path.display()),
        )?;
        let ids = AgeIdentity::parse_identity_file(&text)
            .with_context(|| format!("cannot read age identities from {}", path.display()))?;
        for id in ids {
            keyring.insert_age_identity(id);
        }
    }
    let tried = tried_keys(&keyring);
    let input = read_input(
        args.file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
        crate::io::MANIFEST,
    )?;
    let docs = documents::parse_stream(&input.bytes, &input.name)?;
    if docs.is_empty() {
        bail!("no SealedSecret found in {}", input.name);
    }
    let opts = UnsealOptions {
        accept_deprecated_v1_data: args.accept_deprecated_data,
    };
    let mut secrets = Vec::with_capacity(docs.len());
    for doc in &docs {
        let ss: SealedSecret = documents::typed(
            doc,
            &input.name,
            kseal_crds::KIND,
            kseal_crds::API_VERSION,
            true,
        )?;
        let ns = ss.metadata.namespace.clone().unwrap_or_default();
        let name = ss.metadata.name.clone().unwrap_or_default();
        let (scope, _) = label_of(&ss);
        let unsealed = unseal(&ss, &keyring, &kseal_sealing::sealed_with(&ss), opts).with_context(|| {
            let missing = missing_kind(&ss, &keyring);
            format!(
                "cannot unseal SealedSecret \"{ns}/{name}\" (document {} of {}; tried {} with {tried}{missing})",
                doc.index,
                input.name,
                scope.describe_label(&ns, &name),
            )
        })?;
        let mut secret = unsealed.secret;
        if !args.owner_reference {
            secret.metadata.owner_references = None;
        }
        secrets.push(SecretOut(secret));
    }
    // The output holds plaintext: a file gets mode 0600.
    let out = Output::new(args.output_file.as_deref(), 0o600);
    let format = output_format(args.format, &out);
    let rendered = zeroize::Zeroizing::new(documents::render(&secrets, format)?);
    for s in secrets {
        kseal_sealing::scrub::maps(s.0.data.unwrap_or_default(), Default::default());
    }
    out.write(rendered.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `; its age items need --identity` when the SealedSecret has items of a format the keyring
/// holds no key for.
fn missing_kind(ss: &SealedSecret, keyring: &Keyring) -> &'static str {
    use base64::Engine as _;
    let formats: Vec<_> = ss
        .spec
        .encrypted_data
        .values()
        .filter_map(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .filter_map(|b| kseal_crypto::Format::detect(&b).ok())
        .collect();
    if keyring.age_len() == 0 && formats.contains(&kseal_crypto::Format::Age) {
        "; its age items need --identity"
    } else if keyring.is_empty() && formats.contains(&kseal_crypto::Format::BitnamiHybrid) {
        "; its Bitnami items need --key"
    } else {
        ""
    }
}

/// `1 key`, `2 keys and 1 age identity`, `3 age identities`.
fn tried_keys(keyring: &Keyring) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (keyring.len(), keyring.age_len()) {
        (k, 0) => plural(k, "key", "keys"),
        (0, a) => plural(a, "age identity", "age identities"),
        (k, a) => format!(
            "{} and {}",
            plural(k, "key", "keys"),
            plural(a, "age identity", "age identities")
        ),
    }
}

/// A Secret printed as Go prints `v1.Secret`: kind, apiVersion, metadata (Go order), immutable,
/// data, type.
pub(crate) struct SecretOut(pub(crate) k8s_openapi::api::core::v1::Secret);

impl serde::Serialize for SecretOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let sec = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", "Secret")?;
        m.serialize_entry("apiVersion", "v1")?;
        m.serialize_entry("metadata", &kseal_crds::meta::GoObjectMeta(&sec.metadata))?;
        if let Some(i) = sec.immutable {
            m.serialize_entry("immutable", &i)?;
        }
        if let Some(d) = sec.data.as_ref().filter(|d| !d.is_empty()) {
            m.serialize_entry("data", d)?;
        }
        if let Some(t) = &sec.type_ {
            m.serialize_entry("type", t)?;
        }
        m.end()
    }
}
