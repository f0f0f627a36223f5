//! End-to-end consent over a real node, driven through the `coop` CLI: a health-data co-op
//! registers its controller and recipients, publishes a notice; a patient grants physicians all
//! data and a research institute only medical and dietary data, and nothing to a pharmaceutical
//! company; a research use is accepted, the pharma use and an out-of-scope category are refused
//! by rule name; the patient withdraws and a later use is refused; status and timeline show it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, key, member_id, ok, refused};
use coopledger_e2e::Node;
use serde_json::{json, Value};

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
    run(&[
        "notice-publish",
        "--key",
        &controller,
        notice.to_str().unwrap(),
    ]);

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

    run(&["consent", "withdraw", "--key", &patient, &research]);
    let err = fail(&strs(&use_args(
        "research_institute",
        "dpv:ScientificResearch",
        "pd:Dietary",
        &research,
    )));
    assert!(err.contains("use.withdrawn"), "{err}");
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
    node.terminate().unwrap();
}
