//! `ledger_submitBatch` and `coop submit --batch` against a real node (issue 16 item 3): a
//! signer's consecutive entries sent together are all accepted, under one checkpoint; an entry
//! the node refuses is answered on its own while the others go in; bad requests are named.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{attest, coop, Node};
use jsonrpsee::core::client::ClientT;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_sent_together_are_sequenced_together_and_answered_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    let board = data.join("demo-keys/board.key");

    // Twelve attestations by one member, in one request.
    let file = dir.path().join("batch.json");
    let list: Vec<Value> = (0..12u64)
        .map(|n| json!({"type": "coop.attest", "payload": attest(n)}))
        .collect();
    // `coop submit --batch FILE` with `entries` written to FILE: (exit code, stdout, stderr).
    let submit_file = |entries: &[Value]| {
        std::fs::write(&file, serde_json::to_vec(entries).unwrap()).unwrap();
        coop(&[
            "--rpc",
            &url,
            "submit",
            "--key",
            board.to_str().unwrap(),
            "--batch",
            file.to_str().unwrap(),
        ])
        .unwrap()
    };
    let (code, out, err) = submit_file(&list);
    assert_eq!(code, 0, "{out}{err}");
    let answers: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(answers.len(), 12);
    let sizes: std::collections::BTreeSet<u64> = answers
        .iter()
        .map(|a| a["receipt"]["checkpoint"]["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 1, "one checkpoint covers the batch: {sizes:?}");
    let indexes: Vec<u64> = answers
        .iter()
        .map(|a| a["receipt"]["index"].as_u64().unwrap())
        .collect();
    assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1), "{indexes:?}");

    // One entry of another type the rules do not know: refused alone, exit 3.
    let mut mixed = list[..2].to_vec();
    mixed.insert(1, json!({"type": "coop.nonsense", "payload": {}}));
    let mixed: Vec<Value> = mixed
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            if e["type"] == "coop.attest" {
                e["payload"] = attest(100 + i as u64);
            }
            e
        })
        .collect();
    let (code, out, err) = submit_file(&mixed);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("refused: 1 of 3 entries"), "{err}");
    let answers: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(answers[0]["receipt"].is_object(), "{out}");
    assert_eq!(answers[1]["error"]["code"], 1005, "{out}");
    // The refused entry took no sequence number: the one after it, one higher, is a replay gap
    // the rules allow (sequence numbers need only increase).
    assert!(answers[2]["receipt"].is_object(), "{out}");

    // Over JSON-RPC: a list that is not an envelope is refused in its place; bad lists are named.
    let http = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(&url)
        .unwrap();
    let got: Vec<Value> = http
        .request(
            "ledger_submitBatch",
            jsonrpsee::rpc_params![vec![json!({"body": 7}), json!("x")]],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["error"]["code"], 1001, "{got:?}");
    for list in [vec![], vec![json!({}); 1001]] {
        match http
            .request::<Value, _>("ledger_submitBatch", jsonrpsee::rpc_params![list])
            .await
        {
            Err(jsonrpsee::core::ClientError::Call(e)) => {
                assert_eq!(e.code(), -32602, "{e:?}");
                assert!(e.message().contains("entries"), "{e:?}");
            }
            other => panic!("expected INVALID_PARAMS naming entries, got {other:?}"),
        }
    }
    drop(http);
    node.terminate().unwrap();
}
