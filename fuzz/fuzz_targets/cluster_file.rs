//! `cluster.json`, a replica's record of its place, as `coop serve` reads it from its data
//! folder: arbitrary text never panics the reader, and a file it accepts survives its own JSON.
#![no_main]

use coopledger_cluster_formats::membership::ClusterFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = ClusterFile::parse(text) {
        let json = serde_json::to_string_pretty(&file).expect("encodes");
        assert_eq!(
            ClusterFile::parse(&json).expect("its own JSON reads back"),
            file
        );
    }
});
