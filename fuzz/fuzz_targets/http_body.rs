//! The controller's `/v1/verify` and `/v1/rotate` request bodies: `http::decode` (JSON or one
//! YAML document), then what each handler does with the SealedSecret: `open_items` (verify)
//! and `reseal` (rotate), with a registry holding the Go test key and the fixed age
//! identities. Input: the body.
#![no_main]

use std::sync::OnceLock;

use k8s_openapi::jiff::Timestamp;
use kseal_controller::http::api::{decode, open_items, reseal};
use kseal_controller::keys::registry::{KeyRegistry, RegisteredAgeIdentity, RegisteredKey};
use kseal_sealing::unseal::UnsealOptions;
use libfuzzer_sys::fuzz_target;

fn registry() -> &'static KeyRegistry {
    static R: OnceLock<KeyRegistry> = OnceLock::new();
    R.get_or_init(|| {
        let t = Timestamp::from_second(1_700_000_000).expect("a valid time");
        let mut r = KeyRegistry::default();
        r.register(RegisteredKey {
            key: kseal_fuzz::go_key(),
            ordering_time: t,
            secret_name: None,
        });
        for id in kseal_fuzz::age_identities() {
            r.register_age(RegisteredAgeIdentity {
                identity: id.clone(),
                ordering_time: t,
                secret_name: None,
            });
        }
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(ss) = decode(data) else {
        return;
    };
    let opts = UnsealOptions {
        accept_deprecated_v1_data: true,
    };
    let mut verify = ss.clone();
    if let Ok(u) = open_items(&mut verify, registry(), opts) {
        u.scrub();
    }
    // open_items puts the templates back.
    assert_eq!(verify.spec.template.data, ss.spec.template.data);
    let _ = reseal(ss, registry(), opts);
});
