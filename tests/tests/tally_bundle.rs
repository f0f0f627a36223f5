//! A two-thirds bylaws amendment as a general assembly would run it, recounted by a regulator
//! from a file with the node stopped: adopted at exactly 2/3 (one yes by proxy), rejected one
//! vote short; each tampering with the exported bundle — a vote dropped, a vote added, a weight
//! changed, a proxy removed, a vote moved — is INVALID with its cause named.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, key, member_id, ok, tally_when_closed};
use coopledger_e2e::{coop, Node};
use coopledger_governance::bylaws::Bylaws;
use coopledger_ledger::codec::b64_encode;
use serde_json::Value;
use std::path::Path;

/// The default bylaws (two-thirds for amendments, written `"ratio": "2/3"`), with votes that
/// may close after a second.
fn bylaws(version: u64) -> Bylaws {
    let mut b = Bylaws::single_class();
    b.version = version;
    for d in b.decisions.values_mut() {
        d.min_duration_ms = 1_000;
    }
    b
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// `coop verify-bundle FILE --vkey KEY`: (exit code, stdout).
fn verify(file: &Path, vkey: &str) -> (i32, String) {
    let (code, out, err) =
        coop(&["verify-bundle", file.to_str().unwrap(), "--vkey", vkey]).unwrap();
    (code, format!("{out}{err}"))
}

/// The state key `prefix/<proposal id bytes>/<member>` as a bundle names it (base64, namespace
/// byte first).
fn state_key(prefix: &str, proposal: &str, member: &str) -> String {
    let mut k = vec![1u8];
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(&hex::decode(proposal).unwrap());
    k.push(b'/');
    k.extend_from_slice(member.as_bytes());
    b64_encode(&k)
}

#[test]
fn a_two_thirds_amendment_is_recounted_from_a_file_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let v1 = d.join("bylaws-v1.json");
    write_json(&v1, &serde_json::to_value(bylaws(1)).unwrap());
    let keys: Vec<String> = (1..=6).map(|i| key(d, &format!("m{i}"))).collect();
    let mut init = vec![
        "init".to_string(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--origin".into(),
        "assembly.example.coop/ledger".into(),
        "--name".into(),
        "General Assembly Co-op".into(),
        "--bylaws".into(),
        v1.to_str().unwrap().into(),
    ];
    for k in &keys {
        init.push("--founder".into());
        init.push(format!("@{k}:class=members"));
    }
    ok(&init.iter().map(String::as_str).collect::<Vec<_>>());
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let run = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        ok(&v)
    };
    let vkey = run(&["vkey"]).trim().to_owned();
    let amend = |who: &str, version: u64, title: &str| {
        let file = d.join(format!("bylaws-v{version}.json"));
        write_json(&file, &serde_json::to_value(bylaws(version)).unwrap());
        after(
            &run(&[
                "proposal",
                "create",
                "--key",
                who,
                "--kind",
                "bylaws_amendment",
                "--title",
                title,
                "--bylaws",
                file.to_str().unwrap(),
                "--duration",
                "3",
            ]),
            "proposal:",
        )
    };

    // Exactly two-thirds: 3 yes in person, 1 yes by proxy (m6 → m1), 2 no.
    let first = amend(&keys[0], 2, "Bylaws v2: publish minutes within 7 days");
    run(&[
        "proxy",
        "--key",
        &keys[5],
        &first,
        "--to",
        &member_id(&keys[0]),
    ]);
    for k in &keys[0..3] {
        run(&["vote", "--key", k, &first, "yes"]);
    }
    for k in &keys[3..5] {
        run(&["vote", "--key", k, &first, "no"]);
    }
    let t = tally_when_closed(&rpc, &first);
    assert_eq!(t["outcome"], "adopted", "{t}");
    assert_eq!(t["result"]["yesNo"]["yesShare"], "2/3");
    assert_eq!(t["byProxy"], 1);

    // One vote short under bylaws v2 (whose frozen rules the amendment's adoption proves):
    // 3 yes, 2 no, m6 absent.
    let second = amend(&keys[1], 3, "Bylaws v3: meet monthly");
    for k in &keys[0..3] {
        run(&["vote", "--key", k, &second, "yes"]);
    }
    for k in &keys[3..5] {
        run(&["vote", "--key", k, &second, "no"]);
    }
    let t = tally_when_closed(&rpc, &second);
    assert_eq!(t["outcome"], "rejected", "{t}");
    assert_eq!(t["result"]["yesNo"]["yesShare"], "3/5");

    let a = d.join("first.tally.json");
    let b = d.join("second.tally.json");
    let out = run(&[
        "tally",
        "export",
        &first,
        "-o",
        a.to_str().unwrap(),
        "--vkey",
        &vkey,
    ]);
    assert!(out.contains("wrote"), "{out}");
    run(&[
        "tally",
        "export",
        &second,
        "-o",
        b.to_str().unwrap(),
        "--vkey",
        &vkey,
    ]);
    // Online, the same verifier: agrees.
    let out = run(&["tally", "verify", &first, "--vkey", &vkey]);
    assert!(out.contains("AGREES"), "{out}");
    // A refusal is one line naming the rule, exit 3 (README, `coop --help`).
    let (code, out, err) =
        coop(&["--rpc", &rpc, "vote", "--key", &keys[5], &first, "yes"]).unwrap();
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.starts_with("refused (proposal.closed): "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let (code, _, err) = coop(&["--rpc", &rpc, "tally", "export", "00", "-o", "x"]).unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(err.starts_with("refused (INVALID_PARAMS"), "{err}");
    node.terminate().unwrap();
    // The node is stopped: unavailable, exit 4, one line.
    let (code, _, err) =
        coop(&["--rpc", &rpc, "tally", "verify", &first, "--vkey", &vkey]).unwrap();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.starts_with("node unavailable: Connection refused"),
        "{err}"
    );

    // The node is stopped: the regulator recounts from the files alone.
    let (code, out) = verify(&a, &vkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");
    assert!(out.contains("outcome adopted"), "{out}");
    assert!(out.contains("yes share 2/3 against gte 2/3"), "{out}");
    assert!(out.contains("1 by proxy"), "{out}");
    let (code, out) = verify(&b, &vkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("outcome rejected"), "{out}");
    assert!(out.contains("bylaws v2"), "{out}");
    // A key with another id: refused before anything is trusted.
    let other = vkey.replace(vkey.split('+').nth(1).unwrap(), "00000000");
    let (code, out) = verify(&a, &other);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--vkey"), "{out}");

    // Tampering, each named.
    let bundle: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let index_of = |key: &str| {
        bundle["states"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no state {key}"))
    };
    let m4 = member_id(&keys[3]);
    let m6 = member_id(&keys[5]);
    let tampered = |name: &str, edit: &dyn Fn(&mut Value)| -> String {
        let mut v = bundle.clone();
        edit(&mut v);
        let file = d.join(format!("{name}.json"));
        write_json(&file, &v);
        let (code, out) = verify(&file, &vkey);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains("INVALID"), "{name}: {out}");
        out
    };
    // A vote dropped: m4's "no" left out of the bundle.
    let vote_m4 = index_of(&state_key("vote/", &first, &m4));
    let out = tampered("vote-dropped", &|v| {
        v["states"].as_array_mut().unwrap().remove(vote_m4);
    });
    assert!(
        out.contains("vote/") && out.contains("is not proved"),
        "{out}"
    );
    // A vote added: m6 (who gave a proxy) shown voting no.
    let vote_m6 = index_of(&state_key("vote/", &first, &m6));
    assert_eq!(bundle["states"][vote_m6]["value"], Value::Null);
    let forged = b64_encode(br#"{"index":7,"vote":"no"}"#);
    let out = tampered("vote-added", &|v| {
        v["states"][vote_m6]["value"] = Value::String(forged.clone());
    });
    assert!(out.contains(&format!("states[{vote_m6}]")), "{out}");
    // A weight changed in the recorded tally.
    let out = tampered("weight-changed", &|v| {
        v["tally"]["result"]["yesNo"]["weights"]["members"] = "2/1".into();
    });
    assert!(out.contains("differs from the recount"), "{out}");
    assert!(out.contains("weights"), "{out}");
    // A proxy removed.
    let proxy_m6 = index_of(&state_key("proxy/", &first, &m6));
    let out = tampered("proxy-removed", &|v| {
        v["states"].as_array_mut().unwrap().remove(proxy_m6);
    });
    assert!(
        out.contains("proxy/") && out.contains("is not proved"),
        "{out}"
    );
    // A vote moved: m4's vote entry swapped out of the bundle.
    let entries = bundle["entries"].as_array().unwrap();
    let out = tampered("vote-entry-dropped", &|v| {
        let list = v["entries"].as_array_mut().unwrap();
        let at = list
            .iter()
            .position(|e| {
                let bytes =
                    coopledger_ledger::codec::b64_decode(e["entry"].as_str().unwrap()).unwrap();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                text.contains(&m4) && text.contains("gov.vote")
            })
            .unwrap();
        list.remove(at);
    });
    assert!(
        out.contains(&format!("the vote of {m4}")) && out.contains("missing"),
        "{out}"
    );
    assert!(entries.len() > 6);
    // The bundle of another proposal's tally claimed for this one.
    let out = tampered("tally-swapped", &|v| {
        let other: Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
        v["tally"] = other["tally"].clone();
    });
    assert!(out.contains("differs from the recount"), "{out}");
}
