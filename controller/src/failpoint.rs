//! Crash points for the fault tests (docs/testing.md, "Faults"): debug builds only.
//!
//! `KSEAL_FAILPOINTS=after-secret-write=40,after-key-write=1` makes the process abort (as
//! SIGKILL would: no unwinding, no shutdown) at the 40th Secret write and at the first key
//! Secret write, each right after the API server accepted the write and before anything that
//! follows it (the status write, the certificate, registering the key). That is the window a
//! crash is hardest on, and a random SIGKILL hits it rarely. Release builds compile every
//! point to nothing and never read the variable.

/// After a Secret of a SealedSecret is created or replaced, before its status is written.
pub const AFTER_SECRET_WRITE: &str = "after-secret-write";
/// After a new key Secret (RSA) is created, before the key is registered or published.
pub const AFTER_KEY_WRITE: &str = "after-key-write";

/// Counts a pass through `point` and aborts the process when it reaches the configured count.
#[inline]
pub fn hit(point: &str) {
    #[cfg(debug_assertions)]
    imp::hit(point);
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(debug_assertions)]
mod imp {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    struct Points {
        at: HashMap<String, u64>,
        seen: Mutex<HashMap<String, u64>>,
    }

    fn points() -> &'static Points {
        static POINTS: OnceLock<Points> = OnceLock::new();
        POINTS.get_or_init(|| {
            let at = std::env::var("KSEAL_FAILPOINTS")
                .unwrap_or_default()
                .split(',')
                .filter_map(|p| {
                    let (name, n) = p.trim().split_once('=').unwrap_or((p.trim(), "1"));
                    let n = n.trim().parse().ok()?;
                    (!name.is_empty()).then(|| (name.to_string(), n))
                })
                .collect();
            Points {
                at,
                seen: Mutex::default(),
            }
        })
    }

    pub(super) fn hit(point: &str) {
        let p = points();
        let Some(&at) = p.at.get(point) else {
            return;
        };
        let mut seen = p.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(point.to_string()).or_default();
        *n += 1;
        if *n == at {
            eprintln!("kseal-controller: failpoint {point} reached ({at}): aborting");
            std::process::abort();
        }
    }
}
