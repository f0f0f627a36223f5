//! The verifiable log a node serves: opening and recovery, and the ways in — `submit`,
//! `submit_own`, `settle`. Every read (entries, checkpoints, proofs, state proofs, off-log
//! records) is in `reads.rs`.

pub mod metrics;
mod reads;
pub mod replication;

pub use reads::StateAt;

use crate::entry::{AdmissionPolicy, Envelope, Rejection};
use crate::hash::Hash;
use crate::merkle::{self, Frontier, NodeId, NodeSource};
use crate::note::{Checkpoint, NoteError, NoteSigner, SignedCheckpoint};
use crate::sequencer::{self, FaultPoint, OwnEntry, SequencerState};
use crate::signed::{SignedFile, SignedFileError};
use crate::smt::{self, StateProof};
use crate::state::{
    KeyValue, Overlay, StateCommitment, StateMachine, StateRead, StateSource, NS_APP,
};
use crate::store::{Store, StoreError};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// Milliseconds since the Unix epoch by the node's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A test hook called at each [`FaultPoint`]; an `Err` makes the step fail as storage would.
pub type FaultHook = Arc<dyn Fn(FaultPoint) -> Result<(), StoreError> + Send + Sync>;

/// Tunables of a running log.
#[derive(Clone)]
pub struct LogConfig {
    /// A batch holds at most this many entries.
    pub batch_max_entries: usize,
    /// How long a batch lingers for more entries after taking what was queued. Zero (the
    /// default) is plain group commit: an idle node commits an entry at once, a busy one
    /// batches whatever arrived during the previous batch's fsync.
    pub batch_max_wait: Duration,
    /// Largest canonical envelope accepted.
    pub max_entry_bytes: usize,
    /// Allowed distance between an entry's timestamp and the node clock.
    pub ts_window: Duration,
    /// Submissions waiting for signature checks before `Overloaded` is returned.
    pub queue_capacity: usize,
    /// Fault injection for durability tests; `None` in production.
    pub fault_hook: Option<FaultHook>,
    /// Replicated mode (`docs/replication.md`): submissions are not applied here but proposed
    /// as batches to this channel; batches are applied only as replication commits them
    /// (`Log::apply_committed`). `None`: a single node.
    pub replicate: Option<replication::Proposals>,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("batch_max_entries", &self.batch_max_entries)
            .field("batch_max_wait", &self.batch_max_wait)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("ts_window", &self.ts_window)
            .field("queue_capacity", &self.queue_capacity)
            .field("replicated", &self.replicate.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            batch_max_entries: 1024,
            batch_max_wait: Duration::ZERO,
            max_entry_bytes: 64 * 1024,
            ts_window: Duration::from_secs(300),
            queue_capacity: 65_536,
            fault_hook: None,
            replicate: None,
        }
    }
}

/// Why a submission got no receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The entry was refused; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Too many submissions are queued; try again.
    #[error("node is overloaded; retry later")]
    Overloaded,
    /// The node is shutting down or stopped after a storage failure; the entry may or may not
    /// have been recorded — resubmit to a running node to get its receipt.
    #[error("node is not sequencing")]
    Stopped,
    /// Reading storage failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// Replicated mode: this replica is not the one that orders batches; `leader` says where
    /// to submit, when known. Nothing was proposed.
    #[error("this replica is not the leader{}", .leader.as_deref().map(|l| format!("; the leader is {l}")).unwrap_or_default())]
    NotLeader {
        /// Where the leader takes submissions (its public address), when known.
        leader: Option<String>,
    },
    /// Replicated mode: the batch was proposed but no quorum of replicas stored it in time.
    /// It may still be committed later; resubmitting the same signed entry is safe (a
    /// duplicate returns the original receipt).
    #[error(
        "no quorum of replicas confirmed the entry in time; resubmit it (duplicates are safe)"
    )]
    NoQuorum,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing with that key in the checkpointed log.
    #[error("{0}")]
    NotFound(String),
    /// A size or index outside what the latest checkpoint covers, or an impossible range.
    #[error("field `{field}`: {reason}")]
    OutOfRange {
        /// Parameter name as the API spells it.
        field: &'static str,
        /// Explanation with the allowed range.
        reason: String,
    },
    /// Storage failed or is corrupt.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl From<QueryError> for SubmitError {
    /// A read failing while a receipt is assembled: the entry is in the log, but the node
    /// cannot show it, which only a storage fault explains.
    fn from(e: QueryError) -> SubmitError {
        match e {
            QueryError::Storage(s) => SubmitError::Storage(s),
            other => SubmitError::Storage(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// What the sequencer tells a submitter.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    pub index: u64,
    pub leaf_hash: Hash,
    pub entry_id: Hash,
    pub checkpoint: Arc<SignedCheckpoint>,
    pub duplicate: bool,
    /// The tree's right edge before the batch plus every node the batch completed: all a new
    /// entry's inclusion proof needs, so receipts cost no storage reads.
    pub batch_nodes: Arc<HashMap<NodeId, Hash>>,
}

/// Proof that an entry is in the log: returned only once a stored checkpoint covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Position in the log.
    pub index: u64,
    /// `SHA-256(0x00 ‖ entry bytes)`.
    pub leaf_hash: Hash,
    /// `SHA-256(canonical body)`.
    pub entry_id: Hash,
    /// The stored checkpoint that covers the entry.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// RFC 9162 inclusion proof of `index` in `checkpoint`.
    pub inclusion_proof: Vec<Hash>,
    /// True when the same body was already in the log (the original receipt is returned).
    pub duplicate: bool,
}

/// Sequenced batches that may wait for the release thread before the sequencer waits too.
const RELEASE_QUEUE: usize = 64;

/// State shared by the handle and the pipeline threads.
pub(crate) struct Shared<M> {
    pub store: Arc<Store>,
    pub machine: M,
    pub config: LogConfig,
    policy: AdmissionPolicy,
    pub signer: NoteSigner,
    /// Signs the `log.state` entries (the same key as the checkpoints).
    pub node_key: SigningKey,
    latest: RwLock<Arc<SignedCheckpoint>>,
    checkpoints: broadcast::Sender<Arc<SignedCheckpoint>>,
    failure: Mutex<Option<StoreError>>,
    /// Every released checkpoint, outside the database (`crate::signed`).
    signed: Mutex<SignedFile>,
    /// What the log measures about itself.
    pub metrics: metrics::LogMetrics,
    /// Replicated mode: this opening's random id, so a replica knows its own proposals.
    pub instance: u64,
    /// Replicated mode: the next proposal's ticket.
    next_ticket: std::sync::atomic::AtomicU64,
    /// Replicated mode: this log's proposals in flight, by ticket, until the sequencer has
    /// applied the batch or replication gave up on it.
    proposals: Mutex<HashMap<u64, Proposal>>,
    /// Batches written to the database but whose checkpoint is not released yet, oldest first:
    /// each batch's size and the values its state writes replaced (`None`: the key was absent).
    /// Readers of the state see the database through these, so they see exactly the state of
    /// the released checkpoint — never a batch that a power cut could still take away.
    held_back: Mutex<std::collections::VecDeque<(u64, Arc<Overlay>)>>,
}

/// One of this log's proposals in flight.
pub(crate) enum Proposal {
    /// Proposed: its admitted items, with their submitters' replies.
    Parked(Vec<sequencer::Admitted>),
    /// Committed, its items on their way through the sequencer.
    Applying,
}

impl<M> Shared<M> {
    /// A new proposal ticket.
    pub(crate) fn next_ticket(&self) -> u64 {
        self.next_ticket
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn proposals(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Proposal>> {
        match self.proposals.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Keeps a proposal's items until it is applied or abandoned.
    pub(crate) fn park(&self, ticket: u64, items: Vec<sequencer::Admitted>) {
        self.proposals().insert(ticket, Proposal::Parked(items));
    }

    /// Proposals in flight: proposed and not yet applied by the sequencer (a committed one
    /// counts until the sequencer has applied it, so the next proposal is sequenced against
    /// the state it will be applied to) or abandoned.
    pub(crate) fn in_flight(&self) -> usize {
        self.proposals().len()
    }

    /// Takes a committed proposal's items for the sequencer; it stays in flight until
    /// [`Shared::applied`]. `None`: abandoned already (or not this log's).
    pub(crate) fn unpark_to_apply(&self, ticket: u64) -> Option<Vec<sequencer::Admitted>> {
        let mut g = self.proposals();
        match std::mem::replace(g.get_mut(&ticket)?, Proposal::Applying) {
            Proposal::Parked(items) => Some(items),
            Proposal::Applying => None,
        }
    }

    /// Takes back a proposal replication gave up on (`None`: committed, applied or abandoned
    /// already — a committed one is left to the sequencer).
    pub(crate) fn unpark(&self, ticket: u64) -> Option<Vec<sequencer::Admitted>> {
        let mut g = self.proposals();
        match g.remove(&ticket)? {
            Proposal::Parked(items) => Some(items),
            Proposal::Applying => {
                g.insert(ticket, Proposal::Applying);
                None
            }
        }
    }

    /// The sequencer applied the proposal `ticket` (or refused it, stopping).
    pub(crate) fn applied(&self, ticket: u64) {
        self.proposals().remove(&ticket);
    }

    /// Holds back the state writes of the batch ending at `size` from readers until its
    /// checkpoint is released: `replaced` holds the values they overwrite. Called before the
    /// batch is written, so no reader sees a write without what it replaced.
    pub(crate) fn hold_back(&self, size: u64, replaced: Overlay) {
        let mut held = match self.held_back.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        held.push_back((size, Arc::new(replaced)));
    }

    /// What the unreleased batches replaced, oldest batch first.
    fn held(&self) -> Vec<Arc<Overlay>> {
        let held = match self.held_back.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        held.iter().map(|(_, o)| o.clone()).collect()
    }

    /// The released value of the full state key `key`, given `stored`, the value read from the
    /// database *before* this call: the oldest unreleased batch that wrote the key says what
    /// it was at the released checkpoint. (Read in this order, a batch written between the two
    /// steps is already held back; one released between them was released when the read began.)
    pub(crate) fn released_value(&self, key: &[u8], stored: Option<Vec<u8>>) -> Option<Vec<u8>> {
        released_value(&self.held(), key, stored)
    }

    /// The released state under the app-namespace `prefix`, given `stored`, the full-key scan
    /// read from the database *before* this call.
    pub(crate) fn released_scan(&self, stored: Vec<KeyValue>, prefix: &[u8]) -> Vec<KeyValue> {
        released_scan(&self.held(), stored, prefix)
    }

    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        match self.latest.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn fault(&self, at: FaultPoint) -> Result<(), StoreError> {
        match &self.config.fault_hook {
            Some(h) => h(at),
            None => Ok(()),
        }
    }

    /// Records the first storage failure; the sequencer stops after it.
    pub fn fail(&self, e: StoreError) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(e);
        }
    }

    /// Whether a storage failure was recorded.
    pub fn failed(&self) -> bool {
        self.failure.lock().map_or(true, |f| f.is_some())
    }

    /// Signs the checkpoint `(origin, size, root)` of `next`, a tree that is not durable yet:
    /// the note is stored in the same WriteBatch as the batch's data and released only after
    /// that write and the record's append are durable (`docs/format.md`, "Commit protocol").
    /// `base` is the tree of `last`, the newest checkpoint this node signed, and `next` grew
    /// from it by appends alone; anything else is refused, so no two notes this node signs
    /// disagree.
    pub fn sign_checkpoint(
        &self,
        base: &Frontier,
        last: &Checkpoint,
        next: &Frontier,
    ) -> Result<SignedCheckpoint, StoreError> {
        if base.size() != last.size || base.root() != last.root || next.size() <= base.size() {
            return Err(StoreError::Corrupt(format!(
                "the tree to sign (size {}) does not extend the last signed checkpoint (size {}); \
                 not signing",
                next.size(),
                last.size
            )));
        }
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: next.size(),
            root: next.root(),
            extensions: vec![],
        };
        let note = self
            .signer
            .sign(&checkpoint.to_text())
            .map_err(|e| StoreError::Corrupt(format!("cannot sign checkpoint: {e}")))?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Appends `notes` (in signing order; their batches are durable) to the record of signed
    /// checkpoints with one fsync. Only after this may they be released.
    pub fn record(&self, notes: &[&str]) -> Result<(), StoreError> {
        let mut record = self
            .signed
            .lock()
            .map_err(|_| StoreError::Corrupt("signed-checkpoint record lock poisoned".into()))?;
        let t = std::time::Instant::now();
        record.append_all(notes).map_err(record_error)?;
        if let Some(last) = notes.last() {
            self.metrics.synced("record", t.elapsed());
            // A note's second line is its tree size (C2SP checkpoint); the notes are our own.
            if let Some(size) = last.lines().nth(1).and_then(|l| l.parse().ok()) {
                self.metrics.recorded(size);
            }
        }
        Ok(())
    }

    /// Makes `signed` the latest checkpoint and tells subscribers: on a single node once its
    /// batch is durable and the note recorded; on a replica once the committed batch is written
    /// (the recorder syncs and records behind, `docs/replication.md` §2).
    ///
    /// The checkpoint and its batch's state become visible together: both change under the
    /// held-back lock, which a state read takes after reading the database. Published first
    /// and released from hold after, a read in between saw the new checkpoint and the state
    /// before its batch (CI caught `queries_read_the_released_state_while_batches_keep_committing`
    /// counting 16 notes under a checkpoint of 24); the other order lets a read see the batch's
    /// state under the checkpoint before it. Lock order: held-back, then `latest`; nothing
    /// takes them the other way round (readers hold each alone, briefly).
    pub fn release(&self, signed: Arc<SignedCheckpoint>) {
        self.metrics.released(signed.checkpoint.size, now_ms());
        {
            let mut held = match self.held_back.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match self.latest.write() {
                Ok(mut g) => *g = signed.clone(),
                Err(p) => *p.into_inner() = signed.clone(),
            }
            // Its batch's state (and every earlier one's) is now the released state.
            while held
                .front()
                .is_some_and(|(size, _)| *size <= signed.checkpoint.size)
            {
                held.pop_front();
            }
        }
        let _ = self.checkpoints.send(signed);
    }
}

/// `stored` (a full key's value in the database) as of the released checkpoint, given what the
/// unreleased batches replaced, oldest first: the oldest batch that wrote the key knows.
fn released_value(held: &[Arc<Overlay>], key: &[u8], stored: Option<Vec<u8>>) -> Option<Vec<u8>> {
    held.iter()
        .find_map(|replaced| replaced.get(key))
        .map_or(stored, Clone::clone)
}

/// [`released_value`] for a scan of the app namespace under `prefix`.
fn released_scan(held: &[Arc<Overlay>], stored: Vec<KeyValue>, prefix: &[u8]) -> Vec<KeyValue> {
    // Later overlays win in the merge, and the oldest batch's replaced value must win.
    let newest_first: Vec<&Overlay> = held.iter().rev().map(|o| o.as_ref()).collect();
    crate::state::merge_app(stored, &newest_first, prefix)
}

#[cfg(test)]
mod held_back_tests {
    use super::*;
    use crate::state::app_key;

    fn overlay(writes: &[(&str, Option<&str>)]) -> Arc<Overlay> {
        Arc::new(
            writes
                .iter()
                .map(|(k, v)| (app_key(k.as_bytes()), v.map(|v| v.as_bytes().to_vec())))
                .collect(),
        )
    }

    /// Released state: a = "0", b = "0", no c. Batch 1 set a = "1" and created c; batch 2 set
    /// a = "2" and deleted b. Neither is released; the database holds a = "2", c, no b.
    fn two_unreleased() -> (Vec<Arc<Overlay>>, Vec<KeyValue>) {
        let held = vec![
            overlay(&[("a", Some("0")), ("c", None)]),
            overlay(&[("a", Some("1")), ("b", Some("0"))]),
        ];
        let stored = vec![
            (app_key(b"a"), b"2".to_vec()),
            (app_key(b"c"), b"1".to_vec()),
            (app_key(b"d"), b"0".to_vec()),
        ];
        (held, stored)
    }

    #[test]
    fn a_key_reads_as_the_oldest_unreleased_batch_found_it() {
        let (held, _) = two_unreleased();
        let get = |k: &str, stored: Option<&str>| {
            released_value(&held, &app_key(k.as_bytes()), stored.map(|s| s.into()))
                .map(|v| String::from_utf8(v).unwrap_or_default())
        };
        assert_eq!(get("a", Some("2")).as_deref(), Some("0"));
        assert_eq!(get("b", None).as_deref(), Some("0"));
        assert_eq!(get("c", Some("1")), None);
        assert_eq!(get("d", Some("0")).as_deref(), Some("0"));
        assert_eq!(
            released_value(&[], b"x", Some(b"y".to_vec())),
            Some(b"y".to_vec())
        );
    }

    #[test]
    fn a_scan_reads_as_the_released_checkpoint_left_it() {
        let (held, stored) = two_unreleased();
        let got: Vec<(String, String)> = released_scan(&held, stored, b"")
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k).unwrap_or_default(),
                    String::from_utf8(v).unwrap_or_default(),
                )
            })
            .collect();
        let want = [("a", "0"), ("b", "0"), ("d", "0")];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
    }
}

fn record_error(e: SignedFileError) -> StoreError {
    StoreError::File {
        what: e.to_string(),
        kind: match &e {
            SignedFileError::Io { source, .. } => source.kind(),
            SignedFileError::Damaged { .. } => std::io::ErrorKind::InvalidData,
        },
    }
}

/// Signs `(origin, size, root)` of the durable tree `frontier` and stores the note (fsync'd).
/// Callers only pass a frontier over durable leaves.
/// Then appends it to the record of signed checkpoints (fsync'd): only after both may it be
/// released.
fn sign_and_store(
    signer: &NoteSigner,
    store: &Store,
    record: &mut SignedFile,
    frontier: &Frontier,
) -> Result<SignedCheckpoint, StoreError> {
    let checkpoint = Checkpoint {
        origin: signer.name().to_owned(),
        size: frontier.size(),
        root: frontier.root(),
        extensions: vec![],
    };
    let note = signer
        .sign(&checkpoint.to_text())
        .map_err(|e| StoreError::Corrupt(format!("cannot sign checkpoint: {e}")))?;
    store.put_checkpoint(checkpoint.size, &note)?;
    record.append(&note).map_err(record_error)?;
    Ok(SignedCheckpoint { checkpoint, note })
}

/// A running log: the pipeline threads and the read API. Dropping it stops the pipeline after
/// the batch in progress.
pub struct Log<M: StateMachine> {
    /// The ledger folder.
    path: std::path::PathBuf,
    shared: Arc<Shared<M>>,
    submit_tx: Option<SyncSender<sequencer::Pending>>,
    threads: Vec<JoinHandle<()>>,
}

impl<M: StateMachine> std::fmt::Debug for Log<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("origin", &self.shared.signer.name())
            .field("checkpoint", &self.shared.latest().checkpoint)
            .finish_non_exhaustive()
    }
}

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Storage failed, is corrupt, missing or already exists.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The origin is not a valid key name.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The node key given is not the key this ledger was created with.
    #[error("the node key does not match this ledger (it was created with {expected})")]
    WrongNodeKey {
        /// The stored verifier key.
        expected: String,
    },
    /// A stored checkpoint does not match the stored tree.
    #[error("stored checkpoint at size {size} does not match the stored tree")]
    CheckpointMismatch {
        /// Tree size of that checkpoint.
        size: u64,
    },
    /// A pipeline thread could not be started.
    #[error("cannot start pipeline thread: {0}")]
    Thread(String),
    /// The record of signed checkpoints (`COOP-SIGNED`) cannot be read or written, or holds a
    /// note this node's key did not sign.
    #[error("the record of signed checkpoints: {0}")]
    SignedRecord(String),
    /// The database holds fewer entries than a checkpoint this node already signed and released:
    /// acknowledged entries were lost (for example a damaged write-ahead log). Serving it would
    /// sign a second, different history at sizes already signed.
    #[error(
        "this node signed a checkpoint at size {signed}, but its database holds only {durable} \
         entries: acknowledged entries are missing (damaged storage?). Refusing to start rather \
         than serve a shorter log or sign a fork. Restore the data folder from a backup or a \
         replica that holds at least {signed} entries (docs/format.md, \"Refusing to start\")"
    )]
    BehindSigned {
        /// Size of the newest checkpoint this node signed.
        signed: u64,
        /// Entries in the database.
        durable: u64,
    },
    /// The database's tree at the size of the newest signed checkpoint has another root: its
    /// history differs from the one this node signed.
    #[error(
        "the database's tree at size {size} does not have the root this node signed there: its \
         history differs from the signed one. Refusing to start (docs/format.md, \"Refusing to \
         start\")"
    )]
    ForkedFromSigned {
        /// Size of the newest signed checkpoint.
        size: u64,
    },
}

impl<M: StateMachine> Log<M> {
    /// Creates a new, empty log for `origin` in `path`, signed by `node_key`.
    pub fn create(
        path: &Path,
        origin: &str,
        node_key: SigningKey,
        machine: M,
        config: LogConfig,
    ) -> Result<Log<M>, OpenError> {
        let signer = NoteSigner::new(origin, node_key.clone())?;
        Store::create(path, origin, &signer.vkey())?;
        Log::open(path, node_key, machine, config)
    }

    /// Opens an existing log. Loads the tree edge and the newest checkpoint (O(log n) reads —
    /// nothing is replayed). If entries are durable but not covered by a checkpoint (a crash
    /// between integration and checkpoint), signs one for them before serving.
    pub fn open(
        path: &Path,
        node_key: SigningKey,
        machine: M,
        config: LogConfig,
    ) -> Result<Log<M>, OpenError> {
        let store = Store::open(path)?.with_fault_hook(config.fault_hook.clone());
        let origin = store.origin()?;
        let signer = NoteSigner::new(&origin, node_key.clone())?;
        let expected = store.vkey()?;
        if signer.vkey() != expected {
            return Err(OpenError::WrongNodeKey { expected });
        }
        let size = store.size()?;
        let frontier = Frontier::load(&store, size)?;
        let batch_time_ms = store.batch_time()?;
        // The newest checkpoint this node ever released, from outside the database: the
        // database must still hold that tree, or the node refuses to start.
        let record_err = |e: SignedFileError| OpenError::SignedRecord(e.to_string());
        let recorded = SignedFile::read_latest(path).map_err(record_err)?;
        if let Some(note) = &recorded {
            let signed = SignedCheckpoint::open(note, &signer.verifier()).map_err(|e| {
                OpenError::SignedRecord(format!(
                    "its newest note does not open with this node's key: {e}"
                ))
            })?;
            let at = signed.checkpoint.size;
            if at > size {
                return Err(OpenError::BehindSigned {
                    signed: at,
                    durable: size,
                });
            }
            if merkle::root(&store, at)? != signed.checkpoint.root {
                return Err(OpenError::ForkedFromSigned { size: at });
            }
        }
        let mut record = SignedFile::open(path).map_err(record_err)?;
        let latest = match store.latest_checkpoint()? {
            Some((cp_size, note)) => {
                let opened = SignedCheckpoint::open(&note, &signer.verifier())
                    .map_err(|_| OpenError::CheckpointMismatch { size: cp_size })?;
                if cp_size > size || merkle::root(&store, cp_size)? != opened.checkpoint.root {
                    return Err(OpenError::CheckpointMismatch { size: cp_size });
                }
                Some(opened)
            }
            None => None,
        };
        let latest = match latest {
            Some(cp) if cp.checkpoint.size == size => {
                // A folder written before the record existed, or a crash between the
                // database's checkpoint and the record's: record it now (idempotent).
                if recorded.as_deref() != Some(cp.note.as_str()) {
                    record.append(&cp.note).map_err(record_err)?;
                }
                cp
            }
            // A new ledger (nothing signed yet), or recovery: durable entries that nobody was
            // acknowledged for get their checkpoint before anything is served.
            _ => sign_and_store(&signer, &store, &mut record, &frontier)?,
        };
        let (checkpoints, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            store: Arc::new(store),
            machine,
            policy: AdmissionPolicy {
                coop: origin,
                max_entry_bytes: config.max_entry_bytes,
                ts_window_ms: config.ts_window.as_millis() as u64,
            },
            config,
            signer,
            node_key,
            latest: RwLock::new(Arc::new(latest)),
            checkpoints,
            failure: Mutex::new(None),
            signed: Mutex::new(record),
            metrics: metrics::LogMetrics::default(),
            instance: rand::random(),
            next_ticket: std::sync::atomic::AtomicU64::new(1),
            proposals: Mutex::new(HashMap::new()),
            held_back: Mutex::new(std::collections::VecDeque::new()),
        });
        shared.metrics.durable(size);
        let released = shared.latest().checkpoint.size;
        shared.metrics.released(released, now_ms());
        // `open` recorded the latest checkpoint if the record did not hold it yet.
        shared.metrics.recorded(released);
        let (submit_tx, submit_rx) = mpsc::sync_channel(shared.config.queue_capacity);
        let (seq_tx, seq_rx) = mpsc::sync_channel(shared.config.queue_capacity);
        // Batches sequenced and durable, waiting to be recorded and released: a few in flight
        // keep the sequencer busy while the record's fsync runs; more would only add latency.
        let (release_tx, release_rx) = mpsc::sync_channel(RELEASE_QUEUE);
        let max = shared.config.batch_max_entries;
        let verifier = std::thread::Builder::new()
            .name("coop-verify".into())
            .spawn(move || sequencer::run_verifier(submit_rx, seq_tx, max))
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        let release_shared = shared.clone();
        let release = std::thread::Builder::new()
            .name("coop-release".into())
            .spawn(move || sequencer::run_release(release_shared, release_rx))
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        let signed = shared.latest().checkpoint.clone();
        let seq_shared = shared.clone();
        let seq = std::thread::Builder::new()
            .name("coop-sequence".into())
            .spawn(move || {
                sequencer::run_sequencer(
                    seq_shared,
                    seq_rx,
                    SequencerState {
                        proposed_time_ms: batch_time_ms,
                        frontier,
                        signed,
                        batch_time_ms,
                        smt_cache: crate::smt::SmtCache::new(sequencer::SMT_CACHE_DEPTH),
                    },
                    release_tx,
                )
            })
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        Ok(Log {
            path: path.to_owned(),
            shared,
            submit_tx: Some(submit_tx),
            threads: vec![verifier, seq, release],
        })
    }

    /// The ledger's origin (co-op id and checkpoint key name).
    pub fn origin(&self) -> &str {
        self.shared.signer.name()
    }

    /// What the log measures about itself (see [`metrics::LogMetrics::register`]).
    pub fn metrics(&self) -> &metrics::LogMetrics {
        &self.shared.metrics
    }

    /// The node's checkpoint verifier key, `<origin>+<keyid>+<base64>`.
    pub fn verifier_key(&self) -> String {
        self.shared.signer.vkey()
    }

    /// The state machine.
    pub fn machine(&self) -> &M {
        &self.shared.machine
    }

    /// Submits a signed entry. Returns only when a stored checkpoint covers it (or it is refused).
    pub async fn submit(&self, env: Envelope) -> Result<Receipt, SubmitError> {
        let arrived = std::time::Instant::now();
        let answer = self.submit_one(env).await;
        self.shared.metrics.submitted(&answer, arrived.elapsed());
        answer
    }

    async fn submit_one(&self, env: Envelope) -> Result<Receipt, SubmitError> {
        // A body already in the log gets its original receipt, whatever its timestamp says now:
        // retries stay idempotent after the admission window has passed.
        if let Some(receipt) = self.existing_receipt(&env)? {
            return Ok(receipt);
        }
        // Stage 1 — admission: cheap stateless checks before the queue.
        let machine = &self.shared.machine;
        self.shared
            .policy
            .check(&env, |k, v| machine.accepts(k, v), now_ms())?;
        let (reply, rx) = oneshot::channel();
        let tx = self.submit_tx.as_ref().ok_or(SubmitError::Stopped)?;
        tx.try_send(sequencer::Pending::Signed(env, reply))
            .map_err(|e| match e {
                TrySendError::Full(_) => SubmitError::Overloaded,
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })?;
        self.receipt(rx.await.map_err(|_| SubmitError::Stopped)??)
    }

    /// Submits several entries together: each is admitted as by [`Log::submit`] (a body already
    /// in the log gets its receipt), the rest travel as one group — their signatures checked
    /// together, sequenced in this order in one batch, so the same checkpoint covers every
    /// accepted one (a signer's consecutive sequence numbers in order are all accepted). Each
    /// entry gets its own receipt or refusal, in the order given.
    pub async fn submit_many(&self, envs: Vec<Envelope>) -> Vec<Result<Receipt, SubmitError>> {
        let arrived = std::time::Instant::now();
        let answers = self.submit_group(envs).await;
        let took = arrived.elapsed();
        for a in &answers {
            self.shared.metrics.submitted(a, took);
        }
        answers
    }

    async fn submit_group(&self, envs: Vec<Envelope>) -> Vec<Result<Receipt, SubmitError>> {
        let machine = &self.shared.machine;
        let now = now_ms();
        let mut answers: Vec<Option<Result<Receipt, SubmitError>>> = Vec::with_capacity(envs.len());
        let mut waiting = Vec::new();
        let mut group = Vec::new();
        for (i, env) in envs.into_iter().enumerate() {
            match self.existing_receipt(&env) {
                Ok(Some(receipt)) => {
                    answers.push(Some(Ok(receipt)));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    answers.push(Some(Err(e)));
                    continue;
                }
            }
            if let Err(e) = self
                .shared
                .policy
                .check(&env, |k, v| machine.accepts(k, v), now)
            {
                answers.push(Some(Err(e.into())));
                continue;
            }
            let (reply, rx) = oneshot::channel();
            group.push((env, reply));
            waiting.push((i, rx));
            answers.push(None);
        }
        if !group.is_empty() {
            let sent = match self.submit_tx.as_ref() {
                None => Err(SubmitError::Stopped),
                Some(tx) => tx
                    .try_send(sequencer::Pending::Group(group))
                    .map_err(|e| match e {
                        TrySendError::Full(_) => SubmitError::Overloaded,
                        TrySendError::Disconnected(_) => SubmitError::Stopped,
                    }),
            };
            if let Err(e) = sent {
                for (i, _) in &waiting {
                    if let Some(slot) = answers.get_mut(*i) {
                        *slot = Some(Err(e.clone()));
                    }
                }
                waiting.clear();
            }
        }
        for (i, rx) in waiting {
            let answer = match rx.await {
                Ok(Ok(ack)) => self.receipt(ack),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SubmitError::Stopped),
            };
            if let Some(slot) = answers.get_mut(i) {
                *slot = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(SubmitError::Stopped)))
            .collect()
    }

    /// Submits one of the node's own entries (a tally, an anchor receipt, a published ballot
    /// box). The sequencer signs it with the node key when it takes its place, with the node
    /// key's next sequence number and the batch time, so concurrent services never race for a
    /// sequence number. The state machine's rules decide as for any entry.
    pub async fn submit_own(&self, own: OwnEntry) -> Result<Receipt, SubmitError> {
        let machine = &self.shared.machine;
        if crate::state::is_ledger_type(&own.kind) || !machine.accepts(&own.kind, own.version) {
            return Err(SubmitError::Rejected(Rejection::UnknownType {
                kind: own.kind,
                version: own.version,
            }));
        }
        // Its payload must be the ledger's JSON before it is queued: a replica proposes it
        // unsigned, and every replica must read back exactly these numbers.
        crate::codec::canonical_json(&serde_json::Value::Object(own.payload.clone()), "payload")
            .map_err(|e| SubmitError::Rejected(e.into()))?;
        let (reply, rx) = oneshot::channel();
        // The node's own entries wait for room rather than being refused as overload: they are
        // few, and a refused tally or anchor receipt would only be retried later.
        self.enqueue(sequencer::Pending::Own(own, reply)).await?;
        self.receipt(rx.await.map_err(|_| SubmitError::Stopped)??)
    }

    /// Waits until everything sequenced so far is durable and checkpointed, and every batch
    /// sequenced from now on has a batch time of at least the node clock now. A service that
    /// acts "at time T" (the clerk closing a vote) calls it once the clock has passed T: the
    /// state it reads afterwards holds every entry that can carry a batch time before T.
    pub async fn settle(&self) -> Result<(), SubmitError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(sequencer::Pending::Barrier(tx)).await?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Queues `pending` for the pipeline, waiting while the queue is full.
    pub(crate) async fn enqueue(&self, mut pending: sequencer::Pending) -> Result<(), SubmitError> {
        let tx = self.submit_tx.as_ref().ok_or(SubmitError::Stopped)?;
        loop {
            match tx.try_send(pending) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(SubmitError::Stopped),
                Err(TrySendError::Full(p)) => {
                    pending = p;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }

    /// The receipt of an acknowledged entry: its inclusion proof under the acknowledging
    /// checkpoint, from the nodes the batch handed over (no storage read in the common case).
    fn receipt(&self, ack: Ack) -> Result<Receipt, SubmitError> {
        let source = merkle::CachedNodes {
            memory: &ack.batch_nodes,
            fallback: &*self.shared.store,
        };
        let inclusion_proof = merkle::span_hashes(
            &source,
            &merkle::inclusion_plan(ack.index, ack.checkpoint.checkpoint.size),
        )?;
        Ok(Receipt {
            index: ack.index,
            leaf_hash: ack.leaf_hash,
            entry_id: ack.entry_id,
            checkpoint: ack.checkpoint,
            inclusion_proof,
            duplicate: ack.duplicate,
        })
    }

    /// The receipt of an entry with the same body, if the checkpointed log holds one.
    fn existing_receipt(&self, env: &Envelope) -> Result<Option<Receipt>, SubmitError> {
        let entry_id = env.entry_id();
        let checkpoint = self.shared.latest();
        let size = checkpoint.checkpoint.size;
        let Some(index) = self.shared.store.index_of_entry_id(&entry_id)? else {
            return Ok(None);
        };
        if index >= size {
            return Ok(None);
        }
        Ok(Some(Receipt {
            index,
            leaf_hash: self.leaf_hash(index)?,
            entry_id,
            inclusion_proof: self.inclusion_proof(index, size)?,
            checkpoint,
            duplicate: true,
        }))
    }
}

impl<M: StateMachine> Drop for Log<M> {
    fn drop(&mut self) {
        // Closing the queue ends the verifier, which closes the sequencer's queue in turn.
        self.submit_tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
