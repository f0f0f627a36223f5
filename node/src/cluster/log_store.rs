//! The Raft log of a replica, in a database of its own beside the ledger's
//! (`docs/replication.md` §2): entries in a [`SideLog`]'s records, the vote, commit mark and purge
//! point in its meta. Contracts kept: no holes (append after the last index, truncate and purge
//! as one range delete each), writes serialised (one owner, `&mut self`), `append` acknowledged
//! only once its own write-ahead log is synced, a purge only once the ledger holding the purged
//! entries' batches is synced; a purge leaves no copy of the purged entries in any file (an
//! erasure depends on it).
//!
//! The newest entries are also kept in memory ([`Recent`]): Raft reads every entry back soon
//! after appending it — once per follower to send it, once to apply it — and would otherwise
//! read and parse it from the database each time.

use super::Cluster;
use coopledger_ledger::side_log::SideLog;
use coopledger_ledger::store::{Store, StoreError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

const VOTE: &[u8] = b"raft/vote";
const COMMITTED: &[u8] = b"raft/committed";
const PURGED: &[u8] = b"raft/purged";
/// Present once everything the ledger's own side families held (where the Raft log was kept
/// before session 25) is in the side log: written last, with a synced write, by the move.
const MOVED: &[u8] = b"raft/moved-from-ledger";

/// Records read from the ledger and written to the side log at a time, when moving.
const MOVE_RECORDS: u64 = 1024;

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
    side: Arc<SideLog>,
    /// The ledger the committed entries are applied to: synced before a purge.
    ledger: Arc<Store>,
    recent: Arc<Mutex<Recent>>,
}

impl LogStore {
    /// Opens the Raft log kept in `dir` beside `ledger`, creating it if there is none. A
    /// ledger that still holds a Raft log in its own side families (written by a build before
    /// the log had a database of its own) has it moved here first.
    pub fn open(dir: &Path, ledger: Arc<Store>) -> Result<LogStore, StoreError> {
        let side = Arc::new(SideLog::open(dir)?);
        move_out_of_the_ledger(&side, &ledger)?;
        Ok(LogStore::keeping(side, ledger, RECENT_BYTES))
    }

    /// The log kept in `side`, keeping up to `bytes` of the newest entries in memory.
    pub(crate) fn keeping(side: Arc<SideLog>, ledger: Arc<Store>, bytes: usize) -> LogStore {
        LogStore {
            side,
            ledger,
            recent: Arc::new(Mutex::new(Recent {
                entries: VecDeque::new(),
                bytes: 0,
                limit: bytes,
            })),
        }
    }

    /// The databases it is kept in and applied to.
    #[cfg(test)]
    pub(crate) fn stores_for_tests(&self) -> (Arc<SideLog>, Arc<Store>) {
        (self.side.clone(), self.ledger.clone())
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.side
            .meta_get(key)?
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("raft meta: {e}")))
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], v: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.side.meta_put(&[(key, &bytes)])
    }
}

/// Moves a Raft log out of the ledger's side families into `side` (once; a no-op when the
/// ledger holds none). Crash-safe at every step: the records are copied (again, after a crash
/// part-way: the same records at the same indexes), then the vote, commit mark and purge point
/// with the [`MOVED`] mark in one synced write, which makes the copied records durable too;
/// only then are they deleted from the ledger, and its files rewritten without them (they may
/// hold an erased member's records, `docs/replication.md` §4). A crash before the mark leaves
/// the ledger's copy whole for the next open to move; after it, only the deletion is redone.
fn move_out_of_the_ledger(side: &SideLog, ledger: &Store) -> Result<(), StoreError> {
    let mut meta = Vec::new();
    for key in [VOTE, COMMITTED, PURGED] {
        if let Some(v) = ledger.side_meta_get(key)? {
            meta.push((key, v));
        }
    }
    let bounds = ledger.side_bounds()?;
    if bounds.is_none() && meta.is_empty() {
        return Ok(());
    }
    if side.meta_get(MOVED)?.is_none() {
        if let Some((first, last)) = bounds {
            let end = last.saturating_add(1);
            let mut from = first;
            while from < end {
                let to = from.saturating_add(MOVE_RECORDS).min(end);
                side.append(&ledger.side_range(from, to)?)?;
                from = to;
            }
        }
        let mut values: Vec<(&[u8], &[u8])> =
            meta.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        values.push((MOVED, b"true"));
        side.meta_put(&values)?;
    }
    ledger.side_delete(0, u64::MAX)?;
    ledger.side_meta_delete(&[VOTE, COMMITTED, PURGED])?;
    ledger.side_scrub()
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
        for (_, bytes) in self.side.range(from, to).map_err(read_err)? {
            out.push(serde_json::from_slice(&bytes).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<Cluster> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<Cluster>, StorageError<u64>> {
        let purged: Option<LogId<u64>> = self.meta(PURGED).map_err(read_err)?;
        let last = match self.side.bounds().map_err(read_err)? {
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
    /// hint for the restart (openraft re-applies up to it, and takes the ledger's applied mark
    /// when that is newer; the ledger is a persistent state machine, `docs/replication.md` §2):
    /// a crash can lose it only with every write after it, leaving an older mark that is still
    /// true, and the entries it names were written before it into the same write-ahead log.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = serde_json::to_vec(&committed).map_err(write_err)?;
        self.side
            .meta_put_unsynced(COMMITTED, &bytes)
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
        if let Err(e) = self.side.append(&records) {
            self.recent().clear();
            return Err(write_err(e));
        }
        // Readable now; acknowledged once the write-ahead log holding it is on disk. It is the
        // side log's own: the fsync carries these entries, not the ledger's unsynced batches.
        let synced = self
            .side
            .sync()
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(synced);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.recent().truncate(log_id.index);
        self.side
            .delete(log_id.index, u64::MAX)
            .and_then(|()| self.side.sync())
            .map_err(|e| {
                // The database may still hold the tail: what is kept would not be a suffix.
                self.recent().clear();
                write_err(e)
            })
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // openraft purges only applied entries, whose batches the ledger has written — but its
        // write-ahead log is synced by its recorder, behind the release (`docs/replication.md`
        // §2, "One fsync a round"). Once these entries are gone nothing could give those batches
        // back after a power cut, so the ledger is synced first.
        self.ledger.sync().map_err(write_err)?;
        // Then the purge point (synced): a crash before the delete leaves entries the state
        // says are purged, which is harmless; the reverse would leave a hole.
        self.put_meta(PURGED, &log_id).map_err(write_err)?;
        self.recent().purge(log_id.index);
        self.side
            .delete(0, log_id.index.saturating_add(1))
            .and_then(|()| self.side.sync())
            .map_err(write_err)?;
        // Then out of every file: a purge follows every erasure, and the purged entries may
        // carry the erased member's records (`SideLog::scrub`). Rare (after snapshots and
        // erasures), and off the async workers.
        let side = self.side.clone();
        tokio::task::spawn_blocking(move || side.scrub())
            .await
            .map_err(|e| write_err(StoreError::Corrupt(format!("scrub task: {e}"))))?
            .map_err(write_err)
    }
}
