//! `kseal verify`'s input: SealedSecret files checked offline against the test certificates
//! and the fixed age recipients (`commands::verify::check_files`, the same checks `run` does:
//! base64, blob structure, age header, seal records, labels, copies across files).
//!
//! Input: one file, or several separated by a line `#kseal-fuzz-next-file` (copies are traced
//! across files).
#![no_main]

use std::path::PathBuf;

use kseal::commands::verify::check_files;
use libfuzzer_sys::fuzz_target;

const SEPARATOR: &[u8] = b"\n#kseal-fuzz-next-file\n";

fuzz_target!(|data: &[u8]| {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..i]);
        rest = &rest[i + SEPARATOR.len()..];
    }
    parts.push(rest);
    let paths: Vec<PathBuf> = (0..parts.len())
        .map(|i| PathBuf::from(format!("file{i}.yaml")))
        .collect();
    let files: Vec<(&std::path::Path, &[u8])> = paths
        .iter()
        .map(PathBuf::as_path)
        .zip(parts.iter().copied())
        .collect();
    if let Ok(reports) = check_files(
        &files,
        kseal_fuzz::verify_certs(),
        kseal_fuzz::age_recipients(),
    ) {
        let _ = serde_json::to_string(&reports);
    }
});
