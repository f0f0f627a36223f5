//! Closing a proposal: which ballots count (current direct votes; a proxy holder's vote for
//! grantors who did not vote themselves) and the tally record the node publishes. One pure
//! function serves the rules (which refuse a tally entry that differs from it) and
//! `coop tally verify` (which recomputes it offline from the proposal's proven entries).

use crate::bylaws::Method;
use crate::records::{ProposalRecord, Vote};
use crate::tally::{
    class_weights, instant_runoff, participation_share, tally_choices, tally_yes_no, Ballot,
    ChoiceTally, ClassCount, ClassId, IrvTally, Outcome, Share, TallyError, YesNoRules, YesNoTally,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A ballot that counts: the class it weighs in and the vote, and whether it came by proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedBallot {
    /// Class of the member whose vote this is (the grantor's, for a proxy vote).
    pub class: ClassId,
    /// The vote.
    pub vote: Vote,
    /// Cast by a proxy holder on the member's behalf.
    pub by_proxy: bool,
}

/// The figures of a tally, by method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TallyResult {
    /// Yes/no/abstain.
    YesNo(YesNoTally),
    /// Single choice (plurality) or approval.
    Choices(ChoiceTally),
    /// Ranked choice by instant runoff, every round.
    RankedChoice(IrvTally),
}

/// What the node records when a proposal closes; anyone can recompute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TallyRecord {
    /// Proposal id.
    pub proposal: String,
    /// Eligible members per voting class (frozen at creation).
    pub eligible: BTreeMap<ClassId, u64>,
    /// SHA-256 commitment to the frozen electorate (see [`electorate_digest`]), hex.
    pub electorate: String,
    /// Ballots counted (abstentions included).
    pub ballots: u64,
    /// Of which cast by proxy.
    pub by_proxy: u64,
    /// Participation on the quorum's basis.
    pub participation: Share,
    /// Whether the quorum was met.
    pub quorum_met: bool,
    /// The method's figures.
    pub result: TallyResult,
    /// The outcome.
    pub outcome: Outcome,
    /// The winning choice, for choice methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<u32>,
    /// Secret ballots: members who signed a participation (`ballots` can be fewer: a member may
    /// take part and never cast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<u64>,
}

impl TallyRecord {
    /// The same tally, stating how many took part in a secret ballot.
    pub fn with_participants(mut self, n: u64) -> TallyRecord {
        self.participants = Some(n);
        self
    }
}

/// `SHA-256("coopledger/electorate\0" ‖ Σ member ‖ 0x00 ‖ class ‖ 0x0A)` over the electorate in
/// member-id order, hex: binds a tally to one list of who could vote and in which class.
pub fn electorate_digest(electorate: &BTreeMap<String, ClassId>) -> String {
    let mut h = Sha256::new();
    h.update(b"coopledger/electorate\0");
    for (m, c) in electorate {
        h.update(m.as_bytes());
        h.update([0]);
        h.update(c.as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

/// The ballots that count: every member of the electorate with a direct vote; otherwise, if
/// they gave a proxy, their holder's direct vote (proxies do not chain); otherwise none.
pub fn counted_ballots(
    electorate: &BTreeMap<String, ClassId>,
    votes: &BTreeMap<String, Vote>,
    proxies: &BTreeMap<String, String>,
) -> Vec<CountedBallot> {
    electorate
        .iter()
        .filter_map(|(member, class)| {
            if let Some(v) = votes.get(member) {
                return Some(CountedBallot {
                    class: class.clone(),
                    vote: v.clone(),
                    by_proxy: false,
                });
            }
            let holder = proxies.get(member)?;
            votes.get(holder).map(|v| CountedBallot {
                class: class.clone(),
                vote: v.clone(),
                by_proxy: true,
            })
        })
        .collect()
}

/// Tallies `ballots` under the proposal's frozen rules.
pub fn tally(
    p: &ProposalRecord,
    electorate: &BTreeMap<String, ClassId>,
    ballots: &[CountedBallot],
) -> Result<TallyRecord, TallyError> {
    let mut frozen_counts: BTreeMap<ClassId, u64> = BTreeMap::new();
    for c in electorate.values() {
        *frozen_counts.entry(c.clone()).or_default() += 1;
    }
    let nonzero: BTreeMap<ClassId, u64> = p
        .eligible
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.clone(), *n))
        .collect();
    if frozen_counts != nonzero {
        return Err(TallyError::ElectorateMismatch);
    }
    let mut counts: BTreeMap<ClassId, ClassCount> = nonzero
        .iter()
        .map(|(c, n)| {
            (
                c.clone(),
                ClassCount {
                    eligible: *n,
                    ..ClassCount::default()
                },
            )
        })
        .collect();
    for b in ballots {
        let n = counts
            .get_mut(&b.class)
            .ok_or_else(|| TallyError::UnknownClass(b.class.clone()))?;
        match &b.vote {
            Vote::Yes => n.yes += 1,
            Vote::No => n.no += 1,
            Vote::Abstain => n.abstain += 1,
            Vote::Choices(c) if c.is_empty() => n.abstain += 1,
            Vote::Choices(_) => n.yes += 1,
        }
    }
    let weights = class_weights(&p.voting, &nonzero)?;
    let participation = participation_share(&p.rules.quorum, &weights, &counts)?;
    let quorum_met = crate::tally::Comparator::Gte.holds(&participation, &p.rules.quorum.minimum);
    let n_choices = u32::try_from(p.choices.len()).map_err(|_| TallyError::UnknownChoice(0))?;
    let tie = p
        .rules
        .tie_break
        .for_proposal(crate::payload::parse_id(&p.id).unwrap_or([0; 32]));
    let choice_ballots = || -> Vec<Ballot> {
        ballots
            .iter()
            .filter_map(|b| match &b.vote {
                Vote::Choices(c) if !c.is_empty() => Some(Ballot {
                    class: b.class.clone(),
                    choices: c.clone(),
                }),
                _ => None,
            })
            .collect()
    };
    let (result, outcome, winner) = match p.method {
        Method::YesNo => {
            let t = tally_yes_no(
                &YesNoRules {
                    mode: p.voting.clone(),
                    quorum: p.rules.quorum,
                    threshold: p.rules.threshold,
                    every_class: p.rules.every_class,
                },
                &counts,
            )?;
            let outcome = t.outcome;
            (TallyResult::YesNo(t), outcome, None)
        }
        Method::SingleChoice | Method::Approval => {
            let t = tally_choices(n_choices, &p.voting, &nonzero, &choice_ballots(), tie)?;
            let winner = t.winner;
            (
                TallyResult::Choices(t),
                choice_outcome(quorum_met, winner),
                winner,
            )
        }
        Method::RankedChoice => {
            let t = instant_runoff(n_choices, &p.voting, &nonzero, &choice_ballots(), tie)?;
            let winner = t.winner;
            (
                TallyResult::RankedChoice(t),
                choice_outcome(quorum_met, winner),
                winner,
            )
        }
    };
    Ok(TallyRecord {
        proposal: p.id.clone(),
        eligible: p.eligible.clone(),
        electorate: electorate_digest(electorate),
        ballots: ballots.len() as u64,
        by_proxy: ballots.iter().filter(|b| b.by_proxy).count() as u64,
        participation,
        quorum_met,
        result,
        outcome,
        winner: if outcome == Outcome::Adopted {
            winner
        } else {
            None
        },
        participants: None,
    })
}

fn choice_outcome(quorum_met: bool, winner: Option<u32>) -> Outcome {
    match (quorum_met, winner) {
        (false, _) => Outcome::NoQuorum,
        (true, Some(_)) => Outcome::Adopted,
        (true, None) => Outcome::Rejected,
    }
}
