//! Raft's calls and answers between replicas as the `rpc` crate reads them off the cluster
//! listener (`raft_appendEntries`, `raft_vote`, `raft_installSnapshot`) and off a peer's
//! answer (`cluster_formats::raft::strict`, which refuses what the type would not write back):
//! decoding arbitrary JSON as each never panics, and what it accepts is exactly the type's own
//! JSON. The first byte picks the message.
#![no_main]

use coopledger_cluster_formats::raft::strict;
use coopledger_cluster_formats::Cluster;
use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

fn reads<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    if let Ok(message) = strict::<T>(&value) {
        assert_eq!(serde_json::to_value(&message).expect("encodes"), value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => reads::<AppendEntriesRequest<Cluster>>(bytes),
        1 => reads::<AppendEntriesResponse<u64>>(bytes),
        2 => reads::<VoteRequest<u64>>(bytes),
        3 => reads::<VoteResponse<u64>>(bytes),
        4 => reads::<InstallSnapshotRequest<Cluster>>(bytes),
        _ => reads::<InstallSnapshotResponse<u64>>(bytes),
    }
});
