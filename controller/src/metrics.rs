//! The controller's Prometheus metrics (docs/compatibility.md, “Metrics”), served as text on the metrics port.
//!
//! Names and label sets are Bitnami's exactly, so existing dashboards, alerts and the Helm
//! chart's ServiceMonitor keep working:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sealed_secrets_controller_build_info` | gauge | `revision` |
//! | `sealed_secrets_controller_unseal_requests_total` | counter | — |
//! | `sealed_secrets_controller_unseal_errors_total` | counter | `reason`, `namespace` |
//! | `sealed_secrets_controller_condition_info` | gauge | `namespace`, `name`, `condition`, `ss_app_kubernetes_io_instance` |
//! | `sealed_secrets_controller_http_requests_total` | counter | `path`, `code`, `method` |
//! | `sealed_secrets_controller_http_request_duration_seconds` | histogram | `path`, `method` |
//!
//! kseal adds two of its own:
//!
//! - `sealed_secrets_controller_key_age_seconds{fingerprint}`: one series per registered key,
//!   the seconds since its ordering time (computed at scrape time). `min()` over it is the age of
//!   the newest key, which is what an "automatic renewal stopped" alert wants; one series per
//!   key (a key is added every 30 days by default, none is ever removed at run time) also shows
//!   which keys the controller holds. Age identities have a series too, labelled with their
//!   recipient's fingerprint (`SHA256:` over the `age1…` text, the same shape). The fingerprint
//!   is public (it is printed by `kseal cert`), never key material.
//! - `sealed_secrets_controller_workqueue_depth`: items waiting in the reconcile queue.
//! - `sealed_secrets_controller_rsa_decryptions_total`: RSA private-key operations performed
//!   (the cost of unsealing; the sealing-key hint and the ownership marks keep it low).
//!
//! The exposition is OpenMetrics text (`prometheus-client` writes nothing else). Prometheus
//! scrapes it natively; the sample names are the same as in Prometheus' 0.0.4 text format (a
//! counter's samples end in `_total`, its `# TYPE` line names the family without it).
//!
//! Labels only ever hold public identifiers (paths, methods, status codes, object names,
//! namespaces, label values, key fingerprints): nothing here can see a secret value.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use k8s_openapi::jiff::Timestamp;
use kseal_crds::SealedSecret;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::keys::registry::KeyRegistry;
use crate::planner::Failure;

/// Prefix of every metric name (Bitnami's namespace `sealed_secrets`, subsystem `controller`).
pub const PREFIX: &str = "sealed_secrets_controller";

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label Bitnami copies into `condition_info`.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Prometheus' default histogram buckets (client_golang `DefBuckets`), which Bitnami uses.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnsealErrorLabels {
    reason: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    name: String,
    condition: String,
    ss_app_kubernetes_io_instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequestLabels {
    path: String,
    code: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpDurationLabels {
    path: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    fingerprint: String,
}

/// Why an unseal failed: the `reason` label of `unseal_errors_total` (Bitnami's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsealErrorReason {
    /// Reading the SealedSecret from the cache failed.
    Fetch,
    /// Decryption or template rendering failed.
    Unseal,
    /// Writing the Secret failed (including the immutable case).
    Update,
    /// A Secret of that name exists and is not managed by the SealedSecret.
    Unmanaged,
    /// Writing the status failed.
    Status,
}

impl UnsealErrorReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsealErrorReason::Fetch => "fetch",
            UnsealErrorReason::Unseal => "unseal",
            UnsealErrorReason::Update => "update",
            UnsealErrorReason::Unmanaged => "unmanaged",
            UnsealErrorReason::Status => "status",
        }
    }
}

impl From<Failure> for UnsealErrorReason {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unseal | Failure::Limit => UnsealErrorReason::Unseal,
            Failure::Unmanaged | Failure::KeySecret => UnsealErrorReason::Unmanaged,
            Failure::Immutable | Failure::Write => UnsealErrorReason::Update,
        }
    }
}

/// Every metric the controller exposes, registered once in its own registry. Share it as
/// `Arc<Metrics>`; all methods take `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    unseal_requests: Counter,
    unseal_errors: Family<UnsealErrorLabels, Counter>,
    condition_info: Family<ConditionLabels, Gauge>,
    /// The condition series of each SealedSecret (namespace, name), so that a deletion removes
    /// them even when the instance label changed since they were written.
    conditions_by_object: Mutex<BTreeMap<(String, String), Vec<ConditionLabels>>>,
    http_requests: Family<HttpRequestLabels, Counter>,
    http_duration: Family<HttpDurationLabels, Histogram>,
    key_age: Family<KeyLabels, Gauge<f64, AtomicU64>>,
    /// Fingerprint and ordering time of every registered key; ages are computed at scrape time.
    key_times: Mutex<Vec<(String, Timestamp)>>,
    workqueue_depth: Gauge,
    rsa_decryptions: Counter,
}

impl Metrics {
    /// Registers every metric. `revision` is the controller's version (the `revision` label of
    /// `build_info`).
    pub fn new(revision: &str) -> Self {
        let mut registry = Registry::default();
        let name = |n: &str| format!("{PREFIX}_{n}");

        // Bitnami registers build_info with a constant label and never sets it: value 0.
        let build_info = Family::<RevisionLabels, Gauge>::default();
        build_info
            .get_or_create(&RevisionLabels {
                revision: revision.to_string(),
            })
            .set(0);
        registry.register(name("build_info"), "Build information", build_info.clone());

        // prometheus-client appends `_total` to counter samples itself: register the family
        // name without it. It also ends every help text with a period.
        let unseal_requests = Counter::default();
        registry.register(
            name("unseal_requests"),
            "Total number of sealed secret unseal requests",
            unseal_requests.clone(),
        );
        let unseal_errors = Family::<UnsealErrorLabels, Counter>::default();
        registry.register(
            name("unseal_errors"),
            "Total number of sealed secret unseal errors by reason",
            unseal_errors.clone(),
        );
        let condition_info = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            name("condition_info"),
            "Current SealedSecrets condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
            condition_info.clone(),
        );
        let http_requests = Family::<HttpRequestLabels, Counter>::default();
        registry.register(
            name("http_requests"),
            "Total number of HTTP requests by path, status code and method",
            http_requests.clone(),
        );
        let http_duration = Family::<HttpDurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DEFAULT_BUCKETS)
        });
        registry.register(
            name("http_request_duration_seconds"),
            "A histogram of latencies for requests",
            http_duration.clone(),
        );
        let key_age = Family::<KeyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            name("key_age_seconds"),
            "Seconds since each registered sealing key's ordering time (kseal); min() is the age of the newest key",
            key_age.clone(),
        );
        let workqueue_depth = Gauge::default();
        registry.register(
            name("workqueue_depth"),
            "SealedSecrets waiting in the reconcile queue (kseal)",
            workqueue_depth.clone(),
        );

        let rsa_decryptions = Counter::default();
        registry.register(
            name("rsa_decryptions"),
            "RSA private-key operations performed by this process (kseal)",
            rsa_decryptions.clone(),
        );

        Metrics {
            registry,
            unseal_requests,
            unseal_errors,
            condition_info,
            conditions_by_object: Mutex::new(BTreeMap::new()),
            http_requests,
            http_duration,
            key_age,
            key_times: Mutex::new(Vec::new()),
            workqueue_depth,
            rsa_decryptions,
        }
    }

    /// Counts one reconcile (`unseal(key)` in Bitnami: every pass, deletions included).
    pub fn unseal_request(&self) {
        self.unseal_requests.inc();
    }

    /// Counts one failed reconcile. `namespace` is the SealedSecret's (empty for `Fetch`).
    pub fn unseal_error(&self, reason: UnsealErrorReason, namespace: &str) {
        self.unseal_errors
            .get_or_create(&UnsealErrorLabels {
                reason: reason.as_str().to_string(),
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// Publishes the status conditions of `ss` (Bitnami's `ObserveCondition`): 1 for `True`,
    /// −1 for `False`, 0 otherwise. The series written earlier for the same object are replaced,
    /// so a changed instance label or a condition that disappeared leaves no stale series.
    pub fn observe_conditions(&self, ss: &SealedSecret) {
        let namespace = ss.metadata.namespace.clone().unwrap_or_default();
        let name = ss.metadata.name.clone().unwrap_or_default();
        let instance = ss
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INSTANCE_LABEL))
            .cloned()
            .unwrap_or_default();
        let conditions = ss
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        let mut by_object = lock(&self.conditions_by_object);
        let key = (namespace.clone(), name.clone());
        for old in by_object.remove(&key).unwrap_or_default() {
            self.condition_info.remove(&old);
        }
        let mut written = Vec::with_capacity(conditions.len());
        for c in conditions {
            let labels = ConditionLabels {
                namespace: namespace.clone(),
                name: name.clone(),
                condition: c.type_.clone(),
                ss_app_kubernetes_io_instance: instance.clone(),
            };
            let value = match c.status.as_str() {
                "True" => 1,
                "False" => -1,
                _ => 0,
            };
            self.condition_info.get_or_create(&labels).set(value);
            written.push(labels);
        }
        if !written.is_empty() {
            by_object.insert(key, written);
        }
    }

    /// Removes every `condition_info` series of a deleted SealedSecret.
    pub fn remove_conditions(&self, namespace: &str, name: &str) {
        let mut by_object = lock(&self.conditions_by_object);
        for old in by_object
            .remove(&(namespace.to_string(), name.to_string()))
            .unwrap_or_default()
        {
            self.condition_info.remove(&old);
        }
    }

    /// After a (re)list of `namespace` (`None`: every namespace): drops the condition series
    /// of SealedSecrets the list no longer holds. Their deletions happened while no watch was
    /// open (a relist after 410 Gone, a leader change), so no delete event removed them.
    pub fn retain_conditions(
        &self,
        namespace: Option<&str>,
        listed: &std::collections::HashSet<(String, String)>,
    ) {
        let mut by_object = lock(&self.conditions_by_object);
        let gone: Vec<(String, String)> = by_object
            .keys()
            .filter(|k| namespace.is_none_or(|ns| k.0 == ns) && !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            for old in by_object.remove(&key).unwrap_or_default() {
                self.condition_info.remove(&old);
            }
        }
    }

    /// Records one HTTP request of the main server (promhttp's counter and duration histogram).
    /// `path` is the route, never the raw request path, so the label set stays bounded.
    pub fn observe_http(&self, path: &str, method: &Method, status: StatusCode, elapsed: Duration) {
        let method = sanitize_method(method);
        self.http_requests
            .get_or_create(&HttpRequestLabels {
                path: path.to_string(),
                code: status.as_u16().to_string(),
                method: method.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpDurationLabels {
                path: path.to_string(),
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records the keys and age identities the controller holds (call it whenever the registry
    /// changes). The `key_age_seconds` series follow at the next scrape.
    pub fn observe_keys(&self, registry: &KeyRegistry) {
        let times = registry
            .keys()
            .iter()
            .map(|k| (k.key.fingerprint().to_string(), k.ordering_time))
            .chain(
                registry
                    .age_identities()
                    .iter()
                    .map(|i| (i.identity.fingerprint().to_string(), i.ordering_time)),
            )
            .collect();
        *lock(&self.key_times) = times;
    }

    /// Sets the number of SealedSecrets waiting in the reconcile queue.
    pub fn set_workqueue_depth(&self, depth: usize) {
        self.workqueue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The exposition text at `now` (which the key ages are computed against).
    pub fn encode(&self, now: Timestamp) -> String {
        // The key lock is held until the text is written, so that two concurrent scrapes cannot
        // see each other's half-rebuilt key_age family.
        let times = lock(&self.key_times);
        self.key_age.clear();
        for (fingerprint, t) in times.iter() {
            let age = now.duration_since(*t).as_secs_f64().max(0.0);
            self.key_age
                .get_or_create(&KeyLabels {
                    fingerprint: fingerprint.clone(),
                })
                .set(age);
        }
        let total = kseal_crypto::rsa_decryptions();
        let seen = self.rsa_decryptions.get();
        if total > seen {
            self.rsa_decryptions.inc_by(total - seen);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        drop(times);
        out
    }
}

/// Keeps `key_age_seconds` in step with the key registry the key manager publishes (the same
/// channel the HTTP API reads). Run it as a task; it returns when the sender is dropped.
pub async fn follow_keys(metrics: Arc<Metrics>, mut keys: watch::Receiver<Arc<KeyRegistry>>) {
    loop {
        let current = keys.borrow_and_update().clone();
        metrics.observe_keys(&current);
        if keys.changed().await.is_err() {
            return;
        }
    }
}

/// promhttp's method label: lower-case for the standard methods, `unknown` for anything else
/// (a client cannot create unbounded series by inventing methods).
fn sanitize_method(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "get",
        "PUT" => "put",
        "HEAD" => "head",
        "POST" => "post",
        "DELETE" => "delete",
        "CONNECT" => "connect",
        "OPTIONS" => "options",
        "NOTIFY" => "notify",
        "TRACE" => "trace",
        "PATCH" => "patch",
        _ => "unknown",
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (series
/// bookkeeping) is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The metrics port's router: `GET /metrics` (docs/compatibility.md, “Metrics”).
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    let body = metrics.encode(Timestamp::now());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}
