//! Kubernetes Events on SealedSecrets, as Bitnami's controller records them (docs/compatibility.md, “Reconciling”):
//! core/v1 Events with `source.component: sealed-secrets`, the SealedSecret as involvedObject,
//! and reasons `Unsealed`, `ErrUnsealFailed`, `ErrUpdateFailed`.
//!
//! Like client-go's recorder, a repeat of the same event (same object, type, reason and message)
//! within the aggregation window bumps `count` and `lastTimestamp` of the existing Event instead
//! of creating a new one, so a retried failure does not flood the namespace. Messages come from
//! the planner, which never puts secret values in them; every event is also logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kseal_crds::SealedSecret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::planner::EventSpec;

/// `source.component` of every event (Bitnami's).
pub const COMPONENT: &str = "sealed-secrets";

/// How long a repeated event is folded into the previous one (client-go: 10 minutes).
const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// At most this many recent events are remembered for aggregation.
const CACHE_LIMIT: usize = 4096;

#[derive(Hash, PartialEq, Eq)]
struct EventKey {
    namespace: String,
    uid: String,
    type_: &'static str,
    reason: &'static str,
    message: String,
}

struct Recent {
    name: String,
    count: i32,
    first: Timestamp,
    at: Instant,
}

/// Records Events through the API; share it (`&self`).
pub struct EventRecorder {
    client: Client,
    host: Option<String>,
    recent: Mutex<HashMap<EventKey, Recent>>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The involvedObject of a SealedSecret's events.
pub fn involved_object(ss: &SealedSecret) -> ObjectReference {
    ObjectReference {
        api_version: Some(kseal_crds::API_VERSION.to_string()),
        kind: Some(kseal_crds::KIND.to_string()),
        name: ss.metadata.name.clone(),
        namespace: ss.metadata.namespace.clone(),
        uid: ss.metadata.uid.clone(),
        resource_version: ss.metadata.resource_version.clone(),
        ..Default::default()
    }
}

impl EventRecorder {
    /// A recorder writing as `client`; `host` fills `source.host` (the pod's node or name).
    pub fn new(client: Client, host: Option<String>) -> Self {
        EventRecorder {
            client,
            host,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Logs the event and records it on `ss`. API errors are logged, never returned: an event
    /// that cannot be written must not fail a reconcile.
    pub async fn publish(&self, ss: &SealedSecret, event: &EventSpec) {
        let namespace = ss.metadata.namespace.clone().unwrap_or_default();
        let name = ss.metadata.name.clone().unwrap_or_default();
        if event.type_ == "Warning" {
            tracing::warn!(namespace = %namespace, name = %name, reason = event.reason, "{}", event.message);
        } else {
            tracing::info!(namespace = %namespace, name = %name, reason = event.reason, "{}", event.message);
        }
        if let Err(e) = self.write(ss, event, &namespace, &name).await {
            tracing::warn!(namespace = %namespace, name = %name, error = %e, "cannot record event {}", event.reason);
        }
    }

    async fn write(
        &self,
        ss: &SealedSecret,
        event: &EventSpec,
        namespace: &str,
        name: &str,
    ) -> Result<(), kube::Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let key = EventKey {
            namespace: namespace.to_string(),
            uid: ss.metadata.uid.clone().unwrap_or_default(),
            type_: event.type_,
            reason: event.reason,
            message: event.message.clone(),
        };
        let previous = {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.retain(|_, r| r.at.elapsed() < AGGREGATION_WINDOW);
            recent
                .get(&key)
                .map(|r| (r.name.clone(), r.count + 1, r.first))
        };
        if let Some((event_name, count, first)) = previous {
            let patch = serde_json::json!({
                "count": count,
                "lastTimestamp": Time(now),
            });
            match api
                .patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, event_name, count, first);
                    return Ok(());
                }
                // The Event expired (the API server's event TTL): start a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event_name = format!(
            "{name}.{:x}",
            now.as_nanosecond().max(0) as u128 + u128::from(rand::random::<u16>())
        );
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            involved_object: involved_object(ss),
            reason: Some(event.reason.to_string()),
            message: Some(event.message.clone()),
            type_: Some(event.type_.to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: self.host.clone(),
            ..Default::default()
        };
        api.create(&PostParams::default(), &ev).await?;
        self.remember(key, event_name, 1, now);
        Ok(())
    }

    fn remember(&self, key: EventKey, name: String, count: i32, first: Timestamp) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= CACHE_LIMIT {
            recent.clear();
        }
        recent.insert(
            key,
            Recent {
                name,
                count,
                first,
                at: Instant::now(),
            },
        );
    }
}
