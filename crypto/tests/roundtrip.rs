//! Property tests: seal then open returns the plaintext for any bytes, name and namespace, and
//! never opens under another label.

mod common;

use common::fresh_key;
use kseal_crypto::{seal_with_rng, Keyring, Scope};
use proptest::prelude::*;
use rand::SeedableRng;

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        ns in name(), n in name(), other in name(),
        scope in prop_oneof![Just(Scope::Strict), Just(Scope::NamespaceWide), Just(Scope::ClusterWide)],
        seed in any::<u64>(),
    ) {
        let key = fresh_key();
        let ring: Keyring = [key.clone()].into_iter().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let label = scope.label(&ns, &n);
        let blob = seal_with_rng(&mut rng, key.public_key(), &label, &plaintext).unwrap();
        prop_assert_eq!(blob.len(), 2 + 256 + plaintext.len() + 16);
        let opened = ring.open(&label, &blob).unwrap();
        prop_assert_eq!(opened.expose(), &plaintext[..]);
        let moved = scope.label(&other, &n);
        if moved != label {
            prop_assert!(ring.open(&moved, &blob).is_err());
        }
    }
}
