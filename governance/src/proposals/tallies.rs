//! The node's tally entry: accepted only after the close, from the node, and only if it equals
//! the tally recomputed here from the state (`compute_tally`, the count of `tallying`).

use crate::bylaws::DecisionKind;
use crate::genesis::Role;
use crate::payload::Fields;
use crate::proposals::rules::{load, note_entry, require_open};
use crate::records::{
    self, member_key, open_key, prop_key, MemberStatus, ProposalStatus, Subject, Vote, BYLAWS_KEY,
};
use crate::rules::{corrupt, rule, write, Signer};
use crate::tally::Outcome;
use crate::tallying::{counted_ballots, tally, CountedBallot, TallyRecord};
use coopledger_ledger::StoreError;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateRead, StateView};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The tally of proposal `id` from the current state (the node records it when voting closes).
pub fn compute_tally(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<TallyRecord>, StoreError> {
    let Some(p) = records::proposal(s, id)? else {
        return Ok(None);
    };
    let electorate = records::electorate(s, &p)?;
    if p.secret.is_some() {
        let ballots: Vec<CountedBallot> = records::ballots(s, id)?
            .into_values()
            .map(|b| CountedBallot {
                class: b.class,
                vote: b.vote,
                by_proxy: false,
            })
            .collect();
        let participants = records::participations(s, id)?.len() as u64;
        return tally(&p, &electorate, &ballots)
            .map(|t| Some(t.with_participants(participants)))
            .map_err(|e| StoreError::Corrupt(format!("tally of proposal {}: {e}", p.id)));
    }
    let votes: BTreeMap<String, Vote> = records::votes(s, id)?
        .into_iter()
        .map(|(m, v)| (m, v.vote))
        .collect();
    let proxies: BTreeMap<String, String> = records::proxies(s, id)?
        .into_iter()
        .map(|(g, r)| (g, r.holder))
        .collect();
    let ballots = counted_ballots(&electorate, &votes, &proxies);
    tally(&p, &electorate, &ballots)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("tally of proposal {}: {e}", p.id)))
}

/// The payload of the `gov.tally` entry for proposal `id`, as the node signs it.
pub fn tally_entry_payload(
    s: &dyn StateRead,
    id: &[u8; 32],
) -> Result<Option<Map<String, Value>>, StoreError> {
    let Some(t) = compute_tally(s, id)? else {
        return Ok(None);
    };
    let mut m = Map::new();
    m.insert("proposal".into(), Value::String(hex::encode(id)));
    m.insert(
        "tally".into(),
        serde_json::to_value(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    );
    Ok(Some(m))
}

/// `gov.tally {proposal, tally}` — by the node, once voting has closed by node time. Refused
/// unless `tally` is exactly the tally recomputed here. Applies the effect of an adopted bylaws
/// amendment (if the bylaws have not changed since) or board election (the winner joins the
/// board).
pub(crate) fn record_tally(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.require_node()?;
    let f = Fields::new(&env.body().payload, &["proposal", "tally"])?;
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    if ctx.batch_time_ms < p.closes_ms {
        return Err(rule(
            "tally.early",
            format!(
                "voting closes at {} ms; node time is {} ms",
                p.closes_ms, ctx.batch_time_ms
            ),
        ));
    }
    if p.secret.as_ref().is_some_and(|s| s.opened_at.is_none()) {
        return Err(rule(
            "tally.ballots",
            "the ballot box of this secret ballot has not been published (gov.ballots)",
        ));
    }
    let t = compute_tally(view, &id)?.ok_or_else(|| corrupt("proposal vanished"))?;
    let expected = serde_json::to_value(&t).map_err(|e| corrupt(e.to_string()))?;
    if f.value("tally") != Some(&expected) {
        return Err(rule(
            "tally.mismatch",
            "body.payload.tally differs from the tally recomputed from the proposal's votes",
        ));
    }
    let mut applied = false;
    if t.outcome == Outcome::Adopted {
        match (&p.subject, p.kind) {
            (Subject::Bylaws { bylaws }, DecisionKind::BylawsAmendment) => {
                let current = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
                if current.version == p.bylaws_version {
                    write(view, BYLAWS_KEY, bylaws.as_ref())?;
                    applied = true;
                }
            }
            (Subject::Policy { policy }, DecisionKind::DistributionApproval) => {
                let version = crate::revenue::policy(view)?.map_or(1, |p| p.version + 1);
                let record = crate::revenue::PolicyInForce {
                    policy: policy.as_ref().clone(),
                    proposal: hex::encode(id),
                    tally_index: ctx.index,
                    version,
                };
                write(view, crate::revenue::POLICY_KEY, &record)?;
                write(view, &crate::revenue::policy_version_key(version), &record)?;
                applied = true;
            }
            (_, DecisionKind::BoardElection) => {
                let winner = t
                    .winner
                    .and_then(|w| p.choices.get(w as usize))
                    .cloned()
                    .unwrap_or_default();
                if let Some(mut m) = records::member(view, &winner)? {
                    if m.status == MemberStatus::Active && !m.roles.contains(&Role::Board) {
                        m.roles.push(Role::Board);
                        m.roles.sort();
                        write(view, &member_key(&m.id), &m)?;
                    }
                    applied = m.status == MemberStatus::Active;
                }
            }
            _ => {}
        }
    }
    view.delete(&open_key(p.closes_ms, &id));
    p.status = ProposalStatus::Closed {
        index: ctx.index,
        applied,
    };
    p.tally = Some(t);
    write(view, &prop_key(&id), &p)?;
    note_entry(view, &id, ctx);
    Ok(())
}
