//! The reconcile loop on the kube-rs runtime: watches, the thin applier around
//! [`planner::plan`], retries, events, status and metrics (docs/compatibility.md, “Reconciling”).
//!
//! One [`kube::runtime::Controller`] runs per watched scope (all namespaces, or one per listed
//! namespace, as Bitnami runs one informer set per namespace). Its triggers:
//! - SealedSecrets, filtered to spec changes (`metadata.generation`; status, label and
//!   annotation edits are ignored, R-09);
//! - Secrets (metadata only, never their data): a deleted Secret that the SealedSecret
//!   controlled or that carried `managed: "true"` is recreated unless `--skip-recreate`,
//!   and a change to such a Secret by someone else is reconciled at once, so a hand edit is
//!   restored (the controller's own writes are recognised by resourceVersion and skipped);
//! - a new key: the SealedSecrets that are not `Synced` are tried again.
//!
//! # Fairness
//!
//! Reconciles run `concurrency` at once, and every one that may decrypt first takes a permit of
//! the process-wide private-key work limit ([`crate::work::PrivateKeyWork`]), which the HTTP API
//! shares. While SealedSecrets of other namespaces are waiting, a namespace runs at most one
//! reconcile at a time (the others are put back for [`FAIR_SHARE_DELAY`]), so one tenant's
//! large or hostile objects cannot hold every worker; alone, a namespace may use them all.
//!
//! Deleted SealedSecrets are handled beside the controller: their `condition_info` series go,
//! and with `--old-gc-behavior` the Secret is deleted (only one the SealedSecret owned or
//! managed; otherwise garbage collection follows the ownerReference, R-11).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt as _, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kseal_crds::{SealedSecret, SealedSecretStatus, ANNOTATION_MANAGED};
use kube::api::{DeleteParams, PartialObjectMeta, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{predicates, Controller, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::events::EventRecorder;
use crate::keys::registry::KeyRegistry;
use crate::leader::Fence;
use crate::metrics::{Metrics, UnsealErrorReason};
use crate::planner::{self, EventSpec, Plan, PlanOptions, Write, CONDITION_SYNCED};
use crate::work::PrivateKeyWork;

/// How long a reconcile waits before it tries again when its namespace already has one running
/// and other namespaces are waiting (see the module docs).
pub const FAIR_SHARE_DELAY: Duration = Duration::from_millis(100);

/// Reconciles running at once for `permits` private-key work permits (one per CPU the process
/// may use, see [`PrivateKeyWork`]): eight per CPU, at least 8 and at most 128. Most of a
/// reconcile is waiting for the API server (read the Secret, write it, write the status; a
/// restart pass is nothing but one read and one HMAC); only the decryption holds a CPU, and it
/// waits for a permit, so more reconciles than CPUs keep the CPUs busy without running more
/// private-key work than there are CPUs.
pub fn concurrency_for(permits: usize) -> u16 {
    u16::try_from(permits.saturating_mul(8).clamp(8, 128)).unwrap_or(128)
}

/// Reconcile switches from the flags.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Planner switches (`--accept-deprecated-v1-data`, `--update-status`).
    pub plan: PlanOptions,
    /// `--old-gc-behavior`.
    pub old_gc_behavior: bool,
    /// `--skip-recreate`.
    pub skip_recreate: bool,
    /// `--max-unseal-retries`.
    pub max_retries: u32,
    /// `--label-selector`, for SealedSecrets and Secrets.
    pub label_selector: Option<String>,
    /// Reconciles running at once (each may decrypt on a blocking thread).
    pub concurrency: u16,
    /// The private-key work limit shared with the HTTP API.
    pub work: PrivateKeyWork,
    /// Checked before every write: a stale leader writes nothing (see [`Fence`]).
    pub fence: Fence,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            plan: PlanOptions::default(),
            old_gc_behavior: false,
            skip_recreate: false,
            max_retries: 5,
            label_selector: None,
            concurrency: 4,
            fence: Fence::always(),
            work: PrivateKeyWork::default(),
        }
    }
}

/// A failed reconcile (the error policy logs it and retries): which step failed, for which
/// SealedSecret (`namespace/name`; its Secret has the same name), and why. The cause is part of
/// the message, not a `source()`, so that it is printed once however the error is shown.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the Secret failed.
    #[error("GetSecret {namespace}/{name}: {cause}")]
    GetSecret {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's (and the Secret's) name.
        name: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// Reading the whole SealedSecret (the cache has no ciphertexts) failed.
    #[error("GetSealedSecret {namespace}/{name}: {cause}")]
    GetSealedSecret {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's name.
        name: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// The reconcile did not finish within its time (an API call without an answer).
    #[error("Timeout {namespace}/{name}: no answer within the reconcile's time")]
    Timeout {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's name.
        name: String,
    },
    /// Decrypting and planning did not finish (the blocking task panicked or was cancelled).
    #[error("Plan {namespace}/{name}: {cause}")]
    Plan {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's name.
        name: String,
        /// Why the task ended.
        cause: tokio::task::JoinError,
    },
    /// Creating or replacing the Secret failed with a retried [`planner::Failure::Write`] (the status and
    /// the event already say so).
    #[error("WriteSecret {namespace}/{name}: {cause}")]
    WriteSecret {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's (and the Secret's) name.
        name: String,
        /// What the API client returned.
        cause: kube::Error,
    },
    /// Writing the SealedSecret's status failed (other than a conflict or a deleted object,
    /// which their watch events resolve).
    #[error("WriteStatus {namespace}/{name}: {cause}")]
    WriteStatus {
        /// The namespace.
        namespace: String,
        /// The SealedSecret's name.
        name: String,
        /// What the API client returned.
        cause: kube::Error,
    },
}

/// The longest one reconcile may take (its API calls; decryption takes milliseconds).
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a watch request lasts before it is resumed (`timeoutSeconds`).
const WATCH_TIMEOUT_SECS: u32 = 60;

impl ReconcileError {
    /// Whether the API server may answer differently soon: it was unreachable, timed out,
    /// failed (5xx), asked to slow down (429), reported a conflicting writer (409) or refused
    /// (401, 403).
    pub fn is_transient(&self) -> bool {
        let cause = match self {
            ReconcileError::GetSecret { cause, .. }
            | ReconcileError::GetSealedSecret { cause, .. }
            | ReconcileError::WriteSecret { cause, .. }
            | ReconcileError::WriteStatus { cause, .. } => cause,
            ReconcileError::Plan { .. } => return false,
            ReconcileError::Timeout { .. } => return true,
        };
        // A refusal (401, 403) is retried too: right after an API server restart its RBAC
        // cache is not filled yet and refuses what it allows a moment later, and an operator who
        // fixes RBAC expects the controller to recover without a restart. Only answers about
        // the request itself (400, 404, 422) end the retries.
        match cause {
            kube::Error::Api(s) => !matches!(s.code, 400 | 404 | 422),
            _ => true,
        }
    }
}

/// Deleted uids remembered at most (about 4 MiB); past it the set starts afresh.
const DELETED_UIDS: usize = 65_536;

/// When a write held back by the leadership fence is tried again.
const FENCED_RETRY: Duration = Duration::from_secs(1);

/// The longest pause between two attempts after a transient API failure.
const TRANSIENT_RETRY_CAP: Duration = Duration::from_secs(30);

type Key = (String, String);

fn key_of(ss: &SealedSecret) -> Key {
    (
        ss.metadata.namespace.clone().unwrap_or_default(),
        ss.metadata.name.clone().unwrap_or_default(),
    )
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    keys: watch::Receiver<Arc<KeyRegistry>>,
    metrics: Arc<Metrics>,
    events: EventRecorder,
    opts: ReconcileOptions,
    /// Failed attempts per SealedSecret since its last success (client-go's NumRequeues).
    retries: Mutex<HashMap<Key, u32>>,
    /// Transient API failures in a row per SealedSecret (never given up; see `error_policy`).
    transient: Mutex<HashMap<Key, u32>>,
    /// uids of deleted SealedSecrets, so that a reconcile still running when the deletion
    /// arrives does not put their condition metrics back (at most [`DELETED_UIDS`]).
    deleted_uids: Mutex<HashSet<String>>,
    /// resourceVersion of the Secret this controller last wrote, per Secret, so that the
    /// watch event of its own write does not trigger another pass.
    written: Mutex<HashMap<Key, String>>,
    /// SealedSecrets triggered and not yet reconciled (the work-queue depth metric), and how
    /// many of them each namespace has.
    pending: Mutex<Pending>,
    /// Reconciles running, per namespace (fairness, see the module docs).
    running: Mutex<HashMap<String, usize>>,
    /// The status this controller last wrote, per SealedSecret (with its uid): the watch cache
    /// may not have it yet when the next pass starts, and only this controller writes it.
    statuses: Mutex<HashMap<Key, (String, SealedSecretStatus)>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    /// The shared state of the reconcilers.
    pub fn new(
        client: Client,
        keys: watch::Receiver<Arc<KeyRegistry>>,
        metrics: Arc<Metrics>,
        events: EventRecorder,
        opts: ReconcileOptions,
    ) -> Self {
        Context {
            client,
            keys,
            metrics,
            events,
            opts,
            retries: Mutex::new(HashMap::new()),
            transient: Mutex::new(HashMap::new()),
            deleted_uids: Mutex::new(HashSet::new()),
            written: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
            running: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
        }
    }

    fn mark_pending(&self, key: Key) {
        let mut p = lock(&self.pending);
        p.insert(key);
        self.metrics.set_workqueue_depth(p.keys.len());
    }

    fn unmark_pending(&self, key: &Key) {
        let mut p = lock(&self.pending);
        p.remove(key);
        self.metrics.set_workqueue_depth(p.keys.len());
    }

    /// Starts a reconcile in `ns` unless that would take more than its fair share: `None`
    /// means "try again shortly". The returned guard counts it as running until it drops.
    fn start(self: &Arc<Self>, ns: &str) -> Option<Running> {
        let mut running = lock(&self.running);
        let here = running.get(ns).copied().unwrap_or(0);
        if here > 0 && lock(&self.pending).others_wait(ns) {
            return None;
        }
        running.insert(ns.to_string(), here + 1);
        Some(Running {
            ctx: self.clone(),
            ns: ns.to_string(),
        })
    }

    /// Counts a failure and returns when to retry, or `None` once `--max-unseal-retries` is
    /// spent (the counter then starts again, like client-go's Forget).
    fn retry_after(&self, key: &Key) -> Option<Duration> {
        let mut r = lock(&self.retries);
        let n = r.entry(key.clone()).or_insert(0);
        if *n >= self.opts.max_retries {
            r.remove(key);
            return None;
        }
        let delay = backoff(*n);
        *n += 1;
        Some(delay)
    }

    /// When to retry after a transient API failure: the same backoff, capped at
    /// [`TRANSIENT_RETRY_CAP`], and never given up.
    fn transient_retry_after(&self, key: &Key) -> Duration {
        let mut r = lock(&self.transient);
        let n = r.entry(key.clone()).or_insert(0);
        let delay = backoff(*n).min(TRANSIENT_RETRY_CAP);
        *n = n.saturating_add(1);
        delay
    }

    /// The condition metrics of `ss`, unless it was deleted meanwhile (under the lock the
    /// deletion takes, so the two cannot interleave).
    fn observe_conditions(&self, ss: &SealedSecret) {
        let deleted = lock(&self.deleted_uids);
        if ss
            .metadata
            .uid
            .as_ref()
            .is_some_and(|u| deleted.contains(u))
        {
            let (ns, name) = key_of(ss);
            self.metrics.remove_conditions(&ns, &name);
        } else {
            self.metrics.observe_conditions(ss);
        }
    }

    /// A SealedSecret was deleted: its condition metrics go, now and for reconciles of it
    /// still running.
    fn forget_conditions(&self, ss: &SealedSecret) {
        let mut deleted = lock(&self.deleted_uids);
        if deleted.len() >= DELETED_UIDS {
            deleted.clear();
        }
        if let Some(uid) = &ss.metadata.uid {
            deleted.insert(uid.clone());
        }
        let (ns, name) = key_of(ss);
        self.metrics.remove_conditions(&ns, &name);
    }

    /// Drops the status this controller wrote for `ss` once the watch cache has it (the entry
    /// only bridges the time until then; see `statuses`).
    fn forget_status_seen(&self, ss: &SealedSecret) {
        let key = key_of(ss);
        let mut statuses = lock(&self.statuses);
        if statuses
            .get(&key)
            .is_some_and(|(_, st)| ss.status.as_ref() == Some(st))
        {
            statuses.remove(&key);
        }
    }

    fn succeeded(&self, key: &Key) {
        lock(&self.retries).remove(key);
        lock(&self.transient).remove(key);
    }
}

/// The pending SealedSecrets, and a count per namespace.
#[derive(Debug, Default)]
struct Pending {
    keys: HashSet<Key>,
    per_namespace: HashMap<String, usize>,
}

impl Pending {
    fn insert(&mut self, key: Key) {
        let ns = key.0.clone();
        if self.keys.insert(key) {
            *self.per_namespace.entry(ns).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, key: &Key) {
        if self.keys.remove(key) {
            if let Some(n) = self.per_namespace.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.per_namespace.remove(&key.0);
                }
            }
        }
    }

    /// Whether a namespace other than `ns` has SealedSecrets waiting.
    fn others_wait(&self, ns: &str) -> bool {
        self.per_namespace.len() > usize::from(self.per_namespace.contains_key(ns))
    }
}

/// One running reconcile of a namespace (see [`Context::start`]).
struct Running {
    ctx: Arc<Context>,
    ns: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = lock(&self.ctx.running);
        if let Some(n) = running.get_mut(&self.ns) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.ns);
            }
        }
    }
}

/// Per-item exponential backoff: 250 ms, 500 ms, 1 s, … capped at 5 minutes. (client-go starts
/// at 5 ms, which spends all retries within a fraction of a second; kseal's retries give a
/// concurrent fix a chance, and watch events still trigger a pass at once.)
pub fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(20));
    Duration::from_millis(ms.min(300_000))
}

/// Whether a change to this Secret should trigger its SealedSecret, and which one.
///
/// `deleted`: a deletion recreates only an owned or `managed` Secret (Bitnami). A change
/// re-checks an owned, `managed` or `patch` Secret (kseal: restores hand edits at once).
pub fn secret_trigger(
    secret: &PartialObjectMeta<Secret>,
    deleted: bool,
) -> Option<ObjectRef<SealedSecret>> {
    let ns = secret.metadata.namespace.as_deref()?;
    let owner = secret.metadata.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true)
            && o.kind == kseal_crds::KIND
            && o.api_version == kseal_crds::API_VERSION
    });
    if let Some(o) = owner {
        return Some(ObjectRef::new(&o.name).within(ns));
    }
    let annotations = secret.metadata.annotations.as_ref();
    let flag = |k: &str| {
        annotations
            .and_then(|a| a.get(k))
            .is_some_and(|v| v == "true")
    };
    let relevant = flag(ANNOTATION_MANAGED) || (!deleted && flag(kseal_crds::ANNOTATION_PATCH));
    let name = secret.metadata.name.as_deref()?;
    relevant.then(|| ObjectRef::new(name).within(ns))
}

/// The SealedSecrets whose Secret a (re)list of Secrets did not find although it should exist:
/// synced, and owned by its SealedSecret (so a deletion of it would have triggered a
/// reconcile). A Secret deleted between the SealedSecrets' first pass and the start of the
/// Secret watch, or while the watch re-lists after a `410 Gone`, is reported by no event;
/// without this it would stay deleted until the SealedSecret changes.
pub fn missed_deletions(
    sealed: &[Arc<SealedSecret>],
    listed: &HashSet<Key>,
) -> Vec<ObjectRef<SealedSecret>> {
    sealed
        .iter()
        .filter(|ss| is_synced(ss) && owns_its_secret(ss) && !listed.contains(&key_of(ss)))
        .map(|ss| ObjectRef::from(&**ss))
        .collect()
}

/// False when the template asks for no ownerReference (the Secret is then not the
/// SealedSecret's to recreate after a deletion).
fn owns_its_secret(ss: &SealedSecret) -> bool {
    ss.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(kseal_crds::ANNOTATION_SKIP_SET_OWNER_REFERENCES))
        .is_none_or(|v| v != "true")
}

/// [`reconcile`] within [`RECONCILE_TIMEOUT`]: a request that never gets its answer (a
/// connection stuck across an API server restart) becomes a transient failure, retried.
async fn reconcile_bounded(
    ss: Arc<SealedSecret>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let (namespace, name) = key_of(&ss);
    match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile(ss, ctx)).await {
        Ok(r) => r,
        Err(_) => Err(ReconcileError::Timeout { namespace, name }),
    }
}

async fn reconcile(ss: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = key_of(&ss);
    // Fairness: while other namespaces wait, one reconcile per namespace at a time.
    let Some(_running) = ctx.start(&key.0) else {
        ctx.mark_pending(key);
        return Ok(Action::requeue(FAIR_SHARE_DELAY));
    };
    ctx.unmark_pending(&key);
    ctx.metrics.unseal_request();
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);

    let existing = match secrets.get_opt(name).await {
        Ok(s) => s,
        Err(cause) => {
            ctx.metrics.unseal_error(UnsealErrorReason::Update, ns);
            ctx.events
                .publish(
                    &ss,
                    &EventSpec {
                        type_: "Warning",
                        reason: "ErrUpdateFailed",
                        message: planner::api_message(&cause),
                    },
                )
                .await;
            return Err(ReconcileError::GetSecret {
                namespace: ns.to_string(),
                name: name.to_string(),
                cause,
            });
        }
    };

    let registry = ctx.keys.borrow().clone();
    let plan_opts = ctx.opts.plan.clone();
    let mut ss = with_latest_status(&ctx, ss);
    // First from the cache, which has no ciphertexts: the restart path (the Secret's ownership
    // mark verifies) and refusals need none, and cost one HMAC.
    let mut existing = existing;
    let quick = cached_source_digest(&ss).and_then(|digest| {
        planner::plan_without_decrypting(
            &ss,
            digest,
            existing.as_ref(),
            registry.keyring(),
            Timestamp::now(),
            &plan_opts,
        )
    });
    let plan = match quick {
        Some(plan) => {
            if let Some(e) = existing.as_mut() {
                kseal_sealing::scrub::secret(e);
            }
            plan
        }
        None => {
            if cached_source_digest(&ss).is_some() {
                // The whole SealedSecret, ciphertexts included.
                let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), ns);
                match api.get_opt(name).await {
                    Ok(Some(mut whole)) => {
                        trim_metadata(&mut whole);
                        ss = with_latest_status(&ctx, Arc::new(whole));
                    }
                    // Deleted meanwhile: its watch event follows.
                    Ok(None) => return Ok(Action::await_change()),
                    Err(cause) => {
                        return Err(ReconcileError::GetSealedSecret {
                            namespace: ns.to_string(),
                            name: name.to_string(),
                            cause,
                        })
                    }
                }
            }
            decrypt_and_plan(&ctx, &ss, existing, registry, &plan_opts, ns, name).await?
        }
    };
    let ss = ss;

    let Plan {
        write,
        mut failure,
        mut status,
        mut event,
        keys_used,
    } = plan;
    let wrote = !matches!(write, Write::Nothing);
    tracing::debug!(
        namespace = ns,
        name,
        decrypted = !keys_used.is_empty(),
        write = ?write,
        "planned"
    );

    // A leader frozen past its Lease must not write what it planned before the freeze.
    // Not dropped either: once the Lease is renewed the write goes out, and if another
    // replica took it over, this term ends and the new leader does the work.
    if (wrote || status.is_some()) && !ctx.opts.fence.holds() {
        tracing::info!(
            namespace = ns,
            name,
            "no longer sure to lead: not writing yet"
        );
        ctx.mark_pending(key);
        return Ok(Action::requeue(FENCED_RETRY));
    }

    // The one write. Every copy of the Secret's data is scrubbed once it has been sent.
    let write_result = match write {
        Write::Nothing => Ok(None),
        Write::Create(mut secret) => {
            let r = secrets.create(&PostParams::default(), &secret).await;
            kseal_sealing::scrub::secret(&mut secret);
            r.map(Some)
        }
        Write::Update(mut secret) => {
            let r = secrets.replace(name, &PostParams::default(), &secret).await;
            kseal_sealing::scrub::secret(&mut secret);
            r.map(Some)
        }
    };
    let mut write_error = None;
    match write_result {
        Ok(Some(mut written)) => {
            kseal_sealing::scrub::secret(&mut written);
            if let Some(rv) = written.metadata.resource_version.take() {
                lock(&ctx.written).insert(key.clone(), rv);
            }
            tracing::debug!(namespace = ns, name, keys = ?keys_used, "Secret written");
            crate::failpoint::hit(crate::failpoint::AFTER_SECRET_WRITE);
        }
        Ok(None) => {}
        Err(e) => {
            // The API refused the write: the planner decides what to report instead.
            let refused = planner::plan_write_failure(&ss, &e, Timestamp::now(), &plan_opts);
            failure = refused.failure;
            status = refused.status;
            event = refused.event;
            write_error = Some(e);
        }
    }
    if let Some((f, _)) = &failure {
        ctx.metrics.unseal_error((*f).into(), ns);
    }

    // The status, through the status subresource (Bitnami's verb: update).
    let status_changed = status.is_some();
    let mut observed = (*ss).clone();
    trim_metadata(&mut observed);
    if let Some(status) = status {
        observed.status = Some(status);
        let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), ns);
        match api
            .replace_status(name, &PostParams::default(), &observed)
            .await
        {
            Ok(_) => {
                if let (Some(uid), Some(st)) = (&observed.metadata.uid, &observed.status) {
                    lock(&ctx.statuses).insert(key.clone(), (uid.clone(), st.clone()));
                }
            }
            Err(cause) => {
                ctx.metrics.unseal_error(UnsealErrorReason::Status, ns);
                if !matches!(&cause, kube::Error::Api(s) if s.code == 409 || s.code == 404) {
                    return Err(ReconcileError::WriteStatus {
                        namespace: ns.to_string(),
                        name: name.to_string(),
                        cause,
                    });
                }
                // A conflict means the SealedSecret changed: its watch event brings a new pass.
                tracing::warn!(namespace = ns, name, error = %cause, "cannot update the status");
            }
        }
    }
    ctx.observe_conditions(&observed);

    // Events: every failure, and a success that changed something (kseal does not repeat
    // "Unsealed" for passes that found everything in place, e.g. at every restart).
    if failure.is_some() || wrote || status_changed {
        ctx.events.publish(&ss, &event).await;
    }

    match failure {
        None => {
            ctx.succeeded(&key);
            Ok(Action::await_change())
        }
        Some((f, _)) if f.retry() => match write_error {
            // Through the error policy, which logs the failed write and retries.
            Some(cause) => Err(ReconcileError::WriteSecret {
                namespace: ns.to_string(),
                name: name.to_string(),
                cause,
            }),
            None => match ctx.retry_after(&key) {
                Some(delay) => {
                    ctx.mark_pending(key);
                    Ok(Action::requeue(delay))
                }
                None => Ok(Action::await_change()),
            },
        },
        Some(_) => Ok(Action::await_change()),
    }
}

/// Plans with decryption: CPU work (an RSA private operation per item), off the async workers
/// and within the private-key work limit shared with the HTTP API.
async fn decrypt_and_plan(
    ctx: &Context,
    ss: &Arc<SealedSecret>,
    existing: Option<Secret>,
    registry: Arc<KeyRegistry>,
    plan_opts: &PlanOptions,
    ns: &str,
    name: &str,
) -> Result<Plan, ReconcileError> {
    let ss_for_plan = ss.clone();
    let for_plan = plan_opts.clone();
    let permit = ctx.opts.work.acquire().await;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mark_with = registry.newest().map(|k| k.key.clone());
        let mut existing = existing;
        let plan = planner::plan(
            &ss_for_plan,
            existing.as_ref(),
            registry.keyring(),
            mark_with.as_deref(),
            Timestamp::now(),
            for_plan,
        );
        // The Secret that was read holds plaintext too.
        if let Some(e) = existing.as_mut() {
            kseal_sealing::scrub::secret(e);
        }
        plan
    })
    .await
    .map_err(|cause| ReconcileError::Plan {
        namespace: ns.to_string(),
        name: name.to_string(),
        cause,
    })
}

/// The SealedSecret with the status this controller last wrote, when the watch cache has not
/// caught up with it yet (same uid, and the cached status is at least as recent).
fn with_latest_status(ctx: &Context, ss: Arc<SealedSecret>) -> Arc<SealedSecret> {
    let cached = lock(&ctx.statuses).get(&key_of(&ss)).cloned();
    let Some((uid, status)) = cached else {
        return ss;
    };
    let stored_gen = ss.status.as_ref().and_then(|s| s.observed_generation);
    let stale = ss.metadata.uid.as_deref() == Some(uid.as_str())
        && status.observed_generation >= stored_gen
        && ss.status.as_ref() != Some(&status);
    if !stale {
        return ss;
    }
    let mut copy = (*ss).clone();
    copy.status = Some(status);
    Arc::new(copy)
}

fn error_policy(ss: Arc<SealedSecret>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = key_of(&ss);
    tracing::warn!(namespace = %key.0, name = %key.1, error = %err, "reconcile failed");
    // An API server that is down, overloaded or racing another writer is no reason to give
    // up: retried until it answers, without spending --max-unseal-retries (which Bitnami
    // spends on these too, leaving the object alone until it next changes).
    if err.is_transient() {
        ctx.mark_pending(key.clone());
        return Action::requeue(ctx.transient_retry_after(&key));
    }
    match ctx.retry_after(&key) {
        Some(delay) => {
            ctx.mark_pending(key);
            Action::requeue(delay)
        }
        None => Action::await_change(),
    }
}

/// Handles a deleted SealedSecret (see the module docs).
async fn deleted(ss: SealedSecret, ctx: Arc<Context>) {
    let (ns, name) = key_of(&ss);
    ctx.metrics.unseal_request();
    ctx.forget_conditions(&ss);
    ctx.unmark_pending(&(ns.clone(), name.clone()));
    lock(&ctx.retries).remove(&(ns.clone(), name.clone()));
    lock(&ctx.transient).remove(&(ns.clone(), name.clone()));
    lock(&ctx.written).remove(&(ns.clone(), name.clone()));
    lock(&ctx.statuses).remove(&(ns.clone(), name.clone()));
    if !ctx.opts.old_gc_behavior {
        return;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let current = match secrets.get_opt(&name).await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot read the Secret of a deleted SealedSecret");
            return;
        }
    };
    let managed = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_MANAGED))
        .is_some_and(|v| v == "true");
    if !planner::is_controlled_by(&current, &ss) && !managed {
        tracing::info!(namespace = %ns, name = %name, "SealedSecret deleted; its Secret is not owned by it and stays");
        return;
    }
    match secrets.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(namespace = %ns, name = %name, "deleted the Secret of a deleted SealedSecret")
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot delete the Secret of a deleted SealedSecret")
        }
    }
}

/// Runs one controller over `namespace` (`None`: all namespaces) until `stop` is cancelled.
pub async fn run_scope(ctx: Arc<Context>, namespace: Option<String>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let (ss_api, secret_api): (Api<SealedSecret>, Api<PartialObjectMeta<Secret>>) = match &namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    // Watches end and resume (from their resourceVersion, no relist) at least this often, so
    // that a watch stuck on a connection the API server no longer serves (seen after its
    // restart) recovers within about a minute instead of the default five.
    let mut wc = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS);
    if let Some(sel) = &ctx.opts.label_selector {
        wc = wc.labels(sel);
    }
    let scope = namespace.as_deref().unwrap_or("all namespaces").to_string();
    tracing::info!(scope = %scope, "watching SealedSecrets");

    let (reader, writer) = reflector::store();
    let (deleted_tx, mut deleted_rx) = tokio::sync::mpsc::unbounded_channel::<SealedSecret>();
    let pending_ctx = ctx.clone();
    let mut lists = 0u64;
    let list_scope = scope.clone();
    let list_metrics = ctx.metrics.clone();
    let list_namespace = namespace.clone();
    let mut listed: HashSet<Key> = HashSet::new();
    let status_ctx = ctx.clone();
    let ss_stream = watcher::watcher(ss_api, wc.clone())
        .default_backoff()
        .modify(trim_for_cache)
        .map_ok(move |ev| {
            match &ev {
                Event::Delete(ss) => {
                    let _ = deleted_tx.send(ss.clone());
                }
                // A watch that cannot resume (410 Gone: its resourceVersion was compacted)
                // lists again; objects already Synced cost no decryption (docs/controller.md).
                Event::Init => {
                    lists += 1;
                    listed.clear();
                    if lists > 1 {
                        tracing::info!(scope = %list_scope, "listing SealedSecrets again (the watch could not resume)");
                    }
                }
                Event::InitApply(ss) => {
                    listed.insert(key_of(ss));
                    status_ctx.forget_status_seen(ss);
                }
                Event::Apply(ss) => status_ctx.forget_status_seen(ss),
                // Deletions missed while no watch was open leave no delete event: their
                // metrics go here.
                Event::InitDone => {
                    list_metrics.retain_conditions(list_namespace.as_deref(), &listed);
                    listed.clear();
                }
            }
            ev
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .inspect_ok(move |ss: &SealedSecret| pending_ctx.mark_pending(key_of(ss)));

    let mut controller = Controller::for_stream(ss_stream, reader.clone())
        .with_config(ControllerConfig::default().concurrency(ctx.opts.concurrency.max(1)));

    // Secrets: metadata only.
    let secret_ctx = ctx.clone();
    let skip_recreate = ctx.opts.skip_recreate;
    // The Secrets of each (re)list, to find the deletions it hides (see `missed_deletions`).
    let listed: Arc<Mutex<HashSet<Key>>> = Arc::default();
    let list_reader = reader.clone();
    let secret_stream = watcher::watcher(secret_api, wc)
        .default_backoff()
        .try_filter_map(move |ev| {
            let ctx = secret_ctx.clone();
            let listed = listed.clone();
            let list_reader = list_reader.clone();
            async move {
                let (obj, deleted) = match ev {
                    Event::Apply(o) => (o, false),
                    Event::Delete(o) => (o, true),
                    Event::Init => {
                        lock(&listed).clear();
                        return Ok(None);
                    }
                    Event::InitApply(o) => {
                        lock(&listed).insert((
                            o.metadata.namespace.clone().unwrap_or_default(),
                            o.metadata.name.clone().unwrap_or_default(),
                        ));
                        return Ok(None);
                    }
                    Event::InitDone => {
                        let present = std::mem::take(&mut *lock(&listed));
                        if skip_recreate {
                            return Ok(None);
                        }
                        let missed = missed_deletions(&list_reader.state(), &present);
                        for r in &missed {
                            ctx.mark_pending((
                                r.namespace.clone().unwrap_or_default(),
                                r.name.clone(),
                            ));
                        }
                        return Ok(Some(missed));
                    }
                };
                if deleted && skip_recreate {
                    return Ok(None);
                }
                let key = (
                    obj.metadata.namespace.clone().unwrap_or_default(),
                    obj.metadata.name.clone().unwrap_or_default(),
                );
                if !deleted {
                    // The event of our own write: no pass, and the entry is not needed any more.
                    let mut written = lock(&ctx.written);
                    if written
                        .get(&key)
                        .is_some_and(|rv| obj.metadata.resource_version.as_ref() == Some(rv))
                    {
                        written.remove(&key);
                        return Ok(None);
                    }
                }
                Ok(secret_trigger(&obj, deleted).map(|r| {
                    ctx.mark_pending((r.namespace.clone().unwrap_or_default(), r.name.clone()));
                    vec![r]
                }))
            }
        });
    controller = controller.reconcile_on(
        secret_stream
            .filter_map(|r| async move { r.ok() })
            .flat_map(futures::stream::iter),
    );

    // New keys: retry what is not Synced.
    let mut keys = ctx.keys.clone();
    let key_reader = reader.clone();
    let key_ctx = ctx.clone();
    let key_trigger = async_stream(move |tx| async move {
        keys.mark_unchanged();
        while keys.changed().await.is_ok() {
            for ss in key_reader.state() {
                if !is_synced(&ss) {
                    key_ctx.mark_pending(key_of(&ss));
                    if tx.send(ObjectRef::from(&*ss)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    controller = controller.reconcile_on(key_trigger);

    let del_ctx = ctx.clone();
    let del_stop = stop.clone();
    let deletions = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = del_stop.cancelled() => return,
                next = deleted_rx.recv() => match next {
                    Some(ss) => deleted(ss, del_ctx.clone()).await,
                    None => return,
                },
            }
        }
    });

    let shutdown = stop.clone();
    let run = controller
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile_bounded, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                match e {
                    kube::runtime::controller::Error::ObjectNotFound(_) => {}
                    other => tracing::debug!(error = %other, "controller event"),
                }
            }
        });
    // kube-runtime's graceful shutdown cuts the watch off, then waits for the cache to be
    // ready before it lets the queue drain: stopped before the first list completed, it would
    // wait forever. Nothing can be running then, so stop at once; otherwise give in-flight
    // reconciles a bounded time (crate::shutdown).
    let bounded = async {
        stop.cancelled().await;
        if reader.wait_until_ready().now_or_never().is_none() {
            return "before the first list completed";
        }
        tokio::time::sleep(crate::shutdown::SHUTDOWN_DRAIN).await;
        "with reconciles still running"
    };
    tokio::select! {
        () = run => {}
        why = bounded => tracing::info!(scope = %scope, "stopping {why}"),
    }
    deletions.abort();
    tracing::info!(scope = %scope, "stopped watching SealedSecrets");
}

/// What a SealedSecret keeps in the watch cache. Dropped: `metadata.managedFields` (one entry
/// per writer, listing every field it set: more than half of an object as the API server sends
/// it), kubectl's last-applied annotation (a second copy of the whole object when it was
/// `kubectl apply`-ed), and the ciphertexts (`spec.encryptedData`, `spec.data`: about 700
/// bytes per RSA-4096 item), which only a decryption reads. In their place the cache keeps
/// [`planner::source_digest`] of the whole object (in [`CACHED_SOURCE_DIGEST`]), which is all the
/// restart path needs: a Secret whose ownership mark verifies against it is left alone, and a
/// reconcile that must decrypt reads the whole SealedSecret from the API first. Status writes
/// go to the status subresource, which ignores metadata and spec, so nothing is lost on the way
/// back. Trimmed for every watch event, so an annotation of that name set by a user is
/// overwritten before anything reads it.
pub fn trim_for_cache(ss: &mut SealedSecret) {
    trim_metadata(ss);
    let digest = planner::source_digest(ss);
    ss.spec.encrypted_data = Default::default();
    ss.spec.data = None;
    ss.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(CACHED_SOURCE_DIGEST.to_string(), digest);
}

/// Drops `metadata.managedFields` and kubectl's last-applied annotation (see [`trim_for_cache`]).
fn trim_metadata(ss: &mut SealedSecret) {
    ss.metadata.managed_fields = None;
    if let Some(a) = ss.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        a.remove(CACHED_SOURCE_DIGEST);
        if a.is_empty() {
            ss.metadata.annotations = None;
        }
    }
}

/// The source digest [`trim_for_cache`] left in a cached SealedSecret (`None`: the object is
/// whole).
fn cached_source_digest(ss: &SealedSecret) -> Option<&str> {
    ss.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CACHED_SOURCE_DIGEST))
        .map(String::as_str)
}

/// Where the watch cache keeps a SealedSecret's source digest (only in memory: never written).
pub const CACHED_SOURCE_DIGEST: &str = "kseal.internal/cached-source-digest";

/// kubectl's `kubectl.kubernetes.io/last-applied-configuration` annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn is_synced(ss: &SealedSecret) -> bool {
    ss.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_SYNCED))
        .is_some_and(|c| c.status == "True")
}

/// A stream fed by a task: `f` gets the sending half.
fn async_stream<T, F, Fut>(f: F) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(f(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use std::collections::BTreeMap;

    fn meta(
        annotations: &[(&str, &str)],
        owner: Option<(&str, &str)>,
    ) -> PartialObjectMeta<Secret> {
        PartialObjectMeta::<Secret> {
            metadata: ObjectMeta {
                name: Some("s".into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                owner_references: owner.map(|(kind, name)| {
                    vec![OwnerReference {
                        api_version: if kind == "SealedSecret" {
                            "bitnami.com/v1alpha1".into()
                        } else {
                            "apps/v1".into()
                        },
                        kind: kind.into(),
                        name: name.into(),
                        uid: "u".into(),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn secret_triggers_follow_ownership_and_annotations() {
        let owned = meta(&[], Some(("SealedSecret", "other")));
        assert_eq!(
            secret_trigger(&owned, true),
            Some(ObjectRef::new("other").within("ns"))
        );
        let managed = meta(&[(ANNOTATION_MANAGED, "true")], None);
        assert_eq!(
            secret_trigger(&managed, true),
            Some(ObjectRef::new("s").within("ns"))
        );
        let patch = meta(&[(kseal_crds::ANNOTATION_PATCH, "true")], None);
        assert_eq!(secret_trigger(&patch, true), None, "IT-12: not recreated");
        assert!(
            secret_trigger(&patch, false).is_some(),
            "edits are re-merged"
        );
        let plain = meta(&[], None);
        assert_eq!(secret_trigger(&plain, true), None, "IT-11");
        assert_eq!(secret_trigger(&plain, false), None);
        let foreign = meta(&[], Some(("Deployment", "d")));
        assert_eq!(secret_trigger(&foreign, true), None);
    }

    #[test]
    fn a_relist_finds_the_deletions_no_event_reported() {
        let ss = |name: &str, synced: bool, skip_owner: bool| {
            let mut ss: SealedSecret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"encryptedData": {}},
                "status": {"conditions": [{"type": "Synced",
                    "status": if synced { "True" } else { "False" }}]}
            }))
            .unwrap();
            if skip_owner {
                ss.spec.template.metadata = Some(ObjectMeta {
                    annotations: Some(BTreeMap::from([(
                        kseal_crds::ANNOTATION_SKIP_SET_OWNER_REFERENCES.to_string(),
                        "true".to_string(),
                    )])),
                    ..Default::default()
                });
            }
            Arc::new(ss)
        };
        let sealed = [
            ss("present", true, false),
            ss("deleted", true, false),
            ss("never-synced", false, false),
            ss("not-owned", true, true),
        ];
        let listed = HashSet::from([("ns".to_string(), "present".to_string())]);
        assert_eq!(
            missed_deletions(&sealed, &listed),
            vec![ObjectRef::new("deleted").within("ns")],
            "only a synced SealedSecret that owns its Secret, whose Secret is gone"
        );
    }

    #[test]
    fn concurrency_follows_the_cpus() {
        assert_eq!(concurrency_for(1), 8);
        assert_eq!(concurrency_for(2), 16);
        assert_eq!(concurrency_for(1000), 128);
    }

    #[test]
    fn the_cache_drops_what_reconcile_never_reads() {
        let mut ss: SealedSecret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns", "uid": "u",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "keep": "me",
                    "kseal.internal/cached-source-digest": "forged"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
            "spec": {"encryptedData": {"a": "b"}, "template": {"type": "Opaque"}}
        }))
        .unwrap();
        let mut whole = ss.clone();
        trim_metadata(&mut whole);
        let digest = planner::source_digest(&whole);
        trim_for_cache(&mut ss);
        assert_eq!(ss.metadata.managed_fields, None);
        assert!(ss.spec.encrypted_data.is_empty());
        assert_eq!(ss.spec.template, whole.spec.template);
        assert_eq!(cached_source_digest(&ss), Some(digest.as_str()));
        assert_eq!(
            ss.metadata.annotations.as_ref().unwrap().len(),
            2,
            "keep + digest"
        );
        assert_eq!(
            whole.metadata.annotations.as_ref().unwrap().len(),
            1,
            "keep"
        );
        // What goes back to the API (the status write) carries no cache annotation.
        trim_metadata(&mut ss);
        assert_eq!(cached_source_digest(&ss), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }
}
