//! The `coopledger-proof/v1` proof file: decoding and verifying arbitrary JSON never panics.
#![no_main]

use coopledger_ledger::bundle::ProofFile;
use coopledger_ledger::note::NoteVerifier;
use libfuzzer_sys::fuzz_target;

/// A published verifier key (Go's note tests), to verify against.
const LOG: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<ProofFile>(data) {
        if let Ok(key) = NoteVerifier::parse(LOG) {
            let _ = p.verify(&key);
        }
    }
});
