//! Erasure on three replicas (issue 17: "erasure also purges the Raft log's copies and
//! snapshots"): a member's personal data travels to every replica in Raft entries (base64 in
//! the Raft log, raw in the vault's records); after `coop personal erase`, no file of any
//! replica's data folder — ledger database, Raft log, snapshots — holds the member's data key
//! or ciphertext, raw or in base64 — every replica's files at the moment the answer says so
//! (it waits for each replica's confirmation). A replica that is down at the erasure is named
//! in the answer as not yet purged, and purges once it is back. The search is shown to find
//! them before, so its silence after means something; the plaintext is in no file at any time.

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
use coopledger_e2e::cluster::{caught_up, caught_up_with, leader, three, Replica};
use coopledger_ledger::store::Store;
use coopledger_rpc::client::http_client;
use coopledger_rpc::{LedgerApiClient, PersonalApiClient};
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
    let size = caught_up_with(&replicas, &lead_url).await.unwrap();

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
    let mut ids: Vec<u64> = replicas.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let all = ids
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        out.contains(&format!("destroyed on every replica ({all}:")),
        "{out}"
    );

    // At the answer: in no file of any replica (each one's vault records shredded, its
    // snapshot rebuilt, its Raft log purged and scrubbed) — checked at once, no waiting: the
    // answer waited for every replica to confirm.
    for r in &replicas {
        assert_eq!(
            holding(&r.data, &needles),
            Vec::<String>::new(),
            "replica {} still holds the erased member's data at the answer",
            r.id
        );
        assert_eq!(holding(&r.data, &plain), Vec::<String>::new());
    }

    // A replica that is down cannot confirm: the answer names it, and it purges once it is
    // back and has applied the erasure.
    let treasurer_key = d.join("r1/demo-keys/treasurer.key");
    let treasurer_key = treasurer_key.to_str().unwrap();
    let treasurer = member_id(treasurer_key);
    on(&[
        "personal",
        "submit",
        "--key",
        treasurer_key,
        "--attr",
        &format!("full_name={NAME} Treasurer"),
    ]);
    let size = caught_up_with(&replicas, &lead_url).await.unwrap();

    // Anyone can send the erasure again (its entry is public on the ledger): the answer is
    // the first one's, every replica still confirmed, and it costs no replica a snapshot
    // (with entries applied since the last one, a "snapshot through everything applied"
    // would be a new one).
    let client = http_client(&lead_url).unwrap();
    let mut replayed = None;
    for i in (0..size).rev() {
        let e = client.get_entry(i).await.unwrap();
        if e.decoded["body"]["type"] == "member.erase" {
            replayed = Some(e.decoded);
            break;
        }
    }
    let replayed = replayed.expect("the erasure's entry is on the ledger");
    let snapshots = || -> Vec<(u64, u64, std::time::SystemTime)> {
        replicas
            .iter()
            .map(|r| {
                let m = std::fs::metadata(r.data.join("raft-snapshots/current.snap")).unwrap();
                (r.id, m.len(), m.modified().unwrap())
            })
            .collect()
    };
    let before = snapshots();
    for _ in 0..3 {
        let answer = PersonalApiClient::erase(&client, replayed.clone())
            .await
            .unwrap();
        assert!(answer.receipt.duplicate, "{answer:?}");
        assert!(answer.destroyed, "{answer:?}");
        assert_eq!(answer.replicas_purged, ids, "{answer:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(snapshots(), before, "a replayed erasure rebuilt a snapshot");

    replicas[follower].kill9().unwrap();
    let down = replicas[follower].id;
    let needles = {
        let store = Store::open(&replicas[follower].data.join("ledger")).unwrap();
        let get = |k: String| store.offlog_get(k.as_bytes()).unwrap().expect("stored");
        let (key, sealed) = (
            get(format!("pii-key/{treasurer}")),
            get(format!("pii-data/{treasurer}")),
        );
        [
            ("data key", key.clone()),
            ("ciphertext", sealed.clone()),
            ("data key, base64", b64.encode(&key).into_bytes()),
            ("ciphertext, base64", b64.encode(&sealed).into_bytes()),
        ]
    };
    let out = on(&["personal", "erase", "--key", treasurer_key]);
    let up: Vec<String> = ids
        .iter()
        .filter(|&&i| i != down)
        .map(u64::to_string)
        .collect();
    assert!(
        out.contains(&format!(
            "destroyed on replica(s) {}; NOT yet on {down} ",
            up.join(", ")
        )),
        "{out}"
    );
    for r in replicas.iter().filter(|r| r.id != down) {
        assert_eq!(
            holding(&r.data, &needles),
            Vec::<String>::new(),
            "replica {} still holds the erased treasurer's data at the answer",
            r.id
        );
    }
    assert!(
        !holding(&replicas[follower].data, &needles).is_empty(),
        "the replica that was down held the data all along"
    );
    replicas[follower].start(&vault_key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = holding(&replicas[follower].data, &needles);
        if found.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica {down} still holds the erased treasurer's data after it came back: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
