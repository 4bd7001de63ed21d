//! The `/v1/verify` rate limiter: GCRA exactly as Bitnami's `throttled` library computes it.
//!
//! Bitnami wraps `/v1/verify` in `throttled.HTTPRateLimiter` with
//! `RateQuota{MaxRate: PerSec(--rate-limit), MaxBurst: --rate-limit-burst}`, a 65536-entry
//! in-memory store and `VaryBy{Path: true, Headers: ["X-Forwarded-For"]}`. This module is a port
//! of that arithmetic (the generic cell rate algorithm), so clients see the same numbers:
//!
//! - emission interval `T = 1s / rate`, tolerance `τ = T × (burst + 1)`, limit `burst + 1`: a
//!   fresh client gets `burst + 1` requests at once (3 with the defaults), then one every `T`;
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds, rounded up)
//!   on every response of the limited route, plus `Retry-After` when a request is refused.
//!
//! It is a few lines of arithmetic, so it is written here rather than taken from `governor`:
//! governor's GCRA differs in details that show in these headers (its burst is the number of
//! requests at once, not `burst + 1`), it has no `throttled`-style header values, and the clock
//! is a small trait here so tests can move time by hand.
//!
//! Keys are hashed (with a per-process random key) before they are stored, so a client sending
//! huge `X-Forwarded-For` values cannot make the store large; at most [`MAX_KEYS`] keys are kept
//! and expired ones are dropped first when it is full. `X-Forwarded-For` is set by the client
//! unless a proxy rewrites it, so this limits accidents and polite clients, as Bitnami's does,
//! not a determined attacker.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many keys the store holds at most (Bitnami's `memstore.New(65536)`).
pub const MAX_KEYS: usize = 65_536;

/// A monotonic clock: the time elapsed since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since the clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<Mutex<Duration>>);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A rate or burst that `throttled` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate limit: --rate-limit must be greater than zero")]
pub struct InvalidQuota;

/// The outcome of one request against the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// True when the request must be refused (429).
    pub limited: bool,
    /// `X-RateLimit-Limit`: requests allowed at once (burst + 1).
    pub limit: u32,
    /// `X-RateLimit-Remaining`: requests still allowed right now.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: until the client is back to a full allowance.
    pub reset_after: Duration,
    /// `Retry-After`: until the next request would pass; only when limited.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// The response headers `throttled` sets, with durations as whole seconds rounded up.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", ceil_secs(self.reset_after).to_string()),
        ];
        if let Some(r) = self.retry_after {
            h.push(("retry-after", ceil_secs(r).to_string()));
        }
        h
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A GCRA rate limiter keyed by arbitrary strings.
#[derive(Debug)]
pub struct RateLimiter {
    emission: u128,
    tolerance: u128,
    limit: u32,
    clock: Arc<dyn Clock>,
    hasher: std::collections::hash_map::RandomState,
    /// Hashed key → theoretical arrival time (nanoseconds on `clock`).
    store: Mutex<HashMap<u64, u128>>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` extra at once (Bitnami's flags).
    pub fn new(rate: u32, burst: u32, clock: Arc<dyn Clock>) -> Result<Self, InvalidQuota> {
        if rate == 0 {
            return Err(InvalidQuota);
        }
        // throttled's PerSec(n): period = time.Second / n (integer nanoseconds).
        let emission = 1_000_000_000u128 / u128::from(rate);
        Ok(RateLimiter {
            emission,
            tolerance: emission * (u128::from(burst) + 1),
            limit: burst.saturating_add(1),
            clock,
            hasher: Default::default(),
            store: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request for `key` and says whether it may pass.
    pub fn check(&self, key: &str) -> Decision {
        let now = self.clock.now().as_nanos();
        let hashed = self.hasher.hash_one(key);
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let tat = store.get(&hashed).copied().unwrap_or(now);
        let new_tat = tat.max(now) + self.emission;
        let allow_at = new_tat.saturating_sub(self.tolerance);
        let (limited, ttl, retry_after) = if now < allow_at {
            // Refused: nothing is stored; the wait is until allow_at.
            (true, tat.saturating_sub(now), Some(allow_at - now))
        } else {
            if store.len() >= MAX_KEYS && !store.contains_key(&hashed) {
                evict(&mut store, now);
            }
            store.insert(hashed, new_tat);
            (false, new_tat - now, None)
        };
        // throttled: next = τ − ttl; remaining = next / T when next > −T (else 0).
        let remaining = self.tolerance.saturating_sub(ttl) / self.emission;
        Decision {
            limited,
            limit: self.limit,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after: nanos(ttl),
            retry_after: retry_after.map(nanos),
        }
    }
}

/// Makes room in a full store: drops every expired entry (a TAT in the past is the same as no
/// entry), and if none had expired, the one that expires first.
fn evict(store: &mut HashMap<u64, u128>, now: u128) {
    store.retain(|_, tat| *tat > now);
    if store.len() >= MAX_KEYS {
        if let Some(k) = store.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
            store.remove(&k);
        }
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

/// The key `throttled`'s `VaryBy{Headers: ["X-Forwarded-For"], Path: true}` builds: the
/// lower-cased first header value and the path, each followed by a newline.
pub fn vary_key(forwarded_for: Option<&[u8]>, path: &str) -> String {
    let xff = forwarded_for
        .map(|v| String::from_utf8_lossy(v).to_lowercase())
        .unwrap_or_default();
    format!("{xff}\n{path}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new();
        (
            RateLimiter::new(rate, burst, Arc::new(clock.clone())).unwrap(),
            clock,
        )
    }

    #[test]
    fn defaults_allow_burst_plus_one_then_one_per_period() {
        let (l, clock) = limiter(2, 2);
        let d: Vec<Decision> = (0..4).map(|_| l.check("k")).collect();
        assert_eq!(
            d.iter().map(|d| d.limited).collect::<Vec<_>>(),
            [false, false, false, true]
        );
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(d.iter().all(|d| d.limit == 3));
        assert_eq!(d[0].reset_after, Duration::from_millis(500));
        assert_eq!(d[2].reset_after, Duration::from_millis(1500));
        assert_eq!(d[3].retry_after, Some(Duration::from_millis(500)));
        assert_eq!(d[3].reset_after, Duration::from_millis(1500));
        assert_eq!(
            d[3].headers(),
            vec![
                ("x-ratelimit-limit", "3".to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", "2".to_string()),
                ("retry-after", "1".to_string()),
            ]
        );
        assert_eq!(d[0].headers().len(), 3, "Retry-After only when refused");

        clock.advance(Duration::from_millis(499));
        assert!(l.check("k").limited, "one period has not passed yet");
        clock.advance(Duration::from_millis(1));
        let ok = l.check("k");
        assert!(!ok.limited);
        assert_eq!(ok.remaining, 0);
        assert!(l.check("k").limited);

        clock.advance(Duration::from_secs(10));
        let fresh = l.check("k");
        assert!(!fresh.limited);
        assert_eq!(fresh.remaining, 2, "full allowance after a pause");
    }

    #[test]
    fn keys_are_independent() {
        let (l, _) = limiter(1, 0);
        assert!(!l.check("a").limited);
        assert!(l.check("a").limited);
        assert!(!l.check("b").limited);
    }

    #[test]
    fn zero_rate_is_refused() {
        assert_eq!(
            RateLimiter::new(0, 2, Arc::new(ManualClock::new())).unwrap_err(),
            InvalidQuota
        );
    }

    #[test]
    fn vary_key_matches_throttled() {
        assert_eq!(
            vary_key(Some(b"10.0.0.1, PROXY"), "/v1/verify"),
            "10.0.0.1, proxy\n/v1/verify\n"
        );
        assert_eq!(vary_key(None, "/v1/verify"), "\n/v1/verify\n");
    }

    #[test]
    fn a_full_store_drops_expired_keys() {
        let mut store: HashMap<u64, u128> = (0..MAX_KEYS as u64).map(|k| (k, 10)).collect();
        store.insert(u64::MAX, 1_000);
        evict(&mut store, 100);
        assert_eq!(store.len(), 1);
        let mut full: HashMap<u64, u128> = (0..MAX_KEYS as u64)
            .map(|k| (k, 200 + u128::from(k)))
            .collect();
        evict(&mut full, 100);
        assert_eq!(full.len(), MAX_KEYS - 1);
        assert!(!full.contains_key(&0), "the first to expire goes");
    }
}
