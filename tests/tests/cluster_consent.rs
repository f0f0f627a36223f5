//! A consent withdrawal that straddles a failover (issue 17, `docs/replication.md` §8 test 4):
//! a health co-op on three replicas; the patient grants research use and the controller's use
//! is accepted through a follower (forwarded to the leader); the leader is killed with SIGKILL;
//! on the new leader the patient withdraws and the next use is refused `use.withdrawn`, as on one
//! node. The patient's regulator bundle, exported from two different replicas, is the same
//! file and verifies VALID offline; every replica audits clean.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, key, member_id, ok, refused};
use coopledger_e2e::cluster::{caught_up_with, leader, three};
use coopledger_e2e::coop;
use coopledger_rpc::client::http_client;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_on_the_new_leader_stops_uses_as_on_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("r1");
    let (board, patient, controller) = (key(d, "board"), key(d, "patient"), key(d, "controller"));
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
    let mut replicas = three(d).await.unwrap();
    let (old_leader, _) = leader(&replicas).await.unwrap();
    let follower = replicas.iter().find(|r| r.id != old_leader).unwrap().url();
    let on = |rpc: &str, args: &[&str]| {
        let mut v = vec!["--rpc", rpc];
        v.extend_from_slice(args);
        ok(&v)
    };
    on(
        &follower,
        &[
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
        ],
    );
    on(
        &follower,
        &[
            "party-register",
            "--key",
            &board,
            "--party",
            "research_institute",
            "--kind",
            "recipient",
            "--name",
            "Nutrition Research Institute",
        ],
    );
    std::fs::write(
        d.join("notice.txt"),
        "We share your records only as you choose.",
    )
    .unwrap();
    let notice = d.join("notice.json");
    std::fs::write(
        &notice,
        serde_json::to_vec(&json!({
            "notice": "health", "version": 1, "controller": "health_coop",
            "purposes": ["dpv:ScientificResearch"],
            "dataCategories": ["pd:Dietary"],
            "operations": ["dpv:Share"],
            "recipients": ["research_institute"],
            "retentionMs": 31_536_000_000u64, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
            "textFile": "notice.txt", "language": "en", "specialCategory": true,
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
    let out = on(
        &follower,
        &[
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
            "pd:Dietary",
        ],
    );
    let grant = after(&out, "grant:");
    let use_args = [
        "data-use",
        "--key",
        &controller,
        "--recipient",
        "research_institute",
        "--purpose",
        "dpv:ScientificResearch",
        "--category",
        "pd:Dietary",
        "--consent",
        &grant,
    ];
    on(&follower, &use_args);

    // The leader dies; the patient withdraws on the new one.
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
        &["consent", "withdraw", "--key", &patient, &grant],
    );
    let mut refused_args = vec!["--rpc", new_url.as_str()];
    refused_args.extend_from_slice(&use_args);
    let err = refused(&refused_args);
    assert!(err.starts_with("refused (use.withdrawn): "), "{err}");
    // The notice's text, kept off the log, reached the new leader through Raft.
    use jsonrpsee::core::client::ClientT;
    let text: String = http_client(&new_url)
        .unwrap()
        .request("consent_noticeText", jsonrpsee::rpc_params!["health"])
        .await
        .unwrap();
    assert_eq!(text, "We share your records only as you choose.");

    // The same regulator bundle from two replicas, VALID offline; every replica audits clean.
    caught_up_with(&replicas, &new_url).await.unwrap();
    let vkey = on(&new_url, &["vkey"]).trim().to_owned();
    let member = member_id(&patient);
    let mut bundles = Vec::new();
    for r in replicas.iter().filter(|r| r.node.is_some()) {
        let file = d.join(format!("bundle-{}.json", r.id));
        on(
            &r.url(),
            &[
                "consent",
                "export",
                "--member",
                &member,
                "-o",
                file.to_str().unwrap(),
            ],
        );
        let (code, out, err) =
            coop(&["verify-bundle", file.to_str().unwrap(), "--vkey", &vkey]).unwrap();
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("VALID"), "{out}");
        bundles.push(std::fs::read(&file).unwrap());
        let out = on(&r.url(), &["audit", "--vkey", &vkey]);
        assert!(out.starts_with("AUDIT PASSED"), "replica {}: {out}", r.id);
    }
    assert_eq!(bundles.len(), 2);
    assert_eq!(
        bundles[0], bundles[1],
        "two replicas exported different bundles"
    );
}
