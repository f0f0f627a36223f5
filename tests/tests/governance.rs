//! End-to-end governance against a real node, driven only through the `coop` CLI as members
//! would: a multi-stakeholder co-op (drivers 60%, riders 40%) admits a member, elects a board
//! member by ranked choice, and runs a bylaws amendment that fails quorum and then passes;
//! `coop tally verify` recounts each tally offline and agrees with the node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, key, member_id, ok, refused, ride_hail_bylaws, tally_when_closed};
use coopledger_e2e::Node;
use coopledger_governance::bylaws::Bylaws;
use serde_json::Value;

fn bylaws(version: u64, amendment_quorum_ppm: u32) -> Bylaws {
    let mut b = ride_hail_bylaws();
    b.version = version;
    if let Some(d) = b
        .decisions
        .get_mut(&coopledger_governance::bylaws::DecisionKind::BylawsAmendment)
    {
        d.quorum.minimum = coopledger_governance::tally::Ratio::Ppm(amendment_quorum_ppm);
    }
    b
}

#[test]
fn a_multi_stakeholder_coop_admits_elects_and_amends_its_bylaws_and_members_can_recount() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let bylaws_file = d.join("bylaws.json");
    std::fs::write(
        &bylaws_file,
        serde_json::to_string(&bylaws(1, 750_000)).unwrap(),
    )
    .unwrap();
    let board = key(d, "board");
    let driver = key(d, "driver");
    let rider = key(d, "rider");
    let applicant = key(d, "applicant");
    ok(&[
        "init",
        "--data",
        data.to_str().unwrap(),
        "--origin",
        "rides.example.coop/ledger",
        "--name",
        "Ride-hail Data Co-op",
        "--bylaws",
        bylaws_file.to_str().unwrap(),
        "--founder",
        &format!("@{board}:board,class=drivers"),
        "--founder",
        &format!("@{driver}:class=drivers"),
        "--founder",
        &format!("@{rider}:class=riders"),
    ]);
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let r = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["--rpc".to_string(), rpc.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: &[&str]| ok(&r(args).iter().map(String::as_str).collect::<Vec<_>>());
    let fail = |args: &[&str]| refused(&r(args).iter().map(String::as_str).collect::<Vec<_>>());

    // An election created before the admission: the newcomer is not in its electorate.
    let out = run(&[
        "proposal",
        "create",
        "--key",
        &board,
        "--kind",
        "board_election",
        "--title",
        "Board seat 2027",
        "--method",
        "ranked_choice",
        "--choice",
        &member_id(&driver),
        "--choice",
        &member_id(&rider),
        "--duration",
        "6",
    ]);
    let election = after(&out, "proposal:");

    // Admission: application signed by the applicant's new key, decision, board admits.
    let out = run(&[
        "member",
        "apply",
        "--key",
        &applicant,
        "--class",
        "riders",
        "--details",
        "Rider since 2024, contact in the member register",
    ]);
    let application = after(&out, "application:");
    let err = fail(&["vote", "--key", &applicant, &election, "--choices", "1,0"]);
    assert!(err.contains("not known to the co-op"), "{err}");
    let out = run(&[
        "proposal",
        "create",
        "--key",
        &driver,
        "--kind",
        "admission",
        "--title",
        "Admit a rider",
        "--application",
        &application,
        "--duration",
        "2",
    ]);
    let admission = after(&out, "proposal:");
    for k in [&board, &driver, &rider] {
        run(&["vote", "--key", k, &admission, "yes"]);
    }
    let t = tally_when_closed(&rpc, &admission);
    assert_eq!(t["outcome"], "adopted");
    run(&[
        "member",
        "admit",
        "--key",
        &board,
        "--application",
        &application,
        "--decision",
        &admission,
    ]);
    let newcomer = member_id(&applicant);
    let m: Value = serde_json::from_str(&run(&["member", "show", &newcomer])).unwrap();
    assert_eq!(m["record"]["class"], "riders");
    assert_eq!(m["record"]["status"], "active");

    // The newcomer may not vote in the election frozen before their admission.
    let err = fail(&["vote", "--key", &applicant, &election, "--choices", "1,0"]);
    assert!(err.contains("vote.electorate"), "{err}");
    // Ranked choice: two drivers prefer the rider, the rider prefers the driver.
    run(&["vote", "--key", &board, &election, "--choices", "1,0"]);
    run(&["vote", "--key", &driver, &election, "--choices", "1"]);
    run(&["vote", "--key", &rider, &election, "--choices", "0,1"]);
    let t = tally_when_closed(&rpc, &election);
    assert_eq!(t["outcome"], "adopted");
    assert_eq!(t["winner"], 1);
    // Round 1: the rider has 0.6 of the weight (two drivers' first preferences) — elected.
    let rounds = t["result"]["rankedChoice"]["rounds"].as_array().unwrap();
    assert_eq!(rounds[0]["totals"]["1"], "3/5");
    assert_eq!(rounds[0]["elected"], 1);
    let out = run(&["tally", "verify", &election]);
    assert!(out.contains("AGREES"), "{out}");
    assert!(
        out.contains(&format!("winner {}", member_id(&rider))),
        "{out}"
    );
    let m: Value = serde_json::from_str(&run(&["member", "show", &member_id(&rider)])).unwrap();
    assert_eq!(m["record"]["roles"], serde_json::json!(["board"]));

    // Members at the index before the admission: three founders.
    let before: Value = serde_json::from_str(&run(&["member", "list", "--at", "0"])).unwrap();
    assert_eq!(before.as_array().unwrap().len(), 3);

    // A bylaws amendment needing 75% participation: one of four votes — no quorum.
    let v2 = d.join("bylaws-v2.json");
    std::fs::write(&v2, serde_json::to_string(&bylaws(2, 500_000)).unwrap()).unwrap();
    let amend = |who: &str| {
        after(
            &run(&[
                "proposal",
                "create",
                "--key",
                who,
                "--kind",
                "bylaws_amendment",
                "--title",
                "Lower the amendment quorum to 50%",
                "--bylaws",
                v2.to_str().unwrap(),
                "--duration",
                "2",
            ]),
            "proposal:",
        )
    };
    let first = amend(&board);
    run(&["vote", "--key", &board, &first, "yes"]);
    let t = tally_when_closed(&rpc, &first);
    assert_eq!(t["outcome"], "no_quorum");
    assert_eq!(t["quorumMet"], false);
    let out = run(&["tally", "verify", &first]);
    assert!(out.contains("AGREES"), "{out}");
    let b: Value = serde_json::from_str(&run(&["bylaws"])).unwrap();
    assert_eq!(b["version"], 1);

    // Again, with three of four taking part and a two-thirds majority: adopted.
    let second = amend(&driver);
    run(&["vote", "--key", &board, &second, "yes"]);
    run(&["vote", "--key", &driver, &second, "yes"]);
    run(&["vote", "--key", &applicant, &second, "no"]);
    let t = tally_when_closed(&rpc, &second);
    assert_eq!(t["outcome"], "adopted", "{t}");
    let out = run(&["tally", "verify", &second]);
    assert!(out.contains("AGREES"), "{out}");
    let b: Value = serde_json::from_str(&run(&["bylaws"])).unwrap();
    assert_eq!(b["version"], 2);
    // After the close, votes are refused and name the rule.
    let err = fail(&["vote", "--key", &rider, &second, "yes"]);
    assert!(err.contains("proposal.closed"), "{err}");
    node.terminate().unwrap();
}
