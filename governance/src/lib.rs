//! The co-op's rules as a deterministic state machine the ledger drives: genesis (origin, node
//! key, founders and their roles) and the rule that only keys known to the co-op may sign.
//! Pure logic over the state view — no clock, no randomness, no I/O.
#![forbid(unsafe_code)]

pub mod bylaws;
pub mod genesis;
pub mod rules;
pub mod tally;

pub use genesis::{Founder, Genesis, Role};
pub use rules::{CoopRules, CoopState, KeyRecord, ENTRY_TYPES};
