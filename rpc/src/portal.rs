//! The portal's files, served by the node on its JSON-RPC port: `GET /` (and `/index.html`),
//! `/assets/…` and `/verifier.wasm`, embedded in the binary at build time (`build.rs` reads
//! `portal/dist`). Every answer carries a strict Content-Security-Policy — scripts and styles
//! only from this origin, no inline script, WebAssembly compilation allowed for the verifier,
//! connections only back to this node — and headers that keep the page out of frames and
//! referrers. Everything else (JSON-RPC POSTs, WebSocket upgrades, `POST /add-checkpoint`) goes
//! on to the next service.

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

/// The embedded file at `path`, if any: `(content type, bytes)`. `/` is `/index.html`.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    assets::ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
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

/// The answer to a `GET`/`HEAD` of a portal path.
fn answer(path: &str, head: bool) -> HttpResponse {
    match asset(path) {
        Some((content_type, bytes)) => {
            // Hashed asset names never change content; the page itself is re-checked each time.
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let body = if head { Vec::new() } else { bytes.to_vec() };
            with_headers(respond(200, content_type, body), cache)
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
        let r = answer(req.uri().path(), method == http::Method::HEAD);
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
            let r = answer(path, false);
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
            assert_eq!(answer("/assets/none.js", false).status(), 404);
            assert_eq!(answer("/", false).status(), 200);
            assert_eq!(asset("/"), asset("/index.html"));
            assert!(asset("/verifier.wasm").is_some(), "the verifier is served");
        } else {
            assert_eq!(answer("/", false).status(), 503);
        }
    }
}
