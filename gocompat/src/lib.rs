//! kseal-gocompat: the behaviour of Go's libraries that kseal reproduces so that its output and
//! its messages match what kubeseal, kubectl and Bitnami's controller print.
//!
//! - [`render`]: objects printed as Go's `encoding/json` and `sigs.k8s.io/yaml` print them.
//!
//! Boundaries: pure functions over serde values; no Kubernetes types, no I/O.

pub mod render;

pub use render::{to_go_json, to_k8s_yaml};
