//! The key tasks that run for the controller's whole life (docs/compatibility.md, “Start-up sequence”, “Key renewal”):
//!
//! - every replica watches the key Secrets and the age identity Secrets of its namespace and
//!   registers keys and identities added or relabelled `active` at run time (including the
//!   leader's new ones), so `/v1/cert.pem`, `/v1/age-recipient`, `/v1/verify` and the
//!   reconciler use them without a restart. A deleted or relabelled-away key stays registered
//!   until the next restart, as in Bitnami: a key is never dropped while SealedSecrets may still
//!   need it;
//! - the leader generates the first key and age identity (the identity is retried on its own,
//!   so a failure there holds up nothing else), renews every `--key-renew-period`
//!   (the next renewal is `period` after the newest RSA key, so a manual renewal also postpones
//!   the automatic one), on SIGUSR1, and on a renewal request (each renewal makes an RSA key
//!   and, unless `--age=false`, an age identity), and publishes the newest certificate and age
//!   recipient, and restores the certificate ConfigMap when anyone else edits or deletes it.
//!
//! # Renewal requests (RBAC-authorized)
//!
//! Anyone allowed to patch the renewal ConfigMap `<certificate ConfigMap>-renewal` (Role
//! `sealed-secrets-key-renewer` in the shipped RBAC) asks for a new key by setting
//! [`ANNOTATION_RENEW_REQUESTED`] on it to any new value (by convention the current time):
//!
//! ```text
//! kubectl -n kube-system annotate configmap sealed-secrets-cert-renewal --overwrite \
//!     sealedsecrets.kseal.dev/renew-requested-at="$(date -u +%FT%TZ)"
//! ```
//!
//! Requests live in their own ConfigMap so that a renewer has no write access to the published
//! certificate, which every `kseal seal` trusts. The leader creates it (empty) when it is
//! missing.
//!
//! The leader renews once per distinct value and records it in [`ANNOTATION_RENEW_HANDLED`],
//! so a request is honoured exactly once, across restarts and leader changes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::keys::manager::KeyManager;
use crate::keys::registry::next_renewal;
use crate::keys::store::KeyStoreError;
use crate::keys::store::{age_identity_from_secret, key_from_secret};
use crate::leader::Fence;
use kseal_sealing::key_secret::{
    AGE_IDENTITY_LABEL, AGE_IDENTITY_LABEL_ACTIVE, KEY_LABEL, KEY_LABEL_ACTIVE,
};
use kseal_sealing::scrub;

use kseal_crds::{ANNOTATION_RENEW_HANDLED, ANNOTATION_RENEW_REQUESTED};

fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// Watches the Secrets of the controller namespace that match `selector` until `stop`, handing
/// each added or changed one to `on_apply` and scrubbing it afterwards (they hold private
/// keys). Deletions are only logged: a key stays registered until the controller restarts.
async fn watch_secrets(
    keys: &KeyManager,
    selector: String,
    what: &'static str,
    stop: CancellationToken,
    mut on_apply: impl FnMut(&k8s_openapi::api::core::v1::Secret),
) {
    let api = keys.store().secrets().clone();
    let cfg = watcher::Config::default().labels(&selector);
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        match ev {
            None => return,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "watching {what} Secrets failed; retrying");
            }
            Some(Ok(Event::Apply(mut s) | Event::InitApply(mut s))) => {
                on_apply(&s);
                scrub::secret(&mut s);
            }
            Some(Ok(Event::Delete(mut s))) => {
                tracing::warn!(
                    secret = %s.metadata.name.clone().unwrap_or_default(),
                    "a {what} Secret was deleted or relabelled; it stays in use until the controller restarts"
                );
                scrub::secret(&mut s);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Registers key Secrets as they appear (every replica), until `stop`.
pub async fn watch_key_secrets(keys: Arc<KeyManager>, stop: CancellationToken) {
    let priority = keys.store().priority();
    let selector = format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}");
    watch_secrets(&keys, selector, "key", stop, |s| {
        let name = s.metadata.name.clone().unwrap_or_default();
        match key_from_secret(s, priority) {
            Ok(k) => {
                let fp = k.key.fingerprint().to_string();
                if keys.add(k) {
                    tracing::info!(secret = %name, fingerprint = %fp, "registered a key added at run time");
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable key Secret"),
        }
    })
    .await;
}

/// Registers age identity Secrets as they appear (every replica), until `stop`.
pub async fn watch_age_secrets(keys: Arc<KeyManager>, stop: CancellationToken) {
    let selector = format!("{AGE_IDENTITY_LABEL}={AGE_IDENTITY_LABEL_ACTIVE}");
    watch_secrets(&keys, selector, "age identity", stop, |s| {
        let name = s.metadata.name.clone().unwrap_or_default();
        match age_identity_from_secret(s, Timestamp::now()) {
            Ok(i) => {
                let recipient = i.identity.recipient().to_string();
                if keys.add_age(i) {
                    tracing::info!(secret = %name, recipient = %recipient, "registered an age identity added at run time");
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable age identity Secret"),
        }
    })
    .await;
}

fn handled(cm: &ConfigMap) -> Option<String> {
    let a = cm.metadata.annotations.as_ref()?;
    let requested = a.get(ANNOTATION_RENEW_REQUESTED)?;
    (a.get(ANNOTATION_RENEW_HANDLED) != Some(requested)).then(|| requested.clone())
}

/// Asks the leader for a new key through the renewal ConfigMap's annotation (what a
/// non-leader replica does on SIGUSR1, and what `kseal keys renew` does). `name` is the
/// renewal ConfigMap ([`kseal_crds::renewal_configmap`]).
pub async fn request_renewal(
    configmaps: &Api<ConfigMap>,
    name: &str,
    now: Timestamp,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {ANNOTATION_RENEW_REQUESTED: now.to_string()}}
    });
    configmaps
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Creates the (empty) renewal ConfigMap when it does not exist, so that a renewer needs
/// only `get` and `patch` on it.
async fn ensure_renewal_configmap(api: &Api<ConfigMap>, name: &str) {
    let cm = ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(std::collections::BTreeMap::from([(
                "app.kubernetes.io/component".to_string(),
                "key-renewal-requests".to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&kube::api::PostParams::default(), &cm).await {
        Ok(_) => tracing::info!(configmap = %name, "created the key renewal request ConfigMap"),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            tracing::warn!(configmap = %name, error = %e, "cannot create the key renewal request ConfigMap (RBAC?); SIGUSR1 and the renewal period still work")
        }
    }
}

/// Watches the renewal ConfigMap for renewal requests and forwards them on `tx`.
async fn watch_requests(
    api: Api<ConfigMap>,
    name: String,
    tx: mpsc::Sender<String>,
    stop: CancellationToken,
) {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut warned = false;
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        match ev {
            None => return,
            Some(Err(e)) => {
                if !warned {
                    tracing::warn!(configmap = %name, error = %e, "cannot watch for key renewal requests (RBAC?); SIGUSR1 and the renewal period still work");
                    warned = true;
                }
            }
            Some(Ok(Event::Apply(cm) | Event::InitApply(cm))) => {
                warned = false;
                if let Some(req) = handled(&cm) {
                    let _ = tx.send(req).await;
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// What triggered a renewal, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalCause {
    /// `--key-renew-period` elapsed.
    Period,
    /// SIGUSR1.
    Signal,
    /// A request annotation with this value.
    Request(String),
}

/// The leader's key duties until `stop` (see the module docs). `signals` carries SIGUSR1.
pub async fn lead_keys(
    keys: Arc<KeyManager>,
    period: SignedDuration,
    signals: &mut mpsc::Receiver<()>,
    fence: Fence,
    stop: CancellationToken,
) {
    // The first key, retried until it is stored.
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = match before_key_write(&keys, &fence).await {
            Ok(()) => keys.ensure_key(Timestamp::now()).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(Some(name)) => {
                let cert = keys
                    .current()
                    .newest()
                    .and_then(|k| k.key.certificate().map(|c| c.to_pem()))
                    .unwrap_or_default();
                tracing::info!(secret = %name, "New key written to {}/{name}", keys.store().namespace());
                tracing::info!("Certificate generated\n{cert}");
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "cannot generate the first key; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    // The first age identity, retried beside the other duties: a failure there must not hold
    // up the certificate, renewals or reconciling.
    let first_age = tokio::spawn(ensure_age_identity(
        keys.clone(),
        fence.clone(),
        stop.clone(),
    ));

    let publisher = tokio::spawn(publish_certificates(keys.clone(), stop.clone()));
    let (req_tx, mut requests) = mpsc::channel(4);
    let watcher_task = keys.policy().cert_configmap.clone().map(|cert| {
        let api = keys.store().configmaps().clone();
        let name = kseal_crds::renewal_configmap(&cert);
        let stop = stop.clone();
        tokio::spawn(async move {
            ensure_renewal_configmap(&api, &name).await;
            watch_requests(api, name, req_tx, stop).await
        })
    });
    let mut changes = keys.subscribe();

    loop {
        let wait = next_renewal(&keys.current(), Timestamp::now(), period)
            .map(|d| d.unsigned_abs())
            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let cause = tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => RenewalCause::Period,
            s = signals.recv() => match s {
                Some(()) => RenewalCause::Signal,
                None => continue,
            },
            r = requests.recv() => match r {
                Some(v) => RenewalCause::Request(v),
                None => continue,
            },
            c = changes.changed() => {
                if c.is_err() { break; }
                continue; // a key came from elsewhere: recompute the timer
            }
        };
        if let RenewalCause::Request(v) = &cause {
            if !request_pending(&keys, v).await {
                continue;
            }
        }
        if let Err(e) = before_key_write(&keys, &fence).await {
            tracing::warn!(error = %e, cause = ?cause, "key renewal skipped");
            if matches!(cause, RenewalCause::Period) {
                // Not a busy loop: try again in a while (a new leader renews on its own).
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            continue;
        }
        if matches!(cause, RenewalCause::Period)
            && next_renewal(&keys.current(), Timestamp::now(), period)
                .is_some_and(|d| d.is_positive())
        {
            continue; // another leader renewed meanwhile
        }
        match keys.renew_only(Timestamp::now()).await {
            Ok(renewal) => {
                let name = &renewal.key_secret;
                tracing::info!(secret = %name, cause = ?cause, "New key written to {}/{name}", keys.store().namespace());
                if let Some(age) = &renewal.age_secret {
                    tracing::info!(secret = %age, cause = ?cause, "New age identity written to {}/{age}", keys.store().namespace());
                }
                if let Some(age) = &renewal.age_pq_secret {
                    tracing::info!(secret = %age, cause = ?cause, "New post-quantum age identity written to {}/{age}", keys.store().namespace());
                }
                if let Some(e) = &renewal.age_error {
                    tracing::error!(error = %e, cause = ?cause, "the key was renewed but the age identity was not");
                }
                if let RenewalCause::Request(v) = &cause {
                    mark_handled(&keys, v).await;
                }
            }
            Err(e) => tracing::error!(error = %e, cause = ?cause, "key renewal failed"),
        }
    }
    publisher.abort();
    first_age.abort();
    if let Some(t) = watcher_task {
        t.abort();
    }
}

/// Generates the first age identity when there is none (or the newest is older than the
/// cutoff), retried with backoff until it is stored or `stop`.
async fn ensure_age_identity(keys: Arc<KeyManager>, fence: Fence, stop: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = match before_key_write(&keys, &fence).await {
            Ok(()) => keys.ensure_age_identity(Timestamp::now()).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(made) => {
                for (name, recipient) in made {
                    tracing::info!(secret = %name, recipient = %recipient, "New age identity written to {}/{name}", keys.store().namespace());
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot generate the first age identity; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Right before a key is generated: the keys as the API server holds them now (a previous
/// leader may have written one this replica's watch has not delivered yet), and the fence (a
/// leader that was frozen past its Lease writes no key; see [`Fence`]). One renewal, one key.
async fn before_key_write(keys: &KeyManager, fence: &Fence) -> Result<(), KeyStoreError> {
    keys.refresh().await?;
    if !fence.holds() {
        return Err(KeyStoreError::NotLeading);
    }
    Ok(())
}

/// Re-reads the ConfigMap: the request may have been handled by a previous leader already.
async fn request_pending(keys: &KeyManager, value: &str) -> bool {
    let Some(cert) = &keys.policy().cert_configmap else {
        return false;
    };
    let name = kseal_crds::renewal_configmap(cert);
    match keys.store().configmaps().get_opt(&name).await {
        Ok(Some(cm)) => handled(&cm).as_deref() == Some(value),
        _ => true,
    }
}

async fn mark_handled(keys: &KeyManager, value: &str) {
    let Some(cert) = &keys.policy().cert_configmap else {
        return;
    };
    let name = &kseal_crds::renewal_configmap(cert);
    let patch = serde_json::json!({
        "metadata": {"annotations": {ANNOTATION_RENEW_HANDLED: value}}
    });
    if let Err(e) = keys
        .store()
        .configmaps()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(configmap = %name, error = %e, "cannot record the handled renewal request");
    }
}

/// Publishes the newest certificate and age recipient now and whenever either changes, and
/// restores the ConfigMap when anyone else edits or deletes it: every `kseal seal` that
/// reads it trusts what it says, so it must say what the controller says.
async fn publish_certificates(keys: Arc<KeyManager>, stop: CancellationToken) {
    let mut rx = keys.subscribe();
    let mut published: Option<(String, Option<String>, Option<String>)> = None;
    let mut warned = false;
    let mut edits = match &keys.policy().cert_configmap {
        Some(name) => watcher::watcher(
            keys.store().configmaps().clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .default_backoff()
        .boxed(),
        None => futures::stream::pending().boxed(),
    };
    loop {
        rx.borrow_and_update();
        let newest = keys.published_state();
        if newest.is_some() && newest != published {
            match keys.publish_certificate().await {
                Ok(()) => {
                    published = newest;
                    warned = false;
                }
                Err(e) => {
                    if !warned || !is_publish_forbidden(&e) {
                        tracing::warn!(error = %e, "cannot publish the certificate; clients can still fetch it from /v1/cert.pem");
                        warned = true;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            c = rx.changed() => if c.is_err() { return },
            ev = edits.next() => match ev {
                Some(Ok(Event::Apply(cm))) => {
                    if keys.configmap_matches(&cm) == Some(false) {
                        tracing::warn!(
                            configmap = %cm.metadata.name.clone().unwrap_or_default(),
                            "the published certificate was changed by someone else; restoring it"
                        );
                        published = None;
                    }
                }
                Some(Ok(Event::Delete(cm))) => {
                    tracing::warn!(
                        configmap = %cm.metadata.name.clone().unwrap_or_default(),
                        "the published certificate was deleted; restoring it"
                    );
                    published = None;
                }
                Some(Ok(_)) | Some(Err(_)) => {}
                None => edits = futures::stream::pending().boxed(),
            },
        }
    }
}

fn is_publish_forbidden(e: &crate::keys::store::KeyStoreError) -> bool {
    match e {
        crate::keys::store::KeyStoreError::Publish { cause, .. } => is_forbidden(cause),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(annotations: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_request_is_honoured_once_per_value() {
        assert_eq!(handled(&cm(&[])), None);
        assert_eq!(
            handled(&cm(&[(ANNOTATION_RENEW_REQUESTED, "t1")])),
            Some("t1".into())
        );
        assert_eq!(
            handled(&cm(&[
                (ANNOTATION_RENEW_REQUESTED, "t1"),
                (ANNOTATION_RENEW_HANDLED, "t1")
            ])),
            None
        );
        assert_eq!(
            handled(&cm(&[
                (ANNOTATION_RENEW_REQUESTED, "t2"),
                (ANNOTATION_RENEW_HANDLED, "t1")
            ])),
            Some("t2".into())
        );
    }
}
