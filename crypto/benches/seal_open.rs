//! Seal and open time per item, and blob and key sizes, for the three kinds of key kseal seals
//! for, in one run: the Bitnami format with RSA-4096, age with X25519, and age with the
//! post-quantum mlkem768x25519 recipient. `cargo bench -p kseal-crypto --bench seal_open`
//! (release build; a minute or so). docs/age.md quotes its figures.
//!
//! Each figure is the median of several rounds of many operations on a 64-byte value under a
//! strict label, one recipient (age) or one key (RSA), with one identity or key to open with.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kseal_crypto::keygen::{generate, KeyProfile};
use kseal_crypto::{open_age, seal_age, AgeIdentity, Keyring};

const LABEL: &[u8] = b"production/database";
const VALUE: &[u8] = &[0x5a; 64];
const ROUNDS: usize = 5;

/// Median time per operation of `f`, over `ROUNDS` rounds of `n` calls.
fn per_op(n: usize, mut f: impl FnMut()) -> Duration {
    let mut rounds: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed() / n as u32
        })
        .collect();
    rounds.sort();
    rounds[ROUNDS / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // cargo bench passes `--bench`; `cargo test --benches` passes nothing useful: run quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = |n: usize| if quick { 1.max(n / 100) } else { n };

    println!("kseal-crypto seal/open per item (64-byte value, one recipient/key), median of {ROUNDS} rounds");
    println!(
        "{:<34} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "kind", "seal", "open", "blob B", "public B", "private B"
    );

    // Bitnami format, RSA-4096 (the controller's default key).
    let rsa = generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 4096,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .expect("RSA-4096 key");
    let public = rsa.public_key().clone();
    let private_pem = rsa.to_pkcs1_pem().expect("PEM").len();
    let blob = kseal_crypto::seal(&public, LABEL, VALUE).unwrap();
    let ring: Keyring = [rsa].into_iter().collect();
    let seal_t = per_op(scale(2000), || {
        black_box(kseal_crypto::seal(&public, LABEL, black_box(VALUE)).unwrap());
    });
    let open_t = per_op(scale(200), || {
        black_box(ring.open(LABEL, black_box(&blob)).unwrap());
    });
    println!(
        "{:<34} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "bitnami RSA-4096 (RSA-OAEP+GCM)",
        us(seal_t),
        us(open_t),
        blob.len(),
        format!("{} (SPKI)", public.spki_der().len()),
        format!("{private_pem} (PEM)")
    );

    for (name, id) in [
        ("age X25519", AgeIdentity::generate()),
        ("age mlkem768x25519 (post-quantum)", AgeIdentity::generate_pq()),
    ] {
        let recipients = [id.to_public()];
        let blob = seal_age(&recipients, LABEL, VALUE).unwrap();
        let seal_t = per_op(scale(2000), || {
            black_box(seal_age(&recipients, LABEL, black_box(VALUE)).unwrap());
        });
        let open_t = per_op(scale(2000), || {
            black_box(open_age(&[&id], LABEL, black_box(&blob)).unwrap());
        });
        let secret_line = id
            .to_identity_file()
            .lines()
            .nth(1)
            .map(str::len)
            .unwrap_or_default();
        println!(
            "{:<34} {:>12} {:>12} {:>10} {:>12} {:>12}",
            name,
            us(seal_t),
            us(open_t),
            blob.len(),
            format!("{} (text)", recipients[0].as_str().len()),
            format!("{secret_line} (text)"),
        );
    }
}
