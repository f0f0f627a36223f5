//! Backup and restore (issue 13 item 2): `coop backup` of a running node while a member keeps
//! submitting, `coop restore` into a new folder (checks the backup's checkpoint and replays
//! every entry with the rules), a node started on it holding everything acknowledged before the
//! backup and auditing clean; a stopped folder backs up directly; a stranger without the
//! folder's admin.token cannot ask for a backup.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::ok;
use coopledger_e2e::{attest, coop, now_ms, read_key, sign, Node};
use coopledger_rpc::client::http_client;
use coopledger_rpc::{AdminApiClient, LedgerApiClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_running_node_is_backed_up_and_restored_into_a_node_that_audits_clean() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    let c = http_client(&url).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let board = read_key(&data.join("demo-keys/board.key")).unwrap();
    let mut acked = Vec::new();
    for seq in 1..=5 {
        let e = sign(&board, &origin, "coop.attest", seq, now_ms(), attest(seq)).unwrap();
        let r = c.submit(e.to_value()).await.unwrap();
        acked.push((r.index, r.leaf_hash));
    }
    // A member keeps submitting while the backup is taken.
    let going = Arc::new(AtomicBool::new(true));
    let writer = {
        let (going, url, origin) = (going.clone(), url.clone(), origin.clone());
        let member = read_key(&data.join("demo-keys/member.key")).unwrap();
        tokio::spawn(async move {
            let c = http_client(&url).unwrap();
            let mut seq = 1;
            while going.load(Ordering::Relaxed) {
                let e = sign(
                    &member,
                    &origin,
                    "coop.attest",
                    seq,
                    now_ms(),
                    attest(1000 + seq),
                )
                .unwrap();
                if c.submit(e.to_value()).await.is_ok() {
                    seq += 1;
                }
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let backup = dir.path().join("backup");
    let d = data.to_str().unwrap().to_owned();
    let b = backup.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || ok(&["backup", "--data", &d, "-o", &b]))
        .await
        .unwrap();
    assert!(out.contains("while the node runs"), "{out}");
    going.store(false, Ordering::Relaxed);
    writer.await.unwrap();

    // A stranger without the folder's token is refused, and nothing is written.
    let stray = dir.path().join("stray");
    let err = c
        .backup("not-the-token".into(), stray.display().to_string())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("token"), "{err}");
    assert!(!stray.exists());
    drop(node);

    // A backup whose description does not match its ledger is refused, and leaves no folder.
    let forged = dir.path().join("forged");
    let mut files = vec![(backup.clone(), forged.clone())];
    while let Some((from, to)) = files.pop() {
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                files.push((e.path(), to.join(e.file_name())));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let manifest = forged.join("backup.json");
    let mut info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    info["size"] = (info["size"].as_u64().unwrap() + 1000).into();
    std::fs::write(&manifest, info.to_string()).unwrap();
    let nowhere = dir.path().join("nowhere");
    let (code, _, err) = coop(&[
        "restore",
        forged.to_str().unwrap(),
        "--data",
        nowhere.to_str().unwrap(),
    ])
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("does not check out"), "{err}");
    assert!(!nowhere.exists(), "a failed restore left a folder behind");

    // Restore into a new folder and serve it.
    let restored = dir.path().join("restored");
    let out = ok(&[
        "restore",
        backup.to_str().unwrap(),
        "--data",
        restored.to_str().unwrap(),
    ]);
    assert!(out.contains("every entry replayed"), "{out}");
    let node = Node::start(&restored, &[]).unwrap();
    let c = http_client(&node.http_url()).unwrap();
    for (index, leaf) in &acked {
        assert_eq!(&c.get_entry(*index).await.unwrap().leaf_hash, leaf);
    }
    let vkey = c.verifier_key().await.unwrap();
    let out = ok(&["--rpc", &node.http_url(), "audit", "--vkey", &vkey]);
    assert!(out.contains("AUDIT PASSED"), "{out}");
    // It takes new entries on top of what it restored.
    let seq = c
        .next_seq(coopledger_ledger::codec::b64_encode(
            board.verifying_key().to_bytes(),
        ))
        .await
        .unwrap();
    let e = sign(&board, &origin, "coop.attest", seq, now_ms(), attest(99)).unwrap();
    c.submit(e.to_value()).await.unwrap();
    drop(node);

    // A stopped folder backs up directly; a backup never overwrites.
    let again = dir.path().join("again");
    let out = ok(&[
        "backup",
        "--data",
        restored.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(out.contains("the node was not running"), "{out}");
    let (code, _, err) = coop(&[
        "restore",
        again.to_str().unwrap(),
        "--data",
        restored.to_str().unwrap(),
    ])
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
}
