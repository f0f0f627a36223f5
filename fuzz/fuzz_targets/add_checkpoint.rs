//! The C2SP tlog-witness `add-checkpoint` body: parsing never panics, and what parses
//! serialises to a body that parses to the same request.
#![no_main]

use coopledger_ledger::witness::AddCheckpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AddCheckpoint::parse(data) {
        let again = AddCheckpoint::parse(req.to_body().as_bytes()).expect("its own body parses");
        assert_eq!(again, req);
    }
});
