//! Raft's calls and answers between replicas as the `rpc` crate reads them off the cluster
//! listener (`raft_appendEntries`, `raft_vote`, `raft_installSnapshot`) and off a peer's
//! answer: decoding arbitrary JSON as each never panics. The first byte picks the message.
#![no_main]

use coopledger_cluster_formats::Cluster;
use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

fn reads<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        let json = serde_json::to_vec(&v).expect("encodes");
        serde_json::from_slice::<T>(&json).expect("its own JSON reads back");
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
