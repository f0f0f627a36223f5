//! The node's returning officer. When a secret ballot is proposed it publishes the class keys
//! (`gov.ballot_key`); when a proposal's voting closes (by the node clock) it publishes the
//! ballot box of a secret ballot (`gov.ballots`) and then records the `gov.tally`, all signed by
//! the node key. The rules accept each only if it checks (the tally only if it equals their own
//! recount), so the clerk holds no power of its own: it only says when.

use crate::ballot_box::BallotBox;
use coopledger_governance::records::{due_for_tally, open_proposals, proposal};
use coopledger_governance::rules::tally_entry_payload;
use coopledger_governance::CoopRules;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{Log, OwnEntry, QueryError, SubmitError};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the clerk looks for proposals that need it.
pub const PERIOD: Duration = Duration::from_millis(200);

/// Why a round of the clerk's work stopped (retried at the next tick).
#[derive(Debug, thiserror::Error)]
pub enum ClerkError {
    /// The state could not be read.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The log did not take an entry (not a refusal by the rules: those are retried quietly).
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// What the clerk has done, for status pages, metrics and tests.
#[derive(Debug, Default)]
pub struct ClerkStats {
    recorded: AtomicU64,
    refused: AtomicU64,
}

impl ClerkStats {
    /// Entries the clerk recorded (ballot keys, ballot boxes, tallies).
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }
    /// Entries of the clerk the rules refused (each is retried at the next tick).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Runs until the task is aborted or the log stops.
pub async fn run(log: Arc<Log<CoopRules>>, ballots: Arc<BallotBox>, stats: Arc<ClerkStats>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if log.failure().is_some() {
            return;
        }
        if let Err(e) = publish_ballot_keys(&log, &ballots, &stats).await {
            tracing::warn!(error = %e, "could not publish ballot keys; retrying");
        }
        if let Err(e) = close_due(&log, &ballots, &stats).await {
            tracing::warn!(error = %e, "could not record a tally; retrying");
        }
    }
}

/// Submits one node entry (signed and numbered by the sequencer); `Ok(false)` if the rules
/// refused it (logged).
async fn record(
    log: &Log<CoopRules>,
    stats: &ClerkStats,
    kind: &str,
    payload: Map<String, Value>,
) -> Result<bool, ClerkError> {
    let own = OwnEntry {
        kind: kind.into(),
        version: 1,
        payload,
    };
    match log.submit_own(own).await {
        Ok(r) => {
            stats.recorded.fetch_add(1, Ordering::Relaxed);
            tracing::info!(kind, index = r.index, "recorded");
            Ok(true)
        }
        // E.g. a vote sequenced just before the close landed after the recount was made: the
        // rules refuse the stale tally and the next round recounts.
        Err(SubmitError::Rejected(r)) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(kind, refusal = %r, "refused; will retry");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Publishes the class keys of every open secret ballot that has none yet.
pub async fn publish_ballot_keys(
    log: &Log<CoopRules>,
    ballots: &BallotBox,
    stats: &ClerkStats,
) -> Result<usize, ClerkError> {
    let mut published = 0;
    for id in open_proposals(log)? {
        let Some(p) = proposal(log, &id)? else {
            continue;
        };
        if p.secret.as_ref().is_some_and(|s| s.keys_index.is_none()) && now_ms() < p.closes_ms {
            let payload = ballots.key_publication(&id, &p);
            published += usize::from(record(log, stats, "gov.ballot_key", payload).await?);
        }
    }
    Ok(published)
}

/// Publishes the ballot box (secret ballots) and records the tally of every proposal due now;
/// returns how many tallies were recorded.
pub async fn close_due(
    log: &Log<CoopRules>,
    ballots: &BallotBox,
    stats: &ClerkStats,
) -> Result<usize, ClerkError> {
    let mut recorded = 0;
    let due = due_for_tally(log, now_ms())?;
    if due.is_empty() {
        return Ok(0);
    }
    // Every vote sequenced in a batch that began before the close is now in the state, and no
    // later one can count: the recount below is final, so the tally is accepted the first time.
    log.settle().await?;
    for id in due {
        for batch in ballots.batches(log, &id)? {
            record(log, stats, "gov.ballots", batch).await?;
        }
        let Some(payload) = tally_entry_payload(log, &id)? else {
            continue;
        };
        recorded += usize::from(record(log, stats, "gov.tally", payload).await?);
    }
    Ok(recorded)
}
