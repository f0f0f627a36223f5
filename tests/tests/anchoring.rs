//! End-to-end anchoring against a real local EVM node (`anvil`, npm `@foundry-rs/anvil`,
//! installed by `scripts/setup.sh`): the node anchors its checkpoint, waits for two
//! confirmations and records an `anchor.receipt` entry; `coop anchor verify` checks it against
//! the chain and the log; a tampered receipt and a transaction the chain never saw fail; with
//! the chain stopped, ingest goes on and the failure shows in `anchor status`; when the chain
//! returns, anchoring resumes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::ok;
use coopledger_e2e::{coop, Node};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's first default account (a public test key; never holds value).
const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The native anvil binary (not npm's node wrapper, so that killing it stops the chain).
fn anvil_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ANVIL") {
        return PathBuf::from(p);
    }
    let scope = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/@foundry-rs");
    let native = std::fs::read_dir(&scope)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin/anvil"))
        .find(|p| p.exists());
    native.unwrap_or_else(|| {
        panic!(
            "anvil is not installed under {}: run scripts/setup.sh",
            scope.display()
        )
    })
}

struct Anvil(Child);

impl Anvil {
    fn start(port: u16) -> Anvil {
        Anvil::start_with(port, &["--block-time", "1"])
    }

    fn start_with(port: u16, extra: &[&str]) -> Anvil {
        let child = Command::new(anvil_bin())
            .args(["--port", &port.to_string(), "--silent"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "anvil did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Anvil(child)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn checkpoints_are_anchored_verified_and_anchoring_survives_the_chain_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain_port = free_port();
    let chain_url = format!("http://127.0.0.1:{chain_port}");
    let anvil = Anvil::start(chain_port);
    let key = d.join("anchor.key");
    std::fs::write(&key, ANVIL_KEY).unwrap();
    let data = d.join("coop");
    let node = Node::start(
        &data,
        &[
            "--anchor-rpc",
            &chain_url,
            "--anchor-chain-id",
            "31337",
            "--anchor-key",
            key.to_str().unwrap(),
            "--anchor-every-secs",
            "1",
            "--anchor-every-entries",
            "1",
            "--anchor-confirmations",
            "2",
        ],
    )
    .unwrap();
    let rpc = node.http_url();
    let board = data.join("demo-keys/board.key");
    let submit = || {
        ok(&[
            "--rpc",
            &rpc,
            "submit",
            "--key",
            board.to_str().unwrap(),
            "--type",
            "coop.attest",
            "--payload",
            r#"{"digest":"iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=","kind":"minutes"}"#,
        ])
    };
    let anchors = || -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&ok(&["--rpc", &rpc, "anchor", "list"])).unwrap()
    };
    submit();
    wait_for("the first anchor receipt", 30, || !anchors().is_empty());
    let first = anchors()[0].clone();
    assert!(first["confirmations"].as_u64().unwrap() >= 2, "{first}");
    let vkey = ok(&["--rpc", &rpc, "vkey"]).trim().to_owned();
    let index = first["index"].to_string();
    let out = ok(&[
        "--rpc",
        &rpc,
        "anchor",
        "verify",
        "--chain-rpc",
        &chain_url,
        "--vkey",
        &vkey,
        "--confirmations",
        "2",
        &index,
    ]);
    assert!(out.starts_with("VALID: checkpoint"), "{out}");

    // A tampered receipt, and a transaction the chain never saw, fail.
    let verify_file = |r: &Value| {
        let p = d.join("receipt.json");
        std::fs::write(&p, r.to_string()).unwrap();
        coop(&[
            "--rpc",
            &rpc,
            "anchor",
            "verify",
            "--chain-rpc",
            &chain_url,
            "--vkey",
            &vkey,
            p.to_str().unwrap(),
        ])
        .unwrap()
    };
    let mut bad = first.clone();
    bad["size"] = (first["size"].as_u64().unwrap() - 1).into();
    let (code, out, _) = verify_file(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not carry this log's checkpoint"),
        "{out}"
    );
    let mut never = first.clone();
    never["txHash"] = format!("0x{}", "ab".repeat(32)).into();
    let (code, out, _) = verify_file(&never);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has no transaction"), "{out}");

    // The chain goes away: entries are still acknowledged; the failure is visible.
    drop(anvil);
    let before = anchors().len();
    for _ in 0..3 {
        submit();
    }
    wait_for("the anchoring failure in the status", 30, || {
        let s: Value = serde_json::from_str(&ok(&["--rpc", &rpc, "anchor", "status"])).unwrap();
        s["failures"].as_u64().unwrap_or(0) >= 1 && s["lastError"].is_string()
    });
    assert_eq!(anchors().len(), before);

    // It returns (a fresh chain on the same port): anchoring resumes.
    let _anvil = Anvil::start(chain_port);
    wait_for("anchoring to resume", 90, || anchors().len() > before);
    let last = anchors().last().unwrap().clone();
    assert!(last["size"].as_u64() > first["size"].as_u64(), "{last}");
    let out = ok(&[
        "--rpc",
        &rpc,
        "anchor",
        "verify",
        "--chain-rpc",
        &chain_url,
        "--vkey",
        &vkey,
        &last["index"].to_string(),
    ]);
    assert!(out.starts_with("VALID"), "{out}");
    node.terminate().unwrap();
}

/// A dropped transaction (anvil_dropTransaction, with mining held back) is noticed, shown in the
/// status and sent again; once blocks come, the anchor is confirmed and recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_anchor_transaction_is_sent_again() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain_port = free_port();
    let chain_url = format!("http://127.0.0.1:{chain_port}");
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]);
    let chain = coopledger_rpc::client::http_client(&chain_url).unwrap();
    let key = d.join("anchor.key");
    std::fs::write(&key, ANVIL_KEY).unwrap();
    let data = d.join("coop");
    let node = Node::start(
        &data,
        &[
            "--anchor-rpc",
            &chain_url,
            "--anchor-chain-id",
            "31337",
            "--anchor-key",
            key.to_str().unwrap(),
            "--anchor-every-secs",
            "1",
            "--anchor-every-entries",
            "1",
            "--anchor-confirmations",
            "2",
        ],
    )
    .unwrap();
    let rpc = node.http_url();
    let board = data.join("demo-keys/board.key");
    ok(&[
        "--rpc",
        &rpc,
        "submit",
        "--key",
        board.to_str().unwrap(),
        "--type",
        "coop.attest",
        "--payload",
        r#"{"digest":"iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=","kind":"minutes"}"#,
    ]);
    let status =
        || -> Value { serde_json::from_str(&ok(&["--rpc", &rpc, "anchor", "status"])).unwrap() };
    let mut first_tx = String::new();
    wait_for("a pending anchor transaction", 30, || {
        let s = status();
        match s["pending"][0].as_str() {
            Some(tx) => {
                first_tx = tx.to_owned();
                true
            }
            None => false,
        }
    });
    let _: Value = chain
        .request("anvil_dropTransaction", rpc_params![first_tx.clone()])
        .await
        .unwrap();
    wait_for("the drop to be noticed", 30, || {
        status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("dropped or replaced"))
    });
    // It is sent again; mine blocks until it is confirmed and recorded.
    let anchors = || -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&ok(&["--rpc", &rpc, "anchor", "list"])).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while anchors().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the anchor was not sent again and recorded"
        );
        let _: Value = chain.request("anvil_mine", rpc_params![1]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let a = anchors()[0].clone();
    assert_ne!(
        a["txHash"].as_str(),
        Some(first_tx.as_str()),
        "a new transaction"
    );
    node.terminate().unwrap();
}

/// A reorganisation below the confirmation depth (anvil_reorg) takes the anchor's block away
/// before it has its confirmations: nothing is recorded for it; the anchor is sent again and
/// recorded once confirmed on the new chain.
#[tokio::test(flavor = "multi_thread")]
async fn an_anchor_reorganised_away_before_its_confirmations_is_sent_again() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain_port = free_port();
    let chain_url = format!("http://127.0.0.1:{chain_port}");
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]);
    let chain = coopledger_rpc::client::http_client(&chain_url).unwrap();
    let key = d.join("anchor.key");
    std::fs::write(&key, ANVIL_KEY).unwrap();
    let data = d.join("coop");
    let node = Node::start(
        &data,
        &[
            "--anchor-rpc",
            &chain_url,
            "--anchor-chain-id",
            "31337",
            "--anchor-key",
            key.to_str().unwrap(),
            "--anchor-every-secs",
            "1",
            "--anchor-every-entries",
            "1",
            "--anchor-confirmations",
            "3",
        ],
    )
    .unwrap();
    let rpc = node.http_url();
    let board = data.join("demo-keys/board.key");
    ok(&[
        "--rpc",
        &rpc,
        "submit",
        "--key",
        board.to_str().unwrap(),
        "--type",
        "coop.attest",
        "--payload",
        r#"{"digest":"iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=","kind":"minutes"}"#,
    ]);
    let status =
        || -> Value { serde_json::from_str(&ok(&["--rpc", &rpc, "anchor", "status"])).unwrap() };
    let mut first_tx = String::new();
    wait_for("a pending anchor transaction", 30, || {
        match status()["pending"][0].as_str() {
            Some(tx) => {
                first_tx = tx.to_owned();
                true
            }
            None => false,
        }
    });
    // One block: the anchor has 1 of its 3 confirmations. Then that block is reorganised away.
    let _: Value = chain.request("anvil_mine", rpc_params![1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tx: Value = chain
        .request("eth_getTransactionByHash", rpc_params![first_tx.clone()])
        .await
        .unwrap();
    assert!(
        tx["blockNumber"].is_string(),
        "mined before the reorg: {tx}"
    );
    let _: Value = chain
        .request("anvil_reorg", rpc_params![1, Vec::<Value>::new()])
        .await
        .unwrap();
    wait_for("the reorganisation to be noticed", 30, || {
        status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("dropped or replaced") || e.contains("reorganised away"))
    });
    let anchors = || -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&ok(&["--rpc", &rpc, "anchor", "list"])).unwrap()
    };
    assert!(
        anchors().is_empty(),
        "nothing recorded for the reorganised anchor"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while anchors().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the anchor was not sent again and recorded"
        );
        let _: Value = chain.request("anvil_mine", rpc_params![1]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let a = anchors()[0].clone();
    assert_ne!(a["txHash"].as_str(), Some(first_tx.as_str()), "{a}");
    let vkey = ok(&["--rpc", &rpc, "vkey"]).trim().to_owned();
    let out = ok(&[
        "--rpc",
        &rpc,
        "anchor",
        "verify",
        "--chain-rpc",
        &chain_url,
        "--vkey",
        &vkey,
        "--confirmations",
        "3",
        &a["index"].to_string(),
    ]);
    assert!(out.starts_with("VALID"), "{out}");
    node.terminate().unwrap();
}
