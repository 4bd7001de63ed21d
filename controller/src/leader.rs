//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it.
//!
//! Only the leader reconciles and renews keys; every replica serves the certificate and
//! `/v1/verify`. The decision ([`decide`]) is pure; the caller reads the Lease, asks what to do,
//! and writes the result with the resourceVersion it read, so two candidates racing for an
//! expired Lease cannot both win (one gets a 409 Conflict and stays a follower).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

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

#[cfg(test)]
mod tests {
    use super::*;
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
