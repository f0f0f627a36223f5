//! End-to-end witnessing between two co-op nodes on loopback (C2SP tlog-witness over real HTTP):
//! node B witnesses node A's log. A's checkpoints, with A's consistency proofs, get B's
//! cosignature, which verifies against B's witness key; a stale size gets 409 with the known
//! size; an unknown log 404, a wrong key 403, a bad proof 422. When A's operator signs a forked
//! checkpoint, B refuses it and keeps both signed notes as evidence, served over JSON-RPC.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{http_post, read_key, sign, Node};
use coopledger_ledger::cosignature::{cosignatures, WitnessKey};
use coopledger_ledger::hash::Hash;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::note::{Checkpoint, NoteSigner, NoteVerifier, SignedNote};
use coopledger_ledger::witness::AddCheckpoint;
use coopledger_rpc::client::http_client;
use coopledger_rpc::{LedgerApiClient, WitnessApiClient};

fn post(addr: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    http_post(addr, path, body).unwrap()
}

fn attest(n: u64) -> serde_json::Value {
    let digest = coopledger_ledger::codec::b64_encode(
        coopledger_ledger::hash::sha256(format!("minutes {n}").as_bytes()).0,
    );
    serde_json::json!({"digest": digest, "kind": "minutes"})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_coop_witnesses_another_and_keeps_evidence_of_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let a_data = dir.path().join("a");
    let a = Node::start(&a_data, &[]).unwrap();
    let ca = http_client(&a.http_url()).unwrap();
    let a_vkey = ca.verifier_key().await.unwrap();
    let b = Node::start(&dir.path().join("b"), &["--witness-for", &a_vkey]).unwrap();
    let cb = http_client(&b.http_url()).unwrap();
    let info = cb.info().await.unwrap();
    let wkey = WitnessKey::parse(&info.vkey).unwrap();
    let origin = NoteVerifier::parse(&a_vkey).unwrap().name().to_owned();
    assert_eq!(info.logs, vec![origin.clone()]);

    // First contact: old 0.
    let cp1 = ca.checkpoint().await.unwrap();
    let req = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        note: cp1.note.clone(),
    };
    let (status, _, body) = post(&b.addr, "/add-checkpoint", req.to_body().as_bytes());
    assert_eq!(status, 200, "{body}");
    let cosigned = SignedNote::parse(format!("{}{body}", cp1.note).as_bytes()).unwrap();
    let got = cosignatures(&cosigned, std::slice::from_ref(&wkey)).unwrap();
    assert_eq!(
        got.len(),
        1,
        "the cosignature verifies against B's witness key"
    );

    // A grows; A's own consistency proof takes B along.
    let board = read_key(&a_data.join("demo-keys/board.key")).unwrap();
    for n in 1..=3u64 {
        let env = sign(&board, &origin, "coop.attest", n, now_ms(), attest(n)).unwrap();
        ca.submit(env.to_value()).await.unwrap();
    }
    let cp2 = ca.checkpoint().await.unwrap();
    let proof = ca.consistency_proof(cp1.size, cp2.size).await.unwrap();
    let req = AddCheckpoint {
        old_size: cp1.size,
        proof: proof
            .hashes
            .iter()
            .map(|h| Hash::from_base64(h).unwrap())
            .collect(),
        note: cp2.note.clone(),
    };
    let (status, _, body) = post(&b.addr, "/add-checkpoint", req.to_body().as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(cb.latest(origin.clone()).await.unwrap().size, cp2.size);

    // Stale: 409, text/x.tlog.size, the known size.
    let (status, ctype, body) = post(&b.addr, "/add-checkpoint", req.to_body().as_bytes());
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", format!("{}\n", cp2.size).as_str())
    );
    // Unknown log: 404. The right origin signed by another key: 403.
    let stranger = NoteSigner::new(
        "elsewhere.example/log",
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
    )
    .unwrap();
    let text = Checkpoint {
        origin: "elsewhere.example/log".into(),
        size: 1,
        root: Hash([1; 32]),
        extensions: vec![],
    }
    .to_text();
    let req404 = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        note: stranger.sign(&text).unwrap(),
    };
    assert_eq!(
        post(&b.addr, "/add-checkpoint", req404.to_body().as_bytes()).0,
        404
    );
    let impostor =
        NoteSigner::new(&origin, ed25519_dalek::SigningKey::from_bytes(&[4; 32])).unwrap();
    let text = Checkpoint {
        origin: origin.clone(),
        size: cp2.size,
        root: Hash([2; 32]),
        extensions: vec![],
    }
    .to_text();
    let req403 = AddCheckpoint {
        old_size: cp2.size,
        proof: vec![],
        note: impostor.sign(&text).unwrap(),
    };
    assert_eq!(
        post(&b.addr, "/add-checkpoint", req403.to_body().as_bytes()).0,
        403
    );
    // GET is not the protocol.
    assert_ne!(post(&b.addr, "/add-checkpoint", b"").0, 200);

    // A's operator forks: the same size, another root, signed with A's real node key.
    let a_key = read_key(&a_data.join("node.key")).unwrap();
    let a_signer = NoteSigner::new(&origin, a_key).unwrap();
    let forked = Checkpoint {
        origin: origin.clone(),
        size: cp2.size,
        root: Hash([9; 32]),
        extensions: vec![],
    };
    let fork_note = a_signer.sign(&forked.to_text()).unwrap();
    let req_fork = AddCheckpoint {
        old_size: cp2.size,
        proof: vec![],
        note: fork_note.clone(),
    };
    let (status, _, body) = post(&b.addr, "/add-checkpoint", req_fork.to_body().as_bytes());
    assert_eq!(status, 409, "{body}");
    let evidence = cb.evidence(origin.clone()).await.unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].cosigned, cp2.note);
    assert_eq!(evidence[0].presented, fork_note);
    assert_eq!(evidence[0].reason, "same size, other root");
    // A grows on; a proof that does not verify gets 422 (and is kept), the real one 200.
    for n in 4..=5u64 {
        let env = sign(&board, &origin, "coop.attest", n, now_ms(), attest(n)).unwrap();
        ca.submit(env.to_value()).await.unwrap();
    }
    let cp3 = ca.checkpoint().await.unwrap();
    let real = ca.consistency_proof(cp2.size, cp3.size).await.unwrap();
    let mut req3 = AddCheckpoint {
        old_size: cp2.size,
        proof: real
            .hashes
            .iter()
            .map(|h| Hash::from_base64(h).unwrap())
            .collect(),
        note: cp3.note.clone(),
    };
    let good = req3.clone();
    req3.proof[0].0[0] ^= 1;
    assert_eq!(
        post(&b.addr, "/add-checkpoint", req3.to_body().as_bytes()).0,
        422
    );
    assert_eq!(cb.evidence(origin.clone()).await.unwrap().len(), 2);
    assert_eq!(
        post(&b.addr, "/add-checkpoint", good.to_body().as_bytes()).0,
        200
    );
    // The witness did not move past what it cosigned, and keeps its state over a restart.
    assert_eq!(cb.latest(origin.clone()).await.unwrap().note, cp3.note);
    b.terminate().unwrap();
    let b = Node::start(&dir.path().join("b"), &["--witness-for", &a_vkey]).unwrap();
    let cb = http_client(&b.http_url()).unwrap();
    assert_eq!(cb.latest(origin.clone()).await.unwrap().size, cp3.size);
    assert_eq!(cb.evidence(origin).await.unwrap().len(), 2);
    b.terminate().unwrap();
    a.terminate().unwrap();
}
