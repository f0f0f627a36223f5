//! The node's own entries have one writer (issue 12): while 100 clients stream entries over
//! JSON-RPC, a proposal closes and checkpoints are anchored on a real anvil; the clerk's tally
//! and every anchor receipt are recorded on their first attempt, and no checkpoint is anchored
//! by two transactions. The node runs in-process (`Node::start` with the JSON-RPC frontend on
//! a port-0 listener); the proposal and the votes go through the real `coop` binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{attest, coop, free_port, now_ms, sign, start_in_process, Anvil, ANVIL_KEY};
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::{Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::Envelope;
use coopledger_node::anchoring::AnchorConfig;
use coopledger_node::{folder, keyfile};
use coopledger_rpc::{GovApiClient, LedgerApiClient};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 100;
/// Proposals closing at one instant: the clerk records their tallies back to back for over a
/// second, while the anchoring loop records a receipt every half second or so.
const PROPOSALS: u64 = 100;

/// Every transaction the anchoring account sent, as (block, calldata), from anvil.
async fn anchor_transactions(chain: &str) -> Vec<Vec<u8>> {
    let http = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(chain)
        .unwrap();
    use jsonrpsee::core::client::ClientT;
    let head: String = http
        .request("eth_blockNumber", jsonrpsee::rpc_params![])
        .await
        .unwrap();
    let head = u64::from_str_radix(head.trim_start_matches("0x"), 16).unwrap();
    let mut out = Vec::new();
    for n in 0..=head {
        let b: Value = http
            .request(
                "eth_getBlockByNumber",
                jsonrpsee::rpc_params![format!("0x{n:x}"), true],
            )
            .await
            .unwrap();
        for tx in b["transactions"].as_array().into_iter().flatten() {
            let input = tx["input"].as_str().unwrap().trim_start_matches("0x");
            out.push(hex::decode(input).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tally_and_anchor_receipts_are_recorded_first_time_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let board = SigningKey::generate(&mut rand::rngs::OsRng);
    let members: Vec<SigningKey> = (0..CLIENTS)
        .map(|_| SigningKey::generate(&mut rand::rngs::OsRng))
        .collect();
    let mut bylaws = Bylaws::single_class();
    for r in bylaws.decisions.values_mut() {
        r.min_duration_ms = 1_000;
    }
    let mut founders = vec![Founder {
        key: board.verifying_key().to_bytes(),
        class: "members".into(),
        roles: vec![Role::Board],
    }];
    founders.extend(members.iter().map(|k| Founder {
        key: k.verifying_key().to_bytes(),
        class: "members".into(),
        roles: vec![],
    }));
    let origin = "loaded.example.coop/ledger";
    folder::create(&data, origin, |node| Genesis {
        name: "Loaded co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws,
    })
    .await
    .unwrap();
    let board_file = dir.path().join("board.key");
    keyfile::write(&board_file, &board).unwrap();

    let chain_port = free_port().unwrap();
    // Automine on anvil's default (post-London) hardfork: one block per transaction.
    let _anvil = Anvil::start_with(chain_port, &[]).unwrap();
    let chain = format!("http://127.0.0.1:{chain_port}");
    let (running, stop) = start_in_process(
        &data,
        Some(AnchorConfig {
            rpc_url: chain.clone(),
            chain_id: 31337,
            key: k256::ecdsa::SigningKey::from_slice(&hex::decode(ANVIL_KEY).unwrap()).unwrap(),
            every: Duration::from_secs(3600),
            every_entries: 100,
            confirmations: 1,
            fees: Default::default(),
        }),
    )
    .await
    .unwrap();
    let node = running.node.clone();
    let rpc = format!("http://{}", running.addr);

    // 100 clients, each its own member, streaming attestations until told to stop.
    let streaming = Arc::new(AtomicBool::new(true));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for (i, key) in members.iter().cloned().enumerate() {
        let (rpc, streaming, acknowledged, retried) = (
            rpc.clone(),
            streaming.clone(),
            acknowledged.clone(),
            retried.clone(),
        );
        clients.push(tokio::spawn(async move {
            let c = coopledger_rpc::client::http_client(&rpc).unwrap();
            let mut seq = 1;
            while streaming.load(Ordering::Relaxed) {
                let n = i as u64 * 1_000_000 + seq;
                let env = sign(&key, origin, "coop.attest", seq, now_ms(), attest(n)).unwrap();
                // A lost connection is retried with the same bytes (a submission is
                // idempotent: the same entry gets the same receipt); a refusal fails the test.
                let mut tries = 0;
                loop {
                    match c.submit(Value::String(b64_encode(env.bytes()))).await {
                        Ok(_) => break,
                        Err(jsonrpsee::core::ClientError::Call(e)) => {
                            panic!("client {i}: entry {seq} refused: {e}")
                        }
                        Err(e) if tries < 5 => {
                            tries += 1;
                            retried.fetch_add(1, Ordering::Relaxed);
                            eprintln!("client {i}: entry {seq}: {e}; sending it again");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => panic!("client {i}: entry {seq} not answered: {e}"),
                    }
                }
                acknowledged.fetch_add(1, Ordering::Relaxed);
                seq += 1;
            }
            seq - 1
        }));
    }
    // Let the load build up, then open proposals that all close at one instant while it runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let board_client = coopledger_rpc::client::http_client(&rpc).unwrap();
    let opens = now_ms();
    // Wide enough for 100 proposals and a CLI vote on a loaded 2-core machine.
    let closes = opens + 10_000;
    let mut ids = Vec::new();
    for n in 1..=PROPOSALS {
        let payload = serde_json::json!({
            "kind": "ordinary",
            "title": format!("Motion {n}"),
            "method": "yes_no",
            "opensMs": opens,
            "closesMs": closes,
        });
        let env = sign(&board, origin, "gov.propose", n, opens, payload).unwrap();
        let r = board_client
            .submit(Value::String(b64_encode(env.bytes())))
            .await
            .unwrap();
        ids.push(hex::encode(
            Envelope::from_bytes(&node.log.entry(r.index).unwrap())
                .unwrap()
                .entry_id()
                .as_bytes(),
        ));
    }
    // One vote through the real CLI, as a member would cast it.
    let board_path = board_file.to_str().unwrap().to_owned();
    let (rpc2, first) = (rpc.clone(), ids[0].clone());
    tokio::task::spawn_blocking(move || {
        let (code, out, err) =
            coop(&["--rpc", &rpc2, "vote", "--key", &board_path, &first, "yes"]).unwrap();
        assert_eq!(code, 0, "{out}{err}");
    })
    .await
    .unwrap();

    // Wait (under load) until every tally is recorded and three more anchors after that.
    let gov = coopledger_rpc::client::http_client(&rpc).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let receipts_now = || {
        coopledger_governance::rules::anchors::anchors(node.log.as_ref())
            .unwrap()
            .len()
    };
    let mut after_tallies = None;
    loop {
        let receipts = receipts_now();
        match after_tallies {
            None => {
                let mut tallied = 0;
                for id in &ids {
                    tallied += usize::from(gov.proposal(id.clone()).await.unwrap().tally.is_some());
                }
                if tallied == ids.len() {
                    after_tallies = Some(receipts);
                }
            }
            Some(r) if receipts >= r + 3 => break,
            Some(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "not done in time: tallies done at {after_tallies:?} receipts, {receipts} receipts"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    streaming.store(false, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acked = acknowledged.load(Ordering::Relaxed);
    assert!(acked > 1_000, "only {acked} entries were streamed");
    // The load is over: let the anchoring loop finish what it has in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = node.anchor_status.lock().unwrap().clone();
        let size = node.log.checkpoint().checkpoint.size;
        // Idle: nothing pending, and what is unanchored is not enough to call for an anchor.
        if s.pending.is_none() && size - s.anchored_size < 100 {
            break;
        }
        assert!(Instant::now() < deadline, "anchoring did not settle: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The clerk and the anchoring loop never saw a refusal.
    assert_eq!(node.clerk.refused(), 0, "a clerk entry was refused");
    let status = node.anchor_status.lock().unwrap().clone();
    assert_eq!(status.failures, 0, "anchoring failed: {status:?}");
    assert!(status.last_error.is_none(), "{status:?}");

    // One tally per proposal; every anchor transaction carries a distinct checkpoint and has
    // exactly one receipt.
    let size = node.log.checkpoint().checkpoint.size;
    let mut tallies = 0;
    for i in 0..size {
        let env = Envelope::from_bytes(&node.log.entry(i).unwrap()).unwrap();
        if env.body().kind == "gov.tally" {
            tallies += 1;
        }
    }
    assert_eq!(tallies, PROPOSALS);
    let receipts = coopledger_governance::rules::anchors::anchors(node.log.as_ref()).unwrap();
    let _ = stop.send(());
    running.stopped().await;
    let sent = anchor_transactions(&chain).await;
    let mut sizes: Vec<u64> = sent
        .iter()
        .map(|d| coopledger_ledger::anchor::parse_calldata(d).unwrap().size)
        .collect();
    let all = sizes.len();
    sizes.sort_unstable();
    sizes.dedup();
    assert_eq!(
        sizes.len(),
        all,
        "a checkpoint was anchored twice: {sizes:?}"
    );
    let mut recorded: Vec<u64> = receipts.iter().map(|r| r.size).collect();
    recorded.sort_unstable();
    assert_eq!(
        recorded, sizes,
        "every anchor transaction has exactly one receipt"
    );
    println!("{} transport retries", retried.load(Ordering::Relaxed));
    println!(
        "{acked} entries from {CLIENTS} clients; {tallies} tallies, each recorded once; {} anchors, {all} transactions",
        receipts.len()
    );
}
