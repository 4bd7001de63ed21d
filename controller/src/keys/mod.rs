//! The controller's sealing keys: RSA keys (Bitnami's) and age identities (kseal's), from the
//! Secrets they live in to the registry every part of the controller reads.
//!
//! Four parts, each using only the ones above it:
//!
//! | module | what it is | I/O |
//! |---|---|---|
//! | [`registry`] | the keys held ([`registry::KeyRegistry`]): which decrypt, which one seals, and the rules for when a key is due (at start-up, `--key-renew-period`) | none |
//! | [`store`] | key Secrets in the API ([`store::KeyStore`]): reading and writing them in Bitnami's format, and publishing the certificate ConfigMap | API calls |
//! | [`manager`] | the one owner of the registry ([`manager::KeyManager`]): publishes it on a watch channel and performs each change (load, generate, renew, register one found at run time, publish) | through [`store`] |
//! | [`tasks`] | what runs for the controller's whole life: every replica's watches on the key Secrets, and the leader's duties (first key, renewals on the timer, SIGUSR1 or request, the certificate publisher) | through [`manager`] |
//!
//! The HTTP API, the reconciler, the metrics and the web page only read: each holds a
//! receiver of [`manager::KeyManager::subscribe`] and clones the current `Arc<KeyRegistry>`
//! when it needs keys, so nothing waits on a lock while decrypting. Keys are only ever added
//! while the controller runs; the process wiring is in [`crate::app`].

pub mod manager;
pub mod registry;
pub mod store;
pub mod tasks;
