//! A secret ballot that straddles a failover (issue 17, `docs/replication.md` §8 test 4): a
//! three-replica co-op; members vote through any replica (followers forward), three ballots go
//! into the box, the leader is killed with SIGKILL, the last member votes on the new leader,
//! and at the close the new leader's clerk publishes all four ballots and records the tally —
//! exactly as one node does (`secret_ballot.rs`): four participants, four ballots, three yes,
//! every member's receipt found by `coop tally verify`, and every replica audits clean.
//! The ballot box is off-log state: it reached the new leader only through Raft.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{after, init_secret_ballot_coop, ok, tally_when_closed};
use coopledger_e2e::cluster::{caught_up_with, leader, three};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_ballot_straddling_a_failover_counts_every_ballot_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("r1");
    let (names, keys) = init_secret_ballot_coop(d, &data);
    let mut replicas = three(d).await.unwrap();
    let (leader_id, _) = leader(&replicas).await.unwrap();
    // Members use a follower: it forwards every call to the leader.
    let follower = replicas.iter().find(|r| r.id != leader_id).unwrap().url();
    let run = |rpc: &str, args: &[&str]| {
        let mut v = vec!["--rpc", rpc];
        v.extend_from_slice(args);
        ok(&v)
    };
    let out = run(
        &follower,
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
            "15",
        ],
    );
    let proposal = after(&out, "proposal:");
    let receipt = |i: usize| d.join(format!("{}.receipt.json", names[i]));
    for (i, v) in [(0, "yes"), (1, "no"), (2, "yes")] {
        let out = run(
            &follower,
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
        assert!(out.contains("cast secretly"), "{out}");
    }

    // The leader dies with three ballots in its box.
    replicas
        .iter_mut()
        .find(|r| r.id == leader_id)
        .unwrap()
        .kill9()
        .unwrap();
    let (new_leader, new_url) = leader(&replicas).await.unwrap();
    assert_ne!(new_leader, leader_id);
    run(
        &new_url,
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
    let t = tally_when_closed(&new_url, &proposal);
    assert_eq!(t["ballots"], 4, "{t}");
    assert_eq!(t["participants"], 4, "{t}");
    for i in 0..4 {
        let out = run(
            &new_url,
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
    // Every running replica holds the same log and audits clean.
    caught_up_with(&replicas, &new_url).await.unwrap();
    let vkey = run(&new_url, &["vkey"]).trim().to_owned();
    for r in replicas.iter().filter(|r| r.node.is_some()) {
        let out = run(&r.url(), &["audit", "--vkey", &vkey]);
        assert!(out.starts_with("AUDIT PASSED"), "replica {}: {out}", r.id);
    }
}
