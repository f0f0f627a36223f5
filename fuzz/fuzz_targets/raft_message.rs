//! Raft's calls and answers between replicas as the `rpc` crate reads them off the cluster
//! listener (`raft_appendEntries`, `raft_vote`, `raft_installSnapshot`, `raft_purged`) and off a peer's
//! answer (`cluster_formats::raft::strict_text`, which refuses what the type would not write
//! back): decoding arbitrary text as each never panics, what it accepts is exactly the type's
//! own JSON, and it gives the same verdict as `strict` on the same JSON's tree — or, where the
//! text repeats a key in one object (which a tree cannot hold), refuses it. The first byte
//! picks the message.
#![no_main]

use coopledger_cluster_formats::raft::{strict, strict_text, tree, PurgeMark, PurgeQuery};
use coopledger_cluster_formats::Cluster;
use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

fn reads<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let from_text = strict_text::<T>(text);
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        assert!(from_text.is_err(), "accepted text that is not JSON");
        return;
    };
    let Ok(checked) = tree(text) else {
        assert!(from_text.is_err(), "accepted text that repeats a key");
        return;
    };
    assert_eq!(checked, value, "the checked tree is not serde_json's");
    let from_tree = strict::<T>(&value);
    assert_eq!(
        from_text.is_ok(),
        from_tree.is_ok(),
        "text and tree disagree"
    );
    if let Ok(message) = from_text {
        assert_eq!(serde_json::to_value(&message).expect("encodes"), value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => reads::<AppendEntriesRequest<Cluster>>(bytes),
        1 => reads::<AppendEntriesResponse<u64>>(bytes),
        2 => reads::<VoteRequest<u64>>(bytes),
        3 => reads::<VoteResponse<u64>>(bytes),
        4 => reads::<InstallSnapshotRequest<Cluster>>(bytes),
        5 => reads::<InstallSnapshotResponse<u64>>(bytes),
        6 => reads::<PurgeQuery>(bytes),
        _ => reads::<PurgeMark>(bytes),
    }
});
