//! kseal-controller: turns SealedSecrets into Secrets inside the cluster.
//!
//! The core is [`planner::plan`]: a pure function from (SealedSecret, existing Secret, keyring,
//! now) to what to write and which status and events to report. Everything that talks to the
//! API server is a thin layer around it, so every reconcile rule (docs/compatibility.md, “Reconciling”, R-01..R-15) is
//! tested without a cluster.

pub mod admission;
pub mod app;
pub mod config;
pub mod events;
pub mod failpoint;
pub mod http;
pub mod hygiene;
pub mod keys;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod planner;
pub mod ratelimit;
pub mod reconciler;
pub mod shutdown;
pub mod web;
pub mod work;
