//! End-to-end secret ballot against a real node, as members run it with the `coop` CLI: each
//! member's participation is signed in the log, their ballot goes into the node's box under a
//! one-time key and comes back with a signed receipt, the box survives a crash of the node, and
//! at the close the node publishes every ballot at once; members recount with
//! `coop tally verify` and find their own ballot by its receipt. The log shows no link from a
//! ballot to a member.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, init_secret_ballot_coop, member_id, ok, refused, tally_when_closed};
use coopledger_e2e::{coop, read_key, sign, Node};
use coopledger_ledger::codec::b64_encode;
use coopledger_rpc::client::http_client;
use coopledger_rpc::{GovApiClient, LedgerApiClient};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

#[test]
fn secret_ballot_publishes_unlinkable_ballots_at_the_close_and_members_can_recount() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let (names, keys) = init_secret_ballot_coop(d, &data);
    let mut node = Node::start(&data, &[]).unwrap();
    let run = |rpc: &str, args: &[&str]| {
        let mut v = vec!["--rpc", rpc];
        v.extend_from_slice(args);
        ok(&v)
    };
    let fail = |rpc: &str, args: &[&str]| {
        let mut v = vec!["--rpc", rpc];
        v.extend_from_slice(args);
        refused(&v)
    };
    let rpc = node.http_url();
    let out = run(
        &rpc,
        &[
            "proposal",
            "create",
            "--key",
            &keys[0],
            "--kind",
            "special",
            "--title",
            "Sell pooled trip data to the city",
            "--duration",
            "10",
        ],
    );
    let proposal = after(&out, "proposal:");
    let receipt = |i: usize| d.join(format!("{}.receipt.json", names[i]));

    // Three members vote before the node crashes.
    for (i, v) in [(0, "yes"), (1, "no"), (2, "yes")] {
        let out = run(
            &rpc,
            &[
                "vote",
                "--key",
                &keys[i],
                &proposal,
                v,
                "--receipt",
                receipt(i).to_str().unwrap(),
            ],
        );
        assert!(out.contains("took part (signed) at index"), "{out}");
        assert!(out.contains("cast secretly"), "{out}");
    }
    // No revotes; no proxies.
    let err = fail(&rpc, &["vote", "--key", &keys[0], &proposal, "no"]);
    assert!(err.contains("vote.revote"), "{err}");
    let err = fail(
        &rpc,
        &[
            "proxy",
            "--key",
            &keys[3],
            &proposal,
            "--to",
            &member_id(&keys[0]),
        ],
    );
    assert!(err.contains("proxy.secret"), "{err}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = http_client(&rpc).unwrap();
    let p = rt.block_on(client.proposal(proposal.clone())).unwrap();
    // The node published the class keys for RFC 9497 tokens (protocol 2).
    assert_eq!(p.secret.as_ref().and_then(|s| s.protocol), Some(2));
    // Results stay sealed until the close.
    let sealed = rt
        .block_on(client.live_tally(proposal.clone()))
        .unwrap_err();
    assert!(sealed.to_string().contains("2003"), "{sealed}");
    // A ballot whose credential the node never issued is refused by the box, naming the rule;
    // a credential of protocol 1's length is malformed under protocol 2, and says so.
    let one_time = SigningKey::from_bytes(&[42; 32]);
    let cast_forged = |credential: &[u8]| {
        let forged = sign(
            &one_time,
            "rides.example.coop/ledger",
            "gov.ballot",
            1,
            p.opens_ms,
            json!({"proposal": proposal, "class": "riders", "credential": b64_encode(credential), "vote": "yes"}),
        )
        .unwrap();
        rt.block_on(client.cast_ballot(forged.to_value()))
            .unwrap_err()
            .to_string()
    };
    let err = cast_forged(&[5; 64]);
    assert!(err.contains("ballot.credential"), "{err}");
    let err = cast_forged(&[5; 32]);
    assert!(err.contains("base64 of 64 bytes"), "{err}");

    // The node is killed (SIGKILL) and restarted: the box is on disk, nothing is lost.
    node.kill9().unwrap();
    node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    run(
        &rpc,
        &[
            "vote",
            "--key",
            &keys[3],
            &proposal,
            "yes",
            "--receipt",
            receipt(3).to_str().unwrap(),
        ],
    );

    let t = tally_when_closed(&rpc, &proposal);
    assert_eq!(t["ballots"], 4, "{t}");
    assert_eq!(t["participants"], 4, "{t}");
    for i in 0..4 {
        let out = run(
            &rpc,
            &[
                "tally",
                "verify",
                &proposal,
                "--receipt",
                receipt(i).to_str().unwrap(),
            ],
        );
        assert!(out.contains("AGREES"), "{out}");
        assert!(out.contains("is published in entry"), "{out}");
    }
    // A receipt altered to name another ballot does not verify.
    let mut r: Value = serde_json::from_slice(&std::fs::read(receipt(0)).unwrap()).unwrap();
    let other: Value = serde_json::from_slice(&std::fs::read(receipt(1)).unwrap()).unwrap();
    r["ballot"] = other["ballot"].clone();
    let bad = d.join("bad.receipt.json");
    std::fs::write(&bad, serde_json::to_vec(&r).unwrap()).unwrap();
    let (code, _, err) = coop(&[
        "--rpc",
        &rpc,
        "tally",
        "verify",
        &proposal,
        "--receipt",
        bad.to_str().unwrap(),
    ])
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("does not verify"), "{err}");

    // The log: participations name members and carry no vote; ballots are published together,
    // in ballot-id order, all stamped with the opening time, none signed by a member's key.
    let client = http_client(&rpc).unwrap();
    let member_keys: Vec<String> = keys
        .iter()
        .map(|k| {
            b64_encode(
                read_key(std::path::Path::new(k))
                    .unwrap()
                    .verifying_key()
                    .to_bytes(),
            )
        })
        .collect();
    let mut published: Vec<Value> = Vec::new();
    let mut participations = 0;
    for i in rt
        .block_on(client.proposal_entries(proposal.clone()))
        .unwrap()
    {
        let e = rt.block_on(client.get_entry(i)).unwrap().decoded;
        match e["body"]["type"].as_str().unwrap() {
            "gov.vote" => {
                participations += 1;
                assert!(e["body"]["payload"].get("vote").is_none());
                assert!(e["body"]["payload"].get("blinded").is_some());
            }
            "gov.ballots" => {
                published.extend(e["body"]["payload"]["ballots"].as_array().unwrap().clone());
            }
            _ => {}
        }
    }
    assert_eq!(participations, 4);
    assert_eq!(published.len(), 4);
    let ids: Vec<String> = published
        .iter()
        .map(|b| {
            let env = coopledger_ledger::Envelope::from_value(b).unwrap();
            assert!(!member_keys.contains(&b["body"]["signer"].as_str().unwrap().to_owned()));
            assert_eq!(env.body().ts, p.opens_ms);
            hex::encode(env.entry_id().as_bytes())
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        ids, sorted,
        "published in ballot-id order, not casting order"
    );
    let yes = published
        .iter()
        .filter(|b| b["body"]["payload"]["vote"] == "yes")
        .count();
    assert_eq!(yes, 3);
    // An outside audit replays the whole log — participations, the published box, the tally —
    // with the co-op's rules and reaches every recorded state root.
    let rpc_url = node.http_url();
    let vkey = ok(&["--rpc", &rpc_url, "vkey"]).trim().to_owned();
    let out = ok(&["--rpc", &rpc_url, "audit", "--vkey", &vkey]);
    assert!(out.starts_with("AUDIT PASSED"), "{out}");

    // The tally bundle of the secret ballot, recounted with the node stopped: every published
    // ballot checked under the revealed class keys. A ballot moved to another class (its proved
    // record edited) or its publishing entry left out is INVALID, named.
    let file = d.join("secret.tally.json");
    ok(&[
        "--rpc",
        &rpc_url,
        "tally",
        "export",
        &proposal,
        "-o",
        file.to_str().unwrap(),
        "--vkey",
        &vkey,
    ]);
    node.terminate().unwrap();
    let verify = |f: &std::path::Path| {
        let (code, out, err) =
            coop(&["verify-bundle", f.to_str().unwrap(), "--vkey", &vkey]).unwrap();
        (code, format!("{out}{err}"))
    };
    let (code, out) = verify(&file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID") && out.contains("4 ballots"), "{out}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let ballot_at = bundle["states"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| {
            let k = coopledger_ledger::codec::b64_decode(s["key"].as_str().unwrap()).unwrap();
            k.starts_with(b"\x01ballot/")
        })
        .unwrap();
    let mut moved = bundle.clone();
    let value =
        coopledger_ledger::codec::b64_decode(moved["states"][ballot_at]["value"].as_str().unwrap())
            .unwrap();
    let mut record: Value = serde_json::from_slice(&value).unwrap();
    record["class"] = if record["class"] == "drivers" {
        "riders"
    } else {
        "drivers"
    }
    .into();
    moved["states"][ballot_at]["value"] = b64_encode(serde_json::to_vec(&record).unwrap()).into();
    let bad = d.join("moved.tally.json");
    std::fs::write(&bad, serde_json::to_vec(&moved).unwrap()).unwrap();
    let (code, out) = verify(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("INVALID: field `states[{ballot_at}]`")),
        "{out}"
    );
    let mut dropped = bundle.clone();
    let publishing = record["index"].as_u64().unwrap();
    dropped["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["index"].as_u64() != Some(publishing));
    std::fs::write(&bad, serde_json::to_vec(&dropped).unwrap()).unwrap();
    let (code, out) = verify(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "entry {publishing} (a gov.ballots entry) is missing"
        )),
        "{out}"
    );
}
