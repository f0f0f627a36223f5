//! The Raft log on the ledger's database (`docs/replication.md` §2): entries in the store's side
//! log, the vote and the purge point in its side meta. Contracts kept: no holes (append after
//! the last index, truncate and purge as one range delete each), writes serialised (one owner,
//! `&mut self`), `append` acknowledged only once the write-ahead log holding it is synced; a
//! purge leaves no copy of the purged entries in any file (an erasure depends on it).
//!
//! The newest entries are also kept in memory ([`Recent`]): Raft reads every entry back soon
//! after appending it — once per follower to send it, once to apply it — and would otherwise
//! read and parse it from the database each time.

use super::Cluster;
use coopledger_ledger::store::{Store, StoreError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

const VOTE: &[u8] = b"raft/vote";
const COMMITTED: &[u8] = b"raft/committed";
const PURGED: &[u8] = b"raft/purged";

/// How much of the newest entries [`Recent`] keeps (their stored size): several seconds of
/// batches at full load, so a follower that is a little behind is still sent them from memory.
const RECENT_BYTES: usize = 32 * 1024 * 1024;

/// The newest entries of the log, in order and without gaps, each with its stored size.
///
/// Invariant: they are a suffix of the log — every entry the log holds from the first one
/// kept here on is kept here. Appends add to it before writing (and empty it if the write
/// fails), truncation and purge take from it before deleting, and eviction only ever drops
/// the oldest; so a read from an index at or after the first one kept is answered from here
/// alone.
#[derive(Debug)]
struct Recent {
    entries: VecDeque<(Entry<Cluster>, usize)>,
    bytes: usize,
    /// At most this many stored bytes are kept.
    limit: usize,
}

impl Recent {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn push(&mut self, entry: Entry<Cluster>, size: usize) {
        let follows = self
            .entries
            .back()
            .is_none_or(|(last, _)| last.log_id.index.checked_add(1) == Some(entry.log_id.index));
        if !follows {
            self.clear();
        }
        self.bytes = self.bytes.saturating_add(size);
        self.entries.push_back((entry, size));
        while self.bytes > self.limit {
            match self.entries.pop_front() {
                Some((_, size)) => self.bytes = self.bytes.saturating_sub(size),
                None => break,
            }
        }
    }

    /// Drops the entries from `index` on.
    fn truncate(&mut self, index: u64) {
        while self
            .entries
            .back()
            .is_some_and(|(e, _)| e.log_id.index >= index)
        {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes = self.bytes.saturating_sub(size);
            }
        }
    }

    /// Drops the entries up to and including `index`.
    fn purge(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(e, _)| e.log_id.index <= index)
        {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(size);
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries in `[from, to)`, if `from` is at or after the first one kept.
    fn range(&self, from: u64, to: u64) -> Option<Vec<Entry<Cluster>>> {
        let first = self.first()?;
        if from < first {
            return None;
        }
        let skip = usize::try_from(from - first).unwrap_or(usize::MAX);
        Some(
            self.entries
                .iter()
                .skip(skip)
                .map(|(e, _)| e)
                .take_while(|e| e.log_id.index < to)
                .cloned()
                .collect(),
        )
    }
}

/// The Raft log of one replica.
#[derive(Debug, Clone)]
pub struct LogStore {
    store: Arc<Store>,
    recent: Arc<Mutex<Recent>>,
}

impl LogStore {
    /// The log kept in `store`.
    pub fn new(store: Arc<Store>) -> LogStore {
        LogStore::keeping(store, RECENT_BYTES)
    }

    /// The log kept in `store`, keeping up to `bytes` of the newest entries in memory.
    pub(crate) fn keeping(store: Arc<Store>, bytes: usize) -> LogStore {
        LogStore {
            store,
            recent: Arc::new(Mutex::new(Recent {
                entries: VecDeque::new(),
                bytes: 0,
                limit: bytes,
            })),
        }
    }

    /// The database it is kept in.
    #[cfg(test)]
    pub(crate) fn store_for_tests(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        if let Some(kept) = self.recent().range(from, to) {
            return Ok(kept);
        }
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

    /// Not synced: openraft calls this on every commit, inside its core loop, so an fsync here
    /// held the leader's next round up by about a millisecond each time. The mark is only a
    /// hint for the restart (openraft re-applies up to it; the ledger is a persistent state
    /// machine, `docs/replication.md` §2): a crash can lose it only with every write after it,
    /// leaving an older mark that is still true, and the entries it names were written before
    /// it into the same write-ahead log.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = serde_json::to_vec(&committed).map_err(write_err)?;
        self.store
            .side_meta_put_unsynced(COMMITTED, &bytes)
            .map_err(write_err)
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
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for e in entries {
            let bytes = serde_json::to_vec(&e).map_err(write_err)?;
            kept.push((e.clone(), bytes.len()));
            records.push((e.log_id.index, bytes));
        }
        {
            // Kept before they are written, so they are never in the database and missing
            // here (`Recent`'s invariant); a failed write empties it.
            let mut recent = self.recent();
            for (e, size) in kept {
                recent.push(e, size);
            }
        }
        if let Err(e) = self.store.side_append(&records) {
            self.recent().clear();
            return Err(write_err(e));
        }
        // Readable now; acknowledged once the write-ahead log holding it is on disk.
        let synced = self
            .store
            .sync()
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(synced);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.recent().truncate(log_id.index);
        self.store
            .side_delete(log_id.index, u64::MAX)
            .and_then(|()| self.store.sync())
            .map_err(|e| {
                // The database may still hold the tail: what is kept would not be a suffix.
                self.recent().clear();
                write_err(e)
            })
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // The purge point first (synced): a crash before the delete leaves entries the state
        // says are purged, which is harmless; the reverse would leave a hole.
        self.put_meta(PURGED, &log_id).map_err(write_err)?;
        self.recent().purge(log_id.index);
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
