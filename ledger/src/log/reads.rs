//! Every read of the log: checkpoints, entries, inclusion and consistency proofs — always within
//! the newest stored checkpoint — the state and its proofs against a checkpoint's own
//! commitment, and the off-log records beside the log.

use super::*;

impl<M: StateMachine> Log<M> {
    /// The storage failure that stopped the sequencer, if any.
    pub fn failure(&self) -> Option<StoreError> {
        self.shared.failure.lock().ok().and_then(|f| f.clone())
    }

    /// The newest stored checkpoint.
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.shared.latest()
    }

    /// The released checkpoint note signed at exactly `size`, if any (a note stored with its
    /// batch but not yet recorded and released is nobody's to see).
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<String>, QueryError> {
        if size > self.covered() {
            return Ok(None);
        }
        Ok(self.shared.store.checkpoint(size)?)
    }

    /// New checkpoints as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SignedCheckpoint>> {
        self.shared.checkpoints.subscribe()
    }

    fn covered(&self) -> u64 {
        self.shared.latest().checkpoint.size
    }

    /// Entry bytes at `index` (exactly the bytes hashed into the tree).
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, QueryError> {
        let size = self.covered();
        if index >= size {
            return Err(QueryError::OutOfRange {
                field: "index",
                reason: format!("{index} is not below the checkpointed size {size}"),
            });
        }
        self.shared.store.entry(index)?.ok_or_else(|| {
            QueryError::Storage(StoreError::Corrupt(format!("entry {index} missing")))
        })
    }

    /// Leaf hash of entry `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, QueryError> {
        let size = self.covered();
        if index >= size {
            return Err(QueryError::OutOfRange {
                field: "index",
                reason: format!("{index} is not below the checkpointed size {size}"),
            });
        }
        let got = self.shared.store.nodes(&[NodeId { level: 0, index }])?;
        got.first()
            .copied()
            .ok_or_else(|| QueryError::Storage(StoreError::Corrupt("leaf missing".into())))
    }

    /// Index of the entry with this leaf hash.
    pub fn index_of_leaf(&self, leaf: &Hash) -> Result<u64, QueryError> {
        match self.shared.store.index_of_leaf(leaf)? {
            Some(i) if i < self.covered() => Ok(i),
            _ => Err(QueryError::NotFound(format!(
                "no entry with leaf hash {leaf}"
            ))),
        }
    }

    /// Index of the entry with this entry id.
    pub fn index_of_entry_id(&self, id: &Hash) -> Result<u64, QueryError> {
        match self.shared.store.index_of_entry_id(id)? {
            Some(i) if i < self.covered() => Ok(i),
            _ => Err(QueryError::NotFound(format!("no entry with id {id}"))),
        }
    }

    fn check_size(&self, field: &'static str, size: u64) -> Result<(), QueryError> {
        let covered = self.covered();
        if size > covered {
            return Err(QueryError::OutOfRange {
                field,
                reason: format!("{size} is beyond the checkpointed size {covered}"),
            });
        }
        Ok(())
    }

    /// Root of the first `size` entries (`size` ≤ checkpointed size).
    pub fn root(&self, size: u64) -> Result<Hash, QueryError> {
        self.check_size("treeSize", size)?;
        Ok(merkle::root(&*self.shared.store, size)?)
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` entries.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, QueryError> {
        self.check_size("treeSize", tree_size)?;
        if index >= tree_size {
            return Err(QueryError::OutOfRange {
                field: "index",
                reason: format!("{index} is not below treeSize {tree_size}"),
            });
        }
        Ok(merkle::span_hashes(
            &*self.shared.store,
            &merkle::inclusion_plan(index, tree_size),
        )?)
    }

    /// RFC 9162 consistency proof from `from_size` to `to_size` (`1 ≤ from ≤ to ≤ checkpointed`).
    pub fn consistency_proof(&self, from_size: u64, to_size: u64) -> Result<Vec<Hash>, QueryError> {
        self.check_size("toSize", to_size)?;
        if from_size == 0 {
            return Err(QueryError::OutOfRange {
                field: "fromSize",
                reason: "must be at least 1: consistency with the empty tree proves nothing".into(),
            });
        }
        if from_size > to_size {
            return Err(QueryError::OutOfRange {
                field: "fromSize",
                reason: format!("{from_size} is above toSize {to_size}"),
            });
        }
        Ok(merkle::span_hashes(
            &*self.shared.store,
            &merkle::consistency_plan(from_size, to_size),
        )?)
    }

    /// The next sequence number `signer` should use (last accepted + 1).
    pub fn next_seq(&self, signer: &[u8; 32]) -> Result<u64, QueryError> {
        Ok(crate::state::last_seq(&*self.shared.store, &Overlay::new(), signer)? + 1)
    }

    /// Reads the state machine's state at the released checkpoint (for queries).
    pub fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, QueryError> {
        Ok(StateRead::get(self, key)?)
    }
}

/// A state key's value (or absence) proved against the state root that the last entry of a
/// stored checkpoint records.
#[derive(Debug, Clone)]
pub struct StateAt {
    /// The checkpoint; its last entry is the `log.state` entry.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// The commitment that entry records (`size` = checkpoint size − 1 = its index).
    pub commitment: StateCommitment,
    /// The full state key (namespace byte first) the proof is for.
    pub key: Vec<u8>,
    /// The value, or `None` when the key is absent.
    pub value: Option<Vec<u8>>,
    /// Proof of `value` (or absence) under `commitment.root`.
    pub proof: StateProof,
}

impl<M: StateMachine> Log<M> {
    /// The state commitment that closes the checkpointed tree of `size` entries.
    pub fn state_commitment(&self, size: u64) -> Result<StateCommitment, QueryError> {
        self.check_size("treeSize", size)?;
        let index = size.checked_sub(1).ok_or_else(|| QueryError::OutOfRange {
            field: "treeSize",
            reason: "the empty log has no state commitment".into(),
        })?;
        let bytes = self.entry(index)?;
        crate::entry::Envelope::from_bytes(&bytes)
            .ok()
            .as_ref()
            .and_then(StateCommitment::from_entry)
            .filter(|c| c.size == index)
            .ok_or_else(|| {
                QueryError::Storage(StoreError::Corrupt(format!(
                    "entry {index}, the last of a checkpoint, is not its log.state entry"
                )))
            })
    }

    /// Proves the value or absence of the state machine's key `key` under a released checkpoint
    /// (the newest durable tree, once its checkpoint is released).
    pub fn prove_state(&self, key: &[u8]) -> Result<StateAt, QueryError> {
        self.prove_states(&[key.to_vec()])?
            .pop()
            .ok_or_else(|| QueryError::Storage(StoreError::Corrupt("no proof".into())))
    }

    /// [`Log::prove_state`] for several keys, all against the same checkpoint.
    ///
    /// The state and the state tree move with each durable batch, ahead of the released
    /// checkpoint by the batches waiting for release. So the values and proofs are read from the
    /// durable tree, with its size read before and after: equal sizes mean no batch committed in
    /// between, and what was read is the tree of that size — whose checkpoint note was stored in
    /// the same write. The answer then waits for that note's release (one record fsync away).
    pub fn prove_states(&self, keys: &[Vec<u8>]) -> Result<Vec<StateAt>, QueryError> {
        let store = &*self.shared.store;
        for attempt in 0..200u32 {
            let size = store.size()?;
            let mut read = Vec::with_capacity(keys.len());
            for key in keys {
                let mut full = vec![NS_APP];
                full.extend_from_slice(key);
                let value = store.state_get(&full)?;
                let proof = smt::prove(store, &full)?;
                read.push((full, value, proof));
            }
            if store.size()? != size {
                // A batch committed while reading: read again.
                std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20))));
                continue;
            }
            let checkpoint = self.released_at(size)?;
            let commitment = self.state_commitment(size)?;
            let mut out = Vec::with_capacity(read.len());
            for (key, value, proof) in read {
                if smt::verify(&commitment.root, &key, value.as_deref(), &proof).is_err() {
                    return Err(QueryError::Storage(StoreError::Corrupt(format!(
                        "the state tree does not match the commitment at size {size}"
                    ))));
                }
                out.push(StateAt {
                    checkpoint: checkpoint.clone(),
                    commitment,
                    key,
                    value,
                    proof,
                });
            }
            return Ok(out);
        }
        Err(QueryError::Storage(StoreError::Corrupt(
            "the state kept moving while it was read (200 attempts)".into(),
        )))
    }

    /// The checkpoint of the durable tree of `size` (a batch boundary, its note stored with it),
    /// once released: waits for the release thread, at most 10 s.
    fn released_at(&self, size: u64) -> Result<Arc<SignedCheckpoint>, QueryError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let latest = self.shared.latest();
            match latest.checkpoint.size.cmp(&size) {
                std::cmp::Ordering::Equal => return Ok(latest),
                std::cmp::Ordering::Greater => {
                    let note = self.shared.store.checkpoint(size)?.ok_or_else(|| {
                        QueryError::Storage(StoreError::Corrupt(format!(
                            "no checkpoint stored at the batch boundary {size}"
                        )))
                    })?;
                    let opened = SignedCheckpoint::open(&note, &self.shared.signer.verifier())
                        .map_err(|e| {
                            QueryError::Storage(StoreError::Corrupt(format!(
                                "stored checkpoint at {size}: {e}"
                            )))
                        })?;
                    return Ok(Arc::new(opened));
                }
                std::cmp::Ordering::Less => {
                    if self.shared.failed() || std::time::Instant::now() > deadline {
                        return Err(QueryError::Storage(StoreError::Corrupt(format!(
                            "the checkpoint at size {size} was not released (the node stopped \
                             or is stalled)"
                        ))));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

/// Off-log records (see [`Store::offlog_put`](crate::store::Store::offlog_put)): durable, beside
/// the log, in no proof. Writes are fsync'd before these return.
impl<M: StateMachine> Log<M> {
    /// Stores an off-log record durably (on a replica: once the cluster committed it, see
    /// [`Log::offlog_write`]).
    pub fn offlog_put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.is_replicated() {
            return self.offlog_replicated(vec![replication::OfflogOp::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            }]);
        }
        self.shared.store.offlog_put(key, value)
    }
    /// Reads an off-log record.
    pub fn offlog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.store.offlog_get(key)
    }
    /// Every off-log record under `prefix`, in key order.
    pub fn offlog_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.shared.store.offlog_scan(prefix)
    }
    /// Deletes an off-log record durably (on a replica: through the cluster).
    pub fn offlog_delete(&self, key: &[u8]) -> Result<(), StoreError> {
        if self.is_replicated() {
            return self
                .offlog_replicated(vec![replication::OfflogOp::Delete { key: key.to_vec() }]);
        }
        self.shared.store.offlog_delete(key)
    }
    /// Deletes off-log records so their bytes are in no file of the data folder
    /// (see [`Store::offlog_shred`](crate::store::Store::offlog_shred)).
    pub fn offlog_shred(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        if self.is_replicated() {
            return self.offlog_replicated(vec![replication::OfflogOp::Shred {
                keys: keys.to_vec(),
            }]);
        }
        self.shared.store.offlog_shred(keys)
    }
}

/// Queries read the state of the released checkpoint, like every other read: the database may
/// already hold later batches (written, not yet durable), whose changes are read through what
/// they replaced (`Shared::released_value`). So a query never shows an entry's effect before
/// its receipt could be given, nor one a power cut could still take away.
impl<M: StateMachine> StateRead for Log<M> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let full = crate::state::app_key(key);
        let stored = self.shared.store.state_get(&full)?;
        Ok(self.shared.released_value(&full, stored))
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let stored = self
            .shared
            .store
            .state_scan(&crate::state::app_key(prefix))?;
        Ok(self.shared.released_scan(stored, prefix))
    }
}

impl<M: StateMachine> Log<M> {
    /// Writes a consistent copy of this log to `dest` (which must not exist) while it keeps
    /// running: the record of signed checkpoints is read first, then the database is copied,
    /// so the copy always holds every checkpoint its record names (it opens; see
    /// `crate::signed`). Returns the newest checkpoint the copy is certain to hold.
    pub fn backup(&self, dest: &Path) -> Result<Arc<SignedCheckpoint>, StoreError> {
        let file = |e: std::io::Error, what: &str| StoreError::File {
            what: format!("{what}: {e}"),
            kind: e.kind(),
        };
        let covered = self.checkpoint();
        let record = {
            let _held = self.shared.signed.lock().map_err(|_| {
                StoreError::Corrupt("signed-checkpoint record lock poisoned".into())
            })?;
            match std::fs::read(SignedFile::path(&self.path)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(file(e, "reading COOP-SIGNED")),
            }
        };
        self.shared.store.checkpoint_to(dest)?;
        if let Some(bytes) = record {
            use std::io::Write;
            let mut f = std::fs::File::create(SignedFile::path(dest))
                .map_err(|e| file(e, "writing the backup's COOP-SIGNED"))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| file(e, "writing the backup's COOP-SIGNED"))?;
        }
        Ok(covered)
    }
}
