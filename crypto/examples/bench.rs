//! Per-item seal and unseal time with a 4096-bit key, against OpenSSL measured in the same run.
//!
//!     cargo run --release -p kseal-crypto --example bench [-- --seconds 3 --bytes 1024]
//!
//! Reference operations (`openssl speed`): the RSA-4096 private operation (sign) for unseal, and
//! the public operation (verify) plus AES-256-GCM over the item for seal. Ratios below 1.0 mean
//! kseal is faster. Goals: unseal ≤ 1.2× the private op; seal ≤ 1.5× public op + AES.
//! It also prints the per-item times of the age format to an X25519 recipient (no OpenSSL
//! reference: there is no goal for it, the figures compare the two formats).

use std::process::Command;
use std::time::{Duration, Instant};

use kseal_crypto::keygen::{generate, KeyProfile};
use kseal_crypto::{seal, seal_age, AgeIdentity, Keyring};

fn main() {
    let mut seconds = 3u64;
    let mut bytes = 1024usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--bytes" => bytes = args.next().and_then(|v| v.parse().ok()).expect("--bytes N"),
            other => panic!("unknown argument {other}"),
        }
    }

    // Both sides are measured in this run, but not at the same instant: other load on the
    // machine skews the ratios, so say when there is any.
    if let Some(load) = load_average().filter(|l| *l > 0.5) {
        eprintln!(
            "warning: load average is {load:.2}; ratios are only meaningful on an idle machine"
        );
    }
    println!("openssl speed rsa4096 ({seconds} s per operation) ...");
    let (priv_s, pub_s) = openssl_rsa4096(seconds);
    println!("openssl speed aes-256-gcm on {bytes}-byte blocks ...");
    let aes_s = openssl_aes_gcm(seconds, bytes);

    let key = generate(
        &mut rand::rngs::OsRng,
        &KeyProfile::default(),
        time::OffsetDateTime::now_utc(),
    )
    .expect("keygen");
    let ring: Keyring = [key.clone()].into_iter().collect();
    let label = b"bench-namespace/bench-secret";
    let plaintext = vec![0x5au8; bytes];

    let seal_s = per_op(seconds, || {
        std::hint::black_box(seal(key.public_key(), label, &plaintext).expect("seal"));
    });
    let blob = seal(key.public_key(), label, &plaintext).expect("seal");
    let unseal_s = per_op(seconds, || {
        std::hint::black_box(ring.open(label, &blob).expect("open"));
    });

    // The age format: X25519 (one recipient), the same item and label.
    let identity = AgeIdentity::generate();
    let recipients = [identity.recipient().clone()];
    let mut age_ring = Keyring::new();
    age_ring.insert_age_identity(identity);
    let age_seal_s = per_op(seconds, || {
        std::hint::black_box(seal_age(&recipients, label, &plaintext).expect("seal_age"));
    });
    let age_blob = seal_age(&recipients, label, &plaintext).expect("seal_age");
    let age_unseal_s = per_op(seconds, || {
        std::hint::black_box(age_ring.open(label, &age_blob).expect("open age"));
    });

    let us = |s: f64| s * 1e6;
    println!();
    println!("item size: {bytes} bytes, RSA-4096 (aws-lc-rs)");
    println!("{:<34} {:>12}", "operation", "µs/op");
    println!(
        "{:<34} {:>12.1}",
        "openssl rsa4096 private (sign)",
        us(priv_s)
    );
    println!(
        "{:<34} {:>12.1}",
        "openssl rsa4096 public (verify)",
        us(pub_s)
    );
    println!("{:<34} {:>12.2}", "openssl aes-256-gcm (item)", us(aes_s));
    println!("{:<34} {:>12.1}", "kseal unseal (per item)", us(unseal_s));
    println!("{:<34} {:>12.1}", "kseal seal (per item)", us(seal_s));
    println!(
        "{:<34} {:>12.1}",
        "kseal age X25519 unseal (per item)",
        us(age_unseal_s)
    );
    println!(
        "{:<34} {:>12.1}",
        "kseal age X25519 seal (per item)",
        us(age_seal_s)
    );
    println!();
    let r_unseal = unseal_s / priv_s;
    let r_seal = seal_s / (pub_s + aes_s);
    println!(
        "ratio unseal / openssl private         = {r_unseal:.2}  (goal ≤ 1.20) {}",
        verdict(r_unseal, 1.2)
    );
    println!(
        "ratio seal / (openssl public + AES)    = {r_seal:.2}  (goal ≤ 1.50) {}",
        verdict(r_seal, 1.5)
    );
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn verdict(r: f64, goal: f64) -> &'static str {
    if r <= goal {
        "ok"
    } else {
        "OVER GOAL"
    }
}

/// Seconds per call of `f`, over about `seconds` seconds after a short warm-up.
fn per_op(seconds: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let budget = Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rsa 4096 bits 0.004950s 0.000077s    202.0  12987.0` → (sign s, verify s).
fn openssl_rsa4096(seconds: u64) -> (f64, f64) {
    let s = seconds.to_string();
    let out = openssl(&["speed", "-seconds", &s, "rsa4096"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 4096 bits"))
        .expect("rsa 4096 line in openssl speed output");
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches('s').parse().ok())
        .collect();
    // nums: [4096, sign, verify, sign/s, verify/s]
    (nums[1], nums[2])
}

/// Seconds to encrypt one `bytes`-byte block with AES-256-GCM, from `openssl speed -evp`.
fn openssl_aes_gcm(seconds: u64, bytes: usize) -> f64 {
    let s = seconds.to_string();
    let b = bytes.to_string();
    let out = openssl(&["speed", "-seconds", &s, "-bytes", &b, "-evp", "aes-256-gcm"]);
    // Last line: `AES-256-GCM  123456.78k` (kB/s, 1000 bytes per k).
    let line = out
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))
        .expect("aes-256-gcm line");
    let kbs: f64 = line
        .split_whitespace()
        .last()
        .and_then(|w| w.trim_end_matches('k').parse().ok())
        .expect("throughput");
    bytes as f64 / (kbs * 1000.0)
}
