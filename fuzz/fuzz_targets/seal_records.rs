//! The `sealedsecrets.kseal.dev/seal-records` annotation (`kseal_sealing::seal_record`) and the
//! `sealed-with` hint (`kseal_sealing::hint`), both read from files anyone can edit. Input: the
//! annotation value.
//!
//! Oracle: a record that parses prints back to text that parses to the same record.
#![no_main]

use kseal_sealing::seal_record::{merge_records, parse_records, SealRecord, SealedFor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kseal_sealing::hint::parse_sealed_with(value);
    let _ = kseal_sealing::hint::merge_sealed_with(Some(value), []);
    let _ = merge_records(Some(value), []);
    // A single record, as well as the JSON object of records.
    let mut texts = vec![value.to_string()];
    if let Ok(map) = parse_records(value) {
        texts.extend(map.into_values());
    }
    let here = SealedFor::from_label(b"ns/name");
    for text in texts {
        let Ok(record) = text.parse::<SealRecord>() else {
            continue;
        };
        let printed = record.to_string();
        let again: SealRecord = printed.parse().expect("a printed record parses");
        assert_eq!(
            again, record,
            "a record changes when printed and parsed again"
        );
        let then = record.sealed_for();
        let _ = then.to_string();
        let _ = then.mismatch(&here);
        let _ = here.mismatch(&then);
        let _ = record.matches("item", b"blob");
    }
});
