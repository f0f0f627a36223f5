//! Choice methods: plurality and approval with the declared tie-break, and instant runoff with
//! every round published.

use super::*;

/// How a tie between choices is settled; declared in the bylaws, so never a judgement call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum TieBreak {
    /// A tie decides nothing.
    NoDecision,
    /// The choice listed first wins (and the one listed last is eliminated first).
    FirstListed,
    /// A lot anyone can redraw: choices ordered by `SHA-256(seed ‖ choice as u32 BE)`, lowest
    /// first; the seed is fixed when the proposal is created (its entry id).
    Lot {
        /// The seed, hex in JSON.
        #[serde(with = "hex_seed")]
        seed: [u8; 32],
    },
}

mod hex_seed {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(seed: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(seed))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("seed must be 64 hex digits"))
    }
}

impl TieBreak {
    /// Orders tied choices from most to least favoured; `None` for `NoDecision`.
    fn order(self, tied: &[u32]) -> Option<Vec<u32>> {
        let mut v = tied.to_vec();
        match self {
            TieBreak::NoDecision => return None,
            TieBreak::FirstListed => v.sort_unstable(),
            TieBreak::Lot { seed } => v.sort_by_key(|c| {
                let mut h = Sha256::new();
                h.update(seed);
                h.update(c.to_be_bytes());
                <[u8; 32]>::from(h.finalize())
            }),
        }
        Some(v)
    }
}

/// One member's ballot for a choice method: the class (for weighting) and the choices, in
/// order of preference for ranked methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// The voter's class.
    pub class: ClassId,
    /// Chosen options (indexes into the proposal's choices).
    pub choices: Vec<u32>,
}

/// A plurality (single choice) or approval result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChoiceTally {
    /// Weighted support of each choice.
    pub totals: BTreeMap<u32, Share>,
    /// Choices sharing the top total.
    pub tied: Vec<u32>,
    /// The winner after the tie-break, if any.
    pub winner: Option<u32>,
}

fn member_weights(
    mode: &VotingMode,
    eligible: &BTreeMap<ClassId, u64>,
) -> Result<BTreeMap<ClassId, BigRational>, TallyError> {
    Ok(class_weights(mode, eligible)?
        .into_iter()
        .filter_map(|(c, w)| {
            let n = *eligible.get(&c)?;
            Some((c, w.0 / BigInt::from(n)))
        })
        .collect())
}

/// Plurality (each ballot names one choice) or approval (each ballot names any set of choices):
/// the highest weighted total wins, ties settled by `tie_break`.
pub fn tally_choices(
    n_choices: u32,
    mode: &VotingMode,
    eligible: &BTreeMap<ClassId, u64>,
    ballots: &[Ballot],
    tie_break: TieBreak,
) -> Result<ChoiceTally, TallyError> {
    let mw = member_weights(mode, eligible)?;
    let mut totals: BTreeMap<u32, BigRational> =
        (0..n_choices).map(|c| (c, BigRational::zero())).collect();
    for b in ballots {
        let w = mw
            .get(&b.class)
            .ok_or_else(|| TallyError::UnknownClass(b.class.clone()))?;
        let distinct: BTreeSet<u32> = b.choices.iter().copied().collect();
        for c in distinct {
            let t = totals.get_mut(&c).ok_or(TallyError::UnknownChoice(c))?;
            *t += w;
        }
    }
    let top = totals
        .values()
        .max()
        .cloned()
        .unwrap_or_else(BigRational::zero);
    let tied: Vec<u32> = if top.is_zero() {
        vec![]
    } else {
        totals
            .iter()
            .filter(|(_, t)| **t == top)
            .map(|(c, _)| *c)
            .collect()
    };
    let winner = match tied.as_slice() {
        [] => None,
        [one] => Some(*one),
        many => tie_break.order(many).and_then(|o| o.first().copied()),
    };
    Ok(ChoiceTally {
        totals: totals.into_iter().map(|(c, t)| (c, Share(t))).collect(),
        tied,
        winner,
    })
}

/// One instant-runoff round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IrvRound {
    /// Weighted first preferences among continuing choices.
    pub totals: BTreeMap<u32, Share>,
    /// Weight of ballots with no continuing choice left.
    pub exhausted: Share,
    /// Elected this round (more than half of the non-exhausted weight, or last one standing).
    pub elected: Option<u32>,
    /// Eliminated this round.
    pub eliminated: Option<u32>,
    /// Choices that tied for last place this round (empty when there was no tie).
    pub tied_for_last: Vec<u32>,
}

/// An instant-runoff result: every round, and the winner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrvTally {
    /// Rounds in order.
    pub rounds: Vec<IrvRound>,
    /// The winner, if one was elected.
    pub winner: Option<u32>,
}

/// Instant runoff. Each round counts every ballot for its highest-ranked continuing choice; a
/// choice with more than half of the counted weight is elected; otherwise the lowest is
/// eliminated. A tie for lowest is settled by the earlier rounds (the one lower in the most
/// recent round that separates them goes), then by `tie_break` (the least favoured goes).
pub fn instant_runoff(
    n_choices: u32,
    mode: &VotingMode,
    eligible: &BTreeMap<ClassId, u64>,
    ballots: &[Ballot],
    tie_break: TieBreak,
) -> Result<IrvTally, TallyError> {
    let mw = member_weights(mode, eligible)?;
    for b in ballots {
        if !mw.contains_key(&b.class) {
            return Err(TallyError::UnknownClass(b.class.clone()));
        }
        if let Some(c) = b.choices.iter().find(|c| **c >= n_choices) {
            return Err(TallyError::UnknownChoice(*c));
        }
    }
    let mut continuing: BTreeSet<u32> = (0..n_choices).collect();
    let mut rounds: Vec<IrvRound> = Vec::new();
    loop {
        let mut totals: BTreeMap<u32, BigRational> = continuing
            .iter()
            .map(|c| (*c, BigRational::zero()))
            .collect();
        let mut exhausted = BigRational::zero();
        for b in ballots {
            let w = mw.get(&b.class).cloned().unwrap_or_else(BigRational::zero);
            match b.choices.iter().find(|c| continuing.contains(c)) {
                Some(c) => {
                    if let Some(t) = totals.get_mut(c) {
                        *t += w;
                    }
                }
                None => exhausted += w,
            }
        }
        let counted: BigRational = totals.values().sum();
        let mut round = IrvRound {
            totals: totals.iter().map(|(c, t)| (*c, Share(t.clone()))).collect(),
            exhausted: Share(exhausted),
            elected: None,
            eliminated: None,
            tied_for_last: vec![],
        };
        let majority = totals
            .iter()
            .find(|(_, t)| !counted.is_zero() && *t * BigInt::from(2) > counted)
            .map(|(c, _)| *c);
        if let Some(c) = majority.or_else(|| {
            (continuing.len() == 1)
                .then(|| continuing.first().copied())
                .flatten()
        }) {
            round.elected = Some(c);
            rounds.push(round);
            return Ok(IrvTally {
                rounds,
                winner: Some(c),
            });
        }
        if counted.is_zero() || continuing.is_empty() {
            rounds.push(round);
            return Ok(IrvTally {
                rounds,
                winner: None,
            });
        }
        let low = totals
            .values()
            .min()
            .cloned()
            .unwrap_or_else(BigRational::zero);
        let mut tied: Vec<u32> = totals
            .iter()
            .filter(|(_, t)| **t == low)
            .map(|(c, _)| *c)
            .collect();
        if tied.len() > 1 {
            round.tied_for_last = tied.clone();
            // Backwards: the most recent earlier round in which they differ decides.
            for past in rounds.iter().rev() {
                let lowest = tied
                    .iter()
                    .filter_map(|c| past.totals.get(c))
                    .min()
                    .cloned();
                if let Some(lowest) = lowest {
                    tied.retain(|c| past.totals.get(c) == Some(&lowest));
                }
                if tied.len() == 1 {
                    break;
                }
            }
        }
        let out = match tied.as_slice() {
            [one] => Some(*one),
            many => tie_break.order(many).and_then(|o| o.last().copied()),
        };
        let Some(out) = out else {
            rounds.push(round);
            return Ok(IrvTally {
                rounds,
                winner: None,
            });
        };
        round.eliminated = Some(out);
        continuing.remove(&out);
        rounds.push(round);
    }
}
