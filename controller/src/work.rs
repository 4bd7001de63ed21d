//! One limit on concurrent private-key work for the whole process.
//!
//! Reconciles, `/v1/verify` and `/v1/rotate` (and any later admission check) decrypt with the
//! private keys: an RSA private operation per item, on a blocking thread. All of them take a
//! permit from one [`PrivateKeyWork`] first, sized to the CPUs the process may use (the cgroup
//! CPU limit is honoured by [`std::thread::available_parallelism`]), so requests from anyone who
//! can reach the HTTP port cannot starve reconciling, and no mix of the three can start more CPU
//! work than there are CPUs. HTTP handlers wait at most [`HTTP_WAIT`] for a permit and then
//! answer 503; reconciles wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an HTTP request waits for a permit before it is answered 503.
pub const HTTP_WAIT: Duration = Duration::from_secs(10);

/// The shared limit (cheap to clone).
#[derive(Debug, Clone)]
pub struct PrivateKeyWork {
    sem: Arc<Semaphore>,
    permits: usize,
}

impl Default for PrivateKeyWork {
    fn default() -> Self {
        Self::for_this_machine()
    }
}

impl PrivateKeyWork {
    /// A limit of `permits` (at least 1) concurrent private-key tasks.
    pub fn new(permits: usize) -> Self {
        let permits = permits.max(1);
        PrivateKeyWork {
            sem: Arc::new(Semaphore::new(permits)),
            permits,
        }
    }

    /// One permit per CPU this process may use.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// How many tasks may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Waits for a permit; the work may start once it is held, and ends when it drops.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.sem
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// A permit within `wait`, or `None`.
    pub async fn acquire_within(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.acquire()).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_are_shared_and_bounded() {
        let w = PrivateKeyWork::new(2);
        let a = w.acquire().await;
        let _b = w.clone().acquire().await;
        assert!(w.acquire_within(Duration::from_millis(20)).await.is_none());
        drop(a);
        assert!(w.acquire_within(Duration::from_millis(20)).await.is_some());
        assert_eq!(PrivateKeyWork::new(0).permits(), 1);
    }
}
