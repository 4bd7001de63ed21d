//! `kseal unseal`: recovery. SealedSecrets → Secrets with private keys, offline.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use kseal_crds::unseal::{label_of, unseal, UnsealOptions};
use kseal_crds::SealedSecret;
use kseal_crypto::keyfile::parse_key_file;
use kseal_crypto::Keyring;

use super::docs;
use super::seal::output_format;
use crate::cli::UnsealArgs;
use crate::io::{read_input, Output};

pub fn run(args: UnsealArgs) -> Result<ExitCode> {
    let mut keyring = Keyring::new();
    for path in &args.keys {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(path)
                .with_context(|| format!("cannot read key file {}", path.display()))?,
        );
        let keys = parse_key_file(&bytes)
            .with_context(|| format!("cannot read keys from {}", path.display()))?;
        for k in keys {
            keyring.insert(k.key);
        }
    }
    let input = read_input(
        args.file.as_deref(),
        "(tty detected: expecting json/yaml k8s resource in stdin)",
    )?;
    let docs = docs::parse_stream(&input.bytes, &input.name)?;
    if docs.is_empty() {
        bail!("no SealedSecret found in {}", input.name);
    }
    let opts = UnsealOptions {
        accept_deprecated_v1_data: args.accept_deprecated_data,
    };
    let mut secrets = Vec::with_capacity(docs.len());
    for doc in &docs {
        let ss: SealedSecret = docs::typed(
            doc,
            &input.name,
            kseal_crds::KIND,
            kseal_crds::API_VERSION,
            true,
        )?;
        let ns = ss.metadata.namespace.clone().unwrap_or_default();
        let name = ss.metadata.name.clone().unwrap_or_default();
        let (scope, _) = label_of(&ss);
        let unsealed = unseal(&ss, &keyring, &kseal_crds::sealed_with(&ss), opts).with_context(|| {
            format!(
                "cannot unseal SealedSecret \"{ns}/{name}\" (document {} of {}; tried {} with {} key{})",
                doc.index,
                input.name,
                scope.describe_label(&ns, &name),
                keyring.len(),
                if keyring.len() == 1 { "" } else { "s" }
            )
        })?;
        secrets.push(SecretOut(unsealed.secret));
    }
    // The output holds plaintext: a file gets mode 0600.
    let out = Output::new(args.output_file.as_deref(), 0o600);
    let format = output_format(args.format, &out);
    let rendered = zeroize::Zeroizing::new(docs::render(&secrets, format)?);
    for s in secrets {
        kseal_crds::seal::scrub(s.0.data.unwrap_or_default(), Default::default());
    }
    out.write(rendered.as_bytes())?;
    Ok(ExitCode::SUCCESS)
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
