//! kseal-sealing: the sealing domain, shared by the CLI and the controller.
//!
//! [`seal::seal_secret`] and [`unseal::unseal`] are the Secret ⇄ SealedSecret transforms;
//! [`sealed_with`] reads the sealing-key hint that sealing records
//! (`kseal_crds::ANNOTATION_SEALED_WITH`) for `unseal` ([`hint`]). [`seal::seal_secret_with`]
//! seals in either format ([`seal::Sealer`]: Bitnami's RSA or age recipients) and also writes the
//! per-item [`seal_record`]s (`kseal_crds::ANNOTATION_SEAL_RECORDS`) that `kseal verify` checks
//! offline. [`template`] is the Go text/template subset that `spec.template.data` may use;
//! [`limits`] bounds what one SealedSecret may hold before any of that work is done; [`redact`]
//! reads decrypted JSON without ever quoting a value in an error. [`key_secret`] is the format
//! of the controller's key Secrets (RSA keys and age identities) and of key files; [`scrub`]
//! wipes plaintext and key material held in k8s-openapi types.
//!
//! Boundaries: pure functions only: no client, no I/O, no async. The object types are in
//! `kseal-crds`, the cryptography in `kseal-crypto`.

mod error;
pub mod hint;
pub mod key_secret;
pub mod limits;
pub mod redact;
pub mod scrub;
pub mod seal;
pub mod seal_record;
pub mod template;
pub mod unseal;

pub use error::{Error, ItemErrors};
pub use hint::{add_sealed_with, sealed_with};
