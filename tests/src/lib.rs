//! End-to-end test harness: kseal against a real kube-apiserver.
//!
//! The pieces, in the order a test meets them:
//!
//! - [`Cluster::shared`] gives the control plane of this test run. By default that
//!   is the local etcd + kube-apiserver + kube-controller-manager v1.20.2 that
//!   `tests/control-plane/cluster.sh up` builds and starts (once per machine: the
//!   script is idempotent and locked, so every test process, including the one
//!   process per test of cargo-nextest, shares it). With `KSEAL_E2E_KUBECONFIG` set
//!   it is that cluster instead (kind, k3d, ...), and the harness needs nothing but
//!   that kubeconfig.
//! - [`TestNamespace::new`] creates a fresh namespace for one test and deletes it
//!   again, explicitly via [`TestNamespace::cleanup`] or, if the test panics, on drop.
//! - [`TestNamespace::identity`] and friends create a ServiceAccount with exactly
//!   the RBAC rules a test asks for, and hand back an [`Identity`]: a kubeconfig
//!   *file* (to pass to a spawned controller as `--kubeconfig`) and clients, so tests
//!   exercise RBAC instead of running everything as cluster-admin.
//! - [`Controller`] runs `kseal-controller` for one test under the least-privilege RBAC of
//!   `controller/deploy/rbac.yaml`, watching only the namespaces the test names; the
//!   [`controller`] module also holds the unseal scenarios' fixtures (the base Secret sealed
//!   with the cluster's newest certificate, Events, the Synced condition, Bitnami's timings).
//! - [`ProxiedController`] runs it inside a network namespace ([`NetNs`]) behind a Service, so
//!   that the API server's service proxy reaches it, as kubeseal and `kseal` do
//!   ([`netns`] module).
//!
//! - [`OwnCluster`] starts a control plane of one test's own, for tests that install into
//!   kube-system under the default names (the README's quick starts, the kustomize base).
//!
//! Tearing the local control plane down at the end of a run is the job of
//! `tests/run-e2e.sh` (a test process cannot know it is the last one).
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Secret;
//! use kseal_e2e::{eventually, is_api_error, rule, TestNamespace};
//!
//! #[tokio::test]
//! async fn reader_cannot_write() -> anyhow::Result<()> {
//!     let ns = TestNamespace::new("reader").await?;
//!     let reader = ns.identity("reader", vec![rule(&[""], &["secrets"], &["get", "list"])]).await?;
//!     // reader.kubeconfig_path() is a kubeconfig file for a spawned process.
//!     let secrets = kseal_e2e::kube::Api::<Secret>::namespaced(reader.client().await?, ns.name());
//!     let created = secrets.create(&Default::default(), &Secret::default()).await;
//!     assert!(is_api_error(&created, 403));
//!     eventually("the secret to appear", std::time::Duration::from_secs(30), || async {
//!         Ok(ns.api::<Secret>().get_opt("x").await?)
//!     })
//!     .await?;
//!     ns.cleanup().await
//! }
//! ```

pub mod bins;
mod cluster;
pub mod controller;
pub mod faults;
mod identity;
mod namespace;
pub mod netns;
mod own_cluster;
mod wait;

pub use cluster::{Cluster, ClusterKind, LocalState};
pub use controller::{Controller, ControllerBuilder};
pub use identity::{Identity, Permissions};
pub use namespace::TestNamespace;
pub use netns::{NetNs, ProxiedController};
pub use own_cluster::{apply_kustomization, OwnCluster};
pub use wait::{api_error_code, eventually, is_api_error};

/// Re-exported so tests can build PolicyRules etc. without naming versions twice.
pub use k8s_openapi;
pub use kube;

/// Shorthand for an RBAC rule: `rule(&[""], &["configmaps"], &["get", "list"])`.
pub fn rule(
    api_groups: &[&str],
    resources: &[&str],
    verbs: &[&str],
) -> k8s_openapi::api::rbac::v1::PolicyRule {
    let owned = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(owned(api_groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        ..Default::default()
    }
}
