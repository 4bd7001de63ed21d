//! Non-admin identities: a ServiceAccount with exactly the RBAC rules a test asks for.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::cluster::client_from_kubeconfig;
use crate::namespace::TestNamespace;
use crate::wait::eventually;

/// Lifetime of the identity's token. Long enough for any test; the TokenRequest
/// API accepts 10 minutes and more.
const TOKEN_LIFETIME_SECONDS: i64 = 2 * 60 * 60;

/// How long to wait for new RoleBindings to reach the RBAC authorizer's cache.
const RBAC_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What an [`Identity`] may do.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Rules of a Role bound in the test namespace only.
    pub namespaced: Vec<PolicyRule>,
    /// Rules of a ClusterRole bound cluster-wide (e.g. for a controller that
    /// watches all namespaces). The ClusterRole and its binding are owned by the
    /// test namespace, so they are garbage-collected with it.
    pub cluster_wide: Vec<PolicyRule>,
}

/// A ServiceAccount of the test namespace, with a kubeconfig file that
/// authenticates as it (a bearer token from the TokenRequest API).
///
/// The file lives in a private temporary directory that is removed when the
/// `Identity` is dropped; keep the `Identity` alive while a process uses it.
#[derive(Debug)]
pub struct Identity {
    namespace: String,
    service_account: String,
    kubeconfig: PathBuf,
    _dir: TempDir,
}

impl Identity {
    /// The ServiceAccount's name.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The ServiceAccount's namespace (the test namespace).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The user name RBAC sees: `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// A kubeconfig file for this identity, e.g. for `kseal-controller --kubeconfig`.
    /// Its default namespace is the test namespace.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A new client acting as this identity, built from [`kubeconfig_path`](Self::kubeconfig_path)
    /// (so a test using it also proves the file works).
    pub async fn client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }
}

impl TestNamespace {
    /// A ServiceAccount `name` bound to a Role with `rules` in this namespace.
    pub async fn identity(&self, name: &str, rules: Vec<PolicyRule>) -> Result<Identity> {
        self.identity_with(
            name,
            Permissions {
                namespaced: rules,
                ..Default::default()
            },
        )
        .await
    }

    /// A ServiceAccount `name` bound cluster-wide to a ClusterRole with `rules`.
    pub async fn cluster_identity(&self, name: &str, rules: Vec<PolicyRule>) -> Result<Identity> {
        self.identity_with(
            name,
            Permissions {
                cluster_wide: rules,
                ..Default::default()
            },
        )
        .await
    }

    /// A ServiceAccount `name` with the given namespaced and cluster-wide rules.
    ///
    /// Returns once the apiserver's authorizer grants the first verb of every rule
    /// (checked with SubjectAccessReviews), so a test can use the identity at once.
    pub async fn identity_with(&self, name: &str, permissions: Permissions) -> Result<Identity> {
        let client = self.client().clone();
        let ns = self.name();
        let pp = PostParams::default();
        let subject = Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(ns.to_owned()),
            ..Default::default()
        };

        let sa = ServiceAccount {
            metadata: meta(name, Some(ns), None),
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .create(&pp, &sa)
            .await
            .with_context(|| format!("creating ServiceAccount {ns}/{name}"))?;

        if !permissions.namespaced.is_empty() {
            let role = Role {
                metadata: meta(name, Some(ns), None),
                rules: Some(permissions.namespaced.clone()),
            };
            Api::<Role>::namespaced(client.clone(), ns)
                .create(&pp, &role)
                .await
                .with_context(|| format!("creating Role {ns}/{name}"))?;
            let binding = RoleBinding {
                metadata: meta(name, Some(ns), None),
                role_ref: role_ref("Role", name),
                subjects: Some(vec![subject.clone()]),
            };
            Api::<RoleBinding>::namespaced(client.clone(), ns)
                .create(&pp, &binding)
                .await
                .with_context(|| format!("creating RoleBinding {ns}/{name}"))?;
        }

        if !permissions.cluster_wide.is_empty() {
            // Cluster-scoped names must be unique across concurrent tests.
            let cluster_name = format!("kseal-e2e:{ns}:{name}");
            let owner = Some(vec![self.owner_reference()]);
            let role = ClusterRole {
                metadata: meta(&cluster_name, None, owner.clone()),
                rules: Some(permissions.cluster_wide.clone()),
                ..Default::default()
            };
            Api::<ClusterRole>::all(client.clone())
                .create(&pp, &role)
                .await
                .with_context(|| format!("creating ClusterRole {cluster_name}"))?;
            let binding = ClusterRoleBinding {
                metadata: meta(&cluster_name, None, owner),
                role_ref: role_ref("ClusterRole", &cluster_name),
                subjects: Some(vec![subject]),
            };
            Api::<ClusterRoleBinding>::all(client.clone())
                .create(&pp, &binding)
                .await
                .with_context(|| format!("creating ClusterRoleBinding {cluster_name}"))?;
        }

        let token = request_token(&client, ns, name).await?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("kseal-e2e-identity-{name}-"))
            .tempdir()
            .context("creating a directory for the identity's kubeconfig")?;
        let kubeconfig = dir.path().join("kubeconfig");
        let username = format!("system:serviceaccount:{ns}:{name}");
        let contents = self.derived_kubeconfig(&username, &token)?;
        write_private(&kubeconfig, contents.as_bytes())?;

        let identity = Identity {
            namespace: ns.to_owned(),
            service_account: name.to_owned(),
            kubeconfig,
            _dir: dir,
        };
        for rule in &permissions.namespaced {
            wait_until_allowed(&client, &identity, rule, Some(ns)).await?;
        }
        for rule in &permissions.cluster_wide {
            wait_until_allowed(&client, &identity, rule, None).await?;
        }
        Ok(identity)
    }

    /// A kubeconfig for the admin kubeconfig's current cluster with a token user.
    ///
    /// The cluster entry (server, CA, TLS server name, proxy) is copied as is, so
    /// this works for any cluster the admin kubeconfig reaches; no CA key needed.
    fn derived_kubeconfig(&self, username: &str, token: &str) -> Result<String> {
        let admin_path = self.admin_kubeconfig_path();
        let admin = kube::config::Kubeconfig::read_from(admin_path)
            .with_context(|| format!("reading {}", admin_path.display()))?;
        let context_name = admin
            .current_context
            .as_deref()
            .with_context(|| format!("{} has no current-context", admin_path.display()))?;
        let context = admin
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .with_context(|| format!("context {context_name} not in {}", admin_path.display()))?;
        let mut cluster = admin
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.clone())
            .with_context(|| {
                format!(
                    "cluster {} not in {}",
                    context.cluster,
                    admin_path.display()
                )
            })?;
        // A relative CA path is relative to the admin kubeconfig, not to ours.
        if let Some(ca) = cluster.certificate_authority.as_mut() {
            if Path::new(ca).is_relative() {
                if let Some(dir) = admin_path.parent() {
                    *ca = dir.join(&*ca).to_string_lossy().into_owned();
                }
            }
        }
        let cluster: Value = serde_json::to_value(&cluster).context("serializing cluster entry")?;
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "kseal-e2e", "cluster": cluster }],
            "users": [{ "name": username, "user": { "token": token } }],
            "contexts": [{
                "name": "kseal-e2e",
                "context": { "cluster": "kseal-e2e", "user": username, "namespace": self.name() },
            }],
            "current-context": "kseal-e2e",
        });
        serde_yaml::to_string(&config).context("serializing kubeconfig")
    }
}

fn meta(
    name: &str,
    namespace: Option<&str>,
    owner_references: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        owner_references,
        ..Default::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

/// A bearer token for the ServiceAccount, for the apiserver's default audiences.
async fn request_token(client: &Client, ns: &str, name: &str) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(TOKEN_LIFETIME_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let response = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {ns}/{name}"))?;
    let token = response.status.map(|s| s.token).unwrap_or_default();
    if token.is_empty() {
        bail!("TokenRequest for ServiceAccount {ns}/{name} returned no token");
    }
    Ok(token)
}

/// Create `path` readable by its owner only (it holds a credential).
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Wait until the authorizer allows `identity` the first verb on the first
/// resource of `rule`. RBAC reads bindings from an informer cache, so a fresh
/// binding takes effect a moment after it is created.
async fn wait_until_allowed(
    admin: &Client,
    identity: &Identity,
    rule: &PolicyRule,
    namespace: Option<&str>,
) -> Result<()> {
    let Some(verb) = rule.verbs.first() else {
        return Ok(());
    };
    let mut spec = SubjectAccessReviewSpec {
        user: Some(identity.username()),
        groups: Some(vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", identity.namespace()),
            "system:authenticated".to_owned(),
        ]),
        ..Default::default()
    };
    if let Some(path) = rule.non_resource_urls.as_ref().and_then(|u| u.first()) {
        spec.non_resource_attributes = Some(NonResourceAttributes {
            path: Some(path.clone()),
            verb: Some(verb.clone()),
        });
    } else {
        let first = |xs: &Option<Vec<String>>| xs.as_ref().and_then(|v| v.first()).cloned();
        let resource = first(&rule.resources).unwrap_or_else(|| "*".to_owned());
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
            None => (resource, None),
        };
        spec.resource_attributes = Some(ResourceAttributes {
            group: first(&rule.api_groups),
            resource: Some(resource),
            subresource,
            name: first(&rule.resource_names),
            namespace: namespace.map(str::to_owned),
            verb: Some(verb.clone()),
            ..Default::default()
        });
    }
    let review = SubjectAccessReview {
        spec,
        ..Default::default()
    };
    let api = Api::<SubjectAccessReview>::all(admin.clone());
    eventually(
        &format!(
            "RBAC to allow {} to {verb} per {rule:?}",
            identity.username()
        ),
        RBAC_PROPAGATION_TIMEOUT,
        || async {
            let result = api.create(&PostParams::default(), &review).await?;
            Ok(result.status.filter(|s| s.allowed).map(|_| ()))
        },
    )
    .await
}
