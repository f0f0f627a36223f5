//! Data revenue and its distribution: the records (revenue, expenses, the allocation policy in
//! force, distributions) and the exact arithmetic. Money is integer minor units of one currency,
//! ratios are parts per million, and every split is by largest remainder with a declared
//! tie-break — so the same log gives the same cents on every machine.
//!
//! State keys (JSON values):
//!
//! | key | value |
//! |---|---|
//! | `policy` | [`PolicyInForce`]: the allocation policy adopted by the members' vote |
//! | `rev/<period>/<currency>/<32-byte entry id>` | [`Revenue`] |
//! | `exp/<period>/<currency>/<32-byte entry id>` | [`Expense`] |
//! | `paiduse/<32-byte use id>` | the revenue (hex id) that paid for this data use |
//! | `policyv/<version, 8 bytes BE>` | [`PolicyInForce`]: every policy ever adopted |
//! | `dist/<period>/<currency>` | [`Distribution`] |
//! | `distat/<period>/<currency>` | [`Settlement`]: when it was recorded, payments, unclaimed |

pub mod bundle;
pub(crate) mod rules;

use crate::records::{cat, read};
use coopledger_ledger::StateRead;
use coopledger_ledger::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parts per million in a whole.
pub const PPM: u64 = 1_000_000;

/// The tie-break every split declares: equal remainders go to the lower member id (byte order).
pub const TIE_BREAK: &str = "member-id-ascending";

pub(crate) const POLICY_KEY: &[u8] = b"policy";

pub(crate) fn revenue_prefix(period: &str, currency: &str) -> Vec<u8> {
    cat(&[b"rev/", period.as_bytes(), b"/", currency.as_bytes(), b"/"])
}
pub(crate) fn expense_prefix(period: &str, currency: &str) -> Vec<u8> {
    cat(&[b"exp/", period.as_bytes(), b"/", currency.as_bytes(), b"/"])
}
pub(crate) fn paid_use_key(use_id: &[u8; 32]) -> Vec<u8> {
    cat(&[b"paiduse/", use_id])
}
pub(crate) fn distribution_key(period: &str, currency: &str) -> Vec<u8> {
    cat(&[b"dist/", period.as_bytes(), b"/", currency.as_bytes()])
}
/// State key of a period's distribution (public for bundle assembly).
pub fn distribution_state_key(period: &str, currency: &str) -> Vec<u8> {
    distribution_key(period, currency)
}
/// Key prefix of a period's revenues (the 32-byte entry id follows).
pub fn revenue_state_prefix(period: &str, currency: &str) -> Vec<u8> {
    revenue_prefix(period, currency)
}
/// Key prefix of a period's expenses (the 32-byte entry id follows).
pub fn expense_state_prefix(period: &str, currency: &str) -> Vec<u8> {
    expense_prefix(period, currency)
}
/// State key of adopted policy `version`.
pub fn policy_version_key(version: u64) -> Vec<u8> {
    cat(&[b"policyv/", &version.to_be_bytes()])
}
/// State key of a distribution's settlement.
pub fn settlement_key(period: &str, currency: &str) -> Vec<u8> {
    cat(&[b"distat/", period.as_bytes(), b"/", currency.as_bytes()])
}

/// How the member pool is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// The same share for every sharing member.
    Equal,
    /// In proportion to each member's contribution basis.
    Contribution,
}

/// Where amounts nobody can be paid go (no sharing member; lines unclaimed after the deadline;
/// lines below the minimum payout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unclaimed {
    /// To the co-op's reserve.
    Reserve,
    /// To the community fund.
    CommunityFund,
}

/// The allocation policy: how net revenue is set aside and shared. In force only once adopted
/// by a `distribution_approval` proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocationPolicy {
    /// Share of net revenue kept as reserve, ppm.
    pub reserve_ppm: u64,
    /// Share for the community fund, ppm.
    pub community_ppm: u64,
    /// Share for the member pool, ppm. The three sum to 1,000,000.
    pub pool_ppm: u64,
    /// How the pool is split.
    pub split: Split,
    /// Lines below this (minor units) are not paid; they go where `unclaimed` says.
    pub min_payout: u64,
    /// Where unpayable amounts go.
    pub unclaimed: Unclaimed,
    /// Days a line may stay unpaid before it counts as unclaimed.
    pub claim_days: u64,
    /// Who receives the community share (and unclaimed amounts, when `unclaimed` says so): a
    /// registered party id or the co-op's name for the account, an identifier. Required when
    /// anything goes to the fund. (Policies adopted before the fund was named have none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_fund: Option<String>,
}

impl AllocationPolicy {
    /// Checks the policy as a whole; the error names the field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let sum = self
            .reserve_ppm
            .checked_add(self.community_ppm)
            .and_then(|s| s.checked_add(self.pool_ppm));
        if sum != Some(PPM) {
            return Err(PolicyError::Shares);
        }
        if self.claim_days == 0 || self.claim_days > 3660 {
            return Err(PolicyError::ClaimDays(self.claim_days));
        }
        let to_fund = self.community_ppm > 0 || self.unclaimed == Unclaimed::CommunityFund;
        match &self.community_fund {
            None if to_fund => return Err(PolicyError::CommunityFund),
            Some(f) if !crate::payload::is_ident(f) => return Err(PolicyError::CommunityFund),
            _ => {}
        }
        Ok(())
    }
}

/// What is wrong with an allocation policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The three shares do not add up to the whole.
    #[error("policy.reservePpm + communityPpm + poolPpm must be exactly 1000000")]
    Shares,
    /// The claim period is out of range.
    #[error("policy.claimDays must be 1 to 3660, not {0}")]
    ClaimDays(u64),
    /// Money goes to the community fund but the policy does not say whose it is.
    #[error(
        "policy.communityFund must name who receives the community share (a party id or \
         account, 1 to 64 of [a-z0-9_-])"
    )]
    CommunityFund,
}

/// The first arithmetic break in a distribution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// Gross less expenses is not the net.
    #[error("gross {gross} − expenses {expenses} ≠ net {net}")]
    Net {
        /// Gross revenue.
        gross: u64,
        /// Expenses.
        expenses: u64,
        /// Net claimed.
        net: u64,
    },
    /// The set-asides and the pool do not make the net.
    #[error("reserve {reserve} + community {community} + pool {pool} ≠ net {net}")]
    SetAside {
        /// Reserve.
        reserve: u64,
        /// Community fund.
        community: u64,
        /// Member pool.
        pool: u64,
        /// Net.
        net: u64,
    },
    /// The lines and the unshared part do not make the pool (`None`: their sum overflows).
    #[error("lines + unshared ({lines:?}) ≠ pool {pool}")]
    Lines {
        /// Their sum.
        lines: Option<u64>,
        /// The pool.
        pool: u64,
    },
}

/// The policy in force and the vote that adopted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyInForce {
    /// The policy.
    pub policy: AllocationPolicy,
    /// Adopting proposal (hex id).
    pub proposal: String,
    /// Log index of the adopting `gov.tally`.
    pub tally_index: u64,
    /// 1 for the first adopted policy, then each next.
    pub version: u64,
}

/// Revenue recorded by the treasurer, paying for data uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revenue {
    /// Entry id (hex).
    pub id: String,
    /// Paying party.
    pub payer: String,
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Accounting period, e.g. `2026-q3`.
    pub period: String,
    /// SHA-256 of the evidence (invoice, contract), base64.
    pub evidence: String,
    /// The purpose paid for; every use paid for has it.
    pub purpose: String,
    /// The data uses (hex ids) it pays for.
    pub uses: Vec<String>,
    /// Log index.
    pub index: u64,
}

/// An expense recorded by the treasurer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expense {
    /// Entry id (hex).
    pub id: String,
    /// Payee (free text, no personal data).
    pub payee: String,
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Accounting period.
    pub period: String,
    /// SHA-256 of the evidence, base64.
    pub evidence: String,
    /// Log index.
    pub index: u64,
}

/// One member's line of a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Line {
    /// Member id.
    pub member: String,
    /// Contribution basis: how many of the paid data uses carried this member's data under
    /// their consent.
    pub basis: u64,
    /// Minor units: floor or floor + 1 of the exact share.
    pub amount: u64,
    /// True when `amount` is below the policy's minimum payout (it will not be paid).
    pub below_minimum: bool,
}

/// A distribution of one period's net revenue in one currency: computed from the log by
/// [`compute`], and accepted only if the entry equals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Distribution {
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// Version of the policy applied.
    pub policy_version: u64,
    /// The revenues (hex ids) distributed.
    pub revenues: Vec<String>,
    /// The expenses (hex ids) deducted.
    pub expenses: Vec<String>,
    /// Sum of the revenues.
    pub gross: u64,
    /// Sum of the expenses.
    pub expense_total: u64,
    /// `gross − expenseTotal`.
    pub net: u64,
    /// Set aside as reserve.
    pub reserve: u64,
    /// Set aside for the community fund.
    pub community: u64,
    /// Who receives `community` (the policy's `communityFund`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_fund: Option<String>,
    /// The member pool; `lines` sum to it exactly.
    pub pool: u64,
    /// Part of the pool nobody shares (no sharing member): goes where the policy's `unclaimed`
    /// says.
    pub unshared: u64,
    /// One line per sharing member, by member id.
    pub lines: Vec<Line>,
    /// The declared tie-break, [`TIE_BREAK`].
    pub tie_break: String,
}

/// What happened to one line's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payment {
    /// Member id.
    pub member: String,
    /// Minor units (the line's amount).
    pub amount: u64,
    /// The payment's reference (bank transfer id; no personal data).
    pub reference: String,
    /// `paid` or `failed` (a failed payment may be retried).
    pub status: PaymentStatus,
    /// Log index.
    pub index: u64,
}

/// Outcome of a payment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Paid.
    Paid,
    /// Failed; the line stays unpaid.
    Failed,
}

/// Lines not paid by the claim deadline, moved where the policy says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnclaimedTransfer {
    /// Total moved (unpaid lines plus the unshared pool).
    pub amount: u64,
    /// Destination.
    pub to: Unclaimed,
    /// The members whose lines were unpaid.
    pub members: Vec<String>,
    /// Log index.
    pub index: u64,
}

/// A distribution's life after it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settlement {
    /// Log index of the `revenue.distribute` entry.
    pub index: u64,
    /// Its node time, ms: the claim period runs from here.
    pub ms: u64,
    /// The latest payment attempt of each member's line, by member id.
    pub payments: BTreeMap<String, Payment>,
    /// Set once unclaimed amounts were transferred (final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclaimed: Option<UnclaimedTransfer>,
}

/// Every recorded distribution, by period then currency.
pub fn distributions(s: &dyn StateRead) -> Result<Vec<Distribution>, StoreError> {
    s.scan(b"dist/")?
        .iter()
        .map(|(_, v)| crate::records::decode(v))
        .collect()
}

/// The settlement of a recorded distribution.
pub fn settlement(
    s: &dyn StateRead,
    period: &str,
    currency: &str,
) -> Result<Option<Settlement>, StoreError> {
    read(s, &settlement_key(period, currency))
}

/// An adopted policy by version.
pub fn policy_version(
    s: &dyn StateRead,
    version: u64,
) -> Result<Option<PolicyInForce>, StoreError> {
    read(s, &policy_version_key(version))
}

/// Splits `total` in proportion to `weights` by largest remainder: each part is the floor of
/// its exact share `total·wᵢ/W` or one more; the one-more parts go to the largest remainders,
/// equal remainders to the lower position. Parts sum to `total` exactly. `None` if every weight
/// is zero (nothing to split by) while `total > 0`.
pub fn apportion(total: u64, weights: &[u64]) -> Option<Vec<u64>> {
    let w_sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if w_sum == 0 {
        return (total == 0).then(|| vec![0; weights.len()]);
    }
    let t = u128::from(total);
    let mut parts = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let exact = t * u128::from(*w); // < 2^128: both factors < 2^64
        let floor = exact / w_sum;
        given += floor;
        parts.push(floor);
        rems.push((exact % w_sum, i));
    }
    // Largest remainder first; equal remainders to the lower position.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let extra = t - given; // < number of weights
    for (_, i) in rems
        .iter()
        .take(usize::try_from(extra).unwrap_or(usize::MAX))
    {
        if let Some(p) = parts.get_mut(*i) {
            *p += 1;
        }
    }
    parts.into_iter().map(|p| u64::try_from(p).ok()).collect()
}

/// Why no distribution can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributionError {
    /// No allocation policy has been adopted.
    #[error(
        "no allocation policy is in force: one must be adopted by a distribution_approval vote"
    )]
    NoPolicy,
    /// Nothing to distribute.
    #[error("no revenue is recorded for {0}")]
    NoRevenue(String),
    /// Expenses exceed revenue.
    #[error("expenses {expenses} exceed revenue {gross}: nothing to distribute")]
    Negative {
        /// Revenue.
        gross: u64,
        /// Expenses.
        expenses: u64,
    },
    /// Already distributed.
    #[error("period {period} in {currency} was already distributed")]
    Done {
        /// Period.
        period: String,
        /// Currency.
        currency: String,
    },
    /// Amounts too large to add up exactly within 2^53−1.
    #[error("amounts overflow")]
    Overflow,
    /// State could not be read.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The policy in force, if any.
pub fn policy(s: &dyn StateRead) -> Result<Option<PolicyInForce>, StoreError> {
    read(s, POLICY_KEY)
}

/// The revenues of a period in a currency, in entry-id order.
pub fn revenues(
    s: &dyn StateRead,
    period: &str,
    currency: &str,
) -> Result<Vec<Revenue>, StoreError> {
    s.scan(&revenue_prefix(period, currency))?
        .iter()
        .map(|(_, v)| crate::records::decode(v))
        .collect()
}

/// The expenses of a period in a currency, in entry-id order.
pub fn expenses(
    s: &dyn StateRead,
    period: &str,
    currency: &str,
) -> Result<Vec<Expense>, StoreError> {
    s.scan(&expense_prefix(period, currency))?
        .iter()
        .map(|(_, v)| crate::records::decode(v))
        .collect()
}

/// The recorded distribution of a period in a currency.
pub fn distribution(
    s: &dyn StateRead,
    period: &str,
    currency: &str,
) -> Result<Option<Distribution>, StoreError> {
    read(s, &distribution_key(period, currency))
}

/// A sum that stays within 2^53−1 (a JSON-safe integer), or `Overflow`.
fn exact_sum(it: impl Iterator<Item = u64>) -> Result<u64, DistributionError> {
    let mut total = 0u64;
    for v in it {
        total = total.checked_add(v).ok_or(DistributionError::Overflow)?;
    }
    if total > coopledger_ledger::codec::MAX_SAFE_INTEGER as u64 {
        return Err(DistributionError::Overflow);
    }
    Ok(total)
}

/// Computes the distribution of `period` in `currency` from the state: the revenues and
/// expenses recorded for it, the policy in force, and the data uses the revenues paid for. A
/// member shares only if still an active member now and their data was in at least one paid use
/// (which the consent rules admitted only under their valid consent for its purpose and
/// recipient); their basis is the number of such uses.
pub fn compute(
    s: &dyn StateRead,
    period: &str,
    currency: &str,
) -> Result<Distribution, DistributionError> {
    if distribution(s, period, currency)?.is_some() {
        return Err(DistributionError::Done {
            period: period.into(),
            currency: currency.into(),
        });
    }
    let p = policy(s)?.ok_or(DistributionError::NoPolicy)?;
    let revs = revenues(s, period, currency)?;
    if revs.is_empty() {
        return Err(DistributionError::NoRevenue(format!(
            "{period} in {currency}"
        )));
    }
    let exps = expenses(s, period, currency)?;
    let gross = exact_sum(revs.iter().map(|r| r.amount))?;
    let expense_total = exact_sum(exps.iter().map(|e| e.amount))?;
    let net = gross
        .checked_sub(expense_total)
        .ok_or(DistributionError::Negative {
            gross,
            expenses: expense_total,
        })?;
    let buckets = apportion(
        net,
        &[
            p.policy.reserve_ppm,
            p.policy.community_ppm,
            p.policy.pool_ppm,
        ],
    )
    .ok_or(DistributionError::Overflow)?;
    let (reserve, community, pool) = match buckets.as_slice() {
        [r, c, m] => (*r, *c, *m),
        _ => return Err(DistributionError::Overflow),
    };
    let mut basis: BTreeMap<String, u64> = BTreeMap::new();
    for r in &revs {
        for u in &r.uses {
            let Some(id) = crate::parse_id(u) else {
                continue;
            };
            if let Some(used) = crate::consent::data_use(s, &id)? {
                for m in used.members {
                    *basis.entry(m).or_default() += 1;
                }
            }
        }
    }
    let mut sharing: Vec<(String, u64)> = Vec::new();
    for (m, b) in basis {
        let active =
            crate::records::member(s, &m)?.is_some_and(|r| r.status == crate::MemberStatus::Active);
        if active {
            sharing.push((m, b));
        }
    }
    let weights: Vec<u64> = sharing
        .iter()
        .map(|(_, b)| match p.policy.split {
            Split::Equal => 1,
            Split::Contribution => *b,
        })
        .collect();
    let (parts, unshared) = match apportion(pool, &weights) {
        Some(parts) => (parts, 0),
        None => (vec![0; weights.len()], pool),
    };
    // An empty pool pays nobody: no zero lines (policies that name their fund; older ones
    // listed every sharing member at zero, and their distributions recount as they were).
    let no_pool = pool == 0 && p.policy.community_fund.is_some();
    let lines = sharing
        .into_iter()
        .filter(|_| !no_pool)
        .zip(parts)
        .map(|((member, basis), amount)| Line {
            member,
            basis,
            amount,
            below_minimum: amount < p.policy.min_payout,
        })
        .collect();
    Ok(Distribution {
        period: period.into(),
        currency: currency.into(),
        policy_version: p.version,
        revenues: revs.iter().map(|r| r.id.clone()).collect(),
        expenses: exps.iter().map(|e| e.id.clone()).collect(),
        gross,
        expense_total,
        net,
        reserve,
        community,
        community_fund: p.policy.community_fund.clone(),
        pool,
        unshared,
        lines,
        tie_break: TIE_BREAK.into(),
    })
}

/// The arithmetic every distribution must satisfy, whoever computed it; names the first break.
pub fn check_balance(d: &Distribution) -> Result<(), BalanceError> {
    if d.gross.checked_sub(d.expense_total) != Some(d.net) {
        return Err(BalanceError::Net {
            gross: d.gross,
            expenses: d.expense_total,
            net: d.net,
        });
    }
    let set_aside = d
        .reserve
        .checked_add(d.community)
        .and_then(|s| s.checked_add(d.pool));
    if set_aside != Some(d.net) {
        return Err(BalanceError::SetAside {
            reserve: d.reserve,
            community: d.community,
            pool: d.pool,
            net: d.net,
        });
    }
    let lines = d
        .lines
        .iter()
        .try_fold(d.unshared, |a, l| a.checked_add(l.amount));
    if lines != Some(d.pool) {
        return Err(BalanceError::Lines {
            lines,
            pool: d.pool,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn largest_remainder_with_declared_tie_break() {
        // 100 into three equal shares: 33.33… each; the one left over goes to the first.
        assert_eq!(apportion(100, &[1, 1, 1]), Some(vec![34, 33, 33]));
        // Remainders 0.5, 0.5, 0: the lower positions win the tie.
        assert_eq!(apportion(3, &[1, 1, 4]), Some(vec![1, 0, 2]));
        assert_eq!(apportion(0, &[0, 0]), Some(vec![0, 0]));
        assert_eq!(apportion(5, &[0, 0]), None);
        assert_eq!(apportion(7, &[]), None);
        // ppm buckets of an odd net.
        assert_eq!(
            apportion(101, &[200_000, 100_000, 700_000]),
            Some(vec![20, 10, 71])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Sums are exact, every part is within one minor unit of its exact share (floor or
        /// floor + 1), the +1s go to the largest remainders, and permuting the input permutes
        /// the output the same way when remainders are distinct.
        #[test]
        fn apportion_is_exact_and_fair(
            total in 0u64..(1u64 << 53),
            weights in proptest::collection::vec(0u64..1_000_000_000, 1..60),
        ) {
            let Some(parts) = apportion(total, &weights) else {
                prop_assert!(weights.iter().all(|w| *w == 0) && total > 0);
                return Ok(());
            };
            prop_assert_eq!(parts.iter().map(|p| u128::from(*p)).sum::<u128>(), u128::from(total));
            let w: u128 = weights.iter().map(|w| u128::from(*w)).sum();
            let mut plus_one_rems = Vec::new();
            let mut floor_rems = Vec::new();
            for (p, wi) in parts.iter().zip(&weights) {
                let exact = u128::from(total) * u128::from(*wi);
                let floor = exact / w;
                prop_assert!(u128::from(*p) == floor || u128::from(*p) == floor + 1);
                if u128::from(*p) == floor + 1 { plus_one_rems.push(exact % w) } else { floor_rems.push(exact % w) }
            }
            // Nobody left at the floor has a larger remainder than somebody given one more.
            if let (Some(min_up), Some(max_down)) = (plus_one_rems.iter().min(), floor_rems.iter().max()) {
                prop_assert!(min_up >= max_down);
            }
            // Deterministic: the same input, the same output.
            prop_assert_eq!(apportion(total, &weights), Some(parts.clone()));
            // Order: reversing the input reverses the output wherever no tie is involved.
            let mut rev = weights.clone();
            rev.reverse();
            let mut back = apportion(total, &rev).unwrap_or_default();
            back.reverse();
            let rem = |wi: u64| (u128::from(total) * u128::from(wi)) % w;
            let mut counts = BTreeMap::new();
            for wi in &weights { *counts.entry(rem(*wi)).or_insert(0u32) += 1; }
            for (i, wi) in weights.iter().enumerate() {
                if counts[&rem(*wi)] == 1 {
                    prop_assert_eq!(back[i], parts[i]);
                }
            }
        }
    }
}
