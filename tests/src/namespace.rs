//! A fresh namespace per test.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Resource};

use crate::cluster::{client_from_kubeconfig, Cluster};

/// Label on every namespace the harness creates, so leftovers of killed runs on a
/// long-lived (external) cluster can be found: `kubectl delete ns -l app.kubernetes.io/managed-by=kseal-e2e`.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "kseal-e2e");

/// How long a drop-time cleanup may block the dropping thread.
const DROP_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A namespace that exists for one test.
///
/// It is created with `generateName`, so tests never collide, also not across
/// processes or with leftovers of earlier runs. Delete it with
/// [`cleanup`](Self::cleanup) at the end of the test to see errors; if the test
/// panics first, `Drop` deletes it on a best-effort basis.
///
/// Cluster-scoped objects a test creates (CRDs, ClusterRoles, ...) should carry
/// [`owner_reference`](Self::owner_reference): the garbage collector then deletes
/// them with the namespace.
pub struct TestNamespace {
    name: String,
    uid: String,
    client: Client,
    /// Admin kubeconfig, to build a client on another runtime in `Drop`.
    kubeconfig: PathBuf,
    deleted: bool,
}

impl TestNamespace {
    /// Create a namespace named `kseal-e2e-<prefix>-<random>` on [`Cluster::shared`].
    pub async fn new(prefix: &str) -> Result<Self> {
        Self::create_on(Cluster::shared()?, prefix).await
    }

    /// Create a namespace named `kseal-e2e-<prefix>-<random>` on `cluster`.
    pub async fn create_on(cluster: &Cluster, prefix: &str) -> Result<Self> {
        let client = cluster.admin_client().await?;
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("kseal-e2e-{}-", sanitize(prefix))),
                labels: Some(
                    [(MANAGED_BY_LABEL.0.to_owned(), MANAGED_BY_LABEL.1.to_owned())].into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .context("creating test namespace")?;
        let name = created
            .metadata
            .name
            .context("created namespace has no name")?;
        let uid = created
            .metadata
            .uid
            .context("created namespace has no uid")?;
        Ok(TestNamespace {
            name,
            uid,
            client,
            kubeconfig: cluster.kubeconfig_path().to_owned(),
            deleted: false,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin client this namespace was created with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An admin `Api` for namespaced resources of kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The admin kubeconfig this namespace was created with.
    pub(crate) fn admin_kubeconfig_path(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// An ownerReference to this namespace, for cluster-scoped objects that
    /// should disappear together with it.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Namespace".to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }

    /// Delete the namespace (and through the garbage collector whatever it owns).
    ///
    /// Does not wait for the namespace controller to finish: names are never
    /// reused, so nothing waits on it.
    pub async fn cleanup(mut self) -> Result<()> {
        self.deleted = true;
        delete_namespace(&self.client, &self.name).await
    }
}

impl std::fmt::Debug for TestNamespace {
    // By hand: kube::Client is not Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .field("uid", &self.uid)
            .field("kubeconfig", &self.kubeconfig)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // Drop may run inside the test's runtime (a panic unwinding), while it shuts
        // down, or after it is gone: `block_on` is not allowed in the first case and
        // the test's client may be dead in the others. A new thread with its own
        // runtime and client works in all of them.
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("cleanup-{name}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building a runtime")
                    .and_then(|rt| {
                        rt.block_on(async {
                            let client = client_from_kubeconfig(&kubeconfig).await?;
                            delete_namespace(&client, &name).await
                        })
                    });
                let _ = done_tx.send(result);
            });
        let outcome = match spawned {
            Ok(_) => done_rx
                .recv_timeout(DROP_CLEANUP_TIMEOUT)
                .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            eprintln!(
                "kseal-e2e: could not delete test namespace {} on drop: {e:#}",
                self.name
            );
        }
    }
}

async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting test namespace {name}")),
    }
}

/// Make `prefix` usable in a namespace name: lowercase alphanumerics and dashes,
/// short enough that `kseal-e2e-<prefix>-` plus the 5 random characters of
/// `generateName` stay within the 63 characters of a DNS label.
fn sanitize(prefix: &str) -> String {
    let mut out: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("test");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitize_makes_dns_labels() {
        assert_eq!(sanitize("Smoke_Test"), "smoke-test");
        assert_eq!(sanitize("--"), "test");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 40);
        assert_eq!(sanitize("a.b-"), "a-b");
    }
}
