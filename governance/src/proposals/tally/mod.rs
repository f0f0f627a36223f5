//! Counting votes exactly as the bylaws say: quorum and threshold with explicit bases and
//! comparators, one member one vote or class-weighted (weights in ppm, optional cap), a required
//! majority in every class, plurality and approval with a declared tie-break, and instant runoff
//! with every round published. Exact rational arithmetic, no floats, no I/O: any member can
//! recompute a tally from the ballots and must get the same result. Plurality, approval and
//! instant runoff are in `choices.rs`.

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

/// A ratio in bylaws, exact. Written `"ratio": "2/3"` (lowest terms, `0 ≤ num ≤ den`,
/// `den > 0`); older bylaws wrote parts per million (`"ratioPpm": 666667`, which is 666,667 /
/// 1,000,000 exactly — a little more than two-thirds) and keep meaning exactly that, so every
/// existing log recounts as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ratio {
    /// `num / den`, as written.
    Exact {
        /// Numerator.
        num: u32,
        /// Denominator (non-zero).
        den: u32,
    },
    /// `ppm / 1,000,000`.
    Ppm(u32),
}

impl Ratio {
    /// The ratio as an exact share.
    pub fn share(&self) -> Share {
        match *self {
            Ratio::Exact { num, den } => Share(BigRational::new(
                BigInt::from(num),
                BigInt::from(den.max(1)),
            )),
            Ratio::Ppm(p) => Share::ppm(p),
        }
    }

    /// Parses `"num/den"`: decimal digits without sign or leading zeros, in lowest terms, at
    /// most one.
    pub fn parse(s: &str) -> Result<Ratio, String> {
        let digits = |t: &str| -> Result<u32, String> {
            let canonical = !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'));
            if !canonical {
                return Err(format!("{s:?} is not \"num/den\" in plain decimal digits"));
            }
            t.parse()
                .map_err(|_| format!("{s:?}: numbers above 4,294,967,295"))
        };
        let (n, d) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not \"num/den\", e.g. \"2/3\""))?;
        let (num, den) = (digits(n)?, digits(d)?);
        if den == 0 {
            return Err(format!("{s:?} has a zero denominator"));
        }
        if num > den {
            return Err(format!("{s:?} is more than one"));
        }
        let g = gcd(num, den);
        if g > 1 {
            return Err(format!(
                "{s:?} is not in lowest terms: write \"{}/{}\"",
                num / g,
                den / g
            ));
        }
        Ok(Ratio::Exact { num, den })
    }

    /// At most one (ppm at most 1,000,000).
    pub fn at_most_one(&self) -> bool {
        match *self {
            Ratio::Exact { num, den } => num <= den && den > 0,
            Ratio::Ppm(p) => p <= PPM,
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ratio::Exact { num, den } => write!(f, "{num}/{den}"),
            Ratio::Ppm(p) => write!(f, "{p}/1000000"),
        }
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
    /// Whether `share` passes `ratio` under this comparator, in exact rational arithmetic.
    pub fn holds(self, share: &Share, ratio: &Ratio) -> bool {
        let r = ratio.share();
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

/// The two spellings of a ratio field in JSON: `<name>` (`"2/3"`) or `<name>Ppm`; exactly one.
fn ratio_of(exact: Option<String>, ppm: Option<u32>, name: &str) -> Result<Ratio, String> {
    match (exact, ppm) {
        (Some(s), None) => Ratio::parse(&s).map_err(|e| format!("{name}: {e}")),
        // Checked by the bylaws' validation, which names the field.
        (None, Some(p)) => Ok(Ratio::Ppm(p)),
        (Some(_), Some(_)) => Err(format!("give {name} or {name}Ppm, not both")),
        (None, None) => Err(format!("{name} is missing (e.g. \"{name}\": \"2/3\")")),
    }
}

fn ratio_fields(r: Ratio) -> (Option<String>, Option<u32>) {
    match r {
        Ratio::Exact { .. } => (Some(r.to_string()), None),
        Ratio::Ppm(p) => (None, Some(p)),
    }
}

/// Quorum: participation must be at least `minimum` (`"minimum": "1/5"`, or `minimumPpm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "QuorumForm", into = "QuorumForm")]
pub struct Quorum {
    /// Basis.
    pub basis: QuorumBasis,
    /// Minimum participation (met when participation ≥ minimum).
    pub minimum: Ratio,
    /// Whether abstentions count as taking part.
    pub abstentions_count: bool,
}

/// [`Quorum`] as written in JSON (field order kept: existing state values hash the same).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuorumForm {
    basis: QuorumBasis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minimum_ppm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minimum: Option<String>,
    abstentions_count: bool,
}

impl TryFrom<QuorumForm> for Quorum {
    type Error = String;
    fn try_from(f: QuorumForm) -> Result<Quorum, String> {
        Ok(Quorum {
            basis: f.basis,
            minimum: ratio_of(f.minimum, f.minimum_ppm, "minimum")?,
            abstentions_count: f.abstentions_count,
        })
    }
}

impl From<Quorum> for QuorumForm {
    fn from(q: Quorum) -> QuorumForm {
        let (minimum, minimum_ppm) = ratio_fields(q.minimum);
        QuorumForm {
            basis: q.basis,
            minimum_ppm,
            minimum,
            abstentions_count: q.abstentions_count,
        }
    }
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

/// Threshold: the yes share compared with `ratio` by `comparator` (`"ratio": "2/3"`, or
/// `ratioPpm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ThresholdForm", into = "ThresholdForm")]
pub struct Threshold {
    /// Basis.
    pub basis: ThresholdBasis,
    /// Ratio.
    pub ratio: Ratio,
    /// Comparator.
    pub comparator: Comparator,
}

impl Threshold {
    /// The ratio as written, e.g. `2/3`.
    pub fn ratio(&self) -> String {
        self.ratio.to_string()
    }
}

/// [`Threshold`] as written in JSON (field order kept: existing state values hash the same).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ThresholdForm {
    basis: ThresholdBasis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratio_ppm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratio: Option<String>,
    comparator: Comparator,
}

impl TryFrom<ThresholdForm> for Threshold {
    type Error = String;
    fn try_from(f: ThresholdForm) -> Result<Threshold, String> {
        Ok(Threshold {
            basis: f.basis,
            ratio: ratio_of(f.ratio, f.ratio_ppm, "ratio")?,
            comparator: f.comparator,
        })
    }
}

impl From<Threshold> for ThresholdForm {
    fn from(t: Threshold) -> ThresholdForm {
        let (ratio, ratio_ppm) = ratio_fields(t.ratio);
        ThresholdForm {
            basis: t.basis,
            ratio_ppm,
            ratio,
            comparator: t.comparator,
        }
    }
}

/// How much each member's vote weighs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VotingModeForm", into = "VotingModeForm")]
pub enum VotingMode {
    /// Every eligible member weighs the same.
    OneMemberOneVote,
    /// Each class carries a weight (ppm, summing to 1,000,000 in the bylaws), shared equally by
    /// its eligible members. Classes without eligible members drop out and the rest are scaled
    /// up; with a cap (`capPpm`), no class weighs more than it, the excess going to the other
    /// classes in proportion to their weights.
    ClassWeighted {
        /// Weight of each class, ppm.
        weights: BTreeMap<ClassId, u32>,
        /// Largest weight one class may have, ppm.
        cap_ppm: Option<u32>,
        /// The cap was written `cap_ppm` (versions before every bylaws field was camelCase):
        /// read, honoured, and written back that way so signed state keeps its bytes.
        legacy_cap_field: bool,
    },
}

/// [`VotingMode`] as written in JSON: unknown fields refused; `capPpm`, or the older `cap_ppm`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", deny_unknown_fields)]
enum VotingModeForm {
    OneMemberOneVote,
    ClassWeighted {
        weights: BTreeMap<ClassId, u32>,
        #[serde(default, rename = "capPpm", skip_serializing_if = "Option::is_none")]
        cap: Option<u32>,
        #[serde(default, rename = "cap_ppm", skip_serializing_if = "Option::is_none")]
        legacy_cap: Option<u32>,
    },
}

impl TryFrom<VotingModeForm> for VotingMode {
    type Error = String;
    fn try_from(f: VotingModeForm) -> Result<VotingMode, String> {
        Ok(match f {
            VotingModeForm::OneMemberOneVote => VotingMode::OneMemberOneVote,
            VotingModeForm::ClassWeighted {
                weights,
                cap,
                legacy_cap,
            } => match (cap, legacy_cap) {
                (Some(_), Some(_)) => {
                    return Err("give capPpm only (cap_ppm is its old name)".into())
                }
                (cap, None) => VotingMode::ClassWeighted {
                    weights,
                    cap_ppm: cap,
                    legacy_cap_field: false,
                },
                (None, legacy) => VotingMode::ClassWeighted {
                    weights,
                    cap_ppm: legacy,
                    legacy_cap_field: true,
                },
            },
        })
    }
}

impl From<VotingMode> for VotingModeForm {
    fn from(m: VotingMode) -> VotingModeForm {
        match m {
            VotingMode::OneMemberOneVote => VotingModeForm::OneMemberOneVote,
            VotingMode::ClassWeighted {
                weights,
                cap_ppm,
                legacy_cap_field,
            } => VotingModeForm::ClassWeighted {
                weights,
                cap: cap_ppm.filter(|_| !legacy_cap_field),
                legacy_cap: cap_ppm.filter(|_| legacy_cap_field),
            },
        }
    }
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
        VotingMode::ClassWeighted {
            weights, cap_ppm, ..
        } => {
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassResult {
    /// Yes share within the class, if its basis is non-zero.
    pub yes_share: Option<Share>,
    /// Whether the class met the threshold.
    pub met: bool,
}

/// A yes/no tally with every intermediate figure, for publication and re-checking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    let quorum_met = Comparator::Gte.holds(&participation, &rules.quorum.minimum);
    let t = rules.threshold;
    let base = weigh(&weights, counts, |n| basis_count(t.basis, n));
    let yes_share = (!base.is_zero()).then(|| Share(weigh(&weights, counts, |n| n.yes) / base));
    let threshold_met = yes_share
        .as_ref()
        .is_some_and(|s| t.comparator.holds(s, &t.ratio));
    let mut classes = BTreeMap::new();
    if let Some(ct) = rules.every_class {
        for (c, n) in counts.iter().filter(|(_, n)| n.eligible > 0) {
            let share = Share::of(n.yes, basis_count(ct.basis, n));
            let met = share
                .as_ref()
                .is_some_and(|s| ct.comparator.holds(s, &ct.ratio));
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

mod choices;

pub use choices::{
    instant_runoff, tally_choices, Ballot, ChoiceTally, IrvRound, IrvTally, TieBreak,
};

#[cfg(test)]
mod tests;
