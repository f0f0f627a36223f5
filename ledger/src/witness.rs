//! The witness side of C2SP tlog-witness `add-checkpoint`: parse the request, check the log's
//! signature and the consistency proof from the last checkpoint this witness cosigned, persist
//! the new one, and answer with a cosignature — or with the protocol's refusal. A checkpoint
//! that contradicts one already cosigned (same size, other root; or no valid consistency proof)
//! is a split view: both signed notes are kept as evidence.
//!
//! Pure protocol logic over [`WitnessStore`]; the HTTP endpoint lives in `rpc`.

use crate::cosignature::Cosigner;
use crate::hash::Hash;
use crate::note::{NoteError, NoteVerifier, SignedCheckpoint, SignedNote};
use crate::store_error::StoreError;
use crate::verify::verify_consistency;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Most consistency-proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the client believes the witness last cosigned.
    pub old_size: u64,
    /// RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

/// A refusal, with the HTTP status the protocol gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessRefusal {
    /// 400: the body is not a well-formed request, or the old size is above the new one.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: no signature by a key this witness trusts for the origin.
    #[error("no valid signature by a trusted key of {0}")]
    Forbidden(String),
    /// 404: this witness does not follow that log.
    #[error("unknown log {0}")]
    UnknownLog(String),
    /// 409: the old size is not the last cosigned size (body: that size), or the same size
    /// came with another root.
    #[error("conflict: the last cosigned size is {known_size}")]
    Conflict {
        /// Size of the latest cosigned checkpoint (0 if none).
        known_size: u64,
        /// True when this is a split view (same size, other root); evidence was kept.
        split_view: bool,
    },
    /// 422: the consistency proof does not verify (evidence kept).
    #[error("the consistency proof does not verify")]
    Unprocessable,
    /// 500: the witness could not read or persist its state.
    #[error("witness storage: {0}")]
    Storage(#[from] WitnessStoreError),
    /// 500: the witness could not sign its cosignature.
    #[error("cosigning: {0}")]
    Signing(NoteError),
}

/// Why a witness store could not read or write its state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessStoreError {
    /// The underlying store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// A stored record does not decode.
    #[error("stored witness record {what} does not decode: {reason}")]
    Record {
        /// Which record.
        what: String,
        /// The decoder's words.
        reason: String,
    },
    /// Another thread panicked while holding the witness's state.
    #[error("witness state lock poisoned")]
    Poisoned,
}

impl WitnessRefusal {
    /// The HTTP status code the protocol prescribes.
    pub fn status(&self) -> u16 {
        match self {
            WitnessRefusal::BadRequest(_) => 400,
            WitnessRefusal::Forbidden(_) => 403,
            WitnessRefusal::UnknownLog(_) => 404,
            WitnessRefusal::Conflict { .. } => 409,
            WitnessRefusal::Unprocessable => 422,
            WitnessRefusal::Storage(_) | WitnessRefusal::Signing(_) => 500,
        }
    }
}

impl AddCheckpoint {
    /// Parses `old <size>\n`, up to 63 base64 hash lines, an empty line, then the note.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, WitnessRefusal> {
        let bad = |m: &str| WitnessRefusal::BadRequest(m.to_owned());
        let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("first line must be `old <size>`"))?;
        let canonical =
            old == "0" || (!old.starts_with('0') && old.bytes().all(|b| b.is_ascii_digit()));
        let old_size = old
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| bad("old size must be a decimal without leading zeroes"))?;
        let proof = lines
            .map(|l| Hash::from_base64(l).ok_or_else(|| bad("a proof line is not a base64 hash")))
            .collect::<Result<Vec<Hash>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 consistency proof lines"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: note.to_owned(),
        })
    }

    /// The request body (what a log sends).
    pub fn to_body(&self) -> String {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }
}

/// What a witness records about one log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Witnessed {
    /// Tree size.
    pub size: u64,
    /// Root (base64).
    pub root: String,
    /// The log-signed note as received.
    pub note: String,
}

/// Proof that a log showed two views that cannot both be true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitViewEvidence {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint this witness had cosigned.
    pub cosigned: String,
    /// The contradicting checkpoint, validly signed by the log.
    pub presented: String,
    /// The consistency proof that came with it (base64), if any.
    pub proof: Vec<String>,
    /// Why it contradicts: `same size, other root` or `no valid consistency proof`.
    pub reason: String,
    /// When it was seen (POSIX seconds).
    pub seen_at: u64,
}

/// Where a witness keeps its state. Contract: `save` is durable (fsync'd) when it returns.
pub trait WitnessStore: Send + Sync {
    /// The latest cosigned checkpoint of `origin`.
    fn latest(&self, origin: &str) -> Result<Option<Witnessed>, WitnessStoreError>;
    /// Records `w` as the latest of `origin`, durably.
    fn save(&self, origin: &str, w: &Witnessed) -> Result<(), WitnessStoreError>;
    /// Keeps split-view evidence, durably.
    fn keep_evidence(&self, e: &SplitViewEvidence) -> Result<(), WitnessStoreError>;
}

/// A witness: its key, the logs it follows, its store; `add_checkpoint` is atomic (one lock
/// around check and persist, as the protocol requires).
pub struct Witness<S: WitnessStore> {
    cosigner: Cosigner,
    logs: Vec<NoteVerifier>,
    store: S,
    lock: Mutex<()>,
}

impl<S: WitnessStore> std::fmt::Debug for Witness<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("cosigner", &self.cosigner)
            .field("logs", &self.logs.len())
            .finish_non_exhaustive()
    }
}

impl<S: WitnessStore> Witness<S> {
    /// A witness signing as `cosigner` for the logs whose keys are `logs`.
    pub fn new(cosigner: Cosigner, logs: Vec<NoteVerifier>, store: S) -> Witness<S> {
        Witness {
            cosigner,
            logs,
            store,
            lock: Mutex::new(()),
        }
    }

    /// The witness's key string.
    pub fn vkey(&self) -> String {
        self.cosigner.vkey()
    }

    /// The store (for reading evidence).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles one `add-checkpoint` request at time `now` (POSIX seconds): the cosignature
    /// line(s) on success.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, WitnessRefusal> {
        let req = AddCheckpoint::parse(body)?;
        let parsed = SignedNote::parse(req.note.as_bytes())
            .map_err(|e| WitnessRefusal::BadRequest(format!("checkpoint: {e}")))?;
        let origin = parsed
            .text
            .split('\n')
            .next()
            .unwrap_or_default()
            .to_owned();
        let key = self
            .logs
            .iter()
            .find(|k| k.name() == origin)
            .ok_or_else(|| WitnessRefusal::UnknownLog(origin.clone()))?;
        let cp = SignedCheckpoint::open(&req.note, key)
            .map_err(|_| WitnessRefusal::Forbidden(origin.clone()))?;
        let size = cp.checkpoint.size;
        if req.old_size > size {
            return Err(WitnessRefusal::BadRequest(format!(
                "old size {} is above the checkpoint size {size}",
                req.old_size
            )));
        }
        let storage = WitnessRefusal::Storage;
        let _guard = self
            .lock
            .lock()
            .map_err(|_| WitnessRefusal::Storage(WitnessStoreError::Poisoned))?;
        let latest = self.store.latest(&origin).map_err(storage)?;
        let known = latest.as_ref().map_or(0, |w| w.size);
        let evidence = |cosigned: &Witnessed, reason: &str| SplitViewEvidence {
            origin: origin.clone(),
            cosigned: cosigned.note.clone(),
            presented: req.note.clone(),
            proof: req.proof.iter().map(Hash::to_base64).collect(),
            reason: reason.to_owned(),
            seen_at: now,
        };
        if req.old_size != known {
            // A stale client; unless it shows the same size with another root, not evidence.
            if let Some(w) = &latest {
                if w.size == size && w.root != cp.checkpoint.root.to_base64() {
                    self.store
                        .keep_evidence(&evidence(w, "same size, other root"))
                        .map_err(storage)?;
                    return Err(WitnessRefusal::Conflict {
                        known_size: known,
                        split_view: true,
                    });
                }
            }
            return Err(WitnessRefusal::Conflict {
                known_size: known,
                split_view: false,
            });
        }
        if let Some(w) = &latest {
            if size == w.size {
                if w.root != cp.checkpoint.root.to_base64() {
                    self.store
                        .keep_evidence(&evidence(w, "same size, other root"))
                        .map_err(storage)?;
                    return Err(WitnessRefusal::Conflict {
                        known_size: known,
                        split_view: true,
                    });
                }
            } else {
                let old_root = Hash::from_base64(&w.root).ok_or_else(|| {
                    WitnessRefusal::Storage(WitnessStoreError::Record {
                        what: format!("latest/{origin}"),
                        reason: "its root is not base64 of 32 bytes".into(),
                    })
                })?;
                if verify_consistency(w.size, size, &req.proof, &old_root, &cp.checkpoint.root)
                    .is_err()
                {
                    self.store
                        .keep_evidence(&evidence(w, "no valid consistency proof"))
                        .map_err(storage)?;
                    return Err(WitnessRefusal::Unprocessable);
                }
            }
        } else if !req.proof.is_empty() {
            return Err(WitnessRefusal::BadRequest(
                "the proof must be empty when the old size is 0".into(),
            ));
        }
        // Persist before answering.
        self.store
            .save(
                &origin,
                &Witnessed {
                    size,
                    root: cp.checkpoint.root.to_base64(),
                    note: req.note.clone(),
                },
            )
            .map_err(storage)?;
        self.cosigner
            .cosign(&parsed.text, now)
            .map_err(WitnessRefusal::Signing)
    }
}

#[cfg(test)]
#[path = "witness_tests.rs"]
mod tests;
