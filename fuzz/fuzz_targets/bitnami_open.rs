//! Bitnami hybrid blobs (`u16be(len) || RSA-OAEP || AES-GCM`) as the controller and
//! `kseal unseal` open them: format detection, the structure check `kseal verify` does, and
//! `Keyring::open_with_hint` with the Go test key (RSA-2048). Input: `label NUL blob`.
#![no_main]

use kseal_crypto::{hybrid, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (label, blob) = kseal_fuzz::split_label(data);
    let _ = Format::detect(blob);
    let _ = hybrid::wrapped_key_len(blob);
    let keyring = kseal_fuzz::keyring();
    let hint = [kseal_fuzz::go_key().fingerprint().clone()];
    if let Ok((plain, fp)) = keyring.open_with_hint(&hint, label, blob) {
        // Only a real ciphertext opens; it must open the same way without the hint.
        assert_eq!(&fp, kseal_fuzz::go_key().fingerprint());
        let again = keyring
            .open(label, blob)
            .expect("opens without the hint too");
        assert_eq!(again.expose(), plain.expose());
    }
});
