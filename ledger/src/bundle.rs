//! The self-contained proof file `coop prove` writes and `coop verify` checks offline: one entry,
//! its inclusion proof, and the signed checkpoint it is proved against. Format `coopledger-proof/v1`
//! (JSON; hashes and bytes in standard base64) is specified in `docs/format.md`.

use crate::codec::{b64_decode, b64_encode};
use crate::entry::{verify_stored, Envelope, Rejection, Verified};
use crate::hash::{leaf_hash, Hash};
use crate::note::{NoteError, NoteVerifier, SignedCheckpoint};
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
