//! `coop audit --seen FILE`: an auditor who kept a checkpoint (`coop checkpoint --note FILE`)
//! finds out when the log is later behind it or has another root at its size — the two ways a
//! node that lost acknowledged entries or forked its own log would show itself. The forged
//! checkpoints here are signed with the node's real key (read from its data folder), as a
//! compromised or confused node would sign them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::ok;
use coopledger_e2e::{coop, Node};
use coopledger_ledger::{Checkpoint, Hash, NoteSigner};
use serde_json::Value;

#[test]
fn an_audit_fails_on_a_log_behind_or_forked_from_a_checkpoint_the_auditor_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let board = data.join("demo-keys/board.key");
    let attest = |digest: &str| {
        ok(&[
            "--rpc",
            &rpc,
            "submit",
            "--key",
            board.to_str().unwrap(),
            "--type",
            "coop.attest",
            "--payload",
            &format!(r#"{{"digest":"{digest}","kind":"minutes"}}"#),
        ]);
    };
    attest("iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=");
    let vkey = ok(&["--rpc", &rpc, "vkey"]).trim().to_owned();
    let kept = dir.path().join("kept.note");
    let cp: Value = serde_json::from_str(&ok(&[
        "--rpc",
        &rpc,
        "checkpoint",
        "--note",
        kept.to_str().unwrap(),
    ]))
    .unwrap();
    let size = cp["size"].as_u64().unwrap();
    attest("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");

    // The log grew and still contains what the auditor kept.
    let out = ok(&[
        "--rpc",
        &rpc,
        "audit",
        "--vkey",
        &vkey,
        "--seen",
        kept.to_str().unwrap(),
    ]);
    assert!(out.contains("AUDIT PASSED"), "{out}");
    assert!(
        out.contains("contains the 1 checkpoint(s) you have seen"),
        "{out}"
    );

    // Checkpoints signed with the node's own key that this log does not contain.
    let node_key = coopledger_node::keyfile::read(&data.join("node.key")).unwrap();
    let origin = cp["origin"].as_str().unwrap();
    let signer = NoteSigner::new(origin, node_key).unwrap();
    let forge = |name: &str, size: u64, root: Hash| {
        let text = Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: vec![],
        }
        .to_text();
        let path = dir.path().join(name);
        std::fs::write(&path, signer.sign(&text).unwrap()).unwrap();
        path
    };
    let audit = |seen: &std::path::Path| {
        let (code, out, err) = coop(&[
            "--rpc",
            &rpc,
            "audit",
            "--vkey",
            &vkey,
            "--seen",
            seen.to_str().unwrap(),
        ])
        .unwrap();
        (code, format!("{out}{err}"))
    };
    let (code, out) = audit(&forge("fork.note", size, Hash([7; 32])));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("inconsistent with a checkpoint you have seen"),
        "{out}"
    );
    let (code, out) = audit(&forge("ahead.note", size + 100, Hash([7; 32])));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the log is behind a checkpoint you have seen"),
        "{out}"
    );

    // A note of another log is no checkpoint of this one: a usage error, not a verdict.
    let other = NoteSigner::new(origin, ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
    let foreign = dir.path().join("foreign.note");
    std::fs::write(
        &foreign,
        other
            .sign(
                &Checkpoint {
                    origin: origin.to_owned(),
                    size,
                    root: Hash([1; 32]),
                    extensions: vec![],
                }
                .to_text(),
            )
            .unwrap(),
    )
    .unwrap();
    let (code, out) = audit(&foreign);
    assert_ne!(code, 0);
    assert!(out.contains("not a checkpoint of this log"), "{out}");
    drop(node);
}
