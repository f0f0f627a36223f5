//! Anchoring the log's checkpoints on an EVM chain (DESIGN §8): the chain's ordinary JSON-RPC
//! ([`EvmChain`]), the node's anchoring loop (send a transaction whose calldata commits to a
//! checkpoint, wait for the required confirmations, check the block is still canonical, then
//! append an `anchor.receipt` entry to the log), its status, and the `anchor_*` methods. Faults
//! — chain unreachable, transaction dropped or replaced, reorg below the confirmation depth —
//! are retried with backoff and shown in the status; they never block ingest.

use crate::api::{AnchorApiServer, RpcResult};
use crate::error;
use coopledger_governance::rules::anchors::{anchors, AnchorReceipt};
use coopledger_governance::CoopRules;
use coopledger_ledger::anchor::{calldata, evm, AnchorChain, TxPlace};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::{Body, Log};
use ed25519_dalek::SigningKey as NodeKey;
use jsonrpsee::core::async_trait;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClient;
use jsonrpsee::rpc_params;
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where and how to anchor.
#[derive(Clone)]
pub struct AnchorConfig {
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// Expected EIP-155 chain id (checked against `eth_chainId`).
    pub chain_id: u64,
    /// The key paying for anchors.
    pub key: SigningKey,
    /// Anchor at most this often…
    pub every: Duration,
    /// …or once this many entries are unanchored, whichever comes first.
    pub every_entries: u64,
    /// Blocks on top of (and including) the anchor's before it counts.
    pub confirmations: u64,
}

impl std::fmt::Debug for AnchorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorConfig")
            .field("rpc_url", &self.rpc_url)
            .field("chain_id", &self.chain_id)
            .field("confirmations", &self.confirmations)
            .finish_non_exhaustive()
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn parse_u64(v: &Value) -> Result<u64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("not a hex quantity: {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s}: {e}"))
}

fn parse_u128(v: &Value) -> Result<u128, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("not a hex quantity: {v}"))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s}: {e}"))
}

/// A transaction as the chain reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    /// Calldata.
    pub input: Vec<u8>,
    /// Block number, once mined.
    pub block_number: Option<u64>,
    /// Block hash (0x-hex), once mined.
    pub block_hash: Option<String>,
}

/// An EVM chain reached through its ordinary JSON-RPC.
#[derive(Debug, Clone)]
pub struct EvmChain {
    client: HttpClient,
}

impl EvmChain {
    /// A client for the chain at `url`.
    pub fn new(url: &str) -> Result<EvmChain, String> {
        let client = jsonrpsee::http_client::HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(10))
            .build(url)
            .map_err(|e| e.to_string())?;
        Ok(EvmChain { client })
    }

    async fn call(
        &self,
        method: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<Value, String> {
        self.client
            .request::<Value, _>(method, params)
            .await
            .map_err(|e| format!("{method}: {e}"))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, String> {
        parse_u64(&self.call("eth_chainId", rpc_params![]).await?)
    }

    /// `eth_blockNumber`.
    pub async fn head(&self) -> Result<u64, String> {
        parse_u64(&self.call("eth_blockNumber", rpc_params![]).await?)
    }

    /// The hash of block `n` on the canonical chain.
    pub async fn block_hash(&self, n: u64) -> Result<Option<String>, String> {
        let b = self
            .call(
                "eth_getBlockByNumber",
                rpc_params![format!("0x{n:x}"), false],
            )
            .await?;
        Ok(b.get("hash").and_then(Value::as_str).map(str::to_owned))
    }

    /// `eth_getTransactionByHash`.
    pub async fn transaction(&self, hash: &str) -> Result<Option<ChainTx>, String> {
        let t = self
            .call("eth_getTransactionByHash", rpc_params![hash])
            .await?;
        if t.is_null() {
            return Ok(None);
        }
        let input = t
            .get("input")
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| "transaction without input".to_owned())?;
        Ok(Some(ChainTx {
            input,
            block_number: t
                .get("blockNumber")
                .filter(|v| !v.is_null())
                .map(parse_u64)
                .transpose()?,
            block_hash: t
                .get("blockHash")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }))
    }

    /// Signs and sends a zero-value transaction to the sender's own address carrying `data`;
    /// returns its hash.
    pub async fn send(
        &self,
        key: &SigningKey,
        chain_id: u64,
        data: Vec<u8>,
    ) -> Result<String, String> {
        let from = evm::address(key.verifying_key());
        let nonce = parse_u64(
            &self
                .call(
                    "eth_getTransactionCount",
                    rpc_params![hex0x(&from), "pending"],
                )
                .await?,
        )?;
        let gas_price = parse_u128(&self.call("eth_gasPrice", rpc_params![]).await?)?;
        let tx = evm::LegacyTx {
            nonce,
            gas_price: gas_price.saturating_mul(2),
            gas: 100_000,
            to: from,
            value: 0,
            data,
            chain_id,
        };
        let (raw, hash) = tx.sign(key)?;
        let sent = self
            .call("eth_sendRawTransaction", rpc_params![hex0x(&raw)])
            .await?;
        let want = hex0x(&hash);
        if sent.as_str() != Some(want.as_str()) {
            return Err(format!("the chain reports tx {sent}, expected {want}"));
        }
        Ok(want)
    }
}

/// An [`EvmChain`] with the key that pays for anchors: the EVM [`AnchorChain`].
#[derive(Clone)]
pub struct EvmAnchorer {
    chain: EvmChain,
    key: SigningKey,
}

impl std::fmt::Debug for EvmAnchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmAnchorer").finish_non_exhaustive()
    }
}

impl EvmAnchorer {
    /// Anchors on `chain`, paying with `key`.
    pub fn new(chain: EvmChain, key: SigningKey) -> EvmAnchorer {
        EvmAnchorer { chain, key }
    }
}

impl AnchorChain for EvmAnchorer {
    async fn chain_id(&self) -> Result<u64, String> {
        self.chain.chain_id().await
    }
    async fn send_anchor(
        &self,
        origin: &str,
        size: u64,
        root: &coopledger_ledger::Hash,
    ) -> Result<String, String> {
        let id = self.chain.chain_id().await?;
        self.chain
            .send(&self.key, id, calldata(origin, size, root))
            .await
    }
    async fn locate(&self, tx: &str) -> Result<TxPlace, String> {
        Ok(match self.chain.transaction(tx).await? {
            None => TxPlace::Unknown,
            Some(ChainTx {
                block_number: Some(height),
                block_hash: Some(block),
                ..
            }) => TxPlace::Mined { height, block },
            Some(_) => TxPlace::Pending,
        })
    }
    async fn head(&self) -> Result<u64, String> {
        self.chain.head().await
    }
    async fn block_at(&self, height: u64) -> Result<Option<String>, String> {
        self.chain.block_hash(height).await
    }
}

/// What the anchoring loop is doing, for `anchor_status` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorStatus {
    /// True when the node anchors at all.
    pub enabled: bool,
    /// Chain id.
    pub chain_id: u64,
    /// Largest size with a recorded `anchor.receipt`.
    pub anchored_size: u64,
    /// A sent transaction waiting for confirmations: (tx hash, anchored size).
    pub pending: Option<(String, u64)>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    pub failures: u64,
}

/// The shared status.
pub type SharedStatus = Arc<Mutex<AnchorStatus>>;

fn set(status: &SharedStatus, f: impl FnOnce(&mut AnchorStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

/// Sends the anchor of the current checkpoint and waits for its confirmations; `Ok` with the
/// confirmed receipt (not yet in the log).
async fn anchor_once<C: AnchorChain>(
    chain: &C,
    cfg: &AnchorConfig,
    log: &Log<CoopRules>,
    status: &SharedStatus,
) -> Result<AnchorReceipt, String> {
    let id = chain.chain_id().await?;
    if id != cfg.chain_id {
        return Err(format!(
            "the chain's id is {id}, configured {}",
            cfg.chain_id
        ));
    }
    let cp = log.checkpoint();
    let (size, root) = (cp.checkpoint.size, cp.checkpoint.root);
    let tx = chain.send_anchor(log.origin(), size, &root).await?;
    set(status, |s| s.pending = Some((tx.clone(), size)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "transaction {tx} not confirmed in time; it will be sent again"
            ));
        }
        let (n, h) = match chain.locate(&tx).await? {
            TxPlace::Unknown => return Err(format!("transaction {tx} was dropped or replaced")),
            TxPlace::Pending => continue,
            TxPlace::Mined { height, block } => (height, block),
        };
        let head = chain.head().await?;
        let confirmations = head.saturating_sub(n) + 1;
        if confirmations < cfg.confirmations {
            continue;
        }
        // Still the canonical block at that height (a reorg below the depth would change it).
        if chain.block_at(n).await?.as_deref() != Some(h.as_str()) {
            return Err(format!(
                "block {n} of transaction {tx} was reorganised away"
            ));
        }
        return Ok(AnchorReceipt {
            chain_id: id,
            block_number: n,
            block_hash: h,
            tx_hash: tx,
            size,
            root: root.to_base64(),
            confirmations,
            index: 0,
        });
    }
}

/// Appends the receipt to the log, signed by the node key.
async fn record(
    log: &Log<CoopRules>,
    node_key: &NodeKey,
    r: &AnchorReceipt,
) -> Result<u64, String> {
    let signer = node_key.verifying_key().to_bytes();
    let seq = log.next_seq(&signer).map_err(|e| e.to_string())?;
    let mut payload = serde_json::Map::new();
    payload.insert("chainId".into(), r.chain_id.into());
    payload.insert("blockNumber".into(), r.block_number.into());
    payload.insert("blockHash".into(), r.block_hash.clone().into());
    payload.insert("txHash".into(), r.tx_hash.clone().into());
    payload.insert("size".into(), r.size.into());
    payload.insert("root".into(), r.root.clone().into());
    payload.insert("confirmations".into(), r.confirmations.into());
    let env = Body {
        coop: log.origin().to_owned(),
        kind: "anchor.receipt".into(),
        version: 1,
        signer,
        seq,
        ts: now_ms(),
        payload,
    }
    .sign(node_key)
    .map_err(|e| e.to_string())?;
    let receipt = log.submit(env).await.map_err(|e| e.to_string())?;
    Ok(receipt.index)
}

/// Runs forever: anchors the newest checkpoint when `every` has passed or `every_entries`
/// entries are unanchored, then records the receipt; failures back off (1 s doubling to 60 s).
pub async fn run(
    log: Arc<Log<CoopRules>>,
    node_key: NodeKey,
    cfg: AnchorConfig,
    status: SharedStatus,
) {
    let chain = match EvmChain::new(&cfg.rpc_url) {
        Ok(c) => EvmAnchorer::new(c, cfg.key.clone()),
        Err(e) => {
            set(&status, |s| s.last_error = Some(e));
            return;
        }
    };
    let mut anchored = anchors(log.as_ref())
        .ok()
        .and_then(|a| a.iter().map(|r| r.size).max())
        .unwrap_or(0);
    set(&status, |s| {
        s.enabled = true;
        s.chain_id = cfg.chain_id;
        s.anchored_size = anchored;
    });
    let mut last = tokio::time::Instant::now();
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let size = log.checkpoint().checkpoint.size;
        // Receipt entries and their batches' log.state entries do not call for a new anchor.
        let due = size > anchored + 2
            && (last.elapsed() >= cfg.every || size - anchored >= cfg.every_entries);
        if !due {
            continue;
        }
        // A confirmed anchor that cannot be recorded counts as a failure too: backing off keeps
        // the loop from paying for a new transaction every tick while the log refuses.
        let outcome = match anchor_once(&chain, &cfg, &log, &status).await {
            Ok(r) => record(&log, &node_key, &r)
                .await
                .map(|index| (r, index))
                .map_err(|e| format!("recording the anchor: {e}")),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((r, index)) => {
                tracing::info!(size = r.size, tx = %r.tx_hash, index, "checkpoint anchored");
                anchored = r.size;
                last = tokio::time::Instant::now();
                backoff = Duration::from_secs(1);
                set(&status, |s| {
                    s.anchored_size = r.size;
                    s.pending = None;
                    s.last_error = None;
                    s.failures = 0;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "anchoring failed; retrying");
                set(&status, |s| {
                    s.pending = None;
                    s.last_error = Some(e);
                    s.failures += 1;
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

pub(crate) struct AnchorRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
    pub(crate) status: SharedStatus,
}

#[async_trait]
impl AnchorApiServer for AnchorRpc {
    async fn status(&self) -> RpcResult<AnchorStatus> {
        self.status
            .lock()
            .map(|s| s.clone())
            .map_err(|_| error::corrupt("anchor status lock".into()))
    }

    async fn list(&self) -> RpcResult<Vec<AnchorReceipt>> {
        anchors(self.log.as_ref()).map_err(|e| error::storage(&e))
    }
}

/// `root` as the receipt spells it (base64), for callers comparing.
pub fn root_b64(root: &coopledger_ledger::Hash) -> String {
    b64_encode(root.0)
}
