//! `GET /metrics` on the node's port: the node's Prometheus metrics in the OpenMetrics text
//! format — the log's own (`coopledger_ledger::log::metrics`), JSON-RPC latency by method, open
//! connections, and, computed at each scrape, the latest checkpoint's age and how far anchoring
//! and witnessing lag behind it.
//!
//! Every figure is an aggregate of what the public log already shows, or an operating time; no
//! member, key or payload appears in a label.

use crate::witness::respond;
use coopledger_ledger::log::now_ms;
use coopledger_node::Node;
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};
use jsonrpsee::types::Request;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A JSON-RPC method's name (one the node registered; anything else is `unknown`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

/// The node's metrics and what the scrape-time figures are computed from.
pub struct NodeMetrics {
    registry: Registry,
    node: Arc<Node>,
    methods: HashSet<String>,
    rpc_seconds: Family<Method, Histogram>,
    connections: Gauge,
    checkpoint_age: Gauge<f64, AtomicU64>,
    anchor_enabled: Gauge,
    anchor_lag: Gauge,
    anchor_failures: Gauge,
    witness_lag: Gauge,
    raft: Option<RaftGauges>,
}

/// A replica's Raft figures (only registered on a replica).
struct RaftGauges {
    term: Gauge,
    leader: Gauge,
    applied: Gauge,
    lag: Family<Replica, Gauge>,
    /// Last pieces of snapshots this replica sent, and those whose answer (the receiver's
    /// import) ran out of time: counters brought up to the replica's counts at each scrape.
    snapshot_last_pieces: Counter,
    snapshot_abandoned: Counter,
}

/// A replica id, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Replica {
    replica: String,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl NodeMetrics {
    /// The metrics of `node`, whose JSON-RPC methods are `methods`.
    pub fn new<'a>(node: Arc<Node>, methods: impl IntoIterator<Item = &'a str>) -> NodeMetrics {
        let rpc_seconds = Family::<Method, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
        });
        let (connections, anchor_enabled, anchor_lag, anchor_failures, witness_lag) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        let checkpoint_age = Gauge::<f64, AtomicU64>::default();
        let mut registry = Registry::default();
        node.log.metrics().register(&mut registry);
        let r = registry.sub_registry_with_prefix("coop");
        r.register(
            "rpc_seconds",
            "Time to answer a JSON-RPC call, by method (`batch` for a JSON-RPC batch)",
            rpc_seconds.clone(),
        );
        r.register(
            "connections_open",
            "HTTP and WebSocket connections open on the node's port",
            connections.clone(),
        );
        r.register(
            "checkpoint_age_seconds",
            "Seconds since the latest checkpoint was released",
            checkpoint_age.clone(),
        );
        r.register(
            "anchor_enabled",
            "1 when the node anchors checkpoints on a chain",
            anchor_enabled.clone(),
        );
        r.register(
            "anchor_lag_entries",
            "Entries in the latest checkpoint beyond the last anchored size",
            anchor_lag.clone(),
        );
        r.register(
            "anchor_failures",
            "Anchoring attempts failed in a row",
            anchor_failures.clone(),
        );
        r.register(
            "witness_lag_entries",
            "Entries in the latest checkpoint beyond the newest one a witness cosigned (only \
             when witnesses are configured)",
            witness_lag.clone(),
        );
        let raft = node.replica.as_ref().map(|_| {
            let g = RaftGauges {
                term: Gauge::default(),
                leader: Gauge::default(),
                applied: Gauge::default(),
                lag: Family::default(),
                snapshot_last_pieces: Counter::default(),
                snapshot_abandoned: Counter::default(),
            };
            r.register(
                "raft_term",
                "The replica's current Raft term",
                g.term.clone(),
            );
            r.register(
                "raft_leader_id",
                "The leader's replica id as this replica knows it (0: none known)",
                g.leader.clone(),
            );
            r.register(
                "raft_applied_index",
                "The last Raft index this replica applied to its ledger",
                g.applied.clone(),
            );
            r.register(
                "raft_replica_lag_entries",
                "On the leader: Raft entries each replica is behind its last one",
                g.lag.clone(),
            );
            r.register(
                "raft_snapshot_last_pieces_sent",
                "Last pieces of snapshots this replica sent to others (each answered once the \
                 receiver imported the history)",
                g.snapshot_last_pieces.clone(),
            );
            r.register(
                "raft_snapshot_installs_outlasted",
                "Last pieces of snapshots whose answer outlasted the install limit \
                 (--snapshot-install-secs): the receiver goes on importing and the snapshot is \
                 sent again",
                g.snapshot_abandoned.clone(),
            );
            g
        });
        NodeMetrics {
            raft,
            registry,
            node,
            methods: methods.into_iter().map(str::to_owned).collect(),
            rpc_seconds,
            connections,
            checkpoint_age,
            anchor_enabled,
            anchor_lag,
            anchor_failures,
            witness_lag,
        }
    }

    /// One call of `method` answered in `took`.
    fn observe(&self, method: &str, took: std::time::Duration) {
        let method = if self.methods.contains(method) || method == "batch" {
            method
        } else {
            "unknown"
        };
        self.rpc_seconds
            .get_or_create(&Method {
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The gauge of open connections (the accept loop moves it).
    pub fn connections(&self) -> Gauge {
        self.connections.clone()
    }

    /// Computes the scrape-time figures and encodes everything.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let log = &self.node.log;
        let released = log.checkpoint().checkpoint.size;
        let age_ms = now_ms().saturating_sub(log.metrics().released_at_ms());
        self.checkpoint_age.set(age_ms as f64 / 1000.0);
        if let Ok(status) = self.node.anchor_status.lock() {
            self.anchor_enabled.set(i64::from(status.enabled));
            self.anchor_failures.set(gauge(status.failures));
            let lag = if status.enabled {
                released.saturating_sub(status.anchored_size)
            } else {
                0
            };
            self.anchor_lag.set(gauge(lag));
        }
        if !self.node.witness_keys.is_empty() {
            if let Ok(cosigned) = coopledger_node::cosigning::latest_cosigned_size(log) {
                self.witness_lag
                    .set(gauge(released.saturating_sub(cosigned.unwrap_or(0))));
            }
        }
        if let (Some(g), Some(replica)) = (&self.raft, &self.node.replica) {
            let st = coopledger_node::cluster::membership::status(&replica.raft, released);
            g.term.set(gauge(st.term));
            g.leader.set(gauge(st.leader.unwrap_or(0)));
            g.applied.set(gauge(st.applied.unwrap_or(0)));
            g.lag.clear();
            for r in st.replicas {
                if let Some(lag) = r.lag {
                    g.lag
                        .get_or_create(&Replica {
                            replica: r.id.to_string(),
                        })
                        .set(gauge(lag));
                }
            }
            if let Some(sends) = replica.snapshot_sends() {
                catch_up(&g.snapshot_last_pieces, sends.last_pieces());
                catch_up(&g.snapshot_abandoned, sends.abandoned());
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Brings `counter` up to `count` (a count kept elsewhere that only grows); two scrapes at
/// once cannot add it twice.
fn catch_up(counter: &Counter, count: u64) {
    counter
        .inner()
        .fetch_max(count, std::sync::atomic::Ordering::Relaxed);
}

/// `tower` layer answering `GET /metrics` and passing everything else on.
#[derive(Clone, Debug)]
pub struct MetricsLayer(pub Arc<NodeMetrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsEndpoint<S>;
    fn layer(&self, inner: S) -> MetricsEndpoint<S> {
        MetricsEndpoint {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// See [`MetricsLayer`].
#[derive(Clone, Debug)]
pub struct MetricsEndpoint<S> {
    inner: S,
    metrics: Arc<NodeMetrics>,
}

impl<S> tower::Service<HttpRequest> for MetricsEndpoint<S>
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
        if req.uri().path() != "/metrics" {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let answer = if req.method() != http::Method::GET {
            respond(405, "text/plain; charset=utf-8", b"GET only\n".to_vec())
        } else {
            match self.metrics.render() {
                Ok(text) => respond(200, CONTENT_TYPE, text.into_bytes()),
                Err(_) => respond(
                    500,
                    "text/plain; charset=utf-8",
                    b"cannot encode the metrics\n".to_vec(),
                ),
            }
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// JSON-RPC middleware timing each call by method.
#[derive(Clone, Debug)]
pub struct Timed<S> {
    pub(crate) service: S,
    pub(crate) metrics: Arc<NodeMetrics>,
}

impl<S> RpcServiceT for Timed<S>
where
    S: RpcServiceT + Clone + Send + Sync + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        async move {
            let method = req.method_name().to_owned();
            let t = Instant::now();
            let answer = service.call(req).await;
            metrics.observe(&method, t.elapsed());
            answer
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        async move {
            let t = Instant::now();
            let answer = service.batch(batch).await;
            metrics.observe("batch", t.elapsed());
            answer
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}
