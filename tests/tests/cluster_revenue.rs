//! A distribution that straddles a failover (issue 17, `docs/replication.md` §8 test 4): a
//! drivers' co-op on three replicas records the city's payment for data a consenting driver
//! shared and adopts its allocation policy by vote, all through a follower; the leader is
//! killed with SIGKILL; the treasurer distributes on the new leader. The distribution recorded
//! is exactly the preview computed before the failover, line for line to the cent, every
//! replica shows the same, a second distribution is refused `revenue.closed`, and every replica
//! audits clean.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, init_quick_vote_coop, key, ok, refused, tally_when_closed};
use coopledger_e2e::cluster::{caught_up_with, leader, three};
use serde_json::{json, Value};

const SELL: &str = "dpv:SellInsightsFromData";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_on_the_new_leader_is_the_preview_made_before_the_failover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("r1");
    let (board, treasurer, controller) =
        (key(d, "board"), key(d, "treasurer"), key(d, "controller"));
    let drivers: Vec<String> = (1..=2).map(|i| key(d, &format!("driver{i}"))).collect();
    let mut founders = vec![format!("@{board}:board"), format!("@{treasurer}:treasurer")];
    founders.extend(drivers.iter().map(|k| format!("@{k}")));
    init_quick_vote_coop(
        &data,
        "drivers.example.coop/ledger",
        "Drivers' Data Co-op",
        &founders,
    );
    let mut replicas = three(d).await.unwrap();
    let (old_leader, _) = leader(&replicas).await.unwrap();
    let follower = replicas.iter().find(|r| r.id != old_leader).unwrap().url();
    let on = |rpc: &str, args: &[&str]| {
        let mut v = vec!["--rpc", rpc];
        v.extend_from_slice(args);
        ok(&v)
    };
    for (party, kind, name) in [
        ("drivers_coop", "controller", "Drivers' Data Co-op"),
        ("city_transport", "recipient", "City Transport Agency"),
    ] {
        let mut args = vec![
            "party-register",
            "--key",
            &board,
            "--party",
            party,
            "--kind",
            kind,
            "--name",
            name,
        ];
        let controller_key = format!("@{controller}");
        if kind == "controller" {
            args.extend(["--party-key", &controller_key]);
        }
        on(&follower, &args);
    }
    std::fs::write(d.join("notice.txt"), "We sell aggregated trip insights.").unwrap();
    let notice = d.join("notice.json");
    std::fs::write(
        &notice,
        serde_json::to_vec(&json!({
            "notice": "trips", "version": 1, "controller": "drivers_coop",
            "purposes": [SELL], "dataCategories": ["pd:Location"],
            "operations": ["dpv:Share"], "recipients": ["city_transport"],
            "retentionMs": 31_536_000_000u64, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
            "textFile": "notice.txt", "language": "en", "specialCategory": false,
        }))
        .unwrap(),
    )
    .unwrap();
    on(
        &follower,
        &[
            "notice-publish",
            "--key",
            &controller,
            notice.to_str().unwrap(),
        ],
    );
    // Driver 1 consents; driver 2 does not.
    let grant = after(
        &on(
            &follower,
            &[
                "consent",
                "grant",
                "--key",
                &drivers[0],
                "--notice",
                "trips",
                "--purpose",
                SELL,
                "--recipient",
                "city_transport",
                "--category",
                "pd:Location",
            ],
        ),
        "grant:",
    );
    let out = on(
        &follower,
        &[
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
            "--consent",
            &grant,
        ],
    );
    let use_id: String = out
        .split("(entry id ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let evidence = d.join("invoice.pdf");
    std::fs::write(&evidence, b"%PDF invoice 2026-Q3").unwrap();
    on(
        &follower,
        &[
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
            &use_id,
        ],
    );
    let policy = d.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(&json!({"reservePpm": 100_000, "communityPpm": 100_000,
            "poolPpm": 800_000, "split": "contribution", "minPayout": 100,
            "unclaimed": "community_fund", "claimDays": 90, "communityFund": "drivers_fund"}))
        .unwrap(),
    )
    .unwrap();
    let proposal = after(
        &on(
            &follower,
            &[
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
            ],
        ),
        "proposal:",
    );
    for k in [&board, &treasurer, &drivers[0], &drivers[1]] {
        on(&follower, &["vote", "--key", k, &proposal, "yes"]);
    }
    assert_eq!(
        tally_when_closed(&follower, &proposal)["outcome"],
        "adopted"
    );
    let preview: Value = serde_json::from_str(&on(
        &follower,
        &[
            "revenue",
            "preview",
            "--period",
            "2026-q3",
            "--currency",
            "EUR",
        ],
    ))
    .unwrap();

    // The leader dies; the treasurer distributes on the new one.
    replicas
        .iter_mut()
        .find(|r| r.id == old_leader)
        .unwrap()
        .kill9()
        .unwrap();
    let (new_leader, new_url) = leader(&replicas).await.unwrap();
    assert_ne!(new_leader, old_leader);
    on(
        &new_url,
        &[
            "revenue",
            "distribute",
            "--key",
            &treasurer,
            "--period",
            "2026-q3",
            "--currency",
            "EUR",
        ],
    );
    let mut again = vec!["--rpc", new_url.as_str()];
    again.extend([
        "revenue",
        "distribute",
        "--key",
        &treasurer,
        "--period",
        "2026-q3",
        "--currency",
        "EUR",
    ]);
    assert!(refused(&again).contains("revenue.closed"));
    caught_up_with(&replicas, &new_url).await.unwrap();
    let vkey = on(&new_url, &["vkey"]).trim().to_owned();
    for r in replicas.iter().filter(|r| r.node.is_some()) {
        let shown: Value = serde_json::from_str(&on(
            &r.url(),
            &[
                "revenue",
                "show",
                "--period",
                "2026-q3",
                "--currency",
                "EUR",
            ],
        ))
        .unwrap();
        assert_eq!(shown, preview, "replica {}", r.id);
        let out = on(&r.url(), &["audit", "--vkey", &vkey]);
        assert!(out.starts_with("AUDIT PASSED"), "replica {}: {out}", r.id);
    }
    // Only the consenting driver has a line.
    assert_eq!(
        preview["lines"].as_array().map(Vec::len),
        Some(1),
        "{preview}"
    );
}
