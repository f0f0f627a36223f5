//! Proposals, votes, proxies and tallies: windows by both clocks, frozen rules, amendments,
//! revotes, proxy caps, the tally entry's checks, bylaws amendments, elections, class weights.

use super::*;

#[test]
fn votes_outside_the_window_by_either_clock_are_refused() {
    let mut w = World::new();
    let p = w.propose(2, json!({"opensMs": T0 + 60_000, "closesMs": T0 + 180_000}));
    assert_eq!(
        rejected_rule(w.vote(3, &p, "yes").map(|_| ())),
        "vote.window"
    );
    w.now = T0 + 60_000;
    // Node time inside, signer time before opening.
    let early = w.submit_at(
        3,
        "gov.vote",
        json!({"proposal": p, "member": mid(3), "vote": "yes"}),
        T0 + 59_999,
    );
    assert_eq!(rejected_rule(early.map(|_| ())), "vote.window");
    w.vote(3, &p, "yes").unwrap();
    w.now = T0 + 180_000;
    assert_eq!(
        rejected_rule(w.vote(4, &p, "yes").map(|_| ())),
        "vote.window"
    );
    assert_eq!(
        w.refused(
            3,
            "gov.vote",
            json!({"proposal": p, "member": w.member_of(3), "vote": "maybe"})
        ),
        "vote.window"
    );
}

#[test]
fn proposals_follow_the_frozen_rules_and_are_amended_only_before_opening() {
    let mut w = World::new();
    let base = json!({"kind": "ordinary", "title": "t", "method": "yes_no",
                      "opensMs": T0, "closesMs": T0 + 120_000});
    let with = |k: &str, v: Value| {
        let mut p = base.clone();
        p[k] = v;
        p
    };
    assert_eq!(
        w.refused(3, "gov.propose", with("closesMs", json!(T0 + 1000))),
        "proposal.duration"
    );
    let mut approval = with("method", json!("approval"));
    approval["choices"] = json!(["a", "b"]);
    assert_eq!(w.refused(3, "gov.propose", approval), "proposal.method");
    assert_eq!(
        w.refused(3, "gov.propose", with("opensMs", json!(T0 - 1))),
        "proposal.notice"
    );
    assert_eq!(
        malformed_field(w.submit(3, "gov.propose", with("kind", json!("coup")))),
        "body.payload.kind"
    );
    assert_eq!(
        malformed_field(w.submit(3, "gov.propose", with("member", json!(mid(4))))),
        "body.payload.member"
    );
    let p = w.propose(3, json!({"opensMs": T0 + 60_000, "closesMs": T0 + 200_000}));
    assert_eq!(
        w.refused(4, "gov.amend", json!({"proposal": p, "title": "mine now"})),
        "proposal.proposer"
    );
    w.submit(
        3,
        "gov.amend",
        json!({"proposal": p, "title": "Better title"}),
    )
    .unwrap();
    w.now = T0 + 60_000;
    assert_eq!(
        w.refused(3, "gov.amend", json!({"proposal": p, "title": "too late"})),
        "proposal.opened"
    );
    let id = crate::parse_id(&p).unwrap();
    assert_eq!(
        records::proposal(&w.s, &id).unwrap().unwrap().title,
        "Better title"
    );
    w.submit(3, "gov.withdraw", json!({"proposal": p})).unwrap();
    assert_eq!(
        w.refused(
            3,
            "gov.vote",
            json!({"proposal": p, "member": w.member_of(3), "vote": "yes"})
        ),
        "proposal.closed"
    );
    assert!(records::due_for_tally(&w.s, u64::MAX).unwrap().is_empty());
    assert_eq!(records::proposal_entries(&w.s, &id).unwrap().len(), 3);
}

#[test]
fn revotes_supersede_unless_the_bylaws_forbid_them() {
    let mut b = test_bylaws();
    if let Some(d) = b.decisions.get_mut(&DecisionKind::Special) {
        d.revote = false;
    }
    let mut w = World::with(b, &[(2, "members", &[Role::Board]), (3, "members", &[])]);
    let ordinary = w.propose(2, json!({}));
    w.vote(3, &ordinary, "no").unwrap();
    w.vote(3, &ordinary, "yes").unwrap();
    let special = w.propose(2, json!({"kind": "special"}));
    w.vote(3, &special, "no").unwrap();
    assert_eq!(
        rejected_rule(w.vote(3, &special, "yes").map(|_| ())),
        "vote.revote"
    );
    let t = w.close(&ordinary).tally.unwrap();
    assert_eq!((t.ballots, t.outcome), (1, Outcome::Adopted));
}

#[test]
fn proxies_respect_the_cap_and_the_grantors_own_vote_overrides_them() {
    let mut w = World::with(
        test_bylaws(),
        &[
            (2, "members", &[Role::Board]),
            (3, "members", &[]),
            (4, "members", &[]),
            (5, "members", &[]),
            (6, "members", &[]),
        ],
    );
    let p = w.propose(2, json!({}));
    w.submit(
        3,
        "gov.proxy",
        json!({"proposal": p, "member": w.member_of(3), "to": mid(2)}),
    )
    .unwrap();
    // The cap is one proxy per holder.
    assert_eq!(
        w.refused(
            4,
            "gov.proxy",
            json!({"proposal": p, "member": w.member_of(4), "to": mid(2)})
        ),
        "proxy.cap"
    );
    assert_eq!(
        w.refused(
            4,
            "gov.proxy",
            json!({"proposal": p, "member": w.member_of(4), "to": mid(4)})
        ),
        "proxy.self"
    );
    w.submit(
        4,
        "gov.proxy",
        json!({"proposal": p, "member": w.member_of(4), "to": mid(5)}),
    )
    .unwrap();
    w.vote(2, &p, "yes").unwrap();
    w.vote(5, &p, "no").unwrap();
    // Member 4 votes directly: overrides member 5's proxy vote.
    w.vote(4, &p, "yes").unwrap();
    let t = w.close(&p).tally.unwrap();
    assert_eq!((t.ballots, t.by_proxy), (4, 1));
    match t.result {
        crate::tallying::TallyResult::YesNo(y) => {
            assert_eq!(y.yes_share.map(|s| s.0.to_string()), Some("3/4".into()))
        }
        other => panic!("{other:?}"),
    }
    let mut no_proxies = test_bylaws();
    for d in no_proxies.decisions.values_mut() {
        d.proxies.allowed = false;
    }
    let mut w = World::with(
        no_proxies,
        &[(2, "members", &[Role::Board]), (3, "members", &[])],
    );
    let p = w.propose(2, json!({}));
    assert_eq!(
        w.refused(
            3,
            "gov.proxy",
            json!({"proposal": p, "member": w.member_of(3), "to": mid(2)})
        ),
        "proxy.disallowed"
    );
}

#[test]
fn the_tally_entry_must_come_from_the_node_after_close_and_match_the_recount() {
    let mut w = World::new();
    let p = w.propose(2, json!({}));
    w.vote(3, &p, "yes").unwrap();
    let id = crate::parse_id(&p).unwrap();
    let payload = Value::Object(tally_entry_payload(&w.s, &id).unwrap().unwrap());
    assert_eq!(w.refused(1, "gov.tally", payload.clone()), "tally.early");
    w.now = T0 + 120_000;
    assert_eq!(w.refused(2, "gov.tally", payload.clone()), "role.required");
    let mut forged = payload.clone();
    forged["tally"]["outcome"] = json!("rejected");
    assert_eq!(w.refused(1, "gov.tally", forged), "tally.mismatch");
    assert_eq!(records::due_for_tally(&w.s, w.now).unwrap(), vec![id]);
    w.submit(1, "gov.tally", payload.clone()).unwrap();
    assert_eq!(w.refused(1, "gov.tally", payload), "proposal.closed");
    assert!(records::due_for_tally(&w.s, w.now).unwrap().is_empty());
    // 1 of 3 took part: quorum (20%) met; 1 yes of 1 cast.
    let p = records::proposal(&w.s, &id).unwrap().unwrap();
    assert_eq!(p.tally.unwrap().outcome, Outcome::Adopted);
    assert!(matches!(p.status, ProposalStatus::Closed { .. }));
}

#[test]
fn an_adopted_amendment_changes_the_bylaws_and_a_board_election_seats_the_winner() {
    let mut w = World::new();
    let mut next = test_bylaws();
    next.version = 2;
    if let Some(d) = next.decisions.get_mut(&DecisionKind::Ordinary) {
        d.quorum.minimum = crate::tally::Ratio::Ppm(600_000);
    }
    let stale = {
        let mut b = next.clone();
        b.version = 3;
        b
    };
    assert_eq!(
        w.refused(
            2,
            "gov.propose",
            json!({"kind": "bylaws_amendment", "title": "t", "method": "yes_no",
                   "opensMs": T0, "closesMs": T0 + 120_000,
                   "bylaws": serde_json::to_value(&stale).unwrap()})
        ),
        "proposal.subject"
    );
    let a = w.propose(
        2,
        json!({"kind": "bylaws_amendment", "bylaws": serde_json::to_value(&next).unwrap()}),
    );
    // 1 of 3 votes: quorum of 20% met, but two-thirds needs... 1/1 = 100%: adopted.
    w.vote(2, &a, "yes").unwrap();
    let closed = w.close(&a);
    assert!(matches!(
        closed.status,
        ProposalStatus::Closed { applied: true, .. }
    ));
    assert_eq!(records::bylaws(&w.s).unwrap().unwrap(), next);

    let e = w.propose(
        3,
        json!({"kind": "board_election", "method": "ranked_choice",
               "choices": [mid(3), mid(4)]}),
    );
    assert_eq!(
        w.refused(
            2,
            "gov.vote",
            json!({"proposal": e, "member": w.member_of(2), "choices": [0, 0]})
        ),
        "vote.choice"
    );
    assert_eq!(
        w.refused(
            2,
            "gov.vote",
            json!({"proposal": e, "member": w.member_of(2), "choices": [2]})
        ),
        "vote.choice"
    );
    w.submit(
        2,
        "gov.vote",
        json!({"proposal": e, "member": w.member_of(2), "choices": [1, 0]}),
    )
    .unwrap();
    w.submit(
        3,
        "gov.vote",
        json!({"proposal": e, "member": w.member_of(3), "choices": [1]}),
    )
    .unwrap();
    let closed = w.close(&e);
    assert_eq!(closed.tally.unwrap().winner, Some(1));
    assert_eq!(w.member(4).roles, vec![Role::Board]);
    assert!(w.member(3).roles.is_empty());
    let bad_election = json!({"kind": "board_election", "method": "single_choice",
        "choices": [mid(3), "m-0000000000000000"]});
    let mut p = json!({"title": "t", "opensMs": w.now, "closesMs": w.now + 120_000});
    for (k, v) in bad_election.as_object().unwrap() {
        p[k] = v.clone();
    }
    assert_eq!(w.refused(2, "gov.propose", p), "proposal.subject");
}

#[test]
fn class_weights_decide_a_multi_stakeholder_vote() {
    // Drivers weigh 70%, riders 30%: one driver's no outweighs two riders' yes.
    let mut w = World::with(
        two_class_bylaws(),
        &[
            (2, "drivers", &[Role::Board]),
            (3, "riders", &[]),
            (4, "riders", &[]),
        ],
    );
    let p = w.propose(3, json!({}));
    w.vote(2, &p, "no").unwrap();
    w.vote(3, &p, "yes").unwrap();
    w.vote(4, &p, "yes").unwrap();
    let t = w.close(&p).tally.unwrap();
    assert_eq!(t.outcome, Outcome::Rejected);
    assert_eq!(
        t.eligible,
        BTreeMap::from([("drivers".into(), 1), ("riders".into(), 2)])
    );
}

#[test]
fn the_fold_is_deterministic() {
    let run = || {
        let mut w = World::new();
        let p = w.propose(2, json!({}));
        w.vote(3, &p, "yes").unwrap();
        w.vote(4, &p, "no").unwrap();
        w.close(&p);
        w.admit(5, "members");
        w.s
    };
    assert_eq!(run(), run());
    let _ = Method::YesNo;
}
