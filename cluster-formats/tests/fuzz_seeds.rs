//! The fuzz seeds committed for the cluster's parsers (`fuzz/seeds/<target>`) are inputs the
//! parsers accept, so each fuzz run starts from the real formats rather than from noise — and a
//! format change that would orphan them fails here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message"
)]

use coopledger_cluster_formats::membership::{ClusterFile, ClusterRequest, ClusterStatus};
use coopledger_cluster_formats::raft::{PurgeMark, PurgeQuery};
use coopledger_cluster_formats::snapshot::SnapshotReader;
use coopledger_cluster_formats::{Cluster, Command};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn every_json_seed_parses() {
    for (name, bytes) in seeds("raft_command") {
        serde_json::from_slice::<Command>(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in seeds("cluster_file") {
        ClusterFile::parse(std::str::from_utf8(&bytes).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in seeds("cluster_request") {
        serde_json::from_slice::<ClusterRequest>(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in seeds("cluster_status") {
        serde_json::from_slice::<ClusterStatus>(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_raft_message_seed_parses_as_the_message_its_first_byte_names() {
    fn parses<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, bytes: &[u8]) {
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        coopledger_cluster_formats::raft::strict::<T>(&value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in seeds("raft_message") {
        let (which, rest) = bytes.split_first().unwrap();
        match which % 8 {
            0 => parses::<AppendEntriesRequest<Cluster>>(&name, rest),
            1 => parses::<AppendEntriesResponse<u64>>(&name, rest),
            2 => parses::<VoteRequest<u64>>(&name, rest),
            3 => parses::<VoteResponse<u64>>(&name, rest),
            4 => parses::<InstallSnapshotRequest<Cluster>>(&name, rest),
            5 => parses::<InstallSnapshotResponse<u64>>(&name, rest),
            6 => parses::<PurgeQuery>(&name, rest),
            _ => parses::<PurgeMark>(&name, rest),
        }
    }
}

#[test]
fn every_snapshot_seed_is_a_whole_snapshot() {
    for (name, bytes) in seeds("snapshot_file") {
        let (keep, file) = bytes.split_first().unwrap();
        let mut reader = SnapshotReader::open(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let size = reader.header().size;
        let mut kept = 0;
        while let Some(read) = reader.next_segment(u64::from(keep % 8)).unwrap() {
            kept += read.entries.len() as u64;
        }
        let offlog = reader.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(kept, size - u64::from(keep % 8).min(size), "{name}");
        assert!(!offlog.is_empty(), "{name}");
    }
}
