//! The fault tests' workload and end checks (tests/tests/e2e/faults.rs; docs/testing.md,
//! "Faults").
//!
//! A [`Workload`] keeps creating, updating and deleting SealedSecrets (one sealed item each,
//! strict scope, a random canary value) from a few concurrent writers while a test injects a
//! fault. Every operation is retried until the API server accepts it, so a fault never changes
//! what the workload wants, only when it gets it. [`converge`] then checks the cluster against
//! what the workload last wrote: every Secret present with the value of its SealedSecret's
//! latest edit and owned by it, every deleted SealedSecret's Secret gone, every SealedSecret
//! `Synced` at its latest generation. [`Unmanaged`] are Secrets kseal must never touch (plain
//! ones, and ones a SealedSecret of the same name claims without owning them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kseal_crds::SealedSecret;
use kseal_crypto::Certificate;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::task::JoinHandle;

use crate::controller::{seal_item, secret_data, synced_condition, KEY_LABEL_SELECTOR};

/// Every value the workload seals starts with this: no log line may contain it.
pub const CANARY: &str = "KSEAL-FAULT-CANARY-";

/// How much the workload does.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// SealedSecrets created.
    pub creates: usize,
    /// Edits of a live SealedSecret (a new value).
    pub updates: usize,
    /// Deletions of a live SealedSecret.
    pub deletes: usize,
    /// Concurrent writers, each with its own objects.
    pub writers: usize,
    /// Pause between two operations of one writer.
    pub pace: Duration,
    /// Seed of the choices and values.
    pub seed: u64,
    /// Names are `<prefix><writer>-<n>`.
    pub prefix: String,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            creates: 1000,
            updates: 300,
            deletes: 200,
            writers: 4,
            pace: Duration::from_millis(10),
            seed: 1,
            prefix: "w".to_owned(),
        }
    }
}

impl WorkloadSpec {
    /// Operations in all.
    pub fn total(&self) -> usize {
        self.creates + self.updates + self.deletes
    }
}

/// What the workload last wrote.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    /// Live SealedSecret name → the value its latest edit sealed.
    pub live: BTreeMap<String, String>,
    /// SealedSecrets deleted (their Secrets must go).
    pub deleted: BTreeSet<String>,
    /// Operations that needed a decryption (creates and updates).
    pub sealed_writes: usize,
    /// Operations in all.
    pub operations: usize,
    /// API calls that failed and were retried.
    pub retries: usize,
}

impl Expected {
    /// Distinct SealedSecrets the workload touched.
    pub fn objects(&self) -> usize {
        self.live.len() + self.deleted.len()
    }
}

/// A running workload; [`Workload::finish`] waits for it.
#[derive(Debug)]
pub struct Workload {
    writers: Vec<JoinHandle<Result<Expected>>>,
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    total: usize,
}

impl Workload {
    /// Starts `spec` in `namespace`, sealing for `cert`.
    pub fn start(client: Client, namespace: &str, cert: Certificate, spec: WorkloadSpec) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let share = |n: usize, i: usize| n / spec.writers + usize::from(i < n % spec.writers);
        let writers = (0..spec.writers)
            .map(|i| {
                let writer = Writer {
                    api: Api::namespaced(client.clone(), namespace),
                    namespace: namespace.to_owned(),
                    cert: cert.clone(),
                    prefix: format!("{}{i}-", spec.prefix),
                    rng: StdRng::seed_from_u64(spec.seed.wrapping_mul(1000).wrapping_add(i as u64)),
                    creates: share(spec.creates, i),
                    updates: share(spec.updates, i),
                    deletes: share(spec.deletes, i),
                    pace: spec.pace,
                    done: done.clone(),
                    stop: stop.clone(),
                    state: Expected::default(),
                    next: 0,
                };
                tokio::spawn(writer.run())
            })
            .collect();
        Workload {
            writers,
            done,
            stop,
            total: spec.total(),
        }
    }

    /// Operations completed so far.
    pub fn progress(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits until at least `fraction` of the operations are done.
    pub async fn wait_progress(&self, fraction: f64) {
        let want = (self.total as f64 * fraction) as usize;
        while self.progress() < want && !self.writers.iter().all(|w| w.is_finished()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether every writer has ended.
    pub fn is_done(&self) -> bool {
        self.writers.iter().all(|w| w.is_finished())
    }

    /// Waits for every operation to be accepted; what the workload wrote.
    pub async fn finish(self) -> Result<Expected> {
        let mut all = Expected::default();
        for w in self.writers {
            let e = w.await.context("a workload writer panicked")??;
            all.live.extend(e.live);
            all.deleted.extend(e.deleted);
            all.sealed_writes += e.sealed_writes;
            all.operations += e.operations;
            all.retries += e.retries;
        }
        Ok(all)
    }

    /// Stops early (the writers end after their current operation).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Writer {
    api: Api<SealedSecret>,
    namespace: String,
    cert: Certificate,
    prefix: String,
    rng: StdRng,
    creates: usize,
    updates: usize,
    deletes: usize,
    pace: Duration,
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    state: Expected,
    next: usize,
}

/// How long one operation is retried before the workload gives up (a fault lasts less).
const OP_DEADLINE: Duration = Duration::from_secs(120);
/// One API call at most (a request into a dead connection must not hang the writer).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Writer {
    async fn run(mut self) -> Result<Expected> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let live = self.state.live.len();
            let left = self.creates + self.updates + self.deletes;
            if left == 0 {
                break;
            }
            // Weighted by what is left; edits and deletions need a live object.
            let pick = self.rng.gen_range(0..left);
            if pick < self.creates || live == 0 {
                if self.creates == 0 {
                    // Only edits or deletions are left and nothing is live: nothing to do.
                    break;
                }
                self.create().await?;
                self.creates -= 1;
            } else if pick < self.creates + self.updates {
                self.update().await?;
                self.updates -= 1;
            } else {
                self.delete().await?;
                self.deletes -= 1;
            }
            self.state.operations += 1;
            self.done.fetch_add(1, Ordering::Relaxed);
            if !self.pace.is_zero() {
                tokio::time::sleep(self.pace).await;
            }
        }
        Ok(self.state)
    }

    fn value(&mut self) -> String {
        format!("{CANARY}{:016x}", self.rng.gen::<u64>())
    }

    fn sealed(&self, name: &str, value: &str) -> Result<String> {
        seal_item(
            &self.cert,
            &format!("{}/{name}", self.namespace),
            value.as_bytes(),
        )
    }

    fn random_live(&mut self) -> String {
        let i = self.rng.gen_range(0..self.state.live.len());
        self.state.live.keys().nth(i).cloned().expect("in range")
    }

    async fn create(&mut self) -> Result<()> {
        let name = format!("{}{}", self.prefix, self.next);
        self.next += 1;
        let value = self.value();
        let ss: SealedSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "encryptedData": {"password": self.sealed(&name, &value)?},
                "template": {"metadata": {"name": name, "namespace": self.namespace}},
            },
        }))?;
        let api = self.api.clone();
        let retries = retry(&format!("create SealedSecret {name}"), || {
            let api = api.clone();
            let ss = ss.clone();
            async move {
                match api.create(&PostParams::default(), &ss).await {
                    Ok(_) => Ok(()),
                    // An earlier attempt went through before its answer was lost.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        })
        .await?;
        self.state.retries += retries;
        self.state.sealed_writes += 1;
        self.state.live.insert(name, value);
        Ok(())
    }

    async fn update(&mut self) -> Result<()> {
        let name = self.random_live();
        let value = self.value();
        let patch = serde_json::json!({"spec": {"encryptedData": {"password": self.sealed(&name, &value)?}}});
        let api = self.api.clone();
        let retries = retry(&format!("edit SealedSecret {name}"), || {
            let (api, patch, name) = (api.clone(), patch.clone(), name.clone());
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
        })
        .await?;
        self.state.retries += retries;
        self.state.sealed_writes += 1;
        self.state.live.insert(name, value);
        Ok(())
    }

    async fn delete(&mut self) -> Result<()> {
        let name = self.random_live();
        let api = self.api.clone();
        let retries = retry(&format!("delete SealedSecret {name}"), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        })
        .await?;
        self.state.retries += retries;
        self.state.live.remove(&name);
        self.state.deleted.insert(name);
        Ok(())
    }
}

/// Runs `call` until it succeeds (each attempt bounded by [`CALL_TIMEOUT`]), for at most
/// [`OP_DEADLINE`]; the number of failed attempts.
async fn retry<F, Fut>(what: &str, mut call: F) -> Result<usize>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let start = Instant::now();
    let mut failures = 0;
    loop {
        let last = match tokio::time::timeout(CALL_TIMEOUT, call()).await {
            Ok(Ok(())) => return Ok(failures),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {CALL_TIMEOUT:?}"),
        };
        failures += 1;
        if start.elapsed() > OP_DEADLINE {
            bail!("{what}: still failing after {OP_DEADLINE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What [`converge`] found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// SealedSecrets checked (live and deleted).
    pub objects: usize,
    /// From the call until everything was right (or the bound).
    pub converged_after: Duration,
    /// Live SealedSecrets without a Secret.
    pub lost: usize,
    /// Secrets with another value than their SealedSecret's latest edit, or not owned by it.
    pub wrong: usize,
    /// Secrets of deleted SealedSecrets still there.
    pub lingering: usize,
    /// Live SealedSecrets not `Synced=True` at their latest generation.
    pub not_synced: usize,
    /// The first few problems, named (never a value).
    pub examples: Vec<String>,
}

impl Outcome {
    /// Whether everything was right.
    pub fn ok(&self) -> bool {
        self.lost + self.wrong + self.lingering + self.not_synced == 0
    }
}

/// Polls the Secrets and SealedSecrets of `namespace` until they match `expected`, for at most
/// `bound`; what it saw last. Deleted SealedSecrets' Secrets go through the garbage collector.
pub async fn converge(
    client: &Client,
    namespace: &str,
    expected: &Expected,
    bound: Duration,
) -> Result<Outcome> {
    let start = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), namespace);
    loop {
        let mut out = Outcome {
            objects: expected.objects(),
            ..Default::default()
        };
        let listed = async {
            let s = secrets.list(&ListParams::default()).await?;
            let ss = sealed.list(&ListParams::default()).await?;
            Ok::<_, kube::Error>((s, ss))
        };
        match tokio::time::timeout(CALL_TIMEOUT, listed).await {
            Ok(Ok((s, ss))) => {
                let by_name: BTreeMap<String, Secret> = s
                    .items
                    .into_iter()
                    .filter_map(|s| Some((s.metadata.name.clone()?, s)))
                    .collect();
                let ss_by_name: BTreeMap<String, SealedSecret> = ss
                    .items
                    .into_iter()
                    .filter_map(|s| Some((s.metadata.name.clone()?, s)))
                    .collect();
                for (name, value) in &expected.live {
                    let note = |out: &mut Outcome, what: &str| {
                        if out.examples.len() < 5 {
                            out.examples.push(format!("{name}: {what}"));
                        }
                    };
                    let ss = ss_by_name.get(name);
                    match ss.and_then(synced_condition) {
                        Some(c)
                            if c.status == "True"
                                && ss
                                    .and_then(|s| s.status.as_ref())
                                    .and_then(|s| s.observed_generation)
                                    == ss.and_then(|s| s.metadata.generation) => {}
                        _ => {
                            out.not_synced += 1;
                            note(&mut out, "not Synced at its latest generation");
                        }
                    }
                    match by_name.get(name) {
                        None => {
                            out.lost += 1;
                            note(&mut out, "no Secret");
                        }
                        Some(secret) => {
                            let data = secret_data(secret);
                            let owned =
                                secret.metadata.owner_references.iter().flatten().any(|o| {
                                    Some(&o.uid) == ss.and_then(|s| s.metadata.uid.as_ref())
                                });
                            if data.get("password") != Some(value) || data.len() != 1 || !owned {
                                out.wrong += 1;
                                note(
                                    &mut out,
                                    "Secret not the latest edit's value, or not owned by it",
                                );
                            }
                        }
                    }
                }
                for name in &expected.deleted {
                    if by_name.contains_key(name) {
                        out.lingering += 1;
                        if out.examples.len() < 5 {
                            out.examples
                                .push(format!("{name}: deleted, its Secret remains"));
                        }
                    }
                }
                out.converged_after = start.elapsed();
                if out.ok() || start.elapsed() >= bound {
                    return Ok(out);
                }
            }
            Ok(Err(e)) if start.elapsed() >= bound => {
                return Err(anyhow::Error::new(e).context("listing for the convergence check"))
            }
            Err(_) if start.elapsed() >= bound => {
                bail!("listing for the convergence check timed out")
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Secrets kseal must leave alone: `plain-N` (nothing claims them) and `claimed-N`, which a
/// SealedSecret of the same name claims without owning (kseal reports it and writes nothing).
#[derive(Debug)]
pub struct Unmanaged {
    api: Api<Secret>,
    versions: BTreeMap<String, String>,
}

impl Unmanaged {
    /// Creates `n` of each kind in `namespace`.
    pub async fn create(
        client: &Client,
        namespace: &str,
        cert: &Certificate,
        n: usize,
    ) -> Result<Self> {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), namespace);
        let mut versions = BTreeMap::new();
        for i in 0..n {
            for name in [format!("plain-{i}"), format!("claimed-{i}")] {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([(
                        "password".to_owned(),
                        ByteString(b"not kseal's".to_vec()),
                    )])),
                    ..Default::default()
                };
                let created = api.create(&PostParams::default(), &secret).await?;
                versions.insert(name, created.metadata.resource_version.unwrap_or_default());
            }
            let name = format!("claimed-{i}");
            let ss: SealedSecret = serde_json::from_value(serde_json::json!({
                "apiVersion": "bitnami.com/v1alpha1",
                "kind": "SealedSecret",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"encryptedData": {"password": seal_item(cert, &format!("{namespace}/{name}"), format!("{CANARY}claimed").as_bytes())?}},
            }))?;
            sealed.create(&PostParams::default(), &ss).await?;
        }
        Ok(Unmanaged { api, versions })
    }

    /// How many of them changed (resourceVersion) or disappeared.
    pub async fn changed(&self) -> Result<usize> {
        let mut changed = 0;
        for (name, rv) in &self.versions {
            match self.api.get_opt(name).await? {
                Some(s) if s.metadata.resource_version.as_ref() == Some(rv) => {}
                _ => changed += 1,
            }
        }
        Ok(changed)
    }
}

/// The key Secrets in the controller namespace.
pub async fn key_count(client: &Client, namespace: &str) -> Result<usize> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(api
        .list(&ListParams::default().labels(KEY_LABEL_SELECTOR))
        .await?
        .items
        .len())
}

/// A counter's value in Prometheus text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let base = series.split('{').next()?;
            (base == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Live SealedSecrets whose `condition_info{condition="Synced"}` series is not 1, and deleted
/// ones that still have a series, in a controller's metrics text (the leader's: only it
/// reconciles).
pub fn untrue_condition_metrics(text: &str, expected: &Expected) -> (usize, usize) {
    let mut synced: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("sealed_secrets_controller_condition_info{") else {
            continue;
        };
        if !rest.contains("condition=\"Synced\"") {
            continue;
        }
        let name = rest
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default();
        let value = line
            .rsplit_once(' ')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0);
        synced.insert(name.to_owned(), value);
    }
    let live = expected
        .live
        .keys()
        .filter(|n| synced.get(*n) != Some(&1.0))
        .count();
    let deleted = expected
        .deleted
        .iter()
        .filter(|n| synced.contains_key(*n))
        .count();
    (live, deleted)
}

/// One fault's figures, printed as one line (`FAULT-REPORT …`) and appended as JSON to
/// `$KSEAL_FAULT_REPORT` when set.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The fault kind.
    pub fault: String,
    /// SealedSecrets checked.
    pub objects: usize,
    /// Operations of the workload.
    pub operations: usize,
    /// Seconds from the fault's end (or the workload's, when later) to convergence.
    pub converge_seconds: f64,
    /// Live SealedSecrets without a Secret.
    pub lost: usize,
    /// Secrets with a wrong value or owner.
    pub wrong: usize,
    /// Unmanaged Secrets changed.
    pub unmanaged_changed: usize,
    /// Key Secrets beyond the one expected.
    pub duplicate_keys: usize,
    /// RSA decryptions the controller(s) reported in all.
    pub rsa_decryptions: f64,
    /// Decryptions the workload needed (one per create or edit).
    pub needed_decryptions: usize,
}

impl Report {
    /// Prints it and appends it to `$KSEAL_FAULT_REPORT`.
    pub fn publish(&self) {
        let line = serde_json::json!({
            "fault": self.fault,
            "objects": self.objects,
            "operations": self.operations,
            "converge_seconds": (self.converge_seconds * 10.0).round() / 10.0,
            "lost": self.lost,
            "wrong": self.wrong,
            "unmanaged_changed": self.unmanaged_changed,
            "duplicate_keys": self.duplicate_keys,
            "rsa_decryptions": self.rsa_decryptions,
            "needed_decryptions": self.needed_decryptions,
            "recovery_decryptions": (self.rsa_decryptions - self.needed_decryptions as f64).max(0.0),
        });
        eprintln!("FAULT-REPORT {line}");
        if let Some(path) = std::env::var_os("KSEAL_FAULT_REPORT") {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}
