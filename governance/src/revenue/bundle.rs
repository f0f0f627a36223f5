//! The revenue bundle (`coopledger-revenue-bundle/v1`, specified in `docs/revenue.md`): one
//! period's books in one currency as of a checkpoint — every revenue and expense, the recorded
//! distribution, its settlement (payments, unclaimed transfer), the policy it applied and the
//! tally that adopted that policy — each proved under the state root the checkpoint ends on.
//! With a member it is that member's statement; without, the treasurer's reconciliation. The
//! verifier recomputes the whole distribution from the proved records and the policy.

use crate::revenue::{
    apportion, check_balance, distribution_key, expense_prefix, policy_version_key, revenue_prefix,
    settlement_key, Distribution, Expense, PaymentStatus, PolicyInForce, Revenue, Settlement,
    Split,
};
use coopledger_ledger::bundle::{Anchor, BundleError, ProvenEntry, ProvenState};
use coopledger_ledger::state::app_key;
use coopledger_ledger::NoteVerifier;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Format tag of version 1.
pub const REVENUE_BUNDLE_FORMAT: &str = "coopledger-revenue-bundle/v1";

/// The bundle file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevenueBundle {
    /// Always [`REVENUE_BUNDLE_FORMAT`].
    pub format: String,
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// The member whose statement this is, or `null` for the whole reconciliation.
    pub member: Option<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The checkpoint's last entry: its `log.state` entry.
    pub state_entry: ProvenEntry,
    /// `dist/<period>/<currency>`.
    pub distribution: ProvenState,
    /// `distat/<period>/<currency>`.
    pub settlement: ProvenState,
    /// `policyv/<version>` of the policy the distribution applied.
    pub policy: ProvenState,
    /// The `gov.tally` entry that adopted that policy.
    pub policy_tally: ProvenEntry,
    /// `rev/<period>/<currency>/<id>` of every revenue the distribution names.
    pub revenues: Vec<ProvenState>,
    /// `exp/<period>/<currency>/<id>` of every expense it names.
    pub expenses: Vec<ProvenState>,
}

/// Format tag of a member's statement over every distribution they have a line in.
pub const STATEMENT_FORMAT: &str = "coopledger-revenue-statement/v1";

/// A member's statement: one revenue bundle per distribution with a line of theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statement {
    /// Always [`STATEMENT_FORMAT`].
    pub format: String,
    /// The member.
    pub member: String,
    /// One bundle per distribution, each with `member` set.
    pub bundles: Vec<RevenueBundle>,
}

impl Statement {
    /// Verifies every bundle and that each is this member's.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<Vec<RevenueReport>, RevenueBundleError> {
        if self.format != STATEMENT_FORMAT {
            return Err(content(format!(
                "field `format`: expected {STATEMENT_FORMAT:?}, found {:?}",
                self.format
            )));
        }
        self.bundles
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if b.member.as_deref() != Some(self.member.as_str()) {
                    return Err(content(format!(
                        "field `bundles[{i}].member`: not {}",
                        self.member
                    )));
                }
                b.verify(log_key)
            })
            .collect()
    }
}

/// Why a revenue bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevenueBundleError {
    /// A proof, checkpoint or entry failed.
    #[error(transparent)]
    Proof(#[from] BundleError),
    /// The content is inconsistent; the message names the field.
    #[error("{0}")]
    Content(String),
}

fn content(m: impl Into<String>) -> RevenueBundleError {
    RevenueBundleError::Content(m.into())
}

/// What a verified bundle shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueReport {
    /// Checkpoint size.
    pub size: u64,
    /// Ledger origin.
    pub origin: String,
    /// The distribution, recomputed and equal.
    pub distribution: Distribution,
    /// Its settlement.
    pub settlement: Settlement,
    /// The policy applied, and the proposal that adopted it.
    pub policy: PolicyInForce,
    /// The revenues and expenses.
    pub revenues: Vec<Revenue>,
    /// The expenses.
    pub expenses: Vec<Expense>,
}

fn hex32(id: &str) -> Result<Vec<u8>, RevenueBundleError> {
    crate::parse_id(id)
        .map(|b| b.to_vec())
        .ok_or_else(|| content(format!("id {id:?} is not 64 hex digits")))
}

/// Verifies `p` as the value of state key `key` and parses it.
fn proven<T: DeserializeOwned>(
    anchor: &Anchor,
    p: &ProvenState,
    key: &[u8],
    field: &str,
) -> Result<T, RevenueBundleError> {
    let (k, v) = anchor.state(p, field)?;
    if k != app_key(key) {
        return Err(content(format!(
            "field `{field}.key`: not the expected state key"
        )));
    }
    let v = v.ok_or_else(|| content(format!("field `{field}`: proves absence, not a record")))?;
    serde_json::from_slice(&v).map_err(|e| content(format!("field `{field}.value`: {e}")))
}

impl RevenueBundle {
    /// Checks everything offline against the log's verifier key and recomputes the
    /// distribution: totals from the proved revenues and expenses, the set-asides from the
    /// policy's ppm, and every line from the policy's split, by largest remainder.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<RevenueReport, RevenueBundleError> {
        if self.format != REVENUE_BUNDLE_FORMAT {
            return Err(content(format!(
                "field `format`: expected {REVENUE_BUNDLE_FORMAT:?}, found {:?}",
                self.format
            )));
        }
        let anchor = Anchor::open(&self.checkpoint, log_key, &self.state_entry)?;
        let (p, c) = (self.period.as_str(), self.currency.as_str());
        let d: Distribution = proven(
            &anchor,
            &self.distribution,
            &distribution_key(p, c),
            "distribution",
        )?;
        let st: Settlement = proven(
            &anchor,
            &self.settlement,
            &settlement_key(p, c),
            "settlement",
        )?;
        let pol: PolicyInForce = proven(
            &anchor,
            &self.policy,
            &policy_version_key(d.policy_version),
            "policy",
        )?;
        // The policy was adopted by the members' vote: its tally entry says so.
        let tally = anchor.entry(&self.policy_tally, "policyTally")?;
        let b = tally.body();
        let adopted = b.kind == "gov.tally"
            && self.policy_tally.index == pol.tally_index
            && b.payload.get("proposal").and_then(|v| v.as_str()) == Some(pol.proposal.as_str())
            && b.payload
                .get("tally")
                .and_then(|t| t.get("outcome"))
                .and_then(|o| o.as_str())
                == Some("adopted");
        if !adopted {
            return Err(content(
                "field `policyTally`: not the gov.tally adopting the policy's proposal",
            ));
        }
        let mut revenues = Vec::new();
        for (i, id) in d.revenues.iter().enumerate() {
            let proof = self
                .revenues
                .get(i)
                .ok_or_else(|| content(format!("revenue {id} is missing from `revenues`")))?;
            let key = [revenue_prefix(p, c), hex32(id)?].concat();
            revenues.push(proven::<Revenue>(
                &anchor,
                proof,
                &key,
                &format!("revenues[{i}]"),
            )?);
        }
        let mut expenses = Vec::new();
        for (i, id) in d.expenses.iter().enumerate() {
            let proof = self
                .expenses
                .get(i)
                .ok_or_else(|| content(format!("expense {id} is missing from `expenses`")))?;
            let key = [expense_prefix(p, c), hex32(id)?].concat();
            expenses.push(proven::<Expense>(
                &anchor,
                proof,
                &key,
                &format!("expenses[{i}]"),
            )?);
        }
        if self.revenues.len() != d.revenues.len() || self.expenses.len() != d.expenses.len() {
            return Err(content(
                "`revenues`/`expenses` hold records the distribution does not name",
            ));
        }
        // Recompute: totals, set-asides, lines.
        let gross = revenues
            .iter()
            .try_fold(0u64, |a, r| a.checked_add(r.amount));
        let spent = expenses
            .iter()
            .try_fold(0u64, |a, e| a.checked_add(e.amount));
        if gross != Some(d.gross) || spent != Some(d.expense_total) {
            return Err(content("gross or expenses differ from the proved records"));
        }
        check_balance(&d).map_err(|m| content(format!("distribution: {m}")))?;
        let q = &pol.policy;
        let buckets = apportion(d.net, &[q.reserve_ppm, q.community_ppm, q.pool_ppm]);
        if buckets != Some(vec![d.reserve, d.community, d.pool]) {
            return Err(content("the set-asides are not the policy's shares of net"));
        }
        let weights: Vec<u64> = d
            .lines
            .iter()
            .map(|l| match q.split {
                Split::Equal => 1,
                Split::Contribution => l.basis,
            })
            .collect();
        let lines_ok = match apportion(d.pool, &weights) {
            Some(parts) => {
                d.unshared == 0 && parts.iter().zip(&d.lines).all(|(a, l)| *a == l.amount)
            }
            None => d.unshared == d.pool && d.lines.iter().all(|l| l.amount == 0),
        };
        let sorted = d.lines.windows(2).all(|w| match w {
            [a, b] => a.member < b.member,
            _ => true,
        });
        if !lines_ok || !sorted {
            return Err(content(
                "the lines are not the pool split by the policy (largest remainder, member-id order)",
            ));
        }
        if let Some(m) = &self.member {
            if !d.lines.iter().any(|l| &l.member == m) {
                return Err(content(format!("{m} has no line in this distribution")));
            }
        }
        for (m, pay) in &st.payments {
            let line = d.lines.iter().find(|l| &l.member == m);
            if line.map(|l| l.amount) != Some(pay.amount) {
                return Err(content(format!("payment to {m} does not match a line")));
            }
        }
        Ok(RevenueReport {
            size: anchor.checkpoint.checkpoint.size,
            origin: anchor.checkpoint.checkpoint.origin.clone(),
            distribution: d,
            settlement: st,
            policy: pol,
            revenues,
            expenses,
        })
    }
}

/// One member's line in a reconciliation: what the distribution owes, what was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciledLine {
    /// Member id.
    pub member: String,
    /// The member's basis in the policy's unit.
    pub basis: u64,
    /// Due, minor units.
    pub amount: u64,
    /// Paid (a payment recorded as paid), minor units.
    pub paid: u64,
    /// Due minus paid, minor units.
    pub difference: u64,
    /// [`line_state`]: `paid`, `failed`, `unpaid`, `below_minimum`, `unclaimed`, `nothing_due`.
    pub state: &'static str,
}

/// A verified distribution against its settlement: what `coop revenue reconcile` prints and the
/// treasurer's page shows, computed in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// The checkpoint size the bundle is proved under.
    pub checkpoint: u64,
    /// Revenues recorded in the period.
    pub revenues: usize,
    /// Expenses recorded in the period.
    pub expenses: usize,
    /// Gross, expenses, net, set-asides and pool, minor units (the distribution's).
    pub gross: u64,
    /// Sum of the expenses.
    pub expense_total: u64,
    /// Gross minus expenses.
    pub net: u64,
    /// Kept in reserve.
    pub reserve: u64,
    /// To the community fund.
    pub community: u64,
    /// Shared among the members.
    pub pool: u64,
    /// Of the pool, left unshared by rounding or minimums.
    pub unshared: u64,
    /// Moved by the unclaimed transfer, once made.
    pub unclaimed: u64,
    /// Every line.
    pub lines: Vec<ReconciledLine>,
    /// Sum of the lines' amounts.
    pub due: u64,
    /// Sum paid.
    pub paid: u64,
    /// `due − paid`.
    pub difference: u64,
}

/// Reconciles a verified revenue bundle's distribution with its settlement.
pub fn reconciliation(r: &RevenueReport) -> Reconciliation {
    let d = &r.distribution;
    let st = &r.settlement;
    let lines: Vec<ReconciledLine> = d
        .lines
        .iter()
        .map(|l| {
            let paid = st
                .payments
                .get(&l.member)
                .filter(|p| p.status == PaymentStatus::Paid)
                .map_or(0, |p| p.amount);
            ReconciledLine {
                member: l.member.clone(),
                basis: l.basis,
                amount: l.amount,
                paid,
                difference: l.amount.saturating_sub(paid),
                state: line_state(st, l),
            }
        })
        .collect();
    let due = lines.iter().map(|l| l.amount).sum();
    let paid = lines.iter().map(|l| l.paid).sum();
    Reconciliation {
        period: d.period.clone(),
        currency: d.currency.clone(),
        checkpoint: r.size,
        revenues: r.revenues.len(),
        expenses: r.expenses.len(),
        gross: d.gross,
        expense_total: d.expense_total,
        net: d.net,
        reserve: d.reserve,
        community: d.community,
        pool: d.pool,
        unshared: d.unshared,
        unclaimed: st.unclaimed.as_ref().map_or(0, |u| u.amount),
        lines,
        due,
        paid,
        difference: due - paid.min(due),
    }
}

/// A line's payment state as the reconciliation shows it.
pub fn line_state(st: &Settlement, line: &crate::revenue::Line) -> &'static str {
    let (member, below_minimum) = (line.member.as_str(), line.below_minimum);
    if line.amount == 0 {
        return "nothing_due";
    }
    match st.payments.get(member).map(|p| p.status) {
        Some(PaymentStatus::Paid) => "paid",
        Some(PaymentStatus::Failed) if st.unclaimed.is_some() => "unclaimed",
        Some(PaymentStatus::Failed) => "failed",
        None if st.unclaimed.is_some() => "unclaimed",
        None if below_minimum => "below_minimum",
        None => "unpaid",
    }
}
