//! `personal_*`: members' personal data over JSON-RPC — submitting a profile with its values,
//! reading (by a request signed by the member or the board) and erasing. The vault itself, and
//! the order of its writes, is `coopledger_node::vault`.

use crate::api::{PersonalApiServer, RpcResult};
use crate::error;
use crate::server::parse_entry;
use crate::wire::SubmitResult;
use coopledger_ledger::codec::b64_decode;
use coopledger_node::cluster::replica::PurgeReport;
use coopledger_node::vault::{self, Vault, VaultError};
use jsonrpsee::core::async_trait;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use coopledger_node::vault::{read_message, READ_CONTEXT};

/// One attribute on the wire: the value and the salt its commitment used (the vault's
/// `vault::Attribute` is the internal counterpart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// The value in clear.
    pub value: String,
    /// Base64 of the 32-byte random salt.
    pub salt: String,
}

/// What `personal_erase` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureResult {
    /// The erasure entry's receipt.
    pub receipt: SubmitResult,
    /// True once the member's key and data are in no file of the node — of a replicated
    /// co-op, in no file of any replica (vault records, Raft logs and snapshots): every one
    /// in `replicasPurged`, none in `replicasPending`.
    pub destroyed: bool,
    /// Replica ids that confirmed no file of theirs holds the erased records (empty on a
    /// single node).
    pub replicas_purged: Vec<u64>,
    /// Replica ids that did not confirm in time (down, behind or unreachable): each purges
    /// when it applies the erasure or receives a snapshot taken after it. Empty on a single
    /// node.
    pub replicas_pending: Vec<u64>,
}

/// How long an erasure's answer waits for the answering replica's snapshot and Raft-log purge.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long it then waits for the other replicas to confirm theirs.
const PEER_PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

pub(crate) struct PersonalRpc {
    pub(crate) vault: Vault,
    /// This node as a replica, if it is one (an erasure then also purges its Raft log).
    pub(crate) replica: Option<
        std::sync::Arc<
            coopledger_node::cluster::replica::Replica<coopledger_governance::CoopRules>,
        >,
    >,
}

fn vault_error(e: VaultError) -> ErrorObjectOwned {
    match e {
        VaultError::Field { field, reason } => error::invalid_param(&field, &reason),
        VaultError::Forbidden { field, reason } => error::forbidden(field, reason),
        VaultError::Rejected(r) => error::rejection(&r),
        VaultError::Submit(s) => error::submit(&s),
        VaultError::Storage(s) => error::storage(&s),
    }
}

fn bytes_param<const N: usize>(field: &str, s: &str) -> RpcResult<[u8; N]> {
    b64_decode(s)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| error::invalid_param(field, &format!("must be base64 of {N} bytes")))
}

#[async_trait]
impl PersonalApiServer for PersonalRpc {
    async fn submit(
        &self,
        entry: Value,
        attributes: BTreeMap<String, Attribute>,
    ) -> RpcResult<SubmitResult> {
        let env = parse_entry(&entry)?;
        let attributes = attributes
            .into_iter()
            .map(|(k, a)| {
                let a = vault::Attribute {
                    value: a.value,
                    salt: a.salt,
                };
                (k, a)
            })
            .collect();
        let receipt = self
            .vault
            .submit_profile(env, attributes)
            .await
            .map_err(vault_error)?;
        Ok(SubmitResult::from(&receipt))
    }

    async fn read(
        &self,
        member: String,
        ts: u64,
        nonce: String,
        signer: String,
        sig: String,
    ) -> RpcResult<BTreeMap<String, String>> {
        error::member_param("member", &member)?;
        let nonce: [u8; 16] = bytes_param("nonce", &nonce)?;
        let signer: [u8; 32] = bytes_param("signer", &signer)?;
        let sig: [u8; 64] = bytes_param("sig", &sig)?;
        self.vault
            .authorise_read(&member, ts, &nonce, &signer, &sig)
            .map_err(vault_error)?;
        let attrs = self
            .vault
            .read(&member)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "member",
                    format!("no personal data of {member} is held (none given, or erased)"),
                )
            })?;
        Ok(attrs.into_iter().map(|(k, a)| (k, a.value)).collect())
    }

    async fn erase(&self, entry: Value) -> RpcResult<ErasureResult> {
        let env = parse_entry(&entry)?;
        let (receipt, mut destroyed) = self.vault.erase(env).await.map_err(vault_error)?;
        let mut report = PurgeReport::default();
        if let (true, Some(replica)) = (destroyed, &self.replica) {
            report = if receipt.duplicate {
                // Sent again (anyone can: the entry is public). Its purge followed the first
                // time on every replica; asking them is all a replay may cost.
                replica.erasure_confirmed().await
            } else {
                // The vault's records are gone here; the Raft entries that carried them go
                // next, here and on every other replica.
                replica.erasure_purged(PURGE_WAIT, PEER_PURGE_WAIT).await
            };
            destroyed = report.pending.is_empty();
        }
        Ok(ErasureResult {
            receipt: SubmitResult::from(&receipt),
            destroyed,
            replicas_purged: report.purged,
            replicas_pending: report.pending,
        })
    }
}
