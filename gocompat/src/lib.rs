//! kseal-gocompat: the behaviour of Go's libraries that kseal reproduces so that its output and
//! its messages match what kubeseal, kubectl and Bitnami's controller print.
//!
//! - [`render`]: objects printed as Go's `encoding/json` and `sigs.k8s.io/yaml` print them.
//! - [`duration`]: Go's `time.ParseDuration` and `Duration.String`, for every duration flag.
//! - [`quote`]: Go's `%q`, and the JSON-compatible double-quoted scalar YAML writers use.
//! - [`strconv`]: Go's `strconv.ParseBool` and its error text, as pflag reports it.
//!
//! Boundaries: pure functions over strings and serde values; no Kubernetes types, no I/O.

pub mod duration;
pub mod quote;
pub mod render;
pub mod strconv;

pub use render::{to_go_json, to_k8s_yaml};
