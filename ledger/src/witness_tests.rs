//! Witness protocol tests: the C2SP tlog-witness status codes, persistence before answering,
//! and split views kept as evidence.

use super::*;
use crate::cosignature::{cosignatures, WitnessKey};
use crate::hash::leaf_hash;
use crate::merkle::{consistency_plan, span_hashes, MemoryTree};
use crate::note::{Checkpoint, NoteSigner};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;

#[derive(Default)]
struct MemoryWitnessStore {
    latest: Mutex<HashMap<String, Witnessed>>,
    evidence: Mutex<Vec<SplitViewEvidence>>,
}

impl WitnessStore for MemoryWitnessStore {
    fn latest(&self, origin: &str) -> Result<Option<Witnessed>, WitnessStoreError> {
        Ok(self
            .latest
            .lock()
            .map_err(|_| WitnessStoreError::Poisoned)?
            .get(origin)
            .cloned())
    }
    fn save(&self, origin: &str, w: &Witnessed) -> Result<(), WitnessStoreError> {
        self.latest
            .lock()
            .map_err(|_| WitnessStoreError::Poisoned)?
            .insert(origin.to_owned(), w.clone());
        Ok(())
    }
    fn keep_evidence(&self, e: &SplitViewEvidence) -> Result<(), WitnessStoreError> {
        self.evidence
            .lock()
            .map_err(|_| WitnessStoreError::Poisoned)?
            .push(e.clone());
        Ok(())
    }
}

const ORIGIN: &str = "drivers.example.coop/ledger";

struct Log {
    signer: NoteSigner,
    tree: MemoryTree,
}

impl Log {
    fn new(seed: u8) -> Log {
        Log {
            signer: NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).unwrap(),
            tree: MemoryTree::new(),
        }
    }
    fn grow(&mut self, n: u64, tag: &str) {
        for i in 0..n {
            self.tree.push(leaf_hash(format!("{tag}{i}").as_bytes()));
        }
    }
    fn note(&self) -> String {
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: vec![],
        };
        self.signer.sign(&cp.to_text()).unwrap()
    }
    fn request(&self, old: u64) -> Vec<u8> {
        let proof = if old == 0 {
            vec![]
        } else {
            span_hashes(&self.tree, &consistency_plan(old, self.tree.size())).unwrap()
        };
        AddCheckpoint {
            old_size: old,
            proof,
            note: self.note(),
        }
        .to_body()
        .into_bytes()
    }
}

fn witness(log: &Log) -> Witness<MemoryWitnessStore> {
    let cosigner = Cosigner::new(
        "witness.health.example.coop",
        SigningKey::from_bytes(&[7; 32]),
    )
    .unwrap();
    Witness::new(
        cosigner,
        vec![log.signer.verifier()],
        MemoryWitnessStore::default(),
    )
}

#[test]
fn a_witness_cosigns_consistent_growth_and_answers_with_the_protocols_codes() {
    let mut log = Log::new(1);
    log.grow(5, "a");
    let w = witness(&log);
    let wkey = WitnessKey::parse(&w.vkey()).unwrap();

    // First contact: old 0, empty proof.
    let line = w.add_checkpoint(&log.request(0), 1_800_000_000).unwrap();
    let cosigned = SignedNote::parse(format!("{}{line}", log.note()).as_bytes()).unwrap();
    let got = cosignatures(&cosigned, std::slice::from_ref(&wkey)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, 1_800_000_000);
    // Persisted before answering.
    assert_eq!(w.store().latest(ORIGIN).unwrap().map(|l| l.size), Some(5));

    // Growth with a valid proof from the cosigned size.
    log.grow(7, "b");
    assert!(w.add_checkpoint(&log.request(5), 1_800_000_010).is_ok());
    // A stale old size: 409 with the known size, no evidence.
    log.grow(1, "c");
    let err = w
        .add_checkpoint(&log.request(5), 1_800_000_020)
        .unwrap_err();
    assert_eq!(
        err,
        WitnessRefusal::Conflict {
            known_size: 12,
            split_view: false
        }
    );
    assert_eq!(err.status(), 409);
    // Old size above the checkpoint: 400. A bad proof: 422. Unknown log: 404.
    let mut body = log.request(12);
    let text = String::from_utf8(body.clone())
        .unwrap()
        .replacen("old 12", "old 99", 1);
    assert_eq!(
        w.add_checkpoint(text.as_bytes(), 0).unwrap_err().status(),
        400
    );
    let req = AddCheckpoint::parse(&body).unwrap();
    let mut bad = req.clone();
    bad.proof[0].0[0] ^= 1;
    assert_eq!(
        w.add_checkpoint(bad.to_body().as_bytes(), 0)
            .unwrap_err()
            .status(),
        422
    );
    let stranger = Log {
        signer: NoteSigner::new("elsewhere.example/log", SigningKey::from_bytes(&[3; 32])).unwrap(),
        tree: log.tree.clone(),
    };
    let foreign = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        note: stranger
            .signer
            .sign(
                &Checkpoint {
                    origin: "elsewhere.example/log".into(),
                    size: 13,
                    root: log.tree.root(),
                    extensions: vec![],
                }
                .to_text(),
            )
            .unwrap(),
    };
    assert_eq!(
        w.add_checkpoint(foreign.to_body().as_bytes(), 0)
            .unwrap_err()
            .status(),
        404
    );
    // The right origin signed by another key: 403.
    let impostor = Log {
        signer: NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[4; 32])).unwrap(),
        tree: log.tree.clone(),
    };
    assert_eq!(
        w.add_checkpoint(&impostor.request(12), 0)
            .unwrap_err()
            .status(),
        403
    );
    // Malformed bodies: 400.
    for b in [
        &b"old 012\n\nx"[..],
        b"new 1\n\n",
        b"old 1\nnot-base64\n\nx",
    ] {
        assert_eq!(w.add_checkpoint(b, 0).unwrap_err().status(), 400);
    }
    // Still fine afterwards.
    body = log.request(12);
    assert!(w.add_checkpoint(&body, 1_800_000_030).is_ok());
    assert!(
        w.store().evidence.lock().unwrap().len() == 1,
        "only the bad proof was evidence"
    );
}

#[test]
fn a_forked_log_is_refused_and_both_signed_views_are_kept() {
    let mut log = Log::new(1);
    log.grow(8, "a");
    let w = witness(&log);
    w.add_checkpoint(&log.request(0), 100).unwrap();
    // The operator forks: the same size with other entries, validly signed.
    let mut fork = Log::new(1);
    fork.grow(8, "z");
    let err = w.add_checkpoint(&fork.request(8), 101).unwrap_err();
    assert_eq!(
        err,
        WitnessRefusal::Conflict {
            known_size: 8,
            split_view: true
        }
    );
    // And a longer fork with a proof from the cosigned size that cannot verify.
    fork.grow(4, "y");
    assert_eq!(
        w.add_checkpoint(&fork.request(8), 102)
            .unwrap_err()
            .status(),
        422
    );
    let ev = w.store().evidence.lock().unwrap().clone();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].cosigned, log.note());
    assert_eq!(ev[0].reason, "same size, other root");
    assert_eq!(ev[1].reason, "no valid consistency proof");
    // Both notes in the evidence verify under the log's key: proof the log signed both.
    for e in &ev {
        for n in [&e.cosigned, &e.presented] {
            SignedCheckpoint::open(n, &log.signer.verifier()).unwrap();
        }
    }
    // The witness's view did not move.
    assert_eq!(w.store().latest(ORIGIN).unwrap().unwrap().note, log.note());
}
