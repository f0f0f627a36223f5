//! End-to-end consent over a real node, driven through the `coop` CLI: a health-data co-op
//! registers its controller and recipients, publishes a notice; a patient grants physicians all
//! data and a research institute only medical and dietary data, and nothing to a pharmaceutical
//! company; a research use is accepted, the pharma use and an out-of-scope category are refused
//! by rule name; the patient withdraws and a later use is refused; status and timeline show it;
//! the co-op exports the patient's regulator bundle, which verifies offline, and every tampering
//! (a removed withdrawal, a changed byte, another log's checkpoint, a stale state proof, a false
//! history) fails verification.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, key, member_id, ok, refused};
use coopledger_e2e::{coop, Node};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use serde_json::{json, Value};
use std::path::Path;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_health_coop_member_grants_research_uses_are_checked_and_withdrawal_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let board = key(d, "board");
    let patient = key(d, "patient");
    let controller = key(d, "controller");
    ok(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--origin",
        "health.example.coop/ledger",
        "--name",
        "Patients' Data Co-op",
        "--founder",
        &format!("@{board}:board"),
        "--founder",
        &format!("@{patient}"),
    ]);
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let run = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        ok(&v)
    };
    let fail = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        refused(&v)
    };
    run(&[
        "party-register",
        "--key",
        &board,
        "--party",
        "health_coop",
        "--kind",
        "controller",
        "--name",
        "Patients' Data Co-op",
        "--party-key",
        &format!("@{controller}"),
    ]);
    for (p, name) in [
        ("physicians", "Regional Physicians' Network"),
        (
            "research_institute",
            "Non-profit Nutrition Research Institute",
        ),
        ("pharma", "Pharma Co."),
    ] {
        run(&[
            "party-register",
            "--key",
            &board,
            "--party",
            p,
            "--kind",
            "recipient",
            "--name",
            name,
        ]);
    }
    let text = d.join("notice.txt");
    std::fs::write(&text, "We share your records only as you choose ...").unwrap();
    let notice = d.join("notice.json");
    std::fs::write(
        &notice,
        serde_json::to_vec(&json!({
            "notice": "health", "version": 1, "controller": "health_coop",
            "purposes": ["dpv:ServiceProvision", "dpv:ScientificResearch"],
            "dataCategories": ["pd:MedicalHealth", "pd:Dietary", "pd:Genetic"],
            "operations": ["dpv:Store", "dpv:Share"],
            "recipients": ["physicians", "research_institute", "pharma"],
            "retentionMs": 31_536_000_000u64, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
            "textFile": "notice.txt", "language": "en", "specialCategory": true,
        }))
        .unwrap(),
    )
    .unwrap();
    let out = run(&[
        "notice-publish",
        "--key",
        &controller,
        notice.to_str().unwrap(),
    ]);
    // The CLI hands the text to the node once the notice is accepted; the node keeps only texts
    // a published notice commits to, and answers them by notice.
    assert!(out.contains("text: kept by the node"), "{out}");
    let rpc_call = |method: &str, params: Value| -> Value {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use jsonrpsee::core::client::ClientT;
            let c = jsonrpsee::http_client::HttpClientBuilder::default()
                .build(&rpc)
                .unwrap();
            let params = match params {
                Value::Array(a) => {
                    let mut p = jsonrpsee::core::params::ArrayParams::new();
                    for v in a {
                        p.insert(v).unwrap();
                    }
                    p
                }
                _ => unreachable!(),
            };
            match c.request::<Value, _>(method, params).await {
                Ok(v) => json!({"result": v}),
                Err(jsonrpsee::core::ClientError::Call(e)) => {
                    json!({"error": {"code": e.code(), "message": e.message()}})
                }
                Err(e) => panic!("{e}"),
            }
        })
    };
    assert_eq!(
        rpc_call("consent_noticeText", json!(["health"]))["result"],
        "We share your records only as you choose ..."
    );
    let forged = rpc_call("consent_putNoticeText", json!(["We share everything."]));
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    assert!(
        forged["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no published notice"),
        "{forged}"
    );

    let out = run(&[
        "consent",
        "grant",
        "--key",
        &patient,
        "--notice",
        "health",
        "--purpose",
        "dpv:ServiceProvision",
        "--recipient",
        "physicians",
        "--category",
        "pd:MedicalHealth",
        "--category",
        "pd:Dietary",
        "--category",
        "pd:Genetic",
    ]);
    let care = after(&out, "grant:");
    let receipt_file = d.join("research.receipt.json");
    let out = run(&[
        "consent",
        "grant",
        "--key",
        &patient,
        "--notice",
        "health",
        "--purpose",
        "dpv:ScientificResearch",
        "--recipient",
        "research_institute",
        "--category",
        "pd:MedicalHealth",
        "--category",
        "pd:Dietary",
        "--receipt",
        receipt_file.to_str().unwrap(),
    ]);
    let research = after(&out, "grant:");
    let receipt: Value = serde_json::from_slice(&std::fs::read(&receipt_file).unwrap()).unwrap();
    let member = member_id(&patient);
    assert_eq!(receipt["consentReceiptID"], research.as_str());
    assert_eq!(receipt["piiPrincipalId"], member.as_str());
    assert_eq!(receipt["sensitive"], true);
    assert_eq!(
        receipt["services"][0]["purposes"][0]["purpose"],
        "dpv:ScientificResearch"
    );

    let use_args = |to: &'static str, purpose: &'static str, cat: &'static str, grant: &str| {
        vec![
            "data-use".to_string(),
            "--key".into(),
            controller.clone(),
            "--recipient".into(),
            to.into(),
            "--purpose".into(),
            purpose.into(),
            "--category".into(),
            cat.into(),
            "--consent".into(),
            grant.to_owned(),
        ]
    };
    run(&strs(&use_args(
        "physicians",
        "dpv:ServiceProvision",
        "pd:Genetic",
        &care,
    )));
    run(&strs(&use_args(
        "research_institute",
        "dpv:ScientificResearch",
        "pd:Dietary",
        &research,
    )));
    let err = fail(&strs(&use_args(
        "pharma",
        "dpv:ScientificResearch",
        "pd:Dietary",
        &research,
    )));
    assert!(err.contains("use.recipient"), "{err}");
    let err = fail(&strs(&use_args(
        "research_institute",
        "dpv:ScientificResearch",
        "pd:Genetic",
        &research,
    )));
    assert!(err.contains("use.category"), "{err}");

    // A bundle exported before the withdrawal: later used as a stale state proof.
    let early = d.join("early.bundle.json");
    run(&[
        "consent",
        "export",
        "--member",
        &member,
        "-o",
        early.to_str().unwrap(),
    ]);

    run(&["consent", "withdraw", "--key", &patient, &research]);
    let err = fail(&strs(&use_args(
        "research_institute",
        "dpv:ScientificResearch",
        "pd:Dietary",
        &research,
    )));
    assert!(err.contains("use.withdrawn"), "{err}");
    // One human line naming the rule, never a debug dump.
    assert!(err.starts_with("refused (use.withdrawn): "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("ErrorObject"), "{err}");
    // The patient lists what they consented to with their key file alone.
    let mine = run(&["consent", "mine", "--key", &patient]);
    assert!(
        mine.contains(&format!("grant {research}")) && mine.contains(": withdrawn"),
        "{mine}"
    );
    assert!(
        mine.contains(&format!("grant {care}")) && mine.contains(": active"),
        "{mine}"
    );
    // A device key with a label: `member show --key` finds the member from it; the revoked
    // founding key is marked.
    let tablet = key(d, "tablet");
    run(&[
        "member",
        "key-add",
        "--key",
        &patient,
        "--new-key",
        &tablet,
        "--label",
        "ward tablet",
    ]);
    run(&[
        "member",
        "key-revoke",
        "--key",
        &tablet,
        "--revoke",
        &format!("@{patient}"),
    ]);
    let shown: Value = serde_json::from_str(&run(&["member", "show", "--key", &tablet])).unwrap();
    assert_eq!(shown["record"]["id"], member.as_str(), "{shown}");
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{shown}");
    assert!(keys[0]["revoked"].is_u64(), "{shown}");
    assert_eq!(keys[1]["label"], "ward tablet", "{shown}");
    assert_eq!(keys[1]["revoked"], Value::Null, "{shown}");
    let patient = tablet;
    let err = fail(&["consent", "renew", "--key", &patient, &research]);
    assert!(err.contains("consent.ended"), "{err}");
    // Physicians are still covered; the research consent shows withdrawn.
    run(&strs(&use_args(
        "physicians",
        "dpv:ServiceProvision",
        "pd:Dietary",
        &care,
    )));
    let s: Value = serde_json::from_str(&run(&[
        "consent",
        "status",
        "--member",
        &member,
        "--purpose",
        "dpv:ScientificResearch",
        "--recipient",
        "research_institute",
    ]))
    .unwrap();
    assert_eq!(s["status"], "withdrawn", "{s}");
    let t: Value =
        serde_json::from_str(&run(&["consent", "timeline", "--member", &member])).unwrap();
    let kinds: Vec<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "consent.grant",
            "consent.grant",
            "data.use",
            "data.use",
            "consent.withdraw",
            "data.use"
        ]
    );

    // The regulator bundle: exported over JSON-RPC, verified offline with the node's key only.
    let vkey = run(&["vkey"]).trim().to_owned();
    let bundle_file = d.join("patient.bundle.json");
    let out = run(&[
        "consent",
        "export",
        "--member",
        &member,
        "-o",
        bundle_file.to_str().unwrap(),
    ]);
    assert!(out.contains("6 events"), "{out}");
    let research_only = d.join("patient.research.bundle.json");
    run(&[
        "consent",
        "export",
        "--member",
        &member,
        "--purpose",
        "dpv:ScientificResearch",
        "-o",
        research_only.to_str().unwrap(),
    ]);
    // A second co-op with the same name but its own node key, for a foreign checkpoint.
    let other_data = d.join("other");
    ok(&[
        "init",
        "--data",
        other_data.to_str().unwrap(),
        "--origin",
        "health.example.coop/ledger",
        "--name",
        "Impostor",
        "--founder",
        &format!("@{board}:board"),
    ]);
    let other = Node::start(&other_data, &[]).unwrap();
    let foreign_cp: Value =
        serde_json::from_str(&ok(&["--rpc", &other.http_url(), "checkpoint"])).unwrap();
    other.terminate().unwrap();
    let out = run(&["audit", "--vkey", &vkey]);
    assert!(out.starts_with("AUDIT PASSED"), "{out}");
    // The impostor's key does not pass the audit of this node.
    let impostor_vkey = ok(&["--rpc", &rpc, "vkey"])
        .trim()
        .replace(vkey.split('+').nth(1).unwrap(), "00000000");
    let (code, out, _) = coop(&["--rpc", &rpc, "audit", "--vkey", &impostor_vkey]).unwrap();
    assert_ne!(code, 0, "{out}");
    node.terminate().unwrap(); // offline from here on

    let verify =
        |file: &Path| coop(&["verify-bundle", file.to_str().unwrap(), "--vkey", &vkey]).unwrap();
    let (code, out, err) = verify(&bundle_file);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("VALID: the complete consent history of"),
        "{out}"
    );
    assert!(out.contains("consent.withdraw"), "{out}");
    assert!(out.contains("withdrawn now"), "{out}");
    assert!(out.contains("3 data use(s), every one covered"), "{out}");
    // Filtered by purpose: the care grant appears by its grant entry only.
    let (code, out, _) = verify(&research_only);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 data use(s)"), "{out}");
    let filtered: Value = serde_json::from_slice(&std::fs::read(&research_only).unwrap()).unwrap();
    assert_eq!(
        filtered["entries"].as_array().unwrap().len(),
        4,
        "2 grants, 1 use, 1 withdrawal"
    );
    let (code, out, _) = verify(&early);
    assert_eq!(
        code, 0,
        "an older bundle stays valid for its own checkpoint: {out}"
    );

    let original: Value = serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    // A co-op made by `coop init` keeps the timeline as a hash chain: the proved value is its
    // small head and the events come beside it.
    let head: Value = serde_json::from_slice(
        &b64_decode(original["timeline"]["value"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let events = original["timelineEvents"].as_array().unwrap();
    assert_eq!(
        head["length"].as_u64().unwrap(),
        events.len() as u64,
        "{head}"
    );
    assert!(events.iter().any(|e| e["event"] == "consent.withdraw"));
    let old: Value = serde_json::from_slice(&std::fs::read(&early).unwrap()).unwrap();
    let old_timeline = old["timeline"].clone();
    let entry_type = |e: &Value| -> String {
        let bytes = b64_decode(e["entry"].as_str().unwrap()).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["body"]["type"].as_str().unwrap().to_owned()
    };
    type Tamper = Box<dyn Fn(&mut Value)>;
    let foreign_note = foreign_cp["note"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "the withdrawal entry removed",
            Box::new(move |b| {
                let list = b["entries"].as_array_mut().unwrap();
                list.retain(|e| entry_type(e) != "consent.withdraw");
            }),
            "missing from the bundle",
        ),
        (
            "the withdrawal removed from the timeline's events as well",
            Box::new(|b| {
                b["timelineEvents"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|e| e["event"] != "consent.withdraw");
            }),
            "the proved head counts",
        ),
        (
            "the withdrawal removed from the events and the head's count lowered",
            Box::new(|b| {
                b["timelineEvents"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|e| e["event"] != "consent.withdraw");
                let raw = b64_decode(b["timeline"]["value"].as_str().unwrap()).unwrap();
                let mut head: Value = serde_json::from_slice(&raw).unwrap();
                head["length"] = json!(head["length"].as_u64().unwrap() - 1);
                b["timeline"]["value"] = json!(b64_encode(serde_json::to_vec(&head).unwrap()));
            }),
            "timeline",
        ),
        (
            "the withdrawal's event moved one millisecond later",
            Box::new(|b| {
                for e in b["timelineEvents"].as_array_mut().unwrap() {
                    if e["event"] == "consent.withdraw" {
                        e["ms"] = json!(e["ms"].as_u64().unwrap() + 1);
                    }
                }
            }),
            "does not end on the proved head",
        ),
        (
            "the timeline's events left out",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("timelineEvents");
            }),
            "timelineEvents",
        ),
        (
            "one byte of an entry changed",
            Box::new(|b| {
                let mut raw = b64_decode(b["entries"][1]["entry"].as_str().unwrap()).unwrap();
                raw[40] ^= 1;
                b["entries"][1]["entry"] = json!(b64_encode(raw));
            }),
            "entries[1]",
        ),
        (
            "a checkpoint from another log",
            Box::new(move |b| b["checkpoint"] = json!(foreign_note.clone())),
            "checkpoint",
        ),
        (
            "a stale state proof (before the withdrawal)",
            Box::new(move |b| {
                b["stateEntry"] = old["stateEntry"].clone();
                b["timeline"] = old["timeline"].clone();
            }),
            "stale",
        ),
        (
            "the timeline's proof from the older state, under the newer root",
            Box::new(move |b| b["timeline"] = old_timeline.clone()),
            "timeline",
        ),
        (
            "the history claims the research consent is still active",
            Box::new(|b| {
                for l in b["history"].as_array_mut().unwrap() {
                    if l["status"] == "withdrawn" {
                        l["status"] = json!("active");
                    }
                }
            }),
            "history",
        ),
    ];
    for (what, f, expect) in cases {
        let mut b = original.clone();
        f(&mut b);
        let p = d.join("tampered.json");
        std::fs::write(&p, b.to_string()).unwrap();
        let (code, out, err) = verify(&p);
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(out.starts_with("INVALID"), "{what}: {out}");
        assert!(out.contains(expect), "{what}: expected {expect:?} in {out}");
    }
}
