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

/// One anchoring node on a fresh demo co-op, anchoring on the chain at `chain_port`.
struct Rig {
    dir: tempfile::TempDir,
    chain_url: String,
    node: Node,
    rpc: String,
    board: PathBuf,
}

impl Rig {
    fn start(chain_port: u16, confirmations: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let chain_url = format!("http://127.0.0.1:{chain_port}");
        let key = dir.path().join("anchor.key");
        std::fs::write(&key, ANVIL_KEY).unwrap();
        let data = dir.path().join("coop");
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
                confirmations,
            ],
        )
        .unwrap();
        let rpc = node.http_url();
        Rig {
            chain_url,
            rpc,
            board: data.join("demo-keys/board.key"),
            node,
            dir,
        }
    }

    fn submit(&self) {
        ok(&[
            "--rpc",
            &self.rpc,
            "submit",
            "--key",
            self.board.to_str().unwrap(),
            "--type",
            "coop.attest",
            "--payload",
            r#"{"digest":"iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=","kind":"minutes"}"#,
        ]);
    }

    fn anchors(&self) -> Vec<Value> {
        serde_json::from_str(&ok(&["--rpc", &self.rpc, "anchor", "list"])).unwrap()
    }

    fn status(&self) -> Value {
        serde_json::from_str(&ok(&["--rpc", &self.rpc, "anchor", "status"])).unwrap()
    }

    fn vkey(&self) -> String {
        ok(&["--rpc", &self.rpc, "vkey"]).trim().to_owned()
    }

    /// `coop anchor verify` of the receipt at `index` (or a receipt file).
    fn verify(&self, confirmations: &str, receipt: &str) -> (i32, String) {
        let (code, out, _) = coop(&[
            "--rpc",
            &self.rpc,
            "anchor",
            "verify",
            "--chain-rpc",
            &self.chain_url,
            "--vkey",
            &self.vkey(),
            "--confirmations",
            confirmations,
            receipt,
        ])
        .unwrap();
        (code, out)
    }

    /// Waits for the loop's pending transaction.
    fn pending_tx(&self) -> String {
        let mut tx = String::new();
        wait_for("a pending anchor transaction", 30, || {
            match self.status()["pending"][0].as_str() {
                Some(t) => {
                    tx = t.to_owned();
                    true
                }
                None => false,
            }
        });
        tx
    }

    /// Mines one block at a time until an anchor is recorded; returns it.
    async fn mine_until_anchored(&self, chain: &jsonrpsee::http_client::HttpClient) -> Value {
        use jsonrpsee::core::client::ClientT;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.anchors().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the anchor was not sent again and recorded"
            );
            let _: Value = chain
                .request("anvil_mine", jsonrpsee::rpc_params![1])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.anchors()[0].clone()
    }
}

#[test]
fn checkpoints_are_anchored_verified_and_anchoring_survives_the_chain_going_away() {
    let chain_port = free_port();
    let anvil = Anvil::start(chain_port);
    let rig = Rig::start(chain_port, "2");
    rig.submit();
    wait_for("the first anchor receipt", 30, || !rig.anchors().is_empty());
    let first = rig.anchors()[0].clone();
    assert!(first["confirmations"].as_u64().unwrap() >= 2, "{first}");
    let (code, out) = rig.verify("2", &first["index"].to_string());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID: checkpoint"), "{out}");

    // A tampered receipt, and a transaction the chain never saw, fail.
    let file = |r: &Value| {
        let p = rig.dir.path().join("receipt.json");
        std::fs::write(&p, r.to_string()).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let mut bad = first.clone();
    bad["size"] = (first["size"].as_u64().unwrap() - 1).into();
    let (code, out) = rig.verify("1", &file(&bad));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not carry this log's checkpoint"),
        "{out}"
    );
    let mut never = first.clone();
    never["txHash"] = format!("0x{}", "ab".repeat(32)).into();
    let (code, out) = rig.verify("1", &file(&never));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has no transaction"), "{out}");

    // The chain goes away: entries are still acknowledged; the failure is visible.
    drop(anvil);
    let before = rig.anchors().len();
    for _ in 0..3 {
        rig.submit();
    }
    wait_for("the anchoring failure in the status", 30, || {
        let s = rig.status();
        s["failures"].as_u64().unwrap_or(0) >= 1 && s["lastError"].is_string()
    });
    assert_eq!(rig.anchors().len(), before);

    // It returns (a fresh chain on the same port): anchoring resumes.
    let _anvil = Anvil::start(chain_port);
    wait_for("anchoring to resume", 90, || rig.anchors().len() > before);
    let last = rig.anchors().last().unwrap().clone();
    assert!(last["size"].as_u64() > first["size"].as_u64(), "{last}");
    let (code, out) = rig.verify("1", &last["index"].to_string());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID"), "{out}");
    rig.node.terminate().unwrap();
}

/// A dropped transaction (anvil_dropTransaction, with mining held back) is noticed, shown in the
/// status and sent again; once blocks come, the anchor is confirmed and recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_anchor_transaction_is_sent_again() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    let chain_port = free_port();
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]);
    let rig = Rig::start(chain_port, "2");
    let chain = coopledger_rpc::client::http_client(&rig.chain_url).unwrap();
    rig.submit();
    let first_tx = rig.pending_tx();
    let _: Value = chain
        .request("anvil_dropTransaction", rpc_params![first_tx.clone()])
        .await
        .unwrap();
    wait_for("the drop to be noticed", 30, || {
        rig.status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("dropped or replaced"))
    });
    // It is sent again; mine blocks until it is confirmed and recorded.
    let a = rig.mine_until_anchored(&chain).await;
    assert_ne!(
        a["txHash"].as_str(),
        Some(first_tx.as_str()),
        "a new transaction"
    );
    rig.node.terminate().unwrap();
}

/// A reorganisation below the confirmation depth (anvil_reorg) takes the anchor's block away
/// before it has its confirmations: nothing is recorded for it; the anchor is sent again and
/// recorded once confirmed on the new chain.
#[tokio::test(flavor = "multi_thread")]
async fn an_anchor_reorganised_away_before_its_confirmations_is_sent_again() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::rpc_params;
    let chain_port = free_port();
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]);
    let rig = Rig::start(chain_port, "3");
    let chain = coopledger_rpc::client::http_client(&rig.chain_url).unwrap();
    rig.submit();
    let first_tx = rig.pending_tx();
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
        rig.status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("dropped or replaced") || e.contains("reorganised away"))
    });
    assert!(
        rig.anchors().is_empty(),
        "nothing recorded for the reorganised anchor"
    );
    let a = rig.mine_until_anchored(&chain).await;
    assert_ne!(a["txHash"].as_str(), Some(first_tx.as_str()), "{a}");
    let (code, out) = rig.verify("3", &a["index"].to_string());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID"), "{out}");
    rig.node.terminate().unwrap();
}
