//! End-to-end data revenue over a real node, driven through the `coop` CLI: a ride-hail drivers'
//! co-op sells insights to a city transport agency. Two of three drivers consent; the data uses
//! carry only their data; the treasurer records the revenue and an expense; no distribution can
//! be made until the members adopt an allocation policy by vote; then the treasurer records the
//! distribution the log implies — only consenting drivers share, by contribution, to the cent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, init_quick_vote_coop, key, member_id, ok, refused, tally_when_closed};
use coopledger_e2e::Node;
use serde_json::{json, Value};

const SELL: &str = "dpv:SellInsightsFromData";

/// The hex entry id in a `… accepted at index N (entry id ID)` line.
fn entry_id(out: &str) -> String {
    out.split("(entry id ")
        .nth(1)
        .unwrap_or_else(|| panic!("no entry id in {out}"))
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

#[test]
fn only_consenting_drivers_share_the_city_revenue_by_contribution_under_the_adopted_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let (board, treasurer, controller) =
        (key(d, "board"), key(d, "treasurer"), key(d, "controller"));
    let drivers: Vec<String> = (1..=3).map(|i| key(d, &format!("driver{i}"))).collect();
    let mut founders = vec![format!("@{board}:board"), format!("@{treasurer}:treasurer")];
    founders.extend(drivers.iter().map(|k| format!("@{k}")));
    init_quick_vote_coop(
        &data,
        "drivers.example.coop/ledger",
        "Drivers' Data Co-op",
        &founders,
    );
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
        "drivers_coop",
        "--kind",
        "controller",
        "--name",
        "Drivers' Data Co-op",
        "--party-key",
        &format!("@{controller}"),
    ]);
    run(&[
        "party-register",
        "--key",
        &board,
        "--party",
        "city_transport",
        "--kind",
        "recipient",
        "--name",
        "City Transport Agency",
    ]);
    let notice = d.join("notice.json");
    std::fs::write(d.join("notice.txt"), "We sell aggregated trip insights ...").unwrap();
    std::fs::write(
        &notice,
        serde_json::to_vec(&json!({
            "notice": "trips", "version": 1, "controller": "drivers_coop",
            "purposes": [SELL], "dataCategories": ["pd:Location"],
            "operations": ["dpv:Aggregate", "dpv:Share"], "recipients": ["city_transport"],
            "retentionMs": 31_536_000_000u64, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
            "textFile": "notice.txt", "language": "en", "specialCategory": false,
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
    // Drivers 1 and 2 consent; driver 3 does not.
    let grants: Vec<String> = drivers[..2]
        .iter()
        .map(|k| {
            let out = run(&[
                "consent",
                "grant",
                "--key",
                k,
                "--notice",
                "trips",
                "--purpose",
                SELL,
                "--recipient",
                "city_transport",
                "--category",
                "pd:Location",
            ]);
            after(&out, "grant:")
        })
        .collect();
    let use_of = |consents: &[&String]| {
        let mut a = vec![
            "data-use",
            "--key",
            &controller,
            "--kind",
            "sale",
            "--recipient",
            "city_transport",
            "--purpose",
            SELL,
            "--category",
            "pd:Location",
        ];
        for g in consents {
            a.push("--consent");
            a.push(g);
        }
        entry_id(&run(&a))
    };
    let u1 = use_of(&[&grants[0], &grants[1]]);
    let u2 = use_of(&[&grants[0]]);

    let evidence = d.join("invoice.pdf");
    std::fs::write(&evidence, b"%PDF invoice 2026-Q3 city transport").unwrap();
    run(&[
        "revenue",
        "record",
        "--key",
        &treasurer,
        "--payer",
        "city_transport",
        "--amount",
        "90001",
        "--currency",
        "EUR",
        "--period",
        "2026-q3",
        "--evidence",
        evidence.to_str().unwrap(),
        "--purpose",
        SELL,
        "--use",
        &u1,
        "--use",
        &u2,
    ]);
    run(&[
        "revenue",
        "expense",
        "--key",
        &treasurer,
        "--payee",
        "Anonymisation service",
        "--amount",
        "1",
        "--currency",
        "EUR",
        "--period",
        "2026-q3",
        "--evidence",
        evidence.to_str().unwrap(),
    ]);
    // No policy adopted yet: nothing can be distributed.
    let err = fail(&[
        "revenue",
        "preview",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]);
    assert!(err.contains("policy.none"), "{err}");

    let policy = d.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(&json!({"reservePpm": 100_000, "communityPpm": 100_000,
            "poolPpm": 800_000, "split": "contribution", "minPayout": 100,
            "unclaimed": "community_fund", "claimDays": 90, "communityFund": "patients_fund"}))
        .unwrap(),
    )
    .unwrap();
    let out = run(&[
        "proposal",
        "create",
        "--key",
        &board,
        "--kind",
        "distribution_approval",
        "--title",
        "Data revenue policy 2026",
        "--policy",
        policy.to_str().unwrap(),
        "--duration",
        "2",
    ]);
    let proposal = after(&out, "proposal:");
    for k in std::iter::once(&board)
        .chain(std::iter::once(&treasurer))
        .chain(&drivers)
    {
        run(&["vote", "--key", k, &proposal, "yes"]);
    }
    let t = tally_when_closed(&rpc, &proposal);
    assert_eq!(t["outcome"], "adopted", "{t}");
    let p: Value = serde_json::from_str(&run(&["revenue", "policy"])).unwrap();
    assert_eq!(p["proposal"], proposal.as_str());

    let preview: Value = serde_json::from_str(&run(&[
        "revenue",
        "preview",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]))
    .unwrap();
    // The treasurer records it from the portal's page: the preview shown there is what they
    // sign (revenue.distribute), then the recorded distribution is shown in English and French;
    // they pay driver 1's line and record driver 2's payment as failed, and the page's
    // reconciliation is checked below against the CLI's.
    let by_preview = |b: u64| {
        preview["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["basis"] == b)
            .unwrap()["member"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (m1, m2) = (by_preview(2), by_preview(1));
    let work = d.join("portal");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("url"), &rpc).unwrap();
    std::fs::write(work.join("period"), "2026-q3").unwrap();
    std::fs::write(work.join("currency"), "EUR").unwrap();
    std::fs::copy(&treasurer, work.join("treasurer.key")).unwrap();
    std::fs::write(work.join("pay"), &m1).unwrap();
    std::fs::write(work.join("fail"), &m2).unwrap();
    let page = common::drive("treasurer.mjs", &work);
    common::keep_shots(&work);
    assert_eq!(page["errors"], json!([]), "{page}");
    assert_eq!(page["missing"], json!([]), "every message is translated");
    assert_eq!(
        page["previewHeading"],
        "Preview: the distribution the ledger implies"
    );
    assert_eq!(page["previewNet"], preview["net"]);
    assert!(
        page["distributeReceipt"]
            .as_str()
            .unwrap()
            .starts_with("Your entry is number "),
        "{page}"
    );
    let dist: Value = serde_json::from_str(&run(&[
        "revenue",
        "show",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]))
    .unwrap();
    assert_eq!(dist, preview);
    // 72,000 by contribution 2 : 1 = 48,000 and 24,000; driver 3 never consented: no line.
    let (m1, m2, m3) = (
        member_id(&drivers[0]),
        member_id(&drivers[1]),
        member_id(&drivers[2]),
    );
    let lines: Vec<(String, u64, u64)> = dist["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["member"].as_str().unwrap().to_owned(),
                l["basis"].as_u64().unwrap(),
                l["amount"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = vec![(m1, 2, 48_000), (m2, 1, 24_000)];
    want.sort();
    assert_eq!(lines, want);
    assert!(!lines.iter().any(|l| l.0 == m3));
    // The treasurer's page showed the same distribution, to the cent, in English and French.
    for lang in ["en", "fr"] {
        let p = &page[lang];
        for field in ["net", "reserve", "community", "pool", "unshared"] {
            assert_eq!(p[field], dist[field], "{lang} {field}: {p}");
        }
        let shown: Vec<(String, u64)> = p["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["member"].as_str().unwrap().to_owned(),
                    l["amount"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut wanted: Vec<(String, u64)> = want.iter().map(|l| (l.0.clone(), l.2)).collect();
        wanted.sort();
        let mut shown_sorted = shown.clone();
        shown_sorted.sort();
        assert_eq!(shown_sorted, wanted, "{lang}");
        assert_eq!(p["csv"], true);
    }
    assert_eq!(page["en"]["heading"], "Recorded distribution");
    assert_eq!(page["en"]["netText"], "€900.00");
    assert_eq!(page["fr"]["netText"], "900,00\u{a0}€");
    // The page paid the lines: whole lines only, once; a failed attempt is recorded.
    // Driver 1 (basis 2) and driver 2 (basis 1), whatever their ids' order.
    let by_basis = |b: u64| &want.iter().find(|l| l.1 == b).unwrap().0;
    let (m1, m2) = (by_basis(2), by_basis(1));
    let err = fail(&[
        "revenue",
        "pay",
        "--key",
        &treasurer,
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
        "--member",
        m1,
        "--reference",
        "SEPA-0003",
    ]);
    assert!(err.contains("payment.twice"), "{err}");
    let st: Value = serde_json::from_str(&run(&[
        "revenue",
        "settlement",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]))
    .unwrap();
    assert_eq!(st["payments"][m1.as_str()]["status"], "paid", "{st}");
    assert_eq!(st["payments"][m2.as_str()]["status"], "failed", "{st}");
    // The claim period (90 days) is still running.
    let err = fail(&[
        "revenue",
        "unclaimed",
        "--key",
        &treasurer,
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]);
    assert!(err.contains("payment.claim_open"), "{err}");
    // Each driver's statement, and the treasurer's reconciliation, verify offline.
    let vkey = run(&["vkey"]).trim().to_owned();
    let statement = d.join("statement.json");
    let out = run(&[
        "revenue",
        "statement",
        "--member",
        m1,
        "-o",
        statement.to_str().unwrap(),
    ]);
    assert!(out.contains("(1 distribution(s))"), "{out}");
    assert!(
        out.contains("your line: 48000 EUR (basis 2 of 3), paid"),
        "{out}"
    );
    // The same driver's own page: the statement's line, paid, VALID in the browser; their
    // personal data recorded, changed and erased from the page.
    let m1_key = drivers.iter().find(|k| &member_id(k) == m1).unwrap();
    std::fs::copy(m1_key, work.join("member.key")).unwrap();
    std::fs::write(work.join("member.id"), m1).unwrap();
    let mine = common::drive("statement.mjs", &work);
    common::keep_shots(&work);
    assert_eq!(mine["errors"], json!([]), "{mine}");
    assert_eq!(mine["missing"], json!([]), "every message is translated");
    assert_eq!(mine["statementAmount"], "€480.00");
    assert!(
        mine["statementPaid"]
            .as_str()
            .unwrap()
            .starts_with("paid (entry "),
        "{mine}"
    );
    assert!(
        mine["statementVerdict"]
            .as_str()
            .unwrap()
            .starts_with("VALID"),
        "{mine}"
    );
    assert_eq!(mine["download"], true);
    assert!(mine["before"]
        .as_str()
        .unwrap()
        .starts_with("The co-op holds no personal data"));
    assert!(
        mine["saved"].as_str().unwrap().starts_with("Saved"),
        "{mine}"
    );
    assert!(mine["saveReceipt"]
        .as_str()
        .unwrap()
        .starts_with("Your entry is number "));
    assert_eq!(
        mine["readBack"],
        json!([["city", "Montréal"], ["name", "Ada Lovelace"]])
    );
    assert_eq!(
        mine["changed"],
        json!([["city", "Québec"], ["name", "Ada Lovelace"]])
    );
    assert_eq!(mine["eraseArmedByOther"], false);
    assert!(
        mine["erased"]
            .as_str()
            .unwrap()
            .starts_with("Erased: your data and its key are in no file of the node."),
        "{mine}"
    );
    assert!(mine["after"]
        .as_str()
        .unwrap()
        .starts_with("The co-op holds no personal data"));
    let csv = run(&[
        "revenue",
        "reconcile",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
        "--format",
        "csv",
    ]);
    assert!(
        csv.starts_with("member,basis,amount,paid,difference,state"),
        "{csv}"
    );
    assert!(csv.contains(&format!("{m1},2,48000,48000,0,paid")), "{csv}");
    assert!(
        csv.contains(&format!("{m2},1,24000,0,24000,failed")),
        "{csv}"
    );
    let rec: Value = serde_json::from_str(&run(&[
        "revenue",
        "reconcile",
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        (rec["gross"].as_u64(), rec["net"].as_u64()),
        (Some(90_001), Some(90_000))
    );
    // The page's reconciliation (its own signatures' result, checked in the browser from the
    // revenue bundle) is the CLI's, line for line, to the minor unit.
    let shown = page["reconciled"].as_array().unwrap();
    let lines = rec["lines"].as_array().unwrap();
    assert_eq!(shown.len(), lines.len(), "{page}");
    for l in lines {
        let row = shown
            .iter()
            .find(|r| r["member"] == l["member"])
            .unwrap_or_else(|| panic!("{l} not on the page"));
        assert_eq!(
            (&row["due"], &row["paid"], &row["difference"], &row["state"]),
            (&l["amount"], &l["paid"], &l["difference"], &l["state"]),
            "{row} {l}"
        );
    }
    assert_eq!(
        page["recTotal"],
        json!({"due": 72_000, "paid": 48_000, "difference": 24_000})
    );
    assert_eq!(page["recCsv"], true);
    let reconciliation = d.join("reconcile.json");
    let table = run(&[
        "revenue",
        "reconcile",
        "--period",
        "2026-q3",
        "-o",
        reconciliation.to_str().unwrap(),
    ]);
    assert!(table.contains("reconciliation 2026-q3 EUR"), "{table}");
    assert!(table.contains("total"), "{table}");
    // A period is distributed once.
    let err = fail(&[
        "revenue",
        "distribute",
        "--key",
        &treasurer,
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]);
    assert!(err.contains("revenue.closed"), "{err}");
    let out = run(&["audit", "--vkey", &vkey]);
    assert!(out.starts_with("AUDIT PASSED"), "{out}");
    node.terminate().unwrap(); // offline from here on

    let verify = |f: &std::path::Path| {
        coopledger_e2e::coop(&["verify-bundle", f.to_str().unwrap(), "--vkey", &vkey]).unwrap()
    };
    let (code, out, err) = verify(&statement);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("VALID: the statement of"), "{out}");
    assert!(out.contains("your line: 48000 EUR"), "{out}");
    let (code, out, _) = verify(&reconciliation);
    assert_eq!(code, 0, "{out}");
    // Tampering: a line moved between drivers (the state proof fails), or the policy's vote
    // swapped for another entry.
    let original: Value = serde_json::from_slice(&std::fs::read(&reconciliation).unwrap()).unwrap();
    let tampered = d.join("tampered.json");
    let mut b = original.clone();
    let raw =
        coopledger_ledger::codec::b64_decode(b["distribution"]["value"].as_str().unwrap()).unwrap();
    let mut dv: Value = serde_json::from_slice(&raw).unwrap();
    let a0 = dv["lines"][0]["amount"].as_u64().unwrap();
    let a1 = dv["lines"][1]["amount"].as_u64().unwrap();
    dv["lines"][0]["amount"] = json!(a0 - 1);
    dv["lines"][1]["amount"] = json!(a1 + 1);
    b["distribution"]["value"] = json!(coopledger_ledger::codec::b64_encode(
        serde_json::to_vec(&dv).unwrap()
    ));
    std::fs::write(&tampered, b.to_string()).unwrap();
    let (code, out, _) = verify(&tampered);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INVALID: field `distribution`"), "{out}");
    let mut b = original.clone();
    b["policyTally"] = b["stateEntry"].clone();
    std::fs::write(&tampered, b.to_string()).unwrap();
    let (code, out, _) = verify(&tampered);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policyTally"), "{out}");
}

/// A health co-op whose members voted to send all data revenue to a community research fund:
/// the research institute pays for a consented use, and the whole net goes to the fund.
#[test]
fn a_health_coop_policy_sends_all_data_revenue_to_the_community_research_fund() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let (board, treasurer, controller, patient) = (
        key(d, "board"),
        key(d, "treasurer"),
        key(d, "controller"),
        key(d, "patient"),
    );
    init_quick_vote_coop(
        &data,
        "health.example.coop/ledger",
        "Patients' Data Co-op",
        &[
            format!("@{board}:board"),
            format!("@{treasurer}:treasurer"),
            format!("@{patient}"),
        ],
    );
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let run = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        ok(&v)
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
    run(&[
        "party-register",
        "--key",
        &board,
        "--party",
        "research_institute",
        "--kind",
        "recipient",
        "--name",
        "Nutrition Research Institute",
    ]);
    std::fs::write(d.join("notice.txt"), "Research use of your records ...").unwrap();
    let notice = d.join("notice.json");
    std::fs::write(
        &notice,
        serde_json::to_vec(&json!({
            "notice": "research", "version": 1, "controller": "health_coop",
            "purposes": ["dpv:ScientificResearch"], "dataCategories": ["pd:MedicalHealth"],
            "operations": ["dpv:Share"], "recipients": ["research_institute"],
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
    let grant = after(
        &run(&[
            "consent",
            "grant",
            "--key",
            &patient,
            "--notice",
            "research",
            "--purpose",
            "dpv:ScientificResearch",
            "--recipient",
            "research_institute",
            "--category",
            "pd:MedicalHealth",
        ]),
        "grant:",
    );
    let used = entry_id(&run(&[
        "data-use",
        "--key",
        &controller,
        "--kind",
        "sale",
        "--recipient",
        "research_institute",
        "--purpose",
        "dpv:ScientificResearch",
        "--category",
        "pd:MedicalHealth",
        "--consent",
        &grant,
    ]));
    let evidence = d.join("contract.pdf");
    std::fs::write(&evidence, b"research data agreement").unwrap();
    run(&[
        "revenue",
        "record",
        "--key",
        &treasurer,
        "--payer",
        "research_institute",
        "--amount",
        "250000",
        "--currency",
        "EUR",
        "--period",
        "2026",
        "--evidence",
        evidence.to_str().unwrap(),
        "--purpose",
        "dpv:ScientificResearch",
        "--use",
        &used,
    ]);
    let policy = d.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(
            &json!({"reservePpm": 0, "communityPpm": 1_000_000, "poolPpm": 0,
            "split": "equal", "minPayout": 0, "unclaimed": "community_fund", "claimDays": 30,
            "communityFund": "research_fund"}),
        )
        .unwrap(),
    )
    .unwrap();
    let proposal = after(
        &run(&[
            "proposal",
            "create",
            "--key",
            &board,
            "--kind",
            "distribution_approval",
            "--title",
            "All data revenue to the community research fund",
            "--policy",
            policy.to_str().unwrap(),
            "--duration",
            "2",
        ]),
        "proposal:",
    );
    for k in [&board, &treasurer, &patient] {
        run(&["vote", "--key", k, &proposal, "yes"]);
    }
    assert_eq!(tally_when_closed(&rpc, &proposal)["outcome"], "adopted");
    let out = run(&[
        "revenue",
        "distribute",
        "--key",
        &treasurer,
        "--period",
        "2026",
        "--currency",
        "EUR",
    ]);
    assert!(
        out.contains(
            "net 250000 EUR = reserve 0 + community 250000 (to research_fund) + pool 0 over 0 \
             member line(s)"
        ),
        "{out}"
    );
    let csv = run(&[
        "revenue",
        "reconcile",
        "--period",
        "2026",
        "--currency",
        "EUR",
        "--format",
        "csv",
    ]);
    // The pool is empty: nobody has a line, not even a zero one; the fund is named.
    assert_eq!(csv.trim_end().lines().count(), 1, "{csv}");
    assert!(out.contains("research_fund"), "{out}");
    node.terminate().unwrap();
}
