//! What jsonrpsee does not refuse on its own: a request `id` that is an object, an array or a
//! fraction is not a JSON-RPC id (the spec allows a string, a number without fraction, or
//! null). jsonrpsee answers such a request with an empty `null` body; this layer answers
//! `-32600 Invalid request` naming `id`, for single requests and for every member of a batch.
//! A subscription called over plain HTTP gets "open a WebSocket" rather than "Internal error".
//! A body that has not arrived in time (10 seconds by default) is answered 408 and the
//! connection closed, so a trickling client cannot hold a connection slot for long. A WebSocket
//! handshake carrying an `Origin` not on the allow-list (the node's own address, and those
//! configured) is refused 403.
//! Bodies are read once, within the server's size limit, and handed on unchanged.

use crate::witness::respond;
use http_body_util::{BodyExt, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

const JSON: &str = "application/json; charset=utf-8";
use serde::Deserialize;
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Only the `id` and `method` of a request, everything else skipped unparsed.
#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a str>,
}

/// Subscriptions: they need a WebSocket, and over plain HTTP jsonrpsee answers a bare
/// "Internal error".
const SUBSCRIPTIONS: &[&str] = &[
    "ledger_subscribeCheckpoints",
    "ledger_unsubscribeCheckpoints",
];

/// True when `id` is a string, an integer or null.
fn id_is_valid(id: &RawValue) -> bool {
    let t = id.get().trim();
    match t.as_bytes().first() {
        Some(b'"') => true,
        Some(b'{') | Some(b'[') => false,
        _ => t == "null" || t.parse::<i64>().is_ok() || t.parse::<u64>().is_ok(),
    }
}

fn is_websocket(req: &HttpRequest) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A single request over HTTP for a subscription: its id (raw JSON), to answer it.
fn subscription_over_http(body: &[u8]) -> Option<String> {
    let r = serde_json::from_slice::<IdOnly<'_>>(body).ok()?;
    let method = r.method?;
    SUBSCRIPTIONS.contains(&method).then(|| {
        r.id.map_or_else(|| "null".to_owned(), |i| i.get().to_owned())
    })
}

fn needs_websocket(id: &str) -> HttpResponse {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"ledger_subscribeCheckpoints is a subscription: open a WebSocket to this address and call it there","data":{{"field":"method"}}}}}}"#
    );
    respond(200, JSON, body.into_bytes())
}

/// Whether the body holds a request (or batch member) with an invalid id. A body that does not
/// parse is left to jsonrpsee (it answers -32700).
fn has_invalid_id(body: &[u8]) -> bool {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        match serde_json::from_slice::<Vec<IdOnly<'_>>>(body) {
            Ok(batch) => batch.iter().any(|r| r.id.is_some_and(|i| !id_is_valid(i))),
            Err(_) => false,
        }
    } else {
        match serde_json::from_slice::<IdOnly<'_>>(body) {
            Ok(r) => r.id.is_some_and(|i| !id_is_valid(i)),
            Err(_) => false,
        }
    }
}

fn invalid_request() -> HttpResponse {
    let body = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: `id` must be a string, an integer or null"}}"#;
    respond(200, JSON, body.to_vec())
}

fn too_slow() -> HttpResponse {
    let body = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: the body did not arrive in time"}}"#;
    let mut r = respond(408, JSON, body.to_vec());
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

fn too_large() -> HttpResponse {
    let body = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: the body is larger than the server accepts"}}"#;
    respond(413, JSON, body.to_vec())
}

/// The layer; `max_body` is the server's request size limit.
#[derive(Debug, Clone)]
pub struct RequestShapeLayer {
    max_body: usize,
    body_timeout: std::time::Duration,
    origins: std::sync::Arc<Vec<String>>,
}

impl RequestShapeLayer {
    /// Checks request ids of bodies up to `max_body` bytes (larger ones are answered 413)…
    /// …arriving within `body_timeout`; WebSocket handshakes from a browser are accepted only
    /// from `origins` (exact `scheme://host[:port]` strings).
    pub fn new(
        max_body: usize,
        body_timeout: std::time::Duration,
        origins: Vec<String>,
    ) -> RequestShapeLayer {
        RequestShapeLayer {
            max_body,
            body_timeout,
            origins: std::sync::Arc::new(origins),
        }
    }
}

impl<S> tower::Layer<S> for RequestShapeLayer {
    type Service = RequestShape<S>;
    fn layer(&self, inner: S) -> RequestShape<S> {
        RequestShape {
            inner,
            max_body: self.max_body,
            body_timeout: self.body_timeout,
            origins: self.origins.clone(),
        }
    }
}

/// See [`RequestShapeLayer`].
#[derive(Debug, Clone)]
pub struct RequestShape<S> {
    inner: S,
    max_body: usize,
    body_timeout: std::time::Duration,
    origins: std::sync::Arc<Vec<String>>,
}

impl<S> tower::Service<HttpRequest> for RequestShape<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
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
        // A browser opening a WebSocket says where its page came from; a page of another site
        // must not ride on the member's loopback node (cross-site WebSocket hijacking). Clients
        // that are not browsers send no Origin and are not affected.
        if is_websocket(&req) {
            if let Some(origin) = req.headers().get(http::header::ORIGIN) {
                let allowed = origin
                    .to_str()
                    .is_ok_and(|o| self.origins.iter().any(|a| a == o));
                if !allowed {
                    return Box::pin(async {
                        Ok(respond(
                            403,
                            "text/plain",
                            b"this Origin may not open a WebSocket here\n".to_vec(),
                        ))
                    });
                }
            }
        }
        // WebSocket upgrades and other methods go straight on.
        if req.method() != http::Method::POST {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        // The service that was polled ready serves this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (max, limit) = (self.max_body, self.body_timeout);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            // A client that trickles its body holds a connection: it gets `limit` in all.
            let bytes = match tokio::time::timeout(limit, Limited::new(body, max).collect()).await {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(_)) => return Ok(too_large()),
                Err(_) => return Ok(too_slow()),
            };
            if has_invalid_id(&bytes) {
                return Ok(invalid_request());
            }
            if let Some(id) = subscription_over_http(&bytes) {
                return Ok(needs_websocket(&id));
            }
            let req = HttpRequest::from_parts(parts, HttpBody::from(bytes.to_vec()));
            inner.call(req).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strings_integers_or_null() {
        for ok in [
            r#"{"id":1}"#,
            r#"{"id":"a"}"#,
            r#"{"id":null}"#,
            r#"{"method":"x"}"#,
            r#"[{"id":1},{"id":"b"}]"#,
            r#"{"id":-7,"params":[1.5,{"a":[]}]}"#,
            "not json",
        ] {
            assert!(!has_invalid_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            r#"{"id":{}}"#,
            r#"{"id":[1]}"#,
            r#"{"id":1.5}"#,
            r#"{"id":1e3}"#,
            r#"[{"id":1},{"id":{}}]"#,
        ] {
            assert!(has_invalid_id(bad.as_bytes()), "{bad}");
        }
    }
}

#[cfg(test)]
mod subscription_tests {
    use super::*;

    #[test]
    fn a_subscription_over_http_is_recognised_with_its_id() {
        let body =
            br#"{"jsonrpc":"2.0","id":7,"method":"ledger_subscribeCheckpoints","params":[]}"#;
        assert_eq!(subscription_over_http(body).as_deref(), Some("7"));
        assert_eq!(
            subscription_over_http(br#"{"id":1,"method":"ledger_checkpoint"}"#),
            None
        );
    }
}
