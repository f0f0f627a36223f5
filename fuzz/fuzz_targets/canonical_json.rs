//! RFC 8785 canonical JSON: any JSON value either is refused (floats, unsafe integers) or
//! encodes to bytes that parse back to the same value and encode again to the same bytes.
#![no_main]

use coopledger_ledger::codec::canonical_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(bytes) = canonical_json(&v, "v") {
        let back: serde_json::Value =
            serde_json::from_slice(&bytes).expect("canonical JSON parses");
        assert_eq!(back, v);
        assert_eq!(canonical_json(&back, "v").expect("encodes again"), bytes);
    }
});
