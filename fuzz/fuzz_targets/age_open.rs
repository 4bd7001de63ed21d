//! kseal-age blobs (binary age v1 files with the `kseal-age/v1` payload): the header check
//! `kseal verify` does (`inspect_age`) and opening with fixed identities (`open_age`, and
//! `Keyring::open`, which the controller uses). Input: `label NUL blob`.
#![no_main]

use kseal_crypto::{inspect_age, open_age, AgeIdentity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (label, blob) = kseal_fuzz::split_label(data);
    let _ = inspect_age(blob);
    let ids: Vec<&AgeIdentity> = kseal_fuzz::age_identities().iter().map(|i| &**i).collect();
    let direct = open_age(&ids, label, blob);
    if kseal_crypto::Format::detect(blob).ok() != Some(kseal_crypto::Format::Age) {
        return;
    }
    let through_keyring = kseal_fuzz::keyring().open(label, blob);
    // Both paths are one implementation: they must agree on success and on the value.
    match (&direct, &through_keyring) {
        (Ok(a), Ok(b)) => assert_eq!(a.expose(), b.expose()),
        (Err(_), Err(_)) => {}
        _ => panic!("open_age and Keyring::open disagree"),
    }
});
