//! `kseal unseal`'s input: a YAML or JSON stream of SealedSecrets read as the CLI reads it
//! (`commands::documents::parse_stream`, `documents::typed`), opened with `kseal_sealing::unseal::unseal`
//! (the Go test key and the fixed age identities, the sealed-with hint, templates rendered,
//! the deprecated v1 `data` accepted) and rendered. Input: the file.
#![no_main]

use kseal::cli::Format;
use kseal::commands::documents;
use kseal_sealing::unseal::{unseal, UnsealOptions};
use kseal_crds::SealedSecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = documents::parse_stream(data, "<fuzz>") else {
        return;
    };
    let opts = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    let mut secrets = Vec::new();
    for doc in &docs {
        let Ok(ss) = documents::typed::<SealedSecret>(
            doc,
            "<fuzz>",
            kseal_crds::KIND,
            kseal_crds::API_VERSION,
            true,
        ) else {
            continue;
        };
        let hint = kseal_sealing::sealed_with(&ss);
        let _ = kseal_sealing::unseal::label_of(&ss);
        if let Ok(u) = unseal(&ss, kseal_fuzz::keyring(), &hint, opts) {
            secrets.push(u.secret);
        }
    }
    let _ = documents::render(&secrets, Format::Yaml);
});
