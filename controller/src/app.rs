//! The controller process (docs/compatibility.md, “Start-up sequence”), wired from the library's parts:
//!
//! 1. metrics, the key manager, and both HTTP servers first, so `/healthz` answers while
//!    everything else starts (`/v1/cert.pem` answers 500 until a key is loaded); with
//!    `--webhook-listen-addr`, the admission webhook's TLS server and the task that keeps its
//!    certificate ([`crate::admission`]), on every replica;
//! 2. every replica loads the key Secrets and age identity Secrets and watches them for keys
//!    and identities added at run time;
//! 3. leader election on a Lease (unless `--leader-elect=false`; under Bitnami's RBAC, which
//!    has no Lease rules, the controller runs unelected and says so);
//! 4. while leading: the key duties ([`crate::keys::tasks::lead_keys`]) and one reconciler per
//!    watched scope; losing the Lease stops both, and they start again on re-election;
//! 5. SIGTERM/SIGINT: stop reconciling, release the Lease, drain the HTTP servers, exit 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kseal_crypto::keygen::KeyProfile;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, WatchScope};
use crate::events::EventRecorder;
use crate::http::api::{self, ApiConfig, ApiState};
use crate::http::server::{serve_listener, serve_tls_listener, ServeOptions};
use crate::keys::manager::{KeyManager, KeyPolicy};
use crate::keys::store::KeyStore;
use crate::keys::tasks;
use crate::leader::{Elector, Fence};
use crate::metrics::{self, Metrics};
use crate::planner::PlanOptions;
use crate::reconciler::{self, Context, ReconcileOptions};

/// The name of this replica in the Lease and in events: `$POD_NAME` or the host name, plus a
/// random suffix so that two processes on one host never share it (client-go does the same).
pub fn replica_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "kseal-controller".to_string());
    format!("{host}_{:08x}", rand::random::<u32>())
}

/// The client: `--kubeconfig` when given, else in-cluster (or `$KUBECONFIG`) like kubectl.
pub async fn client(config: &Config) -> anyhow::Result<Client> {
    let kc = match &config.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster service account and no kubeconfig (use --kubeconfig)")?,
    };
    Client::try_from(kc).context("cannot build the Kubernetes client")
}

/// Runs the controller until `shutdown` is cancelled. `signals` delivers SIGUSR1.
pub async fn run(
    config: Config,
    client: Client,
    version: &str,
    shutdown: CancellationToken,
    mut signals: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let identity = replica_identity();
    let metrics = Arc::new(Metrics::new(version));
    let store = KeyStore::new(
        client.clone(),
        &config.namespace,
        &config.key_prefix,
        config.key_order_priority,
    );
    let keys = Arc::new(
        KeyManager::new(
            store,
            KeyPolicy {
                profile: KeyProfile {
                    bits: config.key_size,
                    common_name: config.my_cn.clone(),
                    validity: time::Duration::seconds(config.key_ttl.as_secs()),
                },
                cutoff: config.key_cutoff_time,
                labels: config.privatekey_labels.clone(),
                annotations: config.privatekey_annotations.clone(),
                cert_configmap: config.cert_configmap.clone(),
            },
        )
        .with_age(config.age)
        .with_age_pq(config.age_pq),
    );

    // One limit on private-key work for reconciles and the HTTP API.
    let work = crate::work::PrivateKeyWork::for_this_machine();
    tracing::info!(permits = work.permits(), "private-key work limit");

    // 1. HTTP first.
    let api_state = ApiState::new(
        keys.subscribe(),
        metrics.clone(),
        &ApiConfig {
            rate_limit: config.rate_limit,
            rate_limit_burst: config.rate_limit_burst,
            accept_deprecated_v1_data: config.accept_deprecated_v1_data,
            age: config.age,
            age_pq: config.age_pq,
            trusted_proxies: config.trusted_proxies.clone(),
            work: work.clone(),
            ..Default::default()
        },
    )
    .context("invalid --rate-limit")?;
    let serve_opts = ServeOptions {
        read_timeout: config.read_timeout.unsigned_abs(),
        write_timeout: config.write_timeout.unsigned_abs(),
    };
    let main_listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {} (--listen-addr)", config.listen_addr))?;
    let metrics_listener = TcpListener::bind(config.listen_metrics_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (--listen-metrics-addr)",
                config.listen_metrics_addr
            )
        })?;
    tracing::info!(addr = %main_listener.local_addr()?, "HTTP server serving");
    tracing::info!(addr = %metrics_listener.local_addr()?, "metrics server serving");
    // The admission webhook (every replica): its TLS port, and the task that keeps its
    // serving certificate and the configuration's caBundle.
    let mut webhook_server = None;
    if let Some(webhook) = &config.webhook {
        let listener = TcpListener::bind(webhook.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (--webhook-listen-addr)",
                    webhook.listen_addr
                )
            })?;
        tracing::info!(addr = %listener.local_addr()?, "admission webhook serving (TLS)");
        let (tls_tx, tls_rx) = watch::channel(None);
        tokio::spawn(crate::admission::tls::run(
            client.clone(),
            webhook.objects.clone(),
            tls_tx,
            shutdown.clone(),
        ));
        let state = crate::admission::http::AdmissionState::new(
            api_state.clone(),
            config.key_cutoff_time,
            Some(Arc::new(crate::planner::ProtectedKeys {
                namespace: config.namespace.clone(),
                key_prefix: config.key_prefix.clone(),
            })),
        );
        let stop = shutdown.clone();
        webhook_server = Some(tokio::spawn(serve_tls_listener(
            listener,
            crate::admission::http::router(state),
            serve_opts,
            tls_rx,
            async move { stop.cancelled().await },
        )));
    }
    let mut main_router = api::router(api_state);
    if config.web_page {
        main_router = main_router.merge(crate::web::router(keys.subscribe()));
    }
    let stop_http = shutdown.clone();
    let main_server = tokio::spawn(serve_listener(
        main_listener,
        main_router,
        serve_opts,
        async move { stop_http.cancelled().await },
    ));
    let stop_metrics = shutdown.clone();
    let metrics_server = tokio::spawn(serve_listener(
        metrics_listener,
        metrics::metrics_router(metrics.clone()),
        serve_opts,
        async move { stop_metrics.cancelled().await },
    ));
    tokio::spawn(metrics::follow_keys(metrics.clone(), keys.subscribe()));

    // 2. Keys.
    // An API server that is down at start is waited for (with backoff), not a crash; SIGTERM
    // meanwhile ends the process at once.
    let mut delay = Duration::from_millis(500);
    let loaded = loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => {
                tracing::info!("shut down before the keys were loaded");
                return Ok(());
            }
            r = keys.load() => r,
        };
        match attempt {
            Ok(loaded) => break loaded,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "cannot load the sealing keys; retrying in {delay:?}");
                tokio::select! {
                    () = shutdown.cancelled() => {
                        tracing::info!("shut down before the keys were loaded");
                        return Ok(());
                    }
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e).context("cannot load the sealing keys"),
        }
    };
    for e in &loaded.unreadable {
        tracing::warn!(error = %e, "ignoring an unreadable key Secret");
    }
    tracing::info!(
        namespace = %config.namespace,
        keys = loaded.loaded,
        age_identities = loaded.age_loaded,
        age = config.age,
        age_pq = config.age_pq,
        "loaded the sealing keys"
    );
    tokio::spawn(tasks::watch_key_secrets(keys.clone(), shutdown.clone()));
    tokio::spawn(tasks::watch_age_secrets(keys.clone(), shutdown.clone()));

    // 3. Leader election.
    let (leading_tx, mut leading) = watch::channel(false);
    let mut elector_task = None;
    let mut fence = Fence::always();
    if config.leader_elect {
        let elector = Elector::new(
            Api::<Lease>::namespaced(client.clone(), &config.namespace),
            &config.leader_election_id,
            &identity,
            config.lease_duration,
            Duration::from_secs(2).min(config.lease_duration.unsigned_abs() / 3),
        );
        match elector.try_once().await {
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::warn!(
                    "leader election is off: this controller may not use Leases in {} (RBAC); run a single replica or grant the Lease rules of kseal's RBAC",
                    config.namespace
                );
                leading_tx.send_replace(true);
            }
            first => {
                fence = elector.fence();
                if let Ok(true) = first {
                    leading_tx.send_replace(true);
                }
                let stop = shutdown.clone();
                elector_task = Some(tokio::spawn(
                    elector.run(leading_tx, async move { stop.cancelled().await }),
                ));
            }
        }
    } else {
        leading_tx.send_replace(true);
    }

    // SIGUSR1: the leader renews; another replica asks the leader through the ConfigMap.
    let (renew_tx, mut renew_rx) = mpsc::channel::<()>(1);
    {
        let leading = leading.clone();
        let keys = keys.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    s = signals.recv() => if s.is_none() { return },
                }
                if *leading.borrow() {
                    let _ = renew_tx.try_send(());
                } else if let Some(name) = &keys.policy().cert_configmap {
                    match tasks::request_renewal(
                        keys.store().configmaps(),
                        &kseal_crds::renewal_configmap(name),
                        Timestamp::now(),
                    )
                    .await
                    {
                        Ok(()) => tracing::info!(
                            "SIGUSR1: not the leader; asked the leader for a new key"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "SIGUSR1: not the leader and cannot ask the leader for a new key")
                        }
                    }
                } else {
                    tracing::warn!("SIGUSR1: not the leader; send the signal to the leader");
                }
            }
        });
    }

    // 4. Reconcile while leading.
    let scopes = tokio::select! {
        () = shutdown.cancelled() => Vec::new(),
        s = scopes(&config, &client) => s,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        keys.subscribe(),
        metrics.clone(),
        EventRecorder::new(client.clone(), Some(identity.clone())),
        ReconcileOptions {
            plan: PlanOptions {
                accept_deprecated_v1_data: config.accept_deprecated_v1_data,
                update_status: config.update_status,
                protected: Some(Arc::new(crate::planner::ProtectedKeys {
                    namespace: config.namespace.clone(),
                    key_prefix: config.key_prefix.clone(),
                })),
            },
            old_gc_behavior: config.old_gc_behavior,
            skip_recreate: config.skip_recreate,
            max_retries: config.max_unseal_retries,
            label_selector: config.label_selector.clone(),
            concurrency: reconciler::concurrency_for(work.permits()),
            work: work.clone(),
            fence: fence.clone(),
        },
    ));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        tracing::info!(identity = %identity, "leading: reconciling and managing keys");
        let term = shutdown.child_token();
        {
            let term = term.clone();
            let mut leading = leading.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = term.cancelled() => {}
                    _ = leading.wait_for(|l| !*l) => term.cancel(),
                }
            });
        }
        let key_duties = async {
            // Its API calls may hang on a dead connection: the end of the term does not wait.
            tokio::select! {
                () = term.cancelled() => {}
                () = tasks::lead_keys(
                    keys.clone(),
                    config.key_renew_period,
                    &mut renew_rx,
                    fence.clone(),
                    term.clone(),
                ) => {}
            }
        };
        let reconcilers = async {
            // Reconcile only once a key exists (the leader generates the first one).
            let mut rx = keys.subscribe();
            tokio::select! {
                () = term.cancelled() => return,
                r = rx.wait_for(|r| r.newest().is_some()) => if r.is_err() { return },
            }
            futures::future::join_all(
                scopes
                    .iter()
                    .map(|ns| reconciler::run_scope(ctx.clone(), ns.clone(), term.clone())),
            )
            .await;
        };
        tokio::join!(key_duties, reconcilers);
        term.cancel();
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!(identity = %identity, "lost the leadership: stopped reconciling");
    }

    // 5. Drain.
    if let Some(t) = elector_task {
        let _ = t.await;
    }
    let servers = [("HTTP", main_server), ("metrics", metrics_server)]
        .into_iter()
        .chain(webhook_server.map(|w| ("webhook", w)));
    for (name, server) in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "{name} server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "{name} server task failed"),
        }
    }
    tracing::info!("shut down");
    Ok(())
}

/// The watched scopes: all namespaces, or the controller's own plus each listed one that
/// exists (Bitnami skips a missing namespace with a log line).
async fn scopes(config: &Config, client: &Client) -> Vec<Option<String>> {
    match &config.watch {
        WatchScope::All => vec![None],
        WatchScope::Namespaces(list) => {
            let api: Api<Namespace> = Api::all(client.clone());
            let mut out = Vec::new();
            for (i, ns) in list.iter().enumerate() {
                if i > 0 {
                    match api.get_opt(ns).await {
                        Ok(None) => {
                            tracing::warn!(namespace = %ns, "additional namespace does not exist; not watching it");
                            continue;
                        }
                        Ok(Some(_)) => {}
                        Err(e) => {
                            tracing::warn!(namespace = %ns, error = %e, "cannot check the additional namespace; watching it anyway")
                        }
                    }
                }
                out.push(Some(ns.clone()));
            }
            out
        }
    }
}

/// Whether a failure to load the keys is worth retrying: the API server is unreachable or
/// answered with a server-side error. A refusal (RBAC, a bad request) or a key that cannot be
/// read ends the start with its message instead.
fn is_transient(e: &crate::keys::store::KeyStoreError) -> bool {
    use crate::keys::store::KeyStoreError;
    match e {
        KeyStoreError::List { cause, .. } => match cause {
            kube::Error::Api(s) => s.code >= 500 || s.code == 429,
            kube::Error::Auth(_) => false,
            _ => true,
        },
        _ => false,
    }
}
