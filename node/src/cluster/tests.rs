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
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let config = LogConfig {
        replicate: Some(tx),
        ..LogConfig::default()
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    Arc::new(Log::create(&dir.join("ledger"), "suite.example/log", key, Notes, config).unwrap())
}

struct OnDisk;

impl StoreBuilder<Cluster, LogStore, LedgerMachine<Notes>, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, LedgerMachine<Notes>), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let log = ledger(dir.path());
        let store = LogStore::new(log.shared_store());
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
    {
        let mut log = LogStore::new(Arc::new(Store::create(&path, "o", "k").unwrap()));
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
    let mut log = LogStore::new(Arc::new(Store::open(&path).unwrap()));
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
