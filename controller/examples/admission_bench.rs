//! Admission latency, measured end to end over the webhook's real stack: the controller's
//! admission router on its TLS server ([`serve_tls_listener`], rustls with aws-lc-rs) on
//! 127.0.0.1, and a client that keeps one TLS connection open as the API server does, POSTing
//! AdmissionReviews one after another. Run with `tests/bench/admission.sh` (a release build).
//!
//! Reports the median and p99 of:
//! - an admitted 2-item SealedSecret (RSA-4096, the controller's default key size);
//! - refusals: the same object moved to another namespace (its seal record says so), sealed for
//!   another cluster's key, and with a bad template (refused before any decryption);
//! - each with 1 key and with 13 keys (a year of 30-day renewals) in the keyring.
//!
//! The `/v1/verify` rate limiter is raised out of the way (`--rate-limit` is per requesting user;
//! this measures the work, not the quota).
//!
//! Usage: `admission_bench [N]` (requests per case, default 200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_controller::admission::http::{router, AdmissionState, ADMISSION_PATH};
use kseal_controller::admission::tls::{generate, server_config, WebhookObjects};
use kseal_controller::http::api::{ApiConfig, ApiState};
use kseal_controller::http::server::{serve_tls_listener, ServeOptions};
use kseal_controller::keys::registry::{KeyRegistry, RegisteredKey};
use kseal_controller::metrics::Metrics;
use kseal_controller::work::PrivateKeyWork;
use kseal_crypto::keygen::{generate as keygen, KeyProfile};
use kseal_crypto::PrivateKey;
use kseal_sealing::seal::{seal_secret_with, SealOptions, Sealer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn key(bits: usize) -> PrivateKey {
    keygen(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )
    .expect("key generation")
}

fn sealed(key: &PrivateKey, ns: &str, name: &str) -> serde_json::Value {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some(
            [
                ("password", "correct horse battery staple"),
                ("user", "admin"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        ..Default::default()
    };
    let ss = seal_secret_with(
        &mut rand::rngs::OsRng,
        Sealer::Bitnami(key.public_key()),
        secret,
        &SealOptions {
            default_namespace: "default",
            ..Default::default()
        },
    )
    .expect("sealing");
    serde_json::to_value(&ss).expect("json")
}

fn review(object: &serde_json::Value, uid: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{uid}"),
            "kind": {"group": "bitnami.com", "version": "v1alpha1", "kind": "SealedSecret"},
            "resource": {"group": "bitnami.com", "version": "v1alpha1", "resource": "sealedsecrets"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": object,
            "oldObject": null,
            "dryRun": true,
        }
    }))
    .expect("json")
}

/// A keep-alive HTTP/1.1 client over one TLS connection.
struct Client {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    async fn post(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "POST {ADMISSION_PATH} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).await.expect("write");
        self.stream.write_all(body).await.expect("write");
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let status: u16 = head[9..12].parse().expect("status");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    self.read_more().await;
                }
                let body = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                return (status, body);
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

async fn measure(
    client: &mut Client,
    object: &serde_json::Value,
    n: usize,
    expect_allowed: bool,
) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let body = review(object, i);
        let t = Instant::now();
        let (status, answer) = client.post(&body).await;
        let elapsed = t.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("answer");
        assert_eq!(
            v["response"]["allowed"], expect_allowed,
            "{}",
            v["response"]["status"]["message"]
        );
        if i >= 5 {
            times.push(elapsed); // the first few warm up
        }
    }
    times.sort();
    (quantile(&times, 0.5), quantile(&times, 0.99))
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N: a number of requests"))
        .unwrap_or(200);
    eprintln!("generating RSA-4096 keys (this cluster's, 13 old ones, another cluster's)…");
    let ours = Arc::new(key(4096));
    let others: Vec<Arc<PrivateKey>> = (0..12).map(|_| Arc::new(key(4096))).collect();
    let stranger = key(4096);
    let good = sealed(&ours, "apps", "db");
    let mut moved = good.clone();
    moved["metadata"]["namespace"] = "prod".into();
    let foreign = sealed(&stranger, "apps", "db");
    let mut bad_template = good.clone();
    bad_template["spec"]["template"]["data"] =
        serde_json::json!({"url": "{{ if .password }}x{{ end }}"});

    let objects = WebhookObjects {
        namespace: "kube-system".into(),
        service: "sealed-secrets-controller-webhook".into(),
        secret: "unused".into(),
        configuration: "unused".into(),
    };
    let cert = generate(&objects.dns_names(), None, time::OffsetDateTime::now_utc()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for der in kseal_controller::admission::tls::certificates(cert.cert_pem.as_bytes()) {
        roots.add(der.into()).unwrap();
    }
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );

    println!(
        "{{\"requests_per_case\": {n}, \"cpus\": {}, \"cases\": [",
        PrivateKeyWork::for_this_machine().permits()
    );
    let mut first = true;
    for key_count in [1usize, 13] {
        let mut registry = KeyRegistry::default();
        for (i, k) in others.iter().take(key_count - 1).enumerate() {
            registry.register(RegisteredKey {
                key: k.clone(),
                ordering_time: k8s_openapi::jiff::Timestamp::from_second(1_000 + i as i64).unwrap(),
                secret_name: None,
            });
        }
        registry.register(RegisteredKey {
            key: ours.clone(),
            ordering_time: k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap(),
            secret_name: None,
        });
        let (_keys_tx, keys_rx) = watch::channel(Arc::new(registry));
        let api = ApiState::new(
            keys_rx,
            Arc::new(Metrics::new("bench")),
            &ApiConfig {
                rate_limit: 1_000_000,
                rate_limit_burst: 1_000_000,
                ..Default::default()
            },
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_tls_tx, tls_rx) = watch::channel(Some(server_config(&cert).unwrap()));
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let server = tokio::spawn(serve_tls_listener(
            listener,
            router(AdmissionState::new(api, None, None)),
            ServeOptions::default(),
            tls_rx,
            async move { stopped.cancelled().await },
        ));
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap(); // as Go's client (the API server) does
        let connector = tokio_rustls::TlsConnector::from(client_config.clone());
        let name = rustls::pki_types::ServerName::try_from(objects.dns_names()[0].clone()).unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        for (case, object, allowed) in [
            ("admitted 2-item", &good, true),
            ("refused: moved", &moved, false),
            ("refused: another cluster's key", &foreign, false),
            ("refused: bad template", &bad_template, false),
        ] {
            let (median, p99) = measure(&mut client, object, n, allowed).await;
            println!(
                "{}  {{\"keys\": {key_count}, \"case\": \"{case}\", \"median_ms\": {:.2}, \"p99_ms\": {:.2}}}",
                if first { "" } else { "," },
                median.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
            first = false;
        }
        stop.cancel();
        drop(client);
        let _ = server.await;
    }
    println!("]}}");
}
