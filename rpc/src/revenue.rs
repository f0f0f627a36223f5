//! `revenue_*` methods: read-only views of the books the revenue rules keep, and the
//! distribution the log implies (the treasurer signs exactly that).

use crate::api::{RevenueApiServer, RpcResult};
use crate::error;
use coopledger_governance::revenue::{
    self, Distribution, DistributionError, Expense, PolicyInForce, Revenue, Settlement,
};
use coopledger_governance::CoopRules;
use coopledger_ledger::{Log, Rejection};
use jsonrpsee::core::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A period's books in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodBooks {
    /// Revenues, by entry id.
    pub revenues: Vec<Revenue>,
    /// Expenses, by entry id.
    pub expenses: Vec<Expense>,
}

pub(crate) struct RevenueRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
}

fn period_params(period: &str, currency: &str) -> RpcResult<()> {
    let p_ok = !period.is_empty()
        && period.len() <= 16
        && period
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !p_ok {
        return Err(error::invalid_param(
            "period",
            "must be 1 to 16 of [a-z0-9_-], e.g. 2026-q3",
        ));
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(error::invalid_param(
            "currency",
            "must be an ISO 4217 code such as EUR",
        ));
    }
    Ok(())
}

#[async_trait]
impl RevenueApiServer for RevenueRpc {
    async fn policy(&self) -> RpcResult<Option<PolicyInForce>> {
        revenue::policy(self.log.as_ref()).map_err(|e| error::storage(&e))
    }

    async fn ledger(&self, period: String, currency: String) -> RpcResult<PeriodBooks> {
        period_params(&period, &currency)?;
        let s = self.log.as_ref();
        Ok(PeriodBooks {
            revenues: revenue::revenues(s, &period, &currency).map_err(|e| error::storage(&e))?,
            expenses: revenue::expenses(s, &period, &currency).map_err(|e| error::storage(&e))?,
        })
    }

    async fn preview(&self, period: String, currency: String) -> RpcResult<Distribution> {
        period_params(&period, &currency)?;
        revenue::compute(self.log.as_ref(), &period, &currency).map_err(|e| {
            let rule = match &e {
                DistributionError::NoPolicy => "policy.none",
                DistributionError::Done { .. } => "revenue.closed",
                DistributionError::Storage(s) => return error::storage(s),
                _ => "distribution.invalid",
            };
            error::rejection(&Rejection::Rule {
                rule: rule.into(),
                message: e.to_string(),
            })
        })
    }

    async fn distribution(&self, period: String, currency: String) -> RpcResult<Distribution> {
        period_params(&period, &currency)?;
        revenue::distribution(self.log.as_ref(), &period, &currency)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "period",
                    format!("no distribution of {period} in {currency} is recorded"),
                )
            })
    }

    async fn settlement(&self, period: String, currency: String) -> RpcResult<Settlement> {
        period_params(&period, &currency)?;
        revenue::settlement(self.log.as_ref(), &period, &currency)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "period",
                    format!("no distribution of {period} in {currency} is recorded"),
                )
            })
    }
}
