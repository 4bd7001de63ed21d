//! The crate dependency rules of docs/architecture.md, checked against `cargo metadata`: which
//! kseal crates each crate may use directly, and which outside crates it must never reach, even
//! through another crate (a Kubernetes client in `kseal-crypto`, async in `kseal-sealing`, ...).
//! No cluster needed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{bail, ensure, Context as _, Result};
use serde_json::Value;

/// (crate, the kseal crates it may use directly, outside crates it must never reach).
const RULES: &[(&str, &[&str], &[&str])] = &[
    ("kseal-crypto", &[], KUBERNETES_ASYNC_CLI),
    ("kseal-gocompat", &[], KUBERNETES_ASYNC_CLI),
    ("kseal-web", &[], KUBERNETES_ASYNC_CLI),
    ("kseal-yamledit", &["kseal-gocompat"], KUBERNETES_ASYNC_CLI),
    ("kseal-crds", &["kseal-gocompat"], ASYNC_CLI),
    (
        "kseal-sealing",
        &["kseal-crypto", "kseal-crds", "kseal-gocompat"],
        ASYNC_CLI,
    ),
    (
        "kseal-controller",
        &[
            "kseal-crypto",
            "kseal-crds",
            "kseal-sealing",
            "kseal-gocompat",
            "kseal-web",
        ],
        &[],
    ),
    (
        "kseal",
        &[
            "kseal-crypto",
            "kseal-crds",
            "kseal-sealing",
            "kseal-gocompat",
            "kseal-yamledit",
            "kseal-web",
        ],
        &[],
    ),
];

const KUBERNETES_ASYNC_CLI: &[&str] = &[
    "k8s-openapi",
    "kube",
    "kube-client",
    "kube-core",
    "tokio",
    "hyper",
    "clap",
];
const ASYNC_CLI: &[&str] = &["kube", "kube-client", "tokio", "hyper", "clap"];

fn metadata() -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    // Only this machine's platform: the others' crates (Windows consoles, ...) are not
    // downloaded, and an offline resolve of every platform would fail.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("run rustc -vV")?;
    let version = String::from_utf8_lossy(&version.stdout);
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .context("rustc -vV names no host")?;
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", host, "--manifest-path", root])
        .output()
        .context("run cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("parse cargo metadata")
}

#[test]
fn crates_depend_only_on_what_docs_architecture_allows() -> Result<()> {
    let meta = metadata()?;
    // Package id → name, and the resolved graph: id → [(dependency id, used outside dev?)].
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .context("packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let mut graph: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().context("resolve")? {
        let id = node["id"].as_str().context("node id")?;
        let deps = node["deps"].as_array().context("deps")?;
        let edges = deps.iter().filter_map(|d| {
            let not_dev = d["dep_kinds"]
                .as_array()?
                .iter()
                .any(|k| k["kind"].as_str() != Some("dev"));
            Some((d["pkg"].as_str()?, not_dev))
        });
        graph.insert(id, edges.collect());
    }
    let id_of = |name: &str| {
        meta["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|id| names.get(id) == Some(&name))
    };

    let mut broken = Vec::new();
    let mut controller_reaches_tokio = false;
    for (name, allowed, never) in RULES {
        let Some(id) = id_of(name) else {
            bail!("{name} is not a workspace member: update RULES and docs/architecture.md");
        };
        for (dep, not_dev) in &graph[id] {
            let dep = names[dep];
            if *not_dev && dep.starts_with("kseal") && !allowed.contains(&dep) {
                broken.push(format!("{name} uses {dep}"));
            }
        }
        // Everything reachable without dev-dependencies.
        let mut seen = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(at) = stack.pop() {
            for (dep, not_dev) in graph.get(at).into_iter().flatten() {
                if *not_dev && seen.insert(*dep) {
                    stack.push(dep);
                }
            }
        }
        if *name == "kseal-controller" {
            controller_reaches_tokio = seen.iter().any(|d| names[d] == "tokio");
        }
        for dep in seen {
            if never.contains(&names[dep]) {
                broken.push(format!("{name} reaches {}", names[dep]));
            }
        }
    }
    // Every workspace library crate has a rule (the e2e harness may use anything).
    for id in meta["workspace_members"].as_array().context("members")? {
        let name = names[id.as_str().context("member id")?];
        if name != "kseal-e2e" && !RULES.iter().any(|(n, _, _)| *n == name) {
            broken.push(format!("{name} has no rule in RULES"));
        }
    }
    // The walk itself works: the controller does reach tokio.
    ensure!(
        controller_reaches_tokio,
        "the dependency walk found no tokio under the controller"
    );
    ensure!(
        broken.is_empty(),
        "dependency rules of docs/architecture.md broken: {}",
        broken.join("; ")
    );
    Ok(())
}
