//! Revenue bundles and statements (`coopledger-revenue-bundle/v1`,
//! `coopledger-revenue-statement/v1`): decoding and verifying arbitrary JSON never panics.
#![no_main]

use coopledger_governance::revenue_bundle::{RevenueBundle, Statement};
use coopledger_ledger::note::NoteVerifier;
use libfuzzer_sys::fuzz_target;

/// A published verifier key (Go's note tests), to verify against.
const LOG: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    let Ok(key) = NoteVerifier::parse(LOG) else {
        return;
    };
    if let Ok(b) = serde_json::from_slice::<RevenueBundle>(data) {
        let _ = b.verify(&key);
    }
    if let Ok(s) = serde_json::from_slice::<Statement>(data) {
        let _ = s.verify(&key);
    }
});
