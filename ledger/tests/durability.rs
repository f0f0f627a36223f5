//! The durability order, driven by a table of injected faults (Sunlight-style): for a crash at
//! each step of the commit protocol, restart from disk and re-check the whole log — every
//! acknowledged entry present and provable, the newest checkpoint covering every durable entry,
//! old checkpoints consistent with the new, the root recomputable from the entries, and the
//! interrupted submission recoverable by resubmitting (same receipt if it had become durable).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_ledger::hash::leaf_hash;
use coopledger_ledger::log::{now_ms, LogConfig};
use coopledger_ledger::merkle::MemoryTree;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::verify::{verify_consistency, verify_inclusion};
use coopledger_ledger::{Body, Envelope, FaultPoint, Log, Rejection, StateRead, SubmitError};
use ed25519_dalek::SigningKey;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ORIGIN: &str = "durability.example/log";

mod common;
use common::Notes;

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

fn config(hook: Option<coopledger_ledger::log::FaultHook>) -> LogConfig {
    LogConfig {
        batch_max_wait: Duration::from_millis(1),
        fault_hook: hook,
        ..LogConfig::default()
    }
}

fn count(log: &Log<Notes>) -> u64 {
    log.state_get(b"count")
        .unwrap()
        .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_crash_at_each_commit_step_leaves_a_consistent_recoverable_log() {
    // (fault point, whether the interrupted entry is durable after restart)
    let table = [
        (FaultPoint::BeforeCommit, false),
        (FaultPoint::AfterCommit, true),
        (FaultPoint::AfterCheckpoint, true),
    ];
    for (point, durable) in table {
        let dir = tempfile::tempdir().unwrap();
        let node = SigningKey::from_bytes(&[1; 32]);
        let member = SigningKey::from_bytes(&[2; 32]);
        let armed = Arc::new(AtomicBool::new(false));
        let a = armed.clone();
        let hook: coopledger_ledger::log::FaultHook = Arc::new(move |p| {
            if a.load(Ordering::SeqCst) && p == point {
                Err(StoreError::Injected(p))
            } else {
                Ok(())
            }
        });
        let log = Log::create(dir.path(), ORIGIN, node.clone(), Notes, config(Some(hook))).unwrap();
        let mut acked = Vec::new();
        for seq in 1..=5 {
            let env = note(&member, seq, serde_json::json!({}));
            let r = log.submit(env.clone()).await.unwrap();
            acked.push((env, r));
        }
        // Five batches of one note, each closed by its `log.state` entry.
        let before = log.checkpoint();
        assert_eq!(before.checkpoint.size, 10);

        armed.store(true, Ordering::SeqCst);
        let interrupted = note(&member, 6, serde_json::json!({}));
        assert_eq!(
            log.submit(interrupted.clone()).await,
            Err(SubmitError::Stopped),
            "{point:?}"
        );
        assert!(
            log.failure().is_some(),
            "{point:?}: the sequencer must stop"
        );
        // Fail-stop: nothing more is accepted until restart.
        assert_eq!(
            log.submit(note(&member, 7, serde_json::json!({}))).await,
            Err(SubmitError::Stopped)
        );
        drop(log);

        // Restart without faults.
        let log = Log::open(dir.path(), node.clone(), Notes, config(None)).unwrap();
        let cp = log.checkpoint();
        let (want_size, want_count) = if durable { (12, 6) } else { (10, 5) };
        assert_eq!(
            cp.checkpoint.size, want_size,
            "{point:?}: checkpoint must cover every durable entry"
        );
        assert_eq!(
            count(&log),
            want_count,
            "{point:?}: state commits with its batch, never apart"
        );
        // The state tree committed with the same batch: the checkpoint's last entry records a
        // root under which the current count is proved.
        let at = log.prove_state(b"count").unwrap();
        assert_eq!(at.checkpoint.checkpoint.size, want_size, "{point:?}");
        assert_eq!(at.commitment.size, want_size - 1);
        assert_eq!(
            at.value.as_deref(),
            Some(&want_count.to_be_bytes()[..]),
            "{point:?}"
        );
        for (env, r) in &acked {
            assert_eq!(log.entry(r.index).unwrap(), env.bytes());
            let proof = log.inclusion_proof(r.index, cp.checkpoint.size).unwrap();
            verify_inclusion(
                &env.leaf_hash(),
                r.index,
                cp.checkpoint.size,
                &proof,
                &cp.checkpoint.root,
            )
            .unwrap();
            assert_eq!(
                log.checkpoint_at(r.checkpoint.checkpoint.size)
                    .unwrap()
                    .as_deref(),
                Some(r.checkpoint.note.as_str())
            );
        }
        let proof = log.consistency_proof(10, cp.checkpoint.size).unwrap();
        verify_consistency(
            10,
            cp.checkpoint.size,
            &proof,
            &before.checkpoint.root,
            &cp.checkpoint.root,
        )
        .unwrap();

        // Audit: the root recomputed from the stored entries alone equals the checkpoint's.
        let mut t = MemoryTree::new();
        for i in 0..cp.checkpoint.size {
            t.push(leaf_hash(&log.entry(i).unwrap()));
        }
        assert_eq!(t.root(), cp.checkpoint.root);

        // The client retries: the same receipt if the entry had become durable, else a new one.
        let r = log.submit(interrupted.clone()).await.unwrap();
        assert_eq!(r.index, 10, "{point:?}");
        assert_eq!(r.duplicate, durable, "{point:?}");
        assert_eq!(count(&log), 6);
    }
}

#[tokio::test]
async fn state_and_sequence_numbers_persist_without_replay_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let member = SigningKey::from_bytes(&[2; 32]);
    let first = note(&member, 1, serde_json::json!({}));
    {
        let log = Log::create(dir.path(), ORIGIN, node.clone(), Notes, config(None)).unwrap();
        // One batch mixing accepted and refused entries.
        let (a, b, c) = tokio::join!(
            log.submit(first.clone()),
            log.submit(note(&member, 2, serde_json::json!({"refuse": true}))),
            log.submit(note(&member, 3, serde_json::json!({}))),
        );
        a.unwrap();
        assert!(matches!(
            b,
            Err(SubmitError::Rejected(Rejection::Rule { .. }))
        ));
        c.unwrap();
        // Two notes and the batch's `log.state` entry; the refused one left no trace.
        assert_eq!(log.checkpoint().checkpoint.size, 3);
        assert_eq!(count(&log), 2);
        // seq 2 was refused, so it is still free; 1 and 3 are used.
        assert_eq!(log.next_seq(&member.verifying_key().to_bytes()).unwrap(), 4);
    }
    // A node whose admission window is 0 ms still answers a retry of a logged body with its
    // original receipt: idempotency does not expire.
    let strict = LogConfig {
        ts_window: Duration::ZERO,
        ..config(None)
    };
    let log = Log::open(dir.path(), node.clone(), Notes, strict).unwrap();
    let retry = log.submit(first.clone()).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.index, retry.leaf_hash), (0, first.leaf_hash()));
    let stale = Body {
        ts: now_ms() - 10_000,
        ..note(&member, 9, serde_json::json!({})).body().clone()
    }
    .sign(&member)
    .unwrap();
    assert!(matches!(
        log.submit(stale).await,
        Err(SubmitError::Rejected(
            Rejection::TimestampOutOfWindow { .. }
        ))
    ));
    drop(log);
    let log = Log::open(dir.path(), node.clone(), Notes, config(None)).unwrap();
    assert_eq!(count(&log), 2);
    assert_eq!(log.next_seq(&member.verifying_key().to_bytes()).unwrap(), 4);
    assert!(matches!(
        log.submit(note(&member, 3, serde_json::json!({"other": 1})))
            .await,
        Err(SubmitError::Rejected(Rejection::Replay { last: 3, got: 3 }))
    ));
    drop(log);
    // Opening with another node key is refused: checkpoints would not verify.
    let wrong = SigningKey::from_bytes(&[9; 32]);
    assert!(matches!(
        Log::open(dir.path(), wrong, Notes, config(None)),
        Err(coopledger_ledger::log::OpenError::WrongNodeKey { .. })
    ));
}

#[tokio::test]
async fn concurrent_submissions_are_batched_and_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let cfg = LogConfig {
        batch_max_wait: Duration::from_millis(20),
        ..LogConfig::default()
    };
    let log = Arc::new(Log::create(dir.path(), ORIGIN, node, Notes, cfg).unwrap());
    let mut tasks = Vec::new();
    for k in 0..200u8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let key = SigningKey::from_bytes(&[k + 10; 32]);
            let env = note(&key, 1, serde_json::json!({}));
            (env.clone(), log.submit(env).await.unwrap())
        }));
    }
    let mut sizes = std::collections::BTreeSet::new();
    for t in tasks {
        let (env, r) = t.await.unwrap();
        verify_inclusion(
            &env.leaf_hash(),
            r.index,
            r.checkpoint.checkpoint.size,
            &r.inclusion_proof,
            &r.checkpoint.checkpoint.root,
        )
        .unwrap();
        sizes.insert(r.checkpoint.checkpoint.size);
    }
    // Fewer checkpoints than entries: entries were committed in batches, not one by one; each
    // batch (one checkpoint each) added its `log.state` entry.
    assert!(sizes.len() < 200, "{sizes:?}");
    assert_eq!(log.checkpoint().checkpoint.size, 200 + sizes.len() as u64);
}

/// DESIGN §4: every batch ends on a `log.state` entry; replaying the log from nothing with the
/// same rules reaches every recorded root; a substituted entry is caught at its batch's
/// commitment; absence is provable.
#[tokio::test]
async fn every_batch_commits_to_its_state_and_a_replay_reaches_each_root() {
    use coopledger_ledger::audit::{Audit, AuditError};
    use coopledger_ledger::{smt, StateCommitment};
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let log = Arc::new(Log::create(dir.path(), ORIGIN, node.clone(), Notes, config(None)).unwrap());
    for round in 0..4u8 {
        let mut tasks = Vec::new();
        for k in 0..(round + 1) * 3 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let key = SigningKey::from_bytes(&[k + 10; 32]);
                let seq = log.next_seq(&key.verifying_key().to_bytes()).unwrap();
                log.submit(note(&key, seq, serde_json::json!({"round": round})))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let size = log.checkpoint().checkpoint.size;
    let entries: Vec<Vec<u8>> = (0..size).map(|i| log.entry(i).unwrap()).collect();
    let node_pub = node.verifying_key().to_bytes();

    let mut audit = Audit::new(&Notes, node_pub);
    for e in &entries {
        audit.push(e).unwrap();
    }
    let report = audit.finish().unwrap();
    assert_eq!(report.entries, size);
    let commitments = entries
        .iter()
        .filter(|e| StateCommitment::from_entry(&Envelope::from_bytes(e).unwrap()).is_some())
        .count() as u64;
    assert_eq!(report.batches, commitments);
    assert!(commitments >= 4, "at least one batch per round");
    assert_eq!(log.state_commitment(size).unwrap().root, report.state_root);

    // The count (30 notes) is proved under the last root; a key never written is proved absent.
    let at = log.prove_state(b"count").unwrap();
    assert_eq!(at.value.as_deref(), Some(&30u64.to_be_bytes()[..]));
    smt::verify(&report.state_root, &at.key, at.value.as_deref(), &at.proof).unwrap();
    let none = log.prove_state(b"never-written").unwrap();
    assert_eq!(none.value, None);
    smt::verify(&report.state_root, &none.key, None, &none.proof).unwrap();

    // Substitute the first note with another validly signed one by a different key: the state
    // (that signer's sequence number) differs, and the batch's commitment says so.
    let forged = note(
        &SigningKey::from_bytes(&[99; 32]),
        1,
        serde_json::json!({"round": 0}),
    );
    let first_note = entries
        .iter()
        .position(|e| Envelope::from_bytes(e).unwrap().body().kind == "test.note")
        .unwrap();
    let mut audit = Audit::new(&Notes, node_pub);
    let mut failure = None;
    for (i, e) in entries.iter().enumerate() {
        let bytes = if i == first_note {
            forged.bytes()
        } else {
            e.as_slice()
        };
        if let Err(err) = audit.push(bytes) {
            failure = Some(err);
            break;
        }
    }
    assert!(
        matches!(failure, Some(AuditError::StateRoot { .. })),
        "{failure:?}"
    );

    // A log that drops an entry: the next commitment is out of place.
    let mut audit = Audit::new(&Notes, node_pub);
    let dropped: Vec<&Vec<u8>> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first_note)
        .map(|(_, e)| e)
        .collect();
    let err = dropped.iter().find_map(|e| audit.push(e).err());
    assert!(
        matches!(err, Some(AuditError::Commitment { .. })),
        "{err:?}"
    );

    // Nobody may submit a ledger entry type.
    let fake = StateCommitment {
        size,
        root: report.state_root,
        batch_time_ms: now_ms(),
    }
    .to_entry(ORIGIN, &node)
    .unwrap();
    assert!(matches!(
        log.submit(fake).await,
        Err(SubmitError::Rejected(Rejection::UnknownType { .. }))
    ));
}

/// `Log::submit_many`: the group is sequenced together — every accepted entry under one
/// checkpoint, a signer's consecutive entries in order all accepted — and each entry gets its own
/// answer: a bad signature or an out-of-order sequence number refused alone, a body already in
/// the log answered with its first receipt.
#[tokio::test]
async fn a_group_of_entries_is_sequenced_together_and_answered_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::create(
        dir.path(),
        ORIGIN,
        SigningKey::from_bytes(&[1; 32]),
        Notes,
        config(None),
    )
    .unwrap();
    let early = SigningKey::from_bytes(&[50; 32]);
    let first = note(&early, 1, serde_json::json!({}));
    let before = log.submit(first.clone()).await.unwrap();
    let a = SigningKey::from_bytes(&[51; 32]);
    let mut group: Vec<Envelope> = (1..=3)
        .map(|seq| note(&a, seq, serde_json::json!({})))
        .collect();
    for k in 52..60u8 {
        group.push(note(
            &SigningKey::from_bytes(&[k; 32]),
            1,
            serde_json::json!({}),
        ));
    }
    // A forged signature: the body of one signer, the signature of another's entry.
    let mut forged = note(&SigningKey::from_bytes(&[60; 32]), 1, serde_json::json!({})).to_value();
    forged["sig"] = note(&a, 9, serde_json::json!({})).to_value()["sig"].clone();
    group.push(Envelope::from_value(&forged).unwrap());
    // A sequence number that skips back: refused by the replay rule.
    group.push(note(&a, 2, serde_json::json!({"again": true})));
    // Already in the log.
    group.push(first);
    let answers = log.submit_many(group).await;
    assert_eq!(answers.len(), 14);
    let sizes: std::collections::BTreeSet<u64> = answers[..11]
        .iter()
        .map(|r| r.as_ref().unwrap().checkpoint.checkpoint.size)
        .collect();
    assert_eq!(sizes.len(), 1, "one checkpoint covers the group: {sizes:?}");
    let indexes: Vec<u64> = answers[..3]
        .iter()
        .map(|r| r.as_ref().unwrap().index)
        .collect();
    assert_eq!(indexes, vec![indexes[0], indexes[0] + 1, indexes[0] + 2]);
    assert!(
        matches!(
            answers[11],
            Err(SubmitError::Rejected(Rejection::BadSignature))
        ),
        "{:?}",
        answers[11]
    );
    assert!(
        matches!(
            answers[12],
            Err(SubmitError::Rejected(Rejection::Replay { last: 3, got: 2 }))
        ),
        "{:?}",
        answers[12]
    );
    let again = answers[13].as_ref().unwrap();
    assert_eq!(again.index, before.index);
    assert!(again.duplicate);
}

/// A batch's checkpoint is stored with its data in one write, but between that write and the
/// release thread's fsyncs (steps 4 and 5) nobody can see it: not as the latest, not by size,
/// and the entries it covers are not served. Once durable and recorded it is released and the
/// submitter answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_checkpoint_is_invisible_until_durable_recorded_and_released() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let member = SigningKey::from_bytes(&[2; 32]);
    let armed = Arc::new(AtomicBool::new(false));
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let reached_tx = std::sync::Mutex::new(reached_tx);
    let go_rx = std::sync::Mutex::new(go_rx);
    let a = armed.clone();
    let hook: coopledger_ledger::log::FaultHook = Arc::new(move |p| {
        if p == FaultPoint::AfterCommit && a.swap(false, Ordering::SeqCst) {
            // Hold the sequencer right after the batch's write returned.
            reached_tx.lock().unwrap().send(()).unwrap();
            go_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20))
                .unwrap();
        }
        Ok(())
    });
    let log =
        Arc::new(Log::create(dir.path(), ORIGIN, node.clone(), Notes, config(Some(hook))).unwrap());
    log.submit(note(&member, 1, serde_json::json!({"tag": "a"})))
        .await
        .unwrap();
    let before = log.checkpoint();
    assert_eq!(before.checkpoint.size, 2);

    armed.store(true, Ordering::SeqCst);
    let l = log.clone();
    let env = note(&member, 2, serde_json::json!({"tag": "b"}));
    let pending = tokio::spawn(async move { l.submit(env).await });
    tokio::task::spawn_blocking(move || reached_rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .unwrap();

    // Durable on disk, but not released: the old checkpoint is the latest, the new size has no
    // note for readers, and the new entries are not served.
    assert_eq!(log.checkpoint().note, before.note);
    assert_eq!(log.checkpoint_at(4).unwrap(), None);
    assert_eq!(
        log.checkpoint_at(2).unwrap().as_deref(),
        Some(before.note.as_str())
    );
    assert!(
        log.entry(2).is_err(),
        "an entry beyond the released checkpoint"
    );
    assert!(!pending.is_finished(), "acknowledged before release");
    // Nor does its effect on the state show: a changed key reads as before, a new one is absent.
    let tags = || {
        log.scan(b"tag/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&log), 1, "the held batch's write is visible");
    assert_eq!(tags(), vec!["tag/a"]);
    assert_eq!(log.get(b"tag/b").unwrap(), None);

    go_tx.send(()).unwrap();
    let receipt = pending.await.unwrap().unwrap();
    assert_eq!(receipt.index, 2);
    assert_eq!(receipt.checkpoint.checkpoint.size, 4);
    assert_eq!(log.checkpoint().note, receipt.checkpoint.note);
    assert_eq!(count(&log), 2);
    assert_eq!(tags(), vec!["tag/a", "tag/b"]);
    assert_eq!(
        log.get(b"tag/b").unwrap(),
        Some(2u64.to_be_bytes().to_vec())
    );
    assert_eq!(
        log.checkpoint_at(4).unwrap().as_deref(),
        Some(receipt.checkpoint.note.as_str())
    );
    // The record outside the database holds it too.
    assert_eq!(
        coopledger_ledger::signed::SignedFile::read_latest(dir.path())
            .unwrap()
            .as_deref(),
        Some(receipt.checkpoint.note.as_str())
    );
}

/// Eight members submitting notes one after another until stopped: the pipeline kept full.
struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Writers {
    fn start(log: &Arc<Log<Notes>>) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..8u8)
            .map(|w| {
                let (log, stop) = (log.clone(), stop.clone());
                tokio::spawn(async move {
                    let key = SigningKey::from_bytes(&[10 + w; 32]);
                    let mut seq = 0;
                    while !stop.load(Ordering::SeqCst) {
                        seq += 1;
                        log.submit(note(&key, seq, serde_json::json!({})))
                            .await
                            .unwrap();
                    }
                    seq
                })
            })
            .collect();
        Writers { stop, tasks }
    }

    /// Stops them; the number of notes they had acknowledged.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        for t in self.tasks {
            total += t.await.unwrap();
        }
        total
    }
}

/// Under steady load the durable state runs ahead of the released checkpoint (the pipeline
/// records and releases batch k while k+1 commits); a state proof is still always given, and
/// always checks against the checkpoint it names and that checkpoint's own commitment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_proofs_stay_exact_while_batches_keep_committing() {
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let log = Arc::new(Log::create(dir.path(), ORIGIN, node, Notes, config(None)).unwrap());
    // The empty log has no state commitment to prove against: one entry first.
    let first = SigningKey::from_bytes(&[9; 32]);
    log.submit(note(&first, 1, serde_json::json!({})))
        .await
        .unwrap();
    let writers = Writers::start(&log);
    let reader = log.clone();
    let counted = tokio::task::spawn_blocking(move || {
        let mut seen = 0u64;
        // At least 150 proofs, and on until the writers' notes show up in the state (a
        // loaded machine may run all 150 before the first write lands); a bound so a stuck
        // pipeline fails the test rather than hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut proofs = 0;
        while proofs < 150 || (seen < 2 && std::time::Instant::now() < deadline) {
            proofs += 1;
            let at = reader.prove_state(b"count").unwrap();
            let size = at.checkpoint.checkpoint.size;
            assert_eq!(at.commitment.size, size - 1);
            coopledger_ledger::smt::verify(
                &at.commitment.root,
                &at.key,
                at.value.as_deref(),
                &at.proof,
            )
            .unwrap();
            // The commitment is the checkpoint's own last entry.
            let last = reader.entry(size - 1).unwrap();
            let state = coopledger_ledger::state::StateCommitment::from_entry(
                &Envelope::from_bytes(&last).unwrap(),
            )
            .unwrap();
            assert_eq!(state.root, at.commitment.root);
            let count = at
                .value
                .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                .unwrap_or(0);
            assert!(count >= seen, "the count went back: {count} < {seen}");
            seen = count;
        }
        seen
    })
    .await
    .unwrap();
    let total = writers.stop().await;
    // The last count a proof showed: some of the writers' notes, never more than were written.
    assert!(counted > 0 && total + 1 >= counted, "{counted} of {total}");
    assert_eq!(count(&log), total + 1);
}

/// Queries read the state of the released checkpoint, never of a batch still waiting for its
/// fsync and release: with eight writers keeping the pipeline full, the notes counted in the
/// state are always between the notes covered by the checkpoint released before the read and
/// those covered by the one released after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_the_released_state_while_batches_keep_committing() {
    let dir = tempfile::tempdir().unwrap();
    let node = SigningKey::from_bytes(&[1; 32]);
    let log = Arc::new(Log::create(dir.path(), ORIGIN, node, Notes, config(None)).unwrap());
    let writers = Writers::start(&log);
    let reader = log.clone();
    let (reads, moved) = tokio::task::spawn_blocking(move || {
        // notes[i]: the notes among the first i entries.
        let mut notes = vec![0u64];
        let mut notes_in = |size: u64| {
            while (notes.len() as u64) <= size {
                let i = notes.len() as u64 - 1;
                let e = Envelope::from_bytes(&reader.entry(i).unwrap()).unwrap();
                let last = *notes.last().unwrap();
                notes.push(last + u64::from(e.body().kind == "test.note"));
            }
            notes[size as usize]
        };
        let (mut reads, mut moved) = (0, 0);
        // At least 3000 reads, and on until the log has moved under a few of them (a loaded
        // machine may run all 3000 before the writers' first batch is released); a bound so
        // a stuck pipeline fails the test rather than hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while reads < 3000 || (moved < 5 && std::time::Instant::now() < deadline) {
            let before = reader.checkpoint().checkpoint.size;
            let counted = count(&reader);
            let after = reader.checkpoint().checkpoint.size;
            let (low, high) = (notes_in(before), notes_in(after));
            assert!(
                (low..=high).contains(&counted),
                "the state counts {counted} notes; the released checkpoints around the read \
                 cover {low} and {high}"
            );
            reads += 1;
            moved += u64::from(after > before);
        }
        (reads, moved)
    })
    .await
    .unwrap();
    let total = writers.stop().await;
    assert_eq!(count(&log), total);
    // The log kept moving during the reads (else the test proved nothing).
    assert!(
        moved >= 5 && reads >= 3000,
        "{moved} of {reads} reads saw the log move"
    );
}
