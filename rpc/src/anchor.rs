//! `anchor_*`: the anchoring loop's status and the anchors recorded in the log, over JSON-RPC.
//! The loop itself is `coopledger_node::anchoring`.

use crate::api::{AnchorApiServer, RpcResult};
use crate::error;
use coopledger_governance::rules::anchors::{anchors, AnchorReceipt};
use coopledger_governance::CoopRules;
use coopledger_ledger::Log;
use coopledger_node::anchoring::{AnchorStatus, SharedStatus};
use jsonrpsee::core::async_trait;
use std::sync::Arc;

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
