//! C2SP signed notes, checkpoints and cosignature lines: parsing and opening arbitrary text
//! never panics.
#![no_main]

use coopledger_ledger::cosignature::{cosignatures, WitnessKey};
use coopledger_ledger::note::{Checkpoint, NoteVerifier, SignedCheckpoint, SignedNote};
use libfuzzer_sys::fuzz_target;

/// A published verifier key (Go's note tests), to open notes against.
const LOG: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const WITNESS: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

fuzz_target!(|data: &[u8]| {
    let _ = SignedNote::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Checkpoint::parse(text);
        let _ = NoteVerifier::parse(text);
        let _ = WitnessKey::parse(text);
        if let Ok(key) = NoteVerifier::parse(LOG) {
            let _ = SignedCheckpoint::open(text, &key);
        }
        if let (Ok(note), Ok(w)) = (SignedNote::parse(data), WitnessKey::parse(WITNESS)) {
            let _ = cosignatures(&note, &[w]);
        }
    }
});
