//! The cluster client of the kubeseal front: kseal's own ([`crate::cluster::client`]) when only
//! `--kubeconfig` / `--context` are given, else the kubeconfig with client-go's override flags
//! applied, as `clientcmd` applies them: `--server`, `--token`, `--certificate-authority`,
//! `--client-certificate`, `--client-key`, `--insecure-skip-tls-verify`, `--tls-server-name`,
//! `--disable-compression`, `--username`, `--password`, `--as`, `--as-group`, `--as-uid`,
//! `--cluster`, `--user`, `--request-timeout`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use kube::config::{AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig};
use kube::config::{NamedAuthInfo, NamedCluster, NamedContext};
use kube::Client;

use super::flags::Flags;
use crate::cluster::ClusterArgs;

/// Name of the context, cluster and user made from the flags when the kubeconfig has none.
const FROM_FLAGS: &str = "kubeseal-flags";

/// kseal's cluster arguments for these flags.
pub fn cluster_args(f: &Flags) -> ClusterArgs {
    ClusterArgs {
        kubeconfig: Some(f.kubeconfig.as_str())
            .filter(|p| !p.is_empty())
            .map(Into::into),
        context: Some(f.context.clone()).filter(|c| !c.is_empty()),
        controller_name: f.controller_name.clone(),
        controller_namespace: f.controller_namespace.clone(),
        cert_configmap: None,
    }
}

/// Whether any client-go flag beyond `--kubeconfig` / `--context` is set.
fn has_overrides(f: &Flags) -> bool {
    let strings = [
        &f.server,
        &f.token,
        &f.certificate_authority,
        &f.client_certificate,
        &f.client_key,
        &f.tls_server_name,
        &f.username,
        &f.password,
        &f.as_user,
        &f.as_uid,
        &f.cluster,
        &f.user,
        &f.proxy_url,
    ];
    strings.iter().any(|s| !s.is_empty())
        || !f.as_groups.is_empty()
        || f.insecure_skip_tls_verify
        || f.disable_compression
        || request_timeout(f).ok().flatten().is_some()
}

/// A client for the cluster the flags name.
pub async fn client(f: &Flags) -> Result<Client> {
    if !f.proxy_url.is_empty() {
        bail!("--proxy-url is not supported by kseal's kubeseal; set HTTPS_PROXY for the API server's address instead, or remove the flag");
    }
    let timeout = request_timeout(f)?;
    if !has_overrides(f) {
        return crate::cluster::client(&cluster_args(f)).await;
    }
    let kubeconfig = overridden_kubeconfig(f)?;
    let options = KubeConfigOptions {
        context: kubeconfig.current_context.clone(),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("invalid configuration")?;
    if let Some(t) = timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    if f.disable_compression {
        config.disable_compression = true;
    }
    Client::try_from(config).context("cannot build the Kubernetes client")
}

/// `--request-timeout` as client-go reads it: whole seconds, or a Go duration (`1s`, `2m`,
/// `1h30m`); zero means none.
pub fn request_timeout(f: &Flags) -> Result<Option<Duration>> {
    let v = f.request_timeout.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => kseal_gocompat::duration::parse_non_negative(v).map_err(|_| {
            anyhow!("Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)")
        })?,
    };
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// The kubeconfig (`--kubeconfig`, else `$KUBECONFIG` / `~/.kube/config`, else empty) with the
/// flags applied to the context they select; its current context is the one to use.
fn overridden_kubeconfig(f: &Flags) -> Result<Kubeconfig> {
    let mut kc = if f.kubeconfig.is_empty() {
        Kubeconfig::read().unwrap_or_default()
    } else {
        Kubeconfig::read_from(&f.kubeconfig)
            .with_context(|| format!("cannot read kubeconfig {}", f.kubeconfig))?
    };
    let ctx_name = Some(f.context.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| kc.current_context.clone().filter(|c| !c.is_empty()));
    let existing = ctx_name
        .as_ref()
        .and_then(|n| kc.contexts.iter().find(|c| &c.name == n))
        .and_then(|c| c.context.clone());
    if existing.is_none() && !f.context.is_empty() {
        bail!("context was not found for specified context: {}", f.context);
    }
    let ctx_name = ctx_name
        .filter(|_| existing.is_some())
        .unwrap_or_else(|| FROM_FLAGS.to_string());
    let mut ctx = existing.unwrap_or(Context {
        cluster: String::new(),
        user: None,
        namespace: None,
        extensions: None,
        other: Default::default(),
    });
    if !f.cluster.is_empty() {
        ctx.cluster = f.cluster.clone();
    }
    if !f.user.is_empty() {
        ctx.user = Some(f.user.clone());
    }
    if ctx.cluster.is_empty() {
        ctx.cluster = FROM_FLAGS.to_string();
    }
    let user_name = ctx.user.clone().unwrap_or_else(|| FROM_FLAGS.to_string());
    ctx.user = Some(user_name.clone());

    // The cluster.
    let mut cluster: Cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .unwrap_or_default();
    if !f.server.is_empty() {
        cluster.server = Some(f.server.clone());
    }
    if !f.certificate_authority.is_empty() {
        cluster.certificate_authority = Some(f.certificate_authority.clone());
        cluster.certificate_authority_data = None;
    }
    if f.insecure_skip_tls_verify {
        // client-go drops the CA when the flag asks for no verification.
        cluster.insecure_skip_tls_verify = Some(true);
        cluster.certificate_authority = None;
        cluster.certificate_authority_data = None;
    }
    if !f.tls_server_name.is_empty() {
        cluster.tls_server_name = Some(f.tls_server_name.clone());
    }
    if f.disable_compression {
        cluster.disable_compression = Some(true);
    }
    if cluster.server.as_deref().unwrap_or("").is_empty() {
        bail!("invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable");
    }

    // The user.
    let mut user: AuthInfo = kc
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .unwrap_or_default();
    // Secret-holding fields are set through serde (their type is kube's private choice).
    let secret = |key: &str, value: &str| -> Result<AuthInfo> {
        serde_json::from_value(serde_json::json!({ key: value }))
            .context("cannot apply the credential flags")
    };
    if !f.token.is_empty() {
        user.token = secret("token", &f.token)?.token;
        user.token_file = None;
        user.exec = None;
        user.auth_provider = None;
    }
    if !f.client_certificate.is_empty() {
        user.client_certificate = Some(f.client_certificate.clone());
        user.client_certificate_data = None;
    }
    if !f.client_key.is_empty() {
        user.client_key = Some(f.client_key.clone());
        user.client_key_data = None;
    }
    if !f.username.is_empty() {
        user.username = Some(f.username.clone());
    }
    if !f.password.is_empty() {
        user.password = secret("password", &f.password)?.password;
    }
    if !f.as_user.is_empty() {
        user.impersonate = Some(f.as_user.clone());
    }
    if !f.as_groups.is_empty() {
        user.impersonate_groups = Some(f.as_groups.clone());
    }
    if !f.as_uid.is_empty() {
        user.impersonate_uid = Some(f.as_uid.clone());
    }

    let cluster_name = ctx.cluster.clone();
    replace_named(
        &mut kc.clusters,
        NamedCluster {
            name: cluster_name.clone(),
            cluster: Some(cluster),
            other: Default::default(),
        },
        |c| c.name == cluster_name,
    );
    replace_named(
        &mut kc.auth_infos,
        NamedAuthInfo {
            name: user_name.clone(),
            auth_info: Some(user),
            other: Default::default(),
        },
        |u| u.name == user_name,
    );
    let name = ctx_name.clone();
    replace_named(
        &mut kc.contexts,
        NamedContext {
            name: ctx_name.clone(),
            context: Some(ctx),
            other: Default::default(),
        },
        |c| c.name == name,
    );
    kc.current_context = Some(ctx_name);
    Ok(kc)
}

fn replace_named<T>(list: &mut Vec<T>, item: T, is: impl Fn(&T) -> bool) {
    match list.iter_mut().find(|x| is(x)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let mut f = Flags {
            request_timeout: "7".into(),
            ..Default::default()
        };
        assert_eq!(request_timeout(&f).unwrap(), Some(Duration::from_secs(7)));
        for (text, want) in [("1h30m", 5_400_000), ("250ms", 250), ("1.5m", 90_000)] {
            f.request_timeout = text.into();
            assert_eq!(
                request_timeout(&f).unwrap(),
                Some(Duration::from_millis(want))
            );
        }
        for text in ["5x", "-1s"] {
            f.request_timeout = text.into();
            assert!(request_timeout(&f).is_err(), "{text}");
        }
        f.request_timeout = "0".into();
        assert_eq!(request_timeout(&f).unwrap(), None);
        f.request_timeout = "soon".into();
        assert!(request_timeout(&f).is_err());
    }

    #[test]
    fn flags_override_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c1, user: u1, namespace: nsa}\nclusters:\n- name: c1\n  cluster: {server: 'https://one.example:6443', certificate-authority-data: Zm9v}\nusers:\n- name: u1\n  user: {token: old}\n",
        )
        .unwrap();
        let f = Flags {
            kubeconfig: path.display().to_string(),
            server: "https://two.example:6443".into(),
            token: "new".into(),
            insecure_skip_tls_verify: true,
            as_groups: vec!["g".into()],
            ..Default::default()
        };
        let kc = overridden_kubeconfig(&f).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("a"));
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://two.example:6443"));
        assert_eq!(c.insecure_skip_tls_verify, Some(true));
        assert!(c.certificate_authority_data.is_none());
        let u = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(u.token.is_some());
        assert_eq!(
            u.impersonate_groups.as_deref(),
            Some(&["g".to_string()][..])
        );

        // No kubeconfig at all: the flags alone make one.
        let f = Flags {
            kubeconfig: String::new(),
            server: "https://three.example".into(),
            ..Default::default()
        };
        // (Whatever the environment's default kubeconfig holds, the server is the flag's.)
        let kc = overridden_kubeconfig(&f).unwrap();
        let ctx = kc.current_context.clone().unwrap();
        let named = kc.contexts.iter().find(|c| c.name == ctx).unwrap();
        let cluster = &named.context.as_ref().unwrap().cluster;
        let c = kc.clusters.iter().find(|c| &c.name == cluster).unwrap();
        assert_eq!(
            c.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://three.example")
        );
        let f = Flags {
            kubeconfig: path.display().to_string(),
            context: "nope".into(),
            ..Default::default()
        };
        let err = overridden_kubeconfig(&f).unwrap_err().to_string();
        assert_eq!(err, "context was not found for specified context: nope");
    }
}
