//! The portal's verifier (`coop-verify`, run in browsers as WebAssembly) on arbitrary request
//! text: never panics; anything that is not a request is an `{"error": …}` answer, anything
//! that is one gets an answer with a verdict or a cause.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match coopledger_verifier::answer(text) {
        Ok(answer) => assert!(answer.is_object()),
        Err(error) => assert!(error.get("error").is_some()),
    }
});
