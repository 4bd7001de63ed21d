//! The webhook's HTTP side: `POST` [`ADMISSION_PATH`] takes an `admission.k8s.io/v1`
//! AdmissionReview (the kube crate's types) and answers one with [`super::decide`]'s decision.
//! It runs on its own TLS port (`--webhook-listen-addr`, [`crate::http::server::serve_tls_listener`])
//! on every replica, leader or not.
//!
//! # Bounds (anyone in the cluster can reach this port, not only the API server)
//!
//! - the body: [`MAX_REVIEW_BYTES`] (413 beyond): a review holds the object and the object it
//!   replaces, each at most etcd's 1.5 MiB;
//! - the checks that need no key (bounds, templates) run first and cost no permit;
//! - rate: the `/v1/verify` rate limiter itself (same `--rate-limit` and `--rate-limit-burst`),
//!   one bucket per requesting user as the review names it and per TCP peer (every review comes
//!   from the API server, so the peer alone would put all users in one bucket). Over the rate,
//!   a request waits up to [`RATE_WAIT`] for its turn, then gets 429;
//! - CPU: a permit of the process-wide private-key work limit, waited for at most [`WORK_WAIT`],
//!   then 503.
//!
//! A 429 or 503 is an error to the API server, which then applies the webhook's
//! `failurePolicy` (kseal install's default `Ignore`: admitted, the controller still reports
//! the object in its status). Both waits together stay under the webhook's `timeoutSeconds`
//! (5 in kseal install's configuration).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::jiff::Timestamp;
use kseal_crds::SealedSecret;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;

use super::{needs_check, precheck, Context, Decision};
use crate::http::api::ApiState;
use crate::http::server::PeerAddr;
use crate::planner::ProtectedKeys;
use crate::ratelimit::vary_key;

/// Where the API server sends SealedSecret reviews.
pub const ADMISSION_PATH: &str = "/v1/admission/sealedsecrets";

/// Largest AdmissionReview body.
pub const MAX_REVIEW_BYTES: usize = 4 << 20;

/// Longest wait for the rate limiter's turn.
pub const RATE_WAIT: Duration = Duration::from_secs(2);

/// Longest wait for a permit of the private-key work limit.
pub const WORK_WAIT: Duration = Duration::from_secs(2);

/// What the webhook's handler shares.
#[derive(Debug, Clone)]
pub struct AdmissionState {
    api: ApiState,
    cutoff: Option<Timestamp>,
    protected: Option<Arc<ProtectedKeys>>,
    rate_wait: Duration,
    work_wait: Duration,
}

impl AdmissionState {
    /// The webhook's state: the keys, metrics, `/v1/verify` rate limiter, private-key work limit
    /// and unseal options of `api`, plus the cutoff and the protected key Secrets.
    pub fn new(
        api: ApiState,
        cutoff: Option<Timestamp>,
        protected: Option<Arc<ProtectedKeys>>,
    ) -> Self {
        AdmissionState {
            api,
            cutoff,
            protected,
            rate_wait: RATE_WAIT,
            work_wait: WORK_WAIT,
        }
    }

    /// Shorter waits (tests).
    pub fn with_waits(mut self, rate: Duration, work: Duration) -> Self {
        self.rate_wait = rate;
        self.work_wait = work;
        self
    }
}

/// The webhook port's router: the review path and `/healthz`.
pub fn router(state: AdmissionState) -> Router {
    Router::new()
        .route(ADMISSION_PATH, post(review))
        .route(
            crate::http::api::HEALTHZ_PATH,
            any(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "ok\n",
                )
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn review(State(s): State<AdmissionState>, req: Request) -> Response {
    let method = req.method().clone();
    let api = s.api.clone();
    api.instrumented(ADMISSION_PATH, &method, review_inner(&s, req))
        .await
}

async fn review_inner(s: &AdmissionState, req: Request) -> Response {
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let e = kseal_sealing::redact::json_error(&e);
            tracing::info!(
                path = ADMISSION_PATH,
                "cannot decode the AdmissionReview: {e}"
            );
            return error(StatusCode::BAD_REQUEST, "cannot decode the AdmissionReview");
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the AdmissionReview has no request",
            )
        }
    };
    let response = AdmissionResponse::from(&request);
    let ours = request.kind.group == kseal_crds::GROUP && request.kind.kind == kseal_crds::KIND;
    let checked = matches!(request.operation, Operation::Create | Operation::Update);
    if !ours || !checked || request.sub_resource.is_some() {
        return answer(response);
    }
    let Some(object) = request.object.as_ref() else {
        return answer(response);
    };
    let mut ss = match to_sealed_secret(object) {
        Ok(ss) => ss,
        Err(e) => {
            return answer(response.deny(format!(
                "SealedSecret {}/{} refused by kseal: {e}",
                request.namespace.as_deref().unwrap_or(""),
                request.name
            )))
        }
    };
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| to_sealed_secret(o).ok());
    if !needs_check(&ss, old.as_ref()) {
        return answer(response);
    }
    if let Some(refusal) = precheck(&ss, s.protected.as_deref()) {
        tracing::info!(
            namespace = ss.metadata.namespace.as_deref().unwrap_or(""),
            name = ss.metadata.name.as_deref().unwrap_or(""),
            dry_run = request.dry_run,
            "admission: {refusal}"
        );
        return answer(response.deny(refusal));
    }

    // Decryption from here on: the rate limit and the private-key work limit.
    let client = format!(
        "{}|user:{}",
        peer.map(|p| p.to_string()).unwrap_or_default(),
        request.user_info.username.as_deref().unwrap_or("")
    );
    if let Err(r) = wait_for_rate(s, &vary_key(&client, ADMISSION_PATH)).await {
        return r;
    }
    let Some(permit) = s.api.work().acquire_within(s.work_wait).await else {
        tracing::warn!("admission: the controller is busy decrypting: answered 503");
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy, try again later");
    };
    let registry = s.api.snapshot();
    let unseal = s.api.unseal_options();
    let cutoff = s.cutoff;
    let protected = s.protected.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let ctx = Context {
            registry: &registry,
            cutoff,
            unseal,
            protected: protected.as_deref(),
        };
        let decision: Decision = super::open_and_decide(&mut ss, ctx);
        (decision, ss.metadata)
    })
    .await;
    let Ok((decision, meta)) = decided else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the admission check failed",
        );
    };
    let mut response = response;
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    match decision.refusal {
        None => answer(response),
        Some(refusal) => {
            tracing::info!(
                namespace = meta.namespace.as_deref().unwrap_or(""),
                name = meta.name.as_deref().unwrap_or(""),
                dry_run = request.dry_run,
                "admission: {refusal}"
            );
            answer(response.deny(refusal))
        }
    }
}

/// Takes the rate limiter's turn for `key`, waiting for it up to the rate wait; 429 after that.
async fn wait_for_rate(s: &AdmissionState, key: &str) -> Result<(), Response> {
    let start = Instant::now();
    loop {
        let decision = s.api.verify_limiter().check(key);
        if !decision.limited {
            return Ok(());
        }
        let retry = decision.retry_after.unwrap_or(Duration::from_millis(50));
        if start.elapsed() + retry > s.rate_wait {
            tracing::info!("admission: over the rate limit: answered 429");
            return Err(error(StatusCode::TOO_MANY_REQUESTS, "limit exceeded"));
        }
        tokio::time::sleep(retry).await;
    }
}

/// The object as a SealedSecret; errors name the field, never the value.
fn to_sealed_secret(object: &DynamicObject) -> Result<SealedSecret, String> {
    let value = serde_json::to_value(object).map_err(|e| kseal_sealing::redact::json_error(&e))?;
    kseal_sealing::redact::from_value(value)
}

fn answer(mut response: AdmissionResponse) -> Response {
    if !response.allowed {
        response.result.code = 403;
        response.result.reason = "Forbidden".into();
    }
    match serde_json::to_vec(&response.into_review()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the answer",
        ),
    }
}

async fn read_body(req: Request) -> Result<Bytes, Response> {
    match Limited::new(req.into_body(), MAX_REVIEW_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )),
        Err(e) => {
            tracing::info!("cannot read the request body: {e}");
            Err(error(
                StatusCode::BAD_REQUEST,
                "cannot read the request body",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kseal_crypto::PrivateKey;
    use kseal_sealing::seal::{seal_secret_with, SealOptions, Sealer};
    use tokio::sync::watch;
    use tower::ServiceExt as _;

    use crate::http::api::ApiConfig;
    use crate::keys::registry::{KeyRegistry, RegisteredKey};

    const GO_KEY: &[u8] = include_bytes!("../../../crypto/tests/data/go_rsa2048.key");

    fn key() -> Arc<PrivateKey> {
        Arc::new(PrivateKey::from_pem(GO_KEY).unwrap())
    }

    fn state(rate: u32, burst: u32) -> AdmissionState {
        let mut registry = KeyRegistry::default();
        registry.register(RegisteredKey {
            key: key(),
            ordering_time: Timestamp::from_second(1_000).unwrap(),
            secret_name: None,
        });
        let (tx, rx) = watch::channel(Arc::new(registry));
        std::mem::forget(tx);
        let api = ApiState::new(
            rx,
            Arc::new(crate::metrics::Metrics::new("test")),
            &ApiConfig {
                rate_limit: rate,
                rate_limit_burst: burst,
                ..Default::default()
            },
        )
        .unwrap();
        AdmissionState::new(api, None, None).with_waits(Duration::ZERO, Duration::from_secs(2))
    }

    fn sealed(ns: &str, name: &str) -> serde_json::Value {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            string_data: Some([("password".to_string(), "hunter2-canary".to_string())].into()),
            ..Default::default()
        };
        let ss = seal_secret_with(
            &mut rand::rngs::OsRng,
            Sealer::Bitnami(key().public_key()),
            secret,
            &SealOptions {
                default_namespace: "default",
                ..Default::default()
            },
        )
        .unwrap();
        serde_json::to_value(&ss).unwrap()
    }

    fn review(kind: &str, object: &serde_json::Value) -> String {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "7b2c",
                "kind": {"group": if kind == "SealedSecret" { "bitnami.com" } else { "" }, "version": "v1", "kind": kind},
                "resource": {"group": "bitnami.com", "version": "v1alpha1", "resource": "sealedsecrets"},
                "name": object["metadata"]["name"],
                "namespace": object["metadata"]["namespace"],
                "operation": "CREATE",
                "userInfo": {"username": "alice"},
                "object": object,
                "oldObject": null,
                "dryRun": false,
            }
        })
        .to_string()
    }

    async fn post(s: &AdmissionState, body: String) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::post(ADMISSION_PATH)
            .body(Body::from(body))
            .unwrap();
        let resp = router(s.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            !text.contains("hunter2-canary"),
            "an answer holds the value"
        );
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(text)),
        )
    }

    #[tokio::test]
    async fn reviews_are_answered_with_the_decision_and_the_requests_uid() {
        let s = state(100, 100);
        let (status, v) = post(&s, review("SealedSecret", &sealed("apps", "db"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "7b2c");
        assert_eq!(v["response"]["allowed"], true);
        assert!(v["response"].get("warnings").is_none(), "{v}");

        let mut moved = sealed("apps", "db");
        moved["metadata"]["namespace"] = "prod".into();
        let (_, v) = post(&s, review("SealedSecret", &moved)).await;
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        let message = v["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("SealedSecret prod/db refused by kseal: this cluster cannot open 1 item: item \"password\": no key could decrypt secret (moved: sealed for namespace apps;"),
            "{message}"
        );

        // Not a SealedSecret: admitted untouched. Not a review: 400, without quoting it.
        let (_, v) = post(&s, review("ConfigMap", &moved)).await;
        assert_eq!(v["response"]["allowed"], true);
        let (status, v) = post(&s, "{\"hunter2-canary\": [".into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v, "cannot decode the AdmissionReview\n");
    }

    #[tokio::test]
    async fn decryption_is_rate_limited_per_user_and_the_cheap_checks_are_not() {
        let s = state(1, 0);
        let good = sealed("apps", "db");
        assert_eq!(
            post(&s, review("SealedSecret", &good)).await.0,
            StatusCode::OK
        );
        // Over the rate (and no wait allowed here): 429, which the API server treats as a
        // failure of the webhook (failurePolicy).
        let (status, _) = post(&s, review("SealedSecret", &good)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // A bad template is refused without a turn of the limiter.
        let mut bad = good.clone();
        bad["spec"]["template"]["data"] = serde_json::json!({"x": "{{ range . }}{{ end }}"});
        let (status, v) = post(&s, review("SealedSecret", &bad)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["response"]["allowed"], false);
        // Another user has a bucket of their own.
        let other = review("SealedSecret", &good).replace("alice", "bob");
        assert_eq!(post(&s, other).await.0, StatusCode::OK);
        // With a wait, the same user gets the next turn instead of 429.
        let s = s.with_waits(Duration::from_secs(2), Duration::from_secs(2));
        assert_eq!(
            post(&s, review("SealedSecret", &good)).await.0,
            StatusCode::OK
        );
    }
}
