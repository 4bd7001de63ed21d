//! The one HTTP client for `--cert https://…` URLs: proxy variables honoured, a 30 s deadline,
//! and rustls on aws-lc-rs, the crypto backend of everything else in kseal (no second backend
//! such as ring is linked).

use std::sync::Arc;

/// An agent for fetching certificates.
pub fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .proxy(ureq::Proxy::try_from_env())
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into()
}
