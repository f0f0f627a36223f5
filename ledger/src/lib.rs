//! coopledger's verifiable log engine: signed entries, an RFC 9162 Merkle tree with proofs,
//! C2SP checkpoints, RocksDB storage and the sequencer. It knows nothing of co-ops (the rules
//! come in through [`state::StateMachine`]) and does no network I/O.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod audit;
pub mod bundle;
pub mod codec;
pub mod cosignature;
pub mod entry;
pub mod hash;
pub mod log;
pub mod merkle;
pub mod note;
mod sequencer;
pub mod sig;
pub mod signed;
pub mod smt;
pub mod state;
pub mod store;
pub mod verify;
pub mod witness;

pub use entry::{Body, Envelope, Rejection, Verified};
pub use hash::Hash;
pub use log::{Log, LogConfig, QueryError, Receipt, StateAt, SubmitError};
pub use note::{Checkpoint, NoteSigner, NoteVerifier, SignedCheckpoint};
pub use sequencer::{FaultPoint, OwnEntry};
pub use state::{
    ApplyContext, ApplyError, StateCommitment, StateMachine, StateRead, StateView, STATE_ENTRY_TYPE,
};
