//! A log of opaque records with a small key-value meta, in a RocksDB database of its own beside
//! the ledger's — a replication protocol's log (the Raft log of a replica,
//! `docs/replication.md` §2). Its own database means its own write-ahead log: syncing it
//! carries only its records, not the ledger's unsynced batches, and the ledger's log grows at
//! the ledger's own rate. The byte layout is in `docs/format.md` ("The side log").
//!
//! Contracts: records are keyed by `u64` index and read back in index order; every write is
//! one atomic `WriteBatch`; an unsynced write is readable at once and durable after the next
//! [`SideLog::sync`] or synced write, and the write-ahead log is recovered as a prefix, so a
//! crash loses at most a suffix of the unsynced writes, never an earlier one.

use crate::store::{
    background_env, family_options, indexed_append, indexed_bounds, indexed_delete, indexed_range,
    synced, StoreError,
};
use rocksdb::{Cache, ColumnFamily, ColumnFamilyDescriptor, WriteBatch, WriteOptions, DB};
use std::path::Path;

const CF_RECORDS: &str = "records";
const CF_META: &str = "meta";

/// Its tables are read back only a little behind the newest record (most reads are answered
/// from the caller's memory), so the cache is small.
const CACHE_BYTES: usize = 8 << 20;

/// An ordered log of opaque records and a key-value meta, in their own database.
pub struct SideLog {
    db: DB,
}

impl std::fmt::Debug for SideLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideLog")
            .field("path", &self.db.path())
            .finish()
    }
}

fn unsynced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(false);
    w
}

impl SideLog {
    /// Opens the side log in `path`, creating it empty if the folder holds none.
    pub fn open(path: &Path) -> Result<SideLog, StoreError> {
        let cache = Cache::new_lru_cache(CACHE_BYTES);
        // The same options as the ledger's families (write-ahead log recovery that refuses
        // damage before the tail, paranoid checks, the bound on kept log files, background work
        // at nice 19): records are read by index and meta keys always exist when read, so no
        // Bloom filter.
        let cfs = [CF_RECORDS, CF_META]
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, family_options(&cache, false)));
        let mut opts = family_options(&cache, false);
        opts.set_env(&background_env()?);
        Ok(SideLog {
            db: DB::open_cf_descriptors(&opts, path, cfs)?,
        })
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Corrupt(format!("side log family {name} missing")))
    }

    /// Writes records (an index may be written again: the new record replaces the old),
    /// unsynced: readable at once, durable after the next [`SideLog::sync`].
    pub fn append(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        indexed_append(&self.db, self.cf(CF_RECORDS)?, records)
    }

    /// Records with index in `[from, to)`, in index order.
    pub fn range(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        indexed_range(&self.db, self.cf(CF_RECORDS)?, from, to)
    }

    /// The first and last records' indexes (`None` when there is none).
    pub fn bounds(&self) -> Result<Option<(u64, u64)>, StoreError> {
        indexed_bounds(&self.db, self.cf(CF_RECORDS)?)
    }

    /// Deletes the records with index in `[from, to)` in one atomic write, unsynced.
    pub fn delete(&self, from: u64, to: u64) -> Result<(), StoreError> {
        indexed_delete(&self.db, self.cf(CF_RECORDS)?, from, to)
    }

    /// Makes records already deleted leave every file: flushes both families (so no
    /// write-ahead log file still holds them; RocksDB then deletes the log files whose writes
    /// are all in tables) and rewrites the records' tables without them. Run after a purge that
    /// may have deleted an erased member's records (`docs/replication.md` §4).
    pub fn scrub(&self) -> Result<(), StoreError> {
        for name in [CF_RECORDS, CF_META] {
            self.db.flush_cf(self.cf(name)?)?;
        }
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        opts.set_exclusive_manual_compaction(true);
        self.db
            .compact_range_cf_opt(self.cf(CF_RECORDS)?, None::<&[u8]>, None::<&[u8]>, &opts);
        Ok(())
    }

    /// Reads a meta value.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    /// Writes meta values, in one atomic write fsync'd before it returns (which also makes
    /// every earlier write durable).
    pub fn meta_put(&self, values: &[(&[u8], &[u8])]) -> Result<(), StoreError> {
        let cf = self.cf(CF_META)?;
        let mut b = WriteBatch::default();
        for (k, v) in values {
            b.put_cf(cf, k, v);
        }
        self.db.write_opt(b, &synced())?;
        Ok(())
    }

    /// Writes a meta value without an fsync: readable at once, durable with the next synced
    /// write, so a crash can lose it only together with every write made after it — for a
    /// value whose loss leaves an older one that is still true (Raft's committed mark).
    pub fn meta_put_unsynced(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(CF_META)?, key, value, &unsynced())?;
        Ok(())
    }

    /// Makes every write so far durable (fsync of the write-ahead log).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was written and synced is there after a reopen, in index order, deletes and all.
    #[test]
    fn records_and_meta_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = SideLog::open(dir.path()).unwrap();
            assert_eq!(log.bounds().unwrap(), None);
            let records: Vec<(u64, Vec<u8>)> =
                (1..=300u64).map(|i| (i, vec![i as u8; 3])).collect();
            log.append(&records).unwrap();
            log.delete(1, 11).unwrap();
            log.delete(290, u64::MAX).unwrap();
            log.meta_put_unsynced(b"c", b"2").unwrap();
            log.meta_put(&[(b"a", b"1")]).unwrap();
        }
        let log = SideLog::open(dir.path()).unwrap();
        assert_eq!(log.bounds().unwrap(), Some((11, 289)));
        let got = log.range(100, 103).unwrap();
        assert_eq!(
            got,
            vec![
                (100, vec![100; 3]),
                (101, vec![101; 3]),
                (102, vec![102; 3])
            ]
        );
        assert_eq!(log.range(0, u64::MAX).unwrap().len(), 279);
        assert_eq!(log.meta_get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(log.meta_get(b"c").unwrap(), Some(b"2".to_vec()));
        assert_eq!(log.meta_get(b"b").unwrap(), None);
    }

    /// After a scrub, no file of the database holds a deleted record's bytes (which a file did
    /// hold before).
    #[test]
    fn a_scrub_leaves_deleted_records_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = SideLog::open(dir.path()).unwrap();
        let secret = b"erased-member-record-0123456789".to_vec();
        let in_a_file = || {
            std::fs::read_dir(dir.path()).unwrap().any(|f| {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                bytes.windows(secret.len()).any(|w| w == secret.as_slice())
            })
        };
        log.append(&[(1, secret.clone()), (2, b"kept".to_vec())])
            .unwrap();
        log.sync().unwrap();
        log.scrub().unwrap();
        assert!(in_a_file(), "the record was written to a file");
        log.delete(1, 2).unwrap();
        log.scrub().unwrap();
        assert!(!in_a_file(), "a deleted record is still in a file");
        assert_eq!(log.range(0, 10).unwrap(), vec![(2, b"kept".to_vec())]);
    }
}
