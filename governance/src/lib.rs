//! The co-op's rules as a deterministic state machine the ledger drives: genesis and bylaws,
//! membership lifecycle, proposals, signed votes and tallies anyone can recompute. Pure logic
//! over the state view — no clock, no randomness, no I/O.
#![forbid(unsafe_code)]

// By domain: each holds its model, its rules (`rules.rs`, dispatched from `rules`) and its
// offline verifier (`bundle.rs`).
pub mod bylaws;
pub mod consent;
pub mod membership;
mod payload;
pub mod personal;
pub mod proposals;
pub mod records;
pub mod revenue;
pub mod rules;
pub mod verdict;

// The paths other crates and documents already name.
pub use consent::bundle as consent_bundle;
pub use membership::genesis;
pub use proposals::bundle as tally_bundle;
pub use proposals::{ballot, tally, tallying};
pub use revenue::bundle as revenue_bundle;

pub use genesis::{member_id, Founder, Genesis, Role};
pub use payload::{is_ident, parse_id, IDENT_RULE};
pub use records::{CoopState, KeyRecord, MemberRecord, MemberStatus, ProposalRecord};
pub use rules::{key_add_message, CoopRules, ENTRY_TYPES};
