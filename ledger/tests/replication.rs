//! The log's replication contract (`docs/replication.md` §1): logs that apply the same committed
//! batches in the same order reach byte-identical entries, trees, state and checkpoint notes;
//! a proposer answers its submitters only once its batch is applied; an abandoned proposal is
//! refused, not lost; history imported from another replica is re-applied and refused unless it
//! reproduces exactly. The ordering protocol itself (Raft) is the node's and tested there; here
//! a test driver commits every proposal in arrival order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_ledger::log::replication::{CommittedBatch, ImportError, ProposedBatch};
use coopledger_ledger::log::{now_ms, LogConfig};
use coopledger_ledger::{Body, Envelope, Log, OwnEntry, Rejection, SubmitError};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

mod common;
use common::Notes;

const ORIGIN: &str = "replication.example/log";

fn note(key: &SigningKey, seq: u64, extra: serde_json::Value) -> Envelope {
    let mut payload = serde_json::Map::new();
    payload.insert("n".into(), seq.into());
    if let serde_json::Value::Object(m) = extra {
        payload.extend(m);
    }
    Body {
        coop: ORIGIN.into(),
        kind: "test.note".into(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts: now_ms(),
        payload,
    }
    .sign(key)
    .unwrap()
}

fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// Rules that refuse every note: the same history does not reproduce under them.
struct RefuseAll;

impl coopledger_ledger::StateMachine for RefuseAll {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        kind == "test.note" && version == 1
    }
    fn apply(
        &self,
        _: &mut coopledger_ledger::StateView<'_>,
        _: &coopledger_ledger::Verified<Envelope>,
        _: &coopledger_ledger::ApplyContext,
    ) -> Result<(), coopledger_ledger::ApplyError> {
        Err(Rejection::Rule {
            rule: "test.refuse-all".into(),
            message: "refused".into(),
        }
        .into())
    }
}

/// A replicated log in `dir` and the receiving end of its proposals.
fn replica(dir: &std::path::Path) -> (Arc<Log<Notes>>, mpsc::UnboundedReceiver<ProposedBatch>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = LogConfig {
        replicate: Some(tx),
        ..LogConfig::default()
    };
    let log = Log::create(dir, ORIGIN, node_key(), Notes, config).unwrap();
    (Arc::new(log), rx)
}

/// Applies `batch` as committed at position `n` on every log, in order, and waits until each
/// has written it.
async fn commit(logs: &[&Log<Notes>], batch: &ProposedBatch, n: u64) {
    for log in logs {
        let written = log
            .apply_committed(CommittedBatch {
                batch: batch.clone(),
                side_meta: vec![(b"test/applied".to_vec(), n.to_be_bytes().to_vec())],
            })
            .await
            .unwrap();
        written.await.unwrap().unwrap();
    }
}

/// Waits until `log` has released a checkpoint of `size`.
async fn released(log: &Log<Notes>, size: u64) {
    for _ in 0..3000 {
        if log.checkpoint().checkpoint.size >= size {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("size {size} never released");
}

/// `receipt`'s inclusion proof verifies for the entry `log` holds at its index.
fn included(log: &Log<Notes>, receipt: &coopledger_ledger::Receipt) {
    let leaf = coopledger_ledger::hash::leaf_hash(&log.entry(receipt.index).unwrap());
    coopledger_ledger::verify::verify_inclusion(
        &leaf,
        receipt.index,
        receipt.checkpoint.checkpoint.size,
        &receipt.inclusion_proof,
        &receipt.checkpoint.checkpoint.root,
    )
    .unwrap();
}

fn entries(log: &Log<Notes>) -> Vec<Vec<u8>> {
    let size = log.checkpoint().checkpoint.size;
    (0..size).map(|i| log.entry(i).unwrap()).collect()
}

#[tokio::test]
async fn replicas_applying_the_same_batches_sign_the_same_notes_over_the_same_entries() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut proposals) = replica(da.path());
    let (b, _unused) = replica(db.path());
    let alice = SigningKey::from_bytes(&[1; 32]);
    let bob = SigningKey::from_bytes(&[2; 32]);

    // Submissions on A: nothing is applied until the driver commits A's proposals.
    let sub = {
        let a = a.clone();
        let (alice, bob) = (alice.clone(), bob.clone());
        tokio::spawn(async move {
            let first = a.submit(note(&alice, 1, serde_json::json!({}))).await;
            let refused = a
                .submit(note(&bob, 1, serde_json::json!({"refuse": true})))
                .await;
            let own = a
                .submit_own(OwnEntry {
                    kind: "test.note".into(),
                    version: 1,
                    payload: serde_json::Map::new(),
                })
                .await;
            let group = a
                .submit_many(vec![
                    note(&bob, 1, serde_json::json!({})),
                    note(&bob, 2, serde_json::json!({})),
                ])
                .await;
            (first, refused, own, group)
        })
    };
    let mut n = 0;
    while !sub.is_finished() {
        match tokio::time::timeout(Duration::from_millis(50), proposals.recv()).await {
            Ok(Some(batch)) => {
                assert_eq!(a.written_size().unwrap(), b.written_size().unwrap());
                n += 1;
                commit(&[&a, &b], &batch, n).await;
            }
            Ok(None) => panic!("proposals closed"),
            Err(_) => {}
        }
    }
    let (first, refused, own, group) = sub.await.unwrap();
    let first = first.unwrap();
    assert!(matches!(
        refused,
        Err(SubmitError::Rejected(Rejection::Rule { .. }))
    ));
    let own = own.unwrap();
    assert!(own.index > first.index);
    let group: Vec<_> = group.into_iter().map(Result::unwrap).collect();
    assert_eq!(group[1].index, group[0].index + 1);

    let size = a.checkpoint().checkpoint.size;
    released(&b, size).await;
    // Byte-identical history, note and state on both replicas.
    assert_eq!(entries(&a), entries(&b));
    assert_eq!(a.checkpoint().note, b.checkpoint().note);
    assert_eq!(
        a.state_get(b"count").unwrap(),
        b.state_get(b"count").unwrap()
    );
    assert_eq!(
        a.state_get(b"count").unwrap(),
        Some(4u64.to_be_bytes().to_vec())
    );
    // The applied mark went with the last batch on both.
    for log in [&a, &b] {
        assert_eq!(
            log.side_meta_get(b"test/applied").unwrap(),
            Some(n.to_be_bytes().to_vec())
        );
    }
    // A sequenced each of its own batches while it was being replicated and wrote that
    // (the same bytes as B, which sequenced them only when they were committed).
    let (used, again) = a.metrics().speculations();
    assert_eq!((used, again), (n, 0));
    assert_eq!(b.metrics().speculations(), (0, 0));
    // The receipt A gave verifies against the note both replicas sign.
    included(&b, &first);
}

#[tokio::test]
async fn a_batch_committed_before_the_proposers_own_is_applied_first_and_its_own_sequenced_again() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut a_proposals) = replica(da.path());
    let (b, mut b_proposals) = replica(db.path());
    let alice = SigningKey::from_bytes(&[1; 32]);
    let bob = SigningKey::from_bytes(&[2; 32]);
    // A proposes alice's note (and sequences it against the empty log meanwhile)…
    let from_a = {
        let a = a.clone();
        let env = note(&alice, 1, serde_json::json!({}));
        tokio::spawn(async move { a.submit(env).await })
    };
    let a_batch = a_proposals.recv().await.unwrap();
    // …but B's batch (bob's note, the same rules) is committed first.
    let from_b = {
        let b = b.clone();
        let env = note(&bob, 1, serde_json::json!({}));
        tokio::spawn(async move { b.submit(env).await })
    };
    let b_batch = b_proposals.recv().await.unwrap();
    commit(&[&a, &b], &b_batch, 1).await;
    commit(&[&a, &b], &a_batch, 2).await;
    let (from_a, from_b) = (
        from_a.await.unwrap().unwrap(),
        from_b.await.unwrap().unwrap(),
    );
    // B's note and its log.state first, then A's: A's speculation (index 0) was dropped, B's
    // own (its batch came back first, onto the state it was sequenced against) was used.
    assert_eq!((from_b.index, from_a.index), (0, 2));
    assert_eq!(a.metrics().speculations(), (0, 1));
    assert_eq!(b.metrics().speculations(), (1, 0));
    released(&a, 4).await;
    released(&b, 4).await;
    assert_eq!(entries(&a), entries(&b));
    assert_eq!(a.checkpoint().note, b.checkpoint().note);
    included(&b, &from_a);
}

#[tokio::test]
async fn an_abandoned_proposal_is_refused_and_if_committed_later_applies_once() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut proposals) = replica(da.path());
    let (b, _unused) = replica(db.path());
    let alice = SigningKey::from_bytes(&[1; 32]);
    let env = note(&alice, 1, serde_json::json!({}));

    let sub = {
        let (a, env) = (a.clone(), env.clone());
        tokio::spawn(async move { a.submit(env).await })
    };
    let batch = proposals.recv().await.unwrap();
    // Replication gives up (say the leader lost its quorum): the submitter hears so.
    a.abandon(batch.ticket, &SubmitError::Stopped);
    assert_eq!(sub.await.unwrap(), Err(SubmitError::Stopped));
    assert_eq!(a.written_size().unwrap(), 0);

    // The batch was committed after all: every replica applies it, nobody was waiting.
    commit(&[&a, &b], &batch, 1).await;
    released(&a, 2).await;
    // Resubmitting the same signed entry returns its receipt, not a second copy.
    let again = a.submit(env).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, 0);
    released(&b, 2).await;
    assert_eq!(entries(&a), entries(&b));
}

#[tokio::test]
async fn history_imports_only_when_it_reproduces_exactly() {
    let (da, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut proposals) = replica(da.path());
    let alice = SigningKey::from_bytes(&[1; 32]);
    // Three batches on A.
    for seq in 1..=3 {
        let sub = {
            let a = a.clone();
            let env = note(&alice, seq, serde_json::json!({}));
            tokio::spawn(async move { a.submit(env).await })
        };
        let batch = proposals.recv().await.unwrap();
        commit(&[&a], &batch, seq).await;
        sub.await.unwrap().unwrap();
    }
    released(&a, 6).await;
    let history = entries(&a);
    assert_eq!(history.len(), 6);

    let at_6 = a.checkpoint().note.clone();
    let at_2 = a.checkpoint_at(2).unwrap().unwrap();

    let (c, _unused) = replica(dc.path());
    // A forged batch — a valid, signed entry where another was, with a log.state that its
    // rules reproduce — is not the tree the log key signed: refused before anything is written.
    let mut forged = history.clone();
    forged[2] = note(&alice, 2, serde_json::json!({"forged": true}))
        .bytes()
        .to_vec();
    let refused = c.import_history(0, forged, &at_6).await;
    assert!(
        matches!(refused, Err(ImportError::NotSigned(_))),
        "{refused:?}"
    );
    // History cut short of the note's size: refused too.
    let short = c.import_history(0, history[..3].to_vec(), &at_6).await;
    assert!(matches!(short, Err(ImportError::NotSigned(_))), "{short:?}");
    assert_eq!(c.written_size().unwrap(), 0);

    // Part of the history, up to a signed size, then the rest.
    assert_eq!(
        c.import_history(0, history[..2].to_vec(), &at_2).await,
        Ok(2)
    );
    // Starting elsewhere than our size is refused.
    let wrong = c.import_history(0, history.clone(), &at_6).await;
    assert!(matches!(
        wrong,
        Err(ImportError::WrongStart { size: 2, given: 0 })
    ));

    // The real history imports: same tree, same note, same state.
    let size = c
        .import_history(2, history[2..].to_vec(), &at_6)
        .await
        .unwrap();
    assert_eq!(size, 6);
    c.sync_written().unwrap();
    released(&c, 6).await;
    assert_eq!(entries(&c), history);
    assert_eq!(c.checkpoint().note, a.checkpoint().note);
    assert_eq!(
        c.state_get(b"count").unwrap(),
        a.state_get(b"count").unwrap()
    );
}

#[tokio::test]
async fn history_that_does_not_reproduce_under_these_rules_is_refused_unwritten() {
    let (da, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut proposals) = replica(da.path());
    let alice = SigningKey::from_bytes(&[1; 32]);
    let sub = {
        let a = a.clone();
        let env = note(&alice, 1, serde_json::json!({}));
        tokio::spawn(async move { a.submit(env).await })
    };
    let batch = proposals.recv().await.unwrap();
    commit(&[&a], &batch, 1).await;
    sub.await.unwrap().unwrap();
    released(&a, 2).await;

    let (tx, _rx) = mpsc::unbounded_channel();
    let config = LogConfig {
        replicate: Some(tx),
        ..LogConfig::default()
    };
    let c = Log::create(dc.path(), ORIGIN, node_key(), RefuseAll, config).unwrap();
    let refused = c.import_history(0, entries(&a), &a.checkpoint().note).await;
    assert!(
        matches!(refused, Err(ImportError::Differs(_))),
        "{refused:?}"
    );
    assert_eq!(c.written_size().unwrap(), 0);
    assert_eq!(c.checkpoint().checkpoint.size, 0);
}

#[tokio::test]
async fn off_log_writes_travel_with_the_batches_and_reach_every_replica() {
    use coopledger_ledger::log::replication::OfflogOp;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut proposals) = replica(da.path());
    let (b, _unused) = replica(db.path());
    let write = {
        let a = a.clone();
        tokio::spawn(async move {
            a.offlog_write(vec![
                OfflogOp::Put {
                    key: b"box/1".to_vec(),
                    value: b"ballot".to_vec(),
                },
                OfflogOp::Put {
                    key: b"vault/m".to_vec(),
                    value: b"sealed".to_vec(),
                },
            ])
            .await
        })
    };
    let batch = proposals.recv().await.unwrap();
    // Proposed, not applied: nothing is written anywhere yet.
    assert_eq!(a.offlog_get(b"box/1").unwrap(), None);
    commit(&[&a, &b], &batch, 1).await;
    write.await.unwrap().unwrap();
    for log in [&a, &b] {
        assert_eq!(log.offlog_get(b"box/1").unwrap(), Some(b"ballot".to_vec()));
    }
    // A shred deletes on every replica.
    let shred = {
        let a = a.clone();
        tokio::spawn(async move {
            a.offlog_write(vec![OfflogOp::Shred {
                keys: vec![b"vault/m".to_vec()],
            }])
            .await
        })
    };
    let batch = proposals.recv().await.unwrap();
    commit(&[&a, &b], &batch, 2).await;
    shred.await.unwrap().unwrap();
    for log in [&a, &b] {
        assert_eq!(log.offlog_get(b"vault/m").unwrap(), None);
        assert_eq!(log.offlog_get(b"box/1").unwrap(), Some(b"ballot".to_vec()));
    }
    // Abandoned (no quorum): the writer hears so and nothing is written.
    let lost = {
        let a = a.clone();
        tokio::spawn(async move {
            a.offlog_write(vec![OfflogOp::Delete {
                key: b"box/1".to_vec(),
            }])
            .await
        })
    };
    let batch = proposals.recv().await.unwrap();
    a.abandon(batch.ticket, &SubmitError::NoQuorum);
    assert_eq!(lost.await.unwrap(), Err(SubmitError::NoQuorum));
    assert!(a.offlog_get(b"box/1").unwrap().is_some());
}

#[tokio::test]
async fn an_own_entry_whose_payload_is_not_ledger_json_is_refused_before_it_is_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut proposals) = replica(dir.path());
    let mut payload = serde_json::Map::new();
    payload.insert("share".into(), serde_json::json!(0.5));
    let refused = a
        .submit_own(OwnEntry {
            kind: "test.note".into(),
            version: 1,
            payload,
        })
        .await;
    match refused {
        Err(SubmitError::Rejected(Rejection::Malformed { field, .. })) => {
            assert_eq!(field, "payload.share")
        }
        other => panic!("a float payload gave {other:?}"),
    }
    // Nothing went to replication: a replica could not have read the same number back.
    assert!(proposals.try_recv().is_err());
}

/// Submits `count` notes to `log` one after another (sequence numbers from `first`), commits
/// every proposal as the driver of these tests does, and keeps each committed batch (what a
/// Raft log would hold) in `committed`.
async fn submit_and_commit(
    log: &Arc<Log<Notes>>,
    proposals: &mut mpsc::UnboundedReceiver<ProposedBatch>,
    first: u64,
    count: u64,
    committed: &mut Vec<ProposedBatch>,
) {
    let key = SigningKey::from_bytes(&[3; 32]);
    for seq in first..first + count {
        let sub = {
            let log = log.clone();
            let env = note(&key, seq, serde_json::json!({}));
            tokio::spawn(async move { log.submit(env).await })
        };
        while !sub.is_finished() {
            if let Ok(Some(batch)) =
                tokio::time::timeout(Duration::from_millis(20), proposals.recv()).await
            {
                committed.push(batch.clone());
                commit(&[log], &batch, committed.len() as u64).await;
            }
        }
        sub.await.unwrap().unwrap();
    }
}

/// Waits until the record of signed checkpoints in `dir` names a checkpoint of `size`.
async fn recorded(dir: &std::path::Path, size: u64) {
    for _ in 0..3000 {
        if let Some(note) = coopledger_ledger::signed::SignedFile::read_latest(dir).unwrap() {
            if note.lines().nth(1) == Some(size.to_string().as_str()) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("size {size} never recorded");
}

/// A replica releases checkpoints without waiting for its own fsync (its batches are durable in
/// a quorum's Raft logs) and records them behind; a power cut may then take the unsynced tail
/// of its database, never what its record names. Here the cut is made exactly: the database as
/// it stood right after the recorder's last fsync (copied from inside that step), beside the
/// record as the recorder left it. The replica opens on it, and the committed batches applied
/// again sign byte for byte the notes it had released before the cut.
#[tokio::test]
async fn a_power_cut_takes_only_the_unrecorded_tail_and_the_same_batches_sign_the_same_notes() {
    use coopledger_ledger::{FaultPoint, StoreError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, Weak};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let cut = tempfile::tempdir().unwrap();
    let durable = cut.path().join("durable");
    let live: Arc<Mutex<Weak<Log<Notes>>>> = Arc::default();
    let powered = Arc::new(AtomicBool::new(true));
    let crashed = Arc::new(AtomicBool::new(false));
    let hook: coopledger_ledger::log::FaultHook = {
        let (live, durable) = (live.clone(), durable.clone());
        let (powered, crashed) = (powered.clone(), crashed.clone());
        Arc::new(move |p| {
            if p != FaultPoint::BeforeRecord {
                return Ok(());
            }
            // After the cut nothing more reaches the disk: the recorder's round stops here
            // (waits, then fails, as the test says).
            if !powered.load(Ordering::SeqCst) {
                while !crashed.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Err(StoreError::Injected(p));
            }
            // The recorder has just synced: this copy is what a power cut now would leave.
            if let Some(log) = live.lock().unwrap().upgrade() {
                let _ = std::fs::remove_dir_all(&durable);
                log.backup(&durable)?;
            }
            Ok(())
        })
    };
    let (tx, mut proposals) = mpsc::unbounded_channel();
    let config = LogConfig {
        replicate: Some(tx),
        fault_hook: Some(hook),
        ..LogConfig::default()
    };
    let log = Arc::new(Log::create(&path, ORIGIN, node_key(), Notes, config).unwrap());
    *live.lock().unwrap() = Arc::downgrade(&log);
    let mut committed = Vec::new();

    // Before the cut: the first notes are released and, behind them, recorded.
    submit_and_commit(&log, &mut proposals, 1, 5, &mut committed).await;
    let before = log.checkpoint();
    recorded(&path, before.checkpoint.size).await;
    assert!(durable.exists(), "the recorder never synced");
    // The gauge is set just after the append the file shows.
    for _ in 0..300 {
        if log.metrics().recorded_size() == before.checkpoint.size {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.metrics().recorded_size(), before.checkpoint.size);

    // The cut: from now on the recorder cannot write. Batches are still released — receipts
    // do not wait for this replica's disk — and each released note is kept.
    powered.store(false, Ordering::SeqCst);
    let mut released_notes = Vec::new();
    for seq in 6..=10 {
        submit_and_commit(&log, &mut proposals, seq, 1, &mut committed).await;
        released_notes.push(log.checkpoint());
    }
    let last = log.checkpoint();
    assert!(last.checkpoint.size > before.checkpoint.size);
    // Released, not recorded: the gauge an operator watches shows the gap.
    assert_eq!(log.metrics().recorded_size(), before.checkpoint.size);
    // The recorder's round fails, and the replica stops (fail-stop), refusing more work.
    crashed.store(true, Ordering::SeqCst);
    let mut stopped = false;
    for _ in 0..300 {
        if log.failure().is_some() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stopped, "the recorder's failure did not stop the replica");
    let record = std::fs::read(coopledger_ledger::signed::SignedFile::path(&path)).unwrap();
    drop(log);
    drop(proposals);

    // What the disk holds after the cut: the database as synced, the record as written.
    std::fs::write(
        coopledger_ledger::signed::SignedFile::path(&durable),
        &record,
    )
    .unwrap();
    let (tx, mut proposals) = mpsc::unbounded_channel();
    let config = LogConfig {
        replicate: Some(tx),
        ..LogConfig::default()
    };
    let log = Log::open(&durable, node_key(), Notes, config).unwrap();
    let held = log.checkpoint();
    assert!(held.checkpoint.size >= before.checkpoint.size);
    assert!(
        held.checkpoint.size < last.checkpoint.size,
        "the cut took nothing: the test proves nothing"
    );
    // Raft gives the replica the committed batches after its applied mark again; applied,
    // they sign exactly the notes released before the cut.
    let applied = log
        .side_meta_get(b"test/applied")
        .unwrap()
        .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
        .unwrap();
    for (i, batch) in committed.iter().enumerate().skip(applied as usize) {
        commit(&[&log], batch, i as u64 + 1).await;
    }
    released(&log, last.checkpoint.size).await;
    assert_eq!(log.checkpoint().note, last.note);
    for note in released_notes {
        assert_eq!(
            log.checkpoint_at(note.checkpoint.size).unwrap().as_deref(),
            Some(note.note.as_str())
        );
    }
    assert!(proposals.try_recv().is_err());
}

/// Closing a replica records every checkpoint it released, without waiting for the recorder's
/// period: the next open finds the record at its database's size.
#[tokio::test]
async fn closing_a_replica_records_every_checkpoint_it_released() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut proposals) = replica(dir.path());
    let mut committed = Vec::new();
    submit_and_commit(&log, &mut proposals, 1, 3, &mut committed).await;
    let last = log.checkpoint();
    let log = Arc::try_unwrap(log).ok().unwrap();
    drop(log);
    assert_eq!(
        coopledger_ledger::signed::SignedFile::read_latest(dir.path()).unwrap(),
        Some(last.note.clone())
    );
}
