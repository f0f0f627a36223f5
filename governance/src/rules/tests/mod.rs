//! Rule tests over in-memory state: genesis, the known-signer rule, the membership lifecycle,
//! proposals, votes, proxies and tallies. Each refusal is checked by its stable rule name and
//! leaves the state unchanged.

use super::*;
use crate::bylaws::{
    AdmissionRules, AdmittedBy, Bylaws, DecisionKind, MemberClass, Method, MAX_ADMISSIONS_PER_ENTRY,
};
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
        legacy_cap_field: false,
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
    env_v(signer, kind, 1, seq, ts, payload)
}

fn env_v(
    signer: &SigningKey,
    kind: &str,
    version: u64,
    seq: u64,
    ts: u64,
    payload: Value,
) -> Verified<Envelope> {
    let env = Body {
        coop: COOP.into(),
        kind: kind.into(),
        version,
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
    /// Founded with `coop.genesis` v2, as `coop init` founds every co-op.
    fn with(bylaws: Bylaws, founders: &[(u8, &str, &[Role])]) -> World {
        World::founded(2, bylaws, founders)
    }

    /// Founded with `coop.genesis` of the given version (1: whole consent timelines).
    fn founded(version: u64, bylaws: Bylaws, founders: &[(u8, &str, &[Role])]) -> World {
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
        let now = w.now;
        w.submit_entry(
            1,
            "coop.genesis",
            version,
            Value::Object(g.to_payload()),
            now,
        )
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
        self.submit_entry(n, kind, 1, payload, ts)
    }

    fn submit_entry(
        &mut self,
        n: u8,
        kind: &str,
        version: u64,
        payload: Value,
        ts: u64,
    ) -> Result<[u8; 32], ApplyError> {
        let seq = self.seq.get(&pk(n)).copied().unwrap_or(0) + 1;
        let e = env_v(&key(n), kind, version, seq, ts, payload);
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
        (
            json!({"bylaws": {"version": 1}}),
            "body.payload.bylaws.classes",
        ),
        (json!({"bylaws": 7}), "body.payload.bylaws"),
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
        d.threshold.ratio = crate::tally::Ratio::Ppm(2_000_000);
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

/// Every kind of identifier a co-op chooses follows one rule (`payload::is_ident`): the same
/// samples are accepted and refused as an attestation kind, an accounting period, a party id
/// and a member class.
#[test]
fn every_kind_of_identifier_follows_one_rule() {
    let good = [
        "minutes",
        "board_minutes",
        "2026-q3",
        "city_transport",
        &"x".repeat(64),
    ];
    let bad = ["", "Minutes", "has space", "é", &"x".repeat(65), "a.b"];
    let mut w = World::new();
    for (i, id) in good.iter().enumerate() {
        let attest = json!({"digest": b64_encode([i as u8; 32]), "kind": id});
        w.submit(2, "coop.attest", attest).unwrap();
        let mut b = crate::bylaws::Bylaws::single_class();
        let c = b.classes.remove("members").unwrap();
        b.classes.insert((*id).to_owned(), c);
        b.validate().unwrap();
    }
    for id in bad {
        let attest = json!({"digest": b64_encode([1u8; 32]), "kind": id});
        assert_eq!(
            malformed_field(w.submit(2, "coop.attest", attest)),
            "body.payload.kind",
            "{id:?}"
        );
        let mut b = crate::bylaws::Bylaws::single_class();
        let c = b.classes.remove("members").unwrap();
        b.classes.insert(id.to_owned(), c);
        assert!(b.validate().is_err(), "{id:?}");
    }
    for id in good {
        assert!(crate::payload::is_ident(id));
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

mod consent;
mod membership;
mod personal;
mod proposals;
mod revenue;
mod secret_ballots;
