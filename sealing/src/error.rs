//! Errors of sealing and unsealing SealedSecrets.

use std::fmt;

/// What went wrong turning a Secret into a SealedSecret or back. Messages match kubeseal's
/// where kubeseal has one (scripts grep for them); none quotes a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `data` nor `stringData` and no `--allow-empty-data`.
    #[error("secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used")]
    EmptyData,
    /// No name after `--name` was applied.
    #[error("missing metadata.name in input Secret")]
    MissingName,
    /// A strict or namespace-wide Secret without a namespace.
    #[error("secret must declare a namespace")]
    MissingNamespace,
    /// `-n` disagrees with the Secret's own namespace.
    #[error(
        "namespace mismatch: input secret is in namespace {input:?} but {flag:?} was specified"
    )]
    NamespaceMismatch {
        /// The input's namespace.
        input: String,
        /// The flag's namespace.
        flag: String,
    },
    /// Sealing one item failed.
    #[error("cannot seal item {item:?}: {source}")]
    Seal {
        /// Item name.
        item: String,
        /// Cause.
        source: kseal_crypto::Error,
    },
    /// Both the deprecated `spec.data` and `spec.encryptedData` are set.
    #[error(
        "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
    )]
    BothDataFields,
    /// The deprecated `spec.data` when it is not accepted (kubeseal's recovery default).
    #[error("using deprecated 'data' field, use 'encryptedData' or flip the feature flag")]
    DeprecatedData,
    /// The deprecated blob opened but is not a JSON Secret.
    #[error("the deprecated 'data' field does not hold a Secret: {0}")]
    DeprecatedDataNotSecret(String),
    /// Some items could not be opened; see [`ItemErrors`].
    #[error("{0}")]
    Items(ItemErrors),
    /// `spec.template.data` could not be parsed or rendered.
    #[error("{0}")]
    Template(String),
    /// The SealedSecret is over one of the bounds of [`crate::limits`].
    #[error("{0}")]
    Limit(String),
}

/// Per-item failures, printed as Bitnami prints them: grouped by message with the item names
/// joined, e.g. `no key could decrypt secret (a, b)`; different messages on separate lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemErrors {
    /// `(message, items)` in first-seen order.
    pub groups: Vec<(String, Vec<String>)>,
}

impl ItemErrors {
    /// Records that `item` failed with `message`.
    pub fn push(&mut self, item: &str, message: String) {
        match self.groups.iter_mut().find(|(m, _)| *m == message) {
            Some((_, items)) => items.push(item.to_string()),
            None => self.groups.push((message, vec![item.to_string()])),
        }
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// True when every failure is a decryption failure (not a malformed value).
    pub fn all_decryption(&self) -> bool {
        self.groups
            .iter()
            .all(|(m, _)| m == "no key could decrypt secret")
    }
}

impl fmt::Display for ItemErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (msg, items)) in self.groups.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{msg} ({})", items.join(", "))?;
        }
        Ok(())
    }
}
