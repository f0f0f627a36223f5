//! `GET /metrics` on a real `coop serve` (issue 16 item 4): after accepted, duplicate and refused
//! submissions, single and bulk, the scrape shows each by reason, the batch and fsync and
//! acknowledgement histograms, tree and checkpoint sizes that match the log, RPC latency by
//! method (an unknown one folded into `unknown`), open connections and the anchoring state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{attest, http_get, http_post, metric, now_ms, read_key, sign, Node};
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use serde_json::{json, Value};

fn scrape(addr: &str) -> String {
    let (status, ctype, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_what_the_node_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let c = http_client(&node.http_url()).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let board = read_key(&data.join("demo-keys/board.key")).unwrap();
    let before = scrape(&node.addr);
    let accepted_before = metric(&before, "coop_entries_accepted_total").unwrap();
    let acks_before = metric(&before, "coop_ack_seconds_count").unwrap();

    // Three accepted one by one, the first again (a duplicate), a replayed sequence number, a
    // bad signature, then two accepted and one refused in one bulk request.
    let mut sent = Vec::new();
    for n in 1..=3 {
        let e = sign(&board, &origin, "coop.attest", n, now_ms(), attest(n)).unwrap();
        c.submit(e.to_value()).await.unwrap();
        sent.push(e);
    }
    c.submit(sent[0].to_value()).await.unwrap();
    let replay = sign(&board, &origin, "coop.attest", 2, now_ms(), attest(99)).unwrap();
    assert!(c.submit(replay.to_value()).await.is_err());
    let mut forged = sign(&board, &origin, "coop.attest", 4, now_ms(), attest(4))
        .unwrap()
        .to_value();
    forged["body"]["payload"]["kind"] = json!("agenda");
    assert!(c.submit(forged).await.is_err());
    let bulk: Vec<Value> = [(4, 4), (5, 5), (5, 50)]
        .into_iter()
        .map(|(seq, n)| {
            sign(&board, &origin, "coop.attest", seq, now_ms(), attest(n))
                .unwrap()
                .to_value()
        })
        .collect();
    let answers: Vec<Value> = c
        .request("ledger_submitBatch", rpc_params![bulk])
        .await
        .unwrap();
    assert_eq!(
        answers.iter().filter(|a| a["receipt"].is_object()).count(),
        2
    );
    // A method nobody registered.
    assert!(c
        .request::<Value, _>("ledger_noSuchMethod", rpc_params![])
        .await
        .is_err());

    let text = scrape(&node.addr);
    let get =
        |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no sample {name} in:\n{text}"));
    assert_eq!(get("coop_entries_accepted_total") - accepted_before, 5.0);
    assert_eq!(get("coop_entries_duplicate_total"), 1.0);
    assert_eq!(get("coop_entries_refused_total{reason=\"replay\"}"), 2.0);
    assert_eq!(
        get("coop_entries_refused_total{reason=\"bad_signature\"}"),
        1.0
    );
    // Every receipt (five new, one duplicate) was timed.
    assert_eq!(get("coop_ack_seconds_count") - acks_before, 6.0);
    assert!(get("coop_batch_entries_count") >= 4.0);
    assert!(get("coop_batch_entries_sum") >= 5.0);
    assert!(get("coop_fsync_seconds_count{file=\"database\"}") >= 4.0);
    assert!(get("coop_fsync_seconds_count{file=\"record\"}") >= 1.0);
    let cp = c.checkpoint().await.unwrap();
    assert_eq!(get("coop_checkpoint_size") as u64, cp.size);
    assert_eq!(get("coop_tree_size") as u64, cp.size);
    // A single node records every checkpoint before it releases it.
    assert_eq!(get("coop_checkpoint_recorded_size") as u64, cp.size);
    let age = get("coop_checkpoint_age_seconds");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(get("coop_rpc_seconds_count{method=\"ledger_submit\"}") >= 6.0);
    assert_eq!(
        get("coop_rpc_seconds_count{method=\"ledger_submitBatch\"}"),
        1.0
    );
    assert_eq!(get("coop_rpc_seconds_count{method=\"unknown\"}"), 1.0);
    assert!(
        !text.contains("ledger_noSuchMethod"),
        "a caller's method name became a label"
    );
    assert!(get("coop_connections_open") >= 1.0);
    assert_eq!(get("coop_anchor_enabled"), 0.0);

    // Only GET.
    let (status, _, _) = http_post(&node.addr, "/metrics", b"").unwrap();
    assert_eq!(status, 405);
}
