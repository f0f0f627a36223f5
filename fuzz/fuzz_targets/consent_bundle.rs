//! The regulator's consent bundle (`coopledger-consent-bundle/v1`): decoding and verifying
//! arbitrary JSON never panics.
#![no_main]

use coopledger_governance::consent_bundle::ConsentBundle;
use coopledger_ledger::note::NoteVerifier;
use libfuzzer_sys::fuzz_target;

/// A published verifier key (Go's note tests), to verify against.
const LOG: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    if let (Ok(b), Ok(key)) = (
        serde_json::from_slice::<ConsentBundle>(data),
        NoteVerifier::parse(LOG),
    ) {
        let _ = b.verify(&key);
    }
});
