//! The controller's flags: Bitnami's names, defaults and quirks (docs/compatibility.md, “Controller flags”), so existing
//! Deployments, Helm values and `SEALED_SECRETS_*` variables keep working, plus kseal's own.
//!
//! Raw flags ([`Flags`], clap) are resolved once into [`Config`]: durations parsed Go-style,
//! `k=v` lists split Bitnami's way, the key prefix and cutoff time validated. Nothing after
//! start-up sees clap.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::keys::registry::KeyOrderPriority;

/// `kseal-controller` command line. Every flag can also come from `SEALED_SECRETS_<FLAG>`
/// (upper case, `-` → `_`); the command line wins.
#[derive(Debug, Parser)]
#[command(
    name = "kseal-controller",
    about = "Unseals SealedSecrets into Secrets; holds and renews the sealing keys",
    disable_version_flag = true
)]
pub struct Flags {
    /// Prefix of generated key Secrets (generateName) and name of the legacy key
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    pub key_prefix: String,
    /// RSA key size in bits for new keys (2048, 3072, 4096 or 8192)
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    pub key_size: usize,
    /// Validity of new certificates (Go duration)
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h0m0s")]
    pub key_ttl: String,
    /// Common name of new certificates (empty subject when empty)
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    pub my_cn: String,
    /// Generate a new key this often (Go duration; 0 turns it off)
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_RENEW_PERIOD",
        default_value = "720h0m0s"
    )]
    pub key_renew_period: String,
    /// Deprecated alias of --key-renew-period
    #[arg(long, env = "SEALED_SECRETS_ROTATE_PERIOD", hide = true)]
    pub rotate_period: Option<String>,
    /// How loaded keys are ordered: CertNotBefore or SecretCreationTimestamp
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        default_value = "CertNotBefore"
    )]
    pub key_order_priority: String,
    /// Accept the deprecated v1 `spec.data` field
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub accept_deprecated_v1_data: bool,
    /// Generate a key at start-up if the newest is older than this (RFC 1123 with numeric zone, `date -R`)
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME", default_value = "")]
    pub key_cutoff_time: String,
    /// Watch SealedSecrets in all namespaces (false: only the controller's own)
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub all_namespaces: bool,
    /// Comma-separated namespaces to watch in addition to the controller's own
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,
    /// Only SealedSecrets (and recreated Secrets) matching this label selector
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,
    /// Sustained requests per second for /v1/verify
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2)]
    pub rate_limit: u32,
    /// Burst for /v1/verify
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,
    /// Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client for
    /// the rate limits (e.g. the API servers); from anyone else the header is ignored
    #[arg(long, env = "SEALED_SECRETS_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// k=v,... annotations for generated key Secrets
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    pub privatekey_annotations: String,
    /// k=v,... labels for generated key Secrets
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    pub privatekey_labels: String,
    /// Delete the Secret of a deleted SealedSecret explicitly (instead of garbage collection)
    #[arg(long, env = "SEALED_SECRETS_OLD_GC_BEHAVIOR", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub old_gc_behavior: bool,
    /// Write the Synced condition and observedGeneration
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub update_status: bool,
    /// Pick up key Secrets added at run time (kseal always does; kept for compatibility)
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch_for_secrets: bool,
    /// Do not recreate deleted Secrets (needs less RBAC)
    #[arg(long, env = "SEALED_SECRETS_SKIP_RECREATE", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub skip_recreate: bool,
    /// INFO/DEBUG to stdout, WARN/ERROR to stderr (false: all to stderr)
    #[arg(long, env = "SEALED_SECRETS_LOG_INFO_STDOUT", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_info_stdout: bool,
    /// DEBUG, INFO, WARN or ERROR (anything else means INFO)
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// text or json
    #[arg(long, env = "SEALED_SECRETS_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Retries per SealedSecret after errors
    #[arg(long, env = "SEALED_SECRETS_MAX_UNSEAL_RETRIES", default_value_t = 5)]
    pub max_unseal_retries: u32,
    /// Kubernetes client requests per second (negative: unlimited)
    #[arg(
        long,
        env = "SEALED_SECRETS_KUBECLIENT_QPS",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub kubeclient_qps: f64,
    /// Kubernetes client burst
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_BURST", default_value_t = 10)]
    pub kubeclient_burst: u32,
    /// Main HTTP server address (/healthz, /v1/cert.pem, /v1/verify, /v1/rotate)
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080")]
    pub listen_addr: String,
    /// Metrics HTTP server address (/metrics)
    #[arg(
        long,
        env = "SEALED_SECRETS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    pub listen_metrics_addr: String,
    /// HTTP read timeout (Go duration)
    #[arg(long, env = "SEALED_SECRETS_READ_TIMEOUT", default_value = "2m0s")]
    pub read_timeout: String,
    /// HTTP write timeout (Go duration)
    #[arg(long, env = "SEALED_SECRETS_WRITE_TIMEOUT", default_value = "2m0s")]
    pub write_timeout: String,
    /// Print `controller version: <version>` and exit
    #[arg(long)]
    pub version: bool,

    // kseal's own flags.
    /// Kubeconfig to use instead of the in-cluster service account (for running outside a cluster)
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The controller's namespace [default: $POD_NAMESPACE, the service account's, or "default"]
    #[arg(long, env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Elect a leader through a coordination.k8s.io Lease, so that several replicas are safe
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease (in the controller's namespace)
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECTION_ID",
        default_value = "sealed-secrets-controller"
    )]
    pub leader_election_id: String,
    /// How long a Lease is held without renewal (Go duration)
    #[arg(long, env = "SEALED_SECRETS_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// ConfigMap (in the controller's namespace) where the sealing certificate is published
    /// and key renewal is requested; "" turns both off
    #[arg(
        long,
        env = "SEALED_SECRETS_CERT_CONFIGMAP",
        default_value = "sealed-secrets-cert"
    )]
    pub cert_configmap: String,
    /// Hold an age identity beside the RSA keys: generate, renew and publish it (ConfigMap data
    /// `age-recipient`, /v1/age-recipient). false: none is generated or published; identities
    /// that exist still open age blobs
    #[arg(long, env = "SEALED_SECRETS_AGE", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub age: bool,
    /// Hold a post-quantum age identity (mlkem768x25519: ML-KEM-768 + X25519, recipients
    /// age1pq1…) beside the X25519 one: generate, renew and publish it (ConfigMap data
    /// `age-pq-recipient`, /v1/age-pq-recipient). false, or --age=false: none is generated or
    /// published; identities that exist still open age blobs
    #[arg(long, env = "KSEAL_AGE_PQ", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub age_pq: bool,
    /// Serve the sealing page (`kseal web`'s) on the main port under /web/; it needs HTTPS in
    /// front (an Ingress with TLS) for browsers to seal with it
    #[arg(long, env = "KSEAL_WEB_PAGE")]
    pub web_page: bool,
    /// Serve the validating admission webhook over TLS on this address ([host]:port); "" (the
    /// default) turns it off. `kseal install` sets :8443
    #[arg(long, env = "KSEAL_WEBHOOK_LISTEN_ADDR", default_value = "")]
    pub webhook_listen_addr: String,
    /// The Service the API server calls the webhook through (its DNS names go into the
    /// serving certificate)
    #[arg(
        long,
        env = "KSEAL_WEBHOOK_SERVICE",
        default_value = "sealed-secrets-controller-webhook"
    )]
    pub webhook_service: String,
    /// The Secret (in the controller's namespace) holding the webhook's serving certificate,
    /// created and renewed by the controller
    #[arg(
        long,
        env = "KSEAL_WEBHOOK_SECRET",
        default_value = "sealed-secrets-controller-webhook-tls"
    )]
    pub webhook_secret: String,
    /// The ValidatingWebhookConfiguration whose caBundle the controller keeps
    #[arg(
        long,
        env = "KSEAL_WEBHOOK_CONFIGURATION",
        default_value = "sealed-secrets-controller"
    )]
    pub webhook_configuration: String,
}

/// A flag value that does not parse. The message names the flag, never the value (flag values
/// may be long or sensitive; the operator knows what they passed).
#[derive(Debug, thiserror::Error)]
#[error("invalid value for --{flag}: {reason}")]
pub struct ConfigError {
    /// The flag.
    pub flag: &'static str,
    /// What was given (not shown in the message).
    pub value: String,
    /// Why it is wrong.
    pub reason: String,
}

fn bad(flag: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Which namespaces to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    /// Every namespace.
    All,
    /// Only these (the controller's own first).
    Namespaces(Vec<String>),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub key_prefix: String,
    pub key_size: usize,
    pub key_ttl: SignedDuration,
    pub my_cn: Option<String>,
    pub key_renew_period: SignedDuration,
    pub key_order_priority: KeyOrderPriority,
    pub accept_deprecated_v1_data: bool,
    pub key_cutoff_time: Option<Timestamp>,
    pub namespace: String,
    pub watch: WatchScope,
    pub label_selector: Option<String>,
    pub rate_limit: u32,
    pub rate_limit_burst: u32,
    pub trusted_proxies: Vec<crate::ratelimit::Cidr>,
    pub privatekey_annotations: BTreeMap<String, String>,
    pub privatekey_labels: BTreeMap<String, String>,
    pub old_gc_behavior: bool,
    pub update_status: bool,
    pub skip_recreate: bool,
    pub log_info_stdout: bool,
    pub log_level: String,
    pub log_json: bool,
    pub max_unseal_retries: u32,
    pub kubeclient_qps: f64,
    pub kubeclient_burst: u32,
    pub listen_addr: SocketAddr,
    pub listen_metrics_addr: SocketAddr,
    pub read_timeout: SignedDuration,
    pub write_timeout: SignedDuration,
    pub kubeconfig: Option<PathBuf>,
    pub leader_elect: bool,
    pub leader_election_id: String,
    pub lease_duration: SignedDuration,
    pub cert_configmap: Option<String>,
    pub age: bool,
    pub age_pq: bool,
    pub web_page: bool,
    /// The admission webhook, when `--webhook-listen-addr` is set.
    pub webhook: Option<WebhookConfig>,
}

/// The admission webhook's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `--webhook-listen-addr`.
    pub listen_addr: SocketAddr,
    /// `--webhook-service`, `--webhook-secret`, `--webhook-configuration` and the namespace.
    pub objects: crate::admission::tls::WebhookObjects,
}

impl Flags {
    /// Resolves the flags; `pod_namespace` and `sa_namespace` are `$POD_NAMESPACE` and the
    /// service account's namespace file (passed in so that this stays pure).
    pub fn resolve(
        &self,
        pod_namespace: Option<&str>,
        sa_namespace: Option<&str>,
    ) -> Result<Config, ConfigError> {
        if self.key_prefix.is_empty()
            || self.key_prefix.len() > 245
            || !self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(
                "key-prefix",
                &self.key_prefix,
                "only [a-z0-9-], at most 245 characters",
            ));
        }
        if ![2048, 3072, 4096, 8192].contains(&self.key_size) {
            return Err(bad(
                "key-size",
                &self.key_size.to_string(),
                "use 2048, 3072, 4096 or 8192",
            ));
        }
        let namespace = self
            .namespace
            .clone()
            .or_else(|| pod_namespace.map(str::to_string))
            .or_else(|| sa_namespace.map(|s| s.trim().to_string()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let mut extra: Vec<String> = Vec::new();
        for n in self
            .additional_namespaces
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if n != namespace && !extra.iter().any(|e| e == n) {
                extra.push(n.to_string());
            }
        }
        let watch = if self.all_namespaces && extra.is_empty() {
            WatchScope::All
        } else {
            WatchScope::Namespaces(std::iter::once(namespace.clone()).chain(extra).collect())
        };
        let namespace_for_webhook = namespace.clone();
        let renew_src = self
            .rotate_period
            .as_deref()
            .unwrap_or(&self.key_renew_period);
        Ok(Config {
            key_prefix: self.key_prefix.clone(),
            key_size: self.key_size,
            key_ttl: go_duration(&self.key_ttl).map_err(|r| bad("key-ttl", &self.key_ttl, r))?,
            my_cn: Some(self.my_cn.clone()).filter(|c| !c.is_empty()),
            key_renew_period: go_duration(renew_src)
                .map_err(|r| bad("key-renew-period", renew_src, r))?,
            key_order_priority: self.key_order_priority.parse().unwrap_or_default(),
            accept_deprecated_v1_data: self.accept_deprecated_v1_data,
            key_cutoff_time: match self.key_cutoff_time.as_str() {
                "" => None,
                t => Some(parse_rfc1123z(t).map_err(|r| bad("key-cutoff-time", t, r))?),
            },
            namespace,
            watch,
            label_selector: Some(self.label_selector.clone()).filter(|s| !s.is_empty()),
            rate_limit: self.rate_limit,
            rate_limit_burst: self.rate_limit_burst,
            trusted_proxies: crate::ratelimit::parse_cidrs(&self.trusted_proxies)
                .map_err(|r| bad("trusted-proxies", &self.trusted_proxies, &r))?,
            privatekey_annotations: key_value_list(&self.privatekey_annotations, None),
            privatekey_labels: key_value_list(
                &self.privatekey_labels,
                Some(kseal_sealing::key_secret::KEY_LABEL),
            ),
            old_gc_behavior: self.old_gc_behavior,
            update_status: self.update_status,
            skip_recreate: self.skip_recreate,
            log_info_stdout: self.log_info_stdout,
            log_level: match self.log_level.to_ascii_uppercase().as_str() {
                l @ ("DEBUG" | "INFO" | "WARN" | "ERROR") => l.to_string(),
                _ => "INFO".to_string(),
            },
            log_json: match self.log_format.as_str() {
                "json" => true,
                "text" => false,
                other => return Err(bad("log-format", other, "use text or json")),
            },
            max_unseal_retries: self.max_unseal_retries,
            kubeclient_qps: self.kubeclient_qps,
            kubeclient_burst: self.kubeclient_burst,
            listen_addr: listen_addr(&self.listen_addr)
                .map_err(|r| bad("listen-addr", &self.listen_addr, r))?,
            listen_metrics_addr: listen_addr(&self.listen_metrics_addr)
                .map_err(|r| bad("listen-metrics-addr", &self.listen_metrics_addr, r))?,
            read_timeout: go_duration(&self.read_timeout)
                .map_err(|r| bad("read-timeout", &self.read_timeout, r))?,
            write_timeout: go_duration(&self.write_timeout)
                .map_err(|r| bad("write-timeout", &self.write_timeout, r))?,
            kubeconfig: self.kubeconfig.clone(),
            leader_elect: self.leader_elect,
            leader_election_id: self.leader_election_id.clone(),
            lease_duration: go_duration(&self.lease_duration)
                .map_err(|r| bad("lease-duration", &self.lease_duration, r))?,
            cert_configmap: Some(self.cert_configmap.clone()).filter(|c| !c.is_empty()),
            age: self.age,
            age_pq: self.age && self.age_pq,
            web_page: self.web_page,
            webhook: match self.webhook_listen_addr.as_str() {
                "" => None,
                addr => Some(WebhookConfig {
                    listen_addr: listen_addr(addr)
                        .map_err(|r| bad("webhook-listen-addr", addr, r))?,
                    objects: crate::admission::tls::WebhookObjects {
                        namespace: namespace_for_webhook.clone(),
                        service: self.webhook_service.clone(),
                        secret: self.webhook_secret.clone(),
                        configuration: self.webhook_configuration.clone(),
                    },
                }),
            },
        })
    }
}

/// A Go duration flag (`720h0m0s`, `1.5h`, `90s`, `250ms`, `0`): docs/compatibility.md,
/// “Controller flags”.
pub fn go_duration(s: &str) -> Result<SignedDuration, kseal_gocompat::duration::DurationError> {
    kseal_gocompat::duration::parse(s).map(SignedDuration::from_nanos)
}

/// Parses Go's RFC1123Z layout, `Mon, 02 Jan 2006 15:04:05 -0700` (what `date -R` prints).
pub fn parse_rfc1123z(s: &str) -> Result<Timestamp, String> {
    k8s_openapi::jiff::fmt::rfc2822::parse(s)
        .map(|z| z.timestamp())
        .map_err(|_| "expected RFC 1123 with a numeric zone, e.g. \"Mon, 02 Jan 2006 15:04:05 -0700\" (date -R)".to_string())
}

/// Bitnami's `k=v,k2=v2` lists: split on `,`, duplicates removed, the value is what lies
/// between the first `=` and any second `=` (so a value containing `=` is cut short, as in Go),
/// and a pair using `reserved` as key is ignored.
pub fn key_value_list(s: &str, reserved: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        if Some(k) == reserved || k.is_empty() {
            continue;
        }
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// Go's `:8080` (all interfaces) or `host:port`.
fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| "expected [host]:port, e.g. :8080 or 127.0.0.1:8080".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("kseal-controller").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn bitnami_defaults() {
        let c = parse(&[]).resolve(None, None).unwrap();
        assert_eq!(c.key_prefix, "sealed-secrets-key");
        assert_eq!(c.key_size, 4096);
        assert_eq!(c.key_ttl, SignedDuration::from_hours(87_600));
        assert_eq!(c.key_renew_period, SignedDuration::from_hours(720));
        assert_eq!(c.namespace, "default");
        assert_eq!(c.watch, WatchScope::All);
        assert!(
            c.accept_deprecated_v1_data
                && c.update_status
                && !c.skip_recreate
                && !c.old_gc_behavior
        );
        assert_eq!(
            (c.rate_limit, c.rate_limit_burst, c.max_unseal_retries),
            (2, 2, 5)
        );
        assert_eq!(c.listen_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.listen_metrics_addr, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(c.read_timeout, SignedDuration::from_secs(120));
        assert!(c.age, "age identities are on by default");
    }

    #[test]
    fn age_can_be_turned_off() {
        assert!(!parse(&["--age=false"]).resolve(None, None).unwrap().age);
        assert!(parse(&["--age"]).resolve(None, None).unwrap().age);
        assert!(
            parse(&[]).resolve(None, None).unwrap().age_pq,
            "post-quantum age identities are on by default"
        );
        assert!(
            !parse(&["--age-pq=false"])
                .resolve(None, None)
                .unwrap()
                .age_pq
        );
        assert!(!parse(&["--age=false"]).resolve(None, None).unwrap().age_pq);
    }

    #[test]
    fn go_bool_flags_and_namespaces() {
        let c = parse(&[
            "--all-namespaces=false",
            "--update-status=false",
            "--skip-recreate",
        ])
        .resolve(Some("kube-system"), None)
        .unwrap();
        assert_eq!(c.watch, WatchScope::Namespaces(vec!["kube-system".into()]));
        assert!(!c.update_status && c.skip_recreate);
        let c = parse(&["--additional-namespaces", "a, b,a,kube-system"])
            .resolve(None, Some("kube-system\n"))
            .unwrap();
        assert_eq!(
            c.watch,
            WatchScope::Namespaces(vec!["kube-system".into(), "a".into(), "b".into()])
        );
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(
            go_duration("720h0m0s").unwrap(),
            SignedDuration::from_hours(720)
        );
        assert_eq!(go_duration("1.5h").unwrap(), SignedDuration::from_mins(90));
        assert_eq!(
            go_duration("250ms").unwrap(),
            SignedDuration::from_millis(250)
        );
        assert_eq!(go_duration("0").unwrap(), SignedDuration::ZERO);
        assert_eq!(go_duration("-1m").unwrap(), SignedDuration::from_mins(-1));
        assert!(go_duration("10d").is_err());
        assert!(go_duration("10").is_err());
        let t = parse_rfc1123z("Mon, 02 Jan 2006 15:04:05 -0700").unwrap();
        assert_eq!(t.to_string(), "2006-01-02T22:04:05Z");
        let err = parse(&["--key-cutoff-time", "yesterday"])
            .resolve(None, None)
            .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid value for --key-cutoff-time: expected RFC 1123"));
        // The deprecated alias still works.
        assert_eq!(
            parse(&["--rotate-period", "1h"])
                .resolve(None, None)
                .unwrap()
                .key_renew_period,
            SignedDuration::from_hours(1)
        );
    }

    #[test]
    fn key_value_lists_follow_bitnami() {
        let l = key_value_list(
            "a=1,b=2=3,sealedsecrets.bitnami.com/sealed-secrets-key=x,a=4,noval",
            Some(kseal_sealing::key_secret::KEY_LABEL),
        );
        assert_eq!(
            l,
            BTreeMap::from([("a".into(), "4".into()), ("b".into(), "2".into())])
        );
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(parse(&["--key-prefix", "Bad_Prefix"])
            .resolve(None, None)
            .is_err());
        assert!(parse(&["--key-size", "1024"]).resolve(None, None).is_err());
        assert!(parse(&["--log-format", "xml"]).resolve(None, None).is_err());
        assert!(parse(&["--listen-addr", "nope"])
            .resolve(None, None)
            .is_err());
        // An unknown log level means INFO, as in Bitnami.
        assert_eq!(
            parse(&["--log-level", "verbose"])
                .resolve(None, None)
                .unwrap()
                .log_level,
            "INFO"
        );
    }
}
