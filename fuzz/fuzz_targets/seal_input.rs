//! `kseal seal`'s input: a YAML or JSON stream of Secrets read as the CLI reads it
//! (`commands::documents::parse_stream`, `commands::seal::read_secret`), sealed in both formats
//! (`kseal_sealing::seal::seal_secret_with`: the Go test certificate, the fixed age recipients)
//! and rendered in both output formats. Input: the file.
#![no_main]

use kseal::cli::Format;
use kseal::commands::{documents, seal::read_secret};
use kseal_sealing::seal::{seal_secret_with, SealOptions, Sealer};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = documents::parse_stream(data, "<fuzz>") else {
        return;
    };
    let cert = kseal_fuzz::go_cert();
    let sealers = [
        Sealer::Bitnami(cert.public_key()),
        Sealer::Age(kseal_fuzz::age_recipients()),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut sealed = Vec::new();
    for doc in &docs {
        let Ok(secret) = read_secret(doc, "<fuzz>") else {
            continue;
        };
        for sealer in sealers {
            let opts = SealOptions {
                default_namespace: "default",
                ..Default::default()
            };
            if let Ok(ss) = seal_secret_with(&mut rng, sealer, secret.clone(), &opts) {
                sealed.push(ss);
            }
        }
    }
    let _ = documents::render(&sealed, Format::Json);
    let _ = documents::render(&sealed, Format::Yaml);
});
