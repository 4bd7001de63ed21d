//! The controller's HTTP API on the main port, with the paths and answers of Bitnami's controller:
//! the routes and their handlers.
//! The server that runs them (and the metrics router) is [`super::server`].
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 `ok\n`; depends on nothing, so it answers while the watches start |
//! | `/v1/cert.pem` | the newest key's certificate; 500 `cannot get certificate\n` without one |
//! | `/v1/age-recipient` | kseal: the newest age identity's recipient, `age1…\n` (text/plain); 500 `cannot get age recipient\n` without one or with `--age=false` |
//! | `/v1/age-pq-recipient` | kseal: the newest post-quantum identity's recipient, `age1pq1…\n` (text/plain); 500 `cannot get post-quantum age recipient\n` without one or with `--age-pq=false`/`--age=false` |
//! | `/v1/verify` | 200 when every item opens with some key, 409 when not; rate-limited |
//! | `/v1/rotate` | the SealedSecret re-sealed with the newest key, as compact JSON; rate-limited (kseal) |
//!
//! Every method is accepted on every path, as Go's `ServeMux` does; kubeseal uses GET for the
//! certificate and POST for the others. Status codes, bodies and headers are Bitnami's; see the
//! handlers for the few places kseal deliberately differs.
//!
//! # Decryption oracles
//!
//! `spec.template.data` is not covered by the OAEP label, so anyone can pair a victim's
//! `encryptedData` (SealedSecrets live in git) with a template of their own whose rendering
//! fails or not depending on the value: `{{ b64dec .password }}` in kseal's template subset, or
//! `{{ if hasPrefix "a" .password }}{{ fail "" }}{{ end }}` in Bitnami's full Go engine. If
//! `/v1/verify` or `/v1/rotate` rendered templates, their answers would reveal the plaintext bit
//! by bit to any authenticated user (Bitnami closed the same hole upstream by decrypting without
//! templates in both handlers). Both handlers here therefore only decrypt the items and never execute a
//! template: verify answers "does every item open", and rotate re-seals the items and hands the
//! templates back untouched, so the re-sealed SealedSecret renders exactly the Secret the
//! original did. Neither response nor any log line says *why* an item failed beyond "no key
//! could decrypt", and plaintext never leaves the blocking task that decrypts it: it is
//! re-encrypted or scrubbed there.
//!
//! # Bounds (anyone in the cluster can reach this port)
//!
//! The server bounds connections and the time a request may take ([`super::server`]); the
//! handlers bound the rest:
//!
//! - request bodies: [`DEFAULT_MAX_BODY_BYTES`] (413 beyond), and the SealedSecret bounds of
//!   `kseal_sealing::limits` before any decryption;
//! - rate: `/v1/verify` and `/v1/rotate` each allow `--rate-limit` per second (burst
//!   `--rate-limit-burst`) per client, where the client is the TCP peer (the server's
//!   [`PeerAddr`]), or the address a `--trusted-proxies` proxy forwarded (see
//!   [`crate::ratelimit`]);
//! - CPU: both take a permit of the process-wide private-key work limit
//!   ([`crate::work::PrivateKeyWork`]) and answer 503 when none frees up within
//!   [`crate::work::HTTP_WAIT`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kseal_crds::SealedSecret;
use kseal_sealing::seal::{resolve, seal_secret, SealOptions};
use kseal_sealing::unseal::{unseal, UnsealOptions, Unsealed};
use serde::Deserialize;
use tokio::sync::watch;

use super::server::PeerAddr;
use crate::keys::registry::KeyRegistry;
use crate::metrics::Metrics;
use crate::ratelimit::{client_key, vary_key, Cidr, Clock, InvalidQuota, RateLimiter, SystemClock};
use crate::work::{PrivateKeyWork, HTTP_WAIT};

/// Liveness and readiness probe path.
pub const HEALTHZ_PATH: &str = "/healthz";
/// The sealing certificate.
pub const CERT_PATH: &str = "/v1/cert.pem";
/// The newest age recipient (kseal).
pub const AGE_RECIPIENT_PATH: &str = "/v1/age-recipient";
/// The newest post-quantum (mlkem768x25519) age recipient (kseal).
pub const AGE_PQ_RECIPIENT_PATH: &str = "/v1/age-pq-recipient";
/// Does a SealedSecret decrypt with the controller's keys.
pub const VERIFY_PATH: &str = "/v1/verify";
/// Re-seal a SealedSecret with the newest key.
pub const ROTATE_PATH: &str = "/v1/rotate";

/// The default request body limit of `/v1/verify` and `/v1/rotate` (Bitnami has none). A
/// SealedSecret is stored in etcd, whose default request limit is 1.5 MiB, and real ones are
/// a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Settings of the API handlers (controller flags).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `--rate-limit`: sustained `/v1/verify` requests per second per client (default 2).
    pub rate_limit: u32,
    /// `--rate-limit-burst`: extra requests at once (default 2; `burst + 1` pass at once).
    pub rate_limit_burst: u32,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `--accept-deprecated-v1-data` (default true).
    pub accept_deprecated_v1_data: bool,
    /// `--age` (default true): serve the newest age recipient on `/v1/age-recipient`.
    pub age: bool,
    /// `--age-pq` (default true): serve the newest post-quantum age recipient on
    /// `/v1/age-pq-recipient`.
    pub age_pq: bool,
    /// `--trusted-proxies`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// The process-wide private-key work limit (shared with the reconcilers).
    pub work: PrivateKeyWork,
    /// How long a request waits for a permit of `work` before it gets 503.
    pub work_wait: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_limit: 2,
            rate_limit_burst: 2,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            accept_deprecated_v1_data: true,
            age: true,
            age_pq: true,
            trusted_proxies: Vec::new(),
            work: PrivateKeyWork::default(),
            work_wait: HTTP_WAIT,
        }
    }
}

/// What the handlers share.
///
/// The keys come through a `tokio::sync::watch` channel: the key manager publishes a new
/// `Arc<KeyRegistry>` snapshot with `send_replace` whenever it adds a key, and each request
/// clones the current `Arc` once at its start. Readers never hold a lock while decrypting (an
/// RSA-4096 operation per item), so they never delay the writer, a request sees one consistent
/// registry from start to end, and the same channel lets other tasks (metrics) wait for changes.
/// An `Arc<RwLock<KeyRegistry>>` would have readers hold the lock across the decryption or
/// clone the whole registry.
#[derive(Debug, Clone)]
pub struct ApiState {
    keys: watch::Receiver<Arc<KeyRegistry>>,
    metrics: Arc<Metrics>,
    limiter: Arc<RateLimiter>,
    rotate_limiter: Arc<RateLimiter>,
    trusted_proxies: Arc<[Cidr]>,
    work: PrivateKeyWork,
    work_wait: Duration,
    max_body_bytes: usize,
    unseal_options: UnsealOptions,
    age: bool,
    age_pq: bool,
}

impl ApiState {
    /// State with the real clock for the rate limiter. Fails when `rate_limit` is 0 (Bitnami
    /// refuses it too).
    pub fn new(
        keys: watch::Receiver<Arc<KeyRegistry>>,
        metrics: Arc<Metrics>,
        config: &ApiConfig,
    ) -> Result<Self, InvalidQuota> {
        Self::with_clock(keys, metrics, config, Arc::new(SystemClock::new()))
    }

    /// State whose rate limiter reads `clock` (tests move time by hand).
    pub fn with_clock(
        keys: watch::Receiver<Arc<KeyRegistry>>,
        metrics: Arc<Metrics>,
        config: &ApiConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidQuota> {
        Ok(ApiState {
            keys,
            metrics,
            limiter: Arc::new(RateLimiter::new(
                config.rate_limit,
                config.rate_limit_burst,
                clock.clone(),
            )?),
            rotate_limiter: Arc::new(RateLimiter::new(
                config.rate_limit,
                config.rate_limit_burst,
                clock,
            )?),
            trusted_proxies: config.trusted_proxies.clone().into(),
            work: config.work.clone(),
            work_wait: config.work_wait,
            max_body_bytes: config.max_body_bytes,
            unseal_options: UnsealOptions {
                accept_deprecated_v1_data: config.accept_deprecated_v1_data,
            },
            age: config.age,
            age_pq: config.age && config.age_pq,
        })
    }

    /// The registry as it is now; the borrow of the channel ends here.
    pub(crate) fn snapshot(&self) -> Arc<KeyRegistry> {
        self.keys.borrow().clone()
    }

    /// The process-wide private-key work limit (the admission webhook takes its permits too).
    pub(crate) fn work(&self) -> &PrivateKeyWork {
        &self.work
    }

    /// `/v1/verify`'s rate limiter, which the admission webhook shares.
    pub(crate) fn verify_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// `--accept-deprecated-v1-data` as unseal options.
    pub(crate) fn unseal_options(&self) -> UnsealOptions {
        self.unseal_options
    }

    /// Runs a handler and records it in the HTTP metrics (promhttp's counter and histogram).
    pub(crate) async fn instrumented(
        &self,
        path: &'static str,
        method: &Method,
        handler: impl Future<Output = Response>,
    ) -> Response {
        let start = Instant::now();
        let response = handler.await;
        self.metrics
            .observe_http(path, method, response.status(), start.elapsed());
        response
    }
}

/// The main port's router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, any(healthz))
        .route(CERT_PATH, any(cert_pem))
        .route(AGE_RECIPIENT_PATH, any(age_recipient))
        .route(AGE_PQ_RECIPIENT_PATH, any(age_pq_recipient))
        .route(VERIFY_PATH, any(verify))
        .route(ROTATE_PATH, any(rotate))
        .fallback(not_found)
        .with_state(state)
}

/// Go's `http.Error`: the message and a newline as plain text, with `nosniff`.
fn go_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, TEXT_PLAIN),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

async fn not_found() -> Response {
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Not instrumented and touches no state: a probe must not depend on the keys or the watches.
async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, TEXT_PLAIN)], "ok\n").into_response()
}

async fn cert_pem(State(s): State<ApiState>, method: Method) -> Response {
    s.instrumented(CERT_PATH, &method, async {
        let registry = s.snapshot();
        match registry.newest().and_then(|k| k.key.certificate()) {
            Some(cert) => (
                [(header::CONTENT_TYPE, "application/x-pem-file")],
                cert.to_pem(),
            )
                .into_response(),
            None => {
                tracing::warn!("cannot get certificate: no sealing key yet");
                go_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot get certificate")
            }
        }
    })
    .await
}

async fn age_recipient(State(s): State<ApiState>, method: Method) -> Response {
    s.instrumented(AGE_RECIPIENT_PATH, &method, async {
        let registry = s.snapshot();
        match registry.newest_age().filter(|_| s.age) {
            Some(id) => (
                [(header::CONTENT_TYPE, TEXT_PLAIN)],
                format!("{}\n", id.identity.recipient()),
            )
                .into_response(),
            None => {
                if s.age {
                    tracing::warn!("cannot get age recipient: no age identity yet");
                } else {
                    tracing::info!("cannot get age recipient: age is off (--age=false)");
                }
                go_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot get age recipient",
                )
            }
        }
    })
    .await
}

async fn age_pq_recipient(State(s): State<ApiState>, method: Method) -> Response {
    s.instrumented(AGE_PQ_RECIPIENT_PATH, &method, async {
        let registry = s.snapshot();
        match registry.newest_age_pq().filter(|_| s.age_pq) {
            Some(id) => (
                [(header::CONTENT_TYPE, TEXT_PLAIN)],
                format!("{}\n", id.identity.recipient()),
            )
                .into_response(),
            None => {
                if s.age_pq {
                    tracing::warn!("cannot get post-quantum age recipient: no such identity yet");
                } else {
                    tracing::info!(
                        "cannot get post-quantum age recipient: off (--age-pq=false or --age=false)"
                    );
                }
                go_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot get post-quantum age recipient",
                )
            }
        }
    })
    .await
}

async fn verify(State(s): State<ApiState>, req: Request) -> Response {
    let method = req.method().clone();
    s.instrumented(VERIFY_PATH, &method, async {
        let limiter = s.limiter.clone();
        limited(&s, &limiter, req, |req| verify_inner(&s, req)).await
    })
    .await
}

/// Runs `handler` unless the client is over its rate (429 `limit exceeded`), and puts
/// throttled's headers on every answer of the route (`Retry-After` only on a refusal).
async fn limited<'a, F: Future<Output = Response> + 'a>(
    s: &ApiState,
    limiter: &RateLimiter,
    req: Request,
    handler: impl FnOnce(Request) -> F,
) -> Response {
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let client = client_key(
        peer,
        req.headers()
            .get("x-forwarded-for")
            .map(HeaderValue::as_bytes),
        &s.trusted_proxies,
    );
    let decision = limiter.check(&vary_key(&client, req.uri().path()));
    let mut response = if decision.limited {
        go_error(StatusCode::TOO_MANY_REQUESTS, "limit exceeded")
    } else {
        handler(req).await
    };
    for (name, value) in decision.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// A permit of the private-key work limit, or the 503 answer when none frees up in time.
async fn work_permit(s: &ApiState) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    s.work.acquire_within(s.work_wait).await.ok_or_else(|| {
        tracing::warn!("the controller is busy decrypting: answered 503");
        go_error(StatusCode::SERVICE_UNAVAILABLE, "busy, try again later")
    })
}

async fn verify_inner(s: &ApiState, req: Request) -> Response {
    let body = match read_body(s, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut ss = match decode(&body) {
        Ok(ss) => ss,
        Err(e) => {
            tracing::info!(path = VERIFY_PATH, "cannot decode the request: {e}");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let permit = match work_permit(s).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let registry = s.snapshot();
    let opts = s.unseal_options;
    let opened = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match open_items(&mut ss, &registry, opts) {
            Ok(u) => {
                u.scrub();
                true
            }
            Err(e) => {
                tracing::info!(
                    namespace = ss.metadata.namespace.as_deref().unwrap_or(""),
                    name = ss.metadata.name.as_deref().unwrap_or(""),
                    "verify: {e}"
                );
                false
            }
        }
    })
    .await;
    match opened {
        Ok(true) => empty(StatusCode::OK),
        Ok(false) => empty(StatusCode::CONFLICT),
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn rotate(State(s): State<ApiState>, req: Request) -> Response {
    let method = req.method().clone();
    s.instrumented(ROTATE_PATH, &method, async {
        let limiter = s.rotate_limiter.clone();
        limited(&s, &limiter, req, |req| rotate_inner(&s, req)).await
    })
    .await
}

async fn rotate_inner(s: &ApiState, req: Request) -> Response {
    let body = match read_body(s, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ss = match decode(&body) {
        Ok(ss) => ss,
        Err(e) => {
            tracing::info!(path = ROTATE_PATH, "cannot decode the request: {e}");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let permit = match work_permit(s).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let registry = s.snapshot();
    let opts = s.unseal_options;
    match tokio::task::spawn_blocking(move || {
        let _permit = permit;
        reseal(ss, &registry, opts)
    })
    .await
    {
        Ok(Ok(json)) => (
            StatusCode::OK,
            // Bitnami sets this header after writing the body, too late for Go to send it; kubeseal
            // parses the body either way, and the right type is more useful to everyone else.
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!("error rotating secret: {e}");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Reads the whole body: 413 when it is larger than the limit, 400 when it cannot be read
/// (a broken connection or the read timeout), as Go's `io.ReadAll` failure gives.
async fn read_body(s: &ApiState, req: Request) -> Result<Bytes, Response> {
    if content_length(req.headers()).is_some_and(|n| n > s.max_body_bytes as u64) {
        return Err(empty(StatusCode::PAYLOAD_TOO_LARGE));
    }
    match Limited::new(req.into_body(), s.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(empty(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(e) => {
            tracing::info!("cannot read the request body: {e}");
            Err(empty(StatusCode::BAD_REQUEST))
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Why a request body is not a SealedSecret. The texts follow apimachinery's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// More than one YAML document.
    #[error("Multistream YAML not supported yet")]
    Multistream,
    /// No `kind` (or the body is not an object).
    #[error("Object 'Kind' is missing")]
    MissingKind,
    /// No `apiVersion`.
    #[error("Object 'apiVersion' is missing")]
    MissingApiVersion,
    /// Another kind or version.
    #[error("unexpected resource type: {api_version}, Kind={kind}")]
    UnexpectedType {
        /// The body's `apiVersion`.
        api_version: String,
        /// The body's `kind`.
        kind: String,
    },
    /// Not valid JSON or YAML, or the fields do not fit: the position and the field, never
    /// the value (see `kseal_sealing::redact`).
    #[error("{0}")]
    Invalid(String),
}

/// Decodes a SealedSecret as apimachinery's universal decoder would: JSON when the first
/// non-blank byte is `{`, else a single YAML document; `apiVersion: bitnami.com/v1alpha1` and
/// `kind: SealedSecret` are required.
pub fn decode(body: &[u8]) -> Result<SealedSecret, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let value: serde_json::Value = if first == Some(&b'{') {
        serde_json::from_slice(body)
            .map_err(|e| DecodeError::Invalid(kseal_sealing::redact::json_error(&e)))?
    } else {
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_slice(body) {
            let v = serde_json::Value::deserialize(doc)
                .map_err(|e| DecodeError::Invalid(kseal_sealing::redact::yaml_error(&e)))?;
            // Empty documents (a leading or trailing `---`) hold nothing.
            if !v.is_null() {
                docs.push(v);
            }
            if docs.len() > 1 {
                return Err(DecodeError::Multistream);
            }
        }
        docs.pop().unwrap_or(serde_json::Value::Null)
    };
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let kind = field("kind").ok_or(DecodeError::MissingKind)?;
    let api_version = field("apiVersion").ok_or(DecodeError::MissingApiVersion)?;
    if kind != kseal_crds::KIND || api_version != kseal_crds::API_VERSION {
        return Err(DecodeError::UnexpectedType { api_version, kind });
    }
    kseal_sealing::redact::from_value(value).map_err(DecodeError::Invalid)
}

/// Opens every item of `ss` without rendering `spec.template.data` (see the module docs on
/// oracles); the templates are put back before returning. Public (hidden) for the fuzz targets.
#[doc(hidden)]
pub fn open_items(
    ss: &mut SealedSecret,
    registry: &KeyRegistry,
    opts: UnsealOptions,
) -> Result<Unsealed, kseal_sealing::Error> {
    let templates = ss.spec.template.data.take();
    let hint = kseal_sealing::sealed_with(ss);
    let result = unseal(ss, registry.keyring(), &hint, opts);
    ss.spec.template.data = templates;
    result
}

/// Why `/v1/rotate` failed.
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("no sealing key")]
    NoKey,
    #[error("error decrypting secret. {0}")]
    Unseal(kseal_sealing::Error),
    #[error("error creating new sealed secret. {0}")]
    Seal(kseal_sealing::Error),
    #[error("cannot encode the sealed secret: {0}")]
    Encode(serde_json::Error),
}

/// Bitnami's rotate: the template metadata is forced to the top-level metadata (so the scope
/// cannot be changed through the template), the items are opened with any key and sealed again
/// for the newest key through the CLI's sealing path. The templates are returned unchanged.
/// Public (hidden) for the fuzz targets.
#[doc(hidden)]
pub fn reseal(
    mut ss: SealedSecret,
    registry: &KeyRegistry,
    opts: UnsealOptions,
) -> Result<String, RotateError> {
    let newest = registry.newest().ok_or(RotateError::NoKey)?;
    let same_meta = match &ss.spec.template.metadata {
        Some(m) => *m == ss.metadata,
        None => ss.metadata == ObjectMeta::default(),
    };
    if !same_meta {
        tracing::warn!(
            namespace = ss.metadata.namespace.as_deref().unwrap_or(""),
            name = ss.metadata.name.as_deref().unwrap_or(""),
            "Sealed Secret metadata doesn't match. Please align your Sealed Secret metadata"
        );
        ss.spec.template.metadata = Some(ss.metadata.clone());
    }
    let Unsealed { mut secret, .. } =
        open_items(&mut ss, registry, opts).map_err(RotateError::Unseal)?;

    let seal_opts = SealOptions {
        // Bitnami's NewSealedSecret seals whatever there is, even nothing.
        allow_empty_data: true,
        ..Default::default()
    };
    // Check name, namespace and scope on a data-less copy first: seal_secret scrubs the
    // plaintext it consumes, but an early error return would drop it unscrubbed.
    let mut probe = Secret {
        metadata: secret.metadata.clone(),
        ..Default::default()
    };
    if let Err(e) = resolve(&mut probe, &seal_opts) {
        kseal_sealing::scrub::secret(&mut secret);
        return Err(RotateError::Seal(e));
    }
    let mut out = seal_secret(
        &mut rand::rngs::OsRng,
        newest.key.public_key(),
        secret,
        &seal_opts,
    )
    .map_err(RotateError::Seal)?;
    out.spec.template.data = ss.spec.template.data.take();
    kseal_gocompat::to_go_json(&out, false).map_err(RotateError::Encode)
}
