//! The node's returning officer: when a proposal's voting closes (by the node clock), it records
//! the `gov.tally` entry, signed by the node key. The rules accept it only if it equals their own
//! recount, so the clerk holds no power of its own: it only says when.

use anyhow::{anyhow, Result};
use coopledger_governance::records::due_for_tally;
use coopledger_governance::rules::tally_entry_payload;
use coopledger_governance::CoopRules;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::{Body, Log, SubmitError};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::Duration;

/// How often the clerk looks for proposals whose voting has closed.
pub const PERIOD: Duration = Duration::from_millis(200);

/// Runs until the task is aborted.
pub async fn run(log: Arc<Log<CoopRules>>, key: SigningKey) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if log.failure().is_some() {
            return;
        }
        if let Err(e) = close_due(&log, &key).await {
            tracing::warn!(error = %e, "could not record a tally; retrying");
        }
    }
}

/// Records the tally of every proposal due now; returns how many were recorded.
pub async fn close_due(log: &Log<CoopRules>, key: &SigningKey) -> Result<usize> {
    let mut recorded = 0;
    for id in due_for_tally(log, now_ms())? {
        let Some(payload) = tally_entry_payload(log, &id)? else {
            continue;
        };
        let signer = key.verifying_key().to_bytes();
        let env = Body {
            coop: log.origin().to_owned(),
            kind: "gov.tally".into(),
            version: 1,
            signer,
            seq: log.next_seq(&signer)?,
            ts: now_ms(),
            payload,
        }
        .sign(key)
        .map_err(|r| anyhow!("tally entry: {r}"))?;
        match log.submit(env).await {
            Ok(r) => {
                recorded += 1;
                tracing::info!(proposal = %hex::encode(id), index = r.index, "tally recorded");
            }
            // A vote sequenced just before the close landed after the recount was made: the
            // rules refuse the stale tally and the next round recounts.
            Err(SubmitError::Rejected(r)) => {
                tracing::debug!(proposal = %hex::encode(id), refusal = %r, "tally refused; will recount");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(recorded)
}
