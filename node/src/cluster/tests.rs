//! The Raft log store and the ledger's state machine against openraft's own storage
//! conformance suite (each case on a fresh ledger folder), and the log's durability across a
//! close and reopen of the database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use super::log_store::LogStore;
use super::state_machine::LedgerMachine;
use super::Cluster;
use coopledger_ledger::log::LogConfig;
use coopledger_ledger::side_log::SideLog;
use coopledger_ledger::store::Store;
use coopledger_ledger::{
    ApplyContext, ApplyError, Envelope, Log, StateMachine, StateView, Verified,
};
use openraft::storage::RaftLogStorage;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader, StorageError, Vote};
use std::sync::Arc;

/// Rules for these tests: accepts `test.note` v1 and counts notes.
pub(super) struct Notes;

impl StateMachine for Notes {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        kind == "test.note" && version == 1
    }
    fn apply(
        &self,
        state: &mut StateView<'_>,
        _: &Verified<Envelope>,
        _: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let n = state
            .get(b"count")?
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        state.put(b"count", (n + 1).to_be_bytes().to_vec());
        Ok(())
    }
}

/// A fresh replicated ledger in `dir` (its proposals go nowhere: the suite drives the storage
/// traits directly).
fn ledger(dir: &std::path::Path) -> Arc<Log<Notes>> {
    ledger_with(dir, None)
}

/// [`ledger`], with `hook` called at its fault points.
fn ledger_with(
    dir: &std::path::Path,
    hook: Option<coopledger_ledger::log::FaultHook>,
) -> Arc<Log<Notes>> {
    Arc::new(
        Log::create(
            &dir.join("ledger"),
            ORIGIN,
            node_key(),
            Notes,
            replicated(hook),
        )
        .unwrap(),
    )
}

const ORIGIN: &str = "suite.example/log";

fn node_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9; 32])
}

fn replicated(hook: Option<coopledger_ledger::log::FaultHook>) -> LogConfig {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    LogConfig {
        replicate: Some(tx),
        fault_hook: hook,
        ..LogConfig::default()
    }
}

struct OnDisk;

impl StoreBuilder<Cluster, LogStore, LedgerMachine<Notes>, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, LedgerMachine<Notes>), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let log = ledger(dir.path());
        let store = LogStore::open(&dir.path().join("raft-log"), log.shared_store()).unwrap();
        let machine = LedgerMachine::new(log, dir.path().join("snapshots")).unwrap();
        Ok((dir, store, machine))
    }
}

#[test]
fn the_log_store_passes_openrafts_storage_suite() {
    Suite::test_all(OnDisk).unwrap();
}

fn entry(term: u64, index: u64) -> Entry<Cluster> {
    Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Blank,
    }
}

/// What `append` acknowledged, the vote and the purge point are there after the database is
/// closed and opened again; truncating and purging leave no hole.
#[tokio::test]
async fn the_log_vote_and_purge_point_survive_a_reopen_without_holes() {
    use openraft::storage::RaftLogStorageExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let raft = dir.path().join("raft-log");
    {
        let ledger = Arc::new(Store::create(&path, "o", "k").unwrap());
        let mut log = LogStore::open(&raft, ledger).unwrap();
        log.blocking_append((1..=10).map(|i| entry(1, i)))
            .await
            .unwrap();
        log.save_vote(&Vote::new(2, 1)).await.unwrap();
        log.truncate(LogId::new(openraft::CommittedLeaderId::new(1, 1), 8))
            .await
            .unwrap();
        log.purge(LogId::new(openraft::CommittedLeaderId::new(1, 1), 3))
            .await
            .unwrap();
    }
    let mut log = LogStore::open(&raft, Arc::new(Store::open(&path).unwrap())).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(3));
    assert_eq!(state.last_log_id.map(|l| l.index), Some(7));
    let got: Vec<u64> = log
        .try_get_log_entries(0..100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(got, vec![4, 5, 6, 7]);
}

/// The entries kept in memory answer every read exactly as the database does, through
/// appends, truncations, purges and the oldest ones being dropped for room.
#[tokio::test]
async fn the_entries_kept_in_memory_read_as_the_database_does() {
    use openraft::storage::RaftLogStorageExt;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Store::create(&dir.path().join("ledger"), "o", "k").unwrap());
    let side = Arc::new(SideLog::open(&dir.path().join("raft-log")).unwrap());
    // Room for about six blank entries, so the oldest are dropped as the log grows.
    let one = serde_json::to_vec(&entry(1, 1)).unwrap().len();
    let mut kept = LogStore::keeping(side, ledger, one * 6);
    let id = |term, index| LogId::new(openraft::CommittedLeaderId::new(term, 1), index);
    let same = |kept: LogStore| async move {
        let mut kept = kept;
        let (side, ledger) = kept.stores_for_tests();
        let mut fresh = LogStore::keeping(side, ledger, 0);
        for from in 0..25 {
            for to in [from, from + 1, from + 3, 30, u64::MAX] {
                let a = kept.try_get_log_entries(from..to).await.unwrap();
                let b = fresh.try_get_log_entries(from..to).await.unwrap();
                assert_eq!(a, b, "entries {from}..{to}");
            }
        }
        assert_eq!(
            kept.get_log_state().await.unwrap(),
            fresh.get_log_state().await.unwrap()
        );
    };
    kept.blocking_append((1..=10).map(|i| entry(1, i)))
        .await
        .unwrap();
    same(kept.clone()).await;
    kept.truncate(id(1, 8)).await.unwrap();
    same(kept.clone()).await;
    kept.blocking_append((8..=20).map(|i| entry(2, i)))
        .await
        .unwrap();
    same(kept.clone()).await;
    kept.purge(id(2, 17)).await.unwrap();
    same(kept.clone()).await;
    kept.truncate(id(2, 18)).await.unwrap();
    kept.blocking_append((18..=19).map(|i| entry(3, i)))
        .await
        .unwrap();
    same(kept.clone()).await;
    let last = kept.try_get_log_entries(19..20).await.unwrap();
    assert_eq!(last[0].log_id, id(3, 19));
}

/// A Raft log a build before session 25 kept in the ledger's own side families is moved to its
/// own database when the replica opens: every entry, the vote, the commit mark and the purge
/// point, and afterwards the ledger holds none of it in any file. A crash after the copy but
/// before the ledger was cleared (simulated by writing the old layout again over a moved one)
/// moves nothing twice and loses nothing.
#[tokio::test]
async fn a_raft_log_kept_in_the_ledger_moves_to_its_own_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let raft = dir.path().join("raft-log");
    let marker = "an-erased-members-record-in-a-raft-entry";
    let old_entry = |i: u64| {
        let mut e = entry(3, i);
        if i == 5 {
            e.payload = EntryPayload::Normal(super::Command::Batch(super::BatchCommand {
                proposer: 0,
                ticket: 0,
                items: vec![super::Item::Signed(marker.to_owned())],
                batch_time_ms: 0,
            }));
        }
        (i, serde_json::to_vec(&e).unwrap())
    };
    let write_old_layout = |store: &Store| {
        store
            .side_append(&(4..=2100).map(old_entry).collect::<Vec<_>>())
            .unwrap();
        store
            .side_meta_put(b"raft/vote", &serde_json::to_vec(&Vote::new(3, 2)).unwrap())
            .unwrap();
        let purged = LogId::new(openraft::CommittedLeaderId::new(2, 1), 3);
        store
            .side_meta_put(b"raft/purged", &serde_json::to_vec(&purged).unwrap())
            .unwrap();
        let committed = Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 2000));
        store
            .side_meta_put(b"raft/committed", &serde_json::to_vec(&committed).unwrap())
            .unwrap();
        // Left where they are: they belong to the ledger's batches.
        store.side_meta_put(b"raft/applied", b"\"kept\"").unwrap();
    };
    let raft = raft.as_path();
    let check = |ledger: Arc<Store>| async move {
        let mut log = LogStore::open(raft, ledger.clone()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(
            log.read_committed().await.unwrap().map(|l| l.index),
            Some(2000)
        );
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(3));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(2100));
        let got = log.try_get_log_entries(0..u64::MAX).await.unwrap();
        assert_eq!(got.len(), 2097);
        for (i, e) in (4..).zip(&got) {
            assert_eq!(serde_json::to_vec(e).unwrap(), old_entry(i).1, "entry {i}");
        }
        assert_eq!(ledger.side_bounds().unwrap(), None);
        for key in [&b"raft/vote"[..], b"raft/committed", b"raft/purged"] {
            assert_eq!(ledger.side_meta_get(key).unwrap(), None);
        }
        assert_eq!(
            ledger.side_meta_get(b"raft/applied").unwrap(),
            Some(b"\"kept\"".to_vec())
        );
    };
    let ledger = Arc::new(Store::create(&path, "o", "k").unwrap());
    write_old_layout(&ledger);
    check(ledger.clone()).await;
    // The ledger's files no longer hold the moved entries.
    let in_ledger_files = || {
        std::fs::read_dir(&path).unwrap().any(|f| {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
        })
    };
    assert!(
        !in_ledger_files(),
        "a moved entry is still in a ledger file"
    );
    // Interrupted after the move was marked, before the ledger was cleared.
    write_old_layout(&ledger);
    check(ledger.clone()).await;
    drop(ledger);
    // And again after a reopen of both, with nothing left to move.
    check(Arc::new(Store::open(&path).unwrap())).await;
}

/// A signed note for these tests' co-op.
fn note_entry(key: &ed25519_dalek::SigningKey, seq: u64) -> coopledger_ledger::Envelope {
    let mut payload = serde_json::Map::new();
    payload.insert("n".into(), seq.into());
    coopledger_ledger::Body {
        coop: ORIGIN.into(),
        kind: "test.note".into(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts: coopledger_ledger::log::now_ms(),
        payload,
    }
    .sign(key)
    .unwrap()
}

/// Applies `n` batches of one note each to `machine` as committed Raft entries 1..=n.
async fn apply_notes(machine: &mut LedgerMachine<Notes>, n: u64) {
    use openraft::storage::RaftStateMachine;
    machine.apply(note_batches(1..=n)).await.unwrap();
}

/// Raft entries at `indexes` (term 1), each a batch of one note of one member, whose note
/// numbers are the entries' indexes.
fn note_batches(indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry<Cluster>> {
    let member = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    indexes
        .map(|i| Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(super::Command::Batch(super::BatchCommand {
                proposer: 0,
                ticket: 0,
                items: vec![super::Item::Signed(coopledger_ledger::codec::b64_encode(
                    note_entry(&member, i).bytes(),
                ))],
                batch_time_ms: coopledger_ledger::log::now_ms(),
            })),
        })
        .collect()
}

/// Installs `data` on `machine` as a received snapshot with `meta`.
async fn install(
    machine: &mut LedgerMachine<Notes>,
    dir: &std::path::Path,
    meta: &openraft::SnapshotMeta<u64, super::ReplicaAddr>,
    data: Vec<u8>,
) -> Result<(), StorageError<u64>> {
    use openraft::storage::RaftStateMachine;
    let path = dir.join(format!("test-{}.snap", rand::random::<u64>()));
    std::fs::write(&path, data).unwrap();
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await
        .unwrap();
    machine.install_snapshot(meta, Box::new(file)).await
}

/// A snapshot is checked before anything of it is applied: a flipped byte in an entry, a
/// wrong header or a foreign file is refused and the receiving ledger is unchanged; the real
/// snapshot installs the same tree, state and note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use tokio::io::AsyncReadExt;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ledger(da.path());
    let mut ma = LedgerMachine::new(a.clone(), da.path().join("snapshots")).unwrap();
    apply_notes(&mut ma, 5).await;
    let mut snap = ma
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = Vec::new();
    snap.snapshot.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(a.checkpoint().checkpoint.size, 10);

    let b = ledger(db.path());
    let mut mb = LedgerMachine::new(b.clone(), db.path().join("snapshots")).unwrap();
    let dir = db.path().join("snapshots");
    let meta = snap.meta.clone();
    // A byte flipped inside the last entry (its JSON still parses or not: either way refused).
    let mut flipped = bytes.clone();
    let at = bytes.windows(4).rposition(|w| w == b"\"n\":").unwrap() + 4;
    flipped[at] ^= 0x01;
    assert!(install(&mut mb, &dir, &meta, flipped).await.is_err());
    // Not a snapshot at all.
    assert!(install(&mut mb, &dir, &meta, b"hello".to_vec())
        .await
        .is_err());
    // A record that claims to be larger than any allowed.
    let mut huge = bytes[..27].to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(install(&mut mb, &dir, &meta, huge).await.is_err());
    assert_eq!(b.written_size().unwrap(), 0);
    assert_eq!(b.state_get(b"count").unwrap(), None);

    // The real one.
    install(&mut mb, &dir, &meta, bytes).await.unwrap();
    for _ in 0..200 {
        if b.checkpoint().checkpoint.size == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(b.checkpoint().note, a.checkpoint().note);
    assert_eq!(
        b.state_get(b"count").unwrap(),
        a.state_get(b"count").unwrap()
    );
    assert_eq!(
        mb.applied_state().await.unwrap().0,
        ma.applied_state().await.unwrap().0
    );
}

/// A purge takes away Raft entries that could give back batches the ledger has written but not
/// synced (a replica's recorder syncs behind the release, `docs/replication.md` §2, "One fsync
/// a round"), so it syncs the ledger first. The power cut here is exact: the ledger as its
/// newest sync left it (copied from inside every sync, through the fault hook), beside the Raft
/// log as written (each of its writes is synced). Opened after the cut, the ledger holds every
/// batch the purged entries carried, and signs the checkpoint it had released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_after_a_purge_loses_no_batch_the_purged_entries_carried() {
    use coopledger_ledger::FaultPoint;
    use openraft::storage::{RaftLogStorageExt, RaftStateMachine};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, Weak};

    let dir = tempfile::tempdir().unwrap();
    let cut = tempfile::tempdir().unwrap();
    let durable = cut.path().join("ledger");
    let live: Arc<Mutex<Weak<Log<Notes>>>> = Arc::default();
    let powered = Arc::new(AtomicBool::new(true));
    let hook: coopledger_ledger::log::FaultHook = {
        let (live, durable, powered) = (live.clone(), durable.clone(), powered.clone());
        Arc::new(move |p| {
            if p != FaultPoint::Synced || !powered.load(Ordering::SeqCst) {
                return Ok(());
            }
            // One copy at a time: the recorder and the purge both sync.
            let held = live.lock().unwrap();
            if let Some(log) = held.upgrade() {
                let _ = std::fs::remove_dir_all(&durable);
                log.backup(&durable)?;
            }
            Ok(())
        })
    };
    let log = ledger_with(dir.path(), Some(hook));
    *live.lock().unwrap() = Arc::downgrade(&log);
    let mut raft = LogStore::open(&dir.path().join("raft-log"), log.shared_store()).unwrap();
    let mut machine = LedgerMachine::new(log.clone(), dir.path().join("snapshots")).unwrap();

    // Raft appends, commits and applies 5 batches; behind them the recorder syncs the ledger
    // and records their checkpoints.
    let first = note_batches(1..=5);
    raft.blocking_append(first.clone()).await.unwrap();
    machine.apply(first).await.unwrap();
    for _ in 0..300 {
        if log.metrics().recorded_size() == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(log.metrics().recorded_size(), 10);
    // 15 more, then all 20 purged (as after a snapshot) at once: the recorder, which syncs at
    // most every 100 ms, has not synced these yet; only the purge's own sync can.
    let batches = note_batches(6..=20);
    let last = batches.last().unwrap().log_id;
    raft.blocking_append(batches.clone()).await.unwrap();
    machine.apply(batches).await.unwrap();
    raft.purge(last).await.unwrap();
    let released = log.checkpoint();
    assert_eq!(released.checkpoint.size, 40);

    // The cut: nothing after this reaches the disk (closing syncs again; that sync is not
    // copied).
    powered.store(false, Ordering::SeqCst);
    *live.lock().unwrap() = Weak::new();
    drop(machine);
    drop(raft);
    drop(log);

    let reopened = Arc::new(Log::open(&durable, node_key(), Notes, replicated(None)).unwrap());
    let mut machine = LedgerMachine::new(reopened.clone(), cut.path().join("snapshots")).unwrap();
    let mut raft = LogStore::open(&dir.path().join("raft-log"), reopened.shared_store()).unwrap();
    let state = raft.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(last));
    assert_eq!(state.last_log_id, Some(last));
    // Nothing is left in the Raft log to give back, and nothing needs to be: every batch up to
    // the purge point is in the ledger, with its applied mark.
    assert_eq!(
        machine.applied_state().await.unwrap().0,
        Some(last),
        "the cut took batches whose Raft entries the purge had deleted"
    );
    assert_eq!(reopened.written_size().unwrap(), 40);
    assert_eq!(
        reopened.state_get(b"count").unwrap(),
        Some(20u64.to_be_bytes().to_vec())
    );
    assert_eq!(reopened.checkpoint().note, released.note);
}
