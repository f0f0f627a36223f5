//! The command one Raft entry carries, as a replica reads it from its Raft log or a peer's
//! append: decoding arbitrary bytes never panics, a command survives its own JSON, and turning
//! it into the ledger's batch never panics (bad base64 becomes an entry every replica refuses).
#![no_main]

use coopledger_cluster_formats::{BatchCommand, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(command) = serde_json::from_slice::<Command>(data) else {
        return;
    };
    let json = serde_json::to_vec(&command).expect("encodes");
    let again: Command = serde_json::from_slice(&json).expect("its own JSON reads back");
    assert_eq!(again, command);
    let Command::Batch(batch) = command;
    let shreds = batch.shreds();
    let proposed = batch.into_batch();
    // What the ledger gets re-encodes to a command that shreds exactly when this one did.
    assert_eq!(BatchCommand::from(proposed).shreds(), shreds);
});
