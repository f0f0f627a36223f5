//! coopledger's JSON-RPC surface — the only crate that knows JSON-RPC: wire types, stable error
//! codes, the server (HTTP and WebSocket on one port) and a typed client.
#![forbid(unsafe_code)]

pub mod anchoring;
pub mod api;
pub mod ballot_box;
pub mod client;
mod consent;
pub mod cosigning;
pub mod error;
mod gov;
pub mod personal;
pub mod revenue;
pub mod server;
pub mod wire;
pub mod witness;

pub use api::{
    AnchorApiClient, ConsentApiClient, GovApiClient, LedgerApiClient, PersonalApiClient,
    RevenueApiClient, WitnessApiClient,
};
pub use ballot_box::BallotBox;
pub use personal::PersonalData;
pub use server::{serve, NodeHandle, NodeServices};
