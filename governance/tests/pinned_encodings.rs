//! Pinned encodings: a fixed log — fixed keys, fixed times, fixed batches — built with the
//! co-op's rules must give exactly these state roots, `log.state` entries and tree roots.
//!
//! Every governance state value is hashed into every state root, so a change to how any record
//! is serialised (a field renamed, reordered, added, a number written differently) changes the
//! roots that logs already in the field have signed. If this test fails, the encoding changed:
//! either undo the change, or version it (a new format with a migration, `docs/format.md`)
//! and pin the new values deliberately — never just paste the new numbers.
//!
//! The log is built batch by batch with `ledger::audit::Audit` (the offline replay, which
//! applies batches exactly as the sequencer does), so the same test also checks that the
//! replay accepts it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::personal::commitment;
use coopledger_governance::records;
use coopledger_governance::rules::tally_entry_payload;
use coopledger_governance::tally::Ratio;
use coopledger_governance::{member_id, CoopRules, Founder, Genesis, Role};
use coopledger_ledger::audit::Audit;
use coopledger_ledger::codec::{b64_encode, canonical_json};
use coopledger_ledger::hash::leaf_hash;
use coopledger_ledger::merkle::MemoryTree;
use coopledger_ledger::state::StateCommitment;
use coopledger_ledger::{Body, Envelope};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const COOP: &str = "pinned.example.coop/ledger";
const T0: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn pk(n: u8) -> [u8; 32] {
    key(n).verifying_key().to_bytes()
}

/// The log under construction.
struct Builder<'m> {
    audit: Audit<'m, CoopRules>,
    bytes: Vec<Vec<u8>>,
    seq: HashMap<u8, u64>,
    /// (size, state root, SHA-256 of the `log.state` entry's bytes) per batch.
    batches: Vec<(u64, String, String)>,
    /// Version of the `coop.genesis` entry (2 chains consent timelines).
    genesis_version: u64,
}

impl<'m> Builder<'m> {
    fn entry(&mut self, n: u8, kind: &str, ts: u64, payload: Value) -> Envelope {
        let seq = self.seq.entry(n).or_insert(0);
        *seq += 1;
        let env = Body {
            coop: COOP.into(),
            kind: kind.into(),
            version: if kind == "coop.genesis" {
                self.genesis_version
            } else {
                1
            },
            signer: pk(n),
            seq: *seq,
            ts,
            payload: payload.as_object().unwrap().clone(),
        }
        .sign(&key(n))
        .unwrap();
        self.audit.push(env.bytes()).unwrap();
        self.bytes.push(env.bytes().to_vec());
        env
    }

    /// Closes the batch at `time` with the node's `log.state` entry.
    fn close(&mut self, time: u64) {
        let root = self.audit.pending_root(time).unwrap();
        let c = StateCommitment {
            size: self.audit.size(),
            root,
            batch_time_ms: time,
        };
        let env = c.to_entry(COOP, &key(1)).unwrap();
        self.audit.push(env.bytes()).unwrap();
        self.bytes.push(env.bytes().to_vec());
        self.batches.push((
            c.size,
            hex::encode(root.as_bytes()),
            hex::encode(Sha256::digest(env.bytes())),
        ));
    }
}

/// Co-ops founded with `coop.genesis` v1 (whole consent timelines): logs in the field.
#[test]
fn a_fixed_log_gives_the_pinned_roots() {
    let (batches, tree_root) = fixed_log(1);
    let got: Vec<(u64, &str, &str)> = batches
        .iter()
        .map(|(s, r, e)| (*s, r.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        got, PINNED_BATCHES,
        "a state encoding changed (see this file's header)"
    );
    assert_eq!(tree_root, PINNED_TREE_ROOT);
}

/// The same log founded with `coop.genesis` v2 (chained consent timelines), as `coop init`
/// founds every co-op now.
#[test]
fn a_fixed_log_founded_with_genesis_v2_gives_the_pinned_roots() {
    let (batches, tree_root) = fixed_log(2);
    let got: Vec<(u64, &str, &str)> = batches
        .iter()
        .map(|(s, r, e)| (*s, r.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        got, PINNED_BATCHES_V2,
        "a state encoding changed (see this file's header)"
    );
    assert_eq!(tree_root, PINNED_TREE_ROOT_V2);
}

/// Builds the fixed log (every entry accepted by the offline replay) and returns, per batch,
/// (size, state root, SHA-256 of the `log.state` entry), and the RFC 9162 root of the log.
fn fixed_log(genesis_version: u64) -> (Vec<(u64, String, String)>, String) {
    let rules = CoopRules;
    let mut b = Builder {
        audit: Audit::new(&rules, pk(1)),
        bytes: Vec::new(),
        seq: HashMap::new(),
        batches: Vec::new(),
        genesis_version,
    };
    // The default bylaws as logs in the field hold them: ratios in ppm, from before bylaws
    // wrote exact fractions (`"ratio": "2/3"`), and no admission section. They must keep
    // giving the same roots.
    let mut bylaws = Bylaws::single_class();
    bylaws.admission = None; // admission by general vote, as before bylaws had the section
    for d in bylaws.decisions.values_mut() {
        d.min_duration_ms = 60_000;
        d.quorum.minimum = Ratio::Ppm(200_000);
        d.threshold.ratio = match d.threshold.ratio {
            Ratio::Exact { num: 1, den: 2 } => Ratio::Ppm(500_000),
            _ => Ratio::Ppm(666_667),
        };
    }
    let genesis = Genesis {
        name: "Pinned Drivers' Co-op".into(),
        node_key: pk(1),
        founders: vec![
            Founder {
                key: pk(2),
                class: "members".into(),
                roles: vec![Role::Board],
            },
            Founder {
                key: pk(3),
                class: "members".into(),
                roles: vec![Role::Treasurer],
            },
            Founder {
                key: pk(4),
                class: "members".into(),
                roles: vec![],
            },
        ],
        bylaws,
    };
    let m = |n: u8| member_id(&pk(n));

    // Batch 1: genesis.
    b.entry(1, "coop.genesis", T0, Value::Object(genesis.to_payload()));
    b.close(T0);

    // Batch 2: minutes attested, a proposal, two votes, an application.
    b.entry(
        2,
        "coop.attest",
        T0 + 1_000,
        json!({"digest": b64_encode(Sha256::digest(b"minutes")), "kind": "minutes"}),
    );
    let proposal = b.entry(
        2,
        "gov.propose",
        T0 + 1_000,
        json!({"kind": "ordinary", "title": "Share trip data with the city",
               "method": "yes_no", "opensMs": T0 + 1_000, "closesMs": T0 + 61_000}),
    );
    let pid = hex::encode(proposal.entry_id().as_bytes());
    b.entry(
        3,
        "gov.vote",
        T0 + 2_000,
        json!({"proposal": pid, "member": m(3), "vote": "yes"}),
    );
    b.entry(
        4,
        "gov.vote",
        T0 + 2_000,
        json!({"proposal": pid, "member": m(4), "vote": "no"}),
    );
    b.close(T0 + 2_000);

    // Batch 3: the tally after the close, parties, a notice, a consent, a data use, a profile.
    let tally = tally_entry_payload(b.audit.state(), proposal.entry_id().as_bytes())
        .unwrap()
        .unwrap();
    b.entry(1, "gov.tally", T0 + 61_000, Value::Object(tally));
    for (party, kind, k) in [
        ("drivers_coop", "controller", Some(20u8)),
        ("city", "recipient", None),
    ] {
        let mut p = json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"});
        if let Some(k) = k {
            p["key"] = json!(b64_encode(pk(k)));
        }
        b.entry(2, "party.register", T0 + 61_000, p);
    }
    b.entry(
        20,
        "consent.notice",
        T0 + 61_000,
        json!({"notice": "trips", "version": 1, "controller": "drivers_coop",
               "purposes": ["dpv:ServiceOptimisation"], "dataCategories": ["pd:Location"],
               "operations": ["dpv:Share"], "recipients": ["city"], "retentionMs": 365 * DAY,
               "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
               "textDigest": b64_encode(Sha256::digest(b"We share trips ...")),
               "language": "en", "specialCategory": false}),
    );
    let grant = b.entry(
        4,
        "consent.grant",
        T0 + 61_000,
        json!({"member": m(4), "notice": "trips", "version": 1,
               "purposes": ["dpv:ServiceOptimisation"], "recipients": ["city"],
               "dataCategories": ["pd:Location"], "fromMs": T0, "untilMs": T0 + 30 * DAY}),
    );
    b.entry(
        20,
        "data.use",
        T0 + 61_000,
        json!({"kind": "sale", "recipient": "city", "purpose": "dpv:ServiceOptimisation",
               "dataCategories": ["pd:Location"],
               "consents": [hex::encode(grant.entry_id().as_bytes())]}),
    );
    b.entry(
        4,
        "member.profile",
        T0 + 61_000,
        json!({"member": m(4), "attributes": {
            "name": b64_encode(commitment(&[9; 32], "Ada Lovelace"))}}),
    );
    b.close(T0 + 61_000);

    let report = std::mem::replace(&mut b.audit, Audit::new(&rules, pk(1)))
        .finish()
        .unwrap();
    assert_eq!(report.batches, 3);

    // The governance state reads back as expected (so the pinned values are of a real log).
    let mut replay = Audit::new(&rules, pk(1));
    for e in &b.bytes {
        replay.push(e).unwrap();
    }
    let p = records::proposal(replay.state(), proposal.entry_id().as_bytes())
        .unwrap()
        .unwrap();
    assert!(p.tally.is_some(), "the proposal is tallied");

    // The tree over every entry, as RFC 9162 hashes it.
    let mut tree = MemoryTree::new();
    for e in &b.bytes {
        tree.push(leaf_hash(e));
    }
    let tree_root = hex::encode(tree.root().as_bytes());

    println!("batches: {:#?}\ntree root: {tree_root}", b.batches);
    assert_eq!(b.bytes.len(), 15);
    (b.batches, tree_root)
}

/// (size = index of the `log.state` entry, state root, SHA-256 of that entry's bytes), as this
/// test first computed them on 2026-12-01 (format version 2 of `docs/format.md`).
const PINNED_BATCHES: &[(u64, &str, &str)] = &[
    (
        1,
        "069c8c187726811b5fd2b1c1badca6c1a7a7a6e6e09ef564f95ca8d26119aa6b",
        "5cd24ee1f899e04878809c3e238af49f0a4e52ee36617ce44add57c7fcd82294",
    ),
    (
        6,
        "fd8b433309c8fdd53a3291024b1b8f605c1899d87c7d4bb6e0a57450d1262184",
        "b6e091a61c0687da3d390db5ce15f75696ada64b0756148874e61bf790d5724b",
    ),
    (
        14,
        "461462c701c0a346e456fa6b7918d100827c2dde502150e606e3bd2223a6a213",
        "36b8346cc82e40153e7849bef1aa1b4f50849f3f14e51bc3db63175abb52bea6",
    ),
];

/// RFC 9162 root of the whole fixed log.
const PINNED_TREE_ROOT: &str = "e4eb81418a8a334d6d50c0909f7c0aede1c47335c7bd9e7945f52b2013622496";

/// The same for the log founded with `coop.genesis` v2, as first computed on 2026-12-02.
const PINNED_BATCHES_V2: &[(u64, &str, &str)] = &[
    (
        1,
        "2e933f3c7afa3b12ac2333fd7952439c433f1661defadbe23eeeeb5ccddbc050",
        "d41f6c52ec486f834d58d62f464e7da41226867b140bfbee74078ba53cb77c04",
    ),
    (
        6,
        "4d200bc6ad5bd769cc7c7c3c36f3feb92ebe148782d0814a4fc7cd85c23b67e0",
        "30435289242668f93289322d3227caa62ab274f2470ee0bb50e9a322e700a02e",
    ),
    (
        14,
        "d04c3f36269ce617165781162a4bda6156f324cd0720df42b4366b05c5d200bf",
        "4f2a2e52ad80340594221462160b9abf2d67736bc418d8097add5e185f833740",
    ),
];

/// RFC 9162 root of the log founded with `coop.genesis` v2.
const PINNED_TREE_ROOT_V2: &str =
    "525716ceeeec973fbe781749c009ce911fa709657c2e9529ab5a5245b3883486";

/// RFC 8785 (JSON Canonicalization Scheme) test vectors from the RFC itself: Appendix B
/// (number serialisation, the integers this codec accepts) and §3.2.3 (sorting), plus the
/// refusal of what this codec does not accept (floats, integers beyond ±(2^53 − 1)).
#[test]
fn canonical_json_matches_rfc8785() {
    // §3.2.2.2 / Appendix B: integers are written in shortest form.
    for (v, want) in [
        (json!(0), "0"),
        (json!(-0), "0"),
        (json!(1), "1"),
        (json!(-1), "-1"),
        (json!(9007199254740991_i64), "9007199254740991"),
        (json!(-9007199254740991_i64), "-9007199254740991"),
    ] {
        assert_eq!(canonical_json(&v, "v").unwrap(), want.as_bytes());
    }
    // Outside ±(2^53 − 1), and every float (RFC 8785 would write 1e+21 etc.; this codec
    // refuses them: no floats in rules or money).
    for v in [
        json!(9007199254740992_i64),
        json!(-9007199254740992_i64),
        json!(1.5),
        json!(1e21),
    ] {
        assert!(canonical_json(&v, "v").is_err(), "{v} accepted");
    }
    // §3.2.3: properties sorted by their UTF-16 code units, recursively; the RFC's example.
    let sorting: Value = serde_json::from_str(
        r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    let out = String::from_utf8(canonical_json(&sorting, "v").unwrap()).unwrap();
    let order: Vec<&str> = out
        .split("\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh"
        ]
    );
    // §3.2.2.2: string escaping — the RFC's example values.
    let strings = json!({"string": "\u{20ac}$\u{000F}\u{000a}A'B\"\\\\\"/"});
    assert_eq!(
        String::from_utf8(canonical_json(&strings, "v").unwrap()).unwrap(),
        "{\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
    // §3.2.4 example, with its only float (4.50 → 4.5) and 2e-3 removed: literals, nesting.
    let mixed: Value = serde_json::from_str(
        r#"{"numbers": [333333333, 1E30, 0], "literals": [null, true, false]}"#,
    )
    .unwrap();
    assert!(canonical_json(&mixed, "v").is_err(), "1E30 is a float");
    let mixed: Value =
        serde_json::from_str(r#"{"numbers": [333333333, 0], "literals": [null, true, false]}"#)
            .unwrap();
    assert_eq!(
        String::from_utf8(canonical_json(&mixed, "v").unwrap()).unwrap(),
        r#"{"literals":[null,true,false],"numbers":[333333333,0]}"#
    );
}
