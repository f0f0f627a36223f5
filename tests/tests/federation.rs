//! Three co-op nodes on loopback witnessing each other (C2SP tlog-witness): each asks the other
//! two to cosign every checkpoint; each serves its cosigned checkpoint; a proof made on one node
//! verifies offline with "both other co-ops cosigned"; a stricter policy than the cosignatures
//! present fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{key, ok};
use coopledger_e2e::{coop, read_key, Node};
use coopledger_ledger::cosignature::{Cosigner, WitnessKey, WitnessPolicy};
use coopledger_ledger::note::{NoteSigner, SignedNote};
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Coop {
    data: std::path::PathBuf,
    founder: String,
    origin: String,
    port: u16,
    log_vkey: String,
    witness_vkey: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn three_coops_cosign_each_others_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut coops = Vec::new();
    for name in ["drivers", "patients", "builders"] {
        let data = d.join(name);
        let founder = key(d, &format!("{name}-board"));
        let origin = format!("{name}.example.coop/ledger");
        ok(&[
            "init",
            "--data",
            data.to_str().unwrap(),
            "--origin",
            &origin,
            "--name",
            name,
            "--founder",
            &format!("@{founder}:board"),
        ]);
        let node_key = read_key(&data.join("node.key")).unwrap();
        let log_vkey = NoteSigner::new(&origin, node_key.clone()).unwrap().vkey();
        let witness_vkey = Cosigner::new(
            &format!("{origin}/witness"),
            coopledger_node::witness::witness_key(&node_key),
        )
        .unwrap()
        .vkey();
        coops.push(Coop {
            data,
            founder,
            origin,
            port: free_port(),
            log_vkey,
            witness_vkey,
        });
    }
    let mut nodes = Vec::new();
    for (i, c) in coops.iter().enumerate() {
        let listen = format!("127.0.0.1:{}", c.port);
        let mut args: Vec<String> = vec!["--listen".into(), listen];
        for (j, o) in coops.iter().enumerate() {
            if i != j {
                args.push("--witness-for".into());
                args.push(o.log_vkey.clone());
                args.push("--witness".into());
                args.push(format!("http://127.0.0.1:{},{}", o.port, o.witness_vkey));
            }
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(Node::start(&c.data, &a).unwrap());
    }
    // Each co-op records something; each new checkpoint goes to the other two.
    for (c, n) in coops.iter().zip(&nodes) {
        ok(&[
            "--rpc",
            &n.http_url(),
            "submit",
            "--key",
            &c.founder,
            "--type",
            "coop.attest",
            "--payload",
            r#"{"digest":"iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=","kind":"minutes"}"#,
        ]);
    }
    for (i, (c, n)) in coops.iter().zip(&nodes).enumerate() {
        let others: Vec<WitnessKey> = coops
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| WitnessKey::parse(&o.witness_vkey).unwrap())
            .collect();
        let policy = WitnessPolicy {
            witnesses: others,
            k: 2,
        };
        let client = http_client(&n.http_url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let latest = client.checkpoint().await.unwrap();
            if let Ok(cp) = client.cosigned_checkpoint().await {
                let note = SignedNote::parse(cp.note.as_bytes()).unwrap();
                if cp.size == latest.size && policy.check(&note).is_ok() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: not cosigned by both others in time",
                c.origin
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Cosigned up to the latest checkpoint: the metrics show no witness lag.
        let text = coopledger_e2e::metrics(&n.addr).unwrap();
        assert_eq!(
            coopledger_e2e::metric(&text, "coop_witness_lag_entries"),
            Some(0.0),
            "{text}"
        );
    }
    // A proof from the drivers' node carries both cosignatures and verifies offline under a
    // 2-of-2 policy; asking for a witness that did not cosign fails.
    let proof = d.join("proof.json");
    ok(&[
        "--rpc",
        &nodes[0].http_url(),
        "prove",
        "2",
        "-o",
        proof.to_str().unwrap(),
    ]);
    let (b, c) = (&coops[1].witness_vkey, &coops[2].witness_vkey);
    let out = ok(&[
        "verify",
        proof.to_str().unwrap(),
        "--vkey",
        &coops[0].log_vkey,
        "--witness",
        b,
        "--witness",
        c,
        "--min-witnesses",
        "2",
    ]);
    assert!(
        out.starts_with("cosigned by patients.example.coop/ledger/witness"),
        "{out}"
    );
    assert!(out.contains("VALID: entry 2"), "{out}");
    let stranger = Cosigner::new(
        "stranger.example/witness",
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap()
    .vkey();
    let (code, out, _) = coop(&[
        "verify",
        proof.to_str().unwrap(),
        "--vkey",
        &coops[0].log_vkey,
        "--witness",
        b,
        "--witness",
        &stranger,
        "--min-witnesses",
        "2",
    ])
    .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 of the required 2 witness cosignatures"),
        "{out}"
    );
    // A regulator bundle from the drivers' node, exported once both others cosigned its
    // checkpoint, verifies offline under the same 2-of-2 policy.
    let bundle = d.join("bundle.json");
    let member = common::member_id(&coops[0].founder);
    ok(&[
        "--rpc",
        &nodes[0].http_url(),
        "consent",
        "export",
        "--member",
        &member,
        "--require-witnesses",
        "2",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    let out = ok(&[
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--vkey",
        &coops[0].log_vkey,
        "--witness",
        b,
        "--witness",
        c,
        "--min-witnesses",
        "2",
    ]);
    assert!(out.starts_with("VALID"), "{out}");
    let (code, out, _) = coop(&[
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--vkey",
        &coops[0].log_vkey,
        "--witness",
        b,
        "--witness",
        &stranger,
        "--min-witnesses",
        "2",
    ])
    .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 of the required 2"), "{out}");

    // The drivers' operator forks: a checkpoint of the same size with another root, signed with
    // the drivers' real node key. The patients' witness refuses it and keeps the evidence.
    let drivers_client = http_client(&nodes[0].http_url()).unwrap();
    let current = drivers_client.checkpoint().await.unwrap();
    let node_key = read_key(&coops[0].data.join("node.key")).unwrap();
    let fork = NoteSigner::new(&coops[0].origin, node_key)
        .unwrap()
        .sign(
            &coopledger_ledger::Checkpoint {
                origin: coops[0].origin.clone(),
                size: current.size,
                root: coopledger_ledger::Hash([7; 32]),
                extensions: vec![],
            }
            .to_text(),
        )
        .unwrap();
    let patients = http_client(&nodes[1].http_url()).unwrap();
    use coopledger_rpc::WitnessApiClient;
    let cosigned_size = patients.latest(coops[0].origin.clone()).await.unwrap().size;
    let body = coopledger_ledger::witness::AddCheckpoint {
        old_size: cosigned_size,
        proof: vec![],
        note: fork.clone(),
    }
    .to_body();
    let (status, _, resp) = coopledger_e2e::http_post(
        &format!("127.0.0.1:{}", coops[1].port),
        "/add-checkpoint",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 409, "{resp}");
    let evidence = patients.evidence(coops[0].origin.clone()).await.unwrap();
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].presented, fork);
    for n in nodes {
        n.terminate().unwrap();
    }
}
