//! A partitioned leader, with real processes on a network of the test's own (issue 17,
//! `docs/replication.md` §8 test 2): three `coop serve` replicas, each in its own network
//! namespace joined by a bridge. The leader's link is cut: a member beside it (in its
//! namespace) submits to it and gets no receipt, and its ledger does not grow, while the other
//! two elect a leader that acknowledges. When the link comes back the old leader follows the
//! new one: its uncommitted entry is in no ledger, all three hold the same entries and sign the
//! same note at the same size, and each audits clean.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::cluster::{caught_up, caught_up_with, init_at, join_at, leader, voters, Place};
use coopledger_e2e::netns::Lan;
use coopledger_e2e::{attest, coop, now_ms, read_key, sign};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::Hash;
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use jsonrpsee::core::client::ClientT;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_acknowledges_nothing_and_its_tail_reaches_no_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vault_key = d.join("vault.key");
    // Dropped after the replicas (declared first): the processes end before their namespaces.
    let lan = Lan::new(3).unwrap();
    let place = |i: usize| Place {
        host: lan.host(i),
        port: 7341,
        cluster_port: 7441,
        netns: Some(lan.netns(i)),
        serve: Vec::new(),
    };
    let mut replicas = vec![init_at(&d.join("r1"), &vault_key, &place(1)).unwrap()];
    let via = replicas[0].url();
    for id in [2u64, 3] {
        replicas.push(
            join_at(
                d,
                id,
                &via,
                &d.join("r1/node.key"),
                &vault_key,
                &place(id as usize),
            )
            .unwrap(),
        );
    }
    voters(&via, 3).await.unwrap();
    let (old, old_url) = leader(&replicas).await.unwrap();

    let member = read_key(&d.join("r1/demo-keys/member.key")).unwrap();
    let signer = b64_encode(member.verifying_key().to_bytes());
    let c = http_client(&old_url).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let mut seq = c.next_seq(signer.clone()).await.unwrap();
    for _ in 0..3 {
        let env = sign(&member, &origin, "coop.attest", seq, now_ms(), attest(seq)).unwrap();
        c.submit(env.to_value()).await.unwrap();
        seq += 1;
    }
    let before = c.checkpoint().await.unwrap().size;
    caught_up(&replicas, before).await.unwrap();

    // The leader's link goes down. A member beside it submits to it: no receipt.
    lan.cut(old as usize).unwrap();
    let lonely = sign(&member, &origin, "coop.attest", seq, now_ms(), attest(seq)).unwrap();
    let lonely_file = d.join("lonely.json");
    std::fs::write(
        &lonely_file,
        serde_json::to_vec(&lonely.to_value()).unwrap(),
    )
    .unwrap();
    let ns = lan.netns(old as usize);
    let beside = |args: &[&str]| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &ns])
            .arg(coopledger_e2e::coop_bin().unwrap())
            .args(["--rpc", "http://127.0.0.1:7341"])
            .args(args);
        cmd.output().unwrap()
    };
    let key_file = d.join("r1/demo-keys/member.key");
    let payload = serde_json::to_string(&attest(seq)).unwrap();
    let seq_text = seq.to_string();
    let out = beside(&[
        "submit",
        "--key",
        key_file.to_str().unwrap(),
        "--type",
        "coop.attest",
        "--payload",
        &payload,
        "--seq",
        &seq_text,
    ]);
    assert!(
        !out.status.success(),
        "a cut-off leader gave a receipt: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let answer = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        answer.contains("NO_QUORUM")
            || answer.contains("NOT_LEADER")
            || answer.contains("no quorum"),
        "{answer}"
    );
    let cp = beside(&["checkpoint"]);
    let cp: serde_json::Value = serde_json::from_slice(&cp.stdout).unwrap();
    assert_eq!(cp["size"], before, "the cut-off leader's ledger grew");

    // The other two elect a leader, which acknowledges.
    let others: Vec<_> = replicas.iter().filter(|r| r.id != old).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_url = loop {
        let mut found = None;
        for r in &others {
            let s: Option<serde_json::Value> = http_client(&r.url())
                .unwrap()
                .request("cluster_status", jsonrpsee::rpc_params![])
                .await
                .ok();
            if let Some(l) = s.as_ref().and_then(|s| s["leader"].as_u64()) {
                if l != old {
                    found = s.and_then(|s| s["leaderPublic"].as_str().map(str::to_owned));
                }
            }
        }
        if let Some(u) = found {
            break u;
        }
        assert!(Instant::now() < deadline, "the majority elected no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let c = http_client(&new_url).unwrap();
    let next = c.next_seq(signer.clone()).await.unwrap();
    let env = sign(
        &member,
        &origin,
        "coop.attest",
        next,
        now_ms(),
        attest(next + 1000),
    )
    .unwrap();
    let receipt = c.submit(env.to_value()).await.unwrap();
    assert!(receipt.index >= before);

    // Healed: the old leader follows; its uncommitted entry is in no ledger.
    lan.heal(old as usize).unwrap();
    let (_, url) = leader(&replicas).await.unwrap();
    let size = caught_up_with(&replicas, &url).await.unwrap();
    let lonely_leaf = coopledger_ledger::hash::leaf_hash(lonely.bytes());
    let vkey = http_client(&url).unwrap().verifier_key().await.unwrap();
    let mut note = None;
    for r in &replicas {
        let c = http_client(&r.url()).unwrap();
        for i in 0..size {
            let e = c.get_entry(i).await.unwrap();
            assert_ne!(
                Hash::from_base64(&e.leaf_hash).unwrap(),
                lonely_leaf,
                "replica {} holds the entry the cut-off leader never committed",
                r.id
            );
        }
        let n: serde_json::Value = c
            .request("ledger_checkpointAt", jsonrpsee::rpc_params![size])
            .await
            .unwrap();
        match &note {
            None => note = Some(n),
            Some(first) => assert_eq!(first, &n, "replica {} signed another note", r.id),
        }
        let (code, out, err) = coop(&["--rpc", &r.url(), "audit", "--vkey", &vkey]).unwrap();
        assert_eq!(code, 0, "replica {}: {out}{err}", r.id);
    }
    drop(replicas);
    drop(lan);
}
