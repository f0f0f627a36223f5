//! The node's JSON-RPC server: HTTP and WebSocket on one port, on a listener the caller binds
//! (tests bind port 0); the witness endpoint `POST /add-checkpoint` shares the port. [`JsonRpc`]
//! is the node's [`Frontend`]: `Node::start(config, listener, shutdown)` starts it.

use crate::api::{
    AdminApiServer, AnchorApiServer, ConsentApiServer, GovApiServer, LedgerApiServer,
    PersonalApiServer, RecoveryApiServer, RevenueApiServer, RpcResult, WitnessApiServer,
};
use crate::error;
use crate::wire::{
    bytes_b64, hashes_b64, BatchAnswer, CheckpointInfo, ConsistencyProof, EntryResult,
    InclusionProof, SubmitResult, MAX_BATCH_ENTRIES,
};
use crate::witness::WitnessLayer;
use coopledger_governance::CoopRules;
use coopledger_ledger::codec::b64_decode;
use coopledger_ledger::{Envelope, Hash, Log, NoteVerifier, SignedCheckpoint};
use coopledger_node::{Frontend, Node, Serving};
use jsonrpsee::core::{async_trait, BoxError, SubscriptionResult};
use jsonrpsee::server::{PendingSubscriptionSink, Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The OpenRPC document served by `rpc.discover`; `openrpc_lists_every_method` keeps it in sync.
pub const OPENRPC: &str = include_str!("openrpc.json");

/// Largest request body accepted (an entry is at most 64 KiB by default; base64 and JSON-RPC
/// framing fit well inside this).
const MAX_REQUEST_BYTES: u32 = 1024 * 1024;

struct LedgerRpc {
    log: Arc<Log<CoopRules>>,
    /// The witnesses' key strings (`ledger_witnesses`).
    witness_keys: Vec<String>,
    /// The budget of entries from keys the co-op does not know.
    strangers: Arc<crate::limits::Bucket>,
}

fn leaf_param(field: &str, s: &str) -> RpcResult<Hash> {
    Hash::from_base64(s).ok_or_else(|| error::invalid_param(field, "must be base64 of 32 bytes"))
}

/// An entry parameter: the envelope as JSON, or base64 of its exact canonical bytes.
pub(crate) fn parse_entry(entry: &Value) -> RpcResult<Envelope> {
    match entry {
        Value::String(s) => {
            let bytes = b64_decode(s).map_err(|_| {
                error::invalid_param(
                    "entry",
                    "string form must be base64 of the canonical envelope",
                )
            })?;
            Envelope::from_bytes(&bytes)
        }
        other => Envelope::from_value(other),
    }
    .map_err(|r| error::rejection(&r))
}

#[async_trait]
impl LedgerApiServer for LedgerRpc {
    async fn submit(&self, entry: Value) -> RpcResult<SubmitResult> {
        let env = parse_entry(&entry)?;
        // A key the co-op does not know (an application to join) spends from a shared budget.
        let known = coopledger_governance::records::key(self.log.as_ref(), &env.body().signer)
            .map_err(|e| error::storage(&e))?
            .is_some();
        if !known {
            if let Err(wait_ms) = self.strangers.take() {
                return Err(error::strangers_limited(wait_ms));
            }
        }
        let receipt = self.log.submit(env).await.map_err(|e| error::submit(&e))?;
        Ok(SubmitResult::from(&receipt))
    }

    async fn submit_batch(&self, entries: Vec<Value>) -> RpcResult<Vec<BatchAnswer>> {
        if entries.is_empty() || entries.len() > MAX_BATCH_ENTRIES {
            return Err(error::invalid_param(
                "entries",
                &format!("must hold 1 to {MAX_BATCH_ENTRIES} entries"),
            ));
        }
        let refused = |e: ErrorObjectOwned| BatchAnswer {
            receipt: None,
            error: Some(serde_json::json!({"code": e.code(), "message": e.message(),
                "data": e.data().and_then(|d| serde_json::from_str::<Value>(d.get()).ok())})),
        };
        // Each entry is read, and a stranger's charged to the shared budget, as by
        // `ledger_submit`; the ones that pass go to the log together.
        let mut answers: Vec<Option<BatchAnswer>> = Vec::with_capacity(entries.len());
        let mut group = Vec::new();
        let mut slots = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let env = match parse_entry(entry) {
                Ok(env) => env,
                Err(e) => {
                    answers.push(Some(refused(e)));
                    continue;
                }
            };
            let known = coopledger_governance::records::key(self.log.as_ref(), &env.body().signer)
                .map_err(|e| error::storage(&e))?
                .is_some();
            if !known {
                if let Err(wait_ms) = self.strangers.take() {
                    answers.push(Some(refused(error::strangers_limited(wait_ms))));
                    continue;
                }
            }
            group.push(env);
            slots.push(i);
            answers.push(None);
        }
        let results = self.log.submit_many(group).await;
        // A follower refuses the whole batch at once (Raft wrote none of it): answered as one
        // call-level `NOT_LEADER`, the forwarding middleware sends the call to the leader, as
        // for `ledger_submit`, instead of handing the caller one refusal per entry.
        if let Some(Err(e @ coopledger_ledger::SubmitError::NotLeader { .. })) = results.first() {
            if results
                .iter()
                .all(|r| matches!(r, Err(coopledger_ledger::SubmitError::NotLeader { .. })))
            {
                return Err(error::submit(e));
            }
        }
        for (i, r) in slots.into_iter().zip(results) {
            if let Some(slot) = answers.get_mut(i) {
                *slot = Some(match r {
                    Ok(receipt) => BatchAnswer {
                        receipt: Some(SubmitResult::from(&receipt)),
                        error: None,
                    },
                    Err(e) => refused(error::submit(&e)),
                });
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    async fn get_entry(&self, index: u64) -> RpcResult<EntryResult> {
        let bytes = self.log.entry(index).map_err(|e| error::query(&e))?;
        let leaf = self.log.leaf_hash(index).map_err(|e| error::query(&e))?;
        // Stored entries are canonical envelopes; one that does not decode is corruption, said so.
        let decoded = Envelope::from_bytes(&bytes)
            .map(|e| e.to_value())
            .map_err(|r| {
                error::query(&coopledger_ledger::QueryError::Storage(
                    coopledger_ledger::store::StoreError::Corrupt(format!("entry {index}: {r}")),
                ))
            })?;
        Ok(EntryResult {
            index,
            entry: bytes_b64(&bytes),
            leaf_hash: leaf.to_base64(),
            decoded,
        })
    }

    async fn checkpoint(&self) -> RpcResult<CheckpointInfo> {
        Ok(CheckpointInfo::from(self.log.checkpoint().as_ref()))
    }

    async fn checkpoint_at(&self, size: u64) -> RpcResult<CheckpointInfo> {
        let note = self
            .log
            .checkpoint_at(size)
            .map_err(|e| error::query(&e))?
            .ok_or_else(|| {
                error::query(&coopledger_ledger::QueryError::NotFound(format!(
                    "no checkpoint was signed at size {size}"
                )))
            })?;
        // A stored note that does not open with our own key means corrupt storage.
        let corrupt = |e: coopledger_ledger::note::NoteError| {
            error::query(&coopledger_ledger::QueryError::Storage(
                coopledger_ledger::store::StoreError::Corrupt(format!("stored checkpoint: {e}")),
            ))
        };
        let key = NoteVerifier::parse(&self.log.verifier_key()).map_err(corrupt)?;
        let signed = SignedCheckpoint::open(&note, &key).map_err(corrupt)?;
        Ok(CheckpointInfo::from(&signed))
    }

    async fn cosigned_checkpoint(&self) -> RpcResult<CheckpointInfo> {
        let not_yet = || {
            error::query(&coopledger_ledger::QueryError::NotFound(
                "no checkpoint has been cosigned by a witness yet".into(),
            ))
        };
        let size = coopledger_node::cosigning::latest_cosigned_size(&self.log)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(not_yet)?;
        let note = coopledger_node::cosigning::cosigned_note(&self.log, size)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(not_yet)?;
        let key = NoteVerifier::parse(&self.log.verifier_key())
            .map_err(|e| error::corrupt(e.to_string()))?;
        let signed =
            SignedCheckpoint::open(&note, &key).map_err(|e| error::corrupt(e.to_string()))?;
        Ok(CheckpointInfo::from(&signed))
    }

    async fn witnesses(&self) -> RpcResult<Vec<String>> {
        Ok(self.witness_keys.clone())
    }

    async fn inclusion_proof(&self, index: u64, tree_size: u64) -> RpcResult<InclusionProof> {
        let h = self
            .log
            .inclusion_proof(index, tree_size)
            .map_err(|e| error::query(&e))?;
        Ok(InclusionProof {
            index,
            tree_size,
            hashes: hashes_b64(&h),
        })
    }

    async fn inclusion_proof_by_hash(
        &self,
        leaf_hash: String,
        tree_size: u64,
    ) -> RpcResult<InclusionProof> {
        let leaf = leaf_param("leafHash", &leaf_hash)?;
        let index = self
            .log
            .index_of_leaf(&leaf)
            .map_err(|e| error::query(&e))?;
        self.inclusion_proof(index, tree_size).await
    }

    async fn consistency_proof(&self, from_size: u64, to_size: u64) -> RpcResult<ConsistencyProof> {
        let h = self
            .log
            .consistency_proof(from_size, to_size)
            .map_err(|e| error::query(&e))?;
        Ok(ConsistencyProof {
            from_size,
            to_size,
            hashes: hashes_b64(&h),
        })
    }

    async fn verifier_key(&self) -> RpcResult<String> {
        Ok(self.log.verifier_key())
    }

    async fn next_seq(&self, signer: String) -> RpcResult<u64> {
        let key: [u8; 32] = b64_decode(&signer)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                error::invalid_param("signer", "must be base64 of a 32-byte Ed25519 key")
            })?;
        self.log.next_seq(&key).map_err(|e| error::query(&e))
    }

    async fn subscribe_checkpoints(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.log.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                msg = rx.recv() => match msg {
                    Ok(cp) => {
                        let raw = serde_json::value::to_raw_value(&CheckpointInfo::from(cp.as_ref()))?;
                        if sink.send(raw).await.is_err() {
                            break;
                        }
                    }
                    // A slow subscriber skips to newer checkpoints; each one supersedes the last.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
            }
        }
        Ok(())
    }
}

/// Every method the server answers, with `rpc.discover`.
pub fn module(
    node: &Arc<Node>,
    strangers_per_sec: u32,
) -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let log = &node.log;
    let (witness, witness_logs) = match &node.witness {
        Some((w, origins)) => (Some(w.clone()), origins.clone()),
        None => (None, vec![]),
    };
    let mut m = RpcModule::new(());
    m.merge(
        LedgerRpc {
            log: log.clone(),
            witness_keys: node.witness_keys.clone(),
            strangers: Arc::new(crate::limits::Bucket::per_second(strangers_per_sec)),
        }
        .into_rpc(),
    )?;
    m.merge(
        crate::gov::GovRpc {
            log: log.clone(),
            ballots: node.ballots.clone(),
        }
        .into_rpc(),
    )?;
    m.merge(
        crate::consent::ConsentRpc {
            log: log.clone(),
            texts: node.notice_texts.clone(),
        }
        .into_rpc(),
    )?;
    m.merge(crate::revenue::RevenueRpc { log: log.clone() }.into_rpc())?;
    m.merge(
        crate::anchor::AnchorRpc {
            log: log.clone(),
            status: node.anchor_status.clone(),
        }
        .into_rpc(),
    )?;
    m.merge(
        crate::witness::WitnessRpc {
            logs: witness_logs,
            witness,
        }
        .into_rpc(),
    )?;
    m.merge(
        crate::personal::PersonalRpc {
            vault: node.vault.clone(),
            replica: node.replica.clone(),
        }
        .into_rpc(),
    )?;
    m.merge(
        crate::recovery::RecoveryRpc {
            kits: node.recovery.clone(),
        }
        .into_rpc(),
    )?;
    m.merge(crate::admin::AdminRpc { node: node.clone() }.into_rpc())?;
    m.merge(crate::cluster::public_module(node)?)?;
    m.register_method("rpc.discover", |_, _, _| -> Value {
        serde_json::from_str(OPENRPC).unwrap_or(Value::Null)
    })?;
    Ok(m)
}

/// The node's JSON-RPC frontend: HTTP and WebSocket on the node's listener, with the witness
/// endpoint in front.
#[derive(Clone)]
pub struct JsonRpc {
    /// Connections served at once (HTTP and WebSocket together); one more is answered 429.
    pub max_connections: u32,
    /// How long a request body may take to arrive (then 408, connection closed).
    pub body_timeout: std::time::Duration,
    /// Browser origins allowed to open a WebSocket, besides the node's own address.
    pub ws_origins: Vec<String>,
    /// Connections from one peer address at once (the rest are closed before any HTTP).
    pub max_per_peer: usize,
    /// Serve TLS with this configuration (`listen::tls_config`).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Entries a second from keys the co-op does not know (applications), in all.
    pub strangers_per_sec: u32,
    /// An HTTP connection that sends no request headers for this long, or a WebSocket that
    /// answers no ping for this long, is closed.
    pub idle_timeout: std::time::Duration,
}

impl Default for JsonRpc {
    fn default() -> JsonRpc {
        JsonRpc {
            max_connections: 512,
            body_timeout: std::time::Duration::from_secs(10),
            ws_origins: Vec::new(),
            max_per_peer: 64,
            tls: None,
            strangers_per_sec: 20,
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for JsonRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRpc")
            .field("max_connections", &self.max_connections)
            .field("max_per_peer", &self.max_per_peer)
            .field("body_timeout", &self.body_timeout)
            .field("ws_origins", &self.ws_origins)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Turns hyper's request body into jsonrpsee's before the node's HTTP middleware sees it.
#[derive(Clone)]
pub(crate) struct IncomingBody<S>(pub(crate) S);

impl<S> tower::Service<http::Request<hyper::body::Incoming>> for IncomingBody<S>
where
    S: tower::Service<
        jsonrpsee::server::HttpRequest,
        Response = jsonrpsee::server::HttpResponse,
        Error = BoxError,
        Future = Pin<
            Box<dyn Future<Output = Result<jsonrpsee::server::HttpResponse, BoxError>> + Send>,
        >,
    >,
{
    type Response = jsonrpsee::server::HttpResponse;
    type Error = BoxError;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<hyper::body::Incoming>) -> S::Future {
        self.0.call(req.map(jsonrpsee::server::HttpBody::new))
    }
}

/// Serves one connection (HTTP/1.1 and its upgrade to WebSocket) until it ends or the server
/// stops (then gracefully). Request headers must arrive within `idle` — for the first request
/// and between requests on a kept-alive connection — or the connection is closed.
pub(crate) async fn serve_connection<S>(
    io: Box<dyn crate::listen::Conn>,
    service: S,
    stopped: impl Future<Output = ()>,
    idle: std::time::Duration,
) where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = jsonrpsee::server::HttpResponse,
            Error = BoxError,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle);
    // hyper's header timeout only starts with a first byte: a connection that sends nothing at
    // all is closed here when no request has come within `idle`.
    let first = Arc::new(tokio::sync::Notify::new());
    let service = hyper_util::service::TowerToHyperService::new(FirstRequest {
        inner: service,
        first: first.clone(),
    });
    let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service);
    let silent = async move {
        if tokio::time::timeout(idle, first.notified()).await.is_err() {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(conn, stopped, silent);
    let result = tokio::select! {
        r = &mut conn => r,
        () = &mut stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = &mut silent => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Tells `serve_connection` when the connection's first request arrives.
#[derive(Clone)]
struct FirstRequest<S> {
    inner: S,
    first: Arc<tokio::sync::Notify>,
}

impl<S, R> tower::Service<R> for FirstRequest<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.first.notify_one();
        self.inner.call(req)
    }
}

struct Running(ServerHandle);

impl Serving for Running {
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let handle = self.0;
        Box::pin(async move {
            let _ = handle.stop();
            handle.stopped().await;
        })
    }
}

impl Frontend for JsonRpc {
    fn start(
        &self,
        node: Arc<Node>,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Box<dyn Serving>> {
        listener.set_nonblocking(true)?;
        // The node's own pages (the portal) may open WebSockets; so may the configured origins.
        let addr = listener.local_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut origins = vec![format!("{scheme}://{addr}")];
        if addr.ip().is_loopback() {
            origins.push(format!("{scheme}://localhost:{}", addr.port()));
        }
        origins.extend(self.ws_origins.iter().cloned());
        // A WebSocket that answers no ping within the idle time is closed.
        let ping = jsonrpsee::server::PingConfig::new()
            .ping_interval(self.idle_timeout / 2)
            .inactive_limit(self.idle_timeout)
            .max_failures(1);
        let config = jsonrpsee::server::ServerConfig::builder()
            .max_request_body_size(MAX_REQUEST_BYTES)
            .max_connections(self.max_connections)
            .enable_ws_ping(ping)
            .build();
        let witness = node.witness.as_ref().map(|(w, _)| w.clone());
        let methods: jsonrpsee::Methods = module(&node, self.strangers_per_sec)
            .map_err(std::io::Error::other)?
            .into();
        let metrics = Arc::new(crate::metrics::NodeMetrics::new(
            node.clone(),
            methods.method_names(),
        ));
        let timed = metrics.clone();
        let forward_node = node.clone();
        let leaders: Arc<
            std::sync::Mutex<std::collections::HashMap<String, jsonrpsee::http_client::HttpClient>>,
        > = Arc::default();
        let builder = Server::builder()
            .set_config(config)
            .set_rpc_middleware(
                jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                    .layer_fn(move |service| crate::metrics::Timed {
                        service,
                        metrics: timed.clone(),
                    })
                    .layer_fn(move |service| crate::cluster::ForwardToLeader {
                        service,
                        leaders: leaders.clone(),
                        node: forward_node.clone(),
                    }),
            )
            .set_http_middleware(
                tower::ServiceBuilder::new()
                    .layer(crate::portal::PortalLayer)
                    .layer(crate::metrics::MetricsLayer(metrics.clone()))
                    .layer(WitnessLayer::new(witness))
                    .layer(crate::request_shape::RequestShapeLayer::new(
                        MAX_REQUEST_BYTES as usize,
                        self.body_timeout,
                        origins,
                    )),
            )
            .to_service_builder();
        let (stop, handle) = jsonrpsee::server::stop_channel();
        let serve_stop = stop.clone();
        let idle = self.idle_timeout;
        let serve: crate::listen::ServeConn = Arc::new(move |io| {
            let inner = builder.clone().build(methods.clone(), serve_stop.clone());
            // hyper hands over its own body type; the middleware reads jsonrpsee's.
            let service = IncomingBody(inner);
            let stopped = serve_stop.clone().shutdown();
            Box::pin(serve_connection(io, service, stopped, idle))
        });
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(crate::listen::accept_loop(
            listener,
            serve,
            stop,
            self.tls.clone(),
            crate::listen::ConnectionLimits {
                total: self.max_connections as usize,
                per_peer: self.max_per_peer,
            },
            metrics.connections(),
        ));
        Ok(Box::new(Running(handle)))
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
