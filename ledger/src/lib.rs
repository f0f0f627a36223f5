//! coopledger's verifiable log engine: signed entries, an RFC 9162 Merkle tree with proofs,
//! C2SP checkpoints, RocksDB storage and the sequencer. It knows nothing of co-ops (the rules
//! come in through [`state::StateMachine`]) and does no network I/O.
//!
//! Feature `storage` (default): the RocksDB store, the log and its sequencer. Without it, what
//! a verifier needs offline — entries, signatures, proofs, notes, cosignatures, bundles, the
//! state tree and the audit replay — builds without RocksDB (fuzz targets, WebAssembly).
#![forbid(unsafe_code)]

pub mod anchor;
pub mod audit;
pub mod batch;
pub mod bundle;
pub mod codec;
pub mod cosignature;
pub mod entry;
pub mod hash;
#[cfg(feature = "storage")]
pub mod log;
pub mod merkle;
pub mod note;
#[cfg(feature = "storage")]
mod sequencer;
#[cfg(feature = "storage")]
pub mod side_log;
pub mod sig;
pub mod signed;
pub mod smt;
pub mod state;
#[cfg(feature = "storage")]
pub mod store;
pub mod store_error;
pub mod verify;
pub mod witness;

pub use batch::OwnEntry;
pub use entry::{Body, Envelope, Rejection, Verified};
pub use hash::Hash;
#[cfg(feature = "storage")]
pub use log::{Log, LogConfig, QueryError, Receipt, StateAt, SubmitError};
pub use note::{Checkpoint, NoteSigner, NoteVerifier, SignedCheckpoint};
pub use state::{
    ApplyContext, ApplyError, StateCommitment, StateMachine, StateRead, StateView, STATE_ENTRY_TYPE,
};
pub use store_error::{FaultPoint, StoreError};
