//! Proposals, votes and tallies: the proposal lifecycle and its rules (`rules.rs`, `votes.rs`,
//! `tallies.rs`, secret ballots in `ballots.rs` with their cryptography in `ballot.rs`), exact
//! counting (`tally`, `tallying`), and the offline recount of a closed proposal (`bundle`).

pub mod ballot;
pub(crate) mod ballots;
pub mod bundle;
pub(crate) mod rules;
pub(crate) mod tallies;
pub mod tally;
pub mod tallying;
pub(crate) mod votes;

pub use votes::{eligibility, Eligibility};
