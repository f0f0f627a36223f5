//! Membership rules: admission, late admission and voting, suspension, key rotation, expulsion
//! with notice, withdrawal and class changes.

use super::*;

#[test]
fn admission_needs_an_application_an_adopted_decision_and_the_board() {
    let mut w = World::new();
    let app = hex::encode(
        w.submit(5, "member.apply", json!({"class": "members"}))
            .unwrap(),
    );
    assert_eq!(
        w.refused(6, "member.apply", json!({"class": "pilots"})),
        "class.unknown"
    );
    assert_eq!(
        w.refused(3, "member.apply", json!({"class": "members"})),
        "apply.known_key"
    );
    let p = w.propose(3, json!({"kind": "admission", "application": app}));
    // Not closed yet.
    assert_eq!(
        w.refused(
            2,
            "member.admit",
            json!({"application": app, "decision": p})
        ),
        "decision.adopted"
    );
    w.vote(2, &p, "yes").unwrap();
    w.vote(3, &p, "no").unwrap();
    w.vote(4, &p, "yes").unwrap();
    let closed = w.close(&p);
    assert_eq!(closed.tally.unwrap().outcome, Outcome::Adopted);
    // Only the board admits.
    assert_eq!(
        w.refused(
            3,
            "member.admit",
            json!({"application": app, "decision": p})
        ),
        "role.required"
    );
    let other = w.propose(2, json!({}));
    assert_eq!(
        w.refused(
            2,
            "member.admit",
            json!({"application": app, "decision": other})
        ),
        "decision.kind"
    );
    let admitted_at = w.index;
    w.submit(
        2,
        "member.admit",
        json!({"application": app, "decision": p}),
    )
    .unwrap();
    let m = w.member(5);
    assert_eq!(m.status, MemberStatus::Active);
    assert_eq!(m.history[0].index, admitted_at);
    assert_eq!(
        w.refused(
            2,
            "member.admit",
            json!({"application": app, "decision": p})
        ),
        "admit.application"
    );
    assert_eq!(records::coop(&w.s).unwrap().unwrap().members, 4);
    // Who was a member at which index.
    let before: Vec<String> = records::members_at(&w.s, admitted_at - 1)
        .unwrap()
        .into_iter()
        .map(|s| s.member)
        .collect();
    assert!(!before.contains(&mid(5)));
    assert_eq!(before.len(), 3);
    assert_eq!(records::members_at(&w.s, admitted_at).unwrap().len(), 4);
}

#[test]
fn a_member_admitted_after_the_proposal_was_created_cannot_vote_on_it() {
    let mut w = World::new();
    let early = w.propose(3, json!({"closesMs": T0 + DAY / 2}));
    w.admit(5, "members");
    assert_eq!(
        rejected_rule(w.vote(5, &early, "yes").map(|_| ())),
        "vote.electorate"
    );
    let later = w.propose(3, json!({}));
    w.vote(5, &later, "yes").unwrap();
    let p = records::proposal(&w.s, &crate::parse_id(&early).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(p.eligible["members"], 3);
}

#[test]
fn a_suspended_member_cannot_vote_until_reinstated() {
    let mut w = World::new();
    let p = w.propose(3, json!({}));
    let reason = b64_encode([5u8; 32]);
    assert_eq!(
        w.refused(
            3,
            "member.suspend",
            json!({"member": mid(4), "reason": reason})
        ),
        "role.required"
    );
    w.submit(
        2,
        "member.suspend",
        json!({"member": mid(4), "reason": reason}),
    )
    .unwrap();
    assert_eq!(
        rejected_rule(w.vote(4, &p, "yes").map(|_| ())),
        "vote.suspended"
    );
    assert_eq!(w.refused(4, "gov.propose", json!({})), "member.active");
    w.submit(2, "member.reinstate", json!({"member": mid(4)}))
        .unwrap();
    w.vote(4, &p, "yes").unwrap();
    let m = w.member(4);
    let events: Vec<&str> = m.history.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["founded", "suspended", "reinstated"]);
}

fn key_add_payload(new: u8, member: &str) -> Value {
    let proof = key(new).sign(&key_add_message(COOP, member));
    json!({"key": b64_encode(pk(new)), "proof": b64_encode(proof.to_bytes())})
}

#[test]
fn a_revoked_key_is_refused_and_the_new_key_accepted() {
    let mut w = World::new();
    let p = w.propose(2, json!({}));
    // Proof of possession: key 8 cannot be added with a proof for another member.
    let wrong = key_add_payload(8, &mid(4));
    assert_eq!(w.refused(3, "member.key_add", wrong), "key.proof");
    assert_eq!(
        w.refused(3, "member.key_revoke", json!({"key": b64_encode(pk(3))})),
        "key.last"
    );
    w.submit(3, "member.key_add", key_add_payload(8, &mid(3)))
        .unwrap();
    assert_eq!(
        w.refused(4, "member.key_add", key_add_payload(8, &mid(4))),
        "key.known"
    );
    w.vote(3, &p, "no").unwrap();
    w.submit(8, "member.key_revoke", json!({"key": b64_encode(pk(3))}))
        .unwrap();
    assert_eq!(
        rejected_rule(w.vote(3, &p, "yes").map(|_| ())),
        "key.revoked"
    );
    // A vote must name the signer's own member.
    assert_eq!(
        w.refused(
            8,
            "gov.vote",
            json!({"proposal": p, "member": mid(4), "vote": "yes"})
        ),
        "vote.member"
    );
    // The new key acts for the same member: its vote supersedes the one the old key cast.
    w.vote(8, &p, "yes").unwrap();
    let votes = records::votes(&w.s, &crate::parse_id(&p).unwrap()).unwrap();
    assert_eq!(votes[&mid(3)].vote, Vote::Yes);
    assert!(votes[&mid(3)].supersedes.is_some());
    assert_eq!(w.member(3).keys.len(), 2);
}

#[test]
fn a_key_carries_the_members_label() {
    let mut w = World::new();
    let mut p = key_add_payload(8, &mid(3));
    p["label"] = json!("treasurer's laptop");
    w.submit(3, "member.key_add", p).unwrap();
    let k = records::key(&w.s, &pk(8)).unwrap().unwrap();
    assert_eq!(k.label.as_deref(), Some("treasurer's laptop"));
    // The founding key has none; a label is at most 64 characters.
    assert_eq!(records::key(&w.s, &pk(3)).unwrap().unwrap().label, None);
    let mut long = key_add_payload(9, &mid(3));
    long["label"] = json!("x".repeat(65));
    assert!(matches!(
        w.submit(3, "member.key_add", long),
        Err(ApplyError::Rejected(Rejection::Malformed { field, .. })) if field == "body.payload.label"
    ));
}

#[test]
fn expulsion_needs_notice_the_notice_period_and_an_adopted_decision() {
    let mut w = World::new();
    let reason = b64_encode([9u8; 32]);
    let p = w.propose(2, json!({"kind": "expulsion", "member": mid(4)}));
    w.vote(2, &p, "yes").unwrap();
    w.vote(3, &p, "yes").unwrap();
    w.close(&p);
    assert_eq!(
        w.refused(2, "member.expel", json!({"member": mid(4), "decision": p})),
        "expel.notice"
    );
    w.submit(
        2,
        "member.notice",
        json!({"member": mid(4), "reason": reason}),
    )
    .unwrap();
    w.now += 14 * DAY - 1;
    assert_eq!(
        w.refused(2, "member.expel", json!({"member": mid(4), "decision": p})),
        "expel.notice_period"
    );
    w.now += 1;
    let other = w.propose(2, json!({"kind": "expulsion", "member": mid(3)}));
    assert_eq!(
        w.refused(
            2,
            "member.expel",
            json!({"member": mid(4), "decision": other})
        ),
        "decision.subject"
    );
    w.submit(2, "member.expel", json!({"member": mid(4), "decision": p}))
        .unwrap();
    assert_eq!(w.member(4).status, MemberStatus::Expelled);
    assert_eq!(
        w.refused(
            4,
            "gov.vote",
            json!({"proposal": other, "member": w.member_of(4), "vote": "no"})
        ),
        "vote.suspended"
    );
    assert_eq!(records::coop(&w.s).unwrap().unwrap().members, 2);
}

#[test]
fn withdrawal_and_class_change_are_recorded_in_the_history() {
    let mut w = World::with(
        two_class_bylaws(),
        &[
            (2, "drivers", &[Role::Board]),
            (3, "riders", &[]),
            (4, "riders", &[]),
        ],
    );
    w.submit(
        2,
        "member.class",
        json!({"member": mid(3), "class": "drivers"}),
    )
    .unwrap();
    assert_eq!(
        w.refused(
            2,
            "member.class",
            json!({"member": mid(3), "class": "pilots"})
        ),
        "class.unknown"
    );
    w.submit(4, "member.withdraw", json!({})).unwrap();
    assert_eq!(w.refused(4, "member.withdraw", json!({})), "member.status");
    let at_genesis = records::members_at(&w.s, 0).unwrap();
    let now = records::members_at(&w.s, w.index).unwrap();
    let class_of = |v: &[records::Standing], m: &str| {
        v.iter()
            .find(|s| s.member == m)
            .map(|s| (s.class.clone(), s.status))
    };
    assert_eq!(
        class_of(&at_genesis, &mid(3)),
        Some(("riders".into(), MemberStatus::Active))
    );
    assert_eq!(
        class_of(&now, &mid(3)),
        Some(("drivers".into(), MemberStatus::Active))
    );
    assert_eq!(
        class_of(&now, &mid(4)),
        Some(("riders".into(), MemberStatus::Withdrawn))
    );
}
