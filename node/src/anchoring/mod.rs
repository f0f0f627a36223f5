//! Anchoring the log's checkpoints on a chain (DESIGN §8): the node's anchoring loop (send a
//! transaction whose calldata commits to a checkpoint, wait for the required confirmations,
//! check the block is still canonical, then append an `anchor.receipt` entry to the log) and its
//! status. Faults — chain unreachable, transaction dropped or replaced, reorg below the
//! confirmation depth, fees above the ceiling — are retried with backoff and shown in the
//! status; they never block ingest. The EVM chain itself is `evm_chain.rs`.

mod evm_chain;

pub use evm_chain::{ChainTx, EvmAnchorer, EvmChain, Fee, FeePolicy};

use coopledger_governance::rules::anchors::{anchors, AnchorReceipt};
use coopledger_governance::CoopRules;
use coopledger_ledger::anchor::{AnchorChain, ChainError, TxPlace};
use coopledger_ledger::{Log, OwnEntry, SubmitError};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
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
