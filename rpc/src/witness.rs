//! The node's witness over HTTP: the C2SP tlog-witness endpoint `POST /add-checkpoint`, served
//! on the JSON-RPC port by a tower layer in front of jsonrpsee, and the `witness_*` methods that
//! show its state and evidence (kept by `coopledger_node::witness`).

use crate::api::{RpcResult, WitnessApiServer};
use crate::error;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::witness::{SplitViewEvidence, WitnessStore, Witnessed};
use coopledger_node::witness::NodeWitness;
use http_body_util::BodyExt;
use jsonrpsee::core::async_trait;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Largest `add-checkpoint` body read (63 proof lines and a note with signatures fit easily).
const MAX_BODY: usize = 64 * 1024;

/// `tower` layer serving `POST /add-checkpoint` with `witness` (when the node is one) and
/// passing everything else to JSON-RPC.
#[derive(Clone, Debug)]
pub struct WitnessLayer {
    witness: Option<Arc<NodeWitness>>,
}

impl WitnessLayer {
    /// The layer; `None` answers `/add-checkpoint` with 404.
    pub fn new(witness: Option<Arc<NodeWitness>>) -> WitnessLayer {
        WitnessLayer { witness }
    }
}

impl<S> tower::Layer<S> for WitnessLayer {
    type Service = WitnessEndpoint<S>;
    fn layer(&self, inner: S) -> WitnessEndpoint<S> {
        WitnessEndpoint {
            inner,
            witness: self.witness.clone(),
        }
    }
}

/// See [`WitnessLayer`].
#[derive(Clone, Debug)]
pub struct WitnessEndpoint<S> {
    inner: S,
    witness: Option<Arc<NodeWitness>>,
}

/// An HTTP answer with `status`, `content_type` and `body` (the endpoints outside JSON-RPC).
pub(crate) fn respond(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

impl<S> tower::Service<HttpRequest> for WitnessEndpoint<S>
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
        if req.uri().path() != "/add-checkpoint" {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let witness = self.witness.clone();
        Box::pin(async move {
            if req.method() != http::Method::POST {
                return Ok(respond(405, "text/plain", b"use POST\n".to_vec()));
            }
            let Some(witness) = witness else {
                return Ok(respond(
                    404,
                    "text/plain",
                    b"this node is not a witness\n".to_vec(),
                ));
            };
            let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes().to_vec(),
                Err(_) => return Ok(respond(400, "text/plain", b"body too large\n".to_vec())),
            };
            let now = now_ms() / 1000;
            let outcome =
                tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
            Ok(match outcome {
                Ok(Ok(lines)) => respond(200, "text/plain; charset=utf-8", lines.into_bytes()),
                Ok(Err(refusal)) => match refusal {
                    coopledger_ledger::witness::WitnessRefusal::Conflict { known_size, .. } => {
                        respond(
                            409,
                            "text/x.tlog.size",
                            format!("{known_size}\n").into_bytes(),
                        )
                    }
                    other => respond(
                        other.status(),
                        "text/plain",
                        format!("{other}\n").into_bytes(),
                    ),
                },
                Err(e) => respond(500, "text/plain", format!("{e}\n").into_bytes()),
            })
        })
    }
}

/// What `witness_info` tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WitnessInfo {
    /// Witness name.
    pub name: String,
    /// Witness key string (type 0x04).
    pub vkey: String,
    /// Origins of the logs it follows.
    pub logs: Vec<String>,
}

pub(crate) struct WitnessRpc {
    pub(crate) witness: Option<Arc<NodeWitness>>,
    pub(crate) logs: Vec<String>,
}

impl WitnessRpc {
    fn witness(&self) -> RpcResult<&Arc<NodeWitness>> {
        self.witness
            .as_ref()
            .ok_or_else(|| error::not_found("witness", "this node is not a witness".into()))
    }
}

#[async_trait]
impl WitnessApiServer for WitnessRpc {
    async fn info(&self) -> RpcResult<WitnessInfo> {
        let w = self.witness()?;
        let vkey = w.vkey();
        Ok(WitnessInfo {
            name: vkey.split('+').next().unwrap_or_default().to_owned(),
            vkey,
            logs: self.logs.clone(),
        })
    }

    async fn latest(&self, origin: String) -> RpcResult<Witnessed> {
        self.witness()?
            .store()
            .latest(&origin)
            .map_err(|e| error::corrupt(e.to_string()))?
            .ok_or_else(|| {
                error::not_found("origin", format!("no checkpoint of {origin} cosigned yet"))
            })
    }

    async fn evidence(&self, origin: String) -> RpcResult<Vec<SplitViewEvidence>> {
        self.witness()?
            .store()
            .evidence(&origin)
            .map_err(|e| error::corrupt(e.to_string()))
    }
}
