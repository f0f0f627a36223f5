//! `coop revenue record|expense|policy|books|preview|distribute|show`: the treasurer's books.
//! Amounts are integer minor units (cents); a distribution is never typed in — `distribute`
//! signs exactly what the log implies (`revenue_preview`), and the rules recompute it.

use crate::gov::sign_and_submit;
use crate::keyfile;
use anyhow::{Context, Result};
use clap::Subcommand;
use coopledger_ledger::codec::b64_encode;
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
    /// A recorded distribution.
    Show {
        #[arg(long)]
        period: String,
        #[arg(long)]
        currency: String,
    },
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
            println!(
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
            println!(
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
            println!(
                "revenue.distribute accepted at index {} (entry id {id}): net {} {currency} = reserve {} + community {} + pool {} over {} member line(s)",
                r.index,
                d.net,
                d.reserve,
                d.community,
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
            println!(
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
            println!("revenue.unclaimed accepted at index {}", r.index);
        }
        RevenueCmd::Settlement { period, currency } => {
            crate::print_json(&c.settlement(period, currency).await?)?
        }
        RevenueCmd::Show { period, currency } => {
            crate::print_json(&c.distribution(period, currency).await?)?
        }
    }
    Ok(())
}
