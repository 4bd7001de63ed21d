//! Sealing scopes and the RSA-OAEP label each one binds a value to.
//!
//! The label is what makes a SealedSecret refuse to open after it was renamed or moved: it is fed
//! into OAEP (which hashes it into the padding), so a ciphertext made for `prod/db` does not open
//! as `dev/db`. The strict label is `namespace/name` with a slash, as Bitnami's code does (its
//! `docs/developer/crypto.md` wrongly says "concatenation").

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Annotation that selects the cluster-wide scope (value must be exactly `"true"`).
pub const ANNOTATION_CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that selects the namespace-wide scope (value must be exactly `"true"`).
pub const ANNOTATION_NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";

/// Where a sealed value may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Only as this name in this namespace (label `namespace/name`). The default.
    #[default]
    Strict,
    /// Under any name in this namespace (label `namespace`).
    NamespaceWide,
    /// Anywhere in the cluster (empty label).
    ClusterWide,
}

impl Scope {
    /// All scopes, in the order the CLI lists them.
    pub const ALL: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    /// The OAEP label for a SealedSecret called `name` in `namespace` under this scope.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// The scope an object's annotations select: cluster-wide wins over namespace-wide, and only
    /// the exact value `"true"` counts (as in Bitnami's `SealedSecretExpansion`).
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Scope {
        let is_true = |k: &str| {
            annotations
                .and_then(|a| a.get(k))
                .is_some_and(|v| v == "true")
        };
        if is_true(ANNOTATION_CLUSTER_WIDE) {
            Scope::ClusterWide
        } else if is_true(ANNOTATION_NAMESPACE_WIDE) {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The annotation that records this scope on an object, if any (strict has none).
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Scope::Strict => None,
            Scope::NamespaceWide => Some(ANNOTATION_NAMESPACE_WIDE),
            Scope::ClusterWide => Some(ANNOTATION_CLUSTER_WIDE),
        }
    }

    /// Rewrites `annotations` so that they select this scope: both scope annotations are removed
    /// and the one this scope needs is added. This is what kubeseal does for a non-strict `--scope`.
    pub fn apply_to(self, annotations: &mut BTreeMap<String, String>) {
        annotations.remove(ANNOTATION_CLUSTER_WIDE);
        annotations.remove(ANNOTATION_NAMESPACE_WIDE);
        if let Some(a) = self.annotation() {
            annotations.insert(a.to_string(), "true".to_string());
        }
    }

    /// The CLI spelling (`strict`, `namespace-wide`, `cluster-wide`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }

    /// A human description of the label, for error messages (`label "ns/name"`, `empty label`).
    pub fn describe_label(self, namespace: &str, name: &str) -> String {
        match self {
            Scope::ClusterWide => "cluster-wide scope, empty label".to_string(),
            s => format!(
                "{} scope, label {:?}",
                s.as_str(),
                String::from_utf8_lossy(&s.label(namespace, name))
            ),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    /// Parses a CLI value; the empty string means strict, as in Bitnami's `SealingScope.Set`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "" | "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            _ => Err(Error::InvalidScope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annots(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels() {
        assert_eq!(Scope::Strict.label("ns", "n"), b"ns/n");
        assert_eq!(Scope::NamespaceWide.label("ns", "n"), b"ns");
        assert_eq!(Scope::ClusterWide.label("ns", "n"), b"");
    }

    #[test]
    fn annotations_select_scope_cluster_wide_wins() {
        assert_eq!(Scope::from_annotations(None), Scope::Strict);
        let both = annots(&[
            (ANNOTATION_CLUSTER_WIDE, "true"),
            (ANNOTATION_NAMESPACE_WIDE, "true"),
        ]);
        assert_eq!(Scope::from_annotations(Some(&both)), Scope::ClusterWide);
        let ns = annots(&[(ANNOTATION_NAMESPACE_WIDE, "true")]);
        assert_eq!(Scope::from_annotations(Some(&ns)), Scope::NamespaceWide);
        let not_exact = annots(&[
            (ANNOTATION_CLUSTER_WIDE, "True"),
            (ANNOTATION_NAMESPACE_WIDE, "yes"),
        ]);
        assert_eq!(Scope::from_annotations(Some(&not_exact)), Scope::Strict);
    }

    #[test]
    fn apply_rewrites_both_annotations() {
        let mut a = annots(&[(ANNOTATION_CLUSTER_WIDE, "true"), ("x", "y")]);
        Scope::NamespaceWide.apply_to(&mut a);
        assert_eq!(
            a,
            annots(&[(ANNOTATION_NAMESPACE_WIDE, "true"), ("x", "y")])
        );
        Scope::Strict.apply_to(&mut a);
        assert_eq!(a, annots(&[("x", "y")]));
    }

    #[test]
    fn parse() {
        assert_eq!("".parse::<Scope>().unwrap(), Scope::Strict);
        assert_eq!("cluster-wide".parse::<Scope>().unwrap(), Scope::ClusterWide);
        assert_eq!(
            "global".parse::<Scope>().unwrap_err().to_string(),
            "must be one of: strict, namespace-wide, cluster-wide"
        );
    }
}
