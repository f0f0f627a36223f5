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

fn reset_payload(new: u8, member: &str) -> Value {
    let mut p = key_add_payload(new, member);
    p["member"] = json!(member);
    p
}

/// A co-op whose key resets wait one minute; founders 2 and 5 on the board.
fn reset_world() -> World {
    let mut b = test_bylaws();
    b.key_reset = Some(crate::bylaws::KeyResetRules { wait_ms: 60_000 });
    World::with(
        b,
        &[
            (2, "members", &[Role::Board]),
            (3, "members", &[]),
            (4, "members", &[]),
            (5, "members", &[Role::Board]),
        ],
    )
}

#[test]
fn a_key_reset_waits_out_its_veto_period_then_replaces_every_key() {
    let mut w = reset_world();
    // Member 3 has two keys (3 and 8) and loses both; their new device holds key 9.
    w.submit(3, "member.key_add", key_add_payload(8, &mid(3)))
        .unwrap();
    // Only the board asks; not for themselves; the new key proves possession for this member.
    assert_eq!(
        w.refused(4, "member.key_reset", reset_payload(9, &mid(3))),
        "role.required"
    );
    assert_eq!(
        w.refused(2, "member.key_reset", reset_payload(9, &mid(2))),
        "reset.self"
    );
    let mut wrong = reset_payload(9, &mid(4));
    wrong["member"] = json!(mid(3));
    assert_eq!(w.refused(2, "member.key_reset", wrong), "key.proof");
    assert_eq!(
        w.refused(2, "member.key_reset", reset_payload(4, &mid(3))),
        "key.known"
    );
    let mut labelled = reset_payload(9, &mid(3));
    labelled["label"] = json!("new phone");
    let at = w.index;
    w.submit(2, "member.key_reset", labelled).unwrap();
    let r = w.member(3).key_reset.unwrap();
    assert_eq!(
        (r.index, r.due_ms, r.by.as_str()),
        (at, T0 + 60_000, mid(2).as_str())
    );
    // Nothing changed yet: the old keys still act, the new key does not.
    let p = w.propose(2, json!({}));
    w.vote(3, &p, "yes").unwrap();
    assert!(records::key(&w.s, &pk(9)).unwrap().is_none());
    assert_eq!(
        w.refused(5, "member.key_reset", reset_payload(10, &mid(3))),
        "reset.pending"
    );
    // Too early, by the new key or by the board.
    let done = json!({"member": mid(3)});
    assert_eq!(
        w.refused(9, "member.key_reset_complete", done.clone()),
        "reset.waiting"
    );
    w.now += 59_999;
    assert_eq!(
        w.refused(5, "member.key_reset_complete", done.clone()),
        "reset.waiting"
    );
    // A stranger's key, or a plain member's, cannot complete it.
    assert_eq!(
        w.refused(10, "member.key_reset_complete", done.clone()),
        "reset.signer"
    );
    w.now += 1;
    assert_eq!(
        w.refused(4, "member.key_reset_complete", done.clone()),
        "role.required"
    );
    let completed = w.index;
    w.submit(9, "member.key_reset_complete", done.clone())
        .unwrap();
    // Every old key revoked at the completion; the new one current, with its label.
    for old in [3, 8] {
        assert_eq!(
            records::key(&w.s, &pk(old)).unwrap().unwrap().revoked,
            Some(completed)
        );
    }
    let k = records::key(&w.s, &pk(9)).unwrap().unwrap();
    assert_eq!(
        (k.member.clone(), k.revoked, k.label.as_deref()),
        (mid(3), None, Some("new phone"))
    );
    let m = w.member(3);
    assert_eq!(m.key_reset, None);
    assert_eq!(m.keys.len(), 3);
    assert_eq!(
        rejected_rule(w.vote(3, &p, "no").map(|_| ())),
        "key.revoked"
    );
    w.vote(9, &p, "no").unwrap();
    assert_eq!(
        w.refused(9, "member.key_reset_complete", done),
        "reset.unknown"
    );
}

#[test]
fn any_current_key_of_the_member_vetoes_a_key_reset() {
    let mut w = reset_world();
    let at = w.index;
    w.submit(2, "member.key_reset", reset_payload(9, &mid(3)))
        .unwrap();
    // Only the member's own keys veto, naming the pending reset.
    assert_eq!(
        w.refused(
            4,
            "member.key_reset_veto",
            json!({"member": mid(3), "reset": at})
        ),
        "reset.veto_signer"
    );
    assert_eq!(
        w.refused(
            2,
            "member.key_reset_veto",
            json!({"member": mid(3), "reset": at})
        ),
        "reset.veto_signer"
    );
    assert_eq!(
        w.refused(
            3,
            "member.key_reset_veto",
            json!({"member": mid(3), "reset": at + 1})
        ),
        "reset.unknown"
    );
    w.submit(
        3,
        "member.key_reset_veto",
        json!({"member": mid(3), "reset": at}),
    )
    .unwrap();
    assert_eq!(w.member(3).key_reset, None);
    // Vetoed: completing it later is refused and the old key still acts.
    w.now += 120_000;
    assert_eq!(
        w.refused(9, "member.key_reset_complete", json!({"member": mid(3)})),
        "reset.unknown"
    );
    assert_eq!(
        w.refused(
            3,
            "member.key_reset_veto",
            json!({"member": mid(3), "reset": at})
        ),
        "reset.unknown"
    );
    w.submit(
        3,
        "coop.attest",
        json!({"digest": b64_encode([1u8; 32]), "kind": "minutes"}),
    )
    .unwrap();
    // The board may ask again; a suspended member can still be reset.
    w.submit(
        2,
        "member.suspend",
        json!({"member": mid(3), "reason": b64_encode([2u8; 32])}),
    )
    .unwrap();
    w.submit(2, "member.key_reset", reset_payload(9, &mid(3)))
        .unwrap();
    assert!(w.member(3).key_reset.is_some());
}

#[test]
fn bylaws_bound_the_key_reset_wait() {
    let mut b = test_bylaws();
    assert_eq!(
        b.key_reset_wait_ms(),
        crate::bylaws::DEFAULT_KEY_RESET_WAIT_MS
    );
    for (wait, ok) in [
        (999, false),
        (1_000, true),
        (365 * DAY, true),
        (365 * DAY + 1, false),
    ] {
        b.key_reset = Some(crate::bylaws::KeyResetRules { wait_ms: wait });
        assert_eq!(b.validate().is_ok(), ok, "{wait}");
    }
    b.key_reset = Some(crate::bylaws::KeyResetRules { wait_ms: 3 * DAY });
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["keyReset"], json!({"waitMs": 3 * DAY}));
    assert_eq!(Bylaws::from_json(&v).unwrap(), b);
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

fn admission_bylaws(by: AdmittedBy, invitation_required: bool, max_pending: u64) -> Bylaws {
    let mut b = test_bylaws();
    b.admission = Some(AdmissionRules {
        by,
        invitation_required,
        max_pending,
    });
    b
}

fn board_and_treasurer(bylaws: Bylaws) -> World {
    World::with(
        bylaws,
        &[
            (2, "members", &[Role::Board]),
            (3, "members", &[Role::Treasurer]),
            (4, "members", &[]),
        ],
    )
}

/// Keys 100.. apply; returns the application ids (hex).
fn applications(w: &mut World, keys: std::ops::Range<u8>) -> Vec<String> {
    keys.map(|n| {
        hex::encode(
            w.submit(n, "member.apply", json!({"class": "members"}))
                .unwrap(),
        )
    })
    .collect()
}

#[test]
fn a_board_admits_many_applicants_in_one_entry() {
    let mut w = board_and_treasurer(admission_bylaws(AdmittedBy::Board, false, 1_000));
    let apps = applications(&mut w, 100..160);
    // Not a board member: refused; the board: all sixty in one entry.
    assert_eq!(
        w.refused(4, "member.admit", json!({"applications": apps})),
        "role.required"
    );
    let before = records::coop(&w.s).unwrap().unwrap().members;
    w.submit(2, "member.admit", json!({"applications": apps}))
        .unwrap();
    assert_eq!(records::coop(&w.s).unwrap().unwrap().members, before + 60);
    assert_eq!(w.member(130).status, MemberStatus::Active);
    // All or nothing: one admitted application in a list refuses the whole entry.
    let more = applications(&mut w, 160..162);
    let mixed = json!({"applications": [more[0], apps[0], more[1]]});
    assert_eq!(w.refused(2, "member.admit", mixed), "admit.application");
    assert!(
        records::application(&w.s, &crate::parse_id(&more[0]).unwrap())
            .unwrap()
            .unwrap()
            .admitted
            .is_none()
    );
    // Bounded: at most MAX_ADMISSIONS_PER_ENTRY per entry, no repeats.
    let too_many: Vec<String> = (0..=MAX_ADMISSIONS_PER_ENTRY)
        .map(|i| format!("{i:064x}"))
        .collect();
    assert_eq!(
        malformed_field(w.submit(2, "member.admit", json!({"applications": too_many}))),
        "body.payload.applications"
    );
    assert_eq!(
        malformed_field(w.submit(
            2,
            "member.admit",
            json!({"applications": [more[0], more[0]]})
        )),
        "body.payload.applications[1]"
    );
}

#[test]
fn applications_are_bounded_one_per_key_and_by_a_cap_and_the_board_can_decline() {
    let mut w = board_and_treasurer(admission_bylaws(AdmittedBy::Board, false, 3));
    let apps = applications(&mut w, 100..103);
    // The same key again while pending: refused.
    assert_eq!(
        w.refused(100, "member.apply", json!({"class": "members"})),
        "apply.pending"
    );
    // The cap: a fourth stranger is refused until one is dealt with.
    assert_eq!(
        w.refused(103, "member.apply", json!({"class": "members"})),
        "apply.cap"
    );
    w.submit(2, "member.decline", json!({"application": apps[0]}))
        .unwrap();
    let declined = records::application(&w.s, &crate::parse_id(&apps[0]).unwrap())
        .unwrap()
        .unwrap();
    assert!(declined.declined.is_some());
    assert_eq!(
        w.refused(2, "member.admit", json!({"application": apps[0]})),
        "admit.application"
    );
    w.submit(103, "member.apply", json!({"class": "members"}))
        .unwrap();
    // A declined applicant may apply again (their key is no longer pending)... once the cap
    // allows: admitting frees slots too.
    w.submit(
        2,
        "member.admit",
        json!({"applications": [apps[1], apps[2]]}),
    )
    .unwrap();
    w.submit(100, "member.apply", json!({"class": "members"}))
        .unwrap();
}

#[test]
fn an_invitation_signed_by_a_board_key_is_required_when_the_bylaws_say_so() {
    let mut w = board_and_treasurer(admission_bylaws(AdmittedBy::Board, true, 100));
    assert_eq!(
        w.refused(100, "member.apply", json!({"class": "members"})),
        "apply.invitation"
    );
    let invite = |by: u8, applicant: u8| {
        json!({"class": "members",
               "invitedBy": b64_encode(pk(by)),
               "invitation": b64_encode(key(by).sign(&invitation_message(COOP, &pk(applicant))).to_bytes())})
    };
    // Signed by a member who is not on the board; for another applicant; by the board: ok.
    assert_eq!(
        w.refused(100, "member.apply", invite(4, 100)),
        "apply.invitation"
    );
    assert_eq!(
        w.refused(100, "member.apply", invite(2, 101)),
        "apply.invitation"
    );
    w.submit(100, "member.apply", invite(2, 100)).unwrap();
}

#[test]
fn paid_share_admission_is_by_the_treasurer_with_one_payment_reference_each() {
    let mut w = board_and_treasurer(admission_bylaws(AdmittedBy::PaidShare, false, 100));
    let apps = applications(&mut w, 100..103);
    let shares: Vec<String> = (0..3u8).map(|i| b64_encode([i; 32])).collect();
    assert_eq!(
        w.refused(
            2,
            "member.admit",
            json!({"applications": apps, "shares": shares})
        ),
        "role.required"
    );
    assert_eq!(
        malformed_field(w.submit(
            3,
            "member.admit",
            json!({"applications": apps, "shares": [shares[0]]})
        )),
        "body.payload.shares"
    );
    w.submit(
        3,
        "member.admit",
        json!({"applications": apps, "shares": shares}),
    )
    .unwrap();
    let a = records::application(&w.s, &crate::parse_id(&apps[2]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(a.share.as_deref(), Some(shares[2].as_str()));
}

#[test]
fn under_general_vote_a_direct_admission_is_refused() {
    let mut w = board_and_treasurer(admission_bylaws(AdmittedBy::GeneralVote, false, 100));
    let apps = applications(&mut w, 100..101);
    assert_eq!(
        w.refused(2, "member.admit", json!({"applications": apps})),
        "admit.decision"
    );
    // Bylaws written before the admission section behave the same.
    let mut legacy = test_bylaws();
    legacy.admission = None;
    let mut w = board_and_treasurer(legacy);
    let apps = applications(&mut w, 100..101);
    assert_eq!(
        w.refused(2, "member.admit", json!({"application": apps[0]})),
        "admit.decision"
    );
    // No bounds either: the same key may apply twice, as before.
    w.submit(101, "member.apply", json!({"class": "members"}))
        .unwrap();
    w.submit(
        101,
        "member.apply",
        json!({"class": "members", "details": b64_encode([1; 32])}),
    )
    .unwrap();
}
