//! `kseal install`: prints the controller's manifests, or applies them (see [`crate::install`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::cluster::{block_on, client, ClusterArgs};
use crate::install::{self, ApplyOptions, Install, InstallFormat, NetworkPolicy, DEFAULT_TIMEOUT};
use crate::io::Output;

/// `kseal install`
#[derive(Debug, Args)]
#[command(after_help = "\
Prints the controller's manifests (CRD, ServiceAccount, least-privilege RBAC, Services,
NetworkPolicy, Deployment, PodDisruptionBudget, ValidatingWebhookConfiguration) as YAML, or
applies them with --apply: server-side apply as field manager \"kseal\", forced, so it upgrades a
Bitnami install of the same name in place (its key Secrets are never touched). Cluster-wide
objects keep Bitnami's names for the default name and are prefixed with <name>- otherwise. No
controller image is published: build and push one, and pass --image.

The NetworkPolicy admits the metrics port from the namespaces of --metrics-namespace-selector and
the HTTP and webhook ports (cert.pem, verify, rotate, admission) only from the CIDRs of
--network-policy-from, where the API server connects from; probes come from the pod's own node,
which is always admitted. Secret delete is granted only with --old-gc-behavior.

The admission webhook refuses, at kubectl apply (and --dry-run=server), a SealedSecret this
cluster cannot open; the controller makes and renews its TLS certificate itself. With the default
--webhook-failure-policy=Ignore, applies pass unchecked while the controller is down.")]
pub struct InstallArgs {
    /// The controller's namespace
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = crate::cluster::DEFAULT_CONTROLLER_NAMESPACE)]
    pub namespace: String,

    /// The controller's name (Deployment, Service, ServiceAccount, Lease)
    #[arg(long, value_name = "NAME", default_value = crate::cluster::DEFAULT_CONTROLLER_NAME)]
    pub name: String,

    /// Controller image [default: ghcr.io/kseal/kseal-controller:v<kseal version>]
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Replicas of the Deployment (leader-elected)
    #[arg(long, value_name = "N", default_value_t = crate::install::DEFAULT_REPLICAS)]
    pub replicas: u32,

    /// Output format of the manifests [default: yaml]
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<crate::install::InstallFormat>,

    /// Apply the manifests to the cluster instead of printing them
    #[arg(long)]
    pub apply: bool,

    /// With --apply: wait until the Deployment is available
    #[arg(long)]
    pub wait: bool,

    /// With --wait: how long to wait (seconds, or 90s, 5m, 1m30s) [default: 300s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Validate everything on the API server without persisting it
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub dry_run: Option<crate::install::DryRun>,

    /// Let the controller delete the Secret of a deleted SealedSecret itself (its
    /// --old-gc-behavior), granting it Secret delete; otherwise garbage collection does
    #[arg(long)]
    pub old_gc_behavior: bool,

    /// CIDR the NetworkPolicy admits to the HTTP port: where the API server's service proxy
    /// connects from (repeatable) [default: none]
    #[arg(
        long = "network-policy-from",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub network_policy_from: Vec<String>,

    /// Namespaces (label selector) whose pods the NetworkPolicy admits to the metrics port; ''
    /// for every namespace
    #[arg(long, value_name = "KEY=VALUE,…", default_value = crate::install::DEFAULT_METRICS_NAMESPACE_SELECTOR)]
    pub metrics_namespace_selector: String,

    /// Install no validating admission webhook (SealedSecrets this cluster cannot open are then
    /// only reported in their status, not refused at apply)
    #[arg(long, conflicts_with_all = ["webhook_failure_policy", "webhook_exclude_namespace"])]
    pub no_admission_webhook: bool,

    /// What the API server does when the webhook cannot answer (the controller is down):
    /// Ignore admits, Fail refuses [default: Ignore]
    #[arg(long, value_enum, ignore_case = true, value_name = "POLICY")]
    pub webhook_failure_policy: Option<crate::install::FailurePolicy>,

    /// Namespace whose SealedSecrets the webhook never checks (repeatable; by the
    /// kubernetes.io/metadata.name label of Kubernetes 1.21+). Any namespace labelled
    /// sealedsecrets.kseal.dev/admission=disabled is skipped too
    #[arg(long, value_name = "NAMESPACE", value_delimiter = ',')]
    pub webhook_exclude_namespace: Vec<String>,

    /// Install no NetworkPolicy (every pod can then reach the controller's ports)
    #[arg(long, conflicts_with_all = ["network_policy_from", "metrics_namespace_selector"])]
    pub no_network_policy: bool,

    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or in-cluster]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: the current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl InstallArgs {
    /// The cluster to apply to, as the other commands name it.
    pub fn cluster(&self) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            controller_name: self.name.clone(),
            controller_namespace: self.namespace.clone(),
            cert_configmap: None,
        }
    }
}

/// Printed after a successful render or apply when the NetworkPolicy admits no CIDR to the
/// HTTP port (the trade-off of the default; see docs/install.md).
const HTTP_PORT_NOTE: &str = "kseal: note: the NetworkPolicy admits to the controller's HTTP port (cert.pem, verify, rotate through the API server's service proxy) only traffic from the pod's own node; where the CNI enforces NetworkPolicy, add the addresses the API server connects from with --network-policy-from CIDR, or use --no-network-policy";

pub fn run(args: InstallArgs) -> Result<ExitCode> {
    let network_policy = if args.no_network_policy {
        None
    } else {
        Some(NetworkPolicy {
            http_from: args.network_policy_from.clone(),
            metrics_namespaces: install::parse_label_selector(&args.metrics_namespace_selector)?,
        })
    };
    let mut target = Install {
        namespace: args.namespace.clone(),
        name: args.name.clone(),
        image: args.image.clone().unwrap_or_else(install::default_image),
        replicas: args.replicas,
        old_gc_behavior: args.old_gc_behavior,
        network_policy,
        webhook: (!args.no_admission_webhook).then(|| install::Webhook {
            failure_policy: args.webhook_failure_policy.unwrap_or_default(),
            exclude_namespaces: args.webhook_exclude_namespace.clone(),
        }),
    };
    target.validate()?;
    let dry_run = args.dry_run.is_some();
    let apply = args.apply || dry_run;
    if args.wait && !args.apply {
        bail!("--wait waits for what --apply installs: add --apply");
    }
    if args.wait && dry_run {
        bail!("--wait cannot follow a --dry-run=server install: drop one of them");
    }
    if args.timeout.is_some() && !args.wait {
        bail!("--timeout is how long --wait waits: add --wait (and --apply)");
    }
    if apply && args.output.is_some() {
        bail!(
            "-o prints the manifests instead of applying them: drop -o, or drop --apply/--dry-run"
        );
    }
    let timeout = match &args.timeout {
        Some(t) => install::parse_duration(t)?,
        None => DEFAULT_TIMEOUT,
    };
    if !apply {
        let objects = install::render(&target)?;
        let text = match args.output.unwrap_or_default() {
            InstallFormat::Yaml => install::to_yaml(&objects)?,
            InstallFormat::Json => install::to_json(&objects)?,
        };
        Output::Stdout.write(text.as_bytes())?;
        note_http_port(&target);
        return Ok(ExitCode::SUCCESS);
    }
    let cluster = args.cluster();
    block_on(async {
        let client = client(&cluster).await?;
        // Without --network-policy-from, admit the addresses the API server advertises (the
        // Endpoints of default/kubernetes): its service proxy connects from there.
        if let Some(np) = target
            .network_policy
            .as_mut()
            .filter(|np| np.http_from.is_empty())
        {
            let found = api_server_addresses(&client).await;
            if !found.is_empty() {
                eprintln!(
                    "kseal: the NetworkPolicy admits the API server's addresses to the HTTP port (Endpoints default/kubernetes): {}",
                    found.join(", ")
                );
                np.http_from = found;
            }
        }
        let objects = install::render(&target)?;
        install::apply(
            &client,
            &target,
            &objects,
            ApplyOptions { dry_run },
            &mut |line| println!("{line}"),
        )
        .await?;
        if args.wait {
            install::wait_for_rollout(&client, &target, timeout, &mut |line| eprintln!("{line}"))
                .await?;
        }
        anyhow::Ok(())
    })??;
    note_http_port(&target);
    Ok(ExitCode::SUCCESS)
}

/// The API server's advertised addresses as host CIDRs (`/32`, `/128`); empty when they cannot
/// be read.
async fn api_server_addresses(client: &kube::Client) -> Vec<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Endpoints> =
        kube::Api::namespaced(client.clone(), "default");
    let Ok(ep) = api.get("kubernetes").await else {
        return Vec::new();
    };
    let mut out: Vec<String> = ep
        .subsets
        .into_iter()
        .flatten()
        .flat_map(|s| s.addresses.into_iter().flatten())
        .filter_map(|a| a.ip.parse::<std::net::IpAddr>().ok())
        .map(|ip| match ip {
            std::net::IpAddr::V4(v4) => format!("{v4}/32"),
            std::net::IpAddr::V6(v6) => format!("{v6}/128"),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn note_http_port(target: &Install) {
    if target
        .network_policy
        .as_ref()
        .is_some_and(|np| np.http_from.is_empty())
    {
        eprintln!("{HTTP_PORT_NOTE}");
    }
}
