//! Bylaws as `coop init --bylaws` and an amendment carry them: decoding and validating
//! arbitrary JSON never panics, and valid bylaws survive their own JSON.
#![no_main]

use coopledger_governance::bylaws::Bylaws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = serde_json::from_slice::<Bylaws>(data) {
        if b.validate().is_ok() {
            let again: Bylaws =
                serde_json::from_slice(&serde_json::to_vec(&b).expect("encodes")).expect("decodes");
            assert_eq!(again, b);
        }
    }
});
