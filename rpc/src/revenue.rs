//! `revenue_*` methods: read-only views of the books the revenue rules keep, and the
//! distribution the log implies (the treasurer signs exactly that).

use crate::api::{RevenueApiServer, RpcResult};
use crate::consent_wire::{PolicyView, SettlementView};
use crate::error;
use coopledger_governance::revenue::{self, Distribution, DistributionError, Expense, Revenue};
use coopledger_governance::revenue_bundle::{
    RevenueBundle, Statement, REVENUE_BUNDLE_FORMAT, STATEMENT_FORMAT,
};
use coopledger_governance::CoopRules;
use coopledger_ledger::bundle::{ProvenEntry, ProvenState};
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

/// Assembles the revenue bundle of a recorded distribution (see `docs/revenue.md`): every record
/// proved under the state root of one checkpoint, and the policy's adopting tally entry.
pub fn assemble_bundle(
    log: &Log<CoopRules>,
    period: &str,
    currency: &str,
    member: Option<&str>,
) -> RpcResult<RevenueBundle> {
    let st = |e: coopledger_ledger::store::StoreError| error::storage(&e);
    let q = |e: coopledger_ledger::QueryError| error::query(&e);
    let d = revenue::distribution(log, period, currency)
        .map_err(st)?
        .ok_or_else(|| {
            error::not_found(
                "period",
                format!("no distribution of {period} in {currency} is recorded"),
            )
        })?;
    if let Some(m) = member {
        if !d.lines.iter().any(|l| l.member == m) {
            return Err(error::not_found(
                "member",
                format!("{m} has no line in the distribution of {period} in {currency}"),
            ));
        }
    }
    let pol = revenue::policy_version(log, d.policy_version)
        .map_err(st)?
        .ok_or_else(|| error::corrupt("the distribution's policy is missing".into()))?;
    let id_bytes = |id: &str| -> RpcResult<Vec<u8>> {
        coopledger_governance::parse_id(id)
            .map(|b| b.to_vec())
            .ok_or_else(|| error::corrupt(format!("stored id {id:?}")))
    };
    let mut keys = vec![
        revenue::distribution_state_key(period, currency),
        revenue::settlement_key(period, currency),
        revenue::policy_version_key(d.policy_version),
    ];
    for r in &d.revenues {
        keys.push(
            [
                revenue::revenue_state_prefix(period, currency),
                id_bytes(r)?,
            ]
            .concat(),
        );
    }
    for e in &d.expenses {
        keys.push(
            [
                revenue::expense_state_prefix(period, currency),
                id_bytes(e)?,
            ]
            .concat(),
        );
    }
    let proofs = log.prove_states(&keys).map_err(q)?;
    let proved: Vec<ProvenState> = proofs
        .iter()
        .map(|a| ProvenState::new(&a.key, a.value.as_deref(), &a.proof))
        .collect();
    let checkpoint = proofs
        .first()
        .map(|a| a.checkpoint.clone())
        .ok_or_else(|| error::corrupt("no proofs".into()))?;
    let size = checkpoint.checkpoint.size;
    let entry = |index: u64| -> RpcResult<ProvenEntry> {
        let bytes = log.entry(index).map_err(q)?;
        let proof = log.inclusion_proof(index, size).map_err(q)?;
        Ok(ProvenEntry::new(index, &bytes, &proof))
    };
    let mut it = proved.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| error::corrupt("proof count".into()))
    };
    let (distribution, settlement, policy) = (next()?, next()?, next()?);
    let revenues = (0..d.revenues.len())
        .map(|_| next())
        .collect::<RpcResult<_>>()?;
    let expenses = (0..d.expenses.len())
        .map(|_| next())
        .collect::<RpcResult<_>>()?;
    Ok(RevenueBundle {
        format: REVENUE_BUNDLE_FORMAT.into(),
        period: period.into(),
        currency: currency.into(),
        member: member.map(str::to_owned),
        checkpoint: coopledger_node::cosigning::cosigned_note(log, size)
            .ok()
            .flatten()
            .unwrap_or_else(|| checkpoint.note.clone()),
        state_entry: entry(size - 1)?,
        distribution,
        settlement,
        policy,
        policy_tally: entry(pol.tally_index)?,
        revenues,
        expenses,
    })
}

pub(crate) struct RevenueRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
}

fn period_params(period: &str, currency: &str) -> RpcResult<()> {
    if !coopledger_governance::is_ident(period) {
        return Err(error::invalid_param(
            "period",
            coopledger_governance::IDENT_RULE,
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
    async fn policy(&self) -> RpcResult<Option<PolicyView>> {
        Ok(revenue::policy(self.log.as_ref())
            .map_err(|e| error::storage(&e))?
            .map(PolicyView::from))
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

    async fn settlement(&self, period: String, currency: String) -> RpcResult<SettlementView> {
        period_params(&period, &currency)?;
        revenue::settlement(self.log.as_ref(), &period, &currency)
            .map_err(|e| error::storage(&e))?
            .map(SettlementView::from)
            .ok_or_else(|| {
                error::not_found(
                    "period",
                    format!("no distribution of {period} in {currency} is recorded"),
                )
            })
    }

    async fn bundle(
        &self,
        period: String,
        currency: String,
        member: Option<String>,
    ) -> RpcResult<RevenueBundle> {
        period_params(&period, &currency)?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            assemble_bundle(&log, &period, &currency, member.as_deref())
        })
        .await
        .map_err(|e| error::corrupt(format!("bundle task: {e}")))?
    }

    async fn statement(&self, member: String) -> RpcResult<Statement> {
        error::member_param("member", &member)?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let mut bundles = Vec::new();
            for d in revenue::distributions(log.as_ref()).map_err(|e| error::storage(&e))? {
                if d.lines.iter().any(|l| l.member == member) {
                    bundles.push(assemble_bundle(
                        &log,
                        &d.period,
                        &d.currency,
                        Some(&member),
                    )?);
                }
            }
            Ok(Statement {
                format: STATEMENT_FORMAT.into(),
                member,
                bundles,
            })
        })
        .await
        .map_err(|e| error::corrupt(format!("statement task: {e}")))?
    }

    async fn distributions(&self) -> RpcResult<Vec<Distribution>> {
        revenue::distributions(self.log.as_ref()).map_err(|e| error::storage(&e))
    }
}
