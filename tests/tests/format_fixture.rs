//! A data folder written in format version 2 (`tests/fixtures/data-v2`, made by
//! `cargo run -p coopledger-e2e --example format_fixture`) still opens, serves the same
//! checkpoint, proves every entry, audits to the same state root, answers governance reads, and
//! takes new entries. A format change must migrate this folder, not refuse it: if this test
//! fails after a change to storage or to the state encoding, write the migration (and keep this
//! fixture), then add a fixture of the new version beside it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{now_ms, sign};
use coopledger_governance::{records, CoopRules};
use coopledger_ledger::audit::Audit;
use coopledger_ledger::verify::verify_inclusion;
use coopledger_ledger::{Envelope, Hash, LogConfig};
use coopledger_node::folder;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_version_2_data_folder_opens_proves_audits_and_grows() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data-v2");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("manifest.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&fixture, &data);

    let (log, node_key) = folder::open(&data, LogConfig::default()).unwrap();
    assert_eq!(log.verifier_key(), manifest["vkey"]);
    assert_eq!(log.origin(), manifest["origin"]);
    let cp = log.checkpoint();
    let size = manifest["size"].as_u64().unwrap();
    assert_eq!(cp.checkpoint.size, size);
    assert_eq!(
        cp.checkpoint.root.to_base64(),
        manifest["root"].as_str().unwrap()
    );

    // Every entry is proved under the stored checkpoint and the replay reaches the state root.
    let rules = CoopRules;
    let mut audit = Audit::new(&rules, node_key.verifying_key().to_bytes());
    for i in 0..size {
        let bytes = log.entry(i).unwrap();
        let proof = log.inclusion_proof(i, size).unwrap();
        verify_inclusion(
            &coopledger_ledger::hash::leaf_hash(&bytes),
            i,
            size,
            &proof,
            &cp.checkpoint.root,
        )
        .unwrap();
        audit.push(&bytes).unwrap();
    }
    let report = audit.finish().unwrap();
    let state_root = Hash::from_base64(manifest["stateRoot"].as_str().unwrap()).unwrap();
    assert_eq!(report.state_root, state_root);
    assert_eq!(log.state_commitment(size).unwrap().root, state_root);

    // Governance reads: the members and the tallied proposal.
    for m in manifest["members"].as_array().unwrap() {
        let rec = records::member(&log, m.as_str().unwrap()).unwrap();
        assert!(rec.is_some(), "member {m} is missing");
    }
    let pid: [u8; 32] = hex::decode(manifest["proposal"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let p = records::proposal(&log, &pid).unwrap().unwrap();
    assert!(p.tally.is_some(), "the proposal's tally is missing");

    // The folder takes new entries: the board attests once more (its next seq, read from the
    // log), and the log reopens at the new size.
    let board = SigningKey::from_bytes(&[2; 32]);
    let seq = log.next_seq(&board.verifying_key().to_bytes()).unwrap();
    let env = sign(
        &board,
        log.origin(),
        "coop.attest",
        seq,
        now_ms(),
        json!({"digest": "iupJO+ywVmzobfIrBpWaLQd4+PJuYxL+T6U5kSrc9g8=", "kind": "minutes"}),
    )
    .unwrap();
    let r = log.submit(env).await.unwrap();
    assert_eq!(r.index, size);
    drop(log);
    let (log, _) = folder::open(&data, LogConfig::default()).unwrap();
    assert_eq!(log.checkpoint().checkpoint.size, size + 2);
    let again = Envelope::from_bytes(&log.entry(size).unwrap()).unwrap();
    assert_eq!(again.body().kind, "coop.attest");
}
