//! `kseal web`: serve the sealing page (crate `kseal-web`) and the sealing certificate on
//! loopback, so that someone without kseal can seal in their browser. The page seals with
//! WebCrypto; this server only hands out the page's files and the public certificate, reads no
//! request body and logs no request.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (further ones wait to be accepted),
//! [`HEADER_TIMEOUT`] to send a request head, [`CONNECTION_TIMEOUT`] per connection, request
//! heads of at most [`MAX_HEAD_BYTES`]; only GET and HEAD are answered.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cluster::ClusterArgs;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request head (also closes idle keep-alive connections).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime of one connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request head read.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The default listen address: loopback, where browsers give the page WebCrypto over plain HTTP.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

/// `kseal web`
#[derive(Debug, Args)]
#[command(after_help = "\
Serves the sealing page on http://ADDR:PORT/: a form that seals Secrets (or one value, as
--raw) in the browser with WebCrypto, for the certificate served at /cert.pem (or one pasted
into the page). Values never leave the browser: the page makes no request but its own files and
/cert.pem, and the server reads no request body.

Browsers offer WebCrypto only to https:// pages and to http://127.0.0.1 and http://localhost:
keep the default loopback address, or put the page behind HTTPS. The certificate is read once,
at start; an expired one is refused.")]
pub struct WebArgs {
    /// Sealing certificate: a file, file:// or http(s):// URL [default: the cluster's]
    #[arg(long, env = "KSEAL_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,

    /// Address and port to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Without --cert: where the cluster's certificate comes from
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// What the server hands out besides the page's files.
#[derive(Debug)]
struct Site {
    cert_pem: Bytes,
}

pub fn run(args: WebArgs) -> Result<ExitCode> {
    // As `kseal seal` gets it: --cert (file or URL), else the cluster's; an expired one is refused.
    let cert = super::seal::load_certificate(args.cert.as_deref(), &args.cluster)?;
    let listener = StdListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("cannot set up the listener")?;
    let addr = listener
        .local_addr()
        .context("cannot read the listen address")?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "kseal web: warning: {addr} is not a loopback address. Browsers give WebCrypto only to \
             https:// pages and to http://127.0.0.1 or localhost: opened over plain HTTP from \
             another machine the page cannot seal. Serve it over HTTPS there."
        );
    }
    let expires = cert.not_after().format(&Rfc3339).unwrap_or_default();
    let url = match addr {
        SocketAddr::V6(a) if a.ip().is_loopback() => format!("http://[::1]:{}/", a.port()),
        a => format!("http://{a}/"),
    };
    eprintln!(
        "kseal web: sealing page for certificate {} (expires {expires}) on {url} (Ctrl-C stops)",
        cert.fingerprint()
    );
    let site = Arc::new(Site {
        cert_pem: Bytes::from(cert.to_pem()),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server")?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener).context("cannot set up the listener")?;
        tokio::select! {
            r = serve(listener, site) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(listener: TcpListener, site: Arc<Site>) -> Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots.clone().acquire_owned().await?;
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // A failed accept (a reset connection, too many open files) ends only that one.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let site = site.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let site = site.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&site, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}

/// The answer to one request: the page's files, the certificate, 404 or 405. Every answer
/// carries the page's security headers.
fn respond(site: &Site, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    let (status, content_type, body) = if req.method() != Method::GET && !head {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"method not allowed\n"),
        )
    } else if req.uri().path() == kseal_web::CERT_PATH {
        (
            StatusCode::OK,
            "application/x-pem-file",
            site.cert_pem.clone(),
        )
    } else if let Some(a) = kseal_web::asset(req.uri().path()) {
        (StatusCode::OK, a.content_type, Bytes::from_static(a.body))
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"not found\n"),
        )
    };
    let len = body.len();
    let mut resp = Response::new(Full::new(if head { Bytes::new() } else { body }));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if head {
        h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    for (name, value) in kseal_web::SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}
