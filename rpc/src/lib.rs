//! coopledger's JSON-RPC surface — the only crate that knows JSON-RPC: wire types, stable error
//! codes, the server (HTTP and WebSocket on one port) and a typed client.
#![forbid(unsafe_code)]

mod admin;
mod anchor;
pub mod api;
pub mod client;
pub mod cluster;
pub mod consent;
pub mod consent_wire;
pub mod error;
pub mod gov;
pub mod gov_wire;
mod limits;
pub mod listen;
pub mod metrics;
pub mod personal;
pub mod portal;
pub mod recovery;
mod request_shape;
pub mod revenue;
pub mod server;
pub mod wire;
pub mod witness;

pub use api::{
    AdminApiClient, AnchorApiClient, ConsentApiClient, GovApiClient, LedgerApiClient,
    PersonalApiClient, RevenueApiClient, WitnessApiClient,
};
pub use server::JsonRpc;
