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
use coopledger_e2e::{coop, free_port, Anvil, Node, ANVIL_KEY};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
        Rig::start_with(chain_port, confirmations, &[])
    }

    fn start_with(chain_port: u16, confirmations: &str, extra: &[&str]) -> Rig {
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
            ]
            .iter()
            .chain(extra)
            .copied()
            .collect::<Vec<_>>(),
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

    /// `coop anchor verify` of the receipt at `index` (or a receipt file): exit code, and what
    /// it printed (standard output, then standard error).
    fn verify(&self, confirmations: &str, receipt: &str) -> (i32, String) {
        let (code, out, err) = coop(&[
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
        (code, format!("{out}{err}"))
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
    let chain_port = free_port().unwrap();
    let anvil = Anvil::start(chain_port).unwrap();
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
    // The metrics say the same: anchoring on, failing, entries waiting to be anchored.
    let text = coopledger_e2e::metrics(&rig.node.addr).unwrap();
    let m = |name| coopledger_e2e::metric(&text, name).unwrap_or_else(|| panic!("{name}: {text}"));
    assert_eq!(m("coop_anchor_enabled"), 1.0);
    assert!(m("coop_anchor_failures") >= 1.0);
    assert!(m("coop_anchor_lag_entries") >= 1.0);

    // It returns (a fresh chain on the same port): anchoring resumes.
    let _anvil = Anvil::start(chain_port).unwrap();
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
    let chain_port = free_port().unwrap();
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]).unwrap();
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
    let chain_port = free_port().unwrap();
    let _anvil = Anvil::start_with(chain_port, &["--no-mining"]).unwrap();
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

async fn chain_call(chain: &jsonrpsee::http_client::HttpClient, method: &str, arg: Value) -> Value {
    use jsonrpsee::core::client::ClientT;
    chain
        .request(method, jsonrpsee::rpc_params![arg])
        .await
        .unwrap()
}

fn quantity(v: &Value) -> u128 {
    u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// On a post-London chain (anvil's default hardfork, automine) anchors are EIP-1559
/// transactions: 20 in a row all confirm, none bids above the ceiling, and the price paid does
/// not climb (a loop bidding twice the suggested price doubled it with every anchor on such a
/// chain until the account ran dry).
#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_of_anchors_pays_the_market_price_within_the_ceiling() {
    let chain_port = free_port().unwrap();
    let _anvil = Anvil::start_with(chain_port, &[]).unwrap();
    let ceiling: u128 = 5_000_000_000;
    let rig = Rig::start_with(
        chain_port,
        "1",
        &["--anchor-max-fee-wei", &ceiling.to_string()],
    );
    const ANCHORS: usize = 20;
    for i in 1..=ANCHORS {
        rig.submit();
        wait_for("the next anchor", 30, || rig.anchors().len() >= i);
    }
    let chain = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(&rig.chain_url)
        .unwrap();
    let mut paid = Vec::new();
    for a in rig.anchors() {
        let tx = chain_call(&chain, "eth_getTransactionByHash", a["txHash"].clone()).await;
        assert_eq!(tx["type"], "0x2", "not an EIP-1559 transaction: {tx}");
        assert!(quantity(&tx["maxFeePerGas"]) <= ceiling, "{tx}");
        let receipt = chain_call(&chain, "eth_getTransactionReceipt", a["txHash"].clone()).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        paid.push(quantity(&receipt["effectiveGasPrice"]));
    }
    assert_eq!(paid.len(), ANCHORS);
    let (first, last) = (paid[0], paid[ANCHORS - 1]);
    assert!(
        last <= first,
        "the price paid per gas climbed from {first} to {last}: {paid:?}"
    );
    assert_eq!(rig.status()["failures"], 0, "{}", rig.status());
}

/// A chain whose base fee is above the ceiling gets no transaction; the status says why.
#[tokio::test(flavor = "multi_thread")]
async fn no_anchor_is_sent_above_the_fee_ceiling() {
    let chain_port = free_port().unwrap();
    // 50 gwei base fee; the node's ceiling is 10 gwei.
    let _anvil = Anvil::start_with(chain_port, &["--base-fee", "50000000000"]).unwrap();
    let rig = Rig::start_with(chain_port, "1", &["--anchor-max-fee-wei", "10000000000"]);
    rig.submit();
    wait_for("the refusal in the status", 30, || {
        rig.status()["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("above the ceiling"))
    });
    let chain = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(&rig.chain_url)
        .unwrap();
    let sender = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
    use jsonrpsee::core::client::ClientT;
    let sent: Value = chain
        .request(
            "eth_getTransactionCount",
            jsonrpsee::rpc_params![sender, "pending"],
        )
        .await
        .unwrap();
    assert_eq!(
        quantity(&sent),
        0,
        "a transaction was sent above the ceiling"
    );
    assert!(rig.anchors().is_empty());
    assert_eq!(rig.status()["maxFeePerGas"], "10000000000");
}
