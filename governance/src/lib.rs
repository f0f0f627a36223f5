//! The co-op's rules as a deterministic state machine the ledger drives: genesis and bylaws,
//! membership lifecycle, proposals, signed votes and tallies anyone can recompute. Pure logic
//! over the state view — no clock, no randomness, no I/O.
#![forbid(unsafe_code)]

pub mod ballot;
pub mod bylaws;
pub mod consent;
pub mod consent_bundle;
pub mod genesis;
mod payload;
pub mod personal;
pub mod records;
pub mod revenue;
pub mod revenue_bundle;
pub mod rules;
pub mod tally;
pub mod tally_bundle;
pub mod tallying;

pub use genesis::{member_id, Founder, Genesis, Role};
pub use payload::{is_ident, parse_id, IDENT_RULE};
pub use records::{CoopState, KeyRecord, MemberRecord, MemberStatus, ProposalRecord};
pub use rules::{key_add_message, CoopRules, ENTRY_TYPES};
