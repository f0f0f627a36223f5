//! Bylaws as `coop init --bylaws` and an amendment carry them: decoding and validating
//! arbitrary JSON never panics, and valid bylaws survive their own JSON.
#![no_main]

use coopledger_governance::bylaws::Bylaws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // The one reader the rules and `coop init` use: strict, errors with a path, validated.
    if let Ok(b) = Bylaws::from_json(&v) {
        let json = serde_json::to_value(&b).expect("encodes");
        let again = Bylaws::from_json(&json).expect("its own JSON reads back");
        assert_eq!(again, b);
    }
});
