//! Talking to a cluster and to its controller, as kubectl and kubeseal do.
//!
//! - Kubeconfig: `--kubeconfig`, else `$KUBECONFIG` (colon-separated, merged), else
//!   `~/.kube/config`, else the in-cluster service account; `--context` picks a context; exec
//!   and OIDC auth plugins work (kube-rs).
//! - The controller: its Service `--controller-name` in `--controller-namespace` (kubeseal's
//!   defaults `sealed-secrets-controller` / `kube-system`), reached through the API server's
//!   service proxy (`/api/v1/namespaces/<ns>/services/http:<name>:<port>/proxy/...`, the port
//!   name being the Service's first port, as kubeseal does), so it also works against Bitnami's
//!   controller.
//! - The certificate: the ConfigMap kseal's controller publishes (readable by every
//!   authenticated user, no proxy needed), confirmed against the controller's `/v1/cert.pem`
//!   through the proxy: when both answer and name different keys, nothing is sealed. When the
//!   proxy does not answer within [`CONFIRM_TIMEOUT`] (blocked by a firewall or a
//!   NetworkPolicy), the ConfigMap alone is used: only the controller's ServiceAccount and
//!   cluster administrators may write it, renewal requests go to another ConfigMap, and the
//!   controller restores it within seconds when anyone edits it (the Threat model section of the
//!   README). Without a ConfigMap (a Bitnami controller), `/v1/cert.pem` alone.
//!
//! The CLI is synchronous; each call runs on a small current-thread runtime.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

/// How long the CLI waits for the controller to confirm the published certificate.
pub const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks that the ConfigMap's certificate is the one the controller serves (same key). A
/// served answer that is not a certificate confirms nothing and refutes nothing.
pub fn confirm_published(
    published: &str,
    served: &[u8],
    namespace: &str,
    configmap: &str,
) -> Result<()> {
    let (Ok(p), Ok(c)) = (
        kseal_crypto::Certificate::from_pem(published.as_bytes()),
        kseal_crypto::Certificate::from_pem(served),
    ) else {
        return Ok(());
    };
    if p.fingerprint() != c.fingerprint() {
        bail!(
            "the certificate in ConfigMap {namespace}/{configmap} ({}) is not the one the controller serves ({}): refusing to seal for it. If a key renewal just happened, try again in a few seconds; otherwise someone changed the ConfigMap (the controller restores it)",
            p.fingerprint(),
            c.fingerprint()
        );
    }
    Ok(())
}

/// Default controller Service name (kubeseal's).
pub const DEFAULT_CONTROLLER_NAME: &str = "sealed-secrets-controller";
/// Default controller namespace (kubeseal's).
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "kube-system";
/// The ConfigMap the controller publishes its certificate in, by default.
pub const DEFAULT_CERT_CONFIGMAP: &str = "sealed-secrets-cert";

/// Where the cluster and its controller are.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or in-cluster]
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: the current context]
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,

    /// Name of the controller's Service
    #[arg(
        long,
        value_name = "NAME",
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = DEFAULT_CONTROLLER_NAME,
        global = true
    )]
    pub controller_name: String,

    /// Namespace of the controller
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = DEFAULT_CONTROLLER_NAMESPACE,
        global = true
    )]
    pub controller_namespace: String,

    /// ConfigMap holding the published certificate [default: sealed-secrets-cert, or
    /// <controller-name>-cert for another controller name]
    #[arg(long, value_name = "NAME", global = true)]
    pub cert_configmap: Option<String>,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        ClusterArgs {
            kubeconfig: None,
            context: None,
            controller_name: DEFAULT_CONTROLLER_NAME.to_string(),
            controller_namespace: DEFAULT_CONTROLLER_NAMESPACE.to_string(),
            cert_configmap: None,
        }
    }
}

impl ClusterArgs {
    /// The certificate ConfigMap's name.
    pub fn cert_configmap(&self) -> String {
        match &self.cert_configmap {
            Some(n) => n.clone(),
            None if self.controller_name == DEFAULT_CONTROLLER_NAME => {
                DEFAULT_CERT_CONFIGMAP.to_string()
            }
            None => format!("{}-cert", self.controller_name),
        }
    }
}

/// The sealing certificate PEM: `--cert` (file or URL) when given, else from the cluster (the
/// published ConfigMap, then the controller's `/v1/cert.pem` through the service proxy).
pub fn certificate_pem(cert: Option<&str>, cluster: &ClusterArgs) -> Result<Vec<u8>> {
    if let Some(src) = cert.filter(|s| !s.is_empty()) {
        return crate::io::read_cert_source(src);
    }
    block_on(async {
        let controller = Controller::connect(cluster).await?;
        controller.certificate().await
    })?
    .context("cannot get the cluster's certificate (pass --cert FILE|URL to work offline)")
}

/// The namespace for objects without one: the context's (kubectl's rule), else "default".
pub fn default_namespace(cluster: &ClusterArgs) -> String {
    let explicit = cluster.kubeconfig.as_ref().map(|p| p.display().to_string());
    crate::kubeconfig::context_namespace(explicit.as_deref(), cluster.context.as_deref())
        .unwrap_or_else(|| "default".into())
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(f))
}

/// A client for the cluster the arguments name.
pub async fn client(args: &ClusterArgs) -> Result<Client> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => match kube::Config::from_kubeconfig(&options).await {
            Ok(c) => c,
            Err(kerr) => match kube::Config::incluster() {
                Ok(c) if args.context.is_none() => c,
                _ => return Err(no_kubeconfig(kerr)),
            },
        },
    };
    let mut config = config;
    // Fail fast and say why: kube's default client retries 429/503/504 for minutes (a missing
    // controller would hang `kseal cert`); the controller's 429 is handled in `post`.
    config.default_retry = false;
    Client::try_from(config).context("cannot build the Kubernetes client")
}

/// Why no kubeconfig could be used, said the way a user can act on it: which file was looked
/// for (KUBECONFIG's, else ~/.kube/config) and that it does not exist; else kube's own reason.
fn no_kubeconfig(kerr: kube::config::KubeconfigError) -> anyhow::Error {
    const FIX: &str = "point KUBECONFIG or --kubeconfig at your cluster's kubeconfig";
    let (paths, from_env): (Vec<PathBuf>, bool) = match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => (
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            true,
        ),
        _ => (
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".kube/config"))
                .into_iter()
                .collect(),
            false,
        ),
    };
    let shown = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !paths.is_empty() && paths.iter().all(|p| !p.exists()) {
        return if from_env {
            anyhow!("no kubeconfig: KUBECONFIG names {shown}, which does not exist ({FIX})")
        } else {
            anyhow!("no kubeconfig: {shown} does not exist and KUBECONFIG is not set ({FIX}, or run in a Pod)")
        };
    }
    anyhow!(kerr).context(if shown.is_empty() {
        format!("no usable kubeconfig ({FIX})")
    } else {
        format!("cannot use kubeconfig {shown}")
    })
}

/// The body of an answer, frame by frame, refused one byte past `limit` (an endless answer
/// stops there instead of filling memory).
async fn read_answer(mut body: Body, limit: crate::io::Limit) -> Result<Vec<u8>> {
    use http_body_util::BodyExt as _;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow!("reading the controller's answer: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit.bytes {
                bail!(
                    "reading the controller's answer: {}",
                    crate::io::ReadError::TooLarge(limit)
                );
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A response of the controller through the service proxy.
#[derive(Debug)]
pub struct ProxyResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// `Retry-After`, in seconds, when present.
    pub retry_after: Option<u64>,
}

/// The controller of one cluster.
#[derive(Clone)]
pub struct Controller {
    client: Client,
    args: ClusterArgs,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.args.controller_name)
            .field("namespace", &self.args.controller_namespace)
            .finish()
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// One line on what failed to reach the API server, with what to do.
pub fn explain(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let msg = if s.message.is_empty() {
                format!("HTTP {}", s.code)
            } else {
                s.message.clone()
            };
            match s.code {
                401 => format!("{msg} (the kubeconfig's credentials were refused)"),
                403 => format!("{msg} (RBAC: ask for the permission)"),
                _ => msg,
            }
        }
        _ => format!("{e} (is the cluster reachable? check --kubeconfig and --context)"),
    }
}

impl Controller {
    /// Connects (reads the kubeconfig; no request yet).
    pub async fn connect(args: &ClusterArgs) -> Result<Self> {
        Ok(Controller {
            client: client(args).await?,
            args: args.clone(),
        })
    }

    /// A controller reached through `client`.
    pub fn with_client(client: Client, args: &ClusterArgs) -> Self {
        Controller {
            client,
            args: args.clone(),
        }
    }

    /// The API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The arguments it was made from.
    pub fn args(&self) -> &ClusterArgs {
        &self.args
    }

    /// The controller's namespace.
    pub fn namespace(&self) -> &str {
        &self.args.controller_namespace
    }

    /// The published certificate, or `None` when there is no readable ConfigMap (a Bitnami
    /// controller, or no RBAC to read it).
    pub async fn published_certificate(&self) -> Result<Option<String>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace());
        match api.get_opt(&self.args.cert_configmap()).await {
            Ok(Some(cm)) => Ok(cm
                .data
                .and_then(|mut d| d.remove("cert.pem"))
                .filter(|p| p.contains("BEGIN CERTIFICATE"))),
            Ok(None) => Ok(None),
            Err(e) if matches!(api_code(&e), Some(403) | Some(404)) => Ok(None),
            Err(e) => Err(anyhow!("cannot read the certificate: {}", explain(&e))),
        }
    }

    /// The sealing certificate PEM: the published ConfigMap confirmed by the controller, else
    /// `/v1/cert.pem` through the service proxy (see the module docs).
    pub async fn certificate(&self) -> Result<Vec<u8>> {
        if let Some(pem) = self.published_certificate().await? {
            let served = tokio::time::timeout(
                CONFIRM_TIMEOUT,
                self.proxy("GET", "/v1/cert.pem", None, "application/x-pem-file, */*"),
            )
            .await;
            if let Ok(Ok(r)) = served {
                if r.status == 200 {
                    confirm_published(
                        &pem,
                        &r.body,
                        self.namespace(),
                        &self.args.cert_configmap(),
                    )?;
                }
            }
            return Ok(pem.into_bytes());
        }
        let r = self
            .proxy("GET", "/v1/cert.pem", None, "application/x-pem-file, */*")
            .await
            .context("cannot fetch certificate")?;
        if r.status != 200 {
            bail!(
                "cannot fetch certificate: the controller answered HTTP {}{}",
                r.status,
                body_hint(r.status, &r.body, &self.args)
            );
        }
        Ok(r.body)
    }

    /// `http:<name>:<first port's name>` (an unnamed port gives `http:<name>:`), as kubeseal
    /// builds it.
    pub async fn proxy_target(&self) -> Result<String> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), self.namespace());
        let svc = api.get(&self.args.controller_name).await.map_err(|e| {
            anyhow!(
                "cannot get sealed secret service: {}.\nPlease, use the flag --controller-name and --controller-namespace to set up the name and namespace of the sealed secrets controller",
                explain(&e)
            )
        })?;
        let port = svc
            .spec
            .and_then(|s| s.ports)
            .and_then(|p| p.into_iter().next())
            .and_then(|p| p.name)
            .unwrap_or_default();
        Ok(format!("http:{}:{port}", self.args.controller_name))
    }

    /// One request to the controller through the API server's service proxy. The answer is
    /// read up to [`crate::io::CONTROLLER_ANSWER`].
    pub async fn proxy(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        accept: &str,
    ) -> Result<ProxyResponse> {
        let target = self.proxy_target().await?;
        let uri = format!(
            "/api/v1/namespaces/{}/services/{target}/proxy{path}",
            self.namespace()
        );
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::ACCEPT, accept);
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|e| anyhow!("cannot build the request: {e}"))?;
        let res = self
            .client
            .send(req)
            .await
            .map_err(|e| anyhow!("{}", explain(&e)))?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = read_answer(res.into_body(), crate::io::CONTROLLER_ANSWER).await?;
        Ok(ProxyResponse {
            status,
            body,
            retry_after,
        })
    }

    /// POSTs to `/v1/verify` or `/v1/rotate`, waiting out the controller's rate limit (429).
    pub async fn post(&self, path: &str, json: Vec<u8>) -> Result<ProxyResponse> {
        let mut waited = 0u64;
        loop {
            let r = self
                .proxy("POST", path, Some(json.clone()), "application/json, */*")
                .await?;
            if r.status == 429 && waited < 120 {
                let wait = r.retry_after.unwrap_or(1).clamp(1, 10);
                waited += wait;
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                continue;
            }
            return Ok(r);
        }
    }

    /// Whether the controller can decrypt `json` (a SealedSecret): `Ok(true)` on 200,
    /// `Ok(false)` on 409.
    pub async fn verify(&self, json: Vec<u8>) -> Result<bool> {
        let r = self.post("/v1/verify", json).await?;
        match r.status {
            200 => Ok(true),
            409 => Ok(false),
            s => bail!(
                "cannot validate sealed secret: the controller answered HTTP {s}{}",
                body_hint(s, &r.body, &self.args)
            ),
        }
    }

    /// The SealedSecret re-sealed by the controller with its newest key (JSON).
    pub async fn rotate(&self, json: Vec<u8>) -> Result<Vec<u8>> {
        let r = self.post("/v1/rotate", json).await?;
        match r.status {
            200 => Ok(r.body),
            409 | 500 => bail!("unable to rotate secret: the controller cannot decrypt it"),
            s => bail!(
                "cannot re-encrypt secret: the controller answered HTTP {s}{}",
                body_hint(s, &r.body, &self.args)
            ),
        }
    }
}

/// ": what the answer says", in one line: the API server's Status message rather than its
/// JSON, nothing for a long or empty body; and for 502/503 (no ready endpoint behind the
/// Service: the controller is not running, not ready, or named otherwise) what to check.
fn body_hint(status: u16, body: &[u8], args: &ClusterArgs) -> String {
    let status_message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| v["kind"] == "Status")
        .and_then(|v| v["message"].as_str().map(str::to_owned));
    let text = status_message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.trim();
    let mut hint = if text.is_empty() || text.len() > 200 || text.contains('\n') {
        String::new()
    } else {
        format!(": {text}")
    };
    if matches!(status, 502 | 503) {
        let (ns, name) = (&args.controller_namespace, &args.controller_name);
        hint.push_str(&format!(
            " (no ready controller Pod behind Service {ns}/{name}: check `kubectl -n {ns} get pods,endpoints`, or name the controller with --controller-name and --controller-namespace)"
        ));
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_503_says_what_to_check_not_the_status_json() {
        // What kube-apiserver answers through the service proxy when no Pod is ready behind
        // the Service.
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"sealed-secrets-controller\"","reason":"ServiceUnavailable","code":503}"#;
        let hint = body_hint(503, body, &ClusterArgs::default());
        assert_eq!(
            hint,
            ": no endpoints available for service \"sealed-secrets-controller\" (no ready controller Pod behind Service kube-system/sealed-secrets-controller: check `kubectl -n kube-system get pods,endpoints`, or name the controller with --controller-name and --controller-namespace)"
        );
        // Other answers: the text when short, nothing when long; no hint.
        assert_eq!(body_hint(500, b"boom\n", &ClusterArgs::default()), ": boom");
        assert_eq!(body_hint(500, &[b'x'; 300], &ClusterArgs::default()), "");
    }

    const EXAMPLE: &str = include_str!("../../keys-example/tls.crt");
    const GO: &str = include_str!("../../crypto/tests/data/go_rsa2048.crt");

    #[test]
    fn a_published_certificate_the_controller_does_not_serve_is_refused() {
        assert!(confirm_published(
            EXAMPLE,
            EXAMPLE.as_bytes(),
            "kube-system",
            "sealed-secrets-cert"
        )
        .is_ok());
        let e = confirm_published(EXAMPLE, GO.as_bytes(), "kube-system", "sealed-secrets-cert")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the certificate in ConfigMap kube-system/sealed-secrets-cert (SHA256:"),
            "{e}"
        );
        assert!(e.contains("refusing to seal for it"), "{e}");
        // A proxy answer that is not a certificate (an error page) neither confirms nor refutes.
        assert!(confirm_published(EXAMPLE, b"<html>503</html>", "ns", "cm").is_ok());
    }
}
