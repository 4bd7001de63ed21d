//! How long each part of a shutdown may take (docs/controller.md, "Faults and shutdown").
//!
//! SIGTERM must end the process within a few seconds, well inside Kubernetes' default 30 s
//! grace period, whatever state it is in: starting, generating the first key, reconciling, or
//! cut off from an API server that is down. Every wait on the way out is bounded:
//!
//! - in-flight reconciles and HTTP requests get [`SHUTDOWN_DRAIN`] to finish, then are dropped
//!   (a reconcile is a sequence of single API writes, each applied or not, and the next leader
//!   starts over from what the API server holds);
//! - giving up the Lease gets [`LEASE_RELEASE_TIMEOUT`]; when it fails the next leader waits for
//!   the Lease to expire instead;
//! - the binary gives the whole of it [`SHUTDOWN_DEADLINE`] and then exits anyway, with a warning
//!   naming what was still running; key generation running on a blocking thread is abandoned
//!   (a key that was not stored is not used).

use std::time::Duration;

/// The longest wait for in-flight reconciles and HTTP requests after SIGTERM.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// The longest wait for the Lease to be given up after SIGTERM.
pub const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// From SIGTERM to exit at the latest, whatever is still running.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
