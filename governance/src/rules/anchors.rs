//! `anchor.receipt` — by the node key: a checkpoint of this log was anchored on a chain and
//! reached the required confirmations. The rules check the form and that the anchored size is
//! within the log; whether the chain really holds it is what `coop anchor verify` checks against
//! any node of that chain.

use super::{rule, write, Signer};
use crate::payload::{malformed, Fields};
use crate::records::cat;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A confirmed anchor, as recorded in the log and in state (`anchor/<u64 BE size>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorReceipt {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Block holding the transaction.
    pub block_number: u64,
    /// That block's hash (0x-hex).
    pub block_hash: String,
    /// The transaction (0x-hex).
    pub tx_hash: String,
    /// Anchored tree size.
    pub size: u64,
    /// Anchored root (base64).
    pub root: String,
    /// Confirmations it had when recorded.
    pub confirmations: u64,
    /// Log index of this receipt entry.
    pub index: u64,
}

pub(crate) fn anchor_key(size: u64) -> Vec<u8> {
    cat(&[b"anchor/", &size.to_be_bytes()])
}

fn hex32(f: &Fields<'_>, name: &str) -> Result<String, ApplyError> {
    f.value(name)
        .and_then(Value::as_str)
        .filter(|s| {
            s.len() == 66
                && s.starts_with("0x")
                && s.bytes()
                    .skip(2)
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .map(str::to_owned)
        .ok_or_else(|| malformed(name, "must be 0x and 64 lowercase hex digits").into())
}

/// `anchor.receipt {chainId, blockNumber, blockHash, txHash, size, root, confirmations}`.
pub(super) fn receipt(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.require_node()?;
    let f = Fields::new(
        &env.body().payload,
        &[
            "chainId",
            "blockNumber",
            "blockHash",
            "txHash",
            "size",
            "root",
            "confirmations",
        ],
    )?;
    let size = f.uint("size")?;
    if size == 0 || size > ctx.index {
        return Err(rule(
            "anchor.size",
            format!(
                "body.payload.size {size} must be a checkpointed size of this log (1 to {})",
                ctx.index
            ),
        ));
    }
    let r = AnchorReceipt {
        chain_id: f.uint("chainId")?,
        block_number: f.uint("blockNumber")?,
        block_hash: hex32(&f, "blockHash")?,
        tx_hash: hex32(&f, "txHash")?,
        size,
        root: b64_encode(f.digest("root")?),
        confirmations: f.uint("confirmations")?,
        index: ctx.index,
    };
    write(view, &anchor_key(size), &r)
}

/// Every recorded anchor, by anchored size.
pub fn anchors(
    s: &dyn coopledger_ledger::StateRead,
) -> Result<Vec<AnchorReceipt>, coopledger_ledger::StoreError> {
    s.scan(b"anchor/")?
        .iter()
        .map(|(_, v)| crate::records::decode(v))
        .collect()
}
