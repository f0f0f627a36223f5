//! End-to-end: a real `coop serve` process on a loopback port, driven over JSON-RPC as members
//! and auditors drive it; killed with SIGKILL and restarted; every acknowledged entry,
//! checkpoint and proof must survive and verify, and the old checkpoint must be provably
//! consistent with the new one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{attest, coop, now_ms, read_key, sign, Node};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::hash::leaf_hash;
use coopledger_ledger::verify::{verify_consistency, verify_inclusion};
use coopledger_ledger::{Hash, NoteVerifier, SignedCheckpoint};
use coopledger_rpc::client::{http_client, ws_client};
use coopledger_rpc::wire::SubmitResult;
use coopledger_rpc::LedgerApiClient;
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::rpc_params;
use serde_json::{json, Value};

/// A way to damage a proof file.
type Tamper = Box<dyn Fn(&mut Value)>;

fn hashes(v: &[String]) -> Vec<Hash> {
    v.iter().map(|h| Hash::from_base64(h).unwrap()).collect()
}

/// Checks a receipt offline against the log's verifier key.
fn check_receipt(r: &SubmitResult, entry_bytes: &[u8], vkey: &NoteVerifier) {
    let cp = SignedCheckpoint::open(&r.checkpoint.note, vkey).unwrap();
    assert_eq!(cp.checkpoint.size, r.checkpoint.size);
    assert_eq!(cp.checkpoint.root.to_base64(), r.checkpoint.root);
    assert_eq!(leaf_hash(entry_bytes).to_base64(), r.leaf_hash);
    assert_eq!(r.inclusion_proof.tree_size, cp.checkpoint.size);
    verify_inclusion(
        &leaf_hash(entry_bytes),
        r.index,
        cp.checkpoint.size,
        &hashes(&r.inclusion_proof.hashes),
        &cp.checkpoint.root,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_entries_survive_kill_9_and_stay_provable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("creating a demo co-op")),
        "{:?}",
        node.banner
    );
    let c = http_client(&node.http_url()).unwrap();
    let vkey_s = c.verifier_key().await.unwrap();
    let vkey = NoteVerifier::parse(&vkey_s).unwrap();
    let origin = vkey.name().to_owned();
    let genesis_cp = c.checkpoint().await.unwrap();
    assert_eq!(
        genesis_cp.size, 2,
        "the demo co-op starts with its genesis entry and that batch's state commitment"
    );

    // A WebSocket subscriber sees new checkpoints.
    let ws = ws_client(&node.ws_url()).await.unwrap();
    let mut sub = ws
        .subscribe::<Value, _>(
            "ledger_subscribeCheckpoints",
            rpc_params![],
            "ledger_unsubscribeCheckpoints",
        )
        .await
        .unwrap();

    // Members submit concurrently; each gets a receipt covered by a stored checkpoint.
    let board = read_key(&data.join("demo-keys/board.key")).unwrap();
    let member = read_key(&data.join("demo-keys/member.key")).unwrap();
    let mut envs = Vec::new();
    for i in 0..20u64 {
        let (key, seq) = if i % 2 == 0 {
            (&board, i / 2 + 1)
        } else {
            (&member, i / 2 + 1)
        };
        envs.push(sign(key, &origin, "coop.attest", seq, now_ms(), attest(i)).unwrap());
    }
    // Each signer's entries must arrive in seq order; the two signers run in parallel.
    let (evens, odds): (Vec<_>, Vec<_>) = envs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let run = |list: Vec<(usize, &coopledger_ledger::Envelope)>| {
        let c = c.clone();
        let list: Vec<_> = list.into_iter().map(|(_, e)| e.clone()).collect();
        async move {
            let mut out = Vec::new();
            for e in list {
                out.push((e.clone(), c.submit(e.to_value()).await.unwrap()));
            }
            out
        }
    };
    let (a, b) = tokio::join!(run(evens), run(odds));
    let receipts: Vec<_> = a.into_iter().chain(b).collect();
    for (env, r) in &receipts {
        check_receipt(r, env.bytes(), &vkey);
        assert!(!r.duplicate);
    }
    let pushed: Value = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(pushed["size"].as_u64().unwrap() > 1);
    SignedCheckpoint::open(pushed["note"].as_str().unwrap(), &vkey).unwrap();

    // Resubmitting the same body is idempotent: the same index and leaf.
    let (env0, r0) = &receipts[0];
    let again = c.submit(env0.to_value()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.index, &again.leaf_hash, &again.entry_id),
        (r0.index, &r0.leaf_hash, &r0.entry_id)
    );
    // The string form (base64 of the canonical bytes) is accepted too.
    let again2 = c.submit(json!(b64_encode(env0.bytes()))).await.unwrap();
    assert_eq!(again2.index, r0.index);

    // Genesis, the 20 entries, and one `log.state` entry closing every batch (the last entry
    // of every checkpoint).
    let before = c.checkpoint().await.unwrap();
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..before.size {
        let e = c.get_entry(i).await.unwrap();
        *kinds
            .entry(e.decoded["body"]["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if i == before.size - 1 {
            assert_eq!(e.decoded["body"]["type"], "log.state");
            assert_eq!(e.decoded["body"]["payload"]["size"], json!(i));
        }
    }
    assert_eq!(kinds.get("coop.attest"), Some(&20));
    assert_eq!(kinds.get("coop.genesis"), Some(&1));
    assert_eq!(kinds.get("log.state").copied(), Some(before.size - 21));
    drop(ws);
    node.kill9().unwrap();

    // Restart on the same folder: nothing is replayed, everything is there.
    let node = Node::start(&data, &[]).unwrap();
    assert!(
        !node.banner.iter().any(|l| l.contains("demo")),
        "{:?}",
        node.banner
    );
    let c = http_client(&node.http_url()).unwrap();
    assert_eq!(c.verifier_key().await.unwrap(), vkey_s);
    let after = c.checkpoint().await.unwrap();
    assert!(after.size >= before.size);
    let after_cp = SignedCheckpoint::open(&after.note, &vkey).unwrap();
    for (env, r) in &receipts {
        let got = c.get_entry(r.index).await.unwrap();
        assert_eq!(b64_decode(&got.entry).unwrap(), env.bytes());
        assert_eq!(got.leaf_hash, r.leaf_hash);
        assert_eq!(got.decoded["body"]["seq"], json!(env.body().seq));
        // Provable against the new checkpoint, by index and by leaf hash.
        let p = c.inclusion_proof(r.index, after.size).await.unwrap();
        verify_inclusion(
            &leaf_hash(env.bytes()),
            r.index,
            after.size,
            &hashes(&p.hashes),
            &after_cp.checkpoint.root,
        )
        .unwrap();
        let p2 = c
            .inclusion_proof_by_hash(r.leaf_hash.clone(), after.size)
            .await
            .unwrap();
        assert_eq!(p2, p);
        // And the checkpoint in its receipt is still served, byte for byte.
        let old = c.checkpoint_at(r.checkpoint.size).await.unwrap();
        assert_eq!(old.note, r.checkpoint.note);
    }
    // The pre-crash checkpoint is consistent with the post-restart one.
    let before_cp = SignedCheckpoint::open(&before.note, &vkey).unwrap();
    let proof = c.consistency_proof(before.size, after.size).await.unwrap();
    verify_consistency(
        before.size,
        after.size,
        &hashes(&proof.hashes),
        &before_cp.checkpoint.root,
        &after_cp.checkpoint.root,
    )
    .unwrap();
    let proof = c
        .consistency_proof(genesis_cp.size, after.size)
        .await
        .unwrap();
    let genesis_root = Hash::from_base64(&genesis_cp.root).unwrap();
    verify_consistency(
        genesis_cp.size,
        after.size,
        &hashes(&proof.hashes),
        &genesis_root,
        &after_cp.checkpoint.root,
    )
    .unwrap();

    // JSON-RPC over WebSocket answers the same methods on the same port.
    let ws = ws_client(&node.ws_url()).await.unwrap();
    assert_eq!(
        ws.checkpoint().await.unwrap(),
        c.checkpoint().await.unwrap()
    );

    // Sequence numbers continue after the restart.
    assert_eq!(
        c.next_seq(b64_encode(board.verifying_key().to_bytes()))
            .await
            .unwrap(),
        11
    );
    let env = sign(&board, &origin, "coop.attest", 11, now_ms(), attest(99)).unwrap();
    let r = c.submit(env.to_value()).await.unwrap();
    assert_eq!(r.index, after.size);
    check_receipt(&r, env.bytes(), &vkey);
    let newer = SignedCheckpoint::open(&r.checkpoint.note, &vkey).unwrap();
    let proof = c
        .consistency_proof(after.size, newer.checkpoint.size)
        .await
        .unwrap();
    verify_consistency(
        after.size,
        newer.checkpoint.size,
        &hashes(&proof.hashes),
        &after_cp.checkpoint.root,
        &newer.checkpoint.root,
    )
    .unwrap();
}

/// Error code of a failed call.
fn code_of(e: jsonrpsee::core::ClientError) -> (i32, String) {
    match e {
        jsonrpsee::core::ClientError::Call(obj) => (obj.code(), obj.message().to_owned()),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// Sends raw bytes as an HTTP POST and returns the response body.
fn raw_post(addr: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_its_own_error_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let c = http_client(&node.http_url()).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let board = read_key(&data.join("demo-keys/board.key")).unwrap();
    let good = sign(&board, &origin, "coop.attest", 1, now_ms(), attest(1)).unwrap();
    c.submit(good.to_value()).await.unwrap();
    let before = c.checkpoint().await.unwrap();

    // Malformed JSON: JSON-RPC parse error.
    let resp = raw_post(
        &node.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"ledger_submit","params":[{"body":"#,
    );
    assert!(resp.contains("-32700"), "{resp}");

    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let node_key = read_key(&data.join("node.key")).unwrap();
    let mut bad_sig = good.to_value();
    bad_sig["body"]["seq"] = json!(2); // body changed after signing
    let mut float = sign(&board, &origin, "coop.attest", 2, now_ms(), attest(2))
        .unwrap()
        .to_value();
    float["body"]["payload"]["n"] = json!(1.5);
    let huge =
        json!({ "digest": attest(3)["digest"], "kind": "minutes", "pad": "x".repeat(70_000) });
    let cases: Vec<(&str, Value, i32, &str)> = vec![
        ("float", float, 1001, "body.payload.n"),
        ("missing field", json!({"body": {"coop": origin}, "sig": "AA=="}), 1001, "body."),
        ("bad signature", bad_sig, 1002, "sig"),
        ("unknown signer", sign(&stranger, &origin, "coop.attest", 1, now_ms(), attest(4)).unwrap().to_value(), 1003, "body.signer"),
        ("wrong co-op", sign(&board, "other.example/ledger", "coop.attest", 2, now_ms(), attest(5)).unwrap().to_value(), 1004, "body.coop"),
        ("unknown type", sign(&board, &origin, "coop.nonsense", 2, now_ms(), attest(6)).unwrap().to_value(), 1005, "body.type"),
        ("replayed seq", sign(&board, &origin, "coop.attest", 1, now_ms(), attest(7)).unwrap().to_value(), 1006, "body.seq"),
        ("old timestamp", sign(&board, &origin, "coop.attest", 2, now_ms() - 3_600_000, attest(8)).unwrap().to_value(), 1007, "body.ts"),
        ("future timestamp", sign(&board, &origin, "coop.attest", 2, now_ms() + 3_600_000, attest(9)).unwrap().to_value(), 1007, "body.ts"),
        ("oversized", sign(&board, &origin, "coop.attest", 2, now_ms(), huge).unwrap().to_value(), 1008, "limit"),
        ("bad payload", sign(&board, &origin, "coop.attest", 2, now_ms(), json!({"digest": "AA==", "kind": "minutes"})).unwrap().to_value(), 1001, "body.payload.digest"),
        ("second genesis", sign(&node_key, &origin, "coop.genesis", 2, now_ms(), json!({"name": "x", "node": b64_encode(node_key.verifying_key().to_bytes()), "founders": [{"key": b64_encode(board.verifying_key().to_bytes()), "roles": []}]})).unwrap().to_value(), 1009, "genesis.once"),
    ];
    for (what, entry, want_code, want_in_message) in cases {
        let (code, msg) = code_of(c.submit(entry).await.unwrap_err());
        assert_eq!(code, want_code, "{what}: {msg}");
        assert!(
            msg.contains(want_in_message),
            "{what}: message {msg:?} should name {want_in_message:?}"
        );
    }
    // Query errors.
    let (code, msg) = code_of(c.get_entry(1000).await.unwrap_err());
    assert_eq!(code, 2002, "{msg}");
    let (code, _) = code_of(c.inclusion_proof(0, before.size + 1).await.unwrap_err());
    assert_eq!(code, 2002);
    let (code, msg) = code_of(c.consistency_proof(0, before.size).await.unwrap_err());
    assert_eq!(code, 2002);
    assert!(msg.contains("fromSize"), "{msg}");
    let (code, msg) = code_of(
        c.inclusion_proof_by_hash("AAAA".into(), 1)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, -32602);
    assert!(msg.contains("leafHash"), "{msg}");
    let (code, _) = code_of(
        c.inclusion_proof_by_hash(b64_encode([9u8; 32]), 1)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 2001);

    // Reads with an id that is no member id are refused, naming the parameter.
    for bad in ["x", "", "m-XYZ", "m-0000000000000000a"] {
        for (method, params) in [
            ("gov_member", json!([bad])),
            ("consent_grants", json!([bad])),
            ("consent_timeline", json!([bad])),
            ("consent_status", json!([bad, "dpv:Research", "city"])),
            ("revenue_statement", json!([bad])),
        ] {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
            let resp = raw_post(&node.addr, body.to_string().as_bytes());
            assert!(
                resp.contains("-32602") && resp.contains("`member`"),
                "{method}({bad:?}): {resp}"
            );
        }
    }
    let resp = raw_post(
        &node.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"consent_grant","params":["nope"]}"#,
    );
    assert!(resp.contains("-32602") && resp.contains("`id`"), "{resp}");
    // A request id that is an object, an array or a fraction is not a JSON-RPC id.
    for id in ["{}", "[1]", "1.5"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ledger_verifierKey"}}"#);
        let resp = raw_post(&node.addr, body.as_bytes());
        assert!(resp.contains("-32600"), "id {id}: {resp}");
    }

    // A subscription over plain HTTP says it needs a WebSocket.
    // (A body trickled too slowly is answered 408: `a_trickled_body_is_cut_off`.)
    let resp = raw_post(
        &node.addr,
        br#"{"jsonrpc":"2.0","id":7,"method":"ledger_subscribeCheckpoints","params":[]}"#,
    );
    assert!(
        resp.contains("open a WebSocket") && resp.contains(r#""id":7"#),
        "{resp}"
    );

    // Nothing changed, and the signer's sequence is untouched by the refusals.
    let after = c.checkpoint().await.unwrap();
    assert_eq!(after, before);
    assert_eq!(
        c.next_seq(b64_encode(board.verifying_key().to_bytes()))
            .await
            .unwrap(),
        2
    );
    // The OpenRPC document is served.
    let doc: Value = c.request("rpc.discover", rpc_params![]).await.unwrap();
    assert_eq!(doc["openrpc"], "1.2.6");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_writes_a_proof_that_verifies_offline_and_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    let key = data.join("demo-keys/treasurer.key");
    let submit = |n: u64| {
        let payload = attest(n).to_string();
        let (code, out, err) = coop(&[
            "--rpc",
            &url,
            "submit",
            "--key",
            key.to_str().unwrap(),
            "--type",
            "coop.attest",
            "--payload",
            &payload,
        ])
        .unwrap();
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    // Each submission is its own batch, closed by a `log.state` entry.
    assert_eq!(submit(1)["index"], 2);
    // A second submit picks the next seq from the node by itself.
    assert_eq!(submit(2)["index"], 4);

    let (code, vkey_out, _) = coop(&["--rpc", &url, "checkpoint"]).unwrap();
    assert_eq!(code, 0);
    let cp: Value = serde_json::from_str(&vkey_out).unwrap();
    assert_eq!(cp["size"], 6);
    let vkey = http_client(&url).unwrap().verifier_key().await.unwrap();
    let proof = dir.path().join("proof.json");
    let (code, out, err) =
        coop(&["--rpc", &url, "prove", "2", "-o", proof.to_str().unwrap()]).unwrap();
    assert_eq!(code, 0, "{out}{err}");
    drop(node); // offline from here on

    let (code, out, _) = coop(&["verify", proof.to_str().unwrap(), "--vkey", &vkey]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID: entry 2 (coop.attest v1"), "{out}");

    let original: Value = serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut v = original.clone();
        f(&mut v);
        let p = dir.path().join("tampered.json");
        std::fs::write(&p, v.to_string()).unwrap();
        coop(&["verify", p.to_str().unwrap(), "--vkey", &vkey]).unwrap()
    };
    let flip_b64 = |s: &str| {
        let mut b = b64_decode(s).unwrap();
        b[10] ^= 1;
        b64_encode(b)
    };
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "entry byte",
            Box::new(move |v| v["entry"] = json!(flip_b64(v["entry"].as_str().unwrap()))),
        ),
        (
            "proof hash",
            Box::new(move |v| {
                v["inclusionProof"][0] = json!(flip_b64(v["inclusionProof"][0].as_str().unwrap()))
            }),
        ),
        ("index", Box::new(|v| v["index"] = json!(3))),
        ("tree size", Box::new(|v| v["treeSize"] = json!(7))),
        (
            "checkpoint text",
            Box::new(|v| {
                v["checkpoint"] = json!(v["checkpoint"]
                    .as_str()
                    .unwrap()
                    .replacen("\n6\n", "\n7\n", 1))
            }),
        ),
    ];
    for (what, f) in cases {
        let (code, out, _) = tamper(&*f);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.starts_with("INVALID"), "{what}: {out}");
    }
    // The same origin under another key (an impostor log) is refused.
    let origin = NoteVerifier::parse(&vkey).unwrap().name().to_owned();
    let impostor = coopledger_ledger::NoteSigner::new(
        &origin,
        ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]),
    )
    .unwrap();
    let (code, out, _) = coop(&[
        "verify",
        proof.to_str().unwrap(),
        "--vkey",
        &impostor.vkey(),
    ])
    .unwrap();
    assert_eq!(code, 1, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_node_cleanly_and_it_restarts_on_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let c = http_client(&node.http_url()).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let member = read_key(&data.join("demo-keys/member.key")).unwrap();
    let env = sign(&member, &origin, "coop.attest", 1, now_ms(), attest(1)).unwrap();
    let r = c.submit(env.to_value()).await.unwrap();
    assert_eq!(node.terminate().unwrap(), Some(0), "a clean stop exits 0");
    let node = Node::start(&data, &[]).unwrap();
    let c = http_client(&node.http_url()).unwrap();
    assert_eq!(c.checkpoint().await.unwrap(), r.checkpoint);
    assert_eq!(c.get_entry(r.index).await.unwrap().leaf_hash, r.leaf_hash);
}

/// A client that announces a body and sends one byte of it does not keep its connection: after
/// the body timeout the node answers 408 and closes, and a member's submit goes through.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_body_is_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &["--body-timeout-secs", "1"]).unwrap();
    let mut s = std::net::TcpStream::connect(&node.addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        node.addr
    )
    .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let c = http_client(&node.http_url()).unwrap();
    let board = read_key(&data.join("demo-keys/board.key")).unwrap();
    let origin = c.checkpoint().await.unwrap().origin;
    let e = sign(&board, &origin, "coop.attest", 1, now_ms(), attest(1)).unwrap();
    c.submit(e.to_value()).await.unwrap();
}

/// A browser page of another site cannot open a WebSocket on the node (cross-site WebSocket
/// hijacking); the node's own origin and clients that send no Origin can.
#[tokio::test(flavor = "multi_thread")]
async fn websockets_from_other_origins_are_refused() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("coop"), &[]).unwrap();
    let handshake = |origin: Option<&str>| {
        let mut s = std::net::TcpStream::connect(&node.addr).unwrap();
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n",
            node.addr
        )
        .unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let evil = handshake(Some("https://evil.example"));
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let own = handshake(Some(&format!("http://{}", node.addr)));
    assert!(own.starts_with("HTTP/1.1 101"), "{own}");
    let cli = handshake(None);
    assert!(cli.starts_with("HTTP/1.1 101"), "{cli}");
}

/// `coop serve --tls-cert --tls-key`: JSON-RPC over TLS (rustls), checked with a client that
/// trusts only the test certificate; plain HTTP to the TLS port gets no JSON-RPC answer.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_serves_json_rpc_over_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let cert = fixtures.join("node.cert.pem");
    let key = fixtures.join("node.key.pem");
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("coop"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("listening on https://")),
        "{:?}",
        node.banner
    );
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ledger_verifierKey","params":[]}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        node.addr,
        body.len()
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("demo.coopledger.example/ledger+"), "{out}");
    // Plain HTTP to the TLS port: no JSON-RPC answer.
    let plain = std::panic::catch_unwind(|| raw_post(&node.addr, body.as_bytes()));
    assert!(
        plain.map_or(true, |r| !r.contains("\"result\"")),
        "plain HTTP was answered"
    );
}

/// Idle connections do not hold slots for ever: an HTTP connection that sends nothing and a
/// WebSocket that answers no ping are closed after the idle time (`--idle-timeout-secs`).
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("coop"), &["--idle-timeout-secs", "2"]).unwrap();
    let closed_within = |mut s: std::net::TcpStream, what: &str| {
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => continue, // the handshake answer, pings
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return started.elapsed()
                }
                Err(e) => panic!("{what}: still open after 15 s: {e}"),
            }
        }
    };
    let idle_http = std::net::TcpStream::connect(&node.addr).unwrap();
    let t = closed_within(idle_http, "idle HTTP");
    assert!(t < std::time::Duration::from_secs(10), "{t:?}");
    let mut ws = std::net::TcpStream::connect(&node.addr).unwrap();
    write!(
        ws,
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        node.addr
    )
    .unwrap();
    let t = closed_within(ws, "silent WebSocket");
    assert!(t < std::time::Duration::from_secs(12), "{t:?}");
    // A client that talks is served as usual.
    let c = http_client(&node.http_url()).unwrap();
    c.checkpoint().await.unwrap();
}
