//! The crash loop (issue 13 item 9): the real `coop serve` under concurrent load is killed with
//! SIGKILL at a random moment, restarted on the same folder, and checked — every acknowledged
//! entry is there with the same leaf hash, every checkpoint ever returned is consistent with the
//! node's new one (RFC 9162 consistency proof, checked here), and at the end `coop audit`
//! passes with the last checkpoint seen. `COOP_CRASH_ROUNDS` sets the rounds (CI: 4); the long
//! run's figures are in `docs/format.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{attest, coop, now_ms, read_key, sign, Node};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::verify::verify_consistency;
use coopledger_ledger::{Hash, NoteVerifier, SignedCheckpoint};
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_nothing_acknowledged_and_never_forks() {
    let rounds: u64 = std::env::var("COOP_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let mut rng = rand::rngs::StdRng::seed_from_u64(rounds);
    let keys: Vec<_> = ["board", "treasurer", "member"]
        .iter()
        .map(|k| data.join(format!("demo-keys/{k}.key")))
        .collect();
    // Every acknowledged entry (index, leaf hash) and every checkpoint returned (size, root).
    let acked: Arc<Mutex<Vec<(u64, Hash)>>> = Arc::default();
    let seen: Arc<Mutex<Vec<(u64, Hash, String)>>> = Arc::default();
    let mut node = Node::start(&data, &[]).unwrap();
    let vkey_text = http_client(&node.http_url())
        .unwrap()
        .verifier_key()
        .await
        .unwrap();
    let vkey = NoteVerifier::parse(&vkey_text).unwrap();
    let origin = vkey.name().to_owned();
    let mut doc = 0u64;
    let mut checked_upto = (0usize, 0usize);
    for round in 0..rounds {
        let url = node.http_url();
        let mut clients = Vec::new();
        for path in &keys {
            let key = read_key(path).unwrap();
            let (url, origin, acked, seen) =
                (url.clone(), origin.clone(), acked.clone(), seen.clone());
            let vkey = vkey.clone();
            doc += 1_000_000;
            let base = doc;
            clients.push(tokio::spawn(async move {
                let Ok(c) = http_client(&url) else { return };
                let signer = b64_encode(key.verifying_key().to_bytes());
                let Ok(mut seq) = c.next_seq(signer).await else {
                    return;
                };
                loop {
                    let env = sign(
                        &key,
                        &origin,
                        "coop.attest",
                        seq,
                        now_ms(),
                        attest(base + seq),
                    )
                    .unwrap();
                    // Any failure is the node going down: stop.
                    let Ok(r) = c.submit(env.to_value()).await else {
                        return;
                    };
                    let cp = SignedCheckpoint::open(&r.checkpoint.note, &vkey)
                        .expect("every receipt's checkpoint verifies");
                    acked
                        .lock()
                        .unwrap()
                        .push((r.index, Hash::from_base64(&r.leaf_hash).unwrap()));
                    seen.lock().unwrap().push((
                        cp.checkpoint.size,
                        cp.checkpoint.root,
                        r.checkpoint.note.clone(),
                    ));
                    seq += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..400))).await;
        node.kill9().unwrap();
        for c in clients {
            c.await.unwrap();
        }
        node = Node::start(&data, &[]).unwrap();
        // What was acknowledged or returned since the last restart (all of it at the end).
        let last_round = round + 1 == rounds;
        let from = if last_round { (0, 0) } else { checked_upto };
        check(&node, &vkey, &acked, &seen, from, round).await;
        checked_upto = (acked.lock().unwrap().len(), seen.lock().unwrap().len());
    }
    let acked_n = acked.lock().unwrap().len();
    let seen_n = seen.lock().unwrap().len();
    assert!(acked_n > 0, "nothing was acknowledged");
    // The auditor's view: the whole log replays, and contains the last checkpoint they saw.
    let last = seen.lock().unwrap().last().cloned().unwrap();
    let kept = dir.path().join("last.note");
    std::fs::write(&kept, &last.2).unwrap();
    let (code, out, err) = coop(&[
        "--rpc",
        &node.http_url(),
        "audit",
        "--vkey",
        &vkey_text,
        "--seen",
        kept.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("AUDIT PASSED"), "{out}");
    println!(
        "{rounds} rounds of SIGKILL: {acked_n} acknowledged entries all present, {seen_n} checkpoints consistent, 0 lost, 0 inconsistent"
    );
}

/// Checks, on the restarted node, the acknowledged entries and returned checkpoints from
/// `from` (indexes into the two lists) on: each entry present with its leaf hash, each
/// checkpoint consistent with the node's newest.
async fn check(
    node: &Node,
    vkey: &NoteVerifier,
    acked: &Mutex<Vec<(u64, Hash)>>,
    seen: &Mutex<Vec<(u64, Hash, String)>>,
    from: (usize, usize),
    round: u64,
) {
    let c = http_client(&node.http_url()).unwrap();
    let now = c.checkpoint().await.unwrap();
    let now = SignedCheckpoint::open(&now.note, vkey).unwrap().checkpoint;
    let entries: Vec<(u64, Hash)> = acked.lock().unwrap()[from.0..].to_vec();
    for (index, leaf) in entries {
        let e = c
            .get_entry(index)
            .await
            .unwrap_or_else(|e| panic!("round {round}: acknowledged entry {index} is gone: {e}"));
        assert_eq!(
            Hash::from_base64(&e.leaf_hash).unwrap(),
            leaf,
            "round {round}: entry {index} changed"
        );
    }
    // Every distinct (size, root) pair: two roots at one size would both be checked.
    let checkpoints: Vec<(u64, Hash)> = seen.lock().unwrap()[from.1..]
        .iter()
        .map(|(s, r, _)| (*s, r.0))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|(s, r)| (s, Hash(r)))
        .collect();
    for (size, root) in checkpoints {
        assert!(
            size <= now.size,
            "round {round}: the log shrank below {size}"
        );
        if size == now.size {
            assert_eq!(root, now.root, "round {round}: two roots at size {size}");
            continue;
        }
        let p = c.consistency_proof(size, now.size).await.unwrap();
        let hashes: Vec<Hash> = p
            .hashes
            .iter()
            .map(|h| Hash::from_base64(h).unwrap())
            .collect();
        verify_consistency(size, now.size, &hashes, &root, &now.root).unwrap_or_else(|e| {
            panic!(
                "round {round}: checkpoint {size} is inconsistent with {}: {e}",
                now.size
            )
        });
    }
}
