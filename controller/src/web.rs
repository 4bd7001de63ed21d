//! `--web-page` (off by default): the sealing page of `kseal web` (crate `kseal-web`) on the
//! main port under `/web/`, with the newest key's certificate at `/web/cert.pem`, so that a team
//! can expose it through an Ingress. The page seals in the browser; nothing here reads a body.
//! Browsers give the page WebCrypto only over HTTPS (or on loopback): put TLS in front of it.
//! Every answer carries the page's security headers (a strict Content-Security-Policy).

use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::keys::registry::KeyRegistry;

/// Where the page is served.
pub const WEB_PREFIX: &str = "/web";

/// The page's routes, to merge into the main router.
pub fn router(keys: watch::Receiver<Arc<KeyRegistry>>) -> Router {
    // The page's URLs are relative: `/web` must become `/web/`.
    let mut r = Router::new().route(
        WEB_PREFIX,
        get(|| async {
            answer(
                StatusCode::MOVED_PERMANENTLY,
                "text/plain",
                "web/\n".into(),
                Some("web/"),
            )
        }),
    );
    for (path, content_type, body) in kseal_web::ASSETS {
        r = r.route(
            &format!("{WEB_PREFIX}{path}"),
            get(move || async move { answer(StatusCode::OK, content_type, body.to_vec(), None) }),
        );
    }
    r.route(
        &format!("{WEB_PREFIX}{}", kseal_web::CERT_PATH),
        get(move || {
            let registry = keys.borrow().clone();
            async move {
                match registry.newest().and_then(|k| k.key.certificate()) {
                    Some(cert) => answer(
                        StatusCode::OK,
                        "application/x-pem-file",
                        cert.to_pem().into_bytes(),
                        None,
                    ),
                    None => answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        b"no sealing key yet\n".to_vec(),
                        None,
                    ),
                }
            }
        }),
    )
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<&'static str>,
) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(l) = location {
        h.insert(header::LOCATION, HeaderValue::from_static(l));
    }
    for (name, value) in kseal_web::SECURITY_HEADERS {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}
