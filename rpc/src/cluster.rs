//! The cluster listener between a co-op's replicas (`docs/replication.md` §6): Raft's calls
//! (`raft_appendEntries`, `raft_vote`, `raft_installSnapshot`) as JSON-RPC over mutual TLS, and
//! the client that makes them.
//!
//! **Who may call.** Both ends authenticate with the co-op's log key, which every replica holds
//! and nobody else does (§3): TLS 1.3 with raw public keys (RFC 7250), the key being the log
//! key itself, and each side accepts only a peer proving possession of that same key. No
//! certificate authority, no certificate files; a replica without the key cannot connect, and
//! a client without it cannot be answered.

use coopledger_node::cluster::network::{self, CallFailed, CallFuture, PeerCalls};
use coopledger_node::cluster::{Cluster, ClusterFrontend};
use coopledger_node::Serving;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::server::Server;
use rustls_pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Largest Raft call or answer (a few batches of entries, or one snapshot chunk).
pub const MAX_CLUSTER_MESSAGE: u32 = 128 * 1024 * 1024;
/// How long one Raft call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than Raft's own limit for a `raft_installSnapshot` call
/// (`ReplicaConfig::snapshot_install_timeout`) the client waits: the last piece's answer waits
/// for the receiver's import of the history, and Raft's limit must end it first — the
/// client's only keeps a call from hanging.
const SNAPSHOT_CALL_MARGIN: Duration = Duration::from_secs(60);

/// `SubjectPublicKeyInfo` of an Ed25519 key (RFC 8410 §4): this prefix, then the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// PKCS #8 v1 of an Ed25519 seed (RFC 8410 §7): this prefix, then the 32 seed bytes.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The TLS settings of one replica's cluster listener and client.
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// For the cluster listener.
    pub server: Arc<rustls::ServerConfig>,
    /// For calls to the other replicas.
    pub client: rustls::ClientConfig,
}

impl ClusterTls {
    /// Both ends authenticated by `log_key` (the co-op's node key).
    pub fn new(log_key: &ed25519_dalek::SigningKey) -> Result<ClusterTls, rustls::Error> {
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(log_key.verifying_key().as_bytes());
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(log_key.as_bytes());
        let signer = rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(pkcs8))?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(spki.clone())],
            signer,
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let peer = Arc::new(SameKey {
            spki,
            algorithms: provider.signature_verification_algorithms,
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(peer.clone())
            .with_cert_resolver(Arc::new(
                rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified.clone()),
            ));
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(peer)
            .with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified),
            ));
        Ok(ClusterTls {
            server: Arc::new(server),
            client,
        })
    }
}

/// Accepts exactly one peer key — the co-op's log key — as a raw public key, and checks the
/// peer's handshake signature with it.
#[derive(Debug)]
struct SameKey {
    spki: Vec<u8>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl SameKey {
    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.spki.as_slice() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &self.algorithms,
        )
    }
}

impl ServerCertVerifier for SameKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("replicas speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for SameKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("replicas speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// The cluster listener's frontend: Raft's three calls, nothing else.
#[derive(Debug, Clone)]
pub struct RaftListener {
    /// The listener's TLS (`ClusterTls::server`).
    pub tls: Arc<rustls::ServerConfig>,
    /// Connections at once (replicas keep one or two each).
    pub max_connections: u32,
}

struct Running(jsonrpsee::server::ServerHandle);

impl Serving for Running {
    fn stop(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let handle = self.0;
        Box::pin(async move {
            let _ = handle.stop();
            handle.stopped().await;
        })
    }
}

/// The text of the one Raft request in a call's params (`[request]`), as it came: `answer`
/// reads it once.
fn one_request(params: Option<&str>) -> Result<&str, String> {
    let text = params.ok_or("params: one Raft request expected, got none")?;
    let (request,): (&RawValue,) = serde_json::from_str(text)
        .map_err(|e| format!("params: one Raft request expected: {e}"))?;
    Ok(request.get())
}

fn raft_module(
    raft: openraft::Raft<Cluster>,
) -> Result<jsonrpsee::RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut m = jsonrpsee::RpcModule::new(());
    for method in network::METHODS {
        let raft = raft.clone();
        m.register_async_method(method, move |params, _, _| {
            let raft = raft.clone();
            async move {
                let refuse = |why: String| {
                    jsonrpsee::types::ErrorObjectOwned::owned(
                        crate::error::code::INVALID_PARAMS,
                        why,
                        None::<()>,
                    )
                };
                let request = one_request(params.as_str()).map_err(refuse)?;
                let answer = network::answer(&raft, method, request)
                    .await
                    .map_err(|e| refuse(e.to_string()))?;
                RawValue::from_string(answer).map_err(|e| refuse(e.to_string()))
            }
        })?;
    }
    Ok(m)
}

impl ClusterFrontend for RaftListener {
    fn start(
        &self,
        raft: openraft::Raft<Cluster>,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Box<dyn Serving>> {
        listener.set_nonblocking(true)?;
        let config = jsonrpsee::server::ServerConfig::builder()
            .max_request_body_size(MAX_CLUSTER_MESSAGE)
            .max_response_body_size(MAX_CLUSTER_MESSAGE)
            .max_connections(self.max_connections)
            .build();
        let methods: jsonrpsee::Methods = raft_module(raft).map_err(std::io::Error::other)?.into();
        let builder = Server::builder().set_config(config).to_service_builder();
        let (stop, handle) = jsonrpsee::server::stop_channel();
        let serve_stop = stop.clone();
        let serve: crate::listen::ServeConn = Arc::new(move |io| {
            let inner = builder.clone().build(methods.clone(), serve_stop.clone());
            let service = crate::server::IncomingBody(inner);
            let stopped = serve_stop.clone().shutdown();
            Box::pin(crate::server::serve_connection(
                io,
                service,
                stopped,
                Duration::from_secs(60),
            ))
        });
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(crate::listen::accept_loop(
            listener,
            serve,
            stop,
            Some(self.tls.clone()),
            crate::listen::ConnectionLimits {
                total: self.max_connections as usize,
                per_peer: self.max_connections as usize,
            },
            prometheus_client::metrics::gauge::Gauge::default(),
        ));
        Ok(Box::new(Running(handle)))
    }
}

/// Raft's calls to the other replicas, one kept-alive HTTPS client per peer.
#[derive(Debug)]
pub struct PeerClient {
    tls: rustls::ClientConfig,
    /// The client's limit for a snapshot call.
    snapshot_timeout: Duration,
    /// Per peer, and whether for snapshot calls (their longer timeout).
    clients: Mutex<HashMap<(String, bool), HttpClient>>,
}

impl PeerClient {
    /// Calls authenticated with `tls` (`ClusterTls::client`), from a replica whose Raft gives
    /// a snapshot call `snapshot_install` (`ReplicaConfig::snapshot_install_timeout`).
    pub fn new(tls: rustls::ClientConfig, snapshot_install: Duration) -> PeerClient {
        PeerClient {
            tls,
            snapshot_timeout: snapshot_install.saturating_add(SNAPSHOT_CALL_MARGIN),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, peer: &str, snapshot: bool) -> Result<HttpClient, CallFailed> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (peer.to_owned(), snapshot);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let client = HttpClientBuilder::default()
            .with_custom_cert_store(self.tls.clone())
            .request_timeout(if snapshot {
                self.snapshot_timeout
            } else {
                CALL_TIMEOUT
            })
            .max_request_size(MAX_CLUSTER_MESSAGE)
            .max_response_size(MAX_CLUSTER_MESSAGE)
            .build(format!("https://{peer}"))
            .map_err(|e| CallFailed(format!("{peer}: {e}")))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

impl PeerCalls for PeerClient {
    fn call(&self, peer: &str, method: &'static str, params: String) -> CallFuture {
        let client = self.client(peer, method == network::SNAPSHOT);
        let peer = peer.to_owned();
        Box::pin(async move {
            let client = client?;
            let answer: Box<RawValue> = client
                .request(method, OneRequest(params))
                .await
                .map_err(|e| CallFailed(format!("{peer} {method}: {e}")))?;
            Ok(String::from(Box::<str>::from(answer)))
        })
    }
}

/// A Raft request's JSON text as the call's params, `[request]`, sent as it is.
struct OneRequest(String);

impl jsonrpsee::core::traits::ToRpcParams for OneRequest {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        RawValue::from_string(format!("[{}]", self.0)).map(Some)
    }
}

/// The public API's cluster methods: `cluster_status` (any replica, or a single node),
/// `cluster_join` and `cluster_leave` (a replica's request signed with the log key; carried
/// out by the leader, answered `NOT_LEADER` with its address elsewhere).
pub fn public_module(
    node: &Arc<coopledger_node::Node>,
) -> Result<jsonrpsee::RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    use coopledger_node::cluster::membership::{self, ClusterRequest, MembershipError};
    use jsonrpsee::types::ErrorObjectOwned;
    let mut m = jsonrpsee::RpcModule::new(());
    let status_node = node.clone();
    m.register_method("cluster_status", move |_, _, _| -> Value {
        let size = status_node.log.checkpoint().checkpoint.size;
        match &status_node.replica {
            None => serde_json::json!({ "replicated": false, "ledgerSize": size }),
            Some(r) => {
                let mut v =
                    serde_json::to_value(membership::status(&r.raft, size)).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("replicated".into(), Value::Bool(true));
                }
                v
            }
        }
    })?;
    for method in ["cluster_join", "cluster_leave"] {
        let node = node.clone();
        m.register_async_method(method, move |params, _, _| {
            let node = node.clone();
            async move {
                let request: ClusterRequest = params.one()?;
                let refuse = |field: &str, reason: String| {
                    ErrorObjectOwned::owned(
                        crate::error::code::INVALID_PARAMS,
                        format!("`{field}`: {reason}"),
                        Some(serde_json::json!({ "field": field })),
                    )
                };
                let Some(replica) = &node.replica else {
                    return Err(refuse(
                        "action",
                        "this node is not a replica of a cluster".into(),
                    ));
                };
                let want = if method == "cluster_join" {
                    "join"
                } else {
                    "leave"
                };
                if request.action != want {
                    return Err(refuse("action", format!("must be `{want}` for {method}")));
                }
                let key = node.log.verifier_key();
                let verifier = coopledger_ledger::NoteVerifier::parse(&key)
                    .map_err(|e| refuse("sig", e.to_string()))?;
                let log_key = ed25519_dalek::VerifyingKey::from_bytes(verifier.public_key())
                    .map_err(|e| refuse("sig", e.to_string()))?;
                let done = async {
                    request.verify(&log_key, coopledger_ledger::log::now_ms())?;
                    tokio::time::timeout(
                        membership::JOIN_TIMEOUT,
                        membership::carry_out(&replica.raft, &request),
                    )
                    .await
                    .map_err(|_| MembershipError::Raft("timed out".into()))?
                };
                match done.await {
                    Ok(()) => Ok(Value::Bool(true)),
                    Err(MembershipError::Field { field, reason }) => Err(refuse(field, reason)),
                    Err(MembershipError::NotLeader { leader }) => Err(crate::error::submit(
                        &coopledger_ledger::SubmitError::NotLeader { leader },
                    )),
                    Err(MembershipError::Raft(e)) => Err(ErrorObjectOwned::owned(
                        crate::error::code::UNAVAILABLE,
                        format!("the cluster could not carry it out: {e}"),
                        None::<()>,
                    )),
                }
            }
        })?;
    }
    Ok(m)
}

/// JSON-RPC middleware: a call a follower answers `NOT_LEADER` is sent on to the leader
/// `data.leader` names, once, and the leader's answer returned (`docs/replication.md` §6), so
/// members, the portal and the CLI can use any replica. When the leader cannot be reached, the
/// `NOT_LEADER` answer stands (with the leader's address for the caller to try). Before
/// answering, the follower waits (briefly) to hold what the leader held when it answered, so a
/// caller who reads here next sees its own write.
#[derive(Clone, Debug)]
pub struct ForwardToLeader<S> {
    pub(crate) service: S,
    pub(crate) leaders: Arc<Mutex<HashMap<String, HttpClient>>>,
    pub(crate) node: Arc<coopledger_node::Node>,
}

/// How long a follower waits, after the leader answered a forwarded call, to have applied and
/// released what the leader had (so the caller's next read here sees its own write).
const CATCH_UP: Duration = Duration::from_secs(5);

/// After a forwarded call succeeded: waits until this replica has applied every Raft entry the
/// leader had applied, and released a checkpoint as large as the leader's, when the leader
/// answered — read-your-writes for a caller that reads from this replica next.
async fn catch_up(node: &coopledger_node::Node, leader: &HttpClient) {
    let Some(replica) = &node.replica else {
        return;
    };
    let Ok(status) = leader
        .request::<Value, _>("cluster_status", jsonrpsee::rpc_params![])
        .await
    else {
        return;
    };
    let applied = status.get("applied").and_then(Value::as_u64);
    let size = status
        .get("ledgerSize")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let deadline = std::time::Instant::now() + CATCH_UP;
    loop {
        let here = replica
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index);
        if here >= applied && node.log.checkpoint().checkpoint.size >= size {
            return;
        }
        if std::time::Instant::now() > deadline {
            tracing::debug!("a forwarded write is not applied here yet");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Params passed on exactly as they came.
struct RawParams(Option<Box<serde_json::value::RawValue>>);

impl jsonrpsee::core::traits::ToRpcParams for RawParams {
    fn to_rpc_params(self) -> Result<Option<Box<serde_json::value::RawValue>>, serde_json::Error> {
        Ok(self.0)
    }
}

impl<S> ForwardToLeader<S> {
    fn client(&self, url: &str) -> Option<HttpClient> {
        let mut clients = self
            .leaders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(url) {
            return Some(c.clone());
        }
        let c = crate::client::http_client(url).ok()?;
        // Replicas come and go: keep a few.
        if clients.len() > 16 {
            clients.clear();
        }
        clients.insert(url.to_owned(), c.clone());
        Some(c)
    }
}

/// `data.leader` of a `NOT_LEADER` answer.
fn leader_of(answer: &jsonrpsee::MethodResponse) -> Option<String> {
    if answer.as_error_code() != Some(crate::error::code::NOT_LEADER) {
        return None;
    }
    let v: Value = serde_json::from_str(answer.to_json().get()).ok()?;
    v.get("error")?
        .get("data")?
        .get("leader")?
        .as_str()
        .map(str::to_owned)
}

impl<S> jsonrpsee::core::middleware::RpcServiceT for ForwardToLeader<S>
where
    S: jsonrpsee::core::middleware::RpcServiceT<MethodResponse = jsonrpsee::MethodResponse>
        + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        req: jsonrpsee::types::Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let method = req.method_name().to_owned();
            let id = req.id().into_owned();
            let params = req
                .params()
                .as_str()
                .and_then(|p| serde_json::value::RawValue::from_string(p.to_owned()).ok());
            let answer = this.service.call(req).await;
            let Some(url) = leader_of(&answer) else {
                return answer;
            };
            let Some(client) = this.client(&url) else {
                return answer;
            };
            match client
                .request::<Box<serde_json::value::RawValue>, _>(&method, RawParams(params))
                .await
            {
                Ok(result) => {
                    catch_up(&this.node, &client).await;
                    jsonrpsee::MethodResponse::response(
                        id,
                        jsonrpsee::ResponsePayload::success(result),
                        MAX_CLUSTER_MESSAGE as usize,
                    )
                }
                Err(jsonrpsee::core::ClientError::Call(e)) => {
                    jsonrpsee::MethodResponse::error(id, e)
                }
                Err(e) => {
                    tracing::debug!(error = %e, leader = %url, "cannot forward to the leader");
                    answer
                }
            }
        }
    }

    fn batch<'a>(
        &self,
        batch: jsonrpsee::core::middleware::Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: jsonrpsee::core::middleware::Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "test code: a panic is a test failure with a message"
    )]

    use super::*;

    #[test]
    fn a_raft_call_carries_exactly_one_request_passed_on_as_it_came() {
        let request = r#"{"vote":{"leader_id":{"term":1,"node_id":1},"committed":false}, "x":1}"#;
        assert_eq!(one_request(Some(&format!("[{request}]"))).unwrap(), request);
        assert_eq!(one_request(Some(" [ 7 ] ")).unwrap(), "7");
        for bad in ["[]", "[1,2]", "{}", "null", "[", "[1] x", ""] {
            let e = one_request(Some(bad)).unwrap_err();
            assert!(
                e.starts_with("params: one Raft request expected"),
                "{bad}: {e}"
            );
        }
        assert!(one_request(None).is_err());
    }
}
