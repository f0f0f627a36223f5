//! The chain as a ledger: anvil (Foundry's local EVM node, automining each transaction), each
//! entry sent as the calldata of a transaction and acknowledged by its receipt — what "put it
//! on a blockchain" costs before any network or consensus delay.

use crate::drive::Client;
use crate::host;
use crate::http::Http;
use crate::workload::Workload;
use anyhow::{anyhow, bail, Context, Result};
use coopledger_ledger::anchor::evm::{address, LegacyTx};
use coopledger_ledger::hash::sha256;
use k256::ecdsa::SigningKey;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's chain id.
const CHAIN_ID: u64 = 31337;

/// The anvil binary: `ANVIL`, the one `scripts/setup.sh` installs under `tools/`, or the PATH's.
fn anvil_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ANVIL") {
        return PathBuf::from(p);
    }
    let scope = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/@foundry-rs");
    std::fs::read_dir(&scope)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin/anvil"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("anvil"))
}

/// A running anvil; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    pub url: String,
    pub version: String,
}

impl Anvil {
    pub async fn start() -> Result<Anvil> {
        let bin = anvil_bin();
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .with_context(|| format!("cannot run {}: run scripts/setup.sh", bin.display()))?;
        let port = host::free_port()?;
        let child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
            version,
        };
        let http = Http::new(&anvil.url)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.call("eth_chainId", "[]").await.is_err() {
            if Instant::now() > deadline {
                bail!("anvil did not answer in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(anvil)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client with an account of its own (funded with `anvil_setBalance`) and its transactions
/// signed in advance, nonce by nonce, in the order of its plan.
#[derive(Debug)]
pub struct AnvilClient {
    http: Http,
    /// Entry index → raw signed transaction (0x-hex).
    txs: HashMap<usize, String>,
}

impl AnvilClient {
    /// Client `n` of the run, for the entries it will send in this order.
    pub async fn prepare(
        anvil: &Anvil,
        n: usize,
        w: &Workload,
        order: &[usize],
    ) -> Result<AnvilClient> {
        let seed = sha256(format!("coop-bench anvil client {n}").as_bytes());
        let key = SigningKey::from_slice(&seed.0)?;
        let from = address(key.verifying_key());
        let http = Http::new(&anvil.url)?;
        http.call(
            "anvil_setBalance",
            &format!(r#"["0x{}","0xd3c21bcecceda1000000"]"#, hex::encode(from)),
        )
        .await?;
        let mut txs = HashMap::with_capacity(order.len());
        for (nonce, &i) in order.iter().enumerate() {
            let entry = w.entries.get(i).ok_or_else(|| anyhow!("no entry {i}"))?;
            let (raw, _) = LegacyTx {
                nonce: nonce as u64,
                gas_price: 20_000_000_000,
                gas: 200_000,
                to: from,
                value: 0,
                data: entry.json.as_bytes().to_vec(),
                chain_id: CHAIN_ID,
            }
            .sign(&key)?;
            txs.insert(i, format!("0x{}", hex::encode(raw)));
        }
        Ok(AnvilClient { http, txs })
    }
}

impl Client for AnvilClient {
    async fn send(&mut self, entries: &[usize]) -> Result<()> {
        for i in entries {
            let raw = self
                .txs
                .get(i)
                .ok_or_else(|| anyhow!("no transaction for {i}"))?;
            let hash = self
                .http
                .call("eth_sendRawTransaction", &format!(r#"["{raw}"]"#))
                .await?;
            let hash = hash.as_str().ok_or_else(|| anyhow!("no tx hash: {hash}"))?;
            loop {
                let receipt = self
                    .http
                    .call("eth_getTransactionReceipt", &format!(r#"["{hash}"]"#))
                    .await?;
                match receipt.get("status").and_then(Value::as_str) {
                    Some("0x1") => break,
                    Some(other) => bail!("transaction {hash} failed (status {other})"),
                    None => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        }
        Ok(())
    }
}
