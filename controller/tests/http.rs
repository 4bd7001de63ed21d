//! The main port's HTTP API and the metrics port, driven in-process through the router (and
//! over a real loopback listener for the server's timeouts and shutdown), with the Go test key
//! and ciphertexts Bitnami's own code produced.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use kseal_controller::http::api::{decode, router, ApiConfig, ApiState, DecodeError};
use kseal_controller::http::server::{serve_listener, PeerAddr, ServeOptions};
use kseal_controller::keys::registry::{KeyRegistry, RegisteredAgeIdentity, RegisteredKey};
use kseal_controller::metrics::{follow_keys, metrics_router, Metrics, UnsealErrorReason};
use kseal_controller::ratelimit::ManualClock;
use kseal_crds::SealedSecret;
use kseal_crypto::{AgeIdentity, Certificate, Keyring, PrivateKey, Scope};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tower::ServiceExt;

const GO_KEY: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.key");
const GO_CERT: &[u8] = include_bytes!("../../crypto/tests/data/go_rsa2048.crt");
const GO_VECTORS: &str = include_str!("../../crypto/tests/data/go_vectors.json");

/// A value that must never leave the controller in clear.
const CANARY: &str = "kseal-canary-5d1e8c0b-plaintext";

// ---------------------------------------------------------------------------------------------
// fixtures

fn go_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(
            PrivateKey::from_pem(GO_KEY)
                .unwrap()
                .with_certificate(Certificate::from_pem(GO_CERT).unwrap())
                .unwrap(),
        )
    })
    .clone()
}

/// A 2048-bit key generated once per test binary.
fn new_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        let profile = kseal_crypto::keygen::KeyProfile {
            bits: 2048,
            ..Default::default()
        };
        Arc::new(
            kseal_crypto::keygen::generate(
                &mut rand::rngs::OsRng,
                &profile,
                time::OffsetDateTime::now_utc(),
            )
            .unwrap(),
        )
    })
    .clone()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn registry(keys: &[(Arc<PrivateKey>, i64)]) -> KeyRegistry {
    let mut r = KeyRegistry::default();
    for (k, t) in keys {
        assert!(r.register(RegisteredKey {
            key: k.clone(),
            ordering_time: at(*t),
            secret_name: None,
        }));
    }
    r
}

/// The Go key alone, as the controller that sealed the vectors.
fn go_registry() -> KeyRegistry {
    registry(&[(go_key(), 1_700_000_000)])
}

/// The Go key and a newer one: the newer seals, both open.
fn two_key_registry() -> KeyRegistry {
    registry(&[(go_key(), 1_700_000_000), (new_key(), 1_800_000_000)])
}

/// Two age identities made once per test binary (the second is the newer one).
fn age_ids() -> &'static [Arc<AgeIdentity>; 2] {
    static I: OnceLock<[Arc<AgeIdentity>; 2]> = OnceLock::new();
    I.get_or_init(|| {
        [
            Arc::new(AgeIdentity::generate()),
            Arc::new(AgeIdentity::generate()),
        ]
    })
}

/// The Go key plus both age identities, registered at 1_700_000_000 and 1_800_000_000.
fn age_registry() -> KeyRegistry {
    let mut r = go_registry();
    for (i, t) in [(0, 1_700_000_000), (1, 1_800_000_000)] {
        assert!(r.register_age(RegisteredAgeIdentity {
            identity: age_ids()[i].clone(),
            ordering_time: at(t),
            secret_name: None,
        }));
    }
    r
}

/// `value` sealed in the age format for age identity `i`, for `namespace/name` (strict).
fn age_item(i: usize, namespace: &str, name: &str, value: &[u8]) -> String {
    let label = Scope::Strict.label(namespace, name);
    let blob = kseal_crypto::seal_age(&[age_ids()[i].to_public()], &label, value).unwrap();
    STANDARD.encode(blob)
}

struct Api {
    router: Router,
    metrics: Arc<Metrics>,
    clock: ManualClock,
    keys: watch::Sender<Arc<KeyRegistry>>,
}

fn api_with(registry: KeyRegistry, config: ApiConfig) -> Api {
    let (keys, rx) = watch::channel(Arc::new(registry));
    let metrics = Arc::new(Metrics::new("v0.0.0-test"));
    let clock = ManualClock::new();
    let state =
        ApiState::with_clock(rx, metrics.clone(), &config, Arc::new(clock.clone())).unwrap();
    Api {
        router: router(state),
        metrics,
        clock,
        keys,
    }
}

/// The API with rate limits far above what a test sends (the rate-limit tests set their own).
fn api(registry: KeyRegistry) -> Api {
    api_with(
        registry,
        ApiConfig {
            rate_limit_burst: 1000,
            ..Default::default()
        },
    )
}

/// `go-00-strict`: `supersecret` sealed by Bitnami's code for default/mysecret, strict scope.
fn go_00_ciphertext() -> String {
    let vectors: Vec<Value> = serde_json::from_str(GO_VECTORS).unwrap();
    let v = vectors.iter().find(|v| v["id"] == "go-00-strict").unwrap();
    assert_eq!(v["namespace"], "default");
    assert_eq!(v["name"], "mysecret");
    assert_eq!(
        STANDARD
            .decode(v["plaintext_b64"].as_str().unwrap())
            .unwrap(),
        b"supersecret"
    );
    v["ciphertext_b64"].as_str().unwrap().to_string()
}

/// A SealedSecret as kubeseal writes it, with one item `password`.
fn sealed(namespace: &str, name: &str, ciphertext: &str) -> Value {
    json!({
        "kind": "SealedSecret",
        "apiVersion": "bitnami.com/v1alpha1",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {"metadata": {"name": name, "namespace": namespace}},
            "encryptedData": {"password": ciphertext}
        }
    })
}

fn go_00() -> Value {
    sealed("default", "mysecret", &go_00_ciphertext())
}

/// The canary sealed with the Go key for default/canary.
fn canary_ss() -> Value {
    let label = Scope::Strict.label("default", "canary");
    let blob = kseal_crypto::seal(go_key().public_key(), &label, CANARY.as_bytes()).unwrap();
    sealed("default", "canary", &STANDARD.encode(blob))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send_req(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

async fn send(router: &Router, method: &str, path: &str, body: impl Into<Body>) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(body.into())
        .unwrap();
    send_req(router, req).await
}

async fn post_json(router: &Router, path: &str, v: &Value) -> Answer {
    send(router, "POST", path, serde_json::to_vec(v).unwrap()).await
}

fn opens_with(key: &Arc<PrivateKey>, ss: &SealedSecret, item: &str) -> Option<Vec<u8>> {
    let mut ring = Keyring::new();
    ring.insert_arc(key.clone());
    let (_, label) = kseal_sealing::unseal::label_of(ss);
    let blob = STANDARD.decode(&ss.spec.encrypted_data[item]).unwrap();
    ring.open(&label, &blob).ok().map(|p| p.expose().to_vec())
}

// ---------------------------------------------------------------------------------------------
// /healthz

#[tokio::test]
async fn healthz_answers_ok_with_any_method_and_without_keys() {
    let a = api(KeyRegistry::default());
    for method in ["GET", "POST", "HEAD", "DELETE"] {
        let r = send(&a.router, method, "/healthz", Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{method}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        if method != "HEAD" {
            assert_eq!(r.text(), "ok\n");
        }
    }
    assert!(
        !a.metrics.encode(Timestamp::now()).contains("/healthz"),
        "healthz is not instrumented"
    );
}

#[tokio::test]
async fn unknown_paths_get_go_404() {
    let a = api(go_registry());
    let r = send(&a.router, "GET", "/v1/nope", Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.text(), "404 page not found\n");
}

// ---------------------------------------------------------------------------------------------
// /v1/cert.pem

#[tokio::test]
async fn cert_pem_serves_the_newest_certificate() {
    let a = api(go_registry());
    let r = send(&a.router, "GET", "/v1/cert.pem", Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/x-pem-file"));
    assert_eq!(r.text(), go_key().certificate().unwrap().to_pem());
    assert_eq!(r.text().matches("BEGIN CERTIFICATE").count(), 1);
    let cert = Certificate::from_pem(&r.body).unwrap();
    assert_eq!(cert.fingerprint(), go_key().fingerprint());

    // A key published through the channel is served from the next request on.
    a.keys.send_replace(Arc::new(two_key_registry()));
    let r = send(&a.router, "GET", "/v1/cert.pem", Body::empty()).await;
    assert_eq!(
        Certificate::from_pem(&r.body).unwrap().fingerprint(),
        new_key().fingerprint()
    );
}

#[tokio::test]
async fn cert_pem_without_keys_is_500() {
    let a = api(KeyRegistry::default());
    let r = send(&a.router, "GET", "/v1/cert.pem", Body::empty()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), "cannot get certificate\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

// ---------------------------------------------------------------------------------------------
// /v1/age-recipient

#[tokio::test]
async fn age_recipient_serves_the_newest_recipient() {
    let a = api(age_registry());
    for method in ["GET", "POST"] {
        let r = send(&a.router, method, "/v1/age-recipient", Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{method}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.text(), format!("{}\n", age_ids()[1].recipient()));
    }
    let text = a.metrics.encode(Timestamp::now());
    assert!(
        text.contains(
            r#"sealed_secrets_controller_http_requests_total{path="/v1/age-recipient",code="200",method="get"} 1"#
        ),
        "instrumented like /v1/cert.pem:\n{text}"
    );

    // An identity published later takes over only when it is newer.
    let mut r = age_registry();
    let newest = Arc::new(AgeIdentity::generate());
    r.register_age(RegisteredAgeIdentity {
        identity: newest.clone(),
        ordering_time: at(1_900_000_000),
        secret_name: None,
    });
    a.keys.send_replace(Arc::new(r));
    let r = send(&a.router, "GET", "/v1/age-recipient", Body::empty()).await;
    assert_eq!(r.text(), format!("{}\n", newest.recipient()));
}

#[tokio::test]
async fn age_recipient_without_an_identity_or_with_age_off_is_500() {
    let a = api(go_registry());
    let r = send(&a.router, "GET", "/v1/age-recipient", Body::empty()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), "cannot get age recipient\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = a.metrics.encode(Timestamp::now());
    assert!(text.contains(
        r#"sealed_secrets_controller_http_requests_total{path="/v1/age-recipient",code="500",method="get"} 1"#
    ));

    // --age=false: not published, although the identities still open blobs.
    let off = api_with(
        age_registry(),
        ApiConfig {
            age: false,
            ..Default::default()
        },
    );
    let r = send(&off.router, "GET", "/v1/age-recipient", Body::empty()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), "cannot get age recipient\n");
    let ss = sealed(
        "default",
        "mysecret",
        &age_item(0, "default", "mysecret", b"x"),
    );
    let r = post_json(&off.router, "/v1/verify", &ss).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_post_quantum_recipient_is_served_apart_and_can_be_turned_off() {
    let mut r = age_registry();
    let pq = Arc::new(AgeIdentity::generate_pq());
    r.register_age(RegisteredAgeIdentity {
        identity: pq.clone(),
        ordering_time: at(1_700_000_000),
        secret_name: None,
    });
    let a = api(r.clone());
    let got = send(&a.router, "GET", "/v1/age-pq-recipient", Body::empty()).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.text(), format!("{}\n", pq.recipient()));
    assert!(got.text().starts_with("age1pq1"));
    assert_eq!(
        got.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // The X25519 recipient is still the X25519 one.
    let x = send(&a.router, "GET", "/v1/age-recipient", Body::empty()).await;
    assert!(!x.text().starts_with("age1pq1"), "{}", x.text());

    for config in [
        ApiConfig {
            age_pq: false,
            ..Default::default()
        },
        ApiConfig {
            age: false,
            ..Default::default()
        },
    ] {
        let off = api_with(r.clone(), config);
        let got = send(&off.router, "GET", "/v1/age-pq-recipient", Body::empty()).await;
        assert_eq!(got.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(got.text(), "cannot get post-quantum age recipient\n");
    }
    let none = api(go_registry());
    let got = send(&none.router, "GET", "/v1/age-pq-recipient", Body::empty()).await;
    assert_eq!(got.status, StatusCode::INTERNAL_SERVER_ERROR);

    // verify and rotate open post-quantum items; a renamed one is refused.
    let label = Scope::Strict.label("default", "mysecret");
    let blob = kseal_crypto::seal_age(&[pq.to_public()], &label, b"pq").unwrap();
    let ss = sealed("default", "mysecret", &STANDARD.encode(blob));
    assert_eq!(
        post_json(&a.router, "/v1/verify", &ss).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post_json(&a.router, "/v1/rotate", &ss).await.status,
        StatusCode::OK
    );
    let mut renamed = ss.clone();
    renamed["metadata"]["name"] = json!("other");
    renamed["spec"]["template"]["metadata"]["name"] = json!("other");
    assert_ne!(
        post_json(&a.router, "/v1/verify", &renamed).await.status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// /v1/verify

#[tokio::test]
async fn verify_opens_age_items_with_any_registered_identity() {
    let a = api_with(
        age_registry(),
        ApiConfig {
            rate_limit_burst: 10,
            ..Default::default()
        },
    );
    // An old identity's blob and an RSA blob side by side in one SealedSecret.
    let mut ss = go_00();
    ss["spec"]["encryptedData"]["age-old"] = json!(age_item(0, "default", "mysecret", b"a"));
    ss["spec"]["encryptedData"]["age-new"] = json!(age_item(1, "default", "mysecret", b"b"));
    let r = post_json(&a.router, "/v1/verify", &ss).await;
    assert_eq!(r.status, StatusCode::OK);

    // Renamed, and an item copied from another SealedSecret: 409.
    let renamed = sealed(
        "default",
        "other",
        &age_item(1, "default", "mysecret", b"a"),
    );
    let r = post_json(&a.router, "/v1/verify", &renamed).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let mut copied = go_00();
    copied["spec"]["encryptedData"]["copied"] = json!(age_item(1, "default", "other", b"a"));
    let r = post_json(&a.router, "/v1/verify", &copied).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // An identity the controller does not hold.
    let stranger = AgeIdentity::generate();
    let blob = kseal_crypto::seal_age(
        &[stranger.to_public()],
        &Scope::Strict.label("default", "mysecret"),
        b"a",
    )
    .unwrap();
    let r = post_json(
        &a.router,
        "/v1/verify",
        &sealed("default", "mysecret", &STANDARD.encode(blob)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn verify_accepts_what_a_key_opens() {
    let a = api(two_key_registry());
    let r = post_json(&a.router, "/v1/verify", &go_00()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());

    let yaml = serde_yaml::to_string(&go_00()).unwrap();
    let r = send(&a.router, "POST", "/v1/verify", yaml).await;
    assert_eq!(r.status, StatusCode::OK, "single-document YAML");

    // kubeseal sends POST; Go's mux takes any method.
    let r = send(&a.router, "PUT", "/v1/verify", go_00().to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn verify_refuses_what_no_key_opens_with_409() {
    let a = api_with(
        go_registry(),
        ApiConfig {
            rate_limit_burst: 10,
            ..Default::default()
        },
    );
    // Renamed: the strict label no longer matches.
    let renamed = sealed("default", "othersecret", &go_00_ciphertext());
    let r = post_json(&a.router, "/v1/verify", &renamed).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.is_empty());

    // A key the controller does not hold.
    let other = api(registry(&[(new_key(), 1)]));
    let r = post_json(&other.router, "/v1/verify", &go_00()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // One good item and one bad one: every item must open.
    let mut mixed = go_00();
    mixed["spec"]["encryptedData"]["other"] = json!(STANDARD.encode([1u8; 300]));
    let r = post_json(&a.router, "/v1/verify", &mixed).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn verify_and_rotate_never_render_templates() {
    // A probe template paired with real ciphertext must not change either answer: rendering it
    // would turn success/failure into a decryption oracle.
    let a = api(two_key_registry());
    for probe in [
        r#"{{ fail "always" }}"#,
        r#"{{ if eq .password "supersecret" }}{{ fail "guessed" }}{{ end }}"#,
        r#"{{ if eq .password "wrong guess" }}{{ fail "guessed" }}{{ end }}"#,
        "{{ .password",
        // Fails or not depending on the plaintext in kseal's own template subset.
        "{{ b64dec .password }}",
    ] {
        let mut ss = go_00();
        ss["spec"]["template"]["data"] = json!({ "probe": probe });
        let r = post_json(&a.router, "/v1/verify", &ss).await;
        assert_eq!(r.status, StatusCode::OK, "verify with {probe}");
        a.clock.advance(Duration::from_secs(5));
        let r = post_json(&a.router, "/v1/rotate", &ss).await;
        assert_eq!(r.status, StatusCode::OK, "rotate with {probe}");
        let out: SealedSecret = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            out.spec.template.data,
            Some(BTreeMap::from([("probe".to_string(), probe.to_string())])),
            "templates come back untouched"
        );
        assert_eq!(
            out.spec.encrypted_data.keys().collect::<Vec<_>>(),
            ["password"]
        );
    }
}

#[tokio::test]
async fn verify_bad_requests() {
    let a = api_with(
        go_registry(),
        ApiConfig {
            rate_limit_burst: 100,
            ..Default::default()
        },
    );
    let doc = serde_yaml::to_string(&go_00()).unwrap();
    let mut wrong_kind = go_00();
    wrong_kind["kind"] = json!("Secret");
    wrong_kind["apiVersion"] = json!("v1");
    let mut wrong_version = go_00();
    wrong_version["apiVersion"] = json!("bitnami.com/v1");
    let mut no_kind = go_00();
    no_kind.as_object_mut().unwrap().remove("kind");
    let mut no_version = go_00();
    no_version.as_object_mut().unwrap().remove("apiVersion");
    let cases: Vec<(&str, Vec<u8>)> =
        vec![
        ("multi-document YAML", format!("{doc}---\n{doc}").into_bytes()),
        ("wrong kind", wrong_kind.to_string().into_bytes()),
        ("wrong version", wrong_version.to_string().into_bytes()),
        ("no kind", no_kind.to_string().into_bytes()),
        ("no apiVersion", no_version.to_string().into_bytes()),
        ("garbage", b"\x00\xffnot: [a sealed secret".to_vec()),
        ("truncated JSON", b"{\"kind\": \"SealedSecret\"".to_vec()),
        ("a YAML scalar", b"hello".to_vec()),
        ("empty", Vec::new()),
        (
            "ill-typed field",
            br#"{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{"name":7}}"#
                .to_vec(),
        ),
    ];
    for (what, body) in cases {
        let r = send(&a.router, "POST", "/v1/verify", body).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        assert!(r.body.is_empty(), "{what}");
    }

    // A leading or trailing document separator is still one document.
    let r = send(&a.router, "POST", "/v1/verify", format!("---\n{doc}---\n")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn decode_errors_name_the_problem() {
    let doc = serde_yaml::to_string(&go_00()).unwrap();
    assert!(matches!(
        decode(format!("{doc}---\n{doc}").as_bytes()),
        Err(DecodeError::Multistream)
    ));
    assert_eq!(
        decode(br#"{"kind":"Secret","apiVersion":"v1"}"#)
            .unwrap_err()
            .to_string(),
        "unexpected resource type: v1, Kind=Secret"
    );
    assert!(matches!(
        decode(br#"{"apiVersion":"v1"}"#),
        Err(DecodeError::MissingKind)
    ));
    let ss = decode(doc.as_bytes()).unwrap();
    assert_eq!(ss.metadata.name.as_deref(), Some("mysecret"));
}

/// A body whose read fails, like a connection that breaks mid-request.
struct BrokenBody;

impl hyper::body::Body for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ))))
    }
}

#[tokio::test]
async fn unreadable_bodies_are_400_and_large_ones_413() {
    let a = api_with(
        go_registry(),
        ApiConfig {
            rate_limit_burst: 100,
            max_body_bytes: 4096,
            ..Default::default()
        },
    );
    for path in ["/v1/verify", "/v1/rotate"] {
        let r = send(&a.router, "POST", path, Body::new(BrokenBody)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.body.is_empty());

        // Too large, announced by Content-Length and refused before reading.
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-length", "5000")
            .body(Body::from(vec![b' '; 5000]))
            .unwrap();
        assert_eq!(
            send_req(&a.router, req).await.status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // Too large without Content-Length (chunked): cut off while reading.
        let r = send(&a.router, "POST", path, vec![b' '; 4097]).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // The default limit is 1 MiB.
    let d = api(go_registry());
    let r = send(&d.router, "POST", "/v1/verify", vec![b' '; (1 << 20) + 1]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

// ---------------------------------------------------------------------------------------------
// rate limiting

async fn from_peer(a: &Api, path: &str, peer: &str, xff: Option<&str>) -> Answer {
    let mut req = Request::builder().method("POST").uri(path);
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    let mut req = req.body(Body::from(go_00().to_string())).unwrap();
    req.extensions_mut()
        .insert(PeerAddr(format!("{peer}:40000").parse().unwrap()));
    send_req(&a.router, req).await
}

async fn verify_from(a: &Api, peer: &str, xff: Option<&str>) -> Answer {
    from_peer(a, "/v1/verify", peer, xff).await
}

#[tokio::test]
async fn verify_is_rate_limited_like_bitnami() {
    // Defaults: 2/s, burst 2, so 3 at once, then one every 500 ms.
    let a = api_with(go_registry(), ApiConfig::default());
    for remaining in ["2", "1", "0"] {
        let r = verify_from(&a, "10.1.2.3", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
        assert!(r.header("x-ratelimit-reset").is_some());
        assert_eq!(r.header("retry-after"), None);
    }
    let r = verify_from(&a, "10.1.2.3", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text(), "limit exceeded\n");
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("2"));
    assert_eq!(r.header("retry-after"), Some("1"));

    // The client is the TCP peer: a chosen X-Forwarded-For does not buy a new allowance
    // (Bitnami keys on it: six values, six passes), another peer has its own.
    for xff in ["1.1.1.1", "2.2.2.2", "proxy-a"] {
        assert_eq!(
            verify_from(&a, "10.1.2.3", Some(xff)).await.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{xff}"
        );
    }
    assert_eq!(
        verify_from(&a, "10.9.9.9", None).await.status,
        StatusCode::OK
    );

    // One emission interval later, one more passes; after a pause the full burst is back.
    a.clock.advance(Duration::from_millis(500));
    assert_eq!(
        verify_from(&a, "10.1.2.3", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        verify_from(&a, "10.1.2.3", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    a.clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(
            verify_from(&a, "10.1.2.3", None).await.status,
            StatusCode::OK
        );
    }

    // Refusals are counted in the HTTP metrics; cert.pem is never limited.
    let text = a.metrics.encode(Timestamp::now());
    assert!(text.contains(
        r#"sealed_secrets_controller_http_requests_total{path="/v1/verify",code="429",method="post"} 5"#
    ), "{text}");
    for _ in 0..6 {
        assert_eq!(
            send(&a.router, "GET", "/v1/cert.pem", Body::empty())
                .await
                .status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn rotate_is_rate_limited_and_trusted_proxies_name_the_client() {
    let a = api_with(
        go_registry(),
        ApiConfig {
            trusted_proxies: kseal_controller::ratelimit::parse_cidrs("10.0.0.0/24").unwrap(),
            ..Default::default()
        },
    );
    // Rotate has its own allowance, as verify: 3 at once, then 429.
    let codes: Vec<StatusCode> = futures_codes(&a, "/v1/rotate", "172.16.0.1", None, 4).await;
    assert_eq!(&codes[..3], &[StatusCode::OK; 3]);
    assert_eq!(codes[3], StatusCode::TOO_MANY_REQUESTS);
    // Through a trusted proxy (the API server), the address it appended is the client...
    let through = futures_codes(&a, "/v1/rotate", "10.0.0.7", Some("6.6.6.6, 172.16.0.2"), 4).await;
    assert_eq!(&through[..3], &[StatusCode::OK; 3]);
    assert_eq!(through[3], StatusCode::TOO_MANY_REQUESTS);
    // ...so another user behind the same proxy is not affected, and what the client put in
    // front of the header is ignored.
    assert_eq!(
        from_peer(&a, "/v1/rotate", "10.0.0.7", Some("172.16.0.2, 172.16.0.3"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        from_peer(&a, "/v1/rotate", "10.0.0.7", Some("172.16.0.3, 172.16.0.2"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn futures_codes(
    a: &Api,
    path: &str,
    peer: &str,
    xff: Option<&str>,
    n: usize,
) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(from_peer(a, path, peer, xff).await.status);
    }
    out
}

#[tokio::test]
async fn private_key_work_is_shared_and_a_busy_controller_answers_503() {
    let work = kseal_controller::work::PrivateKeyWork::new(1);
    let a = api_with(
        go_registry(),
        ApiConfig {
            work: work.clone(),
            work_wait: Duration::from_millis(50),
            rate_limit_burst: 100,
            ..Default::default()
        },
    );
    // Someone (a reconcile) holds the only permit: requests wait, then give up with 503.
    let held = work.acquire().await;
    let r = post_json(&a.router, "/v1/verify", &go_00()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text(), "busy, try again later\n");
    let r = post_json(&a.router, "/v1/rotate", &go_00()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    assert_eq!(
        post_json(&a.router, "/v1/verify", &go_00()).await.status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// /v1/rotate

#[tokio::test]
async fn rotate_reseals_with_the_newest_key() {
    let a = api(two_key_registry());
    let r = post_json(&a.router, "/v1/rotate", &go_00()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(!r.text().contains('\n'), "compact JSON");
    let out: SealedSecret = serde_json::from_slice(&r.body).unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["kind"], "SealedSecret");
    // Bitnami's top-level metadata plus the sealing-key hint naming the newest key.
    assert_eq!(
        v["metadata"],
        json!({"name": "mysecret", "namespace": "default", "annotations": {
            kseal_crds::ANNOTATION_SEALED_WITH: new_key().fingerprint().to_string()
        }})
    );

    assert_ne!(
        out.spec.encrypted_data["password"],
        go_00_ciphertext(),
        "sealed again"
    );
    assert_eq!(
        opens_with(&new_key(), &out, "password").as_deref(),
        Some(&b"supersecret"[..]),
        "the newest key opens it"
    );
    assert_eq!(
        opens_with(&go_key(), &out, "password"),
        None,
        "the old key does not"
    );

    // The result verifies and rotates again.
    let r2 = send(&a.router, "POST", "/v1/verify", r.body.clone()).await;
    assert_eq!(r2.status, StatusCode::OK);
}

#[tokio::test]
async fn rotate_reseals_age_items_with_the_newest_rsa_key() {
    let a = api(age_registry());
    let ss = sealed(
        "default",
        "mysecret",
        &age_item(0, "default", "mysecret", b"from-age"),
    );
    let r = post_json(&a.router, "/v1/rotate", &ss).await;
    assert_eq!(r.status, StatusCode::OK);
    let out: SealedSecret = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        opens_with(&go_key(), &out, "password").as_deref(),
        Some(&b"from-age"[..])
    );
}

#[tokio::test]
async fn rotate_forces_the_template_metadata_to_the_top_level_metadata() {
    let a = api(two_key_registry());
    let mut ss = go_00();
    ss["metadata"]["labels"] = json!({"team": "a"});
    // An attempt to widen the scope through the template, and template-only labels.
    ss["spec"]["template"]["metadata"] = json!({
        "name": "mysecret",
        "namespace": "default",
        "labels": {"template-only": "x"},
        "annotations": {"sealedsecrets.bitnami.com/cluster-wide": "true"}
    });
    ss["spec"]["template"]["type"] = json!("kubernetes.io/basic-auth");
    let r = post_json(&a.router, "/v1/rotate", &ss).await;
    assert_eq!(r.status, StatusCode::OK);
    let out: SealedSecret = serde_json::from_slice(&r.body).unwrap();
    let tm = out.spec.template.metadata.clone().unwrap();
    assert_eq!(
        tm.labels,
        Some(BTreeMap::from([("team".to_string(), "a".to_string())]))
    );
    assert_eq!(
        tm.annotations, None,
        "the template's scope annotation is gone"
    );
    assert_eq!(
        out.metadata.annotations,
        Some(BTreeMap::from([(
            kseal_crds::ANNOTATION_SEALED_WITH.to_string(),
            new_key().fingerprint().to_string()
        )])),
        "still strict: no scope annotation, only the sealing-key hint"
    );
    assert_eq!(
        out.spec.template.type_.as_deref(),
        Some("kubernetes.io/basic-auth")
    );
    assert_eq!(
        kseal_sealing::unseal::label_of(&out).0,
        Scope::Strict,
        "the scope cannot be changed through the template"
    );
    assert_eq!(
        opens_with(&new_key(), &out, "password").as_deref(),
        Some(&b"supersecret"[..])
    );

    // Equal metadata is kept as it is (server-set fields are dropped by the sealing path).
    let mut same = go_00();
    let meta = json!({"name": "mysecret", "namespace": "default",
        "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}});
    same["metadata"] = meta.clone();
    same["spec"]["template"]["metadata"] = meta;
    let label = Scope::NamespaceWide.label("default", "mysecret");
    let blob = kseal_crypto::seal(go_key().public_key(), &label, b"nw").unwrap();
    same["spec"]["encryptedData"]["password"] = json!(STANDARD.encode(blob));
    let r = post_json(&a.router, "/v1/rotate", &same).await;
    assert_eq!(r.status, StatusCode::OK);
    let out: SealedSecret = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        kseal_sealing::unseal::label_of(&out).0,
        Scope::NamespaceWide
    );
    assert_eq!(
        opens_with(&new_key(), &out, "password").as_deref(),
        Some(&b"nw"[..])
    );
}

#[tokio::test]
async fn rotate_failures_are_500_with_an_empty_body() {
    let a = api(two_key_registry());
    let renamed = sealed("default", "othersecret", &go_00_ciphertext());
    let garbage = json!({"kind": "SealedSecret"});
    for (what, body) in [
        ("cannot decrypt", renamed.to_string()),
        ("cannot decode", garbage.to_string()),
        ("not yaml", "::: [".to_string()),
    ] {
        let r = send(&a.router, "POST", "/v1/rotate", body).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        assert!(r.body.is_empty(), "{what}");
    }
    // A strict SealedSecret without a namespace cannot be sealed again.
    let r = post_json(&a.router, "/v1/rotate", &sealed("", "mysecret", "AAAA")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);

    let none = api(KeyRegistry::default());
    let r = post_json(&none.router, "/v1/rotate", &go_00()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "no key");
}

// ---------------------------------------------------------------------------------------------
// metrics

#[tokio::test]
async fn http_metrics_use_bitnamis_names_and_labels() {
    let a = api(go_registry());
    post_json(&a.router, "/v1/verify", &go_00()).await;
    send(&a.router, "GET", "/v1/cert.pem", Body::empty()).await;
    send(&a.router, "POST", "/v1/rotate", "nope").await;
    send(&a.router, "BREW", "/v1/cert.pem", Body::empty()).await;
    send(&a.router, "GET", "/healthz", Body::empty()).await;

    let text = a.metrics.encode(Timestamp::now());
    for line in [
        "# TYPE sealed_secrets_controller_http_requests counter",
        r#"sealed_secrets_controller_http_requests_total{path="/v1/verify",code="200",method="post"} 1"#,
        r#"sealed_secrets_controller_http_requests_total{path="/v1/cert.pem",code="200",method="get"} 1"#,
        r#"sealed_secrets_controller_http_requests_total{path="/v1/rotate",code="500",method="post"} 1"#,
        r#"sealed_secrets_controller_http_requests_total{path="/v1/cert.pem",code="200",method="unknown"} 1"#,
        "# TYPE sealed_secrets_controller_http_request_duration_seconds histogram",
        r#"sealed_secrets_controller_http_request_duration_seconds_count{path="/v1/verify",method="post"} 1"#,
        r#"sealed_secrets_controller_http_request_duration_seconds_bucket{le="0.005",path="/v1/cert.pem",method="get"} 1"#,
        r#"sealed_secrets_controller_http_request_duration_seconds_bucket{le="10.0",path="/v1/rotate",method="post"} 1"#,
        r#"sealed_secrets_controller_http_request_duration_seconds_bucket{le="+Inf",path="/v1/rotate",method="post"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("healthz"));
    // Exactly Prometheus' default buckets.
    let les: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("sealed_secrets_controller_http_request_duration_seconds_bucket")
                && l.contains(r#"path="/v1/verify""#)
        })
        .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert_eq!(
        les,
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
            "+Inf"
        ]
    );
}

#[test]
fn controller_metrics_names_and_labels() {
    let m = Metrics::new("v1.2.3");
    m.unseal_request();
    m.unseal_request();
    m.unseal_error(UnsealErrorReason::Unseal, "team-a");
    m.unseal_error(
        kseal_controller::planner::Failure::Immutable.into(),
        "team-a",
    );
    m.unseal_error(UnsealErrorReason::Fetch, "");
    m.set_workqueue_depth(4);

    let ss = |instance: Option<&str>, status: &str| -> SealedSecret {
        let mut v = go_00();
        if let Some(i) = instance {
            v["metadata"]["labels"] = json!({"app.kubernetes.io/instance": i});
        }
        v["status"] = json!({"conditions": [{"type": "Synced", "status": status}]});
        serde_json::from_value(v).unwrap()
    };
    m.observe_conditions(&ss(Some("web"), "False"));
    let other: SealedSecret = {
        let mut v = sealed("ns2", "db", "AAAA");
        v["status"] = json!({"conditions": [{"type": "Synced", "status": "True"}]});
        serde_json::from_value(v).unwrap()
    };
    m.observe_conditions(&other);
    m.observe_keys(&two_key_registry());

    let text = m.encode(at(1_800_000_100));
    let go_fp = go_key().fingerprint().to_string();
    let new_fp = new_key().fingerprint().to_string();
    if std::env::var_os("KSEAL_PRINT_METRICS").is_some() {
        eprintln!("{text}");
    }
    for line in [
        "# TYPE sealed_secrets_controller_build_info gauge".to_string(),
        r#"sealed_secrets_controller_build_info{revision="v1.2.3"} 0"#.to_string(),
        "# TYPE sealed_secrets_controller_unseal_requests counter".to_string(),
        "sealed_secrets_controller_unseal_requests_total 2".to_string(),
        "# TYPE sealed_secrets_controller_unseal_errors counter".to_string(),
        r#"sealed_secrets_controller_unseal_errors_total{reason="unseal",namespace="team-a"} 1"#
            .to_string(),
        r#"sealed_secrets_controller_unseal_errors_total{reason="update",namespace="team-a"} 1"#
            .to_string(),
        r#"sealed_secrets_controller_unseal_errors_total{reason="fetch",namespace=""} 1"#
            .to_string(),
        "# TYPE sealed_secrets_controller_condition_info gauge".to_string(),
        r#"sealed_secrets_controller_condition_info{namespace="default",name="mysecret",condition="Synced",ss_app_kubernetes_io_instance="web"} -1"#.to_string(),
        r#"sealed_secrets_controller_condition_info{namespace="ns2",name="db",condition="Synced",ss_app_kubernetes_io_instance=""} 1"#.to_string(),
        "# TYPE sealed_secrets_controller_key_age_seconds gauge".to_string(),
        format!(r#"sealed_secrets_controller_key_age_seconds{{fingerprint="{go_fp}"}} 100000100.0"#),
        format!(r#"sealed_secrets_controller_key_age_seconds{{fingerprint="{new_fp}"}} 100.0"#),
        "# TYPE sealed_secrets_controller_workqueue_depth gauge".to_string(),
        "sealed_secrets_controller_workqueue_depth 4".to_string(),
        "# EOF".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        !text.contains("_total_total"),
        "counter names are registered without _total"
    );

    // A status change and a new instance label replace the series; deletion removes them.
    m.observe_conditions(&ss(Some("web2"), "True"));
    let text = m.encode(at(1_800_000_100));
    assert!(text
        .contains(r#"name="mysecret",condition="Synced",ss_app_kubernetes_io_instance="web2"} 1"#));
    assert!(!text.contains(r#"ss_app_kubernetes_io_instance="web""#));
    m.remove_conditions("default", "mysecret");
    let text = m.encode(at(1_800_000_100));
    assert!(!text.contains(r#"name="mysecret""#));
    assert!(text.contains(r#"name="db""#));
}

#[tokio::test]
async fn key_ages_follow_the_published_registry() {
    let metrics = Arc::new(Metrics::new("dev"));
    let (tx, rx) = watch::channel(Arc::new(go_registry()));
    let task = tokio::spawn(follow_keys(metrics.clone(), rx));
    let fp = |k: &Arc<PrivateKey>| format!("fingerprint=\"{}\"", k.fingerprint());
    let wait_for = |want: usize| {
        let metrics = metrics.clone();
        async move {
            for _ in 0..200 {
                let text = metrics.encode(Timestamp::now());
                if text
                    .matches("sealed_secrets_controller_key_age_seconds{")
                    .count()
                    == want
                {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("key_age_seconds never had {want} series");
        }
    };
    let text = wait_for(1).await;
    assert!(text.contains(&fp(&go_key())));
    tx.send_replace(Arc::new(two_key_registry()));
    let text = wait_for(2).await;
    assert!(text.contains(&fp(&new_key())));
    // Age identities have a series each, labelled with the recipient's fingerprint.
    tx.send_replace(Arc::new(age_registry()));
    let text = wait_for(3).await;
    for id in age_ids() {
        assert!(text.contains(&format!("fingerprint=\"{}\"", id.fingerprint())));
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("ends with the sender")
        .unwrap();
}

#[tokio::test]
async fn metrics_router_serves_the_exposition() {
    let metrics = Arc::new(Metrics::new("dev"));
    metrics.unseal_request();
    let r = metrics_router(metrics.clone());
    let a = send(&r, "GET", "/metrics", Body::empty()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(a
        .text()
        .lines()
        .any(|l| l == "sealed_secrets_controller_unseal_requests_total 1"));
    assert!(a.text().ends_with("# EOF\n"));
    assert_eq!(
        send(&r, "GET", "/v1/cert.pem", Body::empty()).await.status,
        StatusCode::NOT_FOUND,
        "the API is not on the metrics port"
    );
}

// ---------------------------------------------------------------------------------------------
// secret hygiene

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at every level.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init()
            .ok();
        logs
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_never_leaves_the_controller() {
    let logs = captured_logs();
    let a = api(two_key_registry());
    let forms = [
        CANARY.to_string(),
        STANDARD.encode(CANARY),
        CANARY.to_uppercase(),
    ];
    let mut seen = Vec::new();

    let ss = canary_ss();
    let mut renamed = ss.clone();
    renamed["metadata"]["name"] = json!("elsewhere");
    let mut templated = ss.clone();
    templated["spec"]["template"]["data"] =
        json!({"leak": "{{ .password }}", "fail": "{{ fail .password }}"});
    let mut half_bad = ss.clone();
    half_bad["spec"]["encryptedData"]["broken"] = json!("!!!");
    let mut metadata_mismatch = ss.clone();
    metadata_mismatch["spec"]["template"]["metadata"]["labels"] = json!({"x": "y"});

    for body in [&ss, &renamed, &templated, &half_bad, &metadata_mismatch] {
        for path in ["/v1/verify", "/v1/rotate"] {
            a.clock.advance(Duration::from_secs(5));
            seen.push(post_json(&a.router, path, body).await);
        }
    }
    let rotated = post_json(&a.router, "/v1/rotate", &ss).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let out: SealedSecret = serde_json::from_slice(&rotated.body).unwrap();
    assert_eq!(
        opens_with(&new_key(), &out, "password").as_deref(),
        Some(CANARY.as_bytes()),
        "the canary was really decrypted and re-sealed"
    );
    seen.push(rotated);
    seen.push(send(&a.router, "GET", "/v1/cert.pem", Body::empty()).await);

    let metrics_text = a.metrics.encode(Timestamp::now());
    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        log_text.contains("verify: "),
        "the logs were captured: {log_text}"
    );
    for answer in &seen {
        let mut everything = answer.text();
        for (k, v) in &answer.headers {
            everything.push_str(&format!("\n{k}: {}", v.to_str().unwrap_or("")));
        }
        for f in &forms {
            assert!(!everything.contains(f.as_str()), "response leaks {f}");
        }
    }
    for f in &forms {
        assert!(!metrics_text.contains(f.as_str()), "metrics leak {f}");
        assert!(!log_text.contains(f.as_str()), "logs leak {f}");
    }
}

// ---------------------------------------------------------------------------------------------
// the server

async fn start(
    router: Router,
    opts: ServeOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_listener(listener, router, opts, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server answers or closes")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn server_answers_over_tcp_and_shuts_down_gracefully() {
    let a = api(go_registry());
    let (addr, stop, task) = start(a.router.clone(), ServeOptions::default()).await;
    let answer = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");

    let body = go_00().to_string();
    let req = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_exchange(addr, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

    // An idle keep-alive connection does not hold up shutdown.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn server_timeouts_close_slow_connections() {
    let slow = Router::new().route(
        "/slow",
        axum::routing::any(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let opts = ServeOptions {
        read_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(2000),
    };
    let (addr, stop, task) = start(slow.merge(api(go_registry()).router), opts).await;

    // A handler that outlives the write timeout: the connection closes without an answer.
    let started = std::time::Instant::now();
    let answer = raw_exchange(addr, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer, "");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A request head that never completes: closed after the read timeout.
    let started = std::time::Instant::now();
    let answer = raw_exchange(addr, b"GET /healthz HTTP/1.1\r\nHost:").await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that never arrives: 400 after the read timeout, as Go's failed ReadAll.
    let answer = raw_exchange(
        addr,
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
