//! The one thing offline sealing needs from a kubeconfig: the current context's namespace.
//! Files come from `KUBECONFIG` (colon-separated, first setting wins) or `~/.kube/config`,
//! like kubectl. Any error means "no namespace", as in kubeseal.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Config {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    #[serde(default)]
    context: Context,
}

#[derive(Deserialize, Default)]
struct Context {
    namespace: Option<String>,
}

fn files(explicit: Option<&str>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![PathBuf::from(p)];
    }
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
        _ => std::env::var_os("HOME")
            .map(|h| vec![PathBuf::from(h).join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// The namespace of `context` (default: the current context), if any file sets one.
pub fn context_namespace(explicit: Option<&str>, context: Option<&str>) -> Option<String> {
    let configs: Vec<Config> = files(explicit)
        .iter()
        .filter_map(|p| crate::io::read_file(p, crate::io::KUBECONFIG).ok())
        .filter_map(|b| crate::io::into_text(b).ok())
        .filter_map(|t| serde_yaml::from_str(&t).ok())
        .collect();
    let current = match context {
        Some(c) => c.to_string(),
        None => configs.iter().find_map(|c| c.current_context.clone())?,
    };
    configs
        .iter()
        .flat_map(|c| c.contexts.iter())
        .find(|c| c.name == current)
        .and_then(|c| c.context.namespace.clone())
        .filter(|n| !n.is_empty())
}
