//! The running node: the services beside the log and their off-log state — the ballot box,
//! the personal-data vault and its erasure sweep, the clerk (ballot keys, box publication,
//! tallies), the anchoring loop, the cosigning client and the witness store — and their life
//! cycle, [`Node::start`]. Knows nothing of JSON-RPC: the caller injects the [`Frontend`] that
//! answers on the listener (`coopledger_rpc::JsonRpc`), so tests run a whole node in-process.
//!
//! Start-up order: open the log (recovery happens there) → carry out pending erasures → build
//! the services → start the frontend on the injected listener → start the background loops.
//! Shutdown order: stop the loops → stop the frontend (no new request) → close the log (the
//! pipeline drains, the store closes).
#![forbid(unsafe_code)]

pub mod anchoring;
pub mod ballot_box;
pub mod clerk;
pub mod cluster;
pub mod cosigning;
pub mod folder;
pub mod http;
pub mod keyfile;
pub mod notice_texts;
pub mod recovery;
pub mod vault;
pub mod witness;

pub use ballot_box::BallotBox;
pub use vault::Vault;

use coopledger_governance::CoopRules;
use coopledger_ledger::note::{NoteError, NoteVerifier};
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{Log, LogConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Everything a node needs to start, apart from the listener and the shutdown signal.
pub struct NodeConfig {
    /// The data folder (see [`folder`]); it must hold a ledger.
    pub data: PathBuf,
    /// The log's batching, admission window and entry size.
    pub log: LogConfig,
    /// Witness for the logs with these verifier keys (C2SP tlog-witness).
    pub witness_for: Vec<NoteVerifier>,
    /// Ask these witnesses to cosign every checkpoint.
    pub witnesses: Vec<cosigning::WitnessPeer>,
    /// Anchor checkpoints on this chain.
    pub anchoring: Option<anchoring::AnchorConfig>,
    /// Where the vault key (wrapping members' data keys) comes from.
    pub vault_key: VaultKeySource,
    /// What answers on the listener.
    pub frontend: Arc<dyn Frontend>,
    /// Run as one replica of a cluster (`docs/replication.md`); `None`: a single node.
    pub cluster: Option<cluster::ClusterSetup>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("data", &self.data)
            .field("log", &self.log)
            .field("witness_for", &self.witness_for.len())
            .field("witnesses", &self.witnesses)
            .field("anchoring", &self.anchoring)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Where the vault key comes from (`vault::VaultKey`).
#[derive(Debug, Clone)]
pub enum VaultKeySource {
    /// This key (from the environment, or a test).
    Key(vault::VaultKey),
    /// This file, outside the data folder; made (0600) when missing and the vault holds no
    /// data key yet.
    File(PathBuf),
}

impl VaultKeySource {
    /// The default file for a data folder: beside it, `<folder>.vault-key`.
    pub fn beside(data: &std::path::Path) -> VaultKeySource {
        let mut name = data.file_name().unwrap_or_default().to_os_string();
        name.push(".vault-key");
        VaultKeySource::File(data.with_file_name(name))
    }
}

/// The node's services, shared with the frontend's handlers.
#[derive(Debug)]
pub struct Node {
    /// The log (its pipeline, reads and proofs).
    pub log: Arc<Log<CoopRules>>,
    /// The secret-ballot box.
    pub ballots: Arc<BallotBox>,
    /// Members' personal data.
    pub vault: Vault,
    /// Members' recovery kits.
    pub recovery: recovery::RecoveryKits,
    /// The texts of consent notices.
    pub notice_texts: notice_texts::NoticeTexts,
    /// This node as a witness for other logs, if it is one, with their origins.
    pub witness: Option<(Arc<witness::NodeWitness>, Vec<String>)>,
    /// The witnesses asked to cosign this log's checkpoints (their key strings).
    pub witness_keys: Vec<String>,
    /// The anchoring loop's status.
    pub anchor_status: anchoring::SharedStatus,
    /// What the clerk has recorded and had refused.
    pub clerk: Arc<clerk::ClerkStats>,
    /// The data folder.
    pub data: PathBuf,
    /// The operator's token, written to `admin.token` in the data folder at start.
    pub admin_token: String,
    /// This node as a replica of a cluster, if it is one.
    pub replica: Option<Arc<cluster::replica::Replica<CoopRules>>>,
}

/// What answers requests on the node's listener (JSON-RPC, the witness endpoint, the portal).
pub trait Frontend: Send + Sync + 'static {
    /// Starts answering on `listener` (called inside the node's runtime); returns once it
    /// listens.
    fn start(
        &self,
        node: Arc<Node>,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Box<dyn Serving>>;
}

/// A started frontend.
pub trait Serving: Send {
    /// Stops taking requests and resolves once the last one is answered.
    fn stop(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data folder or its ledger.
    #[error(transparent)]
    Folder(#[from] folder::FolderError),
    /// Pending erasures could not be carried out, or the vault could not be prepared.
    #[error("cannot prepare the personal-data vault: {0}")]
    Erasure(StoreError),
    /// The vault key could not be had.
    #[error(transparent)]
    VaultKey(#[from] vault::VaultKeyError),
    /// The vault holds wrapped data keys but no vault key was found.
    #[error(
        "the personal-data vault holds members' keys wrapped under a vault key, but there is no \
         vault key at {0} (give --vault-key FILE or COOP_VAULT_KEY)"
    )]
    VaultKeyMissing(PathBuf),
    /// The witness could not be set up.
    #[error("witness: {0}")]
    Witness(NoteError),
    /// The listener or the frontend.
    #[error("cannot serve: {0}")]
    Serve(std::io::Error),
    /// Raft could not start.
    #[error("replication: {0}")]
    Replica(#[from] cluster::replica::ReplicaError),
}

/// A started node.
pub struct RunningNode {
    /// The services.
    pub node: Arc<Node>,
    /// The address the frontend listens on.
    pub addr: SocketAddr,
    /// Erasures carried out at start-up (ordered before a crash).
    pub erased_at_start: usize,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// Resolves once the shutdown signal came, everything stopped and the ledger is closed:
    /// the data folder is free for another process (or another node in this one) to open.
    pub async fn stopped(self) {
        let _ = self.task.await;
        let log = self.node.log.clone();
        drop(self.node);
        // Work that still holds the ledger — a blocking erasure sweep the abort cannot cut
        // short, a connection finishing its answer — lets go of it shortly. Wait for that, then
        // drop the last reference here, so the database is closed (its threads joined, its
        // lock released) before this returns.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while Arc::strong_count(&log) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = tokio::task::spawn_blocking(move || drop(log)).await;
    }
}

impl Node {
    /// Starts a node on the ledger in `config.data`, answering on `listener` through
    /// `config.frontend`, until `shutdown` resolves. Returns once the node serves.
    pub async fn start(
        config: NodeConfig,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RunningNode, NodeError> {
        folder::restrict(&config.data)?;
        // A replica's log proposes its batches to Raft instead of applying them.
        let (log_config, proposals) = match &config.cluster {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let mut c = config.log.clone();
                c.replicate = Some(tx);
                (c, Some(rx))
            }
            None => (config.log.clone(), None),
        };
        let (log, node_key) = folder::open(&config.data, log_config)?;
        let log = Arc::new(log);
        let mut cluster_serving = None;
        let replica = match (config.cluster, proposals) {
            (Some(setup), Some(proposals)) => {
                let mut tuning = setup.tuning;
                tuning.id = setup.id;
                let placed = cluster::replica::ReplicaConfig::new(setup.id, &config.data);
                tuning.snapshot_dir = placed.snapshot_dir;
                tuning.log_dir = placed.log_dir;
                let network = cluster::network::Network::new(setup.calls.clone());
                let sends = network.snapshot_sends();
                let replica =
                    cluster::replica::Replica::start(tuning, log.clone(), proposals, network)
                        .await?
                        .with_peer_calls(setup.calls)
                        .with_snapshot_sends(sends);
                let fresh = !replica
                    .raft
                    .is_initialized()
                    .await
                    .map_err(|e| cluster::replica::ReplicaError::Raft(e.to_string()))?;
                if setup.initialize && fresh {
                    let members = std::collections::BTreeMap::from([(setup.id, setup.me)]);
                    replica
                        .raft
                        .initialize(members)
                        .await
                        .map_err(|e| cluster::replica::ReplicaError::Raft(e.to_string()))?;
                    replica.seal_history().await?;
                }
                cluster_serving = Some(
                    setup
                        .frontend
                        .start(replica.raft.clone(), setup.listener)
                        .map_err(NodeError::Serve)?,
                );
                Some(Arc::new(replica))
            }
            _ => None,
        };
        let key = match config.vault_key {
            VaultKeySource::Key(k) => k,
            VaultKeySource::File(path) => {
                let holds = vault::holds_wrapped_key(&log).map_err(NodeError::Erasure)?;
                match vault::VaultKey::load(&path, !holds)? {
                    Some(k) => k,
                    None => return Err(NodeError::VaultKeyMissing(path)),
                }
            }
        };
        let vault = Vault::new(log.clone(), key);
        // Keys stored before wrapping existed are wrapped; erasures the log ordered but a crash
        // kept from being carried out are done; then the vault serves. A replica leaves both to
        // the leader's services (its folder is new, and erasures arrive through the cluster).
        let erased_at_start = if replica.is_some() {
            0
        } else {
            vault.wrap_bare_keys().map_err(NodeError::Erasure)?;
            vault.sweep().map_err(NodeError::Erasure)?
        };
        let witness = if config.witness_for.is_empty() {
            None
        } else {
            let origins = config
                .witness_for
                .iter()
                .map(|l| l.name().to_owned())
                .collect();
            let w = witness::node_witness(log.clone(), &node_key, config.witness_for)
                .map_err(NodeError::Witness)?;
            Some((Arc::new(w), origins))
        };
        let node = Arc::new(Node {
            ballots: Arc::new(BallotBox::new(node_key)),
            vault,
            recovery: recovery::RecoveryKits::new(log.clone()),
            notice_texts: notice_texts::NoticeTexts::new(log.clone()),
            witness_keys: config.witnesses.iter().map(|w| w.key.vkey()).collect(),
            witness,
            anchor_status: anchoring::SharedStatus::default(),
            clerk: Arc::default(),
            data: config.data.clone(),
            admin_token: folder::write_admin_token(&config.data)?,
            log,
            replica,
        });
        let addr = listener.local_addr().map_err(NodeError::Serve)?;
        let serving = config
            .frontend
            .start(node.clone(), listener)
            .map_err(NodeError::Serve)?;
        let witnesses = config.witnesses;
        let anchoring = config.anchoring;
        let services = {
            let node = node.clone();
            move || {
                let mut loops = vec![
                    tokio::spawn(clerk::run(
                        node.log.clone(),
                        node.ballots.clone(),
                        node.clerk.clone(),
                    )),
                    tokio::spawn(node.vault.clone().carry_out_erasures()),
                    tokio::spawn(cosigning::run(node.log.clone(), witnesses.clone())),
                ];
                if let Some(cfg) = anchoring.clone() {
                    loops.push(tokio::spawn(anchoring::run(
                        node.log.clone(),
                        cfg,
                        node.anchor_status.clone(),
                    )));
                }
                loops
            }
        };
        // On a single node the services run always; on a replica only while it leads (one
        // clerk, one anchoring wallet, one erasure sweep per cluster), started again on
        // whichever replica leads next.
        let loops = match &node.replica {
            None => services(),
            Some(r) => vec![tokio::spawn(cluster::replica::while_leading(
                r.raft.clone(),
                services,
            ))],
        };
        let replica = node.replica.clone();
        let task = tokio::spawn(async move {
            shutdown.await;
            for l in &loops {
                l.abort();
            }
            for l in loops {
                let _ = l.await;
            }
            serving.stop().await;
            if let Some(r) = replica {
                r.shutdown().await;
            }
            if let Some(s) = cluster_serving {
                s.stop().await;
            }
        });
        Ok(RunningNode {
            node,
            addr,
            erased_at_start,
            task,
        })
    }
}
