//! `kseal install`: prints the controller's manifests, or applies them (see [`crate::install`]).

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::InstallArgs;
use crate::cluster::{block_on, client};
use crate::install::{self, ApplyOptions, Install, InstallFormat, NetworkPolicy, DEFAULT_TIMEOUT};
use crate::io::Output;

/// Printed after a successful render or apply when the NetworkPolicy admits no CIDR to the
/// HTTP port (the trade-off of the default; see the README).
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
