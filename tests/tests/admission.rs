//! Admission at the scale of a real co-op: 5,000 drivers apply, each signing with their own new
//! key, and the board admits them in batches of 500 — 5,010 entries in all, no vote per
//! applicant. Also the path for a founders' list of any length: the board founds the co-op in
//! genesis, everyone else applies and is admitted in batches. Figures are printed (run with
//! `--nocapture`), never asserted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{now_ms, sign, TEST_VAULT_KEY};
use coopledger_governance::bylaws::{AdmissionRules, AdmittedBy, Bylaws, MAX_ADMISSIONS_PER_ENTRY};
use coopledger_governance::{records, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_node::folder;
use coopledger_rpc::LedgerApiClient;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const APPLICANTS: usize = 5_000;
const CLIENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_applicants_are_admitted_by_the_board_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let origin = "drivers.example.coop/ledger";
    let board = SigningKey::from_bytes(&[1; 32]);
    let mut bylaws = Bylaws::single_class();
    bylaws.admission = Some(AdmissionRules {
        by: AdmittedBy::Board,
        invitation_required: false,
        max_pending: APPLICANTS as u64,
    });
    folder::create(&data, origin, |node| Genesis {
        name: "Drivers' Co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders: vec![Founder {
            key: board.verifying_key().to_bytes(),
            class: "members".into(),
            roles: vec![Role::Board],
        }],
        bylaws,
    })
    .await
    .unwrap();
    // Applications come from keys the co-op does not know: the node's budget for strangers
    // (default 20 a second, `--stranger-writes-per-sec`) is raised for an enrolment drive.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = coopledger_node::Node::start(
        coopledger_node::NodeConfig {
            data: data.clone(),
            log: coopledger_ledger::LogConfig::default(),
            witness_for: vec![],
            witnesses: vec![],
            vault_key: coopledger_node::VaultKeySource::Key(
                coopledger_node::vault::VaultKey::from_bytes(TEST_VAULT_KEY),
            ),
            anchoring: None,
            frontend: std::sync::Arc::new(coopledger_rpc::JsonRpc {
                strangers_per_sec: 100_000,
                ..coopledger_rpc::JsonRpc::default()
            }),
            cluster: None,
        },
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        async move {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap();
    let rpc = format!("http://{}", running.addr);
    let size_before = running.node.log.checkpoint().checkpoint.size;

    // Every applicant signs `member.apply` with their own new key, from 50 clients at once.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let rpc = rpc.clone();
        tasks.push(tokio::spawn(async move {
            let client = coopledger_rpc::client::http_client(&rpc).unwrap();
            let mut ids = Vec::new();
            for i in (c..APPLICANTS).step_by(CLIENTS) {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1_000).to_be_bytes());
                let key = SigningKey::from_bytes(&seed);
                let env = sign(
                    &key,
                    origin,
                    "member.apply",
                    1,
                    now_ms(),
                    json!({"class": "members"}),
                )
                .unwrap();
                client
                    .submit(Value::String(b64_encode(env.bytes())))
                    .await
                    .unwrap();
                ids.push(hex::encode(env.entry_id().as_bytes()));
            }
            ids
        }));
    }
    let mut applications = Vec::with_capacity(APPLICANTS);
    for t in tasks {
        applications.extend(t.await.unwrap());
    }
    let applied = started.elapsed();

    // The board admits them, 500 to an entry.
    let started = Instant::now();
    let client = coopledger_rpc::client::http_client(&rpc).unwrap();
    let mut admissions = 0u64;
    for (n, batch) in applications.chunks(MAX_ADMISSIONS_PER_ENTRY).enumerate() {
        let env = sign(
            &board,
            origin,
            "member.admit",
            n as u64 + 1,
            now_ms(),
            json!({ "applications": batch }),
        )
        .unwrap();
        client
            .submit(Value::String(b64_encode(env.bytes())))
            .await
            .unwrap();
        admissions += 1;
    }
    let admitted = started.elapsed();

    let log = &running.node.log;
    let coop = records::coop(log.as_ref()).unwrap().unwrap();
    assert_eq!(coop.members, APPLICANTS as u64 + 1);
    assert_eq!(admissions, (APPLICANTS / MAX_ADMISSIONS_PER_ENTRY) as u64);
    for id in applications.iter().step_by(97) {
        let a = records::application(log.as_ref(), &coopledger_governance::parse_id(id).unwrap())
            .unwrap()
            .unwrap();
        assert!(a.admitted.is_some(), "{id}");
        let m = records::member(log.as_ref(), &a.member).unwrap().unwrap();
        assert_eq!(m.status, coopledger_governance::MemberStatus::Active);
    }
    // Nobody is left pending: the cap is free for the next drive.
    assert_eq!(
        coopledger_ledger::StateRead::get(log.as_ref(), b"pending-count").unwrap(),
        Some(0u64.to_be_bytes().to_vec())
    );
    let entries = log.checkpoint().checkpoint.size - size_before;
    eprintln!(
        "admission at scale: {APPLICANTS} member.apply from {CLIENTS} clients in {:.1} s \
         ({:.0}/s); {admissions} member.admit entries of up to {MAX_ADMISSIONS_PER_ENTRY} in \
         {:.2} s; {} co-op entries, {entries} log entries with the node's log.state entries",
        applied.as_secs_f64(),
        APPLICANTS as f64 / applied.as_secs_f64(),
        admitted.as_secs_f64(),
        APPLICANTS as u64 + admissions,
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running.stopped())
        .await
        .unwrap();
}
