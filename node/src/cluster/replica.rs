//! One replica's runtime (`docs/replication.md` §1, §5): openraft over the ledger's log store
//! and state machine, and the task that turns the ledger's proposed batches into Raft entries
//! — in the order the ledger proposed them — and tells the ledger when one will never be
//! answered here (not the leader, no quorum in time).

use super::log_store::LogStore;
use super::network::{self, PeerCalls, SnapshotSends};
use super::state_machine::LedgerMachine;
use super::{BatchCommand, Cluster, Command, ReplicaAddr};
use coopledger_ledger::log::replication::ProposedBatch;
use coopledger_ledger::{Log, StateMachine, SubmitError};
use openraft::error::ClientWriteError;
use openraft::{Raft, RaftNetworkFactory};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// A replica's tunables.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This replica's id in the cluster.
    pub id: u64,
    /// How long a proposed batch may wait for a quorum before its submitters get `NoQuorum`.
    pub submit_timeout: Duration,
    /// Raft heartbeat.
    pub heartbeat: Duration,
    /// Election timeout range: a follower that hears no leader for a random time in it stands.
    pub election_timeout: (Duration, Duration),
    /// Applied entries after which a snapshot is taken (and older Raft log purged).
    pub snapshot_every: u64,
    /// Raft entries kept below a snapshot, so a replica slightly behind catches up from the
    /// log rather than by snapshot.
    pub keep_after_snapshot: u64,
    /// Where snapshots are kept.
    pub snapshot_dir: PathBuf,
    /// Where the Raft log's own database is kept (`docs/replication.md` §2).
    pub log_dir: PathBuf,
    /// How long one call sending a piece of a snapshot may take (`coop serve
    /// --snapshot-install-secs`). The call carrying the last piece returns only once the
    /// receiver imported the history (re-applying every batch it lacked), so this bounds one
    /// wait for an install, not the install: when it runs out, Raft drops the call and tries
    /// again later from the first piece, while the receiver goes on importing; the new try's
    /// pieces wait behind that import, and once it ends the leader finds the replica at the
    /// snapshot's index and sends it the rest of the log (`docs/replication.md` §6). Every
    /// piece but the last must fit in it.
    pub snapshot_install_timeout: Duration,
    /// Bytes of snapshot in one piece (openraft's default is 3 MiB). A piece travels as a JSON
    /// array of numbers, about 3.6 characters a byte: 1 MiB is some 3.7 MB of text, far inside
    /// the cluster listener's message limit, and what one call holds in memory stays small.
    pub snapshot_piece_bytes: u64,
}

impl ReplicaConfig {
    /// The defaults of `docs/replication.md` §9 for replica `id`, its snapshots and Raft log in
    /// the data folder `data` (`raft-snapshots`, `raft-log`).
    pub fn new(id: u64, data: &Path) -> ReplicaConfig {
        ReplicaConfig {
            id,
            submit_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            snapshot_every: 10_000,
            keep_after_snapshot: 1000,
            snapshot_dir: data.join("raft-snapshots"),
            log_dir: data.join("raft-log"),
            snapshot_install_timeout: Duration::from_secs(60),
            snapshot_piece_bytes: 1024 * 1024,
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The log is not in replicated mode.
    #[error("the ledger was opened as a single node, not for replication")]
    NotReplicated,
    /// openraft refused the configuration.
    #[error("raft configuration: {0}")]
    Config(String),
    /// openraft failed to start or to take a request.
    #[error("raft: {0}")]
    Raft(String),
    /// The snapshot folder cannot be made.
    #[error("snapshot folder: {0}")]
    Io(#[from] std::io::Error),
}

/// A running replica.
pub struct Replica<M: StateMachine> {
    /// The Raft handle (metrics, membership changes, the network's entry points).
    pub raft: Raft<Cluster>,
    /// The ledger it replicates.
    pub log: Arc<Log<M>>,
    proposer: tokio::task::JoinHandle<()>,
    purger: tokio::task::JoinHandle<()>,
    /// The highest Raft index of an applied (or applying) erasure.
    shred_mark: Arc<AtomicU64>,
    /// How to reach the other replicas outside Raft (`None`: this replica cannot ask them).
    peers: Option<Arc<dyn PeerCalls>>,
    /// What its network counted of the snapshots it sent (`None`: not given).
    snapshot_sends: Option<Arc<SnapshotSends>>,
}

/// Which replicas have purged an erasure's records from every file ([`Replica::erasure_purged`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Replica ids that confirmed.
    pub purged: Vec<u64>,
    /// Replica ids that did not confirm in time.
    pub pending: Vec<u64>,
}

/// How often a peer is asked again whether it purged.
const PURGE_POLL: Duration = Duration::from_millis(100);

impl<M: StateMachine> std::fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl<M: StateMachine + Send + Sync + 'static> Replica<M> {
    /// Starts Raft over `log` (opened with `LogConfig::replicate`, whose receiving end is
    /// `proposals`) and the proposing task. The network reaches the other replicas.
    pub async fn start<N: RaftNetworkFactory<Cluster>>(
        config: ReplicaConfig,
        log: Arc<Log<M>>,
        proposals: UnboundedReceiver<ProposedBatch>,
        network: N,
    ) -> Result<Replica<M>, ReplicaError> {
        if !log.is_replicated() {
            return Err(ReplicaError::NotReplicated);
        }
        let raft_config = openraft::Config {
            cluster_name: log.origin().to_owned(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout.0.as_millis() as u64,
            election_timeout_max: config.election_timeout.1.as_millis() as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_after_snapshot,
            install_snapshot_timeout: config.snapshot_install_timeout.as_millis() as u64,
            snapshot_max_chunk_size: config.snapshot_piece_bytes,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| ReplicaError::Config(e.to_string()))?;
        let log_store = LogStore::open(&config.log_dir, log.shared_store()).map_err(|e| {
            ReplicaError::Raft(format!("the Raft log in {}: {e}", config.log_dir.display()))
        })?;
        let (shred_tx, shred_rx) = tokio::sync::mpsc::unbounded_channel();
        let machine = LedgerMachine::new(log.clone(), config.snapshot_dir.clone())?;
        let shred_mark = Arc::new(AtomicU64::new(
            machine.stored_shred_mark().map_err(ReplicaError::Raft)?,
        ));
        let machine = machine.on_shred(shred_tx, shred_mark.clone());
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            network,
            log_store,
            machine,
        )
        .await
        .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        let proposer = tokio::spawn(propose(
            raft.clone(),
            log.clone(),
            proposals,
            config.submit_timeout,
        ));
        let purger = tokio::spawn(purge_after_erasures(raft.clone(), shred_rx));
        Ok(Replica {
            raft,
            log,
            proposer,
            purger,
            shred_mark,
            peers: None,
            snapshot_sends: None,
        })
    }

    /// Lets this replica ask the others how far they purged (`Replica::erasure_purged`).
    pub fn with_peer_calls(mut self, calls: Arc<dyn PeerCalls>) -> Replica<M> {
        self.peers = Some(calls);
        self
    }

    /// Gives the replica the counts its network ([`super::network::Network::snapshot_sends`])
    /// keeps of the snapshots it sends, for [`Replica::snapshot_sends`].
    pub fn with_snapshot_sends(mut self, sends: Arc<SnapshotSends>) -> Replica<M> {
        self.snapshot_sends = Some(sends);
        self
    }

    /// How many last pieces of snapshots this replica sent and how many ran out of time
    /// (`None`: its network's counts were not given).
    pub fn snapshot_sends(&self) -> Option<&SnapshotSends> {
        self.snapshot_sends.as_deref()
    }

    /// After an erasure was applied here: purges this replica's Raft log through everything
    /// it applied (as [`Replica::purge_applied`], up to `within`), then waits — up to
    /// `within_peers` more — until every other replica in the membership, learners included,
    /// has purged its own through the erasure's Raft index, asking each over the cluster
    /// listener ([`network::PURGED`]). Says which replicas no file holds the erased records
    /// of any more, and which it could not confirm (down, behind, or unreachable: they purge
    /// when they apply the erasure, or receive a snapshot taken after it).
    pub async fn erasure_purged(&self, within: Duration, within_peers: Duration) -> PurgeReport {
        // Raised before the erasure's entry reached the ledger, so it covers this erasure.
        let through = self.shred_mark.load(Ordering::SeqCst);
        let me = self.raft.metrics().borrow().id;
        let mut report = PurgeReport::default();
        match self.purge_applied(within).await {
            Ok(()) => report.purged.push(me),
            Err(e) => {
                tracing::warn!(error = %e, "an erasure's Raft-log purge did not complete here");
                report.pending.push(me);
            }
        }
        self.peers_purged(through, within_peers, report).await
    }

    /// For an erasure sent again (its entry was already in the log, so nothing new was
    /// applied): says which replicas have purged their Raft logs through the latest erasure
    /// applied here — which covers the replayed one — without taking a snapshot or purging
    /// anything (those followed the first erasure on every replica, `purge_after_erasures`).
    /// Each replica is asked once. A replay costs the replicas a question each, not a
    /// snapshot: erasure entries are public on the ledger, so anyone can send one again.
    pub async fn erasure_confirmed(&self) -> PurgeReport {
        let through = self.shred_mark.load(Ordering::SeqCst);
        let (me, purged) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.id, m.purged.map_or(0, |l| l.index))
        };
        let mut report = PurgeReport::default();
        if purged >= through {
            report.purged.push(me);
        } else {
            report.pending.push(me);
        }
        self.peers_purged(through, Duration::ZERO, report).await
    }

    /// Adds to `report` every other replica in the membership, learners included: purged
    /// once it says its Raft log is purged through `through`, pending if it does not within
    /// `within` (asked every [`PURGE_POLL`]; at least once).
    async fn peers_purged(
        &self,
        through: u64,
        within: Duration,
        mut report: PurgeReport,
    ) -> PurgeReport {
        let (me, members) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let members: Vec<(u64, ReplicaAddr)> = m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, addr)| (*id, addr.clone()))
                .collect();
            (m.id, members)
        };
        let deadline = tokio::time::Instant::now() + within;
        let mut asks = tokio::task::JoinSet::new();
        for (id, addr) in members.into_iter().filter(|(id, _)| *id != me) {
            let Some(calls) = self.peers.clone() else {
                report.pending.push(id);
                continue;
            };
            asks.spawn(async move {
                loop {
                    match network::purged_at(&*calls, &addr).await {
                        Ok(purged) if purged >= through => return (id, true),
                        Ok(_) => {}
                        Err(e) => tracing::debug!(replica = id, error = %e, "purge not confirmed"),
                    }
                    if tokio::time::Instant::now() + PURGE_POLL > deadline {
                        return (id, false);
                    }
                    tokio::time::sleep(PURGE_POLL).await;
                }
            });
        }
        while let Some(asked) = asks.join_next().await {
            match asked {
                Ok((id, true)) => report.purged.push(id),
                Ok((id, false)) => report.pending.push(id),
                Err(e) => tracing::warn!(error = %e, "a purge confirmation task failed"),
            }
        }
        report.purged.sort_unstable();
        report.pending.sort_unstable();
        report
    }

    /// Snapshots this replica and purges its Raft log through everything it has applied, and
    /// waits for both (up to `within`): after an erasure was applied here, no file of this
    /// replica holds the erased records any more. The other replicas do the same on their own
    /// as they apply the erasure (`purge_after_erasures`).
    pub async fn purge_applied(&self, within: Duration) -> Result<(), ReplicaError> {
        let applied = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index);
        snapshot_and_purge(&self.raft, applied, within).await
    }

    /// Makes this replica, just initialised as a cluster over a ledger that already holds
    /// history (a co-op made before it was replicated), send that history to every replica
    /// that joins: a snapshot is taken at the membership entry and the Raft log purged through
    /// it, so a newcomer starts from the snapshot, never from a Raft log that lacks the
    /// co-op's first entries.
    pub async fn seal_history(&self) -> Result<(), ReplicaError> {
        let raft_err = |e: &dyn std::fmt::Display| ReplicaError::Raft(e.to_string());
        let wait = Duration::from_secs(30);
        let applied = self
            .raft
            .wait(Some(wait))
            .applied_index_at_least(Some(1), "the membership entry applied")
            .await
            .map_err(|e| raft_err(&e))?
            .last_applied
            .map_or(1, |l| l.index);
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| raft_err(&e))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            let snapshot = self.raft.metrics().borrow().snapshot;
            if snapshot.is_some_and(|s| s.index >= applied) {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(ReplicaError::Raft(
                    "no snapshot of the sealed history".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.raft
            .trigger()
            .purge_log(applied)
            .await
            .map_err(|e| raft_err(&e))
    }

    /// Stops Raft and the proposing task (the ledger keeps running until dropped).
    pub async fn shutdown(&self) {
        self.proposer.abort();
        self.purger.abort();
        let _ = self.raft.shutdown().await;
    }
}

/// Runs the services `start` makes while this replica is the leader: started when it becomes
/// leader, aborted when it stops being one. Runs until aborted.
pub async fn while_leading<F>(raft: Raft<Cluster>, start: F)
where
    F: Fn() -> Vec<tokio::task::JoinHandle<()>> + Send + 'static,
{
    let mut metrics = raft.metrics();
    // Aborted with this task too (a shutdown aborts it).
    let mut running = AbortOnDrop(Vec::new());
    loop {
        let leads = {
            let m = metrics.borrow_and_update();
            m.current_leader == Some(m.id) && m.state == openraft::ServerState::Leader
        };
        if leads && running.0.is_empty() {
            tracing::info!("leading: starting the clerk, anchoring, cosigning and erasures");
            running.0 = start();
        } else if !leads && !running.0.is_empty() {
            tracing::info!("no longer leading: stopping the services");
            for t in running.0.drain(..) {
                t.abort();
            }
        }
        if metrics.changed().await.is_err() {
            break;
        }
    }
}

/// Tasks aborted when this is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// After an erasure is applied at Raft index `i`, the Raft log up to `i` still holds the
/// erased records (the wrapped data key, the sealed data), and so may the current snapshot:
/// take a new snapshot (built from the state after the shred) and purge the log through `i`
/// (`docs/replication.md` §4).
async fn purge_after_erasures(
    raft: Raft<Cluster>,
    mut shredded: tokio::sync::mpsc::UnboundedReceiver<u64>,
) {
    while let Some(mut index) = shredded.recv().await {
        // Several erasures in a row: one snapshot and purge covers them all.
        while let Ok(later) = shredded.try_recv() {
            index = index.max(later);
        }
        if let Err(e) = snapshot_and_purge(&raft, index, Duration::from_secs(60)).await {
            tracing::error!(index, error = %e, "cannot snapshot and purge after an erasure");
        }
    }
}

/// Takes a snapshot covering Raft index `index` and purges the Raft log through it, so that
/// no file holds an entry up to `index` (`LogStore::purge` scrubs); waits for both, up to
/// `within`.
async fn snapshot_and_purge(
    raft: &Raft<Cluster>,
    index: u64,
    within: Duration,
) -> Result<(), ReplicaError> {
    let deadline = std::time::Instant::now() + within;
    let raft_err = |e: &dyn std::fmt::Display| ReplicaError::Raft(e.to_string());
    let reached = |at: Option<openraft::LogId<u64>>| at.is_some_and(|l| l.index >= index);
    if !reached(raft.metrics().borrow().snapshot) {
        raft.trigger().snapshot().await.map_err(|e| raft_err(&e))?;
        while !reached(raft.metrics().borrow().snapshot) {
            if std::time::Instant::now() > deadline {
                return Err(ReplicaError::Raft(format!("no snapshot through {index}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if !reached(raft.metrics().borrow().purged) {
        raft.trigger()
            .purge_log(index)
            .await
            .map_err(|e| raft_err(&e))?;
        while !reached(raft.metrics().borrow().purged) {
            if std::time::Instant::now() > deadline {
                return Err(ReplicaError::Raft(format!(
                    "Raft log not purged through {index}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Hands each proposed batch to Raft in the order proposed, then waits for its outcome apart,
/// so batches stay in order while several are in flight.
async fn propose<M: StateMachine + Send + Sync + 'static>(
    raft: Raft<Cluster>,
    log: Arc<Log<M>>,
    mut proposals: UnboundedReceiver<ProposedBatch>,
    timeout: Duration,
) {
    while let Some(batch) = proposals.recv().await {
        let ticket = batch.ticket;
        let command = Command::Batch(BatchCommand::from(batch));
        let pending = match raft.client_write_ff(command).await {
            Ok(rx) => rx,
            Err(fatal) => {
                tracing::error!(error = %fatal, "raft stopped; refusing proposals");
                log.abandon(ticket, &SubmitError::Stopped);
                continue;
            }
        };
        let log = log.clone();
        tokio::spawn(async move {
            // On success the ledger answers the submitters itself when it applies the batch.
            let why = match tokio::time::timeout(timeout, pending).await {
                Ok(Ok(Ok(_))) => return,
                Ok(Ok(Err(ClientWriteError::ForwardToLeader(f)))) => SubmitError::NotLeader {
                    leader: f.leader_node.map(|n| n.public),
                },
                Ok(Ok(Err(other))) => {
                    tracing::warn!(error = %other, "a proposed batch was refused");
                    SubmitError::Stopped
                }
                Ok(Err(_)) => SubmitError::Stopped,
                Err(_) => SubmitError::NoQuorum,
            };
            log.abandon(ticket, &why);
        });
    }
}
