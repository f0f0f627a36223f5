//! `coop revenue record|expense|policy|books|preview|distribute|show`: the treasurer's books.
//! Amounts are integer minor units (cents); a distribution is never typed in — `distribute`
//! signs exactly what the log implies (`revenue_preview`), and the rules recompute it.

use crate::gov::sign_and_submit;
use anyhow::{Context, Result};
use clap::Subcommand;
use coopledger_governance::revenue_bundle::{
    line_state, RevenueBundle, RevenueReport, Statement, STATEMENT_FORMAT,
};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::NoteVerifier;
use coopledger_node::keyfile;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::RevenueApiClient;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// `coop revenue …`
#[derive(Debug, Subcommand)]
pub enum RevenueCmd {
    /// Record revenue (treasurer): what a party paid for which data uses.
    Record {
        #[arg(long)]
        key: PathBuf,
        /// Paying party id.
        #[arg(long)]
        payer: String,
        /// Minor units (cents).
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        period: String,
        /// Evidence file (invoice, contract); only its SHA-256 goes on the ledger.
        #[arg(long)]
        evidence: PathBuf,
        /// The purpose paid for (DPV), the same as every use's.
        #[arg(long)]
        purpose: String,
        /// A data-use id paid for, repeatable.
        #[arg(long = "use", required = true)]
        uses: Vec<String>,
    },
    /// Record an expense (treasurer).
    Expense {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        payee: String,
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        period: String,
        #[arg(long)]
        evidence: PathBuf,
    },
    /// The allocation policy in force.
    Policy,
    /// A period's revenues and expenses in one currency.
    Books {
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
    /// The distribution the log implies (what `distribute` will sign).
    Preview {
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
    /// Record the distribution the log implies (treasurer).
    Distribute {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
    /// Record the payment of a member's whole line (treasurer); `--failed` for a failed attempt.
    Pay {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        member: String,
        /// The payment's reference (bank transfer id; no personal data).
        #[arg(long)]
        reference: String,
        #[arg(long)]
        failed: bool,
    },
    /// After the claim period, move every unpaid line where the policy says (treasurer).
    Unclaimed {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
    /// Payments and the unclaimed transfer of a distribution.
    Settlement {
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
    /// A member's statement: their line, its payment, the distribution, the policy and its
    /// adopting vote, all proved; written to a file that `coop verify-bundle` checks offline.
    Statement {
        #[command(flatten)]
        who: crate::who::Who,
        /// One period only (with --currency); default: every distribution with a line of theirs.
        #[arg(long, requires = "currency")]
        period: Option<String>,
        #[arg(long, requires = "period")]
        currency: Option<String>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// The treasurer's reconciliation: revenue, expenses, set-asides, every line and its payment,
    /// differences. Checked against the node's key first; `-o` also writes the bundle.
    Reconcile {
        #[arg(long)]
        period: String,
        /// One currency; default: every currency the period was distributed in.
        #[arg(long)]
        currency: Option<String>,
        /// table, json or csv.
        #[arg(long, default_value = "table")]
        format: String,
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// A recorded distribution.
    Show {
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
}

async fn check_with_node(c: &HttpClient, b: &RevenueBundle) -> Result<RevenueReport> {
    use coopledger_rpc::LedgerApiClient;
    let vkey = NoteVerifier::parse(&c.verifier_key().await?)
        .map_err(|e| anyhow::anyhow!("node verifier key: {e}"))?;
    b.verify(&vkey)
        .map_err(|e| anyhow::anyhow!("the node served a revenue bundle that does not verify: {e}"))
}

/// Prints a verified member statement.
pub fn print_statement(r: &RevenueReport, member: &str) {
    let d = &r.distribution;
    let line = d.lines.iter().find(|l| l.member == member);
    outln!(
        "statement of {member}: {} in {} (checkpoint {} of {})",
        d.period,
        d.currency,
        r.size,
        r.origin
    );
    if let Some(l) = line {
        outln!(
            "  your line: {} {} (basis {} of {}), {}",
            l.amount,
            d.currency,
            l.basis,
            d.lines.iter().map(|l| l.basis).sum::<u64>(),
            line_state(&r.settlement, l)
        );
    }
    outln!(
        "  gross {} − expenses {} = net {}; reserve {} + community {} + pool {} (policy v{}, split {:?}, adopted by proposal {} at entry {})",
        d.gross,
        d.expense_total,
        d.net,
        d.reserve,
        d.community,
        d.pool,
        r.policy.version,
        r.policy.policy.split,
        r.policy.proposal,
        r.policy.tally_index
    );
}

/// Prints a verified reconciliation as a table, JSON or CSV.
pub fn print_reconciliation(r: &RevenueReport, format: &str) -> Result<()> {
    let rec = coopledger_governance::revenue_bundle::reconciliation(r);
    match format {
        "json" => crate::print_json(&json!({
            "period": rec.period, "currency": rec.currency, "checkpoint": rec.checkpoint,
            "revenues": r.revenues, "expenses": r.expenses, "gross": rec.gross,
            "expenseTotal": rec.expense_total, "net": rec.net, "reserve": rec.reserve,
            "community": rec.community, "pool": rec.pool, "unshared": rec.unshared,
            "unclaimed": r.settlement.unclaimed,
            "lines": rec.lines,
        }))?,
        "csv" => {
            outln!("member,basis,amount,paid,difference,state");
            for l in &rec.lines {
                outln!(
                    "{},{},{},{},{},{}",
                    l.member,
                    l.basis,
                    l.amount,
                    l.paid,
                    l.difference,
                    l.state
                );
            }
        }
        "table" => {
            outln!(
                "reconciliation {} {} (checkpoint {}): {} revenue(s) gross {}, {} expense(s) {}, net {}",
                rec.period,
                rec.currency,
                rec.checkpoint,
                rec.revenues,
                rec.gross,
                rec.expenses,
                rec.expense_total,
                rec.net
            );
            outln!(
                "set aside: reserve {}, community {}, pool {} (unshared {}); unclaimed transferred {}",
                rec.reserve, rec.community, rec.pool, rec.unshared, rec.unclaimed
            );
            outln!(
                "{:<20} {:>6} {:>12} {:>12} {:>12}  state",
                "member",
                "basis",
                "amount",
                "paid",
                "difference"
            );
            for l in &rec.lines {
                outln!(
                    "{:<20} {:>6} {:>12} {:>12} {:>12}  {}",
                    l.member,
                    l.basis,
                    l.amount,
                    l.paid,
                    l.difference,
                    l.state
                );
            }
            outln!(
                "{:<20} {:>6} {:>12} {:>12} {:>12}",
                "total",
                "",
                rec.due,
                rec.paid,
                rec.difference
            );
        }
        other => anyhow::bail!("--format {other:?}: expected table, json or csv"),
    }
    Ok(())
}

fn digest_of(path: &PathBuf) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(b64_encode(Sha256::digest(&bytes)))
}

/// Runs `coop revenue …`.
pub async fn revenue(c: &HttpClient, cmd: RevenueCmd) -> Result<()> {
    match cmd {
        RevenueCmd::Record {
            key,
            payer,
            amount,
            currency,
            period,
            evidence,
            purpose,
            uses,
        } => {
            let k = keyfile::read(&key)?;
            let p = json!({"payer": payer, "amount": amount, "currency": currency,
                "period": period, "evidence": digest_of(&evidence)?, "purpose": purpose,
                "uses": uses});
            let (r, id) = sign_and_submit(c, &k, "revenue.record", p).await?;
            outln!(
                "revenue.record accepted at index {} (entry id {id})",
                r.index
            );
        }
        RevenueCmd::Expense {
            key,
            payee,
            amount,
            currency,
            period,
            evidence,
        } => {
            let k = keyfile::read(&key)?;
            let p = json!({"payee": payee, "amount": amount, "currency": currency,
                "period": period, "evidence": digest_of(&evidence)?});
            let (r, id) = sign_and_submit(c, &k, "revenue.expense", p).await?;
            outln!(
                "revenue.expense accepted at index {} (entry id {id})",
                r.index
            );
        }
        RevenueCmd::Policy => crate::print_json(&c.policy().await?)?,
        RevenueCmd::Books { period, currency } => {
            crate::print_json(&c.ledger(period, currency).await?)?
        }
        RevenueCmd::Preview { period, currency } => {
            crate::print_json(&c.preview(period, currency).await?)?
        }
        RevenueCmd::Distribute {
            key,
            period,
            currency,
        } => {
            let k = keyfile::read(&key)?;
            let d = c.preview(period.clone(), currency.clone()).await?;
            let p = json!({"period": period, "currency": currency, "distribution": d});
            let (r, id) = sign_and_submit(c, &k, "revenue.distribute", p).await?;
            outln!(
                "revenue.distribute accepted at index {} (entry id {id}): net {} {currency} = reserve {} + community {}{} + pool {} over {} member line(s)",
                r.index,
                d.net,
                d.reserve,
                d.community,
                d.community_fund
                    .as_deref()
                    .map(|f| format!(" (to {f})"))
                    .unwrap_or_default(),
                d.pool,
                d.lines.len()
            );
        }
        RevenueCmd::Pay {
            key,
            period,
            currency,
            member,
            reference,
            failed,
        } => {
            let k = keyfile::read(&key)?;
            let d = c.distribution(period.clone(), currency.clone()).await?;
            let amount = d
                .lines
                .iter()
                .find(|l| l.member == member)
                .map(|l| l.amount)
                .ok_or_else(|| anyhow::anyhow!("{member} has no line in this distribution"))?;
            let status = if failed { "failed" } else { "paid" };
            let p = json!({"period": period, "currency": currency, "member": member,
                "amount": amount, "reference": reference, "status": status});
            let (r, _) = sign_and_submit(c, &k, "revenue.payment", p).await?;
            outln!(
                "revenue.payment accepted at index {}: {amount} {currency} to {member}, {status}",
                r.index
            );
        }
        RevenueCmd::Unclaimed {
            key,
            period,
            currency,
        } => {
            let k = keyfile::read(&key)?;
            let p = json!({"period": period, "currency": currency});
            let (r, _) = sign_and_submit(c, &k, "revenue.unclaimed", p).await?;
            outln!("revenue.unclaimed accepted at index {}", r.index);
        }
        RevenueCmd::Settlement { period, currency } => {
            crate::print_json(&c.settlement(period, currency).await?)?
        }
        RevenueCmd::Statement {
            who,
            period,
            currency,
            out,
        } => {
            let member = who.id(c).await?;
            let st = match (period, currency) {
                (Some(p), Some(cur)) => Statement {
                    format: STATEMENT_FORMAT.into(),
                    member: member.clone(),
                    bundles: vec![c.bundle(p, cur, Some(member.clone())).await?],
                },
                _ => c.statement(member.clone()).await?,
            };
            for b in &st.bundles {
                print_statement(&check_with_node(c, b).await?, &member);
            }
            std::fs::write(&out, serde_json::to_string_pretty(&st)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            outln!(
                "statement of {member} ({} distribution(s)) written to {}",
                st.bundles.len(),
                out.display()
            );
        }
        RevenueCmd::Reconcile {
            period,
            currency,
            format,
            out,
        } => {
            let currencies = match currency {
                Some(cur) => vec![cur],
                None => c
                    .distributions()
                    .await?
                    .into_iter()
                    .filter(|d| d.period == period)
                    .map(|d| d.currency)
                    .collect(),
            };
            if currencies.is_empty() {
                anyhow::bail!("no distribution of {period} is recorded");
            }
            if out.is_some() && currencies.len() > 1 {
                anyhow::bail!(
                    "{period} was distributed in {}: give --currency to write one bundle",
                    currencies.join(", ")
                );
            }
            for cur in currencies {
                let b = c.bundle(period.clone(), cur, None).await?;
                let report = check_with_node(c, &b).await?;
                if let Some(out) = &out {
                    std::fs::write(out, serde_json::to_string_pretty(&b)? + "\n")
                        .with_context(|| format!("cannot write {}", out.display()))?;
                }
                print_reconciliation(&report, &format)?;
            }
        }
        RevenueCmd::Show { period, currency } => {
            crate::print_json(&c.distribution(period, currency).await?)?
        }
    }
    Ok(())
}
