//! The cluster's status as `coop cluster status` reads it from any node's `cluster_status`:
//! decoding arbitrary JSON never panics, and a status survives its own JSON.
#![no_main]

use coopledger_cluster_formats::membership::ClusterStatus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = serde_json::from_slice::<ClusterStatus>(data) {
        let json = serde_json::to_vec(&status).expect("encodes");
        let again: ClusterStatus = serde_json::from_slice(&json).expect("reads back");
        assert_eq!(again, status);
    }
});
