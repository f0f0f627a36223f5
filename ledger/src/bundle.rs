//! Self-contained proof files, checked offline. [`ProofFile`] (`coop prove` / `coop verify`):
//! one entry, its inclusion proof, and the signed checkpoint it is proved against, format
//! `coopledger-proof/v1`. [`Anchor`]: the generic part of larger bundles — a checkpoint, the
//! `log.state` entry it ends on, entries proved included in it ([`ProvenEntry`]) and state keys
//! proved present or absent under its state root ([`ProvenState`]). JSON, hashes and bytes in
//! standard base64; specified in `docs/format.md`.

use crate::codec::{b64_decode, b64_encode};
use crate::entry::{admit, verify_stored, Envelope, Rejection, Verified};
use crate::hash::{leaf_hash, Hash};
use crate::note::{NoteError, NoteVerifier, SignedCheckpoint};
use crate::smt::{self, StateProof, StateProofError, Terminal};
use crate::state::StateCommitment;
use crate::verify::{verify_inclusion, ProofError};
use serde::{Deserialize, Serialize};

/// Format tag of version 1.
pub const PROOF_FORMAT: &str = "coopledger-proof/v1";

/// An inclusion proof file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofFile {
    /// Always [`PROOF_FORMAT`].
    pub format: String,
    /// Index of the entry in the log.
    pub index: u64,
    /// Base64 of the exact entry bytes.
    pub entry: String,
    /// Tree size the proof is for (must equal the checkpoint's).
    pub tree_size: u64,
    /// Base64 inclusion proof hashes.
    pub inclusion_proof: Vec<String>,
    /// The full signed checkpoint note.
    pub checkpoint: String,
}

/// Why a proof file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not this format.
    #[error("field `format`: expected {PROOF_FORMAT:?}, found {0:?}")]
    Format(String),
    /// A field is not valid base64 / not a 32-byte hash.
    #[error("field `{0}`: not valid base64 of the right length")]
    Encoding(String),
    /// The checkpoint is not signed by the given key, or is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    /// The proof's tree size is not the checkpoint's.
    #[error("field `treeSize`: {proof} does not match the checkpoint's size {checkpoint}")]
    SizeMismatch {
        /// Size in the file.
        proof: u64,
        /// Size in the checkpoint.
        checkpoint: u64,
    },
    /// The inclusion proof fails.
    #[error("inclusion proof: {0}")]
    Proof(#[from] ProofError),
    /// The entry itself is malformed or not validly signed.
    #[error("entry: {0}")]
    Entry(#[from] Rejection),
    /// The entry names another co-op than the checkpoint.
    #[error("entry is for co-op {entry:?} but the checkpoint is of {checkpoint:?}")]
    CoopMismatch {
        /// `body.coop`.
        entry: String,
        /// Checkpoint origin.
        checkpoint: String,
    },
    /// The state entry is not the checkpoint's last entry: the state shown is not the state as
    /// of this checkpoint.
    #[error("field `stateEntry.index`: {index} is not the last entry of the checkpoint (size {size}); the state proof is stale or from elsewhere")]
    StaleState {
        /// Index given.
        index: u64,
        /// Checkpoint size.
        size: u64,
    },
    /// The checkpoint's last entry is not a `log.state` entry by the log's own key.
    #[error("field `stateEntry`: not a log.state entry signed by the log's key")]
    NotStateEntry,
    /// The state proof does not verify under the committed root.
    #[error("field `{field}`: {error}")]
    StateProof {
        /// Which proof.
        field: String,
        /// Why.
        error: StateProofError,
    },
    /// An entry's inclusion proof fails.
    #[error("field `{field}`: inclusion proof: {error}")]
    EntryProof {
        /// Which entry.
        field: String,
        /// Why.
        error: ProofError,
    },
    /// An entry is malformed or badly signed.
    #[error("field `{field}`: {error}")]
    EntryInvalid {
        /// Which entry.
        field: String,
        /// Why.
        error: Rejection,
    },
}

/// An entry and its RFC 9162 inclusion proof in the bundle's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvenEntry {
    /// Index in the log.
    pub index: u64,
    /// Base64 of the exact entry bytes.
    pub entry: String,
    /// Base64 inclusion proof hashes for the checkpoint's size.
    pub inclusion_proof: Vec<String>,
}

impl ProvenEntry {
    /// Assembles one.
    pub fn new(index: u64, entry: &[u8], proof: &[Hash]) -> ProvenEntry {
        ProvenEntry {
            index,
            entry: b64_encode(entry),
            inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
        }
    }
}

/// The leaf a state proof ends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvenLeaf {
    /// Base64 `SHA-256(key)` of the key the leaf holds.
    pub path: String,
    /// Base64 `SHA-256(value)`.
    pub value_hash: String,
}

/// A state key's value, or its absence, with its proof under the bundle's state root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvenState {
    /// Base64 of the full state key (namespace byte first).
    pub key: String,
    /// Base64 of the exact value bytes; `null` when the proof is of absence.
    pub value: Option<String>,
    /// Base64 sibling hashes, root level first.
    pub siblings: Vec<String>,
    /// The leaf the key's path ends on; `null` for an empty subtree.
    pub leaf: Option<ProvenLeaf>,
}

impl ProvenState {
    /// Assembles one from a proof made by [`crate::Log::prove_state`].
    pub fn new(key: &[u8], value: Option<&[u8]>, proof: &StateProof) -> ProvenState {
        ProvenState {
            key: b64_encode(key),
            value: value.map(b64_encode),
            siblings: proof.siblings.iter().map(Hash::to_base64).collect(),
            leaf: match proof.terminal {
                Terminal::Empty => None,
                Terminal::Leaf { path, value_hash } => Some(ProvenLeaf {
                    path: path.to_base64(),
                    value_hash: value_hash.to_base64(),
                }),
            },
        }
    }
}

/// A verified checkpoint and the state root recorded by its last entry: everything else in a
/// bundle is checked against this.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The checkpoint, signature checked.
    pub checkpoint: SignedCheckpoint,
    /// The commitment its last entry records.
    pub commitment: StateCommitment,
}

/// `p` included in `checkpoint` at its index, well-formed, validly signed, of its co-op.
fn included(
    checkpoint: &SignedCheckpoint,
    p: &ProvenEntry,
    field: &str,
) -> Result<Verified<Envelope>, BundleError> {
    let env = proved_envelope(checkpoint, p, field)?;
    let verified = admit(vec![env])
        .pop()
        .unwrap_or(Err(Rejection::BadSignature));
    of_its_coop(checkpoint, verified, field)
}

/// `p`'s bytes, included in `checkpoint` at its index, parsed (signature not yet checked).
fn proved_envelope(
    checkpoint: &SignedCheckpoint,
    p: &ProvenEntry,
    field: &str,
) -> Result<Envelope, BundleError> {
    let bytes =
        b64_decode(&p.entry).map_err(|_| BundleError::Encoding(format!("{field}.entry")))?;
    let proof = hashes(&p.inclusion_proof, &format!("{field}.inclusionProof"))?;
    let cp = &checkpoint.checkpoint;
    verify_inclusion(&leaf_hash(&bytes), p.index, cp.size, &proof, &cp.root).map_err(|error| {
        BundleError::EntryProof {
            field: field.to_owned(),
            error,
        }
    })?;
    Envelope::from_bytes(&bytes).map_err(|error| BundleError::EntryInvalid {
        field: field.to_owned(),
        error,
    })
}

/// The signature verdict on a proved entry, and its co-op checked against the checkpoint's.
fn of_its_coop(
    checkpoint: &SignedCheckpoint,
    verdict: Result<Verified<Envelope>, Rejection>,
    field: &str,
) -> Result<Verified<Envelope>, BundleError> {
    let env = verdict.map_err(|error| BundleError::EntryInvalid {
        field: field.to_owned(),
        error,
    })?;
    let cp = &checkpoint.checkpoint;
    if env.body().coop != cp.origin {
        return Err(BundleError::CoopMismatch {
            entry: env.body().coop.clone(),
            checkpoint: cp.origin.clone(),
        });
    }
    Ok(env)
}

fn hashes(list: &[String], field: &str) -> Result<Vec<Hash>, BundleError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            Hash::from_base64(h).ok_or_else(|| BundleError::Encoding(format!("{field}[{i}]")))
        })
        .collect()
}

impl Anchor {
    /// Opens `checkpoint` with `log_key` and checks that `state_entry` is its last entry, a
    /// `log.state` entry signed by the log's own key.
    pub fn open(
        checkpoint: &str,
        log_key: &NoteVerifier,
        state_entry: &ProvenEntry,
    ) -> Result<Anchor, BundleError> {
        let checkpoint = SignedCheckpoint::open(checkpoint, log_key)?;
        let size = checkpoint.checkpoint.size;
        if size == 0 || state_entry.index != size - 1 {
            return Err(BundleError::StaleState {
                index: state_entry.index,
                size,
            });
        }
        let env = included(&checkpoint, state_entry, "stateEntry")?;
        let commitment = StateCommitment::from_entry(&env)
            .filter(|c| c.size == state_entry.index && env.body().signer == *log_key.public_key())
            .ok_or(BundleError::NotStateEntry)?;
        Ok(Anchor {
            checkpoint,
            commitment,
        })
    }

    /// Checks that `p` is included in the checkpoint at its index, and that it is a well-formed,
    /// validly signed entry of this co-op. `field` names it in errors.
    pub fn entry(&self, p: &ProvenEntry, field: &str) -> Result<Verified<Envelope>, BundleError> {
        included(&self.checkpoint, p, field)
    }

    /// [`Anchor::entry`] for every entry of a list, the signatures checked as one batch (the
    /// same verdicts, a fraction of the time for a long list); errors name `field[i]`.
    pub fn entries(
        &self,
        list: &[ProvenEntry],
        field: &str,
    ) -> Result<Vec<Verified<Envelope>>, BundleError> {
        let envs = list
            .iter()
            .enumerate()
            .map(|(i, p)| proved_envelope(&self.checkpoint, p, &format!("{field}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        admit(envs)
            .into_iter()
            .enumerate()
            .map(|(i, verdict)| of_its_coop(&self.checkpoint, verdict, &format!("{field}[{i}]")))
            .collect()
    }

    /// Checks `p` under the committed state root and returns `(key, value)` (`None` = absent).
    pub fn state(
        &self,
        p: &ProvenState,
        field: &str,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), BundleError> {
        let key = b64_decode(&p.key).map_err(|_| BundleError::Encoding(format!("{field}.key")))?;
        let value = p
            .value
            .as_deref()
            .map(|v| b64_decode(v).map_err(|_| BundleError::Encoding(format!("{field}.value"))))
            .transpose()?;
        let terminal = match &p.leaf {
            None => Terminal::Empty,
            Some(l) => Terminal::Leaf {
                path: Hash::from_base64(&l.path)
                    .ok_or_else(|| BundleError::Encoding(format!("{field}.leaf.path")))?,
                value_hash: Hash::from_base64(&l.value_hash)
                    .ok_or_else(|| BundleError::Encoding(format!("{field}.leaf.valueHash")))?,
            },
        };
        let proof = StateProof {
            siblings: hashes(&p.siblings, &format!("{field}.siblings"))?,
            terminal,
        };
        smt::verify(&self.commitment.root, &key, value.as_deref(), &proof).map_err(|error| {
            BundleError::StateProof {
                field: field.to_owned(),
                error,
            }
        })?;
        Ok((key, value))
    }
}

/// What a valid proof file establishes.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The entry, signature checked.
    pub entry: Verified<Envelope>,
    /// Its index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The checkpoint it is included in, signature checked.
    pub checkpoint: SignedCheckpoint,
}

impl ProofFile {
    /// Assembles a proof file.
    pub fn new(
        index: u64,
        entry: &[u8],
        proof: &[Hash],
        checkpoint: &SignedCheckpoint,
    ) -> ProofFile {
        ProofFile {
            format: PROOF_FORMAT.into(),
            index,
            entry: b64_encode(entry),
            tree_size: checkpoint.checkpoint.size,
            inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
            checkpoint: checkpoint.note.clone(),
        }
    }

    /// Checks everything, offline: the checkpoint's signature and origin against `log_key`, the
    /// size, the inclusion of `SHA-256(0x00 ‖ entry)` at `index` under the checkpoint's root, and
    /// the entry's own canonical form, signature and co-op.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<VerifiedProof, BundleError> {
        if self.format != PROOF_FORMAT {
            return Err(BundleError::Format(self.format.clone()));
        }
        let checkpoint = SignedCheckpoint::open(&self.checkpoint, log_key)?;
        if self.tree_size != checkpoint.checkpoint.size {
            return Err(BundleError::SizeMismatch {
                proof: self.tree_size,
                checkpoint: checkpoint.checkpoint.size,
            });
        }
        let bytes = b64_decode(&self.entry).map_err(|_| BundleError::Encoding("entry".into()))?;
        let proof = self
            .inclusion_proof
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Hash::from_base64(h)
                    .ok_or_else(|| BundleError::Encoding(format!("inclusionProof[{i}]")))
            })
            .collect::<Result<Vec<Hash>, BundleError>>()?;
        let leaf = leaf_hash(&bytes);
        verify_inclusion(
            &leaf,
            self.index,
            self.tree_size,
            &proof,
            &checkpoint.checkpoint.root,
        )?;
        let entry = verify_stored(&bytes)?;
        if entry.body().coop != checkpoint.checkpoint.origin {
            return Err(BundleError::CoopMismatch {
                entry: entry.body().coop.clone(),
                checkpoint: checkpoint.checkpoint.origin.clone(),
            });
        }
        Ok(VerifiedProof {
            entry,
            index: self.index,
            leaf_hash: leaf,
            checkpoint,
        })
    }
}
