//! Table-driven tally tests: every quorum basis, threshold basis and comparator with exact
//! boundaries, abstentions in and out of quorum, class weights that overturn the head count,
//! a failing per-class majority, caps, plurality/approval ties, and instant runoff with
//! eliminations and ties.

use super::*;
use proptest::prelude::*;

fn one(eligible: u64, yes: u64, no: u64, abstain: u64) -> BTreeMap<ClassId, ClassCount> {
    BTreeMap::from([(
        "members".to_string(),
        ClassCount {
            eligible,
            yes,
            no,
            abstain,
        },
    )])
}

fn rules(q: (QuorumBasis, u32, bool), t: (ThresholdBasis, u32, Comparator)) -> YesNoRules {
    YesNoRules {
        mode: VotingMode::OneMemberOneVote,
        quorum: Quorum {
            basis: q.0,
            minimum: Ratio::Ppm(q.1),
            abstentions_count: q.2,
        },
        threshold: Threshold {
            basis: t.0,
            ratio: Ratio::Ppm(t.1),
            comparator: t.2,
        },
        every_class: None,
    }
}

use Comparator::{Gt, Gte};
use QuorumBasis::{EligibleMembers, EligibleWeight};
use ThresholdBasis::{CastExcludingAbstain as Cast, CastIncludingAbstain as CastAbst, Eligible};

/// (name, [eligible, yes, no, abstain], quorum, threshold, expected outcome)
type Case = (
    &'static str,
    [u64; 4],
    (QuorumBasis, u32, bool),
    (ThresholdBasis, u32, Comparator),
    Outcome,
);

#[test]
fn quorum_threshold_and_comparator_table() {
    // (name, eligible, yes, no, abstain, quorum, threshold, outcome)
    let table: Vec<Case> = vec![
        (
            "2 of 3 vs gte 666,667",
            [3, 2, 1, 0],
            (EligibleMembers, 0, true),
            (Cast, 666_667, Gte),
            Outcome::Rejected,
        ),
        (
            "2 of 3 vs gt 666,666",
            [3, 2, 1, 0],
            (EligibleMembers, 0, true),
            (Cast, 666_666, Gt),
            Outcome::Adopted,
        ),
        (
            "2 of 3 vs gte 666,666",
            [3, 2, 1, 0],
            (EligibleMembers, 0, true),
            (Cast, 666_666, Gte),
            Outcome::Adopted,
        ),
        (
            "2 of 3 vs gt 666,667",
            [3, 2, 1, 0],
            (EligibleMembers, 0, true),
            (Cast, 666_667, Gt),
            Outcome::Rejected,
        ),
        (
            "tie vs gt half",
            [4, 2, 2, 0],
            (EligibleMembers, 0, true),
            (Cast, 500_000, Gt),
            Outcome::Rejected,
        ),
        (
            "tie vs gte half",
            [4, 2, 2, 0],
            (EligibleMembers, 0, true),
            (Cast, 500_000, Gte),
            Outcome::Adopted,
        ),
        // Abstentions: excluded from the threshold basis, or included (then they act as no).
        (
            "abstain excluded",
            [10, 3, 2, 5],
            (EligibleMembers, 0, true),
            (Cast, 500_000, Gt),
            Outcome::Adopted,
        ),
        (
            "abstain included",
            [10, 3, 2, 5],
            (EligibleMembers, 0, true),
            (CastAbst, 500_000, Gt),
            Outcome::Rejected,
        ),
        (
            "eligible basis",
            [10, 5, 0, 0],
            (EligibleMembers, 0, true),
            (Eligible, 500_000, Gt),
            Outcome::Rejected,
        ),
        (
            "eligible basis gte",
            [10, 5, 0, 0],
            (EligibleMembers, 0, true),
            (Eligible, 500_000, Gte),
            Outcome::Adopted,
        ),
        // Quorum exactly at the minimum is met; one short is not.
        (
            "quorum exactly met",
            [10, 3, 2, 0],
            (EligibleMembers, 500_000, false),
            (Cast, 500_000, Gt),
            Outcome::Adopted,
        ),
        (
            "quorum one short",
            [10, 3, 1, 0],
            (EligibleMembers, 500_000, false),
            (Cast, 500_000, Gt),
            Outcome::NoQuorum,
        ),
        // Abstentions in the quorum or not.
        (
            "abstentions count toward quorum",
            [10, 2, 1, 2],
            (EligibleMembers, 500_000, true),
            (Cast, 500_000, Gt),
            Outcome::Adopted,
        ),
        (
            "abstentions do not count",
            [10, 2, 1, 2],
            (EligibleMembers, 500_000, false),
            (Cast, 500_000, Gt),
            Outcome::NoQuorum,
        ),
        (
            "weight quorum, one class",
            [10, 2, 1, 2],
            (EligibleWeight, 500_000, true),
            (Cast, 500_000, Gt),
            Outcome::Adopted,
        ),
        (
            "nobody voted",
            [10, 0, 0, 0],
            (EligibleMembers, 0, true),
            (Cast, 500_000, Gt),
            Outcome::Rejected,
        ),
        (
            "only abstentions",
            [10, 0, 0, 4],
            (EligibleMembers, 0, true),
            (Cast, 1, Gte),
            Outcome::Rejected,
        ),
    ];
    for (name, [e, y, n, a], q, t, want) in table {
        let got = tally_yes_no(&rules(q, t), &one(e, y, n, a)).unwrap();
        assert_eq!(got.outcome, want, "{name}: {got:?}");
    }
}

fn two_classes(drivers: ClassCount, riders: ClassCount) -> BTreeMap<ClassId, ClassCount> {
    BTreeMap::from([
        ("drivers".to_string(), drivers),
        ("riders".to_string(), riders),
    ])
}

fn weighted(drivers_ppm: u32, riders_ppm: u32, cap_ppm: Option<u32>) -> VotingMode {
    VotingMode::ClassWeighted {
        weights: BTreeMap::from([
            ("drivers".to_string(), drivers_ppm),
            ("riders".to_string(), riders_ppm),
        ]),
        cap_ppm,
        legacy_cap_field: false,
    }
}

#[test]
fn class_weights_can_overturn_the_head_count() {
    // 10 drivers all vote no; 90 riders: 60 yes, 30 no. Head count: 60 yes of 100 → adopted.
    // Drivers weigh 70%, riders 30%: yes share = 0.3 · 60/90 = 0.2 → rejected.
    let counts = two_classes(
        ClassCount {
            eligible: 10,
            yes: 0,
            no: 10,
            abstain: 0,
        },
        ClassCount {
            eligible: 90,
            yes: 60,
            no: 30,
            abstain: 0,
        },
    );
    let mut r = rules((EligibleWeight, 500_000, true), (Cast, 500_000, Gt));
    let head = tally_yes_no(&r, &counts).unwrap();
    assert_eq!(head.outcome, Outcome::Adopted);
    assert_eq!(head.yes_share, Share::of(60, 100));
    r.mode = weighted(700_000, 300_000, None);
    let w = tally_yes_no(&r, &counts).unwrap();
    assert_eq!(w.outcome, Outcome::Rejected);
    assert_eq!(w.yes_share, Share::of(1, 5));
    assert_eq!(w.weights.get("drivers"), Some(&Share::ppm(700_000)));
}

#[test]
fn weight_quorum_differs_from_member_quorum() {
    // Only the 10 drivers vote: 10% of members, 70% of the weight.
    let counts = two_classes(
        ClassCount {
            eligible: 10,
            yes: 10,
            no: 0,
            abstain: 0,
        },
        ClassCount {
            eligible: 90,
            yes: 0,
            no: 0,
            abstain: 0,
        },
    );
    let mut r = rules((EligibleWeight, 500_000, true), (Cast, 500_000, Gt));
    r.mode = weighted(700_000, 300_000, None);
    assert_eq!(tally_yes_no(&r, &counts).unwrap().outcome, Outcome::Adopted);
    r.quorum.basis = EligibleMembers;
    assert_eq!(
        tally_yes_no(&r, &counts).unwrap().outcome,
        Outcome::NoQuorum
    );
}

#[test]
fn a_majority_in_every_class_can_fail_alone() {
    // Overall 70 yes of 100, but riders split 20/30 → fails the per-class majority.
    let counts = two_classes(
        ClassCount {
            eligible: 50,
            yes: 50,
            no: 0,
            abstain: 0,
        },
        ClassCount {
            eligible: 50,
            yes: 20,
            no: 30,
            abstain: 0,
        },
    );
    let mut r = rules((EligibleMembers, 0, true), (Cast, 500_000, Gt));
    assert_eq!(tally_yes_no(&r, &counts).unwrap().outcome, Outcome::Adopted);
    r.every_class = Some(Threshold {
        basis: Cast,
        ratio: Ratio::Ppm(500_000),
        comparator: Gt,
    });
    let t = tally_yes_no(&r, &counts).unwrap();
    assert_eq!(t.outcome, Outcome::Rejected);
    assert!(t.threshold_met);
    assert!(t.classes["drivers"].met && !t.classes["riders"].met);
}

#[test]
fn empty_classes_drop_out_and_caps_redistribute() {
    let eligible = BTreeMap::from([
        ("drivers".to_string(), 5u64),
        ("riders".to_string(), 0),
        ("city".to_string(), 3),
    ]);
    let mode = VotingMode::ClassWeighted {
        weights: BTreeMap::from([
            ("drivers".to_string(), 600_000),
            ("riders".to_string(), 300_000),
            ("city".to_string(), 100_000),
        ]),
        cap_ppm: None,
        legacy_cap_field: false,
    };
    let w = class_weights(&mode, &eligible).unwrap();
    assert_eq!(w["drivers"], Share::of(6, 7).unwrap());
    assert_eq!(w["city"], Share::of(1, 7).unwrap());
    assert!(!w.contains_key("riders"));
    // Cap at 50%: drivers capped, the excess goes to the city.
    let capped = VotingMode::ClassWeighted {
        weights: BTreeMap::from([
            ("drivers".to_string(), 600_000),
            ("riders".to_string(), 300_000),
            ("city".to_string(), 100_000),
        ]),
        cap_ppm: Some(500_000),
        legacy_cap_field: false,
    };
    let w = class_weights(&capped, &eligible).unwrap();
    assert_eq!(w["drivers"], Share::ppm(500_000));
    assert_eq!(w["city"], Share::ppm(500_000));
    let unknown = BTreeMap::from([("pilots".to_string(), 1u64)]);
    assert_eq!(
        class_weights(&capped, &unknown),
        Err(TallyError::UnknownClass("pilots".into()))
    );
    assert!(tally_yes_no(
        &rules((EligibleMembers, 0, true), (Cast, 1, Gt)),
        &one(2, 2, 1, 0)
    )
    .is_err());
}

fn ballots(spec: &[(&str, &[u32], usize)]) -> Vec<Ballot> {
    spec.iter()
        .flat_map(|(class, choices, n)| {
            std::iter::repeat_n(
                Ballot {
                    class: class.to_string(),
                    choices: choices.to_vec(),
                },
                *n,
            )
        })
        .collect()
}

fn members(n: u64) -> BTreeMap<ClassId, u64> {
    BTreeMap::from([("members".to_string(), n)])
}

#[test]
fn plurality_and_approval_with_declared_tie_breaks() {
    let b = ballots(&[
        ("members", &[0], 3),
        ("members", &[1], 3),
        ("members", &[2], 1),
    ]);
    let t = tally_choices(
        3,
        &VotingMode::OneMemberOneVote,
        &members(10),
        &b,
        TieBreak::NoDecision,
    )
    .unwrap();
    assert_eq!((t.tied.clone(), t.winner), (vec![0, 1], None));
    let t = tally_choices(
        3,
        &VotingMode::OneMemberOneVote,
        &members(10),
        &b,
        TieBreak::FirstListed,
    )
    .unwrap();
    assert_eq!(t.winner, Some(0));
    // A lot is the same for everyone who recomputes it, and depends on the seed.
    let lot = |seed: u8| {
        tally_choices(
            3,
            &VotingMode::OneMemberOneVote,
            &members(10),
            &b,
            TieBreak::Lot { seed: [seed; 32] },
        )
        .unwrap()
        .winner
    };
    assert_eq!(lot(1), lot(1));
    assert!(
        (0..20).map(lot).collect::<BTreeSet<_>>().len() == 2,
        "both tied choices win some lots"
    );
    // Approval: a ballot may approve several; duplicates count once.
    let a = ballots(&[
        ("members", &[0, 1], 2),
        ("members", &[1, 1, 2], 2),
        ("members", &[2], 1),
    ]);
    let t = tally_choices(
        3,
        &VotingMode::OneMemberOneVote,
        &members(5),
        &a,
        TieBreak::NoDecision,
    )
    .unwrap();
    assert_eq!(t.winner, Some(1));
    assert_eq!(t.totals[&1], Share::of(4, 5).unwrap());
    assert_eq!(
        tally_choices(
            2,
            &VotingMode::OneMemberOneVote,
            &members(5),
            &ballots(&[("members", &[5], 1)]),
            TieBreak::NoDecision
        ),
        Err(TallyError::UnknownChoice(5))
    );
}

#[test]
fn instant_runoff_publishes_each_round_with_eliminations() {
    // 4 choices, 9 voters. Round 1: A 4, B 3, C 1, D 1 — C and D tie for last with no earlier
    // round to separate them; FirstListed eliminates the later-listed D. Round 2: D's ballot moves
    // to B: A 4, B 4, C 1 → C out, its ballot goes to B. Round 3: B 5 of 9 > half → B elected.
    let b = ballots(&[
        ("members", &[0], 4),
        ("members", &[1], 3),
        ("members", &[2, 1], 1),
        ("members", &[3, 1], 1),
    ]);
    let t = instant_runoff(
        4,
        &VotingMode::OneMemberOneVote,
        &members(9),
        &b,
        TieBreak::FirstListed,
    )
    .unwrap();
    assert_eq!(t.winner, Some(1));
    assert_eq!(t.rounds.len(), 3);
    assert_eq!(t.rounds[0].tied_for_last, vec![2, 3]);
    assert_eq!(t.rounds[0].eliminated, Some(3));
    assert_eq!(t.rounds[1].eliminated, Some(2));
    assert_eq!(t.rounds[2].elected, Some(1));
    assert_eq!(t.rounds[2].totals[&1], Share::of(5, 9).unwrap());
    // The same contest under NoDecision stops at the first tie for last place.
    let t = instant_runoff(
        4,
        &VotingMode::OneMemberOneVote,
        &members(9),
        &b,
        TieBreak::NoDecision,
    )
    .unwrap();
    assert_eq!((t.winner, t.rounds.len()), (None, 1));
}

#[test]
fn instant_runoff_breaks_a_last_place_tie_by_earlier_rounds_and_counts_exhausted_ballots() {
    // Round 1: A 3, B 2, C 2, D 1 → D out (its ballot ranks only D: exhausted).
    // Round 2: A 3, B 2, C 2, exhausted 1; B and C tie for last; round 1 does not separate them
    // either (2 and 2), so the declared tie-break applies: FirstListed eliminates C.
    // Round 3: C's ballots go to A → A 5 of 7 counted.
    let b = ballots(&[
        ("members", &[0], 3),
        ("members", &[1], 2),
        ("members", &[2, 0], 2),
        ("members", &[3], 1),
    ]);
    let t = instant_runoff(
        4,
        &VotingMode::OneMemberOneVote,
        &members(8),
        &b,
        TieBreak::FirstListed,
    )
    .unwrap();
    assert_eq!(t.rounds[0].eliminated, Some(3));
    assert_eq!(t.rounds[1].exhausted, Share::of(1, 8).unwrap());
    assert_eq!(t.rounds[1].tied_for_last, vec![1, 2]);
    assert_eq!(t.rounds[1].eliminated, Some(2));
    assert_eq!(t.winner, Some(0));
    // Earlier rounds do separate a tie: B had fewer first preferences before C's transfer.
    let b = ballots(&[
        ("members", &[0], 4),
        ("members", &[1], 2),
        ("members", &[2], 3),
        ("members", &[3, 1], 1),
    ]);
    // Round 1: A 4, B 2, C 3, D 1 → D out, to B. Round 2: A 4, B 3, C 3 → tie B/C; in round 1
    // B had 2 < C's 3, so B goes (not C, although FirstListed would favour B).
    let t = instant_runoff(
        4,
        &VotingMode::OneMemberOneVote,
        &members(10),
        &b,
        TieBreak::FirstListed,
    )
    .unwrap();
    assert_eq!(t.rounds[1].tied_for_last, vec![1, 2]);
    assert_eq!(t.rounds[1].eliminated, Some(1));
}

proptest! {
    /// Tallies do not depend on the order ballots arrive in.
    #[test]
    fn results_are_independent_of_ballot_order(
        raw in prop::collection::vec((0u32..4, prop::collection::vec(0u32..4, 0..4)), 1..40),
        seed in any::<u64>(),
    ) {
        let b: Vec<Ballot> = raw.iter().map(|(cl, ch)| Ballot { class: format!("c{}", cl % 2), choices: ch.clone() }).collect();
        let mut shuffled = b.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let eligible = BTreeMap::from([("c0".to_string(), 40u64), ("c1".to_string(), 40)]);
        let mode = VotingMode::ClassWeighted { weights: BTreeMap::from([("c0".to_string(), 250_000), ("c1".to_string(), 750_000)]), cap_ppm: None, legacy_cap_field: false };
        let tb = TieBreak::Lot { seed: [3; 32] };
        prop_assert_eq!(instant_runoff(4, &mode, &eligible, &b, tb), instant_runoff(4, &mode, &eligible, &shuffled, tb));
        prop_assert_eq!(tally_choices(4, &mode, &eligible, &b, tb), tally_choices(4, &mode, &eligible, &shuffled, tb));
    }
}

fn exact(num: u32, den: u32) -> Ratio {
    Ratio::Exact { num, den }
}

/// Yes votes, no votes and abstentions that put the yes share exactly at `num/den` on `basis`
/// (eligible = 2·den + 1 leaves room for absentees).
fn at_boundary(basis: ThresholdBasis, num: u64, den: u64) -> (u64, u64, u64, u64) {
    match basis {
        // yes / (yes + no) = num / den: yes = num, no = den − num.
        ThresholdBasis::CastExcludingAbstain => (2 * den + 1, num, den - num, 1),
        // yes / (yes + no + abstain) = num / den: one abstention among the den cast.
        ThresholdBasis::CastIncludingAbstain => (2 * den + 1, num, den - num - 1, 1),
        // yes / eligible = num / den.
        ThresholdBasis::Eligible => (den, num, den - num, 0),
    }
}

/// Boundary tables for 1/2, 2/3 and 3/4 with `gte` and `gt` on every basis: exactly at the
/// ratio, `gte` adopts and `gt` rejects; one yes vote short (turned into a no), both reject;
/// one more yes vote, both adopt.
#[test]
fn exact_ratios_decide_exactly_at_the_boundary() {
    for (num, den) in [(1u32, 2u32), (2, 3), (3, 4)] {
        for basis in [Cast, CastAbst, Eligible] {
            for (cmp, at_adopts) in [(Gte, true), (Gt, false)] {
                let (eligible, yes, no, abstain) =
                    at_boundary(basis, u64::from(num), u64::from(den));
                let r = YesNoRules {
                    mode: VotingMode::OneMemberOneVote,
                    quorum: Quorum {
                        basis: EligibleMembers,
                        minimum: exact(0, 1),
                        abstentions_count: true,
                    },
                    threshold: Threshold {
                        basis,
                        ratio: exact(num, den),
                        comparator: cmp,
                    },
                    every_class: None,
                };
                let case = format!("{num}/{den} {basis:?} {cmp:?}");
                let t = tally_yes_no(&r, &one(eligible, yes, no, abstain)).unwrap();
                assert_eq!(
                    t.yes_share,
                    Some(Share::of(u64::from(num), u64::from(den)).unwrap()),
                    "{case}"
                );
                assert_eq!(t.threshold_met, at_adopts, "{case}: exactly at the ratio");
                let short = tally_yes_no(&r, &one(eligible, yes - 1, no + 1, abstain)).unwrap();
                assert!(!short.threshold_met, "{case}: one vote short");
                let more = tally_yes_no(&r, &one(eligible + 1, yes + 1, no, abstain)).unwrap();
                assert!(more.threshold_met, "{case}: one vote more");
            }
        }
    }
}

/// The issue's case: 4 yes, 2 no, 3 absent under the default two-thirds rule is adopted; so
/// are 2 of 3 and 6 of 9. Under the old `ratioPpm: 666667` (what older logs hold) they were not,
/// and still are not: those logs recount as they did.
#[test]
fn two_thirds_is_two_thirds() {
    let b = crate::bylaws::Bylaws::single_class();
    let special = &b.decisions[&crate::bylaws::DecisionKind::Special];
    assert_eq!(special.threshold.ratio, exact(2, 3));
    assert_eq!(special.threshold.comparator, Gte);
    let rules = |ratio| YesNoRules {
        mode: VotingMode::OneMemberOneVote,
        quorum: special.quorum,
        threshold: Threshold {
            ratio,
            ..special.threshold
        },
        every_class: None,
    };
    for (eligible, yes, no) in [(9, 4, 2), (3, 2, 1), (9, 6, 3)] {
        let counts = one(eligible, yes, no, 0);
        let t = tally_yes_no(&rules(exact(2, 3)), &counts).unwrap();
        assert_eq!(t.outcome, Outcome::Adopted, "{yes} of {}", yes + no);
        let old = tally_yes_no(&rules(Ratio::Ppm(666_667)), &counts).unwrap();
        assert_eq!(
            old.outcome,
            Outcome::Rejected,
            "{yes} of {} (ppm)",
            yes + no
        );
    }
}

#[test]
fn ratios_are_written_one_way() {
    for (text, ok) in [
        ("2/3", true),
        ("0/1", true),
        ("1/1", true),
        ("4/6", false),
        ("3/2", false),
        ("1/0", false),
        ("02/3", false),
        ("+2/3", false),
        ("2 /3", false),
        ("2/3/4", false),
        ("", false),
        ("0.5", false),
    ] {
        assert_eq!(Ratio::parse(text).is_ok(), ok, "{text:?}");
    }
    // Both spellings round-trip byte for byte; giving both, or neither, is refused.
    for text in [
        r#"{"basis":"eligible","ratio":"2/3","comparator":"gte"}"#,
        r#"{"basis":"eligible","ratioPpm":666667,"comparator":"gte"}"#,
    ] {
        let t: Threshold = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), text);
    }
    for text in [
        r#"{"basis":"eligible","ratio":"2/3","ratioPpm":666667,"comparator":"gte"}"#,
        r#"{"basis":"eligible","comparator":"gte"}"#,
        r#"{"basis":"eligible","ratio":"2/3","comparator":"gte","ratioPPM":1}"#,
        r#"{"basis":"eligible_members","minimumPPM":1,"abstentionsCount":true}"#,
    ] {
        assert!(serde_json::from_str::<Threshold>(text).is_err(), "{text}");
        assert!(serde_json::from_str::<Quorum>(text).is_err(), "{text}");
    }
}

proptest! {
    /// The comparator agrees with integer cross-multiplication: yes/base ≥ num/den ⇔
    /// yes·den ≥ num·base (and > for `gt`), for shares and ratios given as fractions or ppm.
    #[test]
    fn the_comparator_is_exact_rational_arithmetic(
        yes in 0u64..1_000_000,
        extra in 0u64..1_000_000,
        num in 0u32..10_000,
        den_extra in 0u32..10_000,
        ppm in 0u32..=1_000_000,
    ) {
        let base = yes + extra;
        prop_assume!(base > 0);
        let share = Share::of(yes, base).unwrap();
        let den = num + den_extra;
        prop_assume!(den > 0);
        for (ratio, n, d) in [(exact(num, den), u128::from(num), u128::from(den)), (Ratio::Ppm(ppm), u128::from(ppm), 1_000_000)] {
            let lhs = u128::from(yes) * d;
            let rhs = n * u128::from(base);
            prop_assert_eq!(Gte.holds(&share, &ratio), lhs >= rhs);
            prop_assert_eq!(Gt.holds(&share, &ratio), lhs > rhs);
        }
    }
}
