//! The Raft log on the ledger's database (`docs/replication.md` §2): entries in the store's side
//! log, the vote and the purge point in its side meta. Contracts kept: no holes (append after
//! the last index, truncate and purge as one range delete each), writes serialised (one owner,
//! `&mut self`), `append` acknowledged only once the write-ahead log holding it is synced; a
//! purge leaves no copy of the purged entries in any file (an erasure depends on it).

use super::Cluster;
use coopledger_ledger::store::{Store, StoreError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

const VOTE: &[u8] = b"raft/vote";
const COMMITTED: &[u8] = b"raft/committed";
const PURGED: &[u8] = b"raft/purged";

/// The Raft log of one replica.
#[derive(Debug, Clone)]
pub struct LogStore {
    store: Arc<Store>,
}

impl LogStore {
    /// The log kept in `store`.
    pub fn new(store: Arc<Store>) -> LogStore {
        LogStore { store }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.store
            .side_meta_get(key)?
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("raft meta: {e}")))
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], v: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.side_meta_put(key, &bytes)
    }
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

impl RaftLogReader<Cluster> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Cluster>>, StorageError<u64>> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let mut out = Vec::new();
        for (_, bytes) in self.store.side_range(from, to).map_err(read_err)? {
            out.push(serde_json::from_slice(&bytes).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<Cluster> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<Cluster>, StorageError<u64>> {
        let purged: Option<LogId<u64>> = self.meta(PURGED).map_err(read_err)?;
        let last = match self.store.side_bounds().map_err(read_err)? {
            None => purged,
            Some((_, last)) => {
                let mut got = self.try_get_log_entries(last..=last).await?;
                got.pop().map(|e| e.log_id)
            }
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.put_meta(VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.put_meta(COMMITTED, &committed).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self
            .meta::<Option<LogId<u64>>>(COMMITTED)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Cluster>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Cluster>> + Send,
        I::IntoIter: Send,
    {
        let records = entries
            .into_iter()
            .map(|e| serde_json::to_vec(&e).map(|b| (e.log_id.index, b)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_err)?;
        self.store.side_append(&records).map_err(write_err)?;
        // Readable now; acknowledged once the write-ahead log holding it is on disk.
        let synced = self
            .store
            .sync()
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(synced);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.store
            .side_delete(log_id.index, u64::MAX)
            .and_then(|()| self.store.sync())
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // The purge point first (synced): a crash before the delete leaves entries the state
        // says are purged, which is harmless; the reverse would leave a hole.
        self.put_meta(PURGED, &log_id).map_err(write_err)?;
        self.store
            .side_delete(0, log_id.index.saturating_add(1))
            .and_then(|()| self.store.sync())
            .map_err(write_err)?;
        // Then out of every file: a purge follows every erasure, and the purged entries may
        // carry the erased member's records (`Store::side_scrub`). Rare (after snapshots and
        // erasures), and off the async workers.
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.side_scrub())
            .await
            .map_err(|e| write_err(StoreError::Corrupt(format!("scrub task: {e}"))))?
            .map_err(write_err)
    }
}
