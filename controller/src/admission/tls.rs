//! The webhook's serving certificate, managed by the controller itself (docs/controller.md,
//! "Admission webhook"): no cert-manager, no install-time certificate.
//!
//! - It lives in a Secret in the controller's namespace (`--webhook-secret`, type
//!   `kubernetes.io/tls`: `tls.crt`, `tls.key`, and `ca.crt`, the CA bundle). The certificate
//!   is self-signed (RSA-2048, [`CERT_VALIDITY`]) for the webhook Service's DNS names and is
//!   its own trust anchor in the caBundle.
//! - Every replica runs [`run`]: it reads the Secret, creates it when missing, renews it when
//!   less than [`RENEW_BEFORE`] of its validity is left, serves what the Secret holds, and puts
//!   the bundle into the `caBundle` of the ValidatingWebhookConfiguration it owns
//!   (`--webhook-configuration`), in every webhook whose Service is ours. It checks again every
//!   [`CHECK_EVERY`], so a renewal by another replica is picked up and a caBundle that someone
//!   reset (a re-apply) is put back.
//! - Replicas never overwrite each other: the Secret is created (409: another replica was
//!   first, its certificate is used) or replaced with the resourceVersion that was read (409:
//!   read again); the configuration is replaced the same way, and only when its bundle lacks the
//!   certificate this replica serves, so a replica with an older view never removes a newer
//!   certificate.
//! - On renewal the bundle keeps the previous certificate until it expires, so replicas that
//!   still serve it are trusted while they catch up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kseal_crypto::Certificate;
use kube::api::PostParams;
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Validity of a serving certificate.
pub const CERT_VALIDITY: time::Duration = time::Duration::days(365);

/// A certificate with less than this left is renewed.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(120);

/// How often every replica checks the Secret and the configuration.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The Secret's keys.
pub const TLS_CRT: &str = "tls.crt";
/// The private key (PKCS#8 PEM).
pub const TLS_KEY: &str = "tls.key";
/// The CA bundle: the current certificate, then earlier ones until they expire.
pub const CA_CRT: &str = "ca.crt";

/// Where the webhook's objects are (controller flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookObjects {
    /// The controller's namespace (the Secret's and the Service's).
    pub namespace: String,
    /// `--webhook-service`: the Service the API server calls.
    pub service: String,
    /// `--webhook-secret`: the Secret holding the serving certificate.
    pub secret: String,
    /// `--webhook-configuration`: the ValidatingWebhookConfiguration whose caBundle is kept.
    pub configuration: String,
}

impl WebhookObjects {
    /// The DNS names the API server may use for the Service (it uses `<svc>.<ns>.svc`).
    pub fn dns_names(&self) -> Vec<String> {
        let (s, ns) = (&self.service, &self.namespace);
        vec![
            format!("{s}.{ns}.svc"),
            format!("{s}.{ns}.svc.cluster.local"),
            format!("{s}.{ns}"),
            s.clone(),
        ]
    }
}

/// A serving certificate and its key, as PEM. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct ServingCert {
    /// The certificate.
    pub cert_pem: String,
    /// The private key; wiped when dropped.
    pub key_pem: zeroize::Zeroizing<String>,
    /// The CA bundle (the certificate first).
    pub bundle_pem: String,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").finish_non_exhaustive()
    }
}

/// Why the certificate could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen failed.
    #[error("cannot generate the webhook's serving certificate: {0}")]
    Generate(String),
    /// The Secret holds something rustls refuses.
    #[error("the webhook Secret does not hold a usable certificate and key: {0}")]
    Unusable(String),
}

/// A new self-signed certificate for `names`, valid from an hour before `now` (clock skew) for
/// [`CERT_VALIDITY`]; the bundle is the certificate plus the still valid ones of `previous`.
pub fn generate(
    names: &[String],
    previous_bundle: Option<&str>,
    now: OffsetDateTime,
) -> Result<ServingCert, TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, RsaKeySize, PKCS_RSA_SHA256,
    };
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + CERT_VALIDITY;
    // An end-entity certificate, trusted as itself: the caBundle holds it, and Go (the API
    // server) and webpki both accept a self-signed end entity that is its own trust anchor
    // (webpki refuses a CA certificate used as a server's).
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(err)?;
    let cert_pem = cert.pem();
    let bundle_pem = bundle(&cert_pem, previous_bundle, now);
    Ok(ServingCert {
        cert_pem,
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        bundle_pem,
    })
}

/// `current` followed by the certificates of `previous` that have not expired at `now` (at
/// most two, without duplicates).
pub fn bundle(current: &str, previous: Option<&str>, now: OffsetDateTime) -> String {
    let mut out = vec![current.trim_end().to_string()];
    for der in previous
        .map(|p| certificates(p.as_bytes()))
        .unwrap_or_default()
    {
        let Ok(cert) = Certificate::from_der(&der) else {
            continue;
        };
        let pem = cert.to_pem();
        if cert.not_after() > now && !out.iter().any(|o| o.trim_end() == pem.trim_end()) {
            out.push(pem.trim_end().to_string());
        }
        if out.len() >= 3 {
            break;
        }
    }
    out.join("\n") + "\n"
}

/// Every CERTIFICATE block of a PEM text, as DER.
pub fn certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// Whether `cert_pem` must be replaced at `now`: unreadable, or less than [`RENEW_BEFORE`] left.
pub fn needs_renewal(cert_pem: &[u8], now: OffsetDateTime) -> bool {
    match Certificate::from_pem(cert_pem) {
        Ok(c) => c.not_after() - now < RENEW_BEFORE,
        Err(_) => true,
    }
}

/// The rustls configuration serving `cert` (HTTP/1.1, aws-lc-rs, no client certificates).
pub fn server_config(cert: &ServingCert) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let bad = |e: &dyn std::fmt::Display| TlsError::Unusable(e.to_string());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| bad(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn from_secret(secret: &Secret) -> Option<ServingCert> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let cert_pem = text(TLS_CRT)?;
    Some(ServingCert {
        bundle_pem: text(CA_CRT).unwrap_or_else(|| cert_pem.clone()),
        key_pem: zeroize::Zeroizing::new(text(TLS_KEY)?),
        cert_pem,
    })
}

fn secret_of(objects: &WebhookObjects, cert: &ServingCert, base: Option<&Secret>) -> Secret {
    let mut metadata = base.map(|s| s.metadata.clone()).unwrap_or(ObjectMeta {
        name: Some(objects.secret.clone()),
        namespace: Some(objects.namespace.clone()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "kseal-controller".to_string(),
        )])),
        ..Default::default()
    });
    metadata.managed_fields = None;
    Secret {
        metadata,
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                TLS_CRT.into(),
                ByteString(cert.cert_pem.clone().into_bytes()),
            ),
            (TLS_KEY.into(), ByteString(cert.key_pem.as_bytes().to_vec())),
            (
                CA_CRT.into(),
                ByteString(cert.bundle_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    }
}

/// What one pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The certificate is served and the configuration trusts it (or does not exist).
    Done,
    /// Another replica wrote in between (409): read again at once.
    Conflict,
}

/// One pass: the Secret read, created or renewed; its certificate published on `serving`; the
/// configuration's caBundle checked.
pub async fn sync_once(
    client: &Client,
    objects: &WebhookObjects,
    serving: &watch::Sender<Option<Arc<rustls::ServerConfig>>>,
    current: &mut Option<ServingCert>,
    now: OffsetDateTime,
) -> anyhow::Result<Pass> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &objects.namespace);
    let existing = secrets.get_opt(&objects.secret).await?;
    let stored = existing.as_ref().and_then(from_secret);
    let cert = match (&existing, stored) {
        (Some(_), Some(c)) if !needs_renewal(c.cert_pem.as_bytes(), now) => c,
        (None, _) => {
            let cert = generate(&objects.dns_names(), None, now)?;
            match secrets
                .create(&PostParams::default(), &secret_of(objects, &cert, None))
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %objects.secret, "created the webhook's serving certificate");
                    cert
                }
                Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Pass::Conflict),
                Err(e) => return Err(e.into()),
            }
        }
        (Some(secret), old) => {
            let previous = old.as_ref().map(|c| c.bundle_pem.as_str());
            let cert = generate(&objects.dns_names(), previous, now)?;
            // The resourceVersion read above makes this conditional.
            match secrets
                .replace(
                    &objects.secret,
                    &PostParams::default(),
                    &secret_of(objects, &cert, Some(secret)),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %objects.secret, "renewed the webhook's serving certificate");
                    cert
                }
                Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Pass::Conflict),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if current.as_ref() != Some(&cert) {
        serving.send_replace(Some(server_config(&cert)?));
        tracing::info!("serving the webhook's certificate");
        *current = Some(cert.clone());
    }
    inject_ca(client, objects, &cert).await
}

/// Puts the bundle into every webhook of the configuration that calls our Service, when its
/// caBundle lacks the certificate served here.
async fn inject_ca(
    client: &Client,
    objects: &WebhookObjects,
    cert: &ServingCert,
) -> anyhow::Result<Pass> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let Some(mut vwc) = api.get_opt(&objects.configuration).await? else {
        tracing::debug!(configuration = %objects.configuration, "no ValidatingWebhookConfiguration to keep");
        return Ok(Pass::Done);
    };
    let served = certificates(cert.cert_pem.as_bytes());
    let mut changed = false;
    for webhook in vwc.webhooks.iter_mut().flatten() {
        let ours = webhook
            .client_config
            .service
            .as_ref()
            .is_some_and(|s| s.name == objects.service && s.namespace == objects.namespace);
        if !ours {
            continue;
        }
        let trusted = webhook
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| certificates(&b.0))
            .unwrap_or_default();
        if served.iter().all(|c| trusted.contains(c)) {
            continue;
        }
        webhook.client_config.ca_bundle = Some(ByteString(cert.bundle_pem.clone().into_bytes()));
        changed = true;
    }
    if !changed {
        return Ok(Pass::Done);
    }
    vwc.metadata.managed_fields = None;
    match api
        .replace(&objects.configuration, &PostParams::default(), &vwc)
        .await
    {
        Ok(_) => {
            tracing::info!(configuration = %objects.configuration, "put the webhook's CA into the ValidatingWebhookConfiguration");
            Ok(Pass::Done)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Pass::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Keeps the certificate and the caBundle until `stop` (every replica runs this).
pub async fn run(
    client: Client,
    objects: WebhookObjects,
    serving: watch::Sender<Option<Arc<rustls::ServerConfig>>>,
    stop: CancellationToken,
) {
    let mut current = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match sync_once(
            &client,
            &objects,
            &serving,
            &mut current,
            OffsetDateTime::now_utc(),
        )
        .await
        {
            Ok(Pass::Done) => {
                backoff = Duration::from_secs(1);
                CHECK_EVERY
            }
            Ok(Pass::Conflict) => Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %crate::logging::error_chain(e.as_ref()), "webhook certificate: retrying in {backoff:?}");
                let wait = backoff;
                backoff = (backoff * 2).min(CHECK_EVERY);
                wait
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> WebhookObjects {
        WebhookObjects {
            namespace: "kube-system".into(),
            service: "sealed-secrets-controller-webhook".into(),
            secret: "sealed-secrets-controller-webhook-tls".into(),
            configuration: "sealed-secrets-controller".into(),
        }
    }

    #[test]
    fn a_generated_certificate_serves_and_names_the_service() {
        let now = OffsetDateTime::now_utc();
        let cert = generate(&objects().dns_names(), None, now).unwrap();
        assert!(server_config(&cert).is_ok());
        let parsed = Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap();
        assert!(parsed
            .subject()
            .contains("sealed-secrets-controller-webhook.kube-system.svc"));
        assert!(!needs_renewal(cert.cert_pem.as_bytes(), now));
        assert!(needs_renewal(
            cert.cert_pem.as_bytes(),
            now + CERT_VALIDITY - RENEW_BEFORE + time::Duration::days(1)
        ));
        assert!(needs_renewal(b"garbage", now));
        assert_eq!(certificates(cert.bundle_pem.as_bytes()).len(), 1);
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_renewal_keeps_the_previous_certificate_in_the_bundle_until_it_expires() {
        let now = OffsetDateTime::now_utc();
        let first = generate(&objects().dns_names(), None, now).unwrap();
        let second = generate(&objects().dns_names(), Some(&first.bundle_pem), now).unwrap();
        let in_bundle = certificates(second.bundle_pem.as_bytes());
        assert_eq!(in_bundle.len(), 2);
        assert_eq!(in_bundle[0], certificates(second.cert_pem.as_bytes())[0]);
        assert_eq!(in_bundle[1], certificates(first.cert_pem.as_bytes())[0]);
        // After the first one expired it is dropped; the bundle never grows past three.
        let later = now + CERT_VALIDITY + time::Duration::days(1);
        assert_eq!(
            certificates(bundle(&second.cert_pem, Some(&second.bundle_pem), later).as_bytes())
                .len(),
            1
        );
        let third = generate(&objects().dns_names(), Some(&second.bundle_pem), now).unwrap();
        let fourth = generate(&objects().dns_names(), Some(&third.bundle_pem), now).unwrap();
        assert_eq!(certificates(fourth.bundle_pem.as_bytes()).len(), 3);
    }
}
