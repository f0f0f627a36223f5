//! Counting votes exactly as the bylaws say: quorum and threshold with explicit bases and
//! comparators, one member one vote or class-weighted (weights in ppm, optional cap), a required
//! majority in every class, plurality and approval with a declared tie-break, and instant runoff
//! with every round published. Exact rational arithmetic, no floats, no I/O: any member can
//! recompute a tally from the ballots and must get the same result.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Parts per million: ratios in bylaws are integers out of this.
pub const PPM: u32 = 1_000_000;

/// A member class, e.g. `drivers`, `riders`.
pub type ClassId = String;

/// An exact non-negative ratio, shown as `"num/den"` in lowest terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Share(pub BigRational);

impl Share {
    /// `n / d`, or `None` when `d` is zero.
    pub fn of(n: u64, d: u64) -> Option<Share> {
        (d != 0).then(|| Share(BigRational::new(BigInt::from(n), BigInt::from(d))))
    }
    /// `ppm / 1,000,000`.
    pub fn ppm(p: u32) -> Share {
        Share(BigRational::new(BigInt::from(p), BigInt::from(PPM)))
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/{}", self.0.numer(), self.0.denom()))
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Share, D::Error> {
        let s = String::deserialize(d)?;
        let (n, den) = s
            .split_once('/')
            .ok_or_else(|| serde::de::Error::custom("a share is \"num/den\""))?;
        let n: BigInt = n.parse().map_err(serde::de::Error::custom)?;
        let den: BigInt = den.parse().map_err(serde::de::Error::custom)?;
        if den.is_zero() {
            return Err(serde::de::Error::custom("zero denominator"));
        }
        Ok(Share(BigRational::new(n, den)))
    }
}

/// How a share is compared with a ratio: "more than two-thirds" is `gt`, "at least two-thirds"
/// is `gte`. Always explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparator {
    /// Strictly greater than the ratio.
    Gt,
    /// Greater than or equal to the ratio.
    Gte,
}

impl Comparator {
    /// Whether `share` passes `ratio_ppm` under this comparator.
    pub fn holds(self, share: &Share, ratio_ppm: u32) -> bool {
        let r = Share::ppm(ratio_ppm);
        match self {
            Comparator::Gt => *share > r,
            Comparator::Gte => *share >= r,
        }
    }
}

/// What participation is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumBasis {
    /// Members who took part / eligible members (head count, whatever the voting mode).
    EligibleMembers,
    /// Weight of members who took part / eligible weight.
    EligibleWeight,
}

/// Quorum: participation must be at least `minimum_ppm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quorum {
    /// Basis.
    pub basis: QuorumBasis,
    /// Minimum participation, ppm (met when participation ≥ minimum).
    pub minimum_ppm: u32,
    /// Whether abstentions count as taking part.
    pub abstentions_count: bool,
}

/// What the yes share is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdBasis {
    /// yes / (yes + no).
    CastExcludingAbstain,
    /// yes / (yes + no + abstain).
    CastIncludingAbstain,
    /// yes / eligible.
    Eligible,
}

/// Threshold: the yes share compared with `ratio_ppm` by `comparator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Threshold {
    /// Basis.
    pub basis: ThresholdBasis,
    /// Ratio, ppm.
    pub ratio_ppm: u32,
    /// Comparator.
    pub comparator: Comparator,
}

/// How much each member's vote weighs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum VotingMode {
    /// Every eligible member weighs the same.
    OneMemberOneVote,
    /// Each class carries a weight (ppm, summing to 1,000,000 in the bylaws), shared equally by
    /// its eligible members. Classes without eligible members drop out and the rest are scaled
    /// up; with a cap, no class weighs more than `cap_ppm`, the excess going to the other classes
    /// in proportion to their weights.
    ClassWeighted {
        /// Weight of each class, ppm.
        weights: BTreeMap<ClassId, u32>,
        /// Largest weight one class may have, ppm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap_ppm: Option<u32>,
    },
}

/// Why a tally cannot be computed (bylaws or ballots inconsistent — a bug upstream, never a
/// reason to pick an outcome).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TallyError {
    /// A ballot or count names a class the voting mode has no weight for.
    #[error("class {0:?} has no weight in the bylaws")]
    UnknownClass(String),
    /// Nobody is eligible (or every eligible class weighs zero).
    #[error("no eligible weight")]
    NoEligibleWeight,
    /// A ballot names a choice that does not exist.
    #[error("choice {0} does not exist")]
    UnknownChoice(u32),
    /// More votes than eligible members in a class.
    #[error("class {0:?} has more votes than eligible members")]
    Overcount(String),
    /// The electorate does not match the eligible counts frozen with the proposal.
    #[error("the electorate does not match the eligible counts frozen at creation")]
    ElectorateMismatch,
}

/// Head counts of one class for a yes/no decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// Members of the class in the frozen electorate.
    pub eligible: u64,
    /// Yes votes.
    pub yes: u64,
    /// No votes.
    pub no: u64,
    /// Abstentions.
    pub abstain: u64,
}

/// The effective weight of one whole class (a member of class `c` weighs `w_c / eligible_c`).
pub fn class_weights(
    mode: &VotingMode,
    eligible: &BTreeMap<ClassId, u64>,
) -> Result<BTreeMap<ClassId, Share>, TallyError> {
    let total: u64 = eligible.values().sum();
    if total == 0 {
        return Err(TallyError::NoEligibleWeight);
    }
    match mode {
        VotingMode::OneMemberOneVote => Ok(eligible
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(c, n)| Some((c.clone(), Share::of(*n, total)?)))
            .collect()),
        VotingMode::ClassWeighted { weights, cap_ppm } => {
            for c in eligible.keys() {
                if !weights.contains_key(c) {
                    return Err(TallyError::UnknownClass(c.clone()));
                }
            }
            let present: BTreeMap<&ClassId, u64> = weights
                .iter()
                .filter(|(c, w)| **w > 0 && eligible.get(*c).is_some_and(|n| *n > 0))
                .map(|(c, w)| (c, u64::from(*w)))
                .collect();
            let sum: u64 = present.values().sum();
            if sum == 0 {
                return Err(TallyError::NoEligibleWeight);
            }
            let mut out: BTreeMap<ClassId, BigRational> = present
                .iter()
                .map(|(c, w)| {
                    (
                        (*c).clone(),
                        BigRational::new(BigInt::from(*w), BigInt::from(sum)),
                    )
                })
                .collect();
            if let Some(cap) = cap_ppm {
                let cap = Share::ppm(*cap).0;
                let mut fixed: BTreeSet<ClassId> = BTreeSet::new();
                loop {
                    let over: Vec<ClassId> = out
                        .iter()
                        .filter(|(c, w)| !fixed.contains(*c) && **w > cap)
                        .map(|(c, _)| c.clone())
                        .collect();
                    if over.is_empty() {
                        break;
                    }
                    for c in over {
                        out.insert(c.clone(), cap.clone());
                        fixed.insert(c);
                    }
                    let fixed_total: BigRational = fixed.iter().filter_map(|c| out.get(c)).sum();
                    let free_weight: u64 = present
                        .iter()
                        .filter(|(c, _)| !fixed.contains(**c))
                        .map(|(_, w)| *w)
                        .sum();
                    if free_weight == 0 {
                        break; // every class capped: total weight stays below 1
                    }
                    let remaining = BigRational::one() - fixed_total;
                    for (c, w) in &present {
                        if !fixed.contains(*c) {
                            let share =
                                BigRational::new(BigInt::from(*w), BigInt::from(free_weight));
                            out.insert((*c).clone(), &remaining * share);
                        }
                    }
                }
            }
            Ok(out.into_iter().map(|(c, w)| (c, Share(w))).collect())
        }
    }
}

/// `Σ_c w_c · x_c / eligible_c`: the weight of the members counted by `x`.
fn weigh(
    weights: &BTreeMap<ClassId, Share>,
    counts: &BTreeMap<ClassId, ClassCount>,
    x: impl Fn(&ClassCount) -> u64,
) -> BigRational {
    counts
        .iter()
        .filter_map(|(c, n)| {
            let w = weights.get(c)?;
            let share = Share::of(x(n), n.eligible)?;
            Some(&w.0 * share.0)
        })
        .sum()
}

/// Rules of a yes/no decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct YesNoRules {
    /// Voting mode.
    pub mode: VotingMode,
    /// Quorum.
    pub quorum: Quorum,
    /// Threshold.
    pub threshold: Threshold,
    /// If set, each class with eligible members must also meet this threshold on its own head
    /// count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_class: Option<Threshold>,
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Quorum and threshold(s) met.
    Adopted,
    /// Quorum met, a threshold not.
    Rejected,
    /// Quorum not met.
    NoQuorum,
}

/// A class's own result under `every_class`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassResult {
    /// Yes share within the class, if its basis is non-zero.
    pub yes_share: Option<Share>,
    /// Whether the class met the threshold.
    pub met: bool,
}

/// A yes/no tally with every intermediate figure, for publication and re-checking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct YesNoTally {
    /// Effective weight of each class.
    pub weights: BTreeMap<ClassId, Share>,
    /// Participation on the quorum's basis.
    pub participation: Share,
    /// Whether the quorum was met.
    pub quorum_met: bool,
    /// Yes share on the threshold's basis (`None` when its basis is zero: nobody counted).
    pub yes_share: Option<Share>,
    /// Whether the threshold was met.
    pub threshold_met: bool,
    /// Per-class results when a majority in every class is required.
    pub classes: BTreeMap<ClassId, ClassResult>,
    /// The outcome.
    pub outcome: Outcome,
}

fn basis_count(basis: ThresholdBasis, n: &ClassCount) -> u64 {
    match basis {
        ThresholdBasis::CastExcludingAbstain => n.yes + n.no,
        ThresholdBasis::CastIncludingAbstain => n.yes + n.no + n.abstain,
        ThresholdBasis::Eligible => n.eligible,
    }
}

/// Participation on the quorum's basis; members who took part are `yes + no`, plus `abstain`
/// when abstentions count.
pub fn participation_share(
    quorum: &Quorum,
    weights: &BTreeMap<ClassId, Share>,
    counts: &BTreeMap<ClassId, ClassCount>,
) -> Result<Share, TallyError> {
    let took_part = |n: &ClassCount| {
        n.yes
            + n.no
            + if quorum.abstentions_count {
                n.abstain
            } else {
                0
            }
    };
    match quorum.basis {
        QuorumBasis::EligibleMembers => {
            let part: u64 = counts.values().map(took_part).sum();
            let all: u64 = counts.values().map(|n| n.eligible).sum();
            Share::of(part, all).ok_or(TallyError::NoEligibleWeight)
        }
        QuorumBasis::EligibleWeight => {
            let all = weigh(weights, counts, |n| n.eligible);
            if all.is_zero() {
                return Err(TallyError::NoEligibleWeight);
            }
            Ok(Share(weigh(weights, counts, took_part) / all))
        }
    }
}

/// Tallies a yes/no decision.
pub fn tally_yes_no(
    rules: &YesNoRules,
    counts: &BTreeMap<ClassId, ClassCount>,
) -> Result<YesNoTally, TallyError> {
    for (c, n) in counts {
        if n.yes + n.no + n.abstain > n.eligible {
            return Err(TallyError::Overcount(c.clone()));
        }
    }
    let eligible: BTreeMap<ClassId, u64> = counts
        .iter()
        .map(|(c, n)| (c.clone(), n.eligible))
        .collect();
    let weights = class_weights(&rules.mode, &eligible)?;
    let participation = participation_share(&rules.quorum, &weights, counts)?;
    let quorum_met = Comparator::Gte.holds(&participation, rules.quorum.minimum_ppm);
    let t = rules.threshold;
    let base = weigh(&weights, counts, |n| basis_count(t.basis, n));
    let yes_share = (!base.is_zero()).then(|| Share(weigh(&weights, counts, |n| n.yes) / base));
    let threshold_met = yes_share
        .as_ref()
        .is_some_and(|s| t.comparator.holds(s, t.ratio_ppm));
    let mut classes = BTreeMap::new();
    if let Some(ct) = rules.every_class {
        for (c, n) in counts.iter().filter(|(_, n)| n.eligible > 0) {
            let share = Share::of(n.yes, basis_count(ct.basis, n));
            let met = share
                .as_ref()
                .is_some_and(|s| ct.comparator.holds(s, ct.ratio_ppm));
            classes.insert(
                c.clone(),
                ClassResult {
                    yes_share: share,
                    met,
                },
            );
        }
    }
    let outcome = if !quorum_met {
        Outcome::NoQuorum
    } else if threshold_met && classes.values().all(|r| r.met) {
        Outcome::Adopted
    } else {
        Outcome::Rejected
    };
    Ok(YesNoTally {
        weights,
        participation,
        quorum_met,
        yes_share,
        threshold_met,
        classes,
        outcome,
    })
}

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
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
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

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
