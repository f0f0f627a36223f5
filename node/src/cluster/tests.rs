//! The Raft log store against openraft's own storage conformance suite, and its durability
//! across a close and reopen of the database.
//!
//! The suite also exercises a state machine. Until the ledger's state machine lands
//! (`docs/replication.md` §10, step 1), the one here is a test double kept in memory: it lets the
//! suite run its log-store cases, and is not part of the node.

use super::log_store::LogStore;
use super::{Applied, Cluster};
use coopledger_ledger::store::Store;
use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    Entry, EntryPayload, LogId, RaftLogReader, SnapshotMeta, StorageError, StoredMembership, Vote,
};
use std::io::Cursor;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Machine {
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
    snapshot: Option<(SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>)>,
    built: u64,
}

/// The machine and its snapshot builder share one state (a builder's snapshot becomes the
/// machine's current one).
#[derive(Debug, Clone, Default)]
struct MemoryMachine(Arc<std::sync::Mutex<Machine>>);

impl MemoryMachine {
    fn with<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

impl RaftSnapshotBuilder<Cluster> for MemoryMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Cluster>, StorageError<u64>> {
        Ok(self.with(|m| {
            m.built += 1;
            let meta = SnapshotMeta {
                last_log_id: m.applied,
                last_membership: m.membership.clone(),
                snapshot_id: format!("s{}", m.built),
            };
            let data = serde_json::to_vec(&(m.applied, &m.membership)).unwrap();
            m.snapshot = Some((meta.clone(), data.clone()));
            Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }
        }))
    }
}

impl RaftStateMachine<Cluster> for MemoryMachine {
    type SnapshotBuilder = MemoryMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<u64>>,
            StoredMembership<u64, openraft::BasicNode>,
        ),
        StorageError<u64>,
    > {
        Ok(self.with(|m| (m.applied, m.membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Cluster>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            self.with(|m| {
                m.applied = Some(e.log_id);
                if let EntryPayload::Membership(mem) = e.payload {
                    m.membership = StoredMembership::new(Some(e.log_id), mem);
                }
            });
            out.push(Applied { size: 0 });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        self.with(|m| {
            m.applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
            m.snapshot = Some((meta.clone(), snapshot.into_inner()));
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Cluster>>, StorageError<u64>> {
        Ok(self
            .with(|m| m.snapshot.clone())
            .map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
    }
}

struct OnDisk;

impl StoreBuilder<Cluster, LogStore, MemoryMachine, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, MemoryMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("ledger"), "o", "k").unwrap();
        Ok((
            dir,
            LogStore::new(Arc::new(store)),
            MemoryMachine::default(),
        ))
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
