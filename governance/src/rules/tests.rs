//! Rule tests over in-memory state: genesis, the known-signer rule, the membership lifecycle,
//! proposals, votes, proxies and tallies. Each refusal is checked by its stable rule name and
//! leaves the state unchanged.

use super::*;
use crate::bylaws::{Bylaws, DecisionKind, MemberClass, Method};
use crate::genesis::{Founder, Genesis};
use crate::records::{MemberStatus, ProposalRecord, ProposalStatus, Vote};
use crate::tally::{Outcome, VotingMode};
use coopledger_ledger::entry::admit;
use coopledger_ledger::state::MemoryState;
use coopledger_ledger::Body;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const COOP: &str = "coop.example/test";
const T0: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn pk(n: u8) -> [u8; 32] {
    key(n).verifying_key().to_bytes()
}

fn mid(n: u8) -> String {
    member_id(&pk(n))
}

/// Bylaws with fast timings for tests: votes last 1 minute to 1 day, no notice, 14 days'
/// expulsion notice, at most 1 proxy per holder.
fn test_bylaws() -> Bylaws {
    let mut b = Bylaws::single_class();
    for d in b.decisions.values_mut() {
        d.min_duration_ms = 60_000;
        d.max_duration_ms = DAY;
        d.proxies.max_per_proxy = 1;
    }
    b
}

fn two_class_bylaws() -> Bylaws {
    let mut b = test_bylaws();
    b.classes = BTreeMap::from([
        ("drivers".to_string(), MemberClass { votes: true }),
        ("riders".to_string(), MemberClass { votes: true }),
    ]);
    b.voting = VotingMode::ClassWeighted {
        weights: BTreeMap::from([("drivers".into(), 700_000), ("riders".into(), 300_000)]),
        cap_ppm: None,
    };
    b
}

/// A co-op in memory: node key 1, founders 2 (board) and 3 and 4, the clock at `now`.
struct World {
    s: MemoryState,
    index: u64,
    now: u64,
    seq: HashMap<[u8; 32], u64>,
    /// Every accepted entry by index, as the log would hold it.
    log: BTreeMap<u64, Envelope>,
}

fn env(signer: &SigningKey, kind: &str, seq: u64, ts: u64, payload: Value) -> Verified<Envelope> {
    let env = Body {
        coop: COOP.into(),
        kind: kind.into(),
        version: 1,
        signer: signer.verifying_key().to_bytes(),
        seq,
        ts,
        payload: payload.as_object().unwrap().clone(),
    }
    .sign(signer)
    .unwrap();
    admit(vec![env]).pop().unwrap().unwrap()
}

impl World {
    fn with(bylaws: Bylaws, founders: &[(u8, &str, &[Role])]) -> World {
        let g = Genesis {
            name: "Test Drivers' Co-op".into(),
            node_key: pk(1),
            founders: founders
                .iter()
                .map(|(n, class, roles)| Founder {
                    key: pk(*n),
                    class: (*class).into(),
                    roles: roles.to_vec(),
                })
                .collect(),
            bylaws,
        };
        let mut w = World {
            s: MemoryState::new(),
            index: 0,
            now: T0,
            seq: HashMap::new(),
            log: BTreeMap::new(),
        };
        w.submit(1, "coop.genesis", Value::Object(g.to_payload()))
            .unwrap();
        w
    }

    fn new() -> World {
        World::with(
            test_bylaws(),
            &[
                (2, "members", &[Role::Board]),
                (3, "members", &[]),
                (4, "members", &[]),
            ],
        )
    }

    /// Signs with key `n` at signer time = node time = `now`; returns the entry id.
    fn submit(&mut self, n: u8, kind: &str, payload: Value) -> Result<[u8; 32], ApplyError> {
        self.submit_at(n, kind, payload, self.now)
    }

    fn submit_at(
        &mut self,
        n: u8,
        kind: &str,
        payload: Value,
        ts: u64,
    ) -> Result<[u8; 32], ApplyError> {
        let seq = self.seq.get(&pk(n)).copied().unwrap_or(0) + 1;
        let e = env(&key(n), kind, seq, ts, payload);
        let id = *e.entry_id().as_bytes();
        let before = self.s.clone();
        let r = self.s.apply(
            &CoopRules,
            &e,
            &ApplyContext {
                index: self.index,
                batch_time_ms: self.now,
            },
        );
        match r {
            Ok(()) => {
                self.seq.insert(pk(n), seq);
                self.log.insert(self.index, e.into_inner());
                self.index += 1;
                Ok(id)
            }
            Err(e) => {
                assert_eq!(self.s, before, "a refused entry changes nothing");
                Err(e)
            }
        }
    }

    fn refused(&mut self, n: u8, kind: &str, payload: Value) -> String {
        rejected_rule(self.submit(n, kind, payload).map(|_| ()))
    }

    fn propose(&mut self, n: u8, extra: Value) -> String {
        let mut p = json!({
            "kind": "ordinary",
            "title": "Share anonymised trip data with the city",
            "method": "yes_no",
            "opensMs": self.now,
            "closesMs": self.now + 120_000,
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        hex::encode(self.submit(n, "gov.propose", p).unwrap())
    }

    fn vote(&mut self, n: u8, p: &str, v: &str) -> Result<[u8; 32], ApplyError> {
        self.submit(
            n,
            "gov.vote",
            json!({"proposal": p, "member": self.member_of(n), "vote": v}),
        )
    }

    /// Moves the clock past the close and records the node's tally.
    fn close(&mut self, p: &str) -> ProposalRecord {
        let id = crate::parse_id(p).unwrap();
        let prop = records::proposal(&self.s, &id).unwrap().unwrap();
        self.now = self.now.max(prop.closes_ms);
        let payload = tally_entry_payload(&self.s, &id).unwrap().unwrap();
        self.submit(1, "gov.tally", Value::Object(payload)).unwrap();
        records::proposal(&self.s, &id).unwrap().unwrap()
    }

    /// The member key `n` belongs to.
    fn member_of(&self, n: u8) -> String {
        records::key(&self.s, &pk(n))
            .unwrap()
            .map_or_else(|| mid(n), |k| k.member)
    }

    fn member(&self, n: u8) -> MemberRecord {
        records::member(&self.s, &mid(n)).unwrap().unwrap()
    }

    /// Applicant key `n` applies, the co-op votes (founders 2–4 yes), the board admits.
    fn admit(&mut self, n: u8, class: &str) {
        let app = self
            .submit(n, "member.apply", json!({"class": class}))
            .unwrap();
        let app = hex::encode(app);
        let p = self.propose(2, json!({"kind": "admission", "application": app}));
        for v in [2, 3, 4] {
            self.vote(v, &p, "yes").unwrap();
        }
        self.close(&p);
        self.submit(
            2,
            "member.admit",
            json!({"application": app, "decision": p}),
        )
        .unwrap();
    }
}

fn rejected_rule(r: Result<(), ApplyError>) -> String {
    match r {
        Err(ApplyError::Rejected(Rejection::Rule { rule, .. })) => rule,
        other => panic!("expected a rule rejection, got {other:?}"),
    }
}

fn malformed_field(r: Result<[u8; 32], ApplyError>) -> String {
    match r {
        Err(ApplyError::Rejected(Rejection::Malformed { field, .. })) => field,
        other => panic!("expected a malformed-field rejection, got {other:?}"),
    }
}

#[test]
fn genesis_records_the_node_founders_classes_roles_and_bylaws() {
    let w = World::new();
    let coop = records::coop(&w.s).unwrap().unwrap();
    assert_eq!(coop.members, 3);
    let board = w.member(2);
    assert_eq!(board.roles, vec![Role::Board]);
    assert_eq!(board.class, "members");
    assert_eq!(board.history.len(), 1);
    assert_eq!(records::key(&w.s, &pk(1)).unwrap().unwrap().member, "node");
    assert!(records::key(&w.s, &pk(9)).unwrap().is_none());
    assert_eq!(records::bylaws(&w.s).unwrap().unwrap(), test_bylaws());
}

#[test]
fn the_first_entry_must_be_genesis_and_only_once() {
    let mut s = MemoryState::new();
    let attest = json!({"digest": b64_encode([0u8; 32]), "kind": "minutes"});
    let ctx = ApplyContext {
        index: 0,
        batch_time_ms: T0,
    };
    let r = s.apply(
        &CoopRules,
        &env(&key(2), "coop.attest", 1, T0, attest),
        &ctx,
    );
    assert_eq!(rejected_rule(r), "genesis.first");
    assert_eq!(s, MemoryState::new(), "a rejected entry changes nothing");
    let mut w = World::new();
    let g = Genesis {
        name: "again".into(),
        node_key: pk(1),
        founders: vec![],
        bylaws: test_bylaws(),
    };
    assert_eq!(
        w.refused(1, "coop.genesis", Value::Object(g.to_payload())),
        "genesis.once"
    );
}

#[test]
fn genesis_must_be_signed_by_the_node_key_it_names_and_errors_name_the_field() {
    let g = Genesis {
        name: "x".into(),
        node_key: pk(1),
        founders: vec![Founder {
            key: pk(2),
            class: "members".into(),
            roles: vec![],
        }],
        bylaws: test_bylaws(),
    };
    let ctx = ApplyContext {
        index: 0,
        batch_time_ms: T0,
    };
    let mut s = MemoryState::new();
    let payload = Value::Object(g.to_payload());
    let r = s.apply(
        &CoopRules,
        &env(&key(2), "coop.genesis", 1, T0, payload.clone()),
        &ctx,
    );
    assert_eq!(rejected_rule(r), "genesis.node_signs");
    for (edit, field) in [
        (
            json!({"founders": [{"key": b64_encode(pk(2)), "class": "members", "roles": ["king"]}]}),
            "body.payload.founders[0].roles[0]",
        ),
        (
            json!({"founders": [{"key": b64_encode(pk(2)), "class": "pilots", "roles": []}]}),
            "body.payload.founders[0].class",
        ),
        (json!({"bylaws": {"version": 1}}), "body.payload.bylaws"),
    ] {
        let mut p = payload.clone();
        for (k, v) in edit.as_object().unwrap() {
            p[k] = v.clone();
        }
        match s.apply(&CoopRules, &env(&key(1), "coop.genesis", 1, T0, p), &ctx) {
            Err(ApplyError::Rejected(Rejection::Malformed { field: f, .. })) => {
                assert_eq!(f, field)
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut bad = g.bylaws.clone();
    if let Some(d) = bad.decisions.get_mut(&DecisionKind::Special) {
        d.threshold.ratio_ppm = 2_000_000;
    }
    let mut p = payload;
    p["bylaws"] = serde_json::to_value(&bad).unwrap();
    match s.apply(&CoopRules, &env(&key(1), "coop.genesis", 1, T0, p), &ctx) {
        Err(ApplyError::Rejected(Rejection::Malformed { field, .. })) => {
            assert_eq!(
                field,
                "body.payload.bylaws.decisions.special.threshold.ratioPpm"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s, MemoryState::new());
}

#[test]
fn only_current_known_keys_may_sign_and_payloads_name_bad_fields() {
    let mut w = World::new();
    let attest = json!({"digest": b64_encode([7u8; 32]), "kind": "minutes"});
    w.submit(2, "coop.attest", attest.clone()).unwrap();
    match w.submit(9, "coop.attest", attest) {
        Err(ApplyError::Rejected(Rejection::UnknownSigner { .. })) => {}
        other => panic!("{other:?}"),
    }
    for (payload, field) in [
        (
            json!({"digest": "AAAA", "kind": "minutes"}),
            "body.payload.digest",
        ),
        (
            json!({"digest": b64_encode([1u8; 32]), "kind": "Has Spaces"}),
            "body.payload.kind",
        ),
        (
            json!({"digest": b64_encode([1u8; 32]), "kind": "minutes", "name": "Alice"}),
            "body.payload.name",
        ),
    ] {
        assert_eq!(malformed_field(w.submit(2, "coop.attest", payload)), field);
    }
}

#[test]
fn registry_lists_exactly_the_handled_types() {
    for (kind, v) in ENTRY_TYPES {
        assert!(CoopRules.accepts(kind, *v));
    }
    assert!(!CoopRules.accepts("coop.attest", 2));
    assert!(!CoopRules.accepts("member.vote", 1));
}

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
        d.quorum.minimum_ppm = 600_000;
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

mod secret_ballots {
    use super::*;
    use crate::ballot::{BallotSecrets, Blinding, ClassKey};
    use crate::rules::ballots_payload;
    use coopledger_ledger::codec::{b64_decode, b64_encode};

    /// Bylaws whose every decision is a secret ballot (no revotes, no proxies).
    fn secret_bylaws() -> Bylaws {
        let mut b = test_bylaws();
        for d in b.decisions.values_mut() {
            d.secret = true;
            d.revote = false;
            d.proxies.allowed = false;
        }
        b
    }

    fn ballot(token: &SigningKey, p: &str, cred: &[u8], vote: &str, ts: u64) -> Envelope {
        Body {
            coop: COOP.into(),
            kind: "gov.ballot".into(),
            version: 1,
            signer: token.verifying_key().to_bytes(),
            seq: 1,
            ts,
            payload: json!({"proposal": p, "class": "members", "credential": b64_encode(cred),
                            "vote": vote})
            .as_object()
            .unwrap()
            .clone(),
        }
        .sign(token)
        .unwrap()
    }

    fn batch(p: &[u8; 32], k: &ClassKey, ballots: &[Envelope]) -> Value {
        let keys = BTreeMap::from([("members".to_string(), k.clone())]);
        Value::Object(ballots_payload(p, &keys, ballots))
    }

    #[test]
    fn secret_ballot_publishes_unlinkable_ballots_and_refuses_revotes() {
        let founders: &[(u8, &str, &[Role])] = &[
            (2, "members", &[Role::Board]),
            (3, "members", &[]),
            (4, "members", &[]),
            (5, "members", &[]),
        ];
        let mut w = World::with(secret_bylaws(), founders);
        let p = w.propose(2, json!({}));
        let id = crate::parse_id(&p).unwrap();
        let opens = w.now;
        let k = BallotSecrets::from_node_key(&key(1)).class_key(&id, "members");
        let participate = |w: &mut World, n: u8, b: &Blinding| {
            w.submit(
                n,
                "gov.vote",
                json!({"proposal": p, "member": mid(n), "blinded": b64_encode(b.blinded())}),
            )
        };

        // No participation before the node has published the class keys.
        let token = |n: u8| SigningKey::from_bytes(&[100 + n; 32]);
        let blind = |n: u8| {
            Blinding::new(&id, &token(n).verifying_key().to_bytes(), &[50 + n; 64]).unwrap()
        };
        assert_eq!(
            rejected_rule(participate(&mut w, 3, &blind(3)).map(|_| ())),
            "ballot.key"
        );
        let keys = json!({"proposal": p, "keys": {"members": b64_encode(k.public())}});
        w.submit(1, "gov.ballot_key", keys.clone()).unwrap();
        assert_eq!(w.refused(1, "gov.ballot_key", keys), "ballot.key");

        // An open vote on a secret proposal is refused; so is a proxy.
        assert_eq!(
            malformed_field(w.vote(3, &p, "yes")),
            "body.payload.vote",
            "the participation carries no vote"
        );
        let proxy = json!({"proposal": p, "member": mid(4), "to": mid(2)});
        assert_eq!(w.refused(4, "gov.proxy", proxy), "proxy.secret");

        // Members 2, 3, 4 take part; each unblinds the node's answer into a credential and signs
        // a ballot with a one-time key. Member 5 stays away.
        let mut cast = Vec::new();
        for (n, v) in [(2u8, "yes"), (3, "no"), (4, "yes")] {
            let b = blind(n);
            participate(&mut w, n, &b).unwrap();
            let part = records::participations(&w.s, &id).unwrap()[&mid(n)].clone();
            let answer = k.evaluate(&b64_decode(&part.blinded).unwrap()).unwrap();
            let cred = b.unblind(&k.public(), &answer).unwrap();
            cast.push(ballot(&token(n), &p, &cred, v, opens));
        }
        // No revotes: a second participation is refused.
        assert_eq!(
            rejected_rule(participate(&mut w, 3, &blind(3)).map(|_| ())),
            "vote.revote"
        );

        // The box is opened only at the close, and the tally waits for it.
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &k, &cast)),
            "ballot.early"
        );
        let prop = records::proposal(&w.s, &id).unwrap().unwrap();
        w.now = prop.closes_ms;
        let early_tally = tally_entry_payload(&w.s, &id).unwrap().unwrap();
        assert_eq!(
            w.refused(1, "gov.tally", Value::Object(early_tally)),
            "tally.ballots"
        );

        // Refused batches: a forged credential; an extra ballot minted with the key beyond the
        // number of participations; a token used twice; a key other than the published one.
        let forged = ballot(&token(9), &p, &[7; 32], "yes", opens);
        let with_forged = [cast.clone(), vec![forged]].concat();
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &k, &with_forged)),
            "ballot.credential"
        );
        let minted_cred = k.credential(&id, &token(9).verifying_key().to_bytes());
        let minted = ballot(&token(9), &p, &minted_cred, "yes", opens);
        let stuffed = [cast.clone(), vec![minted]].concat();
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &k, &stuffed)),
            "ballot.count"
        );
        let again = ballot(
            &token(3),
            &p,
            &k.credential(&id, &token(3).verifying_key().to_bytes()),
            "yes",
            opens,
        );
        let twice = [cast[..2].to_vec(), vec![again.clone()]].concat();
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &k, &twice)),
            "ballot.token_used"
        );
        let other = BallotSecrets::from_node_key(&key(9)).class_key(&id, "members");
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &other, &cast)),
            "ballot.key"
        );

        // Published in two batches; order in each is by ballot id whatever the order of casting.
        let reversed: Vec<Envelope> = cast.iter().rev().cloned().collect();
        assert_eq!(batch(&id, &k, &cast), batch(&id, &k, &reversed));
        let first = batch(&id, &k, &cast[..2]);
        let ids: Vec<String> = first["ballots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| hex::encode(Envelope::from_value(b).unwrap().entry_id().as_bytes()))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        w.submit(1, "gov.ballots", first).unwrap();
        // A ballot already published cannot come again (a revote by the token holder).
        assert_eq!(
            w.refused(1, "gov.ballots", batch(&id, &k, &[cast[0].clone()])),
            "ballot.token_used"
        );
        w.submit(1, "gov.ballots", batch(&id, &k, &cast[2..]))
            .unwrap();

        // Unlinkable in the log: no ballot is signed by a member key or names a member or a
        // participation's blinded element, and every ballot carries the same time (the opening).
        let member_keys: Vec<[u8; 32]> = (2..=5).map(pk).collect();
        let parts = records::participations(&w.s, &id).unwrap();
        for b in &cast {
            let body = b.body();
            assert!(!member_keys.contains(&body.signer));
            assert_eq!(body.ts, opens);
            let text = serde_json::to_string(&b.to_value()).unwrap();
            for (m, part) in &parts {
                assert!(!text.contains(m.as_str()), "a ballot names no member");
                assert!(!text.contains(&part.blinded), "nor a participation's token");
            }
        }

        let closed = w.close(&p);
        let t = closed.tally.unwrap();
        assert_eq!((t.ballots, t.participants), (3, Some(3)));
        assert_eq!(t.outcome, Outcome::Adopted);
        let published = records::ballots(&w.s, &id).unwrap();
        assert_eq!(published.len(), 3);
        assert_eq!(
            published.values().filter(|b| b.vote == Vote::Yes).count(),
            2,
            "two yes, one no"
        );
    }
}

mod consent_ledger {
    use super::*;
    use crate::consent::{self as c, ConsentStatus};

    const CONTROLLER: u8 = 20;
    const AUTHORITY: u8 = 21;
    const PATIENT: u8 = 3;
    const RESEARCH: &str = "dpv:ScientificResearch";
    const CARE: &str = "dpv:ServiceProvision";

    fn digest(text: &str) -> String {
        use coopledger_ledger::codec::b64_encode;
        use sha2::{Digest, Sha256};
        b64_encode(Sha256::digest(text.as_bytes()))
    }

    /// A health-data co-op: controller (key 20) and authority (key 21) with keys, three
    /// recipients, and notice `health` v1 offering care and research to all three.
    fn health_coop() -> World {
        let mut w = World::new();
        for (party, kind, k) in [
            ("health_coop", "controller", Some(CONTROLLER)),
            ("dpa", "authority", Some(AUTHORITY)),
            ("physicians", "recipient", None),
            ("research_institute", "recipient", None),
            ("pharma", "recipient", None),
        ] {
            let mut p = json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"});
            if let Some(k) = k {
                p["key"] = json!(coopledger_ledger::codec::b64_encode(pk(k)));
            }
            w.submit(2, "party.register", p).unwrap();
        }
        w.submit(CONTROLLER, "consent.notice", notice(1)).unwrap();
        w
    }

    fn notice(version: u64) -> Value {
        json!({
            "notice": "health", "version": version, "controller": "health_coop",
            "purposes": [CARE, RESEARCH],
            "dataCategories": ["pd:MedicalHealth", "pd:Dietary", "pd:Genetic"],
            "operations": ["dpv:Store", "dpv:Share"],
            "recipients": ["physicians", "research_institute", "pharma"],
            "retentionMs": 365 * DAY, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
            "textDigest": digest("We share your records with ..."), "language": "en",
            "specialCategory": true,
        })
    }

    fn grant(
        w: &mut World,
        n: u8,
        purposes: &[&str],
        to: &[&str],
        cats: &[&str],
        from: u64,
        until: u64,
    ) -> Result<String, ApplyError> {
        let m = w.member_of(n);
        w.submit(
            n,
            "consent.grant",
            json!({"member": m, "notice": "health", "version": 1, "purposes": purposes,
                   "recipients": to, "dataCategories": cats, "fromMs": from, "untilMs": until}),
        )
        .map(hex::encode)
    }

    fn use_of(w: &mut World, to: &str, purpose: &str, cats: &[&str], consents: &[&str]) -> String {
        rejected_rule(
            w.submit(
                2,
                "data.use",
                json!({"kind": "release", "recipient": to, "purpose": purpose,
                   "dataCategories": cats, "consents": consents}),
            )
            .map(|_| ()),
        )
    }

    fn used(w: &mut World, to: &str, purpose: &str, cats: &[&str], consents: &[&str]) {
        w.submit(
            CONTROLLER,
            "data.use",
            json!({"kind": "sale", "recipient": to, "purpose": purpose,
                   "dataCategories": cats, "consents": consents}),
        )
        .unwrap();
    }

    #[test]
    fn uses_must_cite_consent_valid_for_purpose_recipient_and_every_category() {
        let mut w = health_coop();
        let now = w.now;
        // Physicians get all data; the research institute only medical and dietary; pharma
        // nothing.
        let care = grant(
            &mut w,
            PATIENT,
            &[CARE],
            &["physicians"],
            &["pd:MedicalHealth", "pd:Dietary", "pd:Genetic"],
            now,
            now + DAY,
        )
        .unwrap();
        let research = grant(
            &mut w,
            PATIENT,
            &[RESEARCH],
            &["research_institute"],
            &["pd:MedicalHealth", "pd:Dietary"],
            now,
            now + DAY,
        )
        .unwrap();
        used(
            &mut w,
            "physicians",
            CARE,
            &["pd:Genetic", "pd:MedicalHealth"],
            &[&care],
        );
        used(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:MedicalHealth"],
            &[&research],
        );
        assert_eq!(
            use_of(
                &mut w,
                "pharma",
                RESEARCH,
                &["pd:MedicalHealth"],
                &[&research]
            ),
            "use.recipient"
        );
        assert_eq!(
            use_of(
                &mut w,
                "research_institute",
                RESEARCH,
                &["pd:Genetic"],
                &[&research]
            ),
            "use.category"
        );
        assert_eq!(
            use_of(
                &mut w,
                "research_institute",
                CARE,
                &["pd:Dietary"],
                &[&research]
            ),
            "use.purpose"
        );
        assert_eq!(
            use_of(
                &mut w,
                "research_institute",
                RESEARCH,
                &["pd:Dietary"],
                &[&research, &research]
            ),
            "use.consent"
        );
        // A grant cannot reach beyond its notice, nor end before it starts.
        let m = w.member_of(PATIENT);
        let beyond = json!({"member": m, "notice": "health", "version": 1, "purposes": [RESEARCH],
            "recipients": ["city_transport"], "dataCategories": ["pd:Dietary"], "fromMs": now, "untilMs": now + 1});
        assert_eq!(w.refused(PATIENT, "consent.grant", beyond), "consent.scope");
        let empty = grant(
            &mut w,
            PATIENT,
            &[RESEARCH],
            &["pharma"],
            &["pd:Dietary"],
            now,
            now,
        );
        assert_eq!(rejected_rule(empty.map(|_| ())), "consent.period");
        // Nobody grants for another member.
        let other = json!({"member": m, "notice": "health", "version": 1, "purposes": [RESEARCH],
            "recipients": ["pharma"], "dataCategories": ["pd:Dietary"], "fromMs": now, "untilMs": now + DAY});
        assert_eq!(w.refused(4, "consent.grant", other), "consent.member");
    }

    #[test]
    fn withdrawal_is_final_and_expiry_renewal_revocation_and_invalidation_are_respected() {
        let mut w = health_coop();
        let now = w.now;
        let g = grant(
            &mut w,
            PATIENT,
            &[RESEARCH],
            &["research_institute"],
            &["pd:Dietary"],
            now,
            now + 1_000,
        )
        .unwrap();
        used(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g],
        );
        // Expiry at untilMs (exclusive), then renewal: the gap stays uncovered.
        w.now = now + 1_000;
        assert_eq!(
            use_of(
                &mut w,
                "research_institute",
                RESEARCH,
                &["pd:Dietary"],
                &[&g]
            ),
            "use.expired"
        );
        let m = w.member_of(PATIENT);
        w.now = now + 5_000;
        w.submit(
            PATIENT,
            "consent.renew",
            json!({"member": m, "grant": g, "untilMs": now + DAY}),
        )
        .unwrap();
        used(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g],
        );
        let gr = c::grant(&w.s, &crate::parse_id(&g).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            gr.status_at(u64::MAX, now + 2_000),
            ConsentStatus::Expired,
            "the gap"
        );
        assert_eq!(gr.status_at(u64::MAX, now + 6_000), ConsentStatus::Active);
        // Another member cannot withdraw it; the member can, once, for good.
        let theirs = json!({"member": w.member_of(4), "grant": g});
        assert_eq!(w.refused(4, "consent.withdraw", theirs), "consent.member");
        let withdraw = json!({"member": m, "grant": g});
        let at = w.index;
        w.submit(PATIENT, "consent.withdraw", withdraw.clone())
            .unwrap();
        assert_eq!(
            use_of(
                &mut w,
                "research_institute",
                RESEARCH,
                &["pd:Dietary"],
                &[&g]
            ),
            "use.withdrawn"
        );
        assert_eq!(
            w.refused(PATIENT, "consent.withdraw", withdraw),
            "consent.ended"
        );
        assert_eq!(
            w.refused(
                PATIENT,
                "consent.renew",
                json!({"member": m, "grant": g, "untilMs": now + 2 * DAY})
            ),
            "consent.ended"
        );
        // Status by index: active just before the withdrawal, withdrawn from it on.
        let grants = c::member_grants(&w.s, &m).unwrap();
        assert_eq!(
            c::status(&grants, &m, RESEARCH, "research_institute", at - 1, w.now).status,
            ConsentStatus::Active
        );
        assert_eq!(
            c::status(&grants, &m, RESEARCH, "research_institute", at, w.now).status,
            ConsentStatus::Withdrawn
        );
        assert_eq!(
            c::status(&grants, &m, RESEARCH, "pharma", at, w.now).status,
            ConsentStatus::None
        );
        // The timeline has every event, in log order.
        let t = c::timeline(&w.s, &m).unwrap();
        let kinds: Vec<&str> = t.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "consent.grant",
                "data.use",
                "consent.renew",
                "data.use",
                "consent.withdraw"
            ]
        );

        // Revocation is the controller's; invalidation an authority's.
        let t0 = w.now;
        let g2 = grant(
            &mut w,
            PATIENT,
            &[RESEARCH],
            &["pharma"],
            &["pd:Dietary"],
            t0,
            t0 + DAY,
        )
        .unwrap();
        let g3 = grant(
            &mut w,
            PATIENT,
            &[CARE],
            &["physicians"],
            &["pd:Dietary"],
            t0,
            t0 + DAY,
        )
        .unwrap();
        let reason = json!(digest("salted reason"));
        assert_eq!(
            w.refused(
                AUTHORITY,
                "consent.revoke",
                json!({"grant": g2, "reason": reason})
            ),
            "role.required"
        );
        assert_eq!(
            w.refused(
                CONTROLLER,
                "consent.invalidate",
                json!({"grant": g3, "reason": reason})
            ),
            "role.required"
        );
        assert_eq!(
            w.refused(2, "consent.revoke", json!({"grant": g2, "reason": reason})),
            "role.required"
        );
        w.submit(
            CONTROLLER,
            "consent.revoke",
            json!({"grant": g2, "reason": reason}),
        )
        .unwrap();
        w.submit(
            AUTHORITY,
            "consent.invalidate",
            json!({"grant": g3, "reason": reason}),
        )
        .unwrap();
        assert_eq!(
            use_of(&mut w, "pharma", RESEARCH, &["pd:Dietary"], &[&g2]),
            "use.revoked"
        );
        assert_eq!(
            use_of(&mut w, "physicians", CARE, &["pd:Dietary"], &[&g3]),
            "use.invalidated"
        );
        // A consent for later is not valid yet.
        let later = grant(
            &mut w,
            PATIENT,
            &[CARE],
            &["physicians"],
            &["pd:Dietary"],
            t0 + DAY,
            t0 + 2 * DAY,
        )
        .unwrap();
        assert_eq!(
            use_of(&mut w, "physicians", CARE, &["pd:Dietary"], &[&later]),
            "use.not_yet_valid"
        );
    }

    #[test]
    fn notices_are_immutable_and_versioned_and_parties_are_registered_by_the_board() {
        let mut w = health_coop();
        assert_eq!(
            w.refused(CONTROLLER, "consent.notice", notice(1)),
            "notice.version"
        );
        assert_eq!(
            w.refused(CONTROLLER, "consent.notice", notice(3)),
            "notice.version"
        );
        w.submit(2, "consent.notice", notice(2)).unwrap();
        assert_eq!(w.refused(3, "consent.notice", notice(3)), "role.required");
        let mut bad = notice(3);
        bad["recipients"] = json!(["dpa"]);
        assert_eq!(w.refused(2, "consent.notice", bad), "notice.recipient");
        let mut bad = notice(3);
        bad["purposes"] = json!(["research"]);
        assert_eq!(
            malformed_field(w.submit(2, "consent.notice", bad)),
            "body.payload.purposes[0]"
        );
        let p = json!({"party": "city", "kind": "recipient", "name": "City", "jurisdiction": "EU"});
        assert_eq!(w.refused(3, "party.register", p.clone()), "role.required");
        w.submit(2, "party.register", p.clone()).unwrap();
        assert_eq!(w.refused(2, "party.register", p), "party.known");
        assert_eq!(c::notices(&w.s).unwrap().len(), 2);
    }

    /// The bundle's semantics (`consent_bundle::history`) rebuilds, from the entries alone, the
    /// grants the rules keep in state, and refuses a history in which a use follows the end of
    /// the consent it cites.
    #[test]
    fn the_bundle_history_rebuilds_the_rules_grants_and_catches_an_uncovered_use() {
        use crate::consent_bundle::history;
        let mut w = health_coop();
        let now = w.now;
        let m = w.member_of(PATIENT);
        let g = grant(
            &mut w,
            PATIENT,
            &[RESEARCH],
            &["research_institute"],
            &["pd:Dietary"],
            now,
            now + 1_000,
        )
        .unwrap();
        let care = grant(
            &mut w,
            PATIENT,
            &[CARE],
            &["physicians"],
            &["pd:Genetic"],
            now,
            now + DAY,
        )
        .unwrap();
        used(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g],
        );
        w.now = now + 5_000;
        w.submit(
            PATIENT,
            "consent.renew",
            json!({"member": m, "grant": g, "untilMs": now + DAY}),
        )
        .unwrap();
        used(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g],
        );
        used(&mut w, "physicians", CARE, &["pd:Genetic"], &[&care]);
        w.now = now + 6_000;
        w.submit(
            PATIENT,
            "consent.withdraw",
            json!({"member": m, "grant": g}),
        )
        .unwrap();
        w.submit(
            CONTROLLER,
            "consent.revoke",
            json!({"grant": care, "reason": digest("audit")}),
        )
        .unwrap();

        let t = c::timeline(&w.s, &m).unwrap();
        let (lines, rebuilt) = history(&m, None, &t, &w.log).unwrap();
        assert_eq!(lines.len(), t.events.len());
        for r in &rebuilt {
            let mut kept = c::grant(&w.s, &crate::parse_id(&r.id).unwrap())
                .unwrap()
                .unwrap();
            // The rules name the revoking party by id; the entries alone show its key.
            let mut r = r.clone();
            if let (
                Some(c::GrantEnd::Revoked { party, .. }),
                Some(c::GrantEnd::Revoked { party: p2, .. }),
            ) = (&mut kept.ended, &mut r.ended)
            {
                *p2 = party.clone();
            }
            assert_eq!(r, kept);
        }
        let statuses: Vec<ConsentStatus> = lines.iter().map(|l| l.status).collect();
        assert_eq!(statuses.last(), Some(&ConsentStatus::Revoked));
        assert!(statuses.contains(&ConsentStatus::Withdrawn));

        // Filtered by purpose: only the research grant is followed past its grant entry.
        let (research, _) = history(&m, Some(RESEARCH), &t, &w.log).unwrap();
        assert!(research.iter().all(|l| l.grant == g));

        // Move the last research use after the withdrawal: the history refuses it.
        let mut forged = t.clone();
        let use_at = forged
            .events
            .iter()
            .rposition(|e| e.event == "data.use" && e.grant == g)
            .unwrap();
        let mut ev = forged.events.remove(use_at);
        let use_entry = w.log.get(&ev.index).unwrap().clone();
        let last = forged.events.last().unwrap().clone();
        ev.index = last.index + 1;
        ev.ms = last.ms;
        forged.events.push(ev.clone());
        let mut log = w.log.clone();
        log.insert(ev.index, use_entry);
        let err = history(&m, None, &forged, &log).unwrap_err().to_string();
        assert!(err.contains("NOT covered"), "{err}");
        // A timeline that leaves an entry out of the bundle is refused by index.
        let mut short = w.log.clone();
        short.remove(&t.events[3].index);
        let err = history(&m, None, &t, &short).unwrap_err().to_string();
        assert!(err.contains("missing from the bundle"), "{err}");
    }
}

mod personal_data {
    use super::*;
    use crate::personal::{self, commitment};
    use coopledger_ledger::codec::b64_encode;

    fn profile(m: &str, value: &str) -> Value {
        json!({"member": m, "attributes": {"name": b64_encode(commitment(&[7; 32], value))}})
    }

    #[test]
    fn only_commitments_go_on_the_ledger_and_erasure_is_final() {
        let mut w = World::new();
        let m = w.member_of(3);
        let other = w.member_of(4);
        // Another member cannot file or erase a profile for m.
        assert_eq!(
            w.refused(4, "member.profile", profile(&m, "Ada")),
            "pii.member"
        );
        assert_eq!(
            w.refused(4, "member.erase", json!({"member": m})),
            "role.required"
        );
        assert_eq!(
            w.refused(3, "member.erase", json!({"member": m})),
            "pii.none"
        );
        assert_eq!(
            malformed_field(w.submit(
                3,
                "member.profile",
                json!({"member": m, "attributes": {"name": "Ada Lovelace"}})
            )),
            "body.payload.attributes.name",
            "a value in clear is not a commitment"
        );
        w.submit(3, "member.profile", profile(&m, "Ada")).unwrap();
        let r = personal::record(&w.s, &m).unwrap().unwrap();
        assert_eq!(
            r.attributes["name"],
            b64_encode(commitment(&[7; 32], "Ada"))
        );
        assert_eq!(
            w.refused(4, "member.erase", json!({"member": m})),
            "role.required"
        );
        // The board erases on the member's request; the member's own erasure would do too.
        w.submit(2, "member.erase", json!({"member": m})).unwrap();
        let r = personal::record(&w.s, &m).unwrap().unwrap();
        assert_eq!(r.erased.as_ref().map(|e| e.by.as_str()), Some("board"));
        assert_eq!(personal::erased_members(&w.s).unwrap(), vec![m.clone()]);
        assert_eq!(
            w.refused(3, "member.profile", profile(&m, "Ada")),
            "pii.erased"
        );
        assert_eq!(
            w.refused(3, "member.erase", json!({"member": m})),
            "pii.erased"
        );
        // The other member's data is untouched by it.
        w.submit(4, "member.profile", profile(&other, "Grace"))
            .unwrap();
        w.submit(4, "member.erase", json!({"member": other}))
            .unwrap();
        assert_eq!(personal::erased_members(&w.s).unwrap().len(), 2);
    }
}

mod revenue_rules {
    use super::*;
    use crate::revenue::{self, Distribution, Split};

    const SELL: &str = "dpv:SellInsightsFromData";
    const TREASURER: u8 = 5;

    fn digest(text: &str) -> String {
        use coopledger_ledger::codec::b64_encode;
        use sha2::{Digest, Sha256};
        b64_encode(Sha256::digest(text.as_bytes()))
    }

    /// Drivers' co-op: 2 board, 3 and 4 drivers, 5 treasurer; the city buys insights. Drivers 3
    /// and 4 consent to selling to the city; 2 does not. Use A carries 3 and 4, use B only 3.
    fn drivers() -> (World, Vec<String>) {
        let mut w = World::with(
            test_bylaws(),
            &[
                (2, "members", &[Role::Board]),
                (3, "members", &[]),
                (4, "members", &[]),
                (TREASURER, "members", &[Role::Treasurer]),
            ],
        );
        for (party, kind) in [
            ("drivers_coop", "controller"),
            ("city", "recipient"),
            ("broker", "recipient"),
        ] {
            w.submit(
                2,
                "party.register",
                json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"}),
            )
            .unwrap();
        }
        w.submit(
            2,
            "consent.notice",
            json!({"notice": "trips", "version": 1, "controller": "drivers_coop",
                   "purposes": [SELL, "dpv:ServiceProvision"], "dataCategories": ["pd:Location"],
                   "operations": ["dpv:Share"], "recipients": ["city", "broker"], "retentionMs": DAY,
                   "jurisdiction": "EU", "lawfulBasis": "dpv:Consent", "textDigest": digest("notice"),
                   "language": "en", "specialCategory": false}),
        )
        .unwrap();
        let mut grants = vec![];
        for n in [3, 4] {
            let m = w.member_of(n);
            let now = w.now;
            let g = w
                .submit(
                    n,
                    "consent.grant",
                    json!({"member": m, "notice": "trips", "version": 1,
                    "purposes": [SELL, "dpv:ServiceProvision"], "recipients": ["city", "broker"],
                    "dataCategories": ["pd:Location"], "fromMs": now, "untilMs": now + DAY}),
                )
                .unwrap();
            grants.push(hex::encode(g));
        }
        let mut uses = vec![];
        for (cited, purpose, to) in [
            (vec![grants[0].clone(), grants[1].clone()], SELL, "city"),
            (vec![grants[0].clone()], SELL, "city"),
            (vec![grants[1].clone()], "dpv:ServiceProvision", "city"),
            (vec![grants[1].clone()], SELL, "broker"),
        ] {
            let u = w
                .submit(
                    2,
                    "data.use",
                    json!({"kind": "sale", "recipient": to, "purpose": purpose,
                    "dataCategories": ["pd:Location"], "consents": cited}),
                )
                .unwrap();
            uses.push(hex::encode(u));
        }
        (w, uses)
    }

    fn policy(split: &str) -> Value {
        json!({"reservePpm": 100_000, "communityPpm": 100_000, "poolPpm": 800_000, "split": split,
               "minPayout": 0, "unclaimed": "reserve", "claimDays": 90})
    }

    fn adopt(w: &mut World, policy: Value) {
        let p = w.propose(
            2,
            json!({"kind": "distribution_approval", "title": "Revenue policy", "policy": policy}),
        );
        for n in [2, 3, 4, TREASURER] {
            w.vote(n, &p, "yes").unwrap();
        }
        let rec = w.close(&p);
        assert!(
            matches!(
                rec.status,
                crate::records::ProposalStatus::Closed { applied: true, .. }
            ),
            "{rec:?}"
        );
    }

    /// `""` when accepted, else the rule name.
    fn distribute(w: &mut World, d: &Distribution) -> String {
        match w.submit(
            TREASURER,
            "revenue.distribute",
            json!({"period": d.period, "currency": d.currency, "distribution": d}),
        ) {
            Ok(_) => String::new(),
            Err(e) => rejected_rule(Err(e)),
        }
    }

    #[test]
    fn a_distribution_is_the_one_computed_from_the_log_under_the_adopted_policy() {
        let (mut w, uses) = drivers();
        let rev = |uses: &[&String], amount: u64, cur: &str| {
            json!({"payer": "city", "amount": amount, "currency": cur, "period": "2026-q3",
                   "evidence": digest("invoice"), "purpose": SELL, "uses": uses})
        };
        // Only the treasurer records revenue; uses must be of the revenue's purpose and payer.
        assert_eq!(
            w.refused(2, "revenue.record", rev(&[&uses[0]], 100, "EUR")),
            "role.required"
        );
        assert_eq!(
            w.refused(TREASURER, "revenue.record", rev(&[&uses[2]], 100, "EUR")),
            "revenue.purpose"
        );
        assert_eq!(
            w.refused(TREASURER, "revenue.record", rev(&[&uses[3]], 100, "EUR")),
            "revenue.payer"
        );
        assert_eq!(
            malformed_field(w.submit(TREASURER, "revenue.record", rev(&[&uses[0]], 0, "EUR"))),
            "body.payload.amount"
        );
        w.submit(
            TREASURER,
            "revenue.record",
            rev(&[&uses[0], &uses[1]], 100_001, "EUR"),
        )
        .unwrap();
        assert_eq!(
            w.refused(TREASURER, "revenue.record", rev(&[&uses[1]], 5, "EUR")),
            "revenue.use_paid"
        );
        w.submit(
            TREASURER,
            "revenue.expense",
            json!({"payee": "Hosting Ltd", "amount": 1, "currency": "EUR",
            "period": "2026-q3", "evidence": digest("bill")}),
        )
        .unwrap();
        // Another currency is another distribution: never mixed.
        w.submit(
            TREASURER,
            "revenue.expense",
            json!({"payee": "Bank", "amount": 999, "currency": "USD",
            "period": "2026-q3", "evidence": digest("fee")}),
        )
        .unwrap();

        // No policy adopted yet.
        assert!(matches!(
            revenue::compute(&w.s, "2026-q3", "EUR"),
            Err(revenue::DistributionError::NoPolicy)
        ));
        adopt(&mut w, policy("contribution"));
        let d = revenue::compute(&w.s, "2026-q3", "EUR").unwrap();
        assert_eq!((d.gross, d.expense_total, d.net), (100_001, 1, 100_000));
        assert_eq!((d.reserve, d.community, d.pool), (10_000, 10_000, 80_000));
        // Driver 3's data was in both paid uses, driver 4's in one; driver 2 never consented.
        let lines: Vec<(String, u64, u64)> = d
            .lines
            .iter()
            .map(|l| (l.member.clone(), l.basis, l.amount))
            .collect();
        let (m3, m4) = (w.member_of(3), w.member_of(4));
        let mut want = vec![(m3.clone(), 2, 53_333), (m4.clone(), 1, 26_667)];
        want.sort();
        // 80,000 × 2/3 = 53,333.33…, × 1/3 = 26,666.66…: the larger remainder gets the extra cent.
        assert_eq!(lines, want);

        // Refusals: unbalanced, a non-consenting member's line, the wrong currency, tampered.
        let mut bad = d.clone();
        bad.lines[0].amount += 1;
        assert_eq!(distribute(&mut w, &bad), "distribution.unbalanced");
        let mut bad = d.clone();
        let take = bad.lines[0].amount;
        bad.lines[0].amount = 0;
        bad.lines.push(revenue::Line {
            member: w.member_of(2),
            basis: 1,
            amount: take,
            below_minimum: false,
        });
        assert_eq!(distribute(&mut w, &bad), "distribution.ineligible");
        let mut bad = d.clone();
        bad.currency = "USD".into();
        assert_eq!(
            rejected_rule(
                w.submit(
                    TREASURER,
                    "revenue.distribute",
                    json!({"period": "2026-q3", "currency": "EUR", "distribution": bad})
                )
                .map(|_| ())
            ),
            "distribution.currency"
        );
        let mut bad = d.clone();
        bad.reserve -= 1;
        bad.community += 1;
        assert_eq!(distribute(&mut w, &bad), "distribution.mismatch");
        assert_eq!(
            rejected_rule(
                w.submit(
                    2,
                    "revenue.distribute",
                    json!({"period": "2026-q3", "currency": "EUR", "distribution": d})
                )
                .map(|_| ())
            ),
            "role.required"
        );

        assert_eq!(distribute(&mut w, &d), "");
        assert_eq!(
            revenue::distribution(&w.s, "2026-q3", "EUR").unwrap(),
            Some(d.clone())
        );
        // Closed: no second distribution, no more revenue for the period.
        assert_eq!(distribute(&mut w, &d), "revenue.closed");
        assert_eq!(
            w.refused(TREASURER, "revenue.record", rev(&[&uses[1]], 5, "EUR")),
            "revenue.closed"
        );
    }

    #[test]
    fn a_policy_needs_its_vote_and_may_send_everything_to_the_community() {
        let (mut w, uses) = drivers();
        // A malformed policy cannot even be proposed.
        let mut bad = policy("equal");
        bad["poolPpm"] = json!(800_001);
        let r = w.submit(
            2,
            "gov.propose",
            json!({"kind": "distribution_approval", "title": "x",
            "method": "yes_no", "opensMs": w.now, "closesMs": w.now + 120_000, "policy": bad}),
        );
        assert_eq!(malformed_field(r), "body.payload.policy");
        // A rejected policy is not in force.
        let p = w.propose(2, json!({"kind": "distribution_approval", "title": "All to members", "policy": policy("equal")}));
        for n in [2, 3, 4, TREASURER] {
            w.vote(n, &p, "no").unwrap();
        }
        w.close(&p);
        assert_eq!(revenue::policy(&w.s).unwrap(), None);
        let mut all_community = policy("equal");
        all_community["reservePpm"] = json!(0);
        all_community["communityPpm"] = json!(1_000_000);
        all_community["poolPpm"] = json!(0);
        adopt(&mut w, all_community);
        let pif = revenue::policy(&w.s).unwrap().unwrap();
        assert_eq!((pif.version, pif.policy.split), (1, Split::Equal));
        w.submit(
            TREASURER,
            "revenue.record",
            json!({"payer": "city", "amount": 12_345, "currency": "EUR",
            "period": "2026-q4", "evidence": digest("inv"), "purpose": SELL, "uses": [uses[0]]}),
        )
        .unwrap();
        let d = revenue::compute(&w.s, "2026-q4", "EUR").unwrap();
        assert_eq!((d.community, d.pool, d.reserve), (12_345, 0, 0));
        assert!(d.lines.iter().all(|l| l.amount == 0));
        assert_eq!(distribute(&mut w, &d), "");
    }

    #[test]
    fn lines_are_paid_whole_once_and_unpaid_ones_go_where_the_policy_says_after_the_claim_period() {
        let (mut w, uses) = drivers();
        w.submit(TREASURER, "revenue.record", json!({"payer": "city", "amount": 1_000, "currency": "EUR",
            "period": "2026-q3", "evidence": digest("inv"), "purpose": SELL, "uses": [uses[0], uses[1]]})).unwrap();
        let mut pol = policy("contribution");
        pol["minPayout"] = json!(300);
        pol["unclaimed"] = json!("community_fund");
        adopt(&mut w, pol);
        let d = revenue::compute(&w.s, "2026-q3", "EUR").unwrap();
        assert_eq!(distribute(&mut w, &d), "");
        let (m3, m4) = (w.member_of(3), w.member_of(4));
        let line = |m: &str| d.lines.iter().find(|l| l.member == m).unwrap().clone();
        // Pool 800 by 2 : 1 → 533 and 267; 267 is below the 300 minimum.
        assert_eq!((line(&m3).amount, line(&m4).amount), (533, 267));
        assert!(line(&m4).below_minimum && !line(&m3).below_minimum);
        let pay = |w: &mut World, m: &str, amount: u64, status: &str| match w.submit(
            TREASURER,
            "revenue.payment",
            json!({"period": "2026-q3", "currency": "EUR", "member": m, "amount": amount,
                   "reference": "SEPA-2026-0001", "status": status}),
        ) {
            Ok(_) => String::new(),
            Err(e) => rejected_rule(Err(e)),
        };
        assert_eq!(pay(&mut w, &m3, 532, "paid"), "payment.amount");
        let m2 = w.member_of(2);
        assert_eq!(pay(&mut w, &m2, 1, "paid"), "payment.line");
        assert_eq!(pay(&mut w, &m4, 267, "paid"), "payment.minimum");
        assert_eq!(pay(&mut w, &m3, 533, "failed"), "");
        assert_eq!(
            pay(&mut w, &m3, 533, "paid"),
            "",
            "a failed payment may be retried"
        );
        assert_eq!(pay(&mut w, &m3, 533, "paid"), "payment.twice");
        let unclaimed = json!({"period": "2026-q3", "currency": "EUR"});
        assert_eq!(
            w.refused(TREASURER, "revenue.unclaimed", unclaimed.clone()),
            "payment.claim_open"
        );
        w.now += 90 * DAY;
        w.submit(TREASURER, "revenue.unclaimed", unclaimed.clone())
            .unwrap();
        let st = revenue::settlement(&w.s, "2026-q3", "EUR")
            .unwrap()
            .unwrap();
        let moved = st.unclaimed.unwrap();
        assert_eq!(
            (moved.amount, moved.to, moved.members),
            (267, revenue::Unclaimed::CommunityFund, vec![m4.clone()])
        );
        assert_eq!(
            w.refused(TREASURER, "revenue.unclaimed", unclaimed),
            "payment.closed"
        );
        assert_eq!(pay(&mut w, &m3, 533, "paid"), "payment.closed");
    }
}
