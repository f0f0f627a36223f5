//! The portal's files, served by the node on its JSON-RPC port: `GET /` (and `/index.html`),
//! `/assets/…` and `/verifier.wasm`, embedded in the binary at build time (`build.rs` reads
//! `portal/dist`). Every answer carries a strict Content-Security-Policy — scripts and styles
//! only from this origin, no inline script, WebAssembly compilation allowed for the verifier,
//! connections only back to this node — and headers that keep the page out of frames and
//! referrers. Files are sent gzipped (as `npm run build` compressed them) to browsers that accept
//! gzip. Everything else (JSON-RPC POSTs, WebSocket upgrades, `POST /add-checkpoint`) goes on to
//! the next service.

use crate::witness::respond;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/portal_assets.rs"));
}

/// The Content-Security-Policy of every portal answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' \
    'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const NOT_BUILT: &str = "This node was built without its portal. Run scripts/setup.sh (it builds \
    portal/ with npm ci && npm run build), then rebuild the coop binary.\n";

/// An embedded file: its content type, its bytes, and its gzipped bytes when smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The file.
    pub bytes: &'static [u8],
    /// The file gzipped (made by `npm run build`), if that is smaller.
    pub gzipped: Option<&'static [u8]>,
}

/// The embedded file at `path`, if any. `/` is `/index.html`.
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    assets::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, a)| *a)
}

/// Whether an `Accept-Encoding` value accepts gzip (a `q=0` refuses it).
fn accepts_gzip(accept_encoding: Option<&http::HeaderValue>) -> bool {
    let Some(v) = accept_encoding.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    v.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        // A quality of zero ("0", "0.0", "0.000") refuses the coding.
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| !q.is_empty() && q.chars().all(|c| c == '0' || c == '.'))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Whether the portal was built into this binary.
pub fn is_built() -> bool {
    asset("/").is_some()
}

fn is_portal_path(path: &str) -> bool {
    path == "/" || path == "/index.html" || path == "/verifier.wasm" || path.starts_with("/assets/")
}

fn with_headers(mut r: HttpResponse, cache: &str) -> HttpResponse {
    let h = r.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", cache),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    r
}

/// The answer to a `GET`/`HEAD` of a portal path; gzipped when `gzip` is accepted and the file
/// has a smaller gzipped form.
fn answer(path: &str, head: bool, gzip: bool) -> HttpResponse {
    match asset(path) {
        Some(a) => {
            // Hashed asset names never change content; the page itself is re-checked each time.
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let (bytes, encoded) = match a.gzipped {
                Some(gz) if gzip => (gz, true),
                _ => (a.bytes, false),
            };
            let body = if head { Vec::new() } else { bytes.to_vec() };
            let mut r = with_headers(respond(200, a.content_type, body), cache);
            r.headers_mut().insert(
                http::header::VARY,
                http::HeaderValue::from_static("accept-encoding"),
            );
            if encoded {
                r.headers_mut().insert(
                    http::header::CONTENT_ENCODING,
                    http::HeaderValue::from_static("gzip"),
                );
            }
            r
        }
        None if !is_built() => with_headers(
            respond(
                503,
                "text/plain; charset=utf-8",
                NOT_BUILT.as_bytes().to_vec(),
            ),
            "no-store",
        ),
        None => with_headers(
            respond(404, "text/plain; charset=utf-8", b"not found\n".to_vec()),
            "no-store",
        ),
    }
}

/// `tower` layer serving the portal's files in front of the JSON-RPC service.
#[derive(Clone, Debug, Default)]
pub struct PortalLayer;

impl<S> tower::Layer<S> for PortalLayer {
    type Service = Portal<S>;
    fn layer(&self, inner: S) -> Portal<S> {
        Portal { inner }
    }
}

/// See [`PortalLayer`].
#[derive(Clone, Debug)]
pub struct Portal<S> {
    inner: S,
}

impl<S> tower::Service<HttpRequest> for Portal<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Send,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        let method = req.method().clone();
        let page = (method == http::Method::GET || method == http::Method::HEAD)
            && is_portal_path(req.uri().path())
            && !req.headers().contains_key(http::header::UPGRADE);
        if !page {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let gzip = accepts_gzip(req.headers().get(http::header::ACCEPT_ENCODING));
        let r = answer(req.uri().path(), method == http::Method::HEAD, gzip);
        Box::pin(async move { Ok(r) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_carries_the_policy_and_only_portal_paths_are_taken() {
        for path in ["/", "/index.html", "/assets/none.js", "/verifier.wasm"] {
            assert!(is_portal_path(path));
            let r = answer(path, false, false);
            assert_eq!(
                r.headers()["content-security-policy"],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        }
        for path in ["/add-checkpoint", "/metrics", "/../etc/passwd", "/assets"] {
            assert!(!is_portal_path(path), "{path}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("'unsafe-eval'"));
    }

    #[test]
    fn a_missing_file_is_404_once_built_and_the_index_is_the_root() {
        if is_built() {
            assert_eq!(answer("/assets/none.js", false, true).status(), 404);
            assert_eq!(answer("/", false, true).status(), 200);
            assert_eq!(asset("/"), asset("/index.html"));
            assert!(asset("/verifier.wasm").is_some(), "the verifier is served");
        } else {
            assert_eq!(answer("/", false, true).status(), 503);
        }
    }

    #[test]
    fn gzip_is_served_only_to_those_who_accept_it() {
        let h = |v: &'static str| Some(http::HeaderValue::from_static(v));
        assert!(accepts_gzip(h("gzip, deflate, br").as_ref()));
        assert!(accepts_gzip(h("br;q=1.0, gzip;q=0.8").as_ref()));
        assert!(accepts_gzip(h("*").as_ref()));
        assert!(!accepts_gzip(h("gzip;q=0").as_ref()));
        assert!(!accepts_gzip(h("gzip;q=0.000").as_ref()));
        assert!(!accepts_gzip(h("br, identity").as_ref()));
        assert!(!accepts_gzip(None));
        if let Some(Asset {
            bytes,
            gzipped: Some(gz),
            ..
        }) = asset("/verifier.wasm")
        {
            let r = answer("/verifier.wasm", false, true);
            assert_eq!(r.headers()["content-encoding"], "gzip");
            assert_eq!(r.headers()["content-type"], "application/wasm");
            assert!(
                gz.len() < bytes.len() / 2,
                "{} of {}",
                gz.len(),
                bytes.len()
            );
            let r = answer("/verifier.wasm", false, false);
            assert!(r.headers().get("content-encoding").is_none());
        } else {
            assert!(!is_built(), "a built portal has a gzipped verifier");
        }
    }
}
