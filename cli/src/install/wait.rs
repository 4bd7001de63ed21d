//! Waiting for the controller's rollout as `kubectl rollout status` does.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::Client;

use crate::cluster::explain;

use super::*;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Still going, with kubectl's description.
    Waiting(String),
    /// Every replica is updated and available.
    Done,
    /// It cannot finish (progress deadline exceeded).
    Failed(String),
}

/// `kubectl rollout status` for one Deployment, with the rule that every desired replica is
/// updated and available: observedGeneration ≥ generation, updatedReplicas == replicas,
/// availableReplicas == replicas, and no old replica left.
pub fn rollout_status(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
    {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Rollout::Failed(format!(
                "it exceeded its progress deadline{}",
                c.message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Rollout::Waiting(format!(
            "{updated} of {want} new replicas have been updated"
        ))
    } else if total > updated {
        Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            total - updated
        ))
    } else if available < want {
        Rollout::Waiting(format!(
            "{available} of {want} updated replicas are available"
        ))
    } else {
        Rollout::Done
    }
}

/// Waits until the Deployment is available ([`rollout_status`]), polling every second;
/// `progress` gets each new state. Fails with one line after `timeout`.
pub async fn wait_for_rollout(
    client: &Client,
    install: &Install,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &install.namespace);
    let who = format!("deployment \"{}/{}\"", install.namespace, install.name);
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let state =
            match tokio::time::timeout(left.max(Duration::from_millis(1)), api.get(&install.name))
                .await
            {
                Ok(Ok(d)) => rollout_status(&d),
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                    bail!("{who} does not exist (was it deleted?)")
                }
                Ok(Err(e @ kube::Error::Api(_))) => {
                    bail!("cannot read {who}: {}", explain_install(&e))
                }
                // Transient (connection) errors: retry until the deadline.
                Ok(Err(e)) => Rollout::Waiting(format!("cannot read it: {}", explain(&e))),
                Err(_) => Rollout::Waiting(last.clone()),
            };
        match state {
            Rollout::Done => {
                progress(&format!("{who} successfully rolled out"));
                return Ok(());
            }
            Rollout::Failed(why) => bail!("{who} failed to roll out: {why}"),
            Rollout::Waiting(msg) => {
                if msg != last {
                    progress(&format!("Waiting for {who} rollout to finish: {msg}..."));
                    last = msg;
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {} waiting for {who} to become available ({last}): check its pods (kubectl -n {} get pods -l name={}) and that image {} can be pulled, or raise --timeout",
                format_duration(timeout),
                install.namespace,
                install.name,
                install.image
            );
        }
        tokio::time::sleep(
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}
