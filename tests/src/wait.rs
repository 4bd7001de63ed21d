//! Polling and error helpers: a real cluster is eventually consistent (controllers,
//! the garbage collector and the RBAC authorizer's cache all lag a little).

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Result};

/// How often [`eventually`] polls.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Poll `check` until it returns `Ok(Some(value))`, for at most `timeout`.
///
/// `Ok(None)` means "not yet"; an `Err` is remembered and retried too (a transient
/// error should not fail a test), and the last one is reported on timeout, naming
/// `what` so the failure says what never happened.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_error {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The HTTP status code of an error the apiserver returned, if it is one.
///
/// Looks through `anyhow` context, so it works on errors from the harness too.
pub fn api_error_code(err: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
            return Some(status.code);
        }
        current = e.source();
    }
    None
}

/// True if `result` failed with an apiserver error of HTTP status `code`
/// (403 forbidden, 404 not found, 409 conflict, ...).
pub fn is_api_error<T>(result: &Result<T, kube::Error>, code: u16) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == code)
}
