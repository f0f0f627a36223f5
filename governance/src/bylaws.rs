//! The co-op's bylaws as data: member classes and how votes weigh, and for each kind of decision
//! the quorum, threshold, timing, methods, revotes, proxies, secrecy, result visibility and
//! tie-break. Validated as a whole; changed only by an adopted bylaws amendment (issue 3).

use crate::tally::{
    ClassId, Comparator, Quorum, QuorumBasis, Ratio, Threshold, ThresholdBasis, TieBreak,
    VotingMode, PPM,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kinds of decision the bylaws give rules for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Day-to-day resolutions.
    Ordinary,
    /// Special resolutions (e.g. a new data-sharing agreement).
    Special,
    /// Changing the bylaws.
    BylawsAmendment,
    /// Admitting a member.
    Admission,
    /// Expelling a member.
    Expulsion,
    /// Adopting an allocation policy / approving a distribution.
    DistributionApproval,
    /// Electing the board.
    BoardElection,
}

impl DecisionKind {
    /// Every kind, in a fixed order.
    pub const ALL: [DecisionKind; 7] = [
        DecisionKind::Ordinary,
        DecisionKind::Special,
        DecisionKind::BylawsAmendment,
        DecisionKind::Admission,
        DecisionKind::Expulsion,
        DecisionKind::DistributionApproval,
        DecisionKind::BoardElection,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Ordinary => "ordinary",
            DecisionKind::Special => "special",
            DecisionKind::BylawsAmendment => "bylaws_amendment",
            DecisionKind::Admission => "admission",
            DecisionKind::Expulsion => "expulsion",
            DecisionKind::DistributionApproval => "distribution_approval",
            DecisionKind::BoardElection => "board_election",
        }
    }
}

/// Voting methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Yes / no / abstain.
    YesNo,
    /// One choice among several (plurality).
    SingleChoice,
    /// Any set of choices.
    Approval,
    /// A ranking, counted by instant runoff.
    RankedChoice,
}

/// Proxy voting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyRules {
    /// Whether a member may give a proxy.
    pub allowed: bool,
    /// Most proxies one member may hold.
    pub max_per_proxy: u32,
}

/// When results may be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultsVisibility {
    /// Running totals while the vote is open.
    Live,
    /// Only the final tally.
    AfterClose,
}

/// The rules for one kind of decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRules {
    /// Quorum.
    pub quorum: Quorum,
    /// Threshold (for yes/no).
    pub threshold: Threshold,
    /// Threshold every class must also meet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_class: Option<Threshold>,
    /// Least time between creating a proposal and opening it.
    pub min_notice_ms: u64,
    /// Shortest voting window.
    pub min_duration_ms: u64,
    /// Longest voting window.
    pub max_duration_ms: u64,
    /// Allowed methods.
    pub methods: Vec<Method>,
    /// Whether a later vote supersedes an earlier one.
    pub revote: bool,
    /// Proxies.
    pub proxies: ProxyRules,
    /// Secret ballot.
    pub secret: bool,
    /// Result visibility.
    pub results: ResultsVisibility,
    /// Tie-break for choice methods (`lot` seeds come from the proposal).
    pub tie_break: TieBreakRule,
    /// For expulsions: least time between the notice entry and the expulsion.
    #[serde(default)]
    pub notice_period_ms: u64,
}

/// The tie-break declared in the bylaws; a `lot`'s seed is the proposal's entry id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieBreakRule {
    /// A tie decides nothing.
    NoDecision,
    /// The first-listed choice wins.
    FirstListed,
    /// A lot seeded by the proposal's entry id.
    Lot,
}

impl TieBreakRule {
    /// The concrete tie-break for a proposal with entry id `seed`.
    pub fn for_proposal(self, seed: [u8; 32]) -> TieBreak {
        match self {
            TieBreakRule::NoDecision => TieBreak::NoDecision,
            TieBreakRule::FirstListed => TieBreak::FirstListed,
            TieBreakRule::Lot => TieBreak::Lot { seed },
        }
    }
}

/// Who admits new members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmittedBy {
    /// A board member admits applications, many in one `member.admit` entry.
    Board,
    /// Each admission is an adopted `admission` decision, cited by the board's `member.admit`.
    GeneralVote,
    /// The treasurer admits applicants whose member share is paid, recording each payment's
    /// reference (a digest), many in one entry.
    PaidShare,
}

/// How members are admitted, and the bounds that keep applications from being a spam hole.
/// (Bylaws written before this section have none: admission by general vote, no bounds.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionRules {
    /// Who admits. An adopted admission decision admits under every mode.
    pub by: AdmittedBy,
    /// Whether an application must carry an invitation signed by a board member's key.
    pub invitation_required: bool,
    /// Most applications pending at once; more are refused until some are admitted or declined.
    pub max_pending: u64,
}

/// How a member who has lost every key gets a new one: the board's `member.key_reset` takes
/// effect only after `waitMs`, during which any of the member's current keys can veto it.
/// (Bylaws without this section wait [`DEFAULT_KEY_RESET_WAIT_MS`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyResetRules {
    /// Milliseconds from the reset's batch time until it can be completed.
    pub wait_ms: u64,
}

/// The waiting period of a key reset under bylaws without a `keyReset` section: 7 days.
pub const DEFAULT_KEY_RESET_WAIT_MS: u64 = 7 * 86_400_000;
/// Shortest waiting period bylaws may set (the veto must be possible): 1 second.
pub const MIN_KEY_RESET_WAIT_MS: u64 = 1_000;
/// Longest waiting period bylaws may set: 365 days.
pub const MAX_KEY_RESET_WAIT_MS: u64 = 365 * 86_400_000;

/// Most applications one `member.admit` or `member.decline` entry may name.
pub const MAX_ADMISSIONS_PER_ENTRY: usize = 500;

/// A member class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberClass {
    /// Whether members of the class vote.
    pub votes: bool,
}

/// The bylaws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bylaws {
    /// Version, increased by each adopted amendment.
    pub version: u64,
    /// Member classes.
    pub classes: BTreeMap<ClassId, MemberClass>,
    /// How votes weigh.
    pub voting: VotingMode,
    /// Rules for each kind of decision (all kinds must be present).
    pub decisions: BTreeMap<DecisionKind, DecisionRules>,
    /// How members are admitted (absent in bylaws written before it: by general vote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionRules>,
    /// The waiting period of a board key reset (absent: [`DEFAULT_KEY_RESET_WAIT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_reset: Option<KeyResetRules>,
}

/// A bylaws field that is not acceptable, by JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct BylawsError {
    /// Path below the bylaws object, e.g. `decisions.special.threshold.ratioPpm` (empty: the
    /// bylaws object itself).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> BylawsError {
    BylawsError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_ppm(field: &str, v: u32) -> Result<(), BylawsError> {
    if v > PPM {
        return Err(bad(field, "must be at most 1,000,000 ppm"));
    }
    Ok(())
}

/// A deserialisation error as a [`BylawsError`] whose field is the full path below the bylaws
/// (`prefix` then serde's path, then the unknown field's name when serde names one).
fn path_error(prefix: &str, e: serde_path_to_error::Error<serde_json::Error>) -> BylawsError {
    let mut path: Vec<String> = std::iter::once(prefix.to_owned())
        .chain(e.path().iter().map(|s| s.to_string()))
        .filter(|s| !s.is_empty() && s != ".")
        .collect();
    let inner = e.into_inner().to_string();
    if let Some((name, _)) = inner
        .strip_prefix("unknown field `")
        .or_else(|| inner.strip_prefix("missing field `"))
        .and_then(|r| r.split_once('`'))
    {
        if path.last().map(String::as_str) != Some(name) {
            path.push(name.to_owned());
        }
    }
    bad(path.join("."), inner)
}

/// `field` is the exact spelling's path; a ppm ratio is named `<field>Ppm`.
fn check_ratio(field: &str, r: &Ratio) -> Result<(), BylawsError> {
    if !r.at_most_one() {
        let field = match r {
            Ratio::Ppm(_) => format!("{field}Ppm"),
            Ratio::Exact { .. } => field.to_owned(),
        };
        return Err(bad(field, "must be at most one (1,000,000 ppm)"));
    }
    Ok(())
}

impl Bylaws {
    /// Reads bylaws from JSON and validates them. Unknown or misspelt fields anywhere are
    /// refused; every error names the field's path below the bylaws object
    /// (`voting.capPPM`, `decisions.special.quorum`).
    pub fn from_json(v: &serde_json::Value) -> Result<Bylaws, BylawsError> {
        let b: Bylaws = match serde_path_to_error::deserialize(v) {
            Ok(b) => b,
            Err(e) => {
                // Decisions are keyed by an enum, which the path shows as `?`: name the key by
                // reading each decision on its own.
                if let Some(ds) = v.get("decisions").and_then(serde_json::Value::as_object) {
                    for (kind, d) in ds {
                        if let Err(e) = serde_path_to_error::deserialize::<_, DecisionRules>(d) {
                            return Err(path_error(&format!("decisions.{kind}"), e));
                        }
                    }
                }
                return Err(path_error("", e));
            }
        };
        b.validate()?;
        Ok(b)
    }

    /// Checks every rule that makes the bylaws usable; the error names the field.
    pub fn validate(&self) -> Result<(), BylawsError> {
        if self.classes.is_empty() {
            return Err(bad("classes", "at least one member class is needed"));
        }
        for c in self.classes.keys() {
            if !crate::payload::is_ident(c) {
                return Err(bad(
                    format!("classes.{c}"),
                    format!("a class name {}", crate::payload::IDENT_RULE),
                ));
            }
        }
        if let VotingMode::ClassWeighted {
            weights, cap_ppm, ..
        } = &self.voting
        {
            let mut sum: u64 = 0;
            for (c, w) in weights {
                if !self.classes.get(c).is_some_and(|k| k.votes) {
                    return Err(bad(
                        format!("voting.weights.{c}"),
                        "not a voting member class",
                    ));
                }
                check_ppm(&format!("voting.weights.{c}"), *w)?;
                sum += u64::from(*w);
            }
            if sum != u64::from(PPM) {
                return Err(bad(
                    "voting.weights",
                    format!("must sum to 1,000,000 ppm, not {sum}"),
                ));
            }
            for (c, k) in &self.classes {
                if k.votes && !weights.contains_key(c) {
                    return Err(bad(
                        format!("voting.weights.{c}"),
                        "a voting class needs a weight",
                    ));
                }
            }
            if let Some(cap) = cap_ppm {
                check_ppm("voting.capPpm", *cap)?;
                if u64::from(*cap) * (weights.len() as u64) < u64::from(PPM) {
                    return Err(bad(
                        "voting.capPpm",
                        "too low for the classes' weights to sum to 1,000,000",
                    ));
                }
            }
        }
        if self.admission.is_some_and(|a| a.max_pending == 0) {
            return Err(bad(
                "admission.maxPending",
                "must be at least 1 (no application could ever be made)",
            ));
        }
        if let Some(r) = self.key_reset {
            if !(MIN_KEY_RESET_WAIT_MS..=MAX_KEY_RESET_WAIT_MS).contains(&r.wait_ms) {
                return Err(bad(
                    "keyReset.waitMs",
                    format!(
                        "must be from {MIN_KEY_RESET_WAIT_MS} (1 s) to {MAX_KEY_RESET_WAIT_MS} \
                         (365 days): the member's keys need time to veto"
                    ),
                ));
            }
        }
        for kind in DecisionKind::ALL {
            let path = format!("decisions.{}", kind.as_str());
            let d = self
                .decisions
                .get(&kind)
                .ok_or_else(|| bad(&path, "rules for this kind of decision are missing"))?;
            check_ratio(&format!("{path}.quorum.minimum"), &d.quorum.minimum)?;
            check_ratio(&format!("{path}.threshold.ratio"), &d.threshold.ratio)?;
            if let Some(t) = d.every_class {
                check_ratio(&format!("{path}.everyClass.ratio"), &t.ratio)?;
            }
            if d.min_duration_ms == 0 || d.min_duration_ms > d.max_duration_ms {
                return Err(bad(
                    format!("{path}.minDurationMs"),
                    "must be above 0 and at most maxDurationMs",
                ));
            }
            if d.methods.is_empty() {
                return Err(bad(format!("{path}.methods"), "at least one method"));
            }
            if d.secret && d.revote {
                return Err(bad(
                    format!("{path}.revote"),
                    "a secret ballot cannot allow revotes",
                ));
            }
            if d.secret && d.proxies.allowed {
                return Err(bad(
                    format!("{path}.proxies.allowed"),
                    "a secret ballot takes no proxies (a proxy's vote would show the grantor's)",
                ));
            }
            if d.proxies.allowed && d.proxies.max_per_proxy == 0 {
                return Err(bad(
                    format!("{path}.proxies.maxPerProxy"),
                    "must be at least 1 when proxies are allowed",
                ));
            }
        }
        Ok(())
    }

    /// The waiting period of a board key reset under these bylaws.
    pub fn key_reset_wait_ms(&self) -> u64 {
        self.key_reset
            .map_or(DEFAULT_KEY_RESET_WAIT_MS, |r| r.wait_ms)
    }

    /// Sensible bylaws for a one-class co-op: simple majority of votes cast with a 20% quorum,
    /// two-thirds for special resolutions, amendments and expulsions, 14 days' notice for
    /// expulsion.
    pub fn single_class() -> Bylaws {
        const DAY: u64 = 86_400_000;
        let simple = Threshold {
            basis: ThresholdBasis::CastExcludingAbstain,
            ratio: Ratio::Exact { num: 1, den: 2 },
            comparator: Comparator::Gt,
        };
        let two_thirds = Threshold {
            basis: ThresholdBasis::CastExcludingAbstain,
            ratio: Ratio::Exact { num: 2, den: 3 },
            comparator: Comparator::Gte,
        };
        let rules =
            |threshold: Threshold, methods: Vec<Method>, notice_period_ms: u64| DecisionRules {
                quorum: Quorum {
                    basis: QuorumBasis::EligibleMembers,
                    minimum: Ratio::Exact { num: 1, den: 5 },
                    abstentions_count: true,
                },
                threshold,
                every_class: None,
                min_notice_ms: 0,
                min_duration_ms: 60_000,
                max_duration_ms: 30 * DAY,
                methods,
                revote: true,
                proxies: ProxyRules {
                    allowed: true,
                    max_per_proxy: 2,
                },
                secret: false,
                results: ResultsVisibility::AfterClose,
                tie_break: TieBreakRule::Lot,
                notice_period_ms,
            };
        let yes_no = vec![Method::YesNo];
        let decisions = BTreeMap::from([
            (DecisionKind::Ordinary, rules(simple, yes_no.clone(), 0)),
            (DecisionKind::Special, rules(two_thirds, yes_no.clone(), 0)),
            (
                DecisionKind::BylawsAmendment,
                rules(two_thirds, yes_no.clone(), 0),
            ),
            (DecisionKind::Admission, rules(simple, yes_no.clone(), 0)),
            (
                DecisionKind::Expulsion,
                rules(two_thirds, yes_no.clone(), 14 * DAY),
            ),
            (DecisionKind::DistributionApproval, rules(simple, yes_no, 0)),
            (
                DecisionKind::BoardElection,
                rules(
                    simple,
                    vec![Method::SingleChoice, Method::Approval, Method::RankedChoice],
                    0,
                ),
            ),
        ]);
        Bylaws {
            version: 1,
            classes: BTreeMap::from([("members".to_string(), MemberClass { votes: true })]),
            voting: VotingMode::OneMemberOneVote,
            decisions,
            admission: Some(AdmissionRules {
                by: AdmittedBy::Board,
                invitation_required: false,
                max_pending: 1_000,
            }),
            key_reset: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases: a cap written `capPpm` is in force; misspelt fields anywhere are
    /// refused with their path; the old `cap_ppm` still reads and writes back byte for byte.
    #[test]
    fn bylaws_are_strict_and_errors_name_the_path() {
        let mut v = serde_json::to_value(Bylaws::single_class()).unwrap();
        v["voting"] = serde_json::json!({
            "mode": "class_weighted", "weights": {"members": 1_000_000}, "capPpm": 1_000_000
        });
        let b = Bylaws::from_json(&v).unwrap();
        assert!(matches!(
            b.voting,
            VotingMode::ClassWeighted {
                cap_ppm: Some(1_000_000),
                legacy_cap_field: false,
                ..
            }
        ));
        assert_eq!(serde_json::to_value(&b).unwrap(), v);
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut w = v.clone();
            edit(&mut w);
            Bylaws::from_json(&w).unwrap_err().field
        };
        assert_eq!(
            refused(&|w| w["voting"]["capPPM"] = 1.into()),
            "voting.capPPM"
        );
        assert_eq!(
            refused(&|w| w["decisions"]["special"]["quorum"]["minimumPPM"] = 1.into()),
            "decisions.special.quorum.minimumPPM"
        );
        assert_eq!(
            refused(&|w| w["decisions"]["ordinary"]["proxies"]["maxPerProxi"] = 1.into()),
            "decisions.ordinary.proxies.maxPerProxi"
        );
        assert_eq!(refused(&|w| w["versoin"] = 2.into()), "versoin");
        assert_eq!(
            refused(&|w| w["classes"]["members"]["vote"] = true.into()),
            "classes.members.vote"
        );
        // The old spelling: honoured, and written back as it was signed.
        let mut old = v.clone();
        old["voting"] = serde_json::json!({
            "mode": "class_weighted", "weights": {"members": 1_000_000}, "cap_ppm": 1_000_000
        });
        let b = Bylaws::from_json(&old).unwrap();
        assert!(matches!(
            b.voting,
            VotingMode::ClassWeighted {
                cap_ppm: Some(1_000_000),
                legacy_cap_field: true,
                ..
            }
        ));
        assert_eq!(serde_json::to_value(&b).unwrap(), old);
        let mut both = old.clone();
        both["voting"]["capPpm"] = 1_000_000.into();
        assert_eq!(Bylaws::from_json(&both).unwrap_err().field, "voting");
    }

    #[test]
    fn the_default_bylaws_are_valid_and_round_trip_through_json() {
        let b = Bylaws::single_class();
        b.validate().unwrap();
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(
            json["decisions"]["expulsion"]["noticePeriodMs"],
            14 * 86_400_000u64
        );
        let back: Bylaws = serde_json::from_value(json).unwrap();
        assert_eq!(back, b);
    }

    /// A change that makes the bylaws invalid.
    type Edit = Box<dyn Fn(&mut Bylaws)>;

    #[test]
    fn invalid_bylaws_name_the_field() {
        let base = Bylaws::single_class();
        let cases: Vec<(&str, Edit)> = vec![
            (
                "decisions.special.threshold.ratioPpm",
                Box::new(|b| {
                    if let Some(d) = b.decisions.get_mut(&DecisionKind::Special) {
                        d.threshold.ratio = Ratio::Ppm(1_000_001)
                    }
                }),
            ),
            (
                "decisions.board_election",
                Box::new(|b| {
                    b.decisions.remove(&DecisionKind::BoardElection);
                }),
            ),
            (
                "decisions.ordinary.revote",
                Box::new(|b| {
                    if let Some(d) = b.decisions.get_mut(&DecisionKind::Ordinary) {
                        d.secret = true;
                        d.revote = true
                    }
                }),
            ),
            (
                "decisions.ordinary.minDurationMs",
                Box::new(|b| {
                    if let Some(d) = b.decisions.get_mut(&DecisionKind::Ordinary) {
                        d.min_duration_ms = d.max_duration_ms + 1
                    }
                }),
            ),
            (
                "voting.weights",
                Box::new(|b| {
                    b.classes
                        .insert("riders".into(), MemberClass { votes: true });
                    b.voting = VotingMode::ClassWeighted {
                        weights: BTreeMap::from([
                            ("members".into(), 600_000),
                            ("riders".into(), 300_000),
                        ]),
                        cap_ppm: None,
                        legacy_cap_field: false,
                    };
                }),
            ),
            (
                "voting.capPpm",
                Box::new(|b| {
                    b.classes
                        .insert("riders".into(), MemberClass { votes: true });
                    b.voting = VotingMode::ClassWeighted {
                        weights: BTreeMap::from([
                            ("members".into(), 600_000),
                            ("riders".into(), 400_000),
                        ]),
                        cap_ppm: Some(400_000),
                        legacy_cap_field: false,
                    };
                }),
            ),
            (
                "classes.Drivers",
                Box::new(|b| {
                    b.classes
                        .insert("Drivers".into(), MemberClass { votes: true });
                }),
            ),
        ];
        for (field, f) in cases {
            let mut b = base.clone();
            f(&mut b);
            assert_eq!(b.validate().map_err(|e| e.field), Err(field.to_string()));
        }
    }
}
