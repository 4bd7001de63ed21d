//! kseal's sealing page: a static HTML/CSS/JavaScript page that seals Secrets in the browser
//! with WebCrypto, in Bitnami's format and with `kseal seal`'s output (see `docs/web.md`).
//!
//! This crate only embeds the files of `page/` and says how to serve them: [`asset`] maps a
//! request path to its bytes and content type, and [`SECURITY_HEADERS`] are the headers every
//! response carries (a strict Content-Security-Policy among them). `kseal web` serves them, and
//! so can any other server of the project. The certificate (`/cert.pem`) is the server's to add.
//!
//! No dependency, no build step: the files are the page, byte for byte.

/// The path the page fetches the sealing certificate from: `cert.pem` next to the page (every
/// URL of the page is relative, so that it works under any path prefix).
pub const CERT_PATH: &str = "/cert.pem";

/// The Content-Security-Policy of every response: nothing but this origin's own files, no inline
/// script or style, no framing, no form submission, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Headers for every response of the page's server, the errors included.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// One file of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The `Content-Type` to send.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file: request path, content type, bytes.
pub const ASSETS: [(&str, &str, &[u8]); 6] = [
    ("/", HTML, include_bytes!("../page/index.html")),
    ("/index.html", HTML, include_bytes!("../page/index.html")),
    ("/app.js", JS, include_bytes!("../page/app.js")),
    ("/seal.js", JS, include_bytes!("../page/seal.js")),
    ("/kseal.css", CSS, include_bytes!("../page/kseal.css")),
    ("/favicon.svg", SVG, include_bytes!("../page/favicon.svg")),
];

/// The file served at `path` (the path of the request target, without query).
pub fn asset(path: &str) -> Option<Asset> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(path: &str) -> &'static str {
        std::str::from_utf8(asset(path).unwrap().body).unwrap()
    }

    #[test]
    fn every_file_is_served_with_its_type() {
        assert_eq!(asset("/").unwrap(), asset("/index.html").unwrap());
        assert_eq!(asset("/app.js").unwrap().content_type, JS);
        assert!(asset("/nope").is_none());
        assert!(asset("/../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_only_local_references() {
        let html = text("/");
        // Scripts only by src, no event handler attributes, no style attributes or elements.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains(r#"<script type="module" src="app.js"></script>"#));
        for bad in [
            " onclick=",
            " onload=",
            " onerror=",
            " style=",
            "<style",
            "javascript:",
        ] {
            assert!(!html.contains(bad), "{bad}");
        }
        // Every src/href names a file served here (or a fragment).
        for attr in ["src=\"", "href=\""] {
            for part in html.split(attr).skip(1) {
                let target = &part[..part.find('"').unwrap()];
                // Relative, so that the page works under any prefix (`/`, `/web/`, a proxy).
                assert!(
                    asset(&format!("/{target}")).is_some() && !target.starts_with('/'),
                    "{attr}{target}"
                );
            }
        }
        for js in ["/app.js", "/seal.js"] {
            let src = text(js);
            for bad in [
                "localStorage",
                "sessionStorage",
                "document.cookie",
                "indexedDB",
                "eval(",
            ] {
                assert!(!src.contains(bad), "{js}: {bad}");
            }
        }
        assert!(text("/app.js").contains("fetch('cert.pem'"));
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
