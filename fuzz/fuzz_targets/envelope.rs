//! The entry envelope: bytes as `ledger_submit` receives them (canonical bytes or JSON). Never
//! a panic; whatever parses re-encodes to the very bytes that were accepted, and an envelope's
//! bytes (put together from its body's canonical bytes) are exactly the canonical form of the
//! whole envelope as JSON.
#![no_main]

use coopledger_ledger::codec::{b64_encode, canonical_json};
use coopledger_ledger::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.bytes(), data, "accepted bytes are canonical");
        let again = Envelope::from_value(&env.to_value()).expect("its own JSON parses");
        assert_eq!(again.bytes(), env.bytes());
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(env) = Envelope::from_value(&v) {
            let whole = serde_json::json!({
                "body": env.body().to_value(),
                "sig": b64_encode(env.signature()),
            });
            let canonical = canonical_json(&whole, "").expect("a parsed envelope encodes");
            assert_eq!(env.bytes(), canonical.as_slice());
        }
    }
});
