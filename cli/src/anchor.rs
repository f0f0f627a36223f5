//! `coop anchor status|list|verify`: what the node anchored on an EVM chain, and the check of an
//! anchor against any node of that chain — the transaction exists with the expected calldata in
//! a canonical block with enough confirmations, and the anchored checkpoint is consistent with
//! the log's current one.

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use coopledger_governance::rules::anchors::AnchorReceipt;
use coopledger_ledger::anchor::calldata;
use coopledger_ledger::verify::verify_consistency;
use coopledger_ledger::{Hash, NoteVerifier, SignedCheckpoint};
use coopledger_node::anchoring::EvmChain;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::{AnchorApiClient, LedgerApiClient};
use std::path::PathBuf;
use std::process::ExitCode;

/// `coop anchor …`
#[derive(Debug, Subcommand)]
pub enum AnchorCmd {
    /// The anchoring loop's status on the node.
    Status,
    /// Every anchor recorded in the log.
    List,
    /// Check an anchor against a node of the chain: by the log index of its `anchor.receipt`
    /// entry, or a receipt file (JSON as `coop anchor list` prints one). Exit 0 = valid.
    Verify {
        /// The chain's JSON-RPC URL (any node of that chain).
        #[arg(long)]
        chain_rpc: String,
        /// The log's verifier key.
        #[arg(long)]
        vkey: String,
        /// Confirmations required.
        #[arg(long, default_value_t = 1)]
        confirmations: u64,
        /// Log index of the receipt entry, or a receipt file.
        receipt: String,
    },
}

/// Runs `coop anchor …`.
pub async fn anchor(c: &HttpClient, cmd: AnchorCmd) -> Result<ExitCode> {
    match cmd {
        AnchorCmd::Status => crate::print_json(&c.status().await?)?,
        AnchorCmd::List => crate::print_json(&c.list().await?)?,
        AnchorCmd::Verify {
            chain_rpc,
            vkey,
            confirmations,
            receipt,
        } => {
            let vkey = NoteVerifier::parse(&vkey).map_err(|e| anyhow!("--vkey: {e}"))?;
            let r: AnchorReceipt = match receipt.parse::<u64>() {
                Ok(index) => {
                    let e = c.get_entry(index).await?;
                    let body = e.decoded.get("body");
                    let kind = body.and_then(|b| b.get("type")).and_then(|t| t.as_str());
                    let payload = body
                        .and_then(|b| b.get("payload"))
                        .and_then(|p| p.as_object());
                    let (Some("anchor.receipt"), Some(payload)) = (kind, payload) else {
                        outln!("INVALID: entry {index} is not an anchor.receipt");
                        return Ok(ExitCode::from(1));
                    };
                    let mut p = payload.clone();
                    p.insert("index".into(), index.into());
                    serde_json::from_value(serde_json::Value::Object(p))?
                }
                Err(_) => {
                    let path = PathBuf::from(&receipt);
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not an anchor receipt", path.display()))?
                }
            };
            match check(c, &chain_rpc, &vkey, confirmations, &r).await {
                Ok(line) => outln!("VALID: {line}"),
                Err(e) => {
                    outln!("INVALID: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(
    c: &HttpClient,
    chain_rpc: &str,
    vkey: &NoteVerifier,
    required: u64,
    r: &AnchorReceipt,
) -> Result<String, String> {
    let chain = EvmChain::new(chain_rpc).map_err(|e| e.to_string())?;
    let id = chain.chain_id().await.map_err(|e| e.to_string())?;
    if id != r.chain_id {
        return Err(format!(
            "the chain's id is {id}, the receipt says {}",
            r.chain_id
        ));
    }
    let tx = chain
        .transaction(&r.tx_hash)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the chain has no transaction {}", r.tx_hash))?;
    let root = Hash::from_base64(&r.root).ok_or("the receipt's root is not base64 of 32 bytes")?;
    if tx.input != calldata(vkey.name(), r.size, &root) {
        return Err(format!(
            "transaction {} does not carry this log's checkpoint of size {} (origin {})",
            r.tx_hash,
            r.size,
            vkey.name()
        ));
    }
    let (Some(n), Some(h)) = (tx.block_number, tx.block_hash) else {
        return Err(format!("transaction {} is not in a block", r.tx_hash));
    };
    if n != r.block_number || h != r.block_hash {
        return Err(format!(
            "the transaction is in block {n} ({h}), the receipt says {} ({})",
            r.block_number, r.block_hash
        ));
    }
    if chain
        .block_hash(n)
        .await
        .map_err(|e| e.to_string())?
        .as_deref()
        != Some(h.as_str())
    {
        return Err(format!("block {n} is no longer {h} on the chain"));
    }
    let have = chain
        .head()
        .await
        .map_err(|e| e.to_string())?
        .saturating_sub(n)
        + 1;
    if have < required {
        return Err(format!("{have} confirmations, {required} required"));
    }
    // The anchored checkpoint is a prefix of what the log shows now.
    let cp = c.checkpoint().await.map_err(|e| e.to_string())?;
    let now =
        SignedCheckpoint::open(&cp.note, vkey).map_err(|e| format!("the log's checkpoint: {e}"))?;
    if r.size > now.checkpoint.size {
        return Err(format!(
            "the anchored size {} is beyond the log's checkpoint {}",
            r.size, now.checkpoint.size
        ));
    }
    let proof = c
        .consistency_proof(r.size, now.checkpoint.size)
        .await
        .map_err(|e| e.to_string())?;
    let hashes = proof
        .hashes
        .iter()
        .map(|h| Hash::from_base64(h).ok_or("bad proof hash".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    verify_consistency(
        r.size,
        now.checkpoint.size,
        &hashes,
        &root,
        &now.checkpoint.root,
    )
    .map_err(|e| format!("the anchored checkpoint is not consistent with the log's: {e}"))?;
    Ok(format!(
        "checkpoint {} of {} (root {}) is in transaction {} in block {n} of chain {id} with {have} confirmations, and consistent with the log's checkpoint {}",
        r.size,
        vkey.name(),
        r.root,
        r.tx_hash,
        now.checkpoint.size
    ))
}
