//! RocksDB storage: column families, key layouts and the commit of one batch. The byte-level
//! format is specified in `docs/format.md`; every function here states its contract.
//!
//! Pointers, in the order the sequencer moves them (see `sequencer`):
//! `checkpointed ≤ durable`, where `durable` is `meta/size` (entries, nodes, indexes and state
//! committed and fsync'd) and `checkpointed` is the size of the newest stored checkpoint.

use crate::hash::Hash;
use crate::merkle::{NodeId, NodeSource};
use crate::smt::{Position, SmtNode, SmtSource, SmtWrites};
use crate::state::{KeyValue, Overlay, StateSource};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options,
    WriteBatch, WriteOptions, DB,
};
use std::path::Path;

/// On-disk format version, `meta/format`. Bumped on any incompatible change.
/// Version 2 added the state tree (`smt`) and the `log.state` entry closing every batch.
pub const FORMAT_VERSION: u8 = 2;

const CF_META: &str = "meta";
const CF_ENTRIES: &str = "entries";
const CF_NODES: &str = "nodes";
const CF_ENTRY_IDS: &str = "entry_ids";
const CF_LEAVES: &str = "leaves";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_STATE: &str = "state";
const CF_OFFLOG: &str = "offlog";
const CF_SMT: &str = "smt";
const CF_SIDE_LOG: &str = "side_log";
const CF_SIDE_META: &str = "side_meta";
const ALL_CFS: [&str; 11] = [
    CF_META,
    CF_ENTRIES,
    CF_NODES,
    CF_ENTRY_IDS,
    CF_LEAVES,
    CF_CHECKPOINTS,
    CF_STATE,
    CF_OFFLOG,
    CF_SMT,
    CF_SIDE_LOG,
    CF_SIDE_META,
];

const META_FORMAT: &[u8] = b"format";
const META_ORIGIN: &[u8] = b"origin";
const META_VKEY: &[u8] = b"vkey";
const META_SIZE: &[u8] = b"size";
const META_BATCH_TIME: &[u8] = b"batch_time";
/// Present while an `offlog_shred` has deleted records but not yet rewritten storage.
const META_SHRED_PENDING: &[u8] = b"shred_pending";

pub use crate::store_error::StoreError;

/// Big-endian u64 keys sort in numeric order.
pub(crate) fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Writes records of a family keyed by u64 BE index in one atomic write, unsynced.
pub(crate) fn indexed_append(
    db: &DB,
    cf: &ColumnFamily,
    records: &[(u64, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut b = WriteBatch::default();
    for (i, r) in records {
        b.put_cf(cf, be(*i), r);
    }
    let mut w = WriteOptions::default();
    w.set_sync(false);
    db.write_opt(b, &w)?;
    Ok(())
}

/// Deletes the records of a family keyed by u64 BE index with index in `[from, to)` in one
/// atomic write, unsynced.
pub(crate) fn indexed_delete(
    db: &DB,
    cf: &ColumnFamily,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    if from >= to {
        return Ok(());
    }
    let mut b = WriteBatch::default();
    b.delete_range_cf(cf, be(from), be(to));
    let mut w = WriteOptions::default();
    w.set_sync(false);
    db.write_opt(b, &w)?;
    Ok(())
}

/// Records of a family keyed by u64 BE index with index in `[from, to)`, in index order.
pub(crate) fn indexed_range(
    db: &DB,
    cf: &ColumnFamily,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let it = db.iterator_cf(
        cf,
        rocksdb::IteratorMode::From(&be(from), rocksdb::Direction::Forward),
    );
    let mut out = Vec::new();
    for item in it {
        let (k, v) = item?;
        let i = u64_of(&k, "side log key")?;
        if i >= to {
            break;
        }
        out.push((i, v.to_vec()));
    }
    Ok(out)
}

/// The first and last indexes of a family keyed by u64 BE index (`None` when empty).
pub(crate) fn indexed_bounds(db: &DB, cf: &ColumnFamily) -> Result<Option<(u64, u64)>, StoreError> {
    let first = db.iterator_cf(cf, rocksdb::IteratorMode::Start).next();
    let last = db.iterator_cf(cf, rocksdb::IteratorMode::End).next();
    match (first, last) {
        (Some(f), Some(l)) => Ok(Some((
            u64_of(&f?.0, "side log key")?,
            u64_of(&l?.0, "side log key")?,
        ))),
        _ => Ok(None),
    }
}

pub(crate) fn u64_of(v: &[u8], what: &str) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 8 bytes")))
}

/// `nodes` key: level (1 byte) then index (8 bytes, big-endian).
fn node_key(id: NodeId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = id.level;
    k[1..].copy_from_slice(&be(id.index));
    k
}

/// Everything one batch adds, written atomically by [`Store::commit`].
#[derive(Debug, Default)]
pub struct BatchWrite {
    /// `(index, envelope bytes, leaf hash, entry id)` for each new entry, in index order.
    pub entries: Vec<(u64, Vec<u8>, Hash, Hash)>,
    /// Tree nodes completed by the new leaves.
    pub nodes: Vec<(NodeId, Hash)>,
    /// State changes (full keys, namespace byte first); `None` deletes.
    pub state: Overlay,
    /// State-tree node changes that match `state` (see [`crate::smt::update`]).
    pub smt: SmtWrites,
    /// Tree size after the batch.
    pub new_size: u64,
    /// The batch's time.
    pub batch_time_ms: u64,
    /// The signed checkpoint note for `new_size`, stored in the same WriteBatch as the data it
    /// covers (so one fsync makes both durable; it is released only after that).
    pub checkpoint: Option<String>,
    /// Off-log records written in the same WriteBatch (`None` deletes): a replicated log's
    /// off-log writes, applied with the batch that carries them (`docs/replication.md` §4).
    pub offlog: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Side-meta values written in the same WriteBatch (a replication protocol's "applied up
    /// to here" mark, `docs/replication.md` §2), so they are durable exactly with the batch.
    pub side_meta: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The ledger's RocksDB database.
pub struct Store {
    db: DB,
    /// Fault injection for durability tests (`LogConfig::fault_hook`); `None` in production.
    hook: Option<crate::log::FaultHook>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

/// A clean close writes the memtables to table files, so the next open has no write-ahead
/// log to replay (after a crash it has, bounded by the memtables' size). Best effort: every
/// acknowledged write is already durable in the log, so a failure here loses nothing.
impl Drop for Store {
    fn drop(&mut self) {
        let cfs: Vec<&ColumnFamily> = ALL_CFS
            .iter()
            .filter_map(|n| self.db.cf_handle(n))
            .collect();
        let _ = self
            .db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default());
    }
}

/// Options shared by every column family: LZ4, and a Bloom filter (10 bits/key) on the tables
/// of every family whose reads can miss, so that the per-entry point lookups of the hot path
/// (entry id, signer seq, state keys) that miss — almost all of them — cost no data-block reads.
/// One block cache serves all families.
fn db_options(cache: &Cache) -> Options {
    family_options(cache, true)
}

/// The options of one family. Families read only at positions that exist (`entries` by index,
/// `nodes` by tree position) get no Bloom filter — it could only ever answer "maybe" — and keep
/// their index blocks beside their table readers rather than in the shared cache: at 10^8
/// entries those families' filters alone would be ~250 MB, twice the cache, and every proof
/// would evict and reload them (`examples/proofs_at_scale.rs` measured it).
pub(crate) fn family_options(cache: &Cache, filtered: bool) -> Options {
    let mut table = BlockBasedOptions::default();
    if filtered {
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    }
    table.set_block_cache(cache);
    let mut o = Options::default();
    if filtered {
        // The same for the memtable: a lookup that misses (a new entry id, a first state key)
        // otherwise walks the memtable's skip list, ~20 levels of cache misses, before the
        // table files' filters answer (a follower's sequencer spent ~6% of its samples there,
        // `perf record` during `coop-bench --systems cluster`). 2% of the write buffer.
        o.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
        o.set_memtable_whole_key_filtering(true);
    }
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_block_based_table_factory(&table);
    // Recovery of the write-ahead log: an incomplete record at the very end (a write a power
    // cut interrupted, never acknowledged) is dropped; any other damage fails the open loudly.
    // (RocksDB's default, PointInTime, stops at the first bad record and silently drops
    // everything after it, acknowledged or not.) `Log::open` then also checks the database
    // still holds the newest checkpoint the node ever signed (`crate::signed`).
    o.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    o.set_paranoid_checks(true);
    // A write-ahead log file is kept until every family with data in it has flushed, and the
    // small families (`meta`, `checkpoints`) written by every batch would take millions of
    // batches to fill a memtable: without a bound, 10^7 entries left 91 log files, 4.3 GB,
    // for a crash to replay. Past this total RocksDB flushes the families holding the oldest.
    // Replay runs at ~80 MB/s here: 256 MiB took 3.5 s after a SIGKILL, 64 MiB 1.1 s, 32 MiB
    // 0.28 s, with no loss of throughput (`examples/loadgen.rs`, README § Benchmarks).
    o.set_max_total_wal_size(MAX_WAL_BYTES);
    o
}

/// RocksDB's shared environment with its background threads — memtable flushes ("high" pool)
/// and compactions ("low") — at the lowest CPU priority (nice 19, set by each thread as it
/// takes its next job). A flush is a burst of sorting, compressing and filter building:
/// every ~32 MiB of write-ahead log (`MAX_WAL_BYTES`) every family flushes at once, and at
/// normal priority that burst took the cores from the sequencer and Raft — three replicas on
/// two cores flushed within 0.2 s of each other, and for ~0.75 s receipts took 2.5× as long
/// (README § Benchmarks, session 19). At nice 19 the work runs in the cores' idle time instead.
/// It cannot starve: a family whose memtables are all full stops its writers (RocksDB's write
/// stall), which frees the cores for the flush. Process-wide (it is RocksDB's default
/// environment), so every database this process opens shares it.
pub(crate) fn background_env() -> Result<rocksdb::Env, StoreError> {
    let mut env = rocksdb::Env::new()?;
    env.lower_high_priority_thread_pool_cpu_priority();
    env.lower_thread_pool_cpu_priority();
    Ok(env)
}

/// The memtable's Bloom filter, as a share of the write buffer (see `family_options`).
const MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// Bound on the write-ahead log files kept (see `family_options`).
pub(crate) const MAX_WAL_BYTES: u64 = 32 << 20;

/// Whether a family's reads can miss (and so gain from a Bloom filter).
fn reads_can_miss(family: &str) -> bool {
    !matches!(family, CF_ENTRIES | CF_NODES)
}

/// Block cache size shared by all column families.
const BLOCK_CACHE_BYTES: usize = 128 << 20;

pub(crate) fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl Store {
    /// True when `path` holds a ledger database.
    pub fn exists(path: &Path) -> bool {
        path.join("CURRENT").exists()
    }

    /// Creates a new ledger database for `origin`, signed by the key whose verifier key is
    /// `vkey`. Fails if one exists. Leaves size 0, no checkpoint, empty state.
    pub fn create(path: &Path, origin: &str, vkey: &str) -> Result<Store, StoreError> {
        if Store::exists(path) {
            return Err(StoreError::AlreadyExists(path.display().to_string()));
        }
        let store = Store::open_db(path)?;
        let meta = store.cf(CF_META)?;
        let mut b = WriteBatch::default();
        b.put_cf(meta, META_FORMAT, [FORMAT_VERSION]);
        b.put_cf(meta, META_ORIGIN, origin.as_bytes());
        b.put_cf(meta, META_VKEY, vkey.as_bytes());
        b.put_cf(meta, META_SIZE, be(0));
        b.put_cf(meta, META_BATCH_TIME, be(0));
        store.db.write_opt(b, &synced())?;
        Ok(store)
    }

    /// Opens an existing ledger database; refuses one of another format version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !Store::exists(path) {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let store = Store::open_db(path)?;
        match store.meta(META_FORMAT)?.as_deref() {
            Some([FORMAT_VERSION]) => {
                // A crash inside `offlog_shred`: finish rewriting storage before anything else.
                if store.meta(META_SHRED_PENDING)?.is_some() {
                    store.rewrite_offlog()?;
                }
                Ok(store)
            }
            Some(other) => Err(StoreError::Corrupt(format!(
                "format version {other:?}, this build reads {FORMAT_VERSION}"
            ))),
            None => Err(StoreError::Corrupt("meta/format missing".into())),
        }
    }

    fn open_db(path: &Path) -> Result<Store, StoreError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = ALL_CFS.iter().map(|n| {
            let mut o = family_options(&cache, reads_can_miss(n));
            if *n == CF_SMT {
                // State-tree nodes are only ever read by exact key, and a batch writes hundreds
                // of them: a hash memtable (the whole 34-byte key as the hash prefix) inserts in
                // O(1) where the skip list searches ~20 levels per node.
                o.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(34));
                o.set_memtable_factory(rocksdb::MemtableFactory::HashLinkList {
                    bucket_count: 1 << 18,
                });
            }
            ColumnFamilyDescriptor::new(*n, o)
        });
        let mut db_opts = db_options(&cache);
        // The hash memtable takes no concurrent inserts (there is one writer anyway).
        db_opts.set_allow_concurrent_memtable_write(false);
        db_opts.set_env(&background_env()?);
        Ok(Store {
            db: DB::open_cf_descriptors(&db_opts, path, cfs)?,
            hook: None,
        })
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("column family {name} missing")))
    }

    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    fn meta_string(&self, key: &[u8]) -> Result<String, StoreError> {
        let v = self.meta(key)?.ok_or_else(|| {
            StoreError::Corrupt(format!("meta/{} missing", String::from_utf8_lossy(key)))
        })?;
        String::from_utf8(v).map_err(|_| StoreError::Corrupt("meta value is not UTF-8".into()))
    }

    fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.meta(key)? {
            Some(v) => u64_of(&v, "meta value"),
            None => Err(StoreError::Corrupt(format!(
                "meta/{} missing",
                String::from_utf8_lossy(key)
            ))),
        }
    }

    /// Writes the RFC 9162 tree of `leaves` into this store's `nodes` family and sets its size;
    /// returns the size. For measuring proofs at sizes the sequencer would take days to reach
    /// (`examples/proofs_at_scale.rs`): only tree nodes are written — no entries, state or
    /// checkpoint — so the store then serves [`NodeSource`] reads and nothing else. Refuses a
    /// store that is not empty. The nodes bypass the write-ahead log: each level's keys arrive
    /// in order, so one table-file writer per level (a new file every 2^20 nodes, the size of
    /// the files compaction makes) builds sorted files in `scratch`, all ingested at once.
    pub fn generate_tree(
        &self,
        leaves: impl Iterator<Item = Hash>,
        scratch: &Path,
    ) -> Result<u64, StoreError> {
        const NODES_PER_FILE: u64 = 1 << 20;
        if self.size()? != 0 {
            return Err(StoreError::AlreadyExists(
                "generate_tree needs an empty store".into(),
            ));
        }
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let opts = family_options(&cache, reads_can_miss(CF_NODES));
        // Per level: the open writer and how many nodes it holds.
        let mut writers: Vec<Option<(rocksdb::SstFileWriter<'_>, u64)>> = Vec::new();
        let mut files = Vec::new();
        let mut frontier = crate::merkle::Frontier::new();
        let mut created = Vec::with_capacity(64);
        for leaf in leaves {
            created.clear();
            frontier.push(leaf, &mut created);
            for (id, hash) in &created {
                let level = usize::from(id.level);
                if writers.len() <= level {
                    writers.resize_with(level + 1, || None);
                }
                let slot = writers
                    .get_mut(level)
                    .ok_or_else(|| StoreError::Corrupt("tree level".into()))?;
                if slot.as_ref().is_some_and(|(_, n)| *n == NODES_PER_FILE) {
                    if let Some((mut w, _)) = slot.take() {
                        w.finish()?;
                    }
                }
                if slot.is_none() {
                    let path = scratch.join(format!("nodes-{level:02}-{:012}.sst", id.index));
                    let w = rocksdb::SstFileWriter::create(&opts);
                    w.open(&path)?;
                    files.push(path);
                    *slot = Some((w, 0));
                }
                if let Some((w, n)) = slot.as_mut() {
                    w.put(node_key(*id), hash.as_bytes())?;
                    *n += 1;
                }
            }
        }
        for (mut w, _) in writers.into_iter().flatten() {
            w.finish()?;
        }
        let mut ingest = rocksdb::IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        self.db
            .ingest_external_file_cf_opts(self.cf(CF_NODES)?, &ingest, files)?;
        let size = frontier.size();
        self.db
            .put_cf_opt(self.cf(CF_META)?, META_SIZE, be(size), &synced())?;
        Ok(size)
    }

    /// The ledger's origin (also its checkpoint key name).
    pub fn origin(&self) -> Result<String, StoreError> {
        self.meta_string(META_ORIGIN)
    }

    /// The verifier key of the node key this ledger was created with.
    pub fn vkey(&self) -> Result<String, StoreError> {
        self.meta_string(META_VKEY)
    }

    /// `durable`: number of entries committed and fsync'd.
    pub fn size(&self) -> Result<u64, StoreError> {
        self.meta_u64(META_SIZE)
    }

    /// Time of the last committed batch.
    pub fn batch_time(&self) -> Result<u64, StoreError> {
        self.meta_u64(META_BATCH_TIME)
    }

    /// Envelope bytes of entry `index`, if committed.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_ENTRIES)?, be(index))?)
    }

    /// Index of the entry with this entry id, if committed.
    pub fn index_of_entry_id(&self, id: &Hash) -> Result<Option<u64>, StoreError> {
        self.db
            .get_cf(self.cf(CF_ENTRY_IDS)?, id.as_bytes())?
            .map(|v| u64_of(&v, "entry_ids value"))
            .transpose()
    }

    /// Index of the first entry with this leaf hash, if committed.
    pub fn index_of_leaf(&self, leaf: &Hash) -> Result<Option<u64>, StoreError> {
        self.db
            .get_cf(self.cf(CF_LEAVES)?, leaf.as_bytes())?
            .map(|v| u64_of(&v, "leaves value"))
            .transpose()
    }

    /// The stored checkpoint note for tree size `size`, if one was signed at that size.
    pub fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.db
            .get_cf(self.cf(CF_CHECKPOINTS)?, be(size))?
            .map(|v| {
                String::from_utf8(v)
                    .map_err(|_| StoreError::Corrupt("checkpoint is not UTF-8".into()))
            })
            .transpose()
    }

    /// The newest stored checkpoint: `(size, note)`.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let cf = self.cf(CF_CHECKPOINTS)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                let size = u64_of(&k, "checkpoints key")?;
                let note = String::from_utf8(v.into_vec())
                    .map_err(|_| StoreError::Corrupt("checkpoint is not UTF-8".into()))?;
                Ok(Some((size, note)))
            }
        }
    }

    /// Commits one batch atomically and fsyncs it before returning (one WriteBatch, `sync=true`).
    /// Contract: on `Ok`, every entry, node, index and state change of the batch, the new
    /// `size` and the batch's checkpoint note survive a crash; on `Err`, none of them is visible
    /// after restart.
    pub fn commit(&self, batch: &BatchWrite) -> Result<(), StoreError> {
        self.db.write_opt(self.batch_of(batch)?, &synced())?;
        Ok(())
    }

    /// Writes one batch atomically *without* waiting for it to be durable: readers see it at
    /// once, and a later [`Store::sync`] makes it (and every write before it) durable.
    /// Contract: until that sync returns, a power cut may lose this batch and every later one,
    /// never an earlier one (the write-ahead log survives as a prefix); a process crash loses
    /// nothing (the bytes are the kernel's).
    pub fn write_unsynced(&self, batch: &BatchWrite) -> Result<(), StoreError> {
        self.db.write(self.batch_of(batch)?)?;
        Ok(())
    }

    /// Makes every write so far durable (fsync of the write-ahead log).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)?;
        match &self.hook {
            Some(hook) => hook(crate::FaultPoint::Synced),
            None => Ok(()),
        }
    }

    /// The store with `hook` called at its fault points ([`crate::FaultPoint::Synced`]).
    pub(crate) fn with_fault_hook(mut self, hook: Option<crate::log::FaultHook>) -> Store {
        self.hook = hook;
        self
    }

    fn batch_of(&self, batch: &BatchWrite) -> Result<WriteBatch, StoreError> {
        let (entries, ids, leaves, nodes, state, meta, smt) = (
            self.cf(CF_ENTRIES)?,
            self.cf(CF_ENTRY_IDS)?,
            self.cf(CF_LEAVES)?,
            self.cf(CF_NODES)?,
            self.cf(CF_STATE)?,
            self.cf(CF_META)?,
            self.cf(CF_SMT)?,
        );
        let mut b = WriteBatch::default();
        for (index, bytes, leaf, id) in &batch.entries {
            b.put_cf(entries, be(*index), bytes);
            b.put_cf(ids, id.as_bytes(), be(*index));
            b.put_cf(leaves, leaf.as_bytes(), be(*index));
        }
        for (id, h) in &batch.nodes {
            b.put_cf(nodes, node_key(*id), h.as_bytes());
        }
        for (k, v) in &batch.state {
            match v {
                Some(v) => b.put_cf(state, k, v),
                None => b.delete_cf(state, k),
            }
        }
        for (pos, node) in &batch.smt {
            match node {
                Some(n) => b.put_cf(smt, pos.to_key(), n.encode()),
                None => b.delete_cf(smt, pos.to_key()),
            }
        }
        if !batch.offlog.is_empty() {
            let offlog = self.cf(CF_OFFLOG)?;
            for (k, v) in &batch.offlog {
                match v {
                    Some(v) => b.put_cf(offlog, k, v),
                    None => b.delete_cf(offlog, k),
                }
            }
        }
        if !batch.side_meta.is_empty() {
            let side = self.cf(CF_SIDE_META)?;
            for (k, v) in &batch.side_meta {
                b.put_cf(side, k, v);
            }
        }
        if batch.entries.is_empty() {
            // Only side values (a replicated batch that added no entry): the tree, its size
            // and its batch time stay as they are.
            return Ok(b);
        }
        b.put_cf(meta, META_SIZE, be(batch.new_size));
        b.put_cf(meta, META_BATCH_TIME, be(batch.batch_time_ms));
        if let Some(note) = &batch.checkpoint {
            b.put_cf(
                self.cf(CF_CHECKPOINTS)?,
                be(batch.new_size),
                note.as_bytes(),
            );
        }
        Ok(b)
    }

    /// Stores a signed checkpoint for `size` and fsyncs it before returning.
    /// Contract: callers only store checkpoints for sizes `≤ durable`, in increasing order.
    pub fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.db.put_cf_opt(
            self.cf(CF_CHECKPOINTS)?,
            be(size),
            note.as_bytes(),
            &synced(),
        )?;
        Ok(())
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `dest` (which must not exist), while
    /// writers go on: RocksDB's checkpoint (hard links to the immutable SST files, the live data
    /// flushed first). The copy opens as a database of its own.
    pub fn checkpoint_to(&self, dest: &Path) -> Result<(), StoreError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dest)?;
        Ok(())
    }
}

/// Off-log records: durable data the node keeps beside the log that is *not* part of the log,
/// its state or any proof (e.g. sealed ballots waiting for the close). Keys are the caller's.
impl Store {
    /// Stores `value` under `key` and fsyncs it before returning.
    /// Contract: on `Ok` the record survives a crash; a later `offlog_put` of the same key
    /// replaces it.
    pub fn offlog_put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(CF_OFFLOG)?, key, value, &synced())?;
        Ok(())
    }

    /// The record under `key`, if any.
    pub fn offlog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_OFFLOG)?, key)?)
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn offlog_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.prefix_scan(CF_OFFLOG, prefix)
    }

    /// Every `(key, value)` of column family `cf` whose key starts with `prefix`, in key order.
    fn prefix_scan(&self, cf: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let iter = self.db.iterator_cf(
            self.cf(cf)?,
            rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    /// Appends records to the side log: an ordered log of opaque records, keyed by `u64`
    /// index, that this database's `side_log` family held for a replica's Raft log before it
    /// moved to a database of its own ([`crate::side_log::SideLog`], `docs/replication.md` §2).
    /// Kept to read, move and clear what such a folder holds (and to write one in tests).
    /// Written unsynced, readable at once; durable after the next [`Store::sync`].
    pub fn side_append(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        indexed_append(&self.db, self.cf(CF_SIDE_LOG)?, records)
    }

    /// Side-log records with index in `[from, to)`, in index order.
    pub fn side_range(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        indexed_range(&self.db, self.cf(CF_SIDE_LOG)?, from, to)
    }

    /// The first and last side-log records' indexes (`None` when empty).
    pub fn side_bounds(&self) -> Result<Option<(u64, u64)>, StoreError> {
        indexed_bounds(&self.db, self.cf(CF_SIDE_LOG)?)
    }

    /// Deletes side-log records with index in `[from, to)` in one atomic write, unsynced
    /// (durable after the next [`Store::sync`]).
    pub fn side_delete(&self, from: u64, to: u64) -> Result<(), StoreError> {
        indexed_delete(&self.db, self.cf(CF_SIDE_LOG)?, from, to)
    }

    /// Makes side-log records already deleted leave every file of the database: flushes every
    /// family (so no write-ahead log file still holds them; the log files whose records are all
    /// in tables are then deleted) and rewrites the side log's tables without them. Moving a
    /// Raft log out of this database runs it, so entries that may carry an erased member's
    /// records are in no file of it afterwards (`docs/replication.md` §4).
    pub fn side_scrub(&self) -> Result<(), StoreError> {
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name)?)?;
        }
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        opts.set_exclusive_manual_compaction(true);
        self.db
            .compact_range_cf_opt(self.cf(CF_SIDE_LOG)?, None::<&[u8]>, None::<&[u8]>, &opts);
        Ok(())
    }

    /// Reads a side-meta value.
    pub fn side_meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_SIDE_META)?, key)?)
    }

    /// Writes a side-meta value, fsync'd before it returns.
    pub fn side_meta_put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(CF_SIDE_META)?, key, value, &synced())?;
        Ok(())
    }

    /// Deletes side-meta values in one atomic write, fsync'd (which also makes every earlier
    /// write durable).
    pub fn side_meta_delete(&self, keys: &[&[u8]]) -> Result<(), StoreError> {
        let cf = self.cf(CF_SIDE_META)?;
        let mut b = WriteBatch::default();
        for k in keys {
            b.delete_cf(cf, k);
        }
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    /// Writes and deletes (`None`) off-log records in one atomic write, fsync'd.
    pub fn offlog_write(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let offlog = self.cf(CF_OFFLOG)?;
        let mut b = WriteBatch::default();
        for (k, v) in ops {
            match v {
                Some(v) => b.put_cf(offlog, k, v),
                None => b.delete_cf(offlog, k),
            }
        }
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    /// Replaces every off-log record with `records` in one atomic write, fsync'd (a replica
    /// installing a snapshot). A record the replacement drops or changes may be one an erasure
    /// shredded while this replica was away, so its old bytes are then rewritten out of every
    /// file as [`Store::offlog_shred`] does (the same crash-safe marker).
    pub fn offlog_replace(&self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let offlog = self.cf(CF_OFFLOG)?;
        let kept: std::collections::HashMap<&[u8], &[u8]> = records
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let mut b = WriteBatch::default();
        let mut dropped = false;
        for (k, v) in self.prefix_scan(CF_OFFLOG, b"")? {
            dropped |= kept.get(k.as_slice()) != Some(&v.as_slice());
            b.delete_cf(offlog, k);
        }
        for (k, v) in records {
            b.put_cf(offlog, k, v);
        }
        if dropped {
            b.put_cf(self.cf(CF_META)?, META_SHRED_PENDING, []);
        }
        self.db.write_opt(b, &synced())?;
        if dropped {
            self.rewrite_offlog()?;
        }
        Ok(())
    }

    /// Deletes the record under `key` (fsync'd).
    pub fn offlog_delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.db.delete_cf_opt(self.cf(CF_OFFLOG)?, key, &synced())?;
        Ok(())
    }

    /// Deletes the records under `keys` and rewrites storage so that their old bytes are in no
    /// file of the data folder (crypto-shredding needs the key gone from disk, not just
    /// unreachable). Steps: delete (fsync'd); flush every column family's memtable, after which
    /// no live write-ahead log holds the old records and RocksDB deletes those logs; compact the
    /// off-log family down to its last level, which drops the old values and their tombstones
    /// and deletes the old table files.
    /// Contract: on `Ok`, no file RocksDB keeps holds the deleted values. Blocks that the file
    /// system freed are outside its reach (see docs/format.md, "Erasure").
    pub fn offlog_shred(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let offlog = self.cf(CF_OFFLOG)?;
        let mut b = WriteBatch::default();
        for k in keys {
            b.delete_cf(offlog, k);
        }
        // The marker makes the rewrite survive a crash: `open` finishes it.
        b.put_cf(self.cf(CF_META)?, META_SHRED_PENDING, []);
        self.db.write_opt(b, &synced())?;
        self.rewrite_offlog()
    }

    /// Steps 2–3 of [`Store::offlog_shred`], then clears the marker.
    fn rewrite_offlog(&self) -> Result<(), StoreError> {
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name)?)?;
        }
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        opts.set_exclusive_manual_compaction(true);
        self.db
            .compact_range_cf_opt(self.cf(CF_OFFLOG)?, None::<&[u8]>, None::<&[u8]>, &opts);
        self.db
            .delete_cf_opt(self.cf(CF_META)?, META_SHRED_PENDING, &synced())?;
        Ok(())
    }
}

impl NodeSource for Store {
    type Error = StoreError;

    /// One `multi_get` for all ids. Contract: every id is a complete node of the durable tree;
    /// a missing one means corruption.
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let cf = self.cf(CF_NODES)?;
        let keys: Vec<[u8; 9]> = ids.iter().map(|id| node_key(*id)).collect();
        let got = self.db.multi_get_cf(keys.iter().map(|k| (cf, k)));
        got.into_iter()
            .zip(ids)
            .map(|(r, id)| {
                let v =
                    r?.ok_or_else(|| StoreError::Corrupt(format!("tree node {id:?} missing")))?;
                Hash::from_slice(&v)
                    .ok_or_else(|| StoreError::Corrupt(format!("tree node {id:?} is not 32 bytes")))
            })
            .collect()
    }
}

impl SmtSource for Store {
    type Error = StoreError;

    /// Contract: the committed tree matches the committed state (both change in one batch).
    fn smt_node(&self, pos: &Position) -> Result<Option<SmtNode>, StoreError> {
        self.db
            .get_cf(self.cf(CF_SMT)?, pos.to_key())?
            .map(|v| {
                SmtNode::decode(&v).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "state tree node at depth {} is malformed",
                        pos.depth
                    ))
                })
            })
            .transpose()
    }
}

impl StateSource for Store {
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_STATE)?, key)?)
    }

    fn state_values(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let cf = self.cf(CF_STATE)?;
        self.db
            .multi_get_cf(keys.iter().map(|k| (cf, *k)))
            .into_iter()
            .map(|r| r.map_err(StoreError::from))
            .collect()
    }

    fn state_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.prefix_scan(CF_STATE, prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rocksdb_failure_keeps_its_cause_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::create(dir.path(), "o", "k").unwrap();
        // The folder is locked by the first handle: RocksDB's own I/O error comes back whole.
        let err = Store::open(dir.path()).unwrap_err();
        match &err {
            StoreError::Db(e) => {
                assert_eq!(e.kind(), rocksdb::ErrorKind::IOError, "{e}");
                assert!(std::error::Error::source(&err).is_some());
            }
            other => panic!("expected a RocksDB error, got {other:?}"),
        }
        assert!(!err.is_transient(), "a held lock is not retried blindly");
        assert!(!StoreError::Corrupt("x".into()).is_transient());
    }

    /// The nice values of this process's threads named `name` (Linux `/proc`).
    fn nice_of_threads(name: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // After the `(comm)` field: state is field 3, nice field 19.
            let after = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            if let Some(nice) = after.split_whitespace().nth(16) {
                out.push(nice.parse().unwrap());
            }
        }
        out
    }

    /// A memtable flush runs at nice 19, so its burst of work waits for the cores' idle time
    /// instead of taking them from the sequencer (`background_env`).
    #[test]
    fn a_memtable_flush_runs_at_the_lowest_cpu_priority() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), "o", "k").unwrap();
        let cf = store.cf(CF_STATE).unwrap();
        store.db.put_cf(cf, b"key", b"value").unwrap();
        // Waits for the flush job, which a "rocksdb:high" thread runs after lowering itself.
        store.db.flush_cf(cf).unwrap();
        let nices = nice_of_threads("rocksdb:high");
        assert!(
            nices.contains(&19),
            "a flush thread at nice 19 among {nices:?}"
        );
    }

    fn log_file_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    /// A clean close folds the write-ahead log into table files: the next open has nothing to
    /// replay, and the folder holds no second copy of what was written.
    #[test]
    fn a_clean_close_leaves_no_write_ahead_log_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), "o", "k").unwrap();
        for i in 0u32..200 {
            store.offlog_put(&i.to_be_bytes(), &[7; 1000]).unwrap();
        }
        assert!(log_file_bytes(dir.path()) > 200_000);
        drop(store);
        assert_eq!(log_file_bytes(dir.path()), 0);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.offlog_get(&199u32.to_be_bytes()).unwrap(),
            Some(vec![7; 1000])
        );
    }

    /// A generated tree is the RFC 9162 tree of its leaves: the same root as the in-memory
    /// tree, proofs that verify; and only an empty store takes one.
    #[test]
    fn a_generated_tree_serves_the_same_root_and_proofs_as_the_tree_in_memory() {
        use crate::hash::leaf_hash;
        use crate::merkle::{self, MemoryTree};
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("db"), "o", "k").unwrap();
        let leaves: Vec<Hash> = (0u64..3_001).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let size = store
            .generate_tree(leaves.iter().copied(), scratch.path())
            .unwrap();
        assert_eq!(size, 3_001);
        assert_eq!(store.size().unwrap(), 3_001);
        let mut mem = MemoryTree::new();
        for l in &leaves {
            mem.push(*l);
        }
        let root = merkle::root(&store, size).unwrap();
        assert_eq!(root, mem.root());
        for i in [0u64, 1, 1_024, 2_047, 3_000] {
            let proof = merkle::span_hashes(&store, &merkle::inclusion_plan(i, size)).unwrap();
            crate::verify::verify_inclusion(&leaves[i as usize], i, size, &proof, &root).unwrap();
        }
        let old = merkle::root(&store, 1_000).unwrap();
        let proof = merkle::span_hashes(&store, &merkle::consistency_plan(1_000, size)).unwrap();
        crate::verify::verify_consistency(1_000, size, &proof, &old, &root).unwrap();
        assert!(matches!(
            store.generate_tree(leaves.iter().copied(), scratch.path()),
            Err(StoreError::AlreadyExists(_))
        ));
    }

    fn files_holding(dir: &Path, needle: &[u8]) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read(e.path())
                            .map(|b| b.windows(needle.len()).any(|w| w == needle))
                            .unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// A replica installing a snapshot taken after an erasure it missed: the replacement drops
    /// the erased record, and its old bytes must leave every file, not only the live view.
    #[test]
    fn a_replacement_that_drops_a_record_leaves_its_bytes_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"0123456789abcdef-a-data-key-missed-by-a-replica".to_vec();
        let store = Store::create(dir.path(), "o", "v").unwrap();
        store.offlog_put(b"pii-key/m", &secret).unwrap();
        store.offlog_put(b"vault/other", b"kept").unwrap();
        store.db.flush_cf(store.cf(CF_OFFLOG).unwrap()).unwrap();
        assert!(files_holding(dir.path(), &secret) > 0);
        store
            .offlog_replace(&[(b"vault/other".to_vec(), b"kept".to_vec())])
            .unwrap();
        assert_eq!(files_holding(dir.path(), &secret), 0);
        assert_eq!(store.offlog_get(b"pii-key/m").unwrap(), None);
        assert_eq!(
            store.offlog_get(b"vault/other").unwrap(),
            Some(b"kept".to_vec())
        );
        assert_eq!(store.meta(META_SHRED_PENDING).unwrap(), None);
    }

    /// A crash after the deletes of `offlog_shred` and before storage is rewritten: the old
    /// bytes are still in a file, and opening the store finishes the job.
    #[test]
    fn an_interrupted_shred_is_finished_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"0123456789abcdef-a-data-key-that-must-go".to_vec();
        {
            let store = Store::create(dir.path(), "o", "v").unwrap();
            store.offlog_put(b"pii-key/m", &secret).unwrap();
            store.db.flush_cf(store.cf(CF_OFFLOG).unwrap()).unwrap();
            let mut b = WriteBatch::default();
            b.delete_cf(store.cf(CF_OFFLOG).unwrap(), b"pii-key/m");
            b.put_cf(store.cf(CF_META).unwrap(), META_SHRED_PENDING, []);
            store.db.write_opt(b, &synced()).unwrap();
            // "crash": no rewrite.
        }
        assert!(
            files_holding(dir.path(), &secret) > 0,
            "the search must see it first"
        );
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(files_holding(dir.path(), &secret), 0);
        assert_eq!(store.meta(META_SHRED_PENDING).unwrap(), None);
        assert_eq!(store.offlog_get(b"pii-key/m").unwrap(), None);
    }
}
