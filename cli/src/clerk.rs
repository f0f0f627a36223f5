//! The node's returning officer. When a secret ballot is proposed it publishes the class keys
//! (`gov.ballot_key`); when a proposal's voting closes (by the node clock) it publishes the
//! ballot box of a secret ballot (`gov.ballots`) and then records the `gov.tally`, all signed by
//! the node key. The rules accept each only if it checks (the tally only if it equals their own
//! recount), so the clerk holds no power of its own: it only says when.

use anyhow::{anyhow, Result};
use coopledger_governance::records::{due_for_tally, open_proposals, proposal};
use coopledger_governance::rules::tally_entry_payload;
use coopledger_governance::CoopRules;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::{Body, Log, SubmitError};
use coopledger_rpc::BallotBox;
use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How often the clerk looks for proposals that need it.
pub const PERIOD: Duration = Duration::from_millis(200);

/// Runs until the task is aborted.
pub async fn run(log: Arc<Log<CoopRules>>, key: SigningKey, ballots: Arc<BallotBox>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if log.failure().is_some() {
            return;
        }
        if let Err(e) = publish_ballot_keys(&log, &key, &ballots).await {
            tracing::warn!(error = %e, "could not publish ballot keys; retrying");
        }
        if let Err(e) = close_due(&log, &key, &ballots).await {
            tracing::warn!(error = %e, "could not record a tally; retrying");
        }
    }
}

/// Signs and submits one node entry; `Ok(false)` if the rules refused it (logged).
async fn record(
    log: &Log<CoopRules>,
    key: &SigningKey,
    kind: &str,
    payload: Map<String, Value>,
) -> Result<bool> {
    let signer = key.verifying_key().to_bytes();
    let env = Body {
        coop: log.origin().to_owned(),
        kind: kind.into(),
        version: 1,
        signer,
        seq: log.next_seq(&signer)?,
        ts: now_ms(),
        payload,
    }
    .sign(key)
    .map_err(|r| anyhow!("{kind} entry: {r}"))?;
    match log.submit(env).await {
        Ok(r) => {
            tracing::info!(kind, index = r.index, "recorded");
            Ok(true)
        }
        // E.g. a vote sequenced just before the close landed after the recount was made: the
        // rules refuse the stale tally and the next round recounts.
        Err(SubmitError::Rejected(r)) => {
            tracing::debug!(kind, refusal = %r, "refused; will retry");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Publishes the class keys of every open secret ballot that has none yet.
pub async fn publish_ballot_keys(
    log: &Log<CoopRules>,
    key: &SigningKey,
    ballots: &BallotBox,
) -> Result<usize> {
    let mut published = 0;
    for id in open_proposals(log)? {
        let Some(p) = proposal(log, &id)? else {
            continue;
        };
        if p.secret.as_ref().is_some_and(|s| s.keys_index.is_none()) && now_ms() < p.closes_ms {
            let mut payload = Map::new();
            payload.insert("proposal".into(), Value::String(hex::encode(id)));
            payload.insert("keys".into(), Value::Object(ballots.public_keys(&id, &p)));
            published += usize::from(record(log, key, "gov.ballot_key", payload).await?);
        }
    }
    Ok(published)
}

/// Publishes the ballot box (secret ballots) and records the tally of every proposal due now;
/// returns how many tallies were recorded.
pub async fn close_due(
    log: &Log<CoopRules>,
    key: &SigningKey,
    ballots: &BallotBox,
) -> Result<usize> {
    let mut recorded = 0;
    for id in due_for_tally(log, now_ms())? {
        for batch in ballots.batches(log, &id)? {
            record(log, key, "gov.ballots", batch).await?;
        }
        let Some(payload) = tally_entry_payload(log, &id)? else {
            continue;
        };
        recorded += usize::from(record(log, key, "gov.tally", payload).await?);
    }
    Ok(recorded)
}
