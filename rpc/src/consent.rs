//! `consent_*` methods: read-only views of the consent ledger the rules keep, from the node's
//! committed state.

use crate::api::{ConsentApiServer, RpcResult};
use crate::error;
use coopledger_governance::consent::{self, DataUse, Grant, Notice, Party, StatusReport, Timeline};
use coopledger_governance::{parse_id, CoopRules};
use coopledger_ledger::log::now_ms;
use coopledger_ledger::{Log, StateRead};
use jsonrpsee::core::async_trait;
use serde_json::Value;
use std::sync::Arc;

pub(crate) struct ConsentRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
}

impl ConsentRpc {
    fn state(&self) -> &dyn StateRead {
        self.log.as_ref()
    }

    fn grant_record(&self, id: &str) -> RpcResult<Grant> {
        let idb = parse_id(id)
            .ok_or_else(|| error::invalid_param("grant", "must be 64 lowercase hex digits"))?;
        consent::grant(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("grant", format!("no consent grant {id}")))
    }
}

#[async_trait]
impl ConsentApiServer for ConsentRpc {
    async fn parties(&self) -> RpcResult<Vec<Party>> {
        consent::parties(self.state()).map_err(|e| error::storage(&e))
    }

    async fn notices(&self) -> RpcResult<Vec<Notice>> {
        consent::notices(self.state()).map_err(|e| error::storage(&e))
    }

    async fn notice(&self, notice: String, version: Option<u64>) -> RpcResult<Notice> {
        match version {
            Some(v) => consent::notice(self.state(), &notice, v),
            None => consent::latest_notice(self.state(), &notice),
        }
        .map_err(|e| error::storage(&e))?
        .ok_or_else(|| error::not_found("notice", format!("no notice {notice}")))
    }

    async fn grant(&self, id: String) -> RpcResult<Grant> {
        self.grant_record(&id)
    }

    async fn grants(&self, member: String) -> RpcResult<Vec<Grant>> {
        consent::member_grants(self.state(), &member).map_err(|e| error::storage(&e))
    }

    async fn status(
        &self,
        member: String,
        purpose: String,
        recipient: String,
        at_index: Option<u64>,
        at_ms: Option<u64>,
    ) -> RpcResult<StatusReport> {
        let grants =
            consent::member_grants(self.state(), &member).map_err(|e| error::storage(&e))?;
        let now_index = self.log.checkpoint().checkpoint.size.saturating_sub(1);
        Ok(consent::status(
            &grants,
            &member,
            &purpose,
            &recipient,
            at_index.unwrap_or(now_index),
            at_ms.unwrap_or_else(now_ms),
        ))
    }

    async fn timeline(&self, member: String) -> RpcResult<Timeline> {
        consent::timeline(self.state(), &member).map_err(|e| error::storage(&e))
    }

    async fn data_use(&self, id: String) -> RpcResult<DataUse> {
        let idb = parse_id(&id)
            .ok_or_else(|| error::invalid_param("id", "must be 64 lowercase hex digits"))?;
        consent::data_use(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("id", format!("no data use {id}")))
    }

    async fn receipt(&self, grant: String) -> RpcResult<Value> {
        let g = self.grant_record(&grant)?;
        let s = self.state();
        let n = consent::notice(s, &g.notice, g.version)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("grant", "the grant's notice is missing".into()))?;
        let c = consent::party(s, &n.controller)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found("grant", "the notice's controller is missing".into())
            })?;
        Ok(consent::receipt(&g, &n, &c))
    }
}
