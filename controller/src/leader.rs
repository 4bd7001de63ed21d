//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it.
//!
//! Only the leader reconciles and renews keys; every replica serves the certificate and
//! `/v1/verify`. The decision ([`decide`]) is pure; the caller reads the Lease, asks what to do,
//! and writes the result with the resourceVersion it read, so two candidates racing for an
//! expired Lease cannot both win (one gets a 409 Conflict and stays a follower).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::Api;
use tokio::sync::watch;

/// What a candidate should do with the Lease it just read.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nobody holds a valid Lease: write this spec to take it (create it when absent).
    Acquire(LeaseSpec),
    /// We hold it: write this spec to renew it.
    Renew(LeaseSpec),
    /// Someone else holds a valid Lease until about this time.
    Follow {
        /// The current holder.
        holder: String,
        /// When the holder's Lease expires unless renewed.
        expires: Timestamp,
    },
}

/// Decides what `identity` does with `lease` (None when it does not exist yet) at `now`.
pub fn decide(
    identity: &str,
    lease: Option<&Lease>,
    now: Timestamp,
    duration: SignedDuration,
) -> Decision {
    let spec = lease.and_then(|l| l.spec.clone()).unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let held_for = spec
        .lease_duration_seconds
        .map(|s| SignedDuration::from_secs(i64::from(s)))
        .unwrap_or(duration);
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let expires = last.map(|t| t + held_for);
    let micro = MicroTime(now);
    let secs = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    match holder {
        Some(h) if h == identity => Decision::Renew(LeaseSpec {
            renew_time: Some(micro),
            lease_duration_seconds: Some(secs),
            ..spec
        }),
        Some(h) if expires.is_some_and(|e| e > now) => Decision::Follow {
            holder: h,
            expires: expires.expect("checked"),
        },
        previous => Decision::Acquire(LeaseSpec {
            holder_identity: Some(identity.to_string()),
            acquire_time: Some(micro.clone()),
            renew_time: Some(micro),
            lease_duration_seconds: Some(secs),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0) + i32::from(previous.is_some()),
            ),
            ..Default::default()
        }),
    }
}

/// Whether this replica may still act as the leader, checked right before every write a
/// leader makes (a Secret, a status, a key). A leader that was frozen (SIGSTOP, a paused VM, a
/// long GC stall) past its Lease wakes up believing it leads; its in-flight work must not
/// write before the election loop has noticed. The fence holds only while the last successful
/// renewal is younger than the renew deadline (two thirds of the Lease duration), on the
/// monotonic clock, which keeps counting while the process is stopped. Another replica can
/// take the Lease only after the full duration, so a fenced leader never writes at the same
/// time as its successor (docs/controller.md, "Faults and shutdown").
#[derive(Debug, Clone)]
pub struct Fence {
    inner: std::sync::Arc<FenceInner>,
}

#[derive(Debug)]
struct FenceInner {
    renewed: std::sync::Mutex<Option<Instant>>,
    deadline: Option<Duration>,
}

impl Fence {
    /// A fence that always holds: leader election is off (one replica, or no Lease rights).
    pub fn always() -> Fence {
        Fence {
            inner: std::sync::Arc::new(FenceInner {
                renewed: std::sync::Mutex::new(None),
                deadline: None,
            }),
        }
    }

    fn with_deadline(deadline: Duration) -> Fence {
        Fence {
            inner: std::sync::Arc::new(FenceInner {
                renewed: std::sync::Mutex::new(None),
                deadline: Some(deadline),
            }),
        }
    }

    fn set(&self, renewed: Option<Instant>) {
        *self.inner.renewed.lock().unwrap_or_else(|e| e.into_inner()) = renewed;
    }

    /// Whether a write may go out now.
    pub fn holds(&self) -> bool {
        let Some(deadline) = self.inner.deadline else {
            return true;
        };
        self.inner
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < deadline)
    }
}

/// One candidate for one Lease.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: SignedDuration,
    retry: Duration,
    fence: Fence,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("lease", &self.name)
            .field("identity", &self.identity)
            .finish()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// A candidate `identity` (unique per replica, e.g. the pod name) for Lease `name`, holding
    /// it for `duration` and trying every `retry` (client-go: 15 s and 2 s).
    pub fn new(
        api: Api<Lease>,
        name: &str,
        identity: &str,
        duration: SignedDuration,
        retry: Duration,
    ) -> Self {
        Elector {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            retry,
            fence: Fence::with_deadline(Duration::from_secs_f64(
                duration.as_secs_f64().max(0.0) * 2.0 / 3.0,
            )),
        }
    }

    /// The fence of this candidate's leadership (see [`Fence`]).
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Reads the Lease, decides, and writes with the resourceVersion that was read. Returns
    /// whether this candidate holds the Lease now; losing a write race is `Ok(false)`.
    pub async fn try_once(&self) -> Result<bool, kube::Error> {
        // The fence counts from before the read: the Lease may be as old as that.
        let started = Instant::now();
        let held = self.try_once_inner().await;
        match &held {
            Ok(true) => self.fence.set(Some(started)),
            Ok(false) => self.fence.set(None),
            Err(_) => {}
        }
        held
    }

    async fn try_once_inner(&self) -> Result<bool, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        let spec = match decide(
            &self.identity,
            lease.as_ref(),
            Timestamp::now(),
            self.duration,
        ) {
            Decision::Follow { .. } => return Ok(false),
            Decision::Acquire(spec) | Decision::Renew(spec) => spec,
        };
        let result = match lease {
            None => {
                let new = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &new).await
            }
            Some(mut current) => {
                current.spec = Some(spec);
                self.api
                    .replace(&self.name, &PostParams::default(), &current)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this candidate holds it, so another replica can take over at once
    /// instead of after the Lease expires (for a graceful shutdown).
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let holds = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.identity.as_str());
        if !holds {
            return Ok(());
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
        }
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Campaigns until `shutdown`, publishing leadership on `leading`. Leadership is dropped
    /// when renewals keep failing for two thirds of the Lease duration (client-go's renew
    /// deadline), before the Lease can expire under a replica that still acts as leader.
    pub async fn run(
        self,
        leading: watch::Sender<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let deadline = Duration::from_secs_f64(self.duration.as_secs_f64() * 2.0 / 3.0);
        let mut last_renewal: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            // A request into a dead connection may hang for the client's timeouts: shutdown
            // must not wait for it.
            // Nor may the election: an answer that does not come within the renew deadline
            // counts as a failed renewal.
            let attempt = tokio::select! {
                _ = &mut shutdown => break,
                r = tokio::time::timeout(deadline, self.try_once()) => r,
            };
            match attempt {
                Err(_) => {
                    tracing::warn!(lease = %self.name, "leader election: no answer from the API server within {deadline:?}");
                    if last_renewal.is_none_or(|t| t.elapsed() > deadline) {
                        leading.send_if_modified(|l| std::mem::replace(l, false));
                    }
                }
                Ok(attempt) => match attempt {
                    Ok(true) => {
                        last_renewal = Some(Instant::now());
                        leading.send_if_modified(|l| !std::mem::replace(l, true));
                    }
                    Ok(false) => {
                        last_renewal = None;
                        leading.send_if_modified(|l| std::mem::replace(l, false));
                    }
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "leader election: cannot read or write the Lease");
                        if last_renewal.is_none_or(|t| t.elapsed() > deadline) {
                            leading.send_if_modified(|l| std::mem::replace(l, false));
                        }
                    }
                },
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.retry) => {}
            }
        }
        leading.send_if_modified(|l| std::mem::replace(l, false));
        self.fence.set(None);
        match tokio::time::timeout(crate::shutdown::LEASE_RELEASE_TIMEOUT, self.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.name, error = %e, "leader election: cannot release the Lease")
            }
            Err(_) => tracing::warn!(
                lease = %self.name,
                "leader election: the Lease was not released within {:?}; the next leader waits for it to expire",
                crate::shutdown::LEASE_RELEASE_TIMEOUT
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_holds_only_within_the_renew_deadline() {
        assert!(Fence::always().holds(), "no election: always");
        let f = Fence::with_deadline(Duration::from_secs(10));
        assert!(!f.holds(), "never renewed");
        f.set(Some(Instant::now()));
        assert!(f.holds(), "just renewed");
        f.set(Instant::now().checked_sub(Duration::from_secs(11)));
        assert!(
            !f.holds(),
            "renewed longer ago than the deadline (a frozen leader)"
        );
        f.set(None);
        assert!(!f.holds(), "lost");
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn lease(holder: &str, renewed: i64) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                acquire_time: Some(MicroTime(t(0))),
                renew_time: Some(MicroTime(t(renewed))),
                lease_duration_seconds: Some(15),
                lease_transitions: Some(2),
                ..Default::default()
            }),
        }
    }

    const D: SignedDuration = SignedDuration::from_secs(15);

    #[test]
    fn first_candidate_acquires_a_missing_lease() {
        let Decision::Acquire(s) = decide("a", None, t(0), D) else {
            panic!()
        };
        assert_eq!(s.holder_identity.as_deref(), Some("a"));
        assert_eq!(s.lease_transitions, Some(0));
        assert_eq!(s.lease_duration_seconds, Some(15));
    }

    #[test]
    fn holder_renews_and_others_follow_until_expiry() {
        let l = lease("a", 10);
        let Decision::Renew(s) = decide("a", Some(&l), t(12), D) else {
            panic!()
        };
        assert_eq!(s.renew_time, Some(MicroTime(t(12))));
        assert_eq!(s.acquire_time, Some(MicroTime(t(0))), "acquire time kept");
        assert_eq!(
            decide("b", Some(&l), t(24), D),
            Decision::Follow {
                holder: "a".into(),
                expires: t(25)
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let l = lease("a", 10);
        let Decision::Acquire(s) = decide("b", Some(&l), t(26), D) else {
            panic!()
        };
        assert_eq!(s.holder_identity.as_deref(), Some("b"));
        assert_eq!(s.lease_transitions, Some(3));
        assert_eq!(s.acquire_time, Some(MicroTime(t(26))));
    }

    #[test]
    fn a_released_lease_is_free() {
        let mut l = lease("", 10);
        l.spec.as_mut().unwrap().holder_identity = None;
        assert!(matches!(
            decide("b", Some(&l), t(11), D),
            Decision::Acquire(_)
        ));
    }
}
