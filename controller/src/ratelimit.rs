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
//! Keys are hashed (with a per-process random key) before they are stored; at most
//! [`MAX_KEYS`] keys are kept and expired ones are dropped first when it is full.
//!
//! # Who the client is
//!
//! Bitnami keys on `X-Forwarded-For`, which the client chooses: six values, six buckets. kseal
//! keys on the TCP peer address ([`client_key`]). Requests through the API server's service
//! proxy all come from the API server, which appends the real client's address to
//! `X-Forwarded-For`; only when the peer is in `--trusted-proxies` is that header read, from the
//! right, skipping trusted addresses, so a client cannot choose its own bucket.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::str::FromStr;
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

/// The limiter key: the client and the path, each followed by a newline (the layout of
/// `throttled`'s `VaryBy{Path: true}` keys).
pub fn vary_key(client: &str, path: &str) -> String {
    format!("{client}\n{path}\n")
}

/// An IP network: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| "not an IP address or CIDR".to_string())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses `--trusted-proxies`: comma-separated addresses or CIDRs; the error names the item
/// by position.
pub fn parse_cidrs(list: &str) -> Result<Vec<Cidr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| s.parse().map_err(|e| format!("item {}: {e}", i + 1)))
        .collect()
}

/// Who a request comes from (see the module docs): the TCP peer, or, when the peer is a
/// trusted proxy, the right-most `X-Forwarded-For` address that is not itself trusted. A
/// header that does not parse counts as the peer.
pub fn client_key(peer: Option<IpAddr>, forwarded_for: Option<&[u8]>, trusted: &[Cidr]) -> String {
    let Some(peer) = peer else {
        return String::new();
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer.to_string();
    }
    let Some(header) = forwarded_for.and_then(|h| std::str::from_utf8(h).ok()) else {
        return peer.to_string();
    };
    for hop in header.rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return ip.to_string(),
            Err(_) => break,
        }
    }
    peer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_peer_unless_it_is_a_trusted_proxy() {
        let trusted = parse_cidrs("10.0.0.0/8, 192.168.1.1").unwrap();
        let peer = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A client chooses its X-Forwarded-For: ignored from an untrusted peer.
        assert_eq!(
            client_key(peer("172.16.0.5"), Some(b"1.2.3.4"), &trusted),
            "172.16.0.5"
        );
        // The API server (trusted) appended the real client; earlier hops are the client's.
        assert_eq!(
            client_key(peer("10.1.2.3"), Some(b"6.6.6.6, 172.16.0.9"), &trusted),
            "172.16.0.9"
        );
        assert_eq!(
            client_key(peer("10.1.2.3"), Some(b"172.16.0.9, 10.9.9.9"), &trusted),
            "172.16.0.9"
        );
        assert_eq!(
            client_key(peer("10.1.2.3"), Some(b"junk"), &trusted),
            "10.1.2.3"
        );
        assert_eq!(client_key(peer("10.1.2.3"), None, &trusted), "10.1.2.3");
        assert_eq!(
            client_key(peer("::ffff:10.0.0.1"), Some(b"8.8.8.8"), &trusted),
            "8.8.8.8"
        );
        assert_eq!(
            client_key(peer("192.168.1.2"), Some(b"8.8.8.8"), &trusted),
            "192.168.1.2"
        );
        assert_eq!(
            parse_cidrs("10.0.0.0/33").unwrap_err(),
            "item 1: the prefix length must be 0 to 32"
        );
        assert!(parse_cidrs("fd00::/8,").unwrap()[0].contains("fd12::1".parse().unwrap()));
        assert!(parse_cidrs("0.0.0.0/0").unwrap()[0].contains("9.9.9.9".parse().unwrap()));
    }

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
    fn vary_key_is_client_and_path() {
        assert_eq!(vary_key("10.0.0.1", "/v1/verify"), "10.0.0.1\n/v1/verify\n");
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
