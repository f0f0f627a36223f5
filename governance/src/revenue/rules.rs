//! Revenue rules: `revenue.record` and `revenue.expense` by the treasurer;
//! `revenue.distribute`, accepted only if it is exactly the distribution computed from the log
//! under the policy the members adopted; then `revenue.payment` against its lines and
//! `revenue.unclaimed` after the claim period. Records and arithmetic are in [`crate::revenue`].

use crate::consent;
use crate::genesis::Role;
use crate::payload::{malformed, Fields};
use crate::revenue::{
    self, check_balance, distribution_key, expense_prefix, paid_use_key, revenue_prefix,
    settlement_key, Distribution, DistributionError, Expense, Payment, PaymentStatus, Revenue,
    Settlement, UnclaimedTransfer,
};
use crate::rules::{rule, write, Signer};
use coopledger_ledger::codec::{b64_encode, MAX_SAFE_INTEGER};
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde_json::Value;

/// An ISO 4217 currency code: three uppercase letters.
fn currency(f: &Fields<'_>) -> Result<String, ApplyError> {
    f.value("currency")
        .and_then(Value::as_str)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .map(str::to_owned)
        .ok_or_else(|| malformed("currency", "must be an ISO 4217 code such as EUR").into())
}

/// An accounting period label, an identifier (e.g. `2026-q3`).
fn period(f: &Fields<'_>) -> Result<String, ApplyError> {
    Ok(f.ident("period")?)
}

/// A positive amount in minor units.
fn amount(f: &Fields<'_>) -> Result<u64, ApplyError> {
    f.value("amount")
        .and_then(Value::as_u64)
        .filter(|a| *a >= 1 && *a <= MAX_SAFE_INTEGER as u64)
        .ok_or_else(|| {
            malformed(
                "amount",
                "must be a positive integer number of minor units (cents), no decimals",
            )
            .into()
        })
}

fn not_distributed(view: &StateView<'_>, period: &str, cur: &str) -> Result<(), ApplyError> {
    if revenue::distribution(view, period, cur)?.is_some() {
        return Err(rule(
            "revenue.closed",
            format!("body.payload.period: {period} in {cur} was already distributed"),
        ));
    }
    Ok(())
}

/// `revenue.record {payer, amount, currency, period, evidence, purpose, uses[]}` — by the
/// treasurer: what a party paid for which recorded data uses (all of the revenue's purpose and
/// to the payer, each paid for once).
pub(crate) fn record(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Treasurer)?;
    let f = Fields::new(
        &env.body().payload,
        &[
            "payer", "amount", "currency", "period", "evidence", "purpose", "uses",
        ],
    )?;
    let payer = f.ident("payer")?;
    if consent::party(view, &payer)?.is_none() {
        return Err(rule(
            "party.unknown",
            format!("body.payload.payer: no registered party {payer:?}"),
        ));
    }
    let (amount, cur, period) = (amount(&f)?, currency(&f)?, period(&f)?);
    let evidence = b64_encode(f.digest("evidence")?);
    let purpose = f.text("purpose", 80)?;
    let uses = f
        .value("uses")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 1000)
        .ok_or_else(|| malformed("uses", "must list 1 to 1000 data-use ids it pays for"))?;
    not_distributed(view, &period, &cur)?;
    let id = env.entry_id();
    let hex_id = hex::encode(id.as_bytes());
    let mut ids = Vec::with_capacity(uses.len());
    for (i, u) in uses.iter().enumerate() {
        let field = format!("body.payload.uses[{i}]");
        let uid = u
            .as_str()
            .and_then(crate::parse_id)
            .ok_or_else(|| malformed(&format!("uses[{i}]"), "must be a data-use id"))?;
        let used = consent::data_use(view, &uid)?
            .ok_or_else(|| rule("revenue.use", format!("{field}: no such data use")))?;
        if used.purpose != purpose {
            return Err(rule(
                "revenue.purpose",
                format!(
                    "{field}: the use was for {}, the revenue is for {purpose}",
                    used.purpose
                ),
            ));
        }
        if used.recipient != payer {
            return Err(rule(
                "revenue.payer",
                format!(
                    "{field}: the data went to {}, not to {payer}",
                    used.recipient
                ),
            ));
        }
        if view.get(&paid_use_key(&uid))?.is_some() {
            return Err(rule(
                "revenue.use_paid",
                format!("{field}: this use is already paid for by another revenue"),
            ));
        }
        view.put(&paid_use_key(&uid), hex_id.clone().into_bytes());
        ids.push(used.id);
    }
    let r = Revenue {
        id: hex_id,
        payer,
        amount,
        currency: cur.clone(),
        period: period.clone(),
        evidence,
        purpose,
        uses: ids,
        index: ctx.index,
    };
    write(
        view,
        &[revenue_prefix(&period, &cur), id.as_bytes().to_vec()].concat(),
        &r,
    )
}

/// `revenue.expense {payee, amount, currency, period, evidence}` — by the treasurer.
pub(crate) fn expense(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Treasurer)?;
    let f = Fields::new(
        &env.body().payload,
        &["payee", "amount", "currency", "period", "evidence"],
    )?;
    let payee = f.text("payee", 120)?;
    let (amount, cur, period) = (amount(&f)?, currency(&f)?, period(&f)?);
    let evidence = b64_encode(f.digest("evidence")?);
    not_distributed(view, &period, &cur)?;
    let id = env.entry_id();
    let e = Expense {
        id: hex::encode(id.as_bytes()),
        payee,
        amount,
        currency: cur.clone(),
        period: period.clone(),
        evidence,
        index: ctx.index,
    };
    write(
        view,
        &[expense_prefix(&period, &cur), id.as_bytes().to_vec()].concat(),
        &e,
    )
}

/// `revenue.distribute {period, currency, distribution}` — by the treasurer; accepted only if
/// `distribution` balances and is exactly the one computed from the log.
pub(crate) fn distribute(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Treasurer)?;
    let f = Fields::new(&env.body().payload, &["period", "currency", "distribution"])?;
    let (period, cur) = (period(&f)?, currency(&f)?);
    let given: Distribution =
        serde_json::from_value(f.value("distribution").cloned().unwrap_or(Value::Null))
            .map_err(|e| malformed("distribution", format!("not a distribution: {e}")))?;
    if given.currency != cur || given.period != period {
        return Err(rule(
            "distribution.currency",
            format!(
                "body.payload.distribution is for {} in {}; one distribution is one period in one currency ({period} in {cur})",
                given.period, given.currency
            ),
        ));
    }
    check_balance(&given).map_err(|m| {
        rule(
            "distribution.unbalanced",
            format!("body.payload.distribution: {m}"),
        )
    })?;
    let computed = revenue::compute(view, &period, &cur).map_err(|e| match e {
        DistributionError::NoPolicy => rule("policy.none", e.to_string()),
        DistributionError::Done { .. } => rule("revenue.closed", e.to_string()),
        DistributionError::Storage(s) => ApplyError::Storage(s),
        other => rule("distribution.invalid", other.to_string()),
    })?;
    if let Some((i, l)) = given
        .lines
        .iter()
        .enumerate()
        .find(|(_, l)| !computed.lines.iter().any(|c| c.member == l.member))
    {
        return Err(rule(
            "distribution.ineligible",
            format!(
                "body.payload.distribution.lines[{i}]: {} has no share: not an active member whose consented data was in a paid use",
                l.member
            ),
        ));
    }
    if given != computed {
        return Err(rule(
            "distribution.mismatch",
            "body.payload.distribution differs from the distribution computed from the log (revenue_preview shows it)",
        ));
    }
    write(view, &distribution_key(&period, &cur), &computed)?;
    write(
        view,
        &settlement_key(&period, &cur),
        &Settlement {
            index: ctx.index,
            ms: ctx.batch_time_ms,
            payments: Default::default(),
            unclaimed: None,
        },
    )
}

fn recorded(
    view: &StateView<'_>,
    period: &str,
    cur: &str,
) -> Result<(Distribution, Settlement), ApplyError> {
    let d = revenue::distribution(view, period, cur)?.ok_or_else(|| {
        rule(
            "distribution.none",
            format!("body.payload.period: no distribution of {period} in {cur} is recorded"),
        )
    })?;
    let s = revenue::settlement(view, period, cur)?
        .ok_or_else(|| crate::rules::corrupt("distribution without settlement"))?;
    Ok((d, s))
}

/// `revenue.payment {period, currency, member, amount, reference, status}` — by the treasurer:
/// a payment (or a failed attempt) of one member's whole line.
pub(crate) fn payment(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Treasurer)?;
    let f = Fields::new(
        &env.body().payload,
        &[
            "period",
            "currency",
            "member",
            "amount",
            "reference",
            "status",
        ],
    )?;
    let (period, cur) = (period(&f)?, currency(&f)?);
    let member = f.member("member")?;
    let amount = amount(&f)?;
    let reference = f.text("reference", 64)?;
    let status: PaymentStatus =
        serde_json::from_value(f.value("status").cloned().unwrap_or(Value::Null))
            .map_err(|_| malformed("status", "must be paid or failed"))?;
    let (d, mut s) = recorded(view, &period, &cur)?;
    if s.unclaimed.is_some() {
        return Err(rule(
            "payment.closed",
            "the unpaid lines of this distribution were already transferred as unclaimed",
        ));
    }
    let line = d.lines.iter().find(|l| l.member == member).ok_or_else(|| {
        rule(
            "payment.line",
            format!("body.payload.member: {member} has no line in this distribution"),
        )
    })?;
    if line.below_minimum {
        return Err(rule(
            "payment.minimum",
            format!(
                "body.payload.member: the line ({}) is below the policy's minimum payout",
                line.amount
            ),
        ));
    }
    if amount != line.amount {
        return Err(rule(
            "payment.amount",
            format!(
                "body.payload.amount: the line is {} {cur}; a payment pays the whole line",
                line.amount
            ),
        ));
    }
    if s.payments
        .get(&member)
        .is_some_and(|p| p.status == PaymentStatus::Paid)
    {
        return Err(rule(
            "payment.twice",
            format!("body.payload.member: the line of {member} is already paid"),
        ));
    }
    s.payments.insert(
        member.clone(),
        Payment {
            member,
            amount,
            reference,
            status,
            index: ctx.index,
        },
    );
    write(view, &settlement_key(&period, &cur), &s)
}

/// `revenue.unclaimed {period, currency}` — by the treasurer, once the policy's claim period has
/// passed since the distribution: every unpaid line (and any unshared pool) goes where the
/// policy applied to it says. Final.
pub(crate) fn unclaimed(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Treasurer)?;
    let f = Fields::new(&env.body().payload, &["period", "currency"])?;
    let (period, cur) = (period(&f)?, currency(&f)?);
    let (d, mut s) = recorded(view, &period, &cur)?;
    if s.unclaimed.is_some() {
        return Err(rule(
            "payment.closed",
            "unclaimed amounts were already transferred",
        ));
    }
    let p = revenue::policy_version(view, d.policy_version)?
        .ok_or_else(|| crate::rules::corrupt("the distribution's policy is missing"))?;
    let deadline =
        s.ms.saturating_add(p.policy.claim_days.saturating_mul(86_400_000));
    if ctx.batch_time_ms < deadline {
        return Err(rule(
            "payment.claim_open",
            format!(
                "the claim period runs until {deadline} ms (node time {} ms)",
                ctx.batch_time_ms
            ),
        ));
    }
    let unpaid: Vec<&revenue::Line> = d
        .lines
        .iter()
        .filter(|l| {
            l.amount > 0
                && !s
                    .payments
                    .get(&l.member)
                    .is_some_and(|p| p.status == PaymentStatus::Paid)
        })
        .collect();
    let amount = unpaid
        .iter()
        .try_fold(d.unshared, |a, l| a.checked_add(l.amount))
        .ok_or_else(|| crate::rules::corrupt("unclaimed total overflows"))?;
    s.unclaimed = Some(UnclaimedTransfer {
        amount,
        to: p.policy.unclaimed,
        members: unpaid.iter().map(|l| l.member.clone()).collect(),
        index: ctx.index,
    });
    write(view, &settlement_key(&period, &cur), &s)
}
