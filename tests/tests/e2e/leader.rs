//! Leader election on a real API server: one leader at a time; when the leader dies the other
//! replica takes over within the Lease duration; a released Lease is taken over at once.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::SignedDuration;
use kseal_controller::leader::Elector;
use kseal_e2e::kube::Api;
use kseal_e2e::{rule, TestNamespace};
use tokio::sync::watch;

const LEASE: SignedDuration = SignedDuration::from_secs(3);
const RETRY: Duration = Duration::from_millis(300);

async fn wait_for(
    rx: &mut watch::Receiver<bool>,
    want: bool,
    within: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    tokio::time::timeout(within, rx.wait_for(|l| *l == want)).await??;
    Ok(start.elapsed())
}

#[tokio::test]
async fn one_leader_and_takeover_within_the_lease_duration() -> Result<()> {
    let ns = TestNamespace::new("leader").await?;
    let me = ns
        .identity(
            "controller",
            vec![rule(
                &["coordination.k8s.io"],
                &["leases"],
                &["get", "create", "update"],
            )],
        )
        .await?;
    let api: Api<Lease> = Api::namespaced(me.client().await?, ns.name());
    let a = Elector::new(api.clone(), "kseal-leader", "replica-a", LEASE, RETRY);
    let b = Elector::new(api.clone(), "kseal-leader", "replica-b", LEASE, RETRY);

    let (a_tx, mut a_rx) = watch::channel(false);
    let (a_stop, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let a_task = tokio::spawn(a.clone().run(a_tx, async {
        let _ = a_stopped.await;
    }));
    wait_for(&mut a_rx, true, Duration::from_secs(10)).await?;
    let (b_tx, mut b_rx) = watch::channel(false);
    let (b_stop, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(b.clone().run(b_tx, async {
        let _ = b_stopped.await;
    }));
    // B follows while A renews.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ensure!(*a_rx.borrow() && !*b_rx.borrow(), "two leaders or none");

    // A dies without releasing (a killed pod): B takes over within the Lease duration
    // (plus one retry period to notice).
    a_task.abort();
    drop(a_stop);
    let took = wait_for(&mut b_rx, true, Duration::from_secs(10)).await?;
    ensure!(
        took <= Duration::from_secs(3) + RETRY * 3,
        "takeover took {took:?}"
    );
    let holder = api
        .get("kseal-leader")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    ensure!(holder.as_deref() == Some("replica-b"), "holder {holder:?}");

    // B shuts down gracefully and releases: A (back) takes over at once.
    let (a2_tx, mut a2_rx) = watch::channel(false);
    let a2_task = tokio::spawn(a.run(a2_tx, std::future::pending()));
    let _ = b_stop.send(());
    b_task.await?;
    let took = wait_for(&mut a2_rx, true, Duration::from_secs(10)).await?;
    ensure!(
        took < Duration::from_secs(2),
        "takeover after release took {took:?}"
    );
    a2_task.abort();
    ns.cleanup().await
}
