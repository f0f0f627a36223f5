//! Anchoring the log's checkpoints on an EVM chain (DESIGN §8): the chain's ordinary JSON-RPC
//! ([`EvmChain`]), the node's anchoring loop (send a transaction whose calldata commits to a
//! checkpoint, wait for the required confirmations, check the block is still canonical, then
//! append an `anchor.receipt` entry to the log), its status, and the `anchor_*` methods. Faults
//! — chain unreachable, transaction dropped or replaced, reorg below the confirmation depth —
//! are retried with backoff and shown in the status; they never block ingest.

use crate::http::HttpClient;
use coopledger_governance::rules::anchors::{anchors, AnchorReceipt};
use coopledger_governance::CoopRules;
use coopledger_ledger::anchor::{calldata, evm, AnchorChain, ChainError, TxPlace};
use coopledger_ledger::{Log, OwnEntry, SubmitError};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    /// Fees: the tip offered and the most ever paid per gas.
    pub fees: FeePolicy,
}

/// How much an anchor may cost, per gas, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// The tip to the block producer (EIP-1559 `maxPriorityFeePerGas`).
    pub tip: u128,
    /// The ceiling: no transaction is sent that could pay more per gas than this (EIP-1559
    /// `maxFeePerGas`, or a legacy chain's gas price).
    pub max_fee: u128,
}

impl Default for FeePolicy {
    /// A 1 gwei tip under a 100 gwei ceiling.
    fn default() -> FeePolicy {
        FeePolicy {
            tip: 1_000_000_000,
            max_fee: 100_000_000_000,
        }
    }
}

/// The fee of one transaction, decided from the chain's latest block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fee {
    /// EIP-1559: room for the base fee to double, plus the tip, capped by the ceiling.
    Market {
        /// `maxPriorityFeePerGas`.
        tip: u128,
        /// `maxFeePerGas`.
        max_fee: u128,
    },
    /// A chain without a base fee (before London): its suggested gas price.
    Legacy {
        /// Gas price.
        gas_price: u128,
    },
}

impl FeePolicy {
    /// The fee for a chain whose latest base fee is `base_fee` (`None` before London) and
    /// whose suggested legacy gas price is `gas_price`; refused when even the least that can
    /// be included now is above the ceiling.
    pub fn fee(&self, base_fee: Option<u128>, gas_price: u128) -> Result<Fee, ChainError> {
        match base_fee {
            Some(base) => {
                let least = base.saturating_add(self.tip);
                if least > self.max_fee {
                    return Err(ChainError::TooExpensive {
                        asked: least,
                        ceiling: self.max_fee,
                    });
                }
                let max_fee = base
                    .saturating_mul(2)
                    .saturating_add(self.tip)
                    .min(self.max_fee);
                Ok(Fee::Market {
                    tip: self.tip,
                    max_fee,
                })
            }
            None if gas_price > self.max_fee => Err(ChainError::TooExpensive {
                asked: gas_price,
                ceiling: self.max_fee,
            }),
            None => Ok(Fee::Legacy { gas_price }),
        }
    }
}

impl std::fmt::Debug for AnchorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorConfig")
            .field("rpc_url", &self.rpc_url)
            .field("chain_id", &self.chain_id)
            .field("confirmations", &self.confirmations)
            .field("fees", &self.fees)
            .finish_non_exhaustive()
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn malformed(call: &str, detail: String) -> ChainError {
    ChainError::Malformed {
        call: call.to_owned(),
        detail,
    }
}

/// A hex quantity (`0x…`) of the answer to `call`.
fn quantity(call: &str, v: &Value) -> Result<u128, ChainError> {
    let s = v
        .as_str()
        .ok_or_else(|| malformed(call, format!("not a hex quantity: {v}")))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| malformed(call, format!("{s}: {e}")))
}

fn quantity_u64(call: &str, v: &Value) -> Result<u64, ChainError> {
    let n = quantity(call, v)?;
    u64::try_from(n).map_err(|_| malformed(call, format!("{n} does not fit 64 bits")))
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

/// An EVM chain reached through its ordinary JSON-RPC (a plain JSON POST per call: this is
/// the chain's protocol, not the node's API).
#[derive(Debug, Clone)]
pub struct EvmChain {
    http: HttpClient,
    url: String,
}

impl EvmChain {
    /// A client for the chain at `url` (`http://…`).
    pub fn new(url: &str) -> Result<EvmChain, ChainError> {
        let refuse = |reason: &str| ChainError::Address {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.starts_with("https://") {
            return Err(refuse(
                "https chains are not supported yet; reach the chain through a local http \
                 endpoint",
            ));
        }
        if !url.starts_with("http://") {
            return Err(refuse("must start with http://"));
        }
        Ok(EvmChain {
            http: HttpClient::new(Duration::from_secs(10)),
            url: url.to_owned(),
        })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, body) = self
            .http
            .post(&self.url, "application/json", req.to_string().into_bytes())
            .await
            .map_err(|e| ChainError::Unreachable {
                call: method.to_owned(),
                source: Box::new(e),
            })?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| malformed(method, format!("HTTP {status}, not JSON: {e}")))?;
        if let Some(err) = answer.get("error") {
            return Err(ChainError::Refused {
                call: method.to_owned(),
                message: err.to_string(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| malformed(method, format!("HTTP {status}, no result")))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        quantity_u64("eth_chainId", &self.call("eth_chainId", json!([])).await?)
    }

    /// `eth_blockNumber`.
    pub async fn head(&self) -> Result<u64, ChainError> {
        quantity_u64(
            "eth_blockNumber",
            &self.call("eth_blockNumber", json!([])).await?,
        )
    }

    /// The hash of block `n` on the canonical chain.
    pub async fn block_hash(&self, n: u64) -> Result<Option<String>, ChainError> {
        let b = self
            .call("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
            .await?;
        Ok(b.get("hash").and_then(Value::as_str).map(str::to_owned))
    }

    /// `eth_getTransactionByHash`.
    pub async fn transaction(&self, hash: &str) -> Result<Option<ChainTx>, ChainError> {
        const CALL: &str = "eth_getTransactionByHash";
        let t = self.call("eth_getTransactionByHash", json!([hash])).await?;
        if t.is_null() {
            return Ok(None);
        }
        let input = t
            .get("input")
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| malformed(CALL, "transaction without input".into()))?;
        Ok(Some(ChainTx {
            input,
            block_number: t
                .get("blockNumber")
                .filter(|v| !v.is_null())
                .map(|v| quantity_u64(CALL, v))
                .transpose()?,
            block_hash: t
                .get("blockHash")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }))
    }

    /// Signs and sends a zero-value transaction to the sender's own address carrying `data`,
    /// with fees by `fees` (EIP-1559 where the chain has a base fee); returns its hash.
    pub async fn send(
        &self,
        key: &SigningKey,
        chain_id: u64,
        fees: &FeePolicy,
        data: Vec<u8>,
    ) -> Result<String, ChainError> {
        let from = evm::address(key.verifying_key());
        let nonce = quantity_u64(
            "eth_getTransactionCount",
            &self
                .call("eth_getTransactionCount", json!([hex0x(&from), "pending"]))
                .await?,
        )?;
        let latest = self
            .call("eth_getBlockByNumber", json!(["latest", false]))
            .await?;
        let base_fee = latest
            .get("baseFeePerGas")
            .filter(|v| !v.is_null())
            .map(|v| quantity("eth_getBlockByNumber", v))
            .transpose()?;
        let gas_price = match base_fee {
            Some(_) => 0,
            None => quantity("eth_gasPrice", &self.call("eth_gasPrice", json!([])).await?)?,
        };
        let (raw, hash) = match fees.fee(base_fee, gas_price)? {
            Fee::Market { tip, max_fee } => evm::Eip1559Tx {
                chain_id,
                nonce,
                max_priority_fee_per_gas: tip,
                max_fee_per_gas: max_fee,
                gas: 100_000,
                to: from,
                value: 0,
                data,
            }
            .sign(key)?,
            Fee::Legacy { gas_price } => evm::LegacyTx {
                nonce,
                gas_price,
                gas: 100_000,
                to: from,
                value: 0,
                data,
                chain_id,
            }
            .sign(key)?,
        };
        let sent = self
            .call("eth_sendRawTransaction", json!([hex0x(&raw)]))
            .await?;
        let want = hex0x(&hash);
        if sent.as_str() != Some(want.as_str()) {
            return Err(malformed(
                "eth_sendRawTransaction",
                format!("the chain reports tx {sent}, expected {want}"),
            ));
        }
        Ok(want)
    }
}

/// An [`EvmChain`] with the key that pays for anchors: the EVM [`AnchorChain`].
#[derive(Clone)]
pub struct EvmAnchorer {
    chain: EvmChain,
    key: SigningKey,
    fees: FeePolicy,
}

impl std::fmt::Debug for EvmAnchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmAnchorer").finish_non_exhaustive()
    }
}

impl EvmAnchorer {
    /// Anchors on `chain`, paying with `key` within `fees`.
    pub fn new(chain: EvmChain, key: SigningKey, fees: FeePolicy) -> EvmAnchorer {
        EvmAnchorer { chain, key, fees }
    }
}

impl AnchorChain for EvmAnchorer {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.chain.chain_id().await
    }
    async fn send_anchor(
        &self,
        origin: &str,
        size: u64,
        root: &coopledger_ledger::Hash,
    ) -> Result<String, ChainError> {
        let id = self.chain.chain_id().await?;
        self.chain
            .send(&self.key, id, &self.fees, calldata(origin, size, root))
            .await
    }
    async fn locate(&self, tx: &str) -> Result<TxPlace, ChainError> {
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
    async fn head(&self) -> Result<u64, ChainError> {
        self.chain.head().await
    }
    async fn block_at(&self, height: u64) -> Result<Option<String>, ChainError> {
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
    /// The fee ceiling, wei per gas (decimal).
    pub max_fee_per_gas: String,
}

/// The shared status.
pub type SharedStatus = Arc<Mutex<AnchorStatus>>;

fn set(status: &SharedStatus, f: impl FnOnce(&mut AnchorStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

/// Why an anchoring attempt failed (shown in `anchor_status`, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum AnchorFailure {
    /// The chain could not be used.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The chain is not the one configured.
    #[error("the chain's id is {got}, configured {configured}")]
    WrongChain {
        /// What the chain says.
        got: u64,
        /// What the node was told.
        configured: u64,
    },
    /// The transaction did not get its confirmations in time (it will be sent again).
    #[error("transaction {tx} not confirmed in time; it will be sent again")]
    NotConfirmed {
        /// Its hash.
        tx: String,
    },
    /// The chain no longer knows the transaction.
    #[error("transaction {tx} was dropped or replaced")]
    Dropped {
        /// Its hash.
        tx: String,
    },
    /// The transaction's block left the canonical chain before its confirmations.
    #[error("block {block} of transaction {tx} was reorganised away")]
    Reorganised {
        /// The block's height.
        block: u64,
        /// The transaction's hash.
        tx: String,
    },
    /// The confirmed anchor's receipt entry was not taken (it is recorded again, never sent
    /// again).
    #[error("recording the anchor: {0}")]
    Record(#[from] SubmitError),
}

/// Sends the anchor of the current checkpoint and waits for its confirmations; `Ok` with the
/// confirmed receipt (not yet in the log).
async fn anchor_once<C: AnchorChain>(
    chain: &C,
    cfg: &AnchorConfig,
    log: &Log<CoopRules>,
    status: &SharedStatus,
) -> Result<AnchorReceipt, AnchorFailure> {
    let id = chain.chain_id().await?;
    if id != cfg.chain_id {
        return Err(AnchorFailure::WrongChain {
            got: id,
            configured: cfg.chain_id,
        });
    }
    let cp = log.checkpoint();
    let (size, root) = (cp.checkpoint.size, cp.checkpoint.root);
    let tx = chain.send_anchor(log.origin(), size, &root).await?;
    set(status, |s| s.pending = Some((tx.clone(), size)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if tokio::time::Instant::now() > deadline {
            return Err(AnchorFailure::NotConfirmed { tx });
        }
        let (n, h) = match chain.locate(&tx).await? {
            TxPlace::Unknown => return Err(AnchorFailure::Dropped { tx }),
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
            return Err(AnchorFailure::Reorganised { block: n, tx });
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

/// Appends the receipt to the log as a node entry (signed and numbered by the sequencer).
async fn record(log: &Log<CoopRules>, r: &AnchorReceipt) -> Result<u64, SubmitError> {
    let mut payload = serde_json::Map::new();
    payload.insert("chainId".into(), r.chain_id.into());
    payload.insert("blockNumber".into(), r.block_number.into());
    payload.insert("blockHash".into(), r.block_hash.clone().into());
    payload.insert("txHash".into(), r.tx_hash.clone().into());
    payload.insert("size".into(), r.size.into());
    payload.insert("root".into(), r.root.clone().into());
    payload.insert("confirmations".into(), r.confirmations.into());
    let own = OwnEntry {
        kind: "anchor.receipt".into(),
        version: 1,
        payload,
    };
    let receipt = log.submit_own(own).await?;
    Ok(receipt.index)
}

/// Runs forever: anchors the newest checkpoint when `every` has passed or `every_entries`
/// entries are unanchored, then records the receipt; failures back off (1 s doubling to 60 s).
/// A confirmed anchor whose receipt could not be recorded is recorded again, never paid for
/// again: each checkpoint is anchored by at most one confirmed transaction.
pub async fn run(log: Arc<Log<CoopRules>>, cfg: AnchorConfig, status: SharedStatus) {
    let chain = match EvmChain::new(&cfg.rpc_url) {
        Ok(c) => EvmAnchorer::new(c, cfg.key.clone(), cfg.fees),
        Err(e) => {
            set(&status, |s| s.last_error = Some(e.to_string()));
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
        s.max_fee_per_gas = cfg.fees.max_fee.to_string();
    });
    let mut last = tokio::time::Instant::now();
    let mut backoff = Duration::from_secs(1);
    // A confirmed anchor not yet recorded in the log.
    let mut confirmed: Option<AnchorReceipt> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if log.failure().is_some() {
            return;
        }
        if confirmed.is_none() {
            let size = log.checkpoint().checkpoint.size;
            // Receipt entries and their batches' log.state entries do not call for a new anchor.
            let due = size > anchored + 2
                && (last.elapsed() >= cfg.every || size - anchored >= cfg.every_entries);
            if !due {
                continue;
            }
            match anchor_once(&chain, &cfg, &log, &status).await {
                Ok(r) => confirmed = Some(r),
                Err(e) => {
                    fail(&status, &e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            }
        }
        let Some(r) = confirmed.take() else {
            continue;
        };
        match record(&log, &r).await {
            Ok(index) => {
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
                fail(&status, &AnchorFailure::Record(e));
                confirmed = Some(r);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn fail(status: &SharedStatus, e: &AnchorFailure) {
    tracing::warn!(error = %e, "anchoring failed; retrying");
    set(status, |s| {
        s.pending = None;
        s.last_error = Some(e.to_string());
        s.failures += 1;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_leave_room_for_the_base_fee_and_never_pass_the_ceiling() {
        let p = FeePolicy {
            tip: 2,
            max_fee: 100,
        };
        assert!(matches!(
            p.fee(Some(10), 0),
            Ok(Fee::Market {
                tip: 2,
                max_fee: 22
            })
        ));
        // Capped: 2 × 60 + 2 > 100, but 60 + 2 can still be included.
        for base in [60, 98] {
            assert!(matches!(
                p.fee(Some(base), 0),
                Ok(Fee::Market {
                    tip: 2,
                    max_fee: 100
                })
            ));
        }
        assert!(matches!(
            p.fee(Some(99), 0),
            Err(ChainError::TooExpensive {
                asked: 101,
                ceiling: 100
            })
        ));
        // Before London: the suggested price, as it is, within the ceiling.
        assert!(matches!(p.fee(None, 40), Ok(Fee::Legacy { gas_price: 40 })));
        assert!(p.fee(None, 101).is_err());
        assert!(FeePolicy::default().tip < FeePolicy::default().max_fee);
    }
}
