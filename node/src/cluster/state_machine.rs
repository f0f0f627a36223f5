//! The ledger as openraft's state machine (`docs/replication.md` §1, §2, §6): every committed
//! Raft entry is applied by the ledger's own sequencer as one batch, with the Raft log id it
//! came from (and any new membership) written in the same write; a snapshot is the ledger's
//! history up to the applied point, which a replica that fell behind imports — re-applied
//! under its own rules and checked against the log key's checkpoint notes, never copied blind.
//!
//! Snapshot file: `<dir>/current.snap`, written to a temporary name and renamed; its format
//! and reader are `coopledger_cluster_formats::snapshot`.
//!
//! Segments end on sizes the log key signed (batch boundaries), about [`SEGMENT_ENTRIES`]
//! entries each, so a replica imports and checks a segment at a time. The off-log records (ballot
//! box, vault, witness state) as of the applied point follow; a replica installing the snapshot
//! replaces its own with them. A snapshot is rebuilt, and the Raft log purged, after every
//! erasure (`docs/replication.md` §4), so neither holds an erased member's key afterwards.

use super::{Applied, Cluster, Command, ReplicaAddr};
pub use coopledger_cluster_formats::snapshot::SEGMENT_ENTRIES;
use coopledger_cluster_formats::snapshot::{
    record_prefix, Header, Meta, Segment, SnapshotReader, MAGIC,
};
use coopledger_ledger::log::replication::{CommittedBatch, ProposedBatch};
use coopledger_ledger::{Log, StateMachine};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, StorageError, StorageIOError, StoredMembership,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Side-meta key of the last applied Raft log id (JSON), written with the batch it applied.
pub const APPLIED: &[u8] = b"raft/applied";
/// Side-meta key of the last applied membership (JSON).
pub const MEMBERSHIP: &[u8] = b"raft/membership";
/// Side-meta key of the highest Raft index (JSON number) of an applied entry that shredded
/// off-log records — written with that entry's batch, or, when a snapshot is installed, its
/// index (the snapshot may cover erasures this replica never applied itself). Survives a
/// restart, so a replayed erasure is answered against the right index.
pub const SHREDDED: &[u8] = b"raft/shredded";

/// An off-log record: key, value.
type OfflogRecord = (Vec<u8>, Vec<u8>);
type Membership = StoredMembership<u64, ReplicaAddr>;

/// The ledger of one replica, as Raft's state machine.
pub struct LedgerMachine<M: StateMachine> {
    log: Arc<Log<M>>,
    /// Where snapshots are kept (`<data>/raft-snapshots`).
    dir: PathBuf,
    /// Told the Raft index of every applied entry that shredded off-log records, so the
    /// replica rebuilds its snapshot and purges its Raft log through it.
    shredded: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
    /// The highest Raft index of an entry that shreds off-log records, raised before that
    /// entry is handed to the ledger — so whoever sees the erasure applied finds its index
    /// here (or a later erasure's).
    shred_mark: Arc<std::sync::atomic::AtomicU64>,
}

impl<M: StateMachine> std::fmt::Debug for LedgerMachine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerMachine")
            .field("log", &self.log)
            .field("dir", &self.dir)
            .finish()
    }
}

impl<M: StateMachine> LedgerMachine<M> {
    /// The machine over `log`, keeping snapshots in `dir` (created if missing).
    pub fn new(log: Arc<Log<M>>, dir: PathBuf) -> std::io::Result<LedgerMachine<M>> {
        std::fs::create_dir_all(&dir)?;
        Ok(LedgerMachine {
            log,
            dir,
            shredded: None,
            shred_mark: Arc::default(),
        })
    }

    /// Tells `to` the Raft index of each applied erasure, and keeps the highest in `mark`.
    pub fn on_shred(
        mut self,
        to: tokio::sync::mpsc::UnboundedSender<u64>,
        mark: Arc<std::sync::atomic::AtomicU64>,
    ) -> LedgerMachine<M> {
        self.shredded = Some(to);
        self.shred_mark = mark;
        self
    }

    /// The stored [`SHREDDED`] mark (0: no erasure applied).
    pub fn stored_shred_mark(&self) -> Result<u64, String> {
        Ok(self.read_meta::<u64>(SHREDDED)?.unwrap_or(0))
    }

    fn current(&self) -> PathBuf {
        self.dir.join("current.snap")
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, String> {
        self.log
            .side_meta_get(key)
            .map_err(|e| e.to_string())?
            .map(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .transpose()
    }
}

/// Builds a snapshot of what was applied when the builder was made.
pub struct SnapshotWriter<M: StateMachine> {
    log: Arc<Log<M>>,
    dir: PathBuf,
    applied: Option<LogId<u64>>,
    membership: Membership,
    size: u64,
    /// The off-log records at the applied point, or why they, the applied state or the size
    /// could not be read (then no snapshot is built: a wrong one would be installed).
    offlog: Result<Vec<OfflogRecord>, String>,
}

impl<M: StateMachine> std::fmt::Debug for SnapshotWriter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("applied", &self.applied)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

fn sm_read(e: impl ToString) -> StorageError<u64> {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

fn sm_write(e: impl ToString) -> StorageError<u64> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn snap_write(e: impl ToString) -> StorageError<u64> {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

fn snap_read(e: impl ToString) -> StorageError<u64> {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

async fn put_record(out: &mut tokio::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    let len = record_prefix(bytes.len()).map_err(std::io::Error::other)?;
    out.write_all(&len).await?;
    out.write_all(bytes).await
}

/// Runs a step of the (synchronous) snapshot reader on a blocking thread.
async fn reading<T: Send + 'static>(
    step: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StorageError<u64>> {
    tokio::task::spawn_blocking(step).await.map_err(snap_read)
}

/// A reader over a snapshot file from its start.
async fn open_snapshot(
    file: &tokio::fs::File,
) -> Result<SnapshotReader<std::io::BufReader<std::fs::File>>, StorageError<u64>> {
    let mut file = file.try_clone().await.map_err(snap_read)?.into_std().await;
    reading(move || {
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        SnapshotReader::open(std::io::BufReader::new(file))
    })
    .await?
    .map_err(snap_read)
}

impl<M: StateMachine> SnapshotWriter<M> {
    /// Writes the snapshot file; returns its path and metadata.
    async fn write(&self) -> Result<(PathBuf, Meta), StorageError<u64>> {
        let offlog = self.offlog.as_ref().map_err(snap_write)?;
        // The batch of `size` is written; wait until its checkpoint is released (entries are
        // read only under a released checkpoint).
        for _ in 0..3000 {
            if self.log.checkpoint().checkpoint.size >= self.size {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let meta = Meta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                self.applied.map_or(0, |l| l.leader_id.term),
                self.applied.map_or(0, |l| l.index),
                self.size
            ),
        };
        let tmp = self
            .dir
            .join(format!("building-{}.snap", rand::random::<u64>()));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(snap_write)?;
        out.write_all(MAGIC).await.map_err(snap_write)?;
        let header = serde_json::to_vec(&Header {
            meta: meta.clone(),
            size: self.size,
            offlog: offlog.len() as u64,
        })
        .map_err(snap_write)?;
        put_record(&mut out, &header).await.map_err(snap_write)?;
        let mut start = 0;
        let mut i = 0;
        while start < self.size {
            i = (i + 1).max(start + 1);
            let at = if i - start >= SEGMENT_ENTRIES || i == self.size {
                self.log.checkpoint_at(i).map_err(snap_write)?
            } else {
                None
            };
            let Some(note) = at else {
                if i >= self.size {
                    return Err(snap_write(format!("no signed checkpoint at size {i}")));
                }
                continue;
            };
            let segment = serde_json::to_vec(&Segment {
                start,
                count: i - start,
                note,
            })
            .map_err(snap_write)?;
            put_record(&mut out, &segment).await.map_err(snap_write)?;
            for index in start..i {
                let entry = self.log.entry(index).map_err(snap_write)?;
                put_record(&mut out, &entry).await.map_err(snap_write)?;
            }
            start = i;
        }
        for (k, v) in offlog {
            put_record(&mut out, k).await.map_err(snap_write)?;
            put_record(&mut out, v).await.map_err(snap_write)?;
        }
        out.sync_all().await.map_err(snap_write)?;
        Ok((tmp, meta))
    }
}

impl<M: StateMachine> RaftSnapshotBuilder<Cluster> for SnapshotWriter<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Cluster>, StorageError<u64>> {
        let (tmp, meta) = self.write().await?;
        let current = self.dir.join("current.snap");
        tokio::fs::rename(&tmp, &current)
            .await
            .map_err(snap_write)?;
        let file = tokio::fs::File::open(&current).await.map_err(snap_read)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl<M: StateMachine> RaftStateMachine<Cluster> for LedgerMachine<M> {
    type SnapshotBuilder = SnapshotWriter<M>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        let applied: Option<Option<LogId<u64>>> = self.read_meta(APPLIED).map_err(sm_read)?;
        let membership: Option<Membership> = self.read_meta(MEMBERSHIP).map_err(sm_read)?;
        Ok((applied.flatten(), membership.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Cluster>> + Send,
        I::IntoIter: Send,
    {
        // Every batch is queued for the sequencer first, then waited for: batch k+1 is
        // sequenced while batch k is made durable, as on a single node.
        let mut written = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let applied = serde_json::to_vec(&Some(log_id)).map_err(sm_write)?;
            let mut side_meta = vec![(APPLIED.to_vec(), applied)];
            let mut shreds = false;
            let batch = match entry.payload {
                EntryPayload::Normal(Command::Batch(b)) => {
                    shreds = b.shreds();
                    if shreds {
                        self.shred_mark
                            .fetch_max(log_id.index, std::sync::atomic::Ordering::SeqCst);
                        side_meta.push((
                            SHREDDED.to_vec(),
                            serde_json::to_vec(&log_id.index).map_err(sm_write)?,
                        ));
                    }
                    b.into_batch()
                }
                EntryPayload::Blank => nothing(),
                EntryPayload::Membership(m) => {
                    let stored = Membership::new(Some(log_id), m);
                    side_meta.push((
                        MEMBERSHIP.to_vec(),
                        serde_json::to_vec(&stored).map_err(sm_write)?,
                    ));
                    nothing()
                }
            };
            let rx = self
                .log
                .apply_committed(CommittedBatch { batch, side_meta })
                .await
                .map_err(|e| StorageIOError::apply(log_id, AnyError::error(e.to_string())))?;
            written.push((log_id, rx, shreds));
        }
        let mut out = Vec::with_capacity(written.len());
        for (log_id, rx, shreds) in written {
            let size = rx
                .await
                .map_err(|_| "the ledger stopped".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|e| StorageIOError::apply(log_id, AnyError::error(e)))?;
            if shreds {
                if let Some(to) = &self.shredded {
                    let _ = to.send(log_id.index);
                }
            }
            out.push(Applied { size });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Called between applies: what is applied now is written, so this size and applied id
        // go together.
        // A state or size that cannot be read fails the build rather than describe a snapshot
        // that is not the applied one (a receiver would install it).
        let mut unreadable = None;
        let (applied, membership) = match self.applied_state().await {
            Ok(s) => s,
            Err(e) => {
                unreadable = Some(format!("the applied state: {e}"));
                (None, Membership::default())
            }
        };
        let size = match self.log.written_size() {
            Ok(n) => n,
            Err(e) => {
                unreadable.get_or_insert(format!("the ledger's size: {e}"));
                0
            }
        };
        // The off-log records as of this applied point (they change with later batches).
        let offlog = match unreadable {
            Some(why) => Err(why),
            None => self.log.offlog_scan(b"").map_err(|e| e.to_string()),
        };
        SnapshotWriter {
            log: self.log.clone(),
            dir: self.dir.clone(),
            applied,
            membership,
            size,
            offlog,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<u64>> {
        let path = self
            .dir
            .join(format!("receiving-{}.snap", rand::random::<u64>()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(snap_write)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<u64>> {
        let file = &mut *snapshot;
        file.flush().await.map_err(snap_read)?;
        let mut reader = open_snapshot(file).await?;
        let header = reader.header().clone();
        if header.meta != *meta {
            return Err(snap_read(
                "the snapshot's header is not the metadata it came with",
            ));
        }
        let mut size = self.log.written_size().map_err(sm_read)?;
        if size > header.size {
            return Err(sm_write(format!(
                "this replica's ledger holds {size} entries, more than the snapshot's {}: \
                 refusing to install it",
                header.size
            )));
        }
        loop {
            let keep_from = size;
            let (back, next) = reading(move || {
                let next = reader.next_segment(keep_from);
                (reader, next)
            })
            .await?;
            reader = back;
            let Some(read) = next.map_err(snap_read)? else {
                break;
            };
            if !read.entries.is_empty() {
                // Re-applied here under this replica's rules, and checked against the log
                // key's note for the segment's end, before anything of it is written.
                size = self
                    .log
                    .import_history(read.first, read.entries, &read.segment.note)
                    .await
                    .map_err(sm_write)?;
            }
        }
        let offlog = reading(move || reader.finish()).await?.map_err(snap_read)?;
        self.log.offlog_replace(&offlog).map_err(sm_write)?;
        // The snapshot may hold erasures this replica never applied: its index stands for
        // them (higher than theirs, so a replayed erasure is confirmed only by replicas that
        // purged at least that far — never too early).
        let snapshot_index = meta.last_log_id.map_or(0, |l| l.index);
        let mark = self
            .shred_mark
            .fetch_max(snapshot_index, std::sync::atomic::Ordering::SeqCst)
            .max(snapshot_index);
        // The applied point, membership and erasure mark, in one write after the imported
        // batches.
        let side_meta = vec![
            (
                SHREDDED.to_vec(),
                serde_json::to_vec(&mark).map_err(sm_write)?,
            ),
            (
                APPLIED.to_vec(),
                serde_json::to_vec(&meta.last_log_id).map_err(sm_write)?,
            ),
            (
                MEMBERSHIP.to_vec(),
                serde_json::to_vec(&meta.last_membership).map_err(sm_write)?,
            ),
        ];
        let rx = self
            .log
            .apply_committed(CommittedBatch {
                batch: nothing(),
                side_meta,
            })
            .await
            .map_err(sm_write)?;
        rx.await
            .map_err(|_| sm_write("the ledger stopped"))?
            .map_err(sm_write)?;
        self.log.sync_written().map_err(sm_write)?;
        // The received file becomes the current snapshot (served to replicas behind this one).
        file.sync_all().await.map_err(snap_write)?;
        let received = self
            .dir
            .join(format!("installed-{}.snap", rand::random::<u64>()));
        let mut copy = tokio::fs::File::create(&received)
            .await
            .map_err(snap_write)?;
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(snap_read)?;
        tokio::io::copy(file, &mut copy).await.map_err(snap_write)?;
        copy.sync_all().await.map_err(snap_write)?;
        tokio::fs::rename(&received, self.current())
            .await
            .map_err(snap_write)?;
        remove_received(&self.dir).await;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Cluster>>, StorageError<u64>> {
        let mut file = match tokio::fs::File::open(self.current()).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snap_read(e)),
        };
        let header = open_snapshot(&file).await?.header().clone();
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(snap_read)?;
        Ok(Some(Snapshot {
            meta: header.meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Files of snapshots received (installed or abandoned): the current one is kept apart.
async fn remove_received(dir: &std::path::Path) {
    let Ok(mut list) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(item)) = list.next_entry().await {
        let name = item.file_name();
        if name.to_string_lossy().starts_with("receiving-") {
            let _ = tokio::fs::remove_file(item.path()).await;
        }
    }
}

/// A batch of no entries (a blank or membership entry: only the applied mark is written).
fn nothing() -> ProposedBatch {
    ProposedBatch {
        proposer: 0,
        ticket: 0,
        items: Vec::new(),
        batch_time_ms: 0,
    }
}
