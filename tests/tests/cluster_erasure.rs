//! Erasure on three replicas (issue 17: "erasure also purges the Raft log's copies and
//! snapshots"): a member's personal data travels to every replica in Raft entries (base64 in
//! the Raft log, raw in the vault's records); after `coop personal erase`, no file of any
//! replica's data folder — ledger database, Raft log, snapshots — holds the member's data key
//! or ciphertext, raw or in base64 — the answering replica's files at the moment it answers,
//! the others' within seconds. The search is shown to find them before, so its silence after
//! means something; the plaintext is in no file at any time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use base64::Engine;
use common::{files_holding, member_id, ok};
use coopledger_e2e::cluster::{caught_up, leader, three, Replica};
use coopledger_ledger::store::Store;
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use std::path::Path;
use std::time::{Duration, Instant};

const NAME: &str = "Grace Replicated-Patient 9c41";
const EMAIL: &str = "grace.9c41.private@example.org";

/// Which of `needles` the files under `dir` hold, and where.
fn holding(dir: &Path, needles: &[(&str, Vec<u8>)]) -> Vec<String> {
    needles
        .iter()
        .flat_map(|(what, n)| {
            files_holding(dir, n)
                .into_iter()
                .map(move |f| format!("{what} in {}", f.display()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_erasure_no_file_of_any_replica_holds_the_data_or_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vault_key = d.join("vault.key");
    let mut replicas: Vec<Replica> = three(d).await.unwrap();
    let (lead, lead_url) = leader(&replicas).await.unwrap();
    let member_key = d.join("r1/demo-keys/member.key");
    let member_key = member_key.to_str().unwrap();
    let member = member_id(member_key);
    let on = |args: &[&str]| {
        let mut v = vec!["--rpc", lead_url.as_str()];
        v.extend_from_slice(args);
        ok(&v)
    };
    on(&[
        "personal",
        "submit",
        "--key",
        member_key,
        "--attr",
        &format!("full_name={NAME}"),
        "--attr",
        &format!("email={EMAIL}"),
    ]);
    let size = http_client(&lead_url)
        .unwrap()
        .checkpoint()
        .await
        .unwrap()
        .size;
    caught_up(&replicas, size).await.unwrap();

    // The stored key and ciphertext, read from a follower's database while it is down.
    let follower = replicas.iter().position(|r| r.id != lead).unwrap();
    replicas[follower].kill9().unwrap();
    let (data_key, sealed) = {
        let store = Store::open(&replicas[follower].data.join("ledger")).unwrap();
        let get = |k: String| store.offlog_get(k.as_bytes()).unwrap().expect("stored");
        (
            get(format!("pii-key/{member}")),
            get(format!("pii-data/{member}")),
        )
    };
    replicas[follower].start(&vault_key).unwrap();
    caught_up(&replicas, size).await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let needles = [
        ("data key", data_key.clone()),
        ("ciphertext", sealed.clone()),
        ("data key, base64", b64.encode(&data_key).into_bytes()),
        ("ciphertext, base64", b64.encode(&sealed).into_bytes()),
    ];
    let plain = [
        ("name", NAME.as_bytes().to_vec()),
        ("email", EMAIL.as_bytes().to_vec()),
    ];
    // Before: every replica holds them — raw in its vault records, base64 in its Raft log.
    for r in &replicas {
        let found = holding(&r.data, &needles);
        for what in ["data key", "ciphertext", "data key, base64"] {
            assert!(
                found.iter().any(|f| f.starts_with(&format!("{what} in"))),
                "replica {}: {what} not found before the erasure: {found:?}",
                r.id
            );
        }
        assert_eq!(holding(&r.data, &plain), Vec::<String>::new());
    }

    let out = on(&["personal", "erase", "--key", member_key]);
    assert!(out.contains("destroyed on the node"), "{out}");

    // At the answer: in no file of the replica that answered (its vault records shredded,
    // its snapshot rebuilt, its Raft log purged and scrubbed) — checked at once, no waiting.
    let answering = replicas.iter().find(|r| r.id == lead).unwrap();
    assert_eq!(
        holding(&answering.data, &needles),
        Vec::<String>::new(),
        "the answering replica still holds the erased member's data"
    );
    // The others purge as they apply the erasure, on their own: in no file within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in &replicas {
        loop {
            let found = holding(&r.data, &needles);
            if found.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} still holds the erased member's data: {found:?}",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(holding(&r.data, &plain), Vec::<String>::new());
    }
}
