//! The tally bundle (`coopledger-tally-bundle/v1`): decoding and recounting arbitrary JSON
//! never panics. The key is the one the seed bundle (a real two-thirds amendment, exported from
//! a node) was signed with, so mutations of the seed get past the checkpoint into the recount.
#![no_main]

use coopledger_governance::tally_bundle::TallyBundle;
use coopledger_ledger::note::NoteVerifier;
use libfuzzer_sys::fuzz_target;

const LOG: &str =
    "assembly.example.coop/ledger+9ead4a71+AbFsVsFmn/Oeanjjn9LychmrpcX4dR8mzSIBEMEZwKLp";

fuzz_target!(|data: &[u8]| {
    if let (Ok(b), Ok(key)) = (
        serde_json::from_slice::<TallyBundle>(data),
        NoteVerifier::parse(LOG),
    ) {
        let _ = b.verify(&key);
    }
});
