//! The ingest pipeline behind [`crate::log::Log::submit`] (DESIGN §6), one stage per thread:
//!
//! 1. **admission** (caller's task): parse, canonical form, size, co-op, type, timestamp;
//! 2. **signatures** (verifier thread + rayon pool): batched, on all cores, off the sequencer;
//! 3. **sequencing** (sequencer thread, single writer): dedupe, replay, co-op rules, in order;
//!    then the batch's state changes are folded into the state tree and a node-signed
//!    `log.state` entry recording its root closes the batch (DESIGN §4);
//! 4. **checkpoint and integration** (sequencer thread): sign `(origin, size, root)` of the new
//!    tree — in memory, given to no one — and write entries, leaf hashes, tree nodes, indexes,
//!    state, state-tree nodes *and that checkpoint note* in one atomic WriteBatch, without
//!    waiting for the disk; the sequencer goes on with the next batch at once;
//! 5. **durability and record** (release thread): one fsync of the database's write-ahead log
//!    makes every batch written so far durable; then the notes of every batch waiting are
//!    appended, in order, to `COOP-SIGNED` with one more;
//! 6. **release and acknowledgement** (release thread): only now does a checkpoint become the
//!    latest, and is any submitter told its index.
//!
//! The sequencer never waits for a disk: it sequences batch k+1 on batch k's written (not yet
//! durable) tree while the release thread makes k durable. That is safe because the
//! write-ahead log survives a power cut only as a prefix: if k is lost, so is every later
//! batch, and none of them was released. Under load one pair of fsyncs covers several batches.
//!
//! What a crash leaves behind at each step (see also `docs/format.md`):
//! - before 4's write returns: nothing of the batch (RocksDB applies a WriteBatch atomically);
//!   no submitter was acknowledged, clients retry, duplicates are idempotent;
//! - after 4, before 5's first fsync: a process crash keeps the batch (the kernel has the
//!   bytes), a power cut may drop it with every later one; either way nothing was released;
//! - after the database's fsync, before the record's: the entries and their checkpoint note
//!   are durable but the note was never released; on restart `Log::open` finds the stored note
//!   at the durable size and records it before serving anything (it does not sign again);
//! - after 5, before 6: the checkpoint covers entries nobody was told about; a resubmission gets
//!   the same receipt (same index) because the entry id is already in the log.
//!
//! A replicated log (`docs/replication.md` §2, "One fsync a round") runs step 5 *behind* step 6:
//! a batch it applies is committed, so it is already durable in a quorum's Raft logs, and the
//! tree is a deterministic function of the committed batches. Its release thread releases and
//! acknowledges as soon as a batch is written; the recorder thread then, at most once per
//! [`RECORD_EVERY`], fsyncs the database and appends the notes released since to
//! `COOP-SIGNED`. A power cut can take the unsynced tail of a replica's database (never below
//! its record: a note is recorded only after a sync covering it); Raft gives the replica those
//! committed batches again and it signs the same notes.

use crate::entry::{Envelope, Rejection, Verified};
use crate::hash::Hash;
use crate::log::replication::OfflogOp;
use crate::log::{Ack, Shared, SubmitError};
use crate::merkle::{Frontier, NodeId, NodeSource};
use crate::note::{Checkpoint, SignedCheckpoint};
use crate::smt;
use crate::state::{
    last_seq, seq_key, ApplyContext, ApplyError, Overlay, StateCommitment, StateSource, StateView,
    NS_APP,
};
use crate::store::{BatchWrite, StoreError};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Where the pipeline answers a submitter.
pub(crate) type Reply = oneshot::Sender<Result<Ack, SubmitError>>;

pub use crate::batch::OwnEntry;

/// What a submitter hands the pipeline (stage 2's input).
pub(crate) enum Pending {
    /// An envelope signed elsewhere (a member's device, a party's system): its signature is
    /// checked by the verifier stage.
    Signed(Envelope, Reply),
    /// One of the node's own entries, not yet signed: the sequencer gives it the node key's next
    /// sequence number and the batch time, and signs it, at the moment it takes its place. The
    /// node key therefore has exactly one writer, and its entries are never refused as replays
    /// however many services (clerk, anchoring) write at once.
    Own(OwnEntry, Reply),
    /// Answered once every batch sequenced before it is durable and checkpointed, and the next
    /// batch's time is at least the time the barrier was sent (see `Log::settle`).
    Barrier(oneshot::Sender<()>),
    /// Several signed envelopes that travel together (`Log::submit_many`): verified together
    /// and sequenced in their order in one batch, so one checkpoint covers them all.
    Group(Vec<(Envelope, Reply)>),
    /// A batch replication committed (`Log::apply_committed`), applied as exactly one batch at
    /// its batch time. Its items are this node's own admitted ones when it proposed the batch,
    /// or the raw items to verify here when another replica did.
    Committed(Box<CommittedWork<CommittedItems>>),
    /// One batch of history copied from another replica (`Log::import_history`): applied as a
    /// batch and written only if it reproduces `expect` byte for byte.
    Import(Box<ImportWork>),
    /// Replicated mode: off-log writes to propose (`Log::offlog_write`), answered once
    /// applied and durable here.
    Offlog(Vec<OfflogOp>, Done),
}

/// Told when off-log writes are applied and durable.
pub(crate) type Done = oneshot::Sender<Result<(), SubmitError>>;

/// The items of a committed batch, before the verifier stage.
pub(crate) enum CommittedItems {
    /// This node proposed the batch: its items as admitted here, with their submitters' replies.
    Local(Vec<Admitted>),
    /// Another replica proposed it: entries to check here (their submitters wait elsewhere).
    Remote(Vec<crate::log::replication::BatchItem>),
}

/// A committed batch on its way through the pipeline.
pub(crate) struct CommittedWork<I> {
    pub items: I,
    /// The ticket under which this node proposed the batch, when its items are this node's
    /// own (`CommittedItems::Local`): the sequencer may have sequenced it already (see
    /// [`Speculation`]).
    pub local_ticket: Option<u64>,
    pub batch_time_ms: u64,
    pub side_meta: Vec<(Vec<u8>, Vec<u8>)>,
    /// Told the tree size once the batch is written (not yet durable).
    pub written: oneshot::Sender<Result<u64, SubmitError>>,
}

/// One batch of imported history.
pub(crate) struct ImportWork {
    /// The batch's entries except its closing `log.state`, signatures checked.
    pub items: Vec<Verified<Envelope>>,
    pub batch_time_ms: u64,
    /// Every entry the batch must produce, its `log.state` last.
    pub expect: Vec<Vec<u8>>,
    /// Told the tree size once written, or why the batch does not reproduce.
    pub written: oneshot::Sender<Result<u64, crate::log::replication::ImportError>>,
}

/// What stage 3 takes: entries whose signatures verified, the node's own, barriers.
pub(crate) enum Admitted {
    /// Its signature verified.
    Verified(Verified<Envelope>, Reply),
    /// The node's own, signed by the sequencer when it is sequenced.
    Own(OwnEntry, Reply),
    /// See [`Pending::Barrier`].
    Barrier(oneshot::Sender<()>),
    /// See [`Pending::Group`]: its entries whose signatures verified, in their order (never
    /// split across batches).
    Group(Vec<(Verified<Envelope>, Reply)>),
    /// See [`Pending::Committed`]: its items admitted (a remote entry whose signature or form
    /// fails is left out, identically on every replica).
    Committed(Box<CommittedWork<Vec<Admitted>>>),
    /// See [`Pending::Import`].
    Import(Box<ImportWork>),
    /// See [`Pending::Offlog`].
    Offlog(Vec<OfflogOp>, Done),
}

pub use crate::store_error::FaultPoint;

/// Stage 2: drain whatever is queued (up to `max`), verify all signatures in one parallel batched
/// pass, forward the good ones in arrival order.
pub(crate) fn run_verifier(rx: Receiver<Pending>, tx: SyncSender<Admitted>, max: usize) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // Signed entries are verified together; everything keeps its arrival order.
        let mut envs = Vec::with_capacity(batch.len());
        let mut slots = Vec::with_capacity(batch.len());
        for p in batch {
            match p {
                Pending::Signed(env, reply) => {
                    envs.push(env);
                    slots.push(Slot::Signed(reply));
                }
                Pending::Group(members) => {
                    let mut replies = Vec::with_capacity(members.len());
                    for (env, reply) in members {
                        envs.push(env);
                        replies.push(reply);
                    }
                    slots.push(Slot::Group(replies));
                }
                Pending::Own(own, reply) => {
                    slots.push(Slot::Ready(Box::new(Admitted::Own(own, reply))))
                }
                Pending::Barrier(tx) => slots.push(Slot::Ready(Box::new(Admitted::Barrier(tx)))),
                Pending::Import(work) => slots.push(Slot::Ready(Box::new(Admitted::Import(work)))),
                Pending::Offlog(ops, done) => {
                    slots.push(Slot::Ready(Box::new(Admitted::Offlog(ops, done))))
                }
                Pending::Committed(work) => {
                    let work = *work;
                    let items = match work.items {
                        CommittedItems::Local(items) => items,
                        CommittedItems::Remote(items) => admit_remote(items),
                    };
                    slots.push(Slot::Ready(Box::new(Admitted::Committed(Box::new(
                        CommittedWork {
                            items,
                            local_ticket: work.local_ticket,
                            batch_time_ms: work.batch_time_ms,
                            side_meta: work.side_meta,
                            written: work.written,
                        },
                    )))));
                }
            }
        }
        let mut verdicts = crate::entry::admit(envs).into_iter();
        for slot in slots {
            let next = match slot {
                Slot::Ready(a) => *a,
                Slot::Group(replies) => {
                    let mut good = Vec::with_capacity(replies.len());
                    for reply in replies {
                        match verdicts.next() {
                            Some(Ok(env)) => good.push((env, reply)),
                            Some(Err(r)) => {
                                let _ = reply.send(Err(SubmitError::Rejected(r)));
                            }
                            None => {
                                let _ = reply.send(Err(SubmitError::Stopped));
                            }
                        }
                    }
                    Admitted::Group(good)
                }
                Slot::Signed(reply) => match verdicts.next() {
                    Some(Ok(env)) => Admitted::Verified(env, reply),
                    Some(Err(r)) => {
                        let _ = reply.send(Err(SubmitError::Rejected(r)));
                        continue;
                    }
                    None => {
                        let _ = reply.send(Err(SubmitError::Stopped));
                        continue;
                    }
                },
            };
            if tx.send(next).is_err() {
                return;
            }
        }
    }
}

/// A committed batch proposed by another replica: each signed entry parsed, its signature not
/// checked again (the proposer admitted it; [`Verified::committed`]); the node's own entries
/// are signed when sequenced, as on the proposer. Nobody here waits for these entries, so their
/// replies go nowhere.
fn admit_remote(items: Vec<crate::log::replication::BatchItem>) -> Vec<Admitted> {
    use crate::log::replication::BatchItem;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let nobody = oneshot::channel().0;
        match item {
            BatchItem::Signed(bytes) => match Envelope::from_bytes(&bytes) {
                Ok(env) => out.push(Admitted::Verified(Verified::committed(env), nobody)),
                Err(r) => {
                    tracing::warn!(rejection = %r, "a committed entry does not parse; left out");
                }
            },
            BatchItem::Own(own) => out.push(Admitted::Own(own, nobody)),
            BatchItem::Offlog(ops) => out.push(Admitted::Offlog(ops, oneshot::channel().0)),
        }
    }
    out
}

/// A place in the verifier's output order.
enum Slot {
    /// A signed entry: its verdict comes from the batch check.
    Signed(Reply),
    /// A group's entries: their verdicts, in order.
    Group(Vec<Reply>),
    /// Passes through as it is (the node's own entries and barriers: few, so boxed).
    Ready(Box<Admitted>),
}

/// The sequencer's own memory: the durable tree's right edge, the newest checkpoint it signed
/// (for that tree; stored, perhaps not yet released), the last batch time, and the state
/// tree's upper levels.
pub(crate) struct SequencerState {
    pub frontier: Frontier,
    /// The newest batch time this node proposed (replicated mode).
    pub proposed_time_ms: u64,
    pub signed: Checkpoint,
    pub batch_time_ms: u64,
    pub smt_cache: smt::SmtCache,
}

/// One sequenced batch on its way to release (steps 5–6), in sequencing order.
pub(crate) struct Release {
    /// The batch's checkpoint, durable with its data (`None`: the batch added no entry).
    signed: Option<Arc<SignedCheckpoint>>,
    accepted: Vec<Accepted>,
    /// Proof nodes for the receipts (see step 6).
    batch_nodes: Arc<HashMap<NodeId, Hash>>,
    barriers: Vec<oneshot::Sender<()>>,
    /// Off-log writes applied with the batch, answered once durable.
    done: Vec<Done>,
}

impl Release {
    /// Tells every waiter the node stopped.
    fn refuse(self) {
        for a in self.accepted {
            let _ = a.reply.send(Err(SubmitError::Stopped));
        }
        for d in self.done {
            let _ = d.send(Err(SubmitError::Stopped));
        }
    }
}

/// Batches waiting for release that one record append covers at most.
const RELEASE_GROUP: usize = 256;

/// Steps 5–6, forever, until the sequencer closes the channel or the record cannot be written
/// (then the node stops: fail-stop).
///
/// A replicated log skips step 5 on the way to release: a committed batch is already durable
/// on a quorum's Raft logs (each `append` fsync'd before it counted towards the commit), and
/// this replica's tree is a deterministic function of those batches, so its checkpoints are
/// released as soon as they are written; the [`Recorder`] makes the database durable and
/// appends the notes to `COOP-SIGNED` behind the releases (`docs/replication.md` §2, "One
/// fsync a round").
pub(crate) fn run_release<M: Send + Sync + 'static>(shared: Arc<Shared<M>>, rx: Receiver<Release>) {
    let recorder = if shared.config.replicate.is_some() {
        match Recorder::start(shared.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the recorder; the node stops");
                shared.fail(e);
                while let Ok(r) = rx.recv() {
                    r.refuse();
                }
                return;
            }
        }
    } else {
        None
    };
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < RELEASE_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        // Step 5 — durability, then record: one fsync of the database's write-ahead log makes
        // every batch written so far durable (a prefix: this group's and any the sequencer
        // wrote since), then the notes of this group go to `COOP-SIGNED` with one more.
        // Replicated: both behind the release, by the recorder.
        let notes: Vec<&str> = group
            .iter()
            .filter_map(|r| r.signed.as_ref().map(|s| s.note.as_str()))
            .collect();
        let waiting = group.iter().any(|r| !r.done.is_empty());
        let synced = if recorder.is_some() || (notes.is_empty() && !waiting) {
            Ok(())
        } else {
            let t = Instant::now();
            shared.store.sync().map(|()| {
                shared.metrics.synced("database", t.elapsed());
            })
        };
        let synced = match &recorder {
            Some(recorder) => synced.and_then(|()| recorder.behind(&notes)),
            None => synced,
        };
        let recorded = synced
            .and_then(|()| match recorder {
                Some(_) => Ok(()),
                None => shared.record(&notes),
            })
            .and_then(|()| shared.fault(FaultPoint::AfterCheckpoint));
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record signed checkpoints; the node stops");
            shared.fail(e);
            group.into_iter().for_each(Release::refuse);
            while let Ok(r) = rx.recv() {
                r.refuse();
            }
            return;
        }
        // Step 6 — release, then acknowledgement: every accepted entry is covered by the
        // released checkpoint its receipt carries.
        for r in group {
            if let Some(signed) = r.signed {
                shared.release(signed);
            }
            let checkpoint = shared.latest();
            for a in r.accepted {
                let _ = a.reply.send(Ok(Ack {
                    index: a.index,
                    leaf_hash: a.leaf_hash,
                    entry_id: a.entry_id,
                    checkpoint: checkpoint.clone(),
                    duplicate: a.duplicate,
                    batch_nodes: r.batch_nodes.clone(),
                }));
            }
            for b in r.barriers {
                let _ = b.send(());
            }
            for d in r.done {
                let _ = d.send(Ok(()));
            }
        }
    }
}

/// How long a replica's released checkpoints may wait for the recorder: at most one fsync of
/// the database and one of `COOP-SIGNED` per period, off the path of every receipt.
pub(crate) const RECORD_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// A replicated log's step 5, behind the releases (a thread of its own): every
/// [`RECORD_EVERY`], one fsync of the database's write-ahead log, then the notes released
/// since go to `COOP-SIGNED` with one more. A note is appended only after a sync that covers
/// its batch (its batch was written before it was released, and released before it was
/// handed here), so the record never gets ahead of the durable database and `Log::open`'s
/// check still holds after a power cut. Closing the log records everything released
/// ([`Recorder`]'s drop waits for the thread); a failure stops the node (fail-stop).
struct Recorder {
    tx: Option<std::sync::mpsc::Sender<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start<M: Send + Sync + 'static>(shared: Arc<Shared<M>>) -> Result<Recorder, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
        let thread = std::thread::Builder::new()
            .name("coop-record".into())
            .spawn(move || run_recorder(&shared, &rx))
            .map_err(|e| StoreError::File {
                what: format!("starting the recorder thread: {e}"),
                kind: e.kind(),
            })?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands released notes to the recorder; `Err` once it has stopped (its failure is the
    /// log's).
    fn behind(&self, notes: &[&str]) -> Result<(), StoreError> {
        if notes.is_empty() {
            return Ok(());
        }
        let stopped = || StoreError::File {
            what: "recording signed checkpoints: the recorder stopped".into(),
            kind: std::io::ErrorKind::BrokenPipe,
        };
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(notes.iter().map(|n| (*n).to_owned()).collect())
            .map_err(|_| stopped())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_recorder<M>(shared: &Shared<M>, rx: &std::sync::mpsc::Receiver<Vec<String>>) {
    let mut last = Instant::now();
    let mut open = true;
    while open {
        let Ok(first) = rx.recv() else {
            return;
        };
        let mut notes = first;
        // Gather what is released until the period is over (or the log closes).
        let due = last + RECORD_EVERY;
        loop {
            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(more) => notes.extend(more),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        last = Instant::now();
        let t = Instant::now();
        let recorded = shared
            .store
            .sync()
            .map(|()| shared.metrics.synced("database", t.elapsed()))
            .and_then(|()| shared.fault(FaultPoint::BeforeRecord))
            .and_then(|()| {
                let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
                shared.record(&notes)
            });
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record signed checkpoints; the node stops");
            shared.fail(e);
            return;
        }
    }
}

/// State-tree levels the sequencer keeps in memory (at most 2^17 positions).
pub(crate) const SMT_CACHE_DEPTH: u16 = 16;

/// Stages 3–4, forever, until the channel closes or storage fails (then the node stops
/// sequencing: fail-stop, never guess); each batch then goes to the release thread.
pub(crate) fn run_sequencer<M: crate::state::StateMachine>(
    shared: Arc<Shared<M>>,
    rx: Receiver<Admitted>,
    mut st: SequencerState,
    release: SyncSender<Release>,
) {
    let cfg = shared.config.clone();
    if cfg.replicate.is_some() {
        run_replicated(&shared, &rx, st, &release);
        drain(&rx);
        return;
    }
    while let Ok(first) = rx.recv() {
        // The release thread failed: nothing more is sequenced.
        if shared.failed() {
            refuse_all(first, &rx);
            return;
        }
        // Group commit: an entry reaching an idle sequencer is committed at once, with whatever
        // else is already queued; under load, everything that arrived while the previous batch
        // was being made durable (its fsync) forms the next batch. No fixed window.
        let mut items = vec![first];
        while items.len() < cfg.batch_max_entries {
            match rx.try_recv() {
                Ok(a) => items.push(a),
                Err(_) => break,
            }
        }
        // An optional linger (`LogConfig::batch_max_wait`, zero by default) trades latency for
        // larger batches.
        if !cfg.batch_max_wait.is_zero() {
            let deadline = Instant::now() + cfg.batch_max_wait;
            while items.len() < cfg.batch_max_entries {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(a) => items.push(a),
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        match sequence_batch(&shared, &mut st, items, BatchTerms::default()) {
            Ok(Ok(batch)) => {
                if let Err(refused) = release.send(batch) {
                    // The release thread stopped (it recorded why).
                    refused.0.refuse();
                    drain(&rx);
                    return;
                }
            }
            Ok(Err(mismatch)) => {
                // Only imports have terms to meet, and they never travel with submissions.
                tracing::error!(%mismatch, "an import reached the single-node path");
            }
            Err(e) => {
                tracing::error!(error = %e, "storage failed; the sequencer stops");
                drain(&rx);
                return;
            }
        }
    }
}

/// Proposals of this log that may be in flight (proposed, not yet applied here or abandoned)
/// before new submissions wait for one of them: while they wait they gather into the next
/// batch, as submissions gather during an fsync on a single node (group commit). Measured with
/// `coop-bench --systems coop,cluster` (three replicas on this project's 2-core machine,
/// release build, 2026-12-02): 1 in flight gave 0.39× one node's throughput, 2 gave 0.37×,
/// 4 gave 0.26× (smaller batches, each paying a Raft round, a `log.state` entry and fsyncs).
const PROPOSALS_IN_FLIGHT: usize = 1;

/// How often a replicated sequencer holding submissions looks again whether a proposal ended
/// without a message reaching it (an abandoned one).
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// Stages 3–4 of a replicated log, until the channel closes or storage fails: this node's new
/// submissions go to replication as proposed batches (nothing of them is applied yet), at most
/// [`PROPOSALS_IN_FLIGHT`] at a time; every committed batch and import that arrives is applied,
/// in order.
fn run_replicated<M: crate::state::StateMachine>(
    shared: &Arc<Shared<M>>,
    rx: &Receiver<Admitted>,
    mut st: SequencerState,
    release: &SyncSender<Release>,
) {
    let max = shared.config.batch_max_entries;
    let mut held: Vec<Admitted> = Vec::new();
    let mut spec: Option<Speculation> = None;
    loop {
        let first = if held.is_empty() {
            match rx.recv() {
                Ok(a) => Some(a),
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(HOLD_POLL) {
                Ok(a) => Some(a),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        if shared.failed() {
            first.into_iter().for_each(refuse);
            break;
        }
        let mut work = Vec::new();
        let mut next = first;
        let mut taken = 0;
        while let Some(item) = next {
            match item {
                Admitted::Committed(_) | Admitted::Import(_) => work.push(item),
                other => held.push(other),
            }
            taken += 1;
            next = if taken < max {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        for item in work {
            if !apply_work(shared, &mut st, item, release, &mut spec) {
                held.into_iter().for_each(refuse);
                return;
            }
        }
        if !held.is_empty() && shared.in_flight() < PROPOSALS_IN_FLIGHT {
            let shadow = Shadow::of(&held);
            if let Some(proposed) = propose(shared, &mut st, std::mem::take(&mut held)) {
                // Raft replicates the batch from here on; meanwhile this thread, which would
                // otherwise wait for the commit, sequences it.
                spec = speculate(shared, &st, proposed, shadow);
            }
        }
    }
    held.into_iter().for_each(refuse);
}

/// Applies one committed batch or import; `false` when the pipeline must stop.
fn apply_work<M: crate::state::StateMachine>(
    shared: &Arc<Shared<M>>,
    st: &mut SequencerState,
    item: Admitted,
    release: &SyncSender<Release>,
    spec: &mut Option<Speculation>,
) -> bool {
    let outcome = match item {
        Admitted::Committed(c) => {
            let c = *c;
            // Out of flight once applied here (whatever the outcome), so the next proposal is
            // sequenced against the state this batch leaves.
            let _applied = c.local_ticket.map(|t| Applied(shared, t));
            // This node's own batch, sequenced while it was replicated, against the state it
            // is applied to: write what was computed. Anything else leaves a speculation for a
            // later batch (a blank or membership entry moves neither the tree nor the state).
            let ours = spec.as_ref().is_some_and(|p| {
                c.local_ticket == Some(p.ticket)
                    && p.batch_time_ms == c.batch_time_ms
                    && p.base == (st.frontier.size(), st.batch_time_ms)
            });
            let (items, adopted) = match spec.take() {
                Some(p) if ours => match p.adopt(c.items) {
                    Ok(sequenced) => (Vec::new(), Some(sequenced)),
                    Err(items) => (items, None),
                },
                other => {
                    *spec = other;
                    (c.items, None)
                }
            };
            let applied = match adopted {
                Some(sequenced) => {
                    shared.metrics.speculation(true);
                    integrate(shared, st, sequenced, c.side_meta).map(Ok)
                }
                None => {
                    if c.local_ticket.is_some() {
                        shared.metrics.speculation(false);
                    }
                    let terms = BatchTerms {
                        batch_time_ms: Some(c.batch_time_ms),
                        side_meta: c.side_meta,
                        expect: None,
                    };
                    sequence_batch(shared, st, items, terms)
                }
            };
            match applied {
                Ok(Ok(batch)) => {
                    let _ = c.written.send(Ok(st.frontier.size()));
                    Ok(batch)
                }
                Ok(Err(mismatch)) => {
                    tracing::error!(%mismatch, "a committed batch had terms to meet");
                    let _ = c.written.send(Err(SubmitError::Stopped));
                    return true;
                }
                Err(e) => {
                    let _ = c.written.send(Err(SubmitError::Storage(e.clone())));
                    Err(e)
                }
            }
        }
        Admitted::Import(w) => {
            let w = *w;
            *spec = None;
            let items = w
                .items
                .into_iter()
                .map(|env| Admitted::Verified(env, oneshot::channel().0))
                .collect();
            let terms = BatchTerms {
                batch_time_ms: Some(w.batch_time_ms),
                side_meta: Vec::new(),
                expect: Some(w.expect),
            };
            match sequence_batch(shared, st, items, terms) {
                Ok(Ok(batch)) => {
                    let _ = w.written.send(Ok(st.frontier.size()));
                    Ok(batch)
                }
                Ok(Err(mismatch)) => {
                    let _ = w
                        .written
                        .send(Err(crate::log::replication::ImportError::Differs(mismatch)));
                    return true;
                }
                Err(e) => {
                    let _ = w
                        .written
                        .send(Err(crate::log::replication::ImportError::Storage(
                            e.clone(),
                        )));
                    Err(e)
                }
            }
        }
        other => {
            refuse(other);
            return true;
        }
    };
    match outcome {
        Ok(batch) => {
            if let Err(refused) = release.send(batch) {
                refused.0.refuse();
                return false;
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "storage failed; the sequencer stops");
            false
        }
    }
}

/// Hands this node's admitted submissions to replication as one batch. The submitters' replies
/// wait in `Shared::proposals` under the batch's ticket until the batch is applied here
/// (`Log::apply_committed` finds them) or replication gives up on it (`Log::abandon`).
fn propose<M>(
    shared: &Shared<M>,
    st: &mut SequencerState,
    local: Vec<Admitted>,
) -> Option<Proposed> {
    use crate::log::replication::{BatchItem, ProposedBatch};
    let Some(tx) = shared.config.replicate.as_ref() else {
        local.into_iter().for_each(refuse);
        return None;
    };
    // Proposal times never go backwards on one proposer; every replica applies
    // `max(previous batch time, proposed time)`.
    let batch_time_ms = st.proposed_time_ms.max(crate::log::now_ms());
    st.proposed_time_ms = batch_time_ms;
    let mut wire = Vec::with_capacity(local.len());
    for item in &local {
        match item {
            Admitted::Verified(env, _) => wire.push(BatchItem::Signed(env.bytes().to_vec())),
            Admitted::Own(own, _) => wire.push(BatchItem::Own(own.clone())),
            Admitted::Group(members) => {
                for (env, _) in members {
                    wire.push(BatchItem::Signed(env.bytes().to_vec()));
                }
            }
            Admitted::Offlog(ops, _) => wire.push(BatchItem::Offlog(ops.clone())),
            Admitted::Barrier(_) | Admitted::Committed(_) | Admitted::Import(_) => {}
        }
    }
    let ticket = shared.next_ticket();
    shared.park(ticket, local);
    let batch = ProposedBatch {
        proposer: shared.instance,
        ticket,
        items: wire,
        batch_time_ms,
    };
    if tx.send(batch).is_err() {
        // Nobody replicates any more (the node is stopping).
        if let Some(items) = shared.unpark(ticket) {
            items.into_iter().for_each(refuse);
        }
        return None;
    }
    Some(Proposed {
        ticket,
        batch_time_ms,
    })
}

/// Takes a proposal out of flight when dropped (after its batch was applied or refused).
struct Applied<'a, M>(&'a Shared<M>, u64);

impl<M> Drop for Applied<'_, M> {
    fn drop(&mut self) {
        self.0.applied(self.1);
    }
}

/// A batch this node handed to replication.
struct Proposed {
    ticket: u64,
    batch_time_ms: u64,
}

/// This node's own batch, sequenced by the sequencer while Raft replicates it — time the
/// sequencer would otherwise spend waiting for the commit (`docs/replication.md` §2). Nothing
/// of it is signed or written, and no submitter hears of it, until the batch is committed and
/// comes back to be applied: then, if the tree and batch time are still those it was sequenced
/// against ([`Speculation::base`]), [`integrate`] writes it as [`sequence_batch`] would have
/// (the same function computed it, from the same state and items); otherwise it is dropped and
/// the batch is sequenced again.
pub(crate) struct Speculation {
    ticket: u64,
    /// The batch time proposed.
    batch_time_ms: u64,
    /// `(tree size, batch time)` it was sequenced against.
    base: (u64, u64),
    sequenced: Sequenced,
    /// Where its items' answers went, in their order.
    stand_ins: Vec<StandIn>,
}

/// Copies of the items of a batch about to be proposed, each answer going to a stand-in.
struct Shadow {
    items: Vec<Admitted>,
    stand_ins: Vec<StandIn>,
}

/// Where one item's answer went while it was sequenced speculatively (groups flattened).
enum StandIn {
    Reply(oneshot::Receiver<Result<Ack, SubmitError>>),
    Barrier,
    Done,
}

fn stand_in(stand_ins: &mut Vec<StandIn>) -> Reply {
    let (tx, rx) = oneshot::channel();
    stand_ins.push(StandIn::Reply(rx));
    tx
}

impl Shadow {
    fn of(items: &[Admitted]) -> Shadow {
        let mut copies = Vec::with_capacity(items.len());
        let mut stand_ins = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Admitted::Verified(env, _) => {
                    copies.push(Admitted::Verified(env.clone(), stand_in(&mut stand_ins)));
                }
                Admitted::Own(own, _) => {
                    copies.push(Admitted::Own(own.clone(), stand_in(&mut stand_ins)));
                }
                Admitted::Group(members) => {
                    let copy = members
                        .iter()
                        .map(|(env, _)| (env.clone(), stand_in(&mut stand_ins)))
                        .collect();
                    copies.push(Admitted::Group(copy));
                }
                Admitted::Barrier(_) => {
                    stand_ins.push(StandIn::Barrier);
                    copies.push(Admitted::Barrier(oneshot::channel().0));
                }
                Admitted::Offlog(ops, _) => {
                    stand_ins.push(StandIn::Done);
                    copies.push(Admitted::Offlog(ops.clone(), oneshot::channel().0));
                }
                // Never held for a proposal; `Speculation::adopt` refuses a batch holding one.
                Admitted::Committed(_) | Admitted::Import(_) => {}
            }
        }
        Shadow {
            items: copies,
            stand_ins,
        }
    }
}

/// Sequences `shadow` (the batch just proposed) against the written state without writing it.
fn speculate<M: crate::state::StateMachine>(
    shared: &Shared<M>,
    st: &SequencerState,
    proposed: Proposed,
    shadow: Shadow,
) -> Option<Speculation> {
    let terms = BatchTerms {
        batch_time_ms: Some(proposed.batch_time_ms),
        side_meta: Vec::new(),
        expect: None,
    };
    // A storage failure here fails the log, as it would when the batch is applied.
    match sequence_items(shared, st, shadow.items, &terms) {
        Ok(Ok(sequenced)) => Some(Speculation {
            ticket: proposed.ticket,
            batch_time_ms: proposed.batch_time_ms,
            base: (st.frontier.size(), st.batch_time_ms),
            sequenced,
            stand_ins: shadow.stand_ins,
        }),
        Ok(Err(_)) | Err(_) => None,
    }
}

impl Speculation {
    /// The speculation with the committed batch's own answers in place of its stand-ins: a
    /// refusal is passed on now, an acceptance waits for the release as usual. `Err(items)`
    /// (untouched) when `items` are not shaped as the ones it was made from.
    fn adopt(self, items: Vec<Admitted>) -> Result<Sequenced, Vec<Admitted>> {
        if !same_shape(&items, &self.stand_ins) {
            return Err(items);
        }
        let Speculation {
            mut sequenced,
            stand_ins,
            ..
        } = self;
        let mut stand_ins = stand_ins.into_iter();
        let mut waiting = Vec::with_capacity(sequenced.accepted.len());
        let mut barriers = Vec::new();
        let mut done = Vec::new();
        for item in items {
            match item {
                Admitted::Verified(_, reply) | Admitted::Own(_, reply) => {
                    pass_on(reply, stand_ins.next(), &mut waiting);
                }
                Admitted::Group(members) => {
                    for (_, reply) in members {
                        pass_on(reply, stand_ins.next(), &mut waiting);
                    }
                }
                Admitted::Barrier(tx) => {
                    stand_ins.next();
                    barriers.push(tx);
                }
                Admitted::Offlog(_, d) => {
                    stand_ins.next();
                    done.push(d);
                }
                other @ (Admitted::Committed(_) | Admitted::Import(_)) => refuse(other),
            }
        }
        // Every item the sequencing accepted kept its stand-in waiting, in order.
        if waiting.len() != sequenced.accepted.len() {
            tracing::error!(
                waiting = waiting.len(),
                accepted = sequenced.accepted.len(),
                "a speculation's answers do not line up"
            );
        }
        let mut waiting = waiting.into_iter();
        for a in &mut sequenced.accepted {
            match waiting.next() {
                Some(reply) => a.reply = reply,
                None => break,
            }
        }
        for reply in waiting {
            let _ = reply.send(Err(SubmitError::Stopped));
        }
        sequenced.barriers = barriers;
        sequenced.done = done;
        Ok(sequenced)
    }
}

/// Whether `items` flatten to the stand-ins' kinds, in order.
fn same_shape(items: &[Admitted], stand_ins: &[StandIn]) -> bool {
    let mut kinds = Vec::with_capacity(stand_ins.len());
    for item in items {
        match item {
            Admitted::Verified(..) | Admitted::Own(..) => kinds.push(0u8),
            Admitted::Group(members) => kinds.extend(members.iter().map(|_| 0u8)),
            Admitted::Barrier(_) => kinds.push(1),
            Admitted::Offlog(..) => kinds.push(2),
            Admitted::Committed(_) | Admitted::Import(_) => return false,
        }
    }
    kinds.len() == stand_ins.len()
        && kinds.iter().zip(stand_ins).all(|(k, s)| {
            matches!(
                (k, s),
                (0, StandIn::Reply(_)) | (1, StandIn::Barrier) | (2, StandIn::Done)
            )
        })
}

/// Gives `reply` what its stand-in was told while sequencing (a refusal), or keeps it for an
/// accepted entry's release when its stand-in is still waiting.
fn pass_on(reply: Reply, stand_in: Option<StandIn>, waiting: &mut Vec<Reply>) {
    match stand_in {
        Some(StandIn::Reply(mut rx)) => match rx.try_recv() {
            Ok(answer) => {
                let _ = reply.send(answer);
            }
            Err(oneshot::error::TryRecvError::Empty) => waiting.push(reply),
            Err(oneshot::error::TryRecvError::Closed) => {
                let _ = reply.send(Err(SubmitError::Stopped));
            }
        },
        _ => {
            let _ = reply.send(Err(SubmitError::Stopped));
        }
    }
}

/// What a batch must be applied under, beyond its items.
#[derive(Default)]
pub(crate) struct BatchTerms {
    /// The batch time replication decided (`None`: this node's clock, single-node mode).
    batch_time_ms: Option<u64>,
    /// Side-meta values written with the batch.
    side_meta: Vec<(Vec<u8>, Vec<u8>)>,
    /// Imports only: the exact entries the batch must produce, or nothing is written.
    expect: Option<Vec<Vec<u8>>>,
}

/// Refuses `first` and everything still queued.
fn refuse_all(first: Admitted, rx: &Receiver<Admitted>) {
    refuse(first);
    drain(rx);
}

/// Refuses everything still queued (barriers are released by dropping them: their waiters see
/// `Stopped`).
fn drain(rx: &Receiver<Admitted>) {
    while let Ok(a) = rx.try_recv() {
        refuse(a);
    }
}

fn refuse(a: Admitted) {
    match a {
        Admitted::Verified(_, reply) | Admitted::Own(_, reply) => {
            let _ = reply.send(Err(SubmitError::Stopped));
        }
        Admitted::Group(members) => {
            for (_, reply) in members {
                let _ = reply.send(Err(SubmitError::Stopped));
            }
        }
        Admitted::Barrier(_) => {}
        Admitted::Committed(c) => {
            let _ = c.written.send(Err(SubmitError::Stopped));
        }
        Admitted::Import(w) => {
            let _ = w
                .written
                .send(Err(crate::log::replication::ImportError::Stopped));
        }
        Admitted::Offlog(_, done) => {
            let _ = done.send(Err(SubmitError::Stopped));
        }
    }
}

/// Refuses a parked proposal's submitters with `why`.
pub(crate) fn refuse_with(a: Admitted, why: &SubmitError) {
    match a {
        Admitted::Verified(_, reply) | Admitted::Own(_, reply) => {
            let _ = reply.send(Err(why.clone()));
        }
        Admitted::Group(members) => {
            for (_, reply) in members {
                let _ = reply.send(Err(why.clone()));
            }
        }
        Admitted::Offlog(_, done) => {
            let _ = done.send(Err(why.clone()));
        }
        other => refuse(other),
    }
}

struct Accepted {
    reply: oneshot::Sender<Result<Ack, SubmitError>>,
    index: u64,
    leaf_hash: Hash,
    entry_id: Hash,
    duplicate: bool,
}

/// Sequences one batch and writes it (steps 3–4): [`sequence_items`], then [`integrate`].
/// `Ok(Err(why))`: an import's batch did not reproduce its entries; nothing was written.
fn sequence_batch<M: crate::state::StateMachine>(
    shared: &Shared<M>,
    st: &mut SequencerState,
    items: Vec<Admitted>,
    terms: BatchTerms,
) -> Result<Result<Release, String>, StoreError> {
    match sequence_items(shared, st, items, &terms)? {
        Ok(sequenced) => integrate(shared, st, sequenced, terms.side_meta).map(Ok),
        Err(why) => Ok(Err(why)),
    }
}

/// A batch sequenced against the written state, not yet signed or written: what
/// [`sequence_items`] computes and [`integrate`] makes real. Holding one changes nothing.
pub(crate) struct Sequenced {
    batch_time_ms: u64,
    /// The tree after the batch.
    next: Frontier,
    /// The tree's edge before it (proof nodes for the receipts).
    old_peaks: Vec<(NodeId, Hash)>,
    /// State changes.
    overlay: Overlay,
    /// Entries (the closing `log.state` last), tree nodes and state-tree nodes.
    write: BatchWrite,
    accepted: Vec<Accepted>,
    barriers: Vec<oneshot::Sender<()>>,
    done: Vec<Done>,
    offlog: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    shred: Vec<Vec<u8>>,
}

/// Step 3: sequences `items` in arrival order against the written state and `st`, which it
/// does not change; refusals are answered at once, and the rest is returned to be integrated.
fn sequence_items<M: crate::state::StateMachine>(
    shared: &Shared<M>,
    st: &SequencerState,
    items: Vec<Admitted>,
    terms: &BatchTerms,
) -> Result<Result<Sequenced, String>, StoreError> {
    let store = &*shared.store;
    // Record a storage failure *before* `?` drops any waiting reply, so a submitter that sees
    // `Stopped` always finds the cause in `Log::failure`.
    let failed = |e: StoreError| -> StoreError {
        shared.fail(e.clone());
        e
    };
    let batch_time_ms = st
        .batch_time_ms
        .max(terms.batch_time_ms.unwrap_or_else(crate::log::now_ms));
    // Work on a copy of the tree's edge: memory moves forward only once the batch is durable.
    let mut next = st.frontier.clone();
    let old_peaks: Vec<(NodeId, Hash)> = st.frontier.peaks().to_vec();
    let mut overlay = Overlay::new();
    let mut write = BatchWrite::default();
    let mut in_batch: HashMap<Hash, (u64, Hash)> = HashMap::new();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(items.len());

    // Step 3 — sequencing, in arrival order, against committed state plus this batch so far.
    let mut barriers = Vec::new();
    let mut done = Vec::new();
    let mut offlog: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut shred: Vec<Vec<u8>> = Vec::new();
    // A group's entries take their places one after the other, in the group's order.
    let items = items.into_iter().flat_map(|a| match a {
        Admitted::Group(members) => members
            .into_iter()
            .map(|(env, reply)| Admitted::Verified(env, reply))
            .collect(),
        other => vec![other],
    });
    for item in items {
        let (env, reply) = match item {
            Admitted::Verified(env, reply) => (env, reply),
            Admitted::Barrier(tx) => {
                barriers.push(tx);
                continue;
            }
            // Off-log writes go into the batch's own write, after its entries; shreds
            // rewrite storage once it is written.
            Admitted::Offlog(ops, d) => {
                for op in ops {
                    match op {
                        OfflogOp::Put { key, value } => offlog.push((key, Some(value))),
                        OfflogOp::Delete { key } => offlog.push((key, None)),
                        OfflogOp::Shred { keys } => {
                            offlog.extend(keys.iter().map(|k| (k.clone(), None)));
                            shred.extend(keys);
                        }
                    }
                }
                done.push(d);
                continue;
            }
            // Flattened above; a group inside a group does not exist, and committed batches
            // and imports are batches of their own.
            other @ (Admitted::Group(_) | Admitted::Committed(_) | Admitted::Import(_)) => {
                refuse(other);
                continue;
            }
            Admitted::Own(own, reply) => {
                let node = shared.node_key.verifying_key().to_bytes();
                let seq = last_seq(store, &overlay, &node).map_err(failed)? + 1;
                let signed = crate::entry::Body {
                    coop: shared.signer.name().to_owned(),
                    kind: own.kind,
                    version: own.version,
                    signer: node,
                    seq,
                    ts: batch_time_ms,
                    payload: own.payload,
                }
                .sign(&shared.node_key);
                match signed {
                    Ok(env) => (Verified::signed_here(env), reply),
                    Err(r) => {
                        let _ = reply.send(Err(SubmitError::Rejected(r)));
                        continue;
                    }
                }
            }
        };
        let entry_id = env.entry_id();
        // The same body again (from the log or from this batch): the same receipt.
        let known = match in_batch.get(&entry_id) {
            Some(&(index, leaf)) => Some((index, leaf)),
            None => match store.index_of_entry_id(&entry_id).map_err(failed)? {
                Some(index) => {
                    let leaf = store.nodes(&[NodeId { level: 0, index }]).map_err(failed)?;
                    leaf.first().map(|l| (index, *l))
                }
                None => None,
            },
        };
        if let Some((index, leaf_hash)) = known {
            accepted.push(Accepted {
                reply,
                index,
                leaf_hash,
                entry_id,
                duplicate: true,
            });
            continue;
        }
        let signer = env.body().signer;
        let last = last_seq(store, &overlay, &signer).map_err(failed)?;
        if env.body().seq <= last {
            let _ = reply.send(Err(SubmitError::Rejected(Rejection::Replay {
                last,
                got: env.body().seq,
            })));
            continue;
        }
        let ctx = ApplyContext {
            index: next.size(),
            batch_time_ms,
        };
        let mut view = StateView::new(store, &overlay);
        match shared.machine.apply(&mut view, &env, &ctx) {
            Ok(()) => {
                let writes = view.into_writes();
                overlay.extend(writes);
                overlay.insert(
                    seq_key(&signer),
                    Some(env.body().seq.to_be_bytes().to_vec()),
                );
            }
            Err(ApplyError::Rejected(r)) => {
                let _ = reply.send(Err(SubmitError::Rejected(r)));
                continue;
            }
            Err(ApplyError::Storage(e)) => return Err(failed(e)),
        }
        let index = next.size();
        let leaf_hash = env.leaf_hash();
        next.push(leaf_hash, &mut write.nodes);
        write
            .entries
            .push((index, env.bytes().to_vec(), leaf_hash, entry_id));
        in_batch.insert(entry_id, (index, leaf_hash));
        accepted.push(Accepted {
            reply,
            index,
            leaf_hash,
            entry_id,
            duplicate: false,
        });
    }

    if !write.entries.is_empty() {
        // Step 3b — state commitment: the batch's state changes go into the state tree, and the
        // batch closes with the node's `log.state` entry recording the new root and the batch
        // time. Every checkpoint therefore ends on a commitment to the state it covers.
        let changes = smt::changes_of(overlay.iter());
        let (state_root, smt_writes) =
            smt::update(&st.smt_cache.over(store), &changes).map_err(failed)?;
        let commitment = StateCommitment {
            size: next.size(),
            root: state_root,
            batch_time_ms,
        };
        let env = commitment
            .to_entry(shared.signer.name(), &shared.node_key)
            .map_err(|e| failed(StoreError::Corrupt(format!("cannot sign log.state: {e}"))))?;
        let leaf_hash = env.leaf_hash();
        write
            .entries
            .push((next.size(), env.bytes().to_vec(), leaf_hash, env.entry_id()));
        next.push(leaf_hash, &mut write.nodes);
        write.smt = smt_writes;
    }
    if let Some(expect) = &terms.expect {
        if let Some(why) = differs(expect, &write.entries) {
            return Ok(Err(why));
        }
    }
    Ok(Ok(Sequenced {
        batch_time_ms,
        next,
        old_peaks,
        overlay,
        write,
        accepted,
        barriers,
        done,
        offlog,
        shred,
    }))
}

/// Step 4: signs the sequenced batch's checkpoint and writes it with `side_meta` (unsynced;
/// the release thread makes it durable), then moves `st` forward.
fn integrate<M: crate::state::StateMachine>(
    shared: &Shared<M>,
    st: &mut SequencerState,
    sequenced: Sequenced,
    mut side_meta: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Release, StoreError> {
    let Sequenced {
        batch_time_ms,
        next,
        old_peaks,
        overlay,
        mut write,
        accepted,
        barriers,
        done,
        mut offlog,
        shred,
    } = sequenced;
    let store = &*shared.store;
    let failed = |e: StoreError| -> StoreError {
        shared.fail(e.clone());
        e
    };
    let mut signed_now = None;
    if !write.entries.is_empty() {
        // Step 4 — checkpoint and integration: sign the new tree's checkpoint (in memory; no
        // one sees it before step 6), then one WriteBatch with entries, nodes, indexes, state,
        // state tree, the new size and that note, written with sync=true. Until it returns,
        // nothing of this batch exists.
        let signed = shared
            .sign_checkpoint(&st.frontier, &st.signed, &next)
            .map_err(failed)?;
        if let Err(e) = shared.fault(FaultPoint::BeforeCommit) {
            st.smt_cache.clear();
            return Err(failed(e));
        }
        // Queries see the released checkpoint's state: before the write, hold back what this
        // batch's state writes replace, until its checkpoint is released (`Shared::release`).
        let keys: Vec<&[u8]> = overlay
            .keys()
            .filter(|k| k.first() == Some(&NS_APP))
            .map(Vec::as_slice)
            .collect();
        let replaced = store.state_values(&keys).map_err(failed)?;
        shared.hold_back(
            next.size(),
            keys.iter()
                .map(|k| k.to_vec())
                .zip(replaced)
                .collect::<Overlay>(),
        );
        write.state = overlay;
        write.new_size = next.size();
        write.batch_time_ms = batch_time_ms;
        write.checkpoint = Some(signed.note.clone());
        write.side_meta = std::mem::take(&mut side_meta);
        write.offlog = std::mem::take(&mut offlog);
        if let Err(e) = store.write_unsynced(&write) {
            st.smt_cache.clear();
            return Err(failed(e));
        }
        shared.metrics.batch(write.entries.len().saturating_sub(1));
        shared.metrics.durable(next.size());
        st.smt_cache.committed(&write.smt);
        st.frontier = next;
        st.signed = signed.checkpoint.clone();
        st.batch_time_ms = batch_time_ms;
        shared.fault(FaultPoint::AfterCommit).map_err(failed)?;
        signed_now = Some(Arc::new(signed));
    }
    if write.entries.is_empty() && (!side_meta.is_empty() || !offlog.is_empty()) {
        // A replicated batch that added no entry still records how far replication applied,
        // and its off-log writes.
        let side = BatchWrite {
            side_meta,
            offlog,
            ..BatchWrite::default()
        };
        store.write_unsynced(&side).map_err(failed)?;
    }
    if !shred.is_empty() {
        // Deleted in the write above; now rewrite storage so their bytes are in no file.
        store.offlog_shred(&shred).map_err(failed)?;
    }

    // Steps 5–6 happen on the release thread. A receipt's proof nodes are the old right edge
    // plus the nodes this batch completed (a left sibling outside the batch is always an old
    // peak), handed over so receipts read nothing.
    let batch_nodes: Arc<HashMap<NodeId, Hash>> = Arc::new(
        old_peaks
            .iter()
            .chain(write.nodes.iter())
            .copied()
            .collect(),
    );
    Ok(Release {
        signed: signed_now,
        accepted,
        batch_nodes,
        barriers,
        done,
    })
}

/// Why an imported batch's entries are not the ones it had to reproduce (`None`: they are).
fn differs(expect: &[Vec<u8>], got: &[(u64, Vec<u8>, Hash, Hash)]) -> Option<String> {
    if expect.len() != got.len() {
        return Some(format!(
            "the batch produced {} entries where the history has {}",
            got.len(),
            expect.len()
        ));
    }
    expect
        .iter()
        .zip(got)
        .find(|(e, g)| e.as_slice() != g.1.as_slice())
        .map(|(_, g)| format!("entry {} differs from the history's", g.0))
}
