//! Rule tests over in-memory state: genesis and the known-signer rule.

use super::*;
use crate::genesis::{Founder, Genesis};
use coopledger_ledger::entry::admit;
use coopledger_ledger::state::MemoryState;
use coopledger_ledger::Body;
use ed25519_dalek::SigningKey;
use serde_json::json;

const COOP: &str = "coop.example/test";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn entry(signer: &SigningKey, kind: &str, seq: u64, payload: Value) -> Verified<Envelope> {
    let env = Body {
        coop: COOP.into(),
        kind: kind.into(),
        version: 1,
        signer: signer.verifying_key().to_bytes(),
        seq,
        ts: 1,
        payload: payload.as_object().unwrap().clone(),
    }
    .sign(signer)
    .unwrap();
    admit(vec![env]).pop().unwrap().unwrap()
}

fn genesis_payload() -> Value {
    let g = Genesis {
        name: "Test Drivers' Co-op".into(),
        node_key: key(1).verifying_key().to_bytes(),
        founders: vec![
            Founder {
                key: key(2).verifying_key().to_bytes(),
                roles: vec![Role::Board],
            },
            Founder {
                key: key(3).verifying_key().to_bytes(),
                roles: vec![Role::Treasurer],
            },
        ],
    };
    Value::Object(g.to_payload())
}

fn ctx(index: u64) -> ApplyContext {
    ApplyContext {
        index,
        batch_time_ms: 1,
    }
}

fn founded() -> MemoryState {
    let mut s = MemoryState::new();
    s.apply(
        &CoopRules,
        &entry(&key(1), "coop.genesis", 1, genesis_payload()),
        &ctx(0),
    )
    .unwrap();
    s
}

fn rejected_rule(r: Result<(), ApplyError>) -> String {
    match r {
        Err(ApplyError::Rejected(Rejection::Rule { rule, .. })) => rule,
        other => panic!("expected a rule rejection, got {other:?}"),
    }
}

#[test]
fn genesis_records_the_node_and_founders_with_roles() {
    let s = founded();
    let get = |k: &[u8]| Ok(s.get(k).cloned());
    let coop = CoopRules::coop(get).unwrap().unwrap();
    assert_eq!(coop.members, 2);
    let board = CoopRules::key(get, &key(2).verifying_key().to_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(board.roles, vec![Role::Member, Role::Board]);
    assert!(board.member.starts_with("m-"));
    let node = CoopRules::key(get, &key(1).verifying_key().to_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(node.roles, vec![Role::Node]);
    assert!(CoopRules::key(get, &key(9).verifying_key().to_bytes())
        .unwrap()
        .is_none());
}

#[test]
fn the_first_entry_must_be_genesis_and_only_once() {
    let mut s = MemoryState::new();
    let attest = json!({"digest": b64_encode([0u8; 32]), "kind": "minutes"});
    let r = s.apply(
        &CoopRules,
        &entry(&key(2), "coop.attest", 1, attest),
        &ctx(0),
    );
    assert_eq!(rejected_rule(r), "genesis.first");
    assert_eq!(s, MemoryState::new(), "a rejected entry changes nothing");
    let mut s = founded();
    let before = s.clone();
    let r = s.apply(
        &CoopRules,
        &entry(&key(1), "coop.genesis", 2, genesis_payload()),
        &ctx(1),
    );
    assert_eq!(rejected_rule(r), "genesis.once");
    assert_eq!(s, before);
}

#[test]
fn genesis_must_be_signed_by_the_node_key_it_names() {
    let mut s = MemoryState::new();
    let r = s.apply(
        &CoopRules,
        &entry(&key(2), "coop.genesis", 1, genesis_payload()),
        &ctx(0),
    );
    assert_eq!(rejected_rule(r), "genesis.node_signs");
}

#[test]
fn genesis_payload_errors_name_the_field() {
    let mut bad = genesis_payload();
    bad["founders"][1]["roles"] = json!(["king"]);
    let mut s = MemoryState::new();
    match s.apply(&CoopRules, &entry(&key(1), "coop.genesis", 1, bad), &ctx(0)) {
        Err(ApplyError::Rejected(Rejection::Malformed { field, .. })) => {
            assert_eq!(field, "body.payload.founders[1].roles[0]")
        }
        other => panic!("{other:?}"),
    }
    let mut dup = genesis_payload();
    dup["founders"][1]["key"] = dup["founders"][0]["key"].clone();
    assert!(s
        .apply(&CoopRules, &entry(&key(1), "coop.genesis", 1, dup), &ctx(0))
        .is_err());
    assert_eq!(s, MemoryState::new());
}

#[test]
fn only_known_keys_may_sign() {
    let mut s = founded();
    let attest = json!({"digest": b64_encode([7u8; 32]), "kind": "minutes"});
    assert!(s
        .apply(
            &CoopRules,
            &entry(&key(2), "coop.attest", 1, attest.clone()),
            &ctx(1)
        )
        .is_ok());
    match s.apply(
        &CoopRules,
        &entry(&key(9), "coop.attest", 1, attest),
        &ctx(2),
    ) {
        Err(ApplyError::Rejected(Rejection::UnknownSigner { .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn attest_payload_is_validated() {
    let mut s = founded();
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
        match s.apply(
            &CoopRules,
            &entry(&key(2), "coop.attest", 1, payload),
            &ctx(1),
        ) {
            Err(ApplyError::Rejected(Rejection::Malformed { field: f, .. })) => {
                assert_eq!(f, field)
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn registry_lists_exactly_the_handled_types() {
    assert!(CoopRules.accepts("coop.genesis", 1));
    assert!(CoopRules.accepts("coop.attest", 1));
    assert!(!CoopRules.accepts("coop.attest", 2));
    assert!(!CoopRules.accepts("member.vote", 1));
}
