//! `recovery_*`: members' recovery kits over JSON-RPC — storing one with the `member.key_add`
//! of its backup key, and fetching one by the locator a recovery code derives. The kits
//! themselves, and the order of their writes, are `coopledger_node::recovery`.

use crate::api::{RecoveryApiServer, RpcResult};
use crate::error;
use crate::server::parse_entry;
use crate::wire::SubmitResult;
use coopledger_ledger::codec::b64_decode;
use coopledger_node::recovery::{KitError, RecoveryKits};
use jsonrpsee::core::async_trait;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A recovery kit on the wire (`coopledger_node::recovery::Kit` is the stored counterpart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KitView {
    /// The member the backup key belongs to.
    pub member: String,
    /// The backup key (base64 of the public key).
    pub key: String,
    /// The sealed private key (base64), opened only with the recovery code.
    pub kit: String,
    /// Log index of the `member.key_add` that registered the backup key.
    pub index: u64,
}

pub(crate) struct RecoveryRpc {
    pub(crate) kits: RecoveryKits,
}

fn kit_error(e: KitError) -> ErrorObjectOwned {
    match e {
        KitError::Field { field, reason } => error::invalid_param(field, &reason),
        KitError::Rejected(r) => error::rejection(&r),
        KitError::Submit(s) => error::submit(&s),
        KitError::Storage(s) => error::storage(&s),
    }
}

fn locator_param(locator: &str) -> RpcResult<[u8; 32]> {
    b64_decode(locator)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| error::invalid_param("locator", "must be base64 of 32 bytes"))
}

#[async_trait]
impl RecoveryApiServer for RecoveryRpc {
    async fn store(&self, entry: Value, locator: String, kit: String) -> RpcResult<SubmitResult> {
        let env = parse_entry(&entry)?;
        let locator = locator_param(&locator)?;
        let sealed = b64_decode(&kit).map_err(|_| error::invalid_param("kit", "must be base64"))?;
        let receipt = self
            .kits
            .store(env, locator, sealed)
            .await
            .map_err(kit_error)?;
        Ok(SubmitResult::from(&receipt))
    }

    async fn kit(&self, locator: String) -> RpcResult<KitView> {
        let locator = locator_param(&locator)?;
        let kit = self
            .kits
            .fetch(&locator)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "locator",
                    "no recovery kit is held for this code (mistyped, replaced by a newer \
                     code, or its key was revoked)"
                        .into(),
                )
            })?;
        Ok(KitView {
            member: kit.member,
            key: kit.key,
            kit: kit.sealed,
            index: kit.index,
        })
    }
}
