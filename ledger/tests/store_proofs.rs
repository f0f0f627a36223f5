//! Property tests over the RocksDB node store: for random tree sizes up to several thousand,
//! every inclusion and consistency proof it serves verifies, and any single-bit change to a
//! proof hash, a root, an index or a size makes verification fail.
//!
//! A note on sizes: RFC 9162 inclusion verification alone does not bind the tree size (a proof
//! for leaf 0 of 8 leaves also "verifies" as leaf 0 of 7 against the same root). The size is
//! bound by the signed checkpoint, which states size and root together. So a size mutation
//! counts as caught when verification fails *or* the log's root at the mutated size differs
//! from the root being verified against — exactly what a checkpoint-bound verifier checks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_ledger::hash::{leaf_hash, Hash};
use coopledger_ledger::merkle::{consistency_plan, inclusion_plan, root, span_hashes, Frontier};
use coopledger_ledger::store::{BatchWrite, Store};
use coopledger_ledger::verify::{verify_consistency, verify_inclusion};
use proptest::prelude::*;
use std::sync::OnceLock;

const STORED: u64 = 16384;
const MAX_SIZE: u64 = 5000;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

/// One store of 16,384 leaves, committed in batches of varying size, shared by all cases.
fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile::TempDir, Store)> = OnceLock::new();
    &STORE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::create(dir.path(), "prop.example/log", "unused").unwrap();
            let mut f = Frontier::new();
            let mut batch = 1u64;
            while f.size() < STORED {
                let mut w = BatchWrite::default();
                for _ in 0..batch.min(STORED - f.size()) {
                    f.push(leaf(f.size()), &mut w.nodes);
                }
                w.new_size = f.size();
                store.commit(&w).unwrap();
                batch = batch * 3 % 97 + 1;
            }
            (dir, store)
        })
        .1
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut b = h.0;
    b[(bit / 8) % 32] ^= 1 << (bit % 8);
    Hash(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_every_bit_flip_fails(
        n in 1..=MAX_SIZE, m_frac in 0.0..1.0f64, bit in 0usize..256, which in any::<prop::sample::Index>(), k in 0u32..13,
    ) {
        let s = store();
        let m = ((n as f64 * m_frac) as u64).min(n - 1);
        let r = root(s, n).unwrap();
        let proof = span_hashes(s, &inclusion_plan(m, n)).unwrap();
        prop_assert!(verify_inclusion(&leaf(m), m, n, &proof, &r).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = which.index(bad.len());
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_inclusion(&leaf(m), m, n, &bad, &r).is_err());
        }
        prop_assert!(verify_inclusion(&leaf(m), m, n, &proof, &flip(&r, bit)).is_err());
        prop_assert!(verify_inclusion(&flip(&leaf(m), bit), m, n, &proof, &r).is_err());
        prop_assert!(verify_inclusion(&leaf(m), m ^ (1 << k), n, &proof, &r).is_err());
        let n2 = n ^ (1 << k);
        if verify_inclusion(&leaf(m), m, n2, &proof, &r).is_ok() {
            prop_assert!(n2 > 0 && root(s, n2).unwrap() != r, "size {n} -> {n2} not caught");
        }
    }

    #[test]
    fn consistency_proofs_verify_and_every_bit_flip_fails(
        n in 2..=MAX_SIZE, m_frac in 0.0..1.0f64, bit in 0usize..256, which in any::<prop::sample::Index>(), k in 0u32..13,
    ) {
        let s = store();
        let m = ((n as f64 * m_frac) as u64).clamp(1, n - 1);
        let (r1, r2) = (root(s, m).unwrap(), root(s, n).unwrap());
        let proof = span_hashes(s, &consistency_plan(m, n)).unwrap();
        prop_assert!(verify_consistency(m, n, &proof, &r1, &r2).is_ok());
        let mut bad = proof.clone();
        let i = which.index(bad.len());
        bad[i] = flip(&bad[i], bit);
        prop_assert!(verify_consistency(m, n, &bad, &r1, &r2).is_err());
        prop_assert!(verify_consistency(m, n, &proof, &flip(&r1, bit), &r2).is_err());
        prop_assert!(verify_consistency(m, n, &proof, &r1, &flip(&r2, bit)).is_err());
        for (m2, n2) in [(m ^ (1 << k), n), (m, n ^ (1 << k))] {
            if verify_consistency(m2, n2, &proof, &r1, &r2).is_ok() {
                let caught = m2 == 0 || n2 == 0
                    || root(s, m2).unwrap() != r1 || root(s, n2).unwrap() != r2;
                prop_assert!(caught, "sizes {m}->{n} mutated to {m2}->{n2} not caught");
            }
        }
    }
}

#[test]
fn store_and_memory_tree_agree_on_every_root() {
    let s = store();
    let mut t = coopledger_ledger::merkle::MemoryTree::new();
    for i in 0..STORED {
        t.push(leaf(i));
        if i % 97 == 0 || i + 1 == STORED {
            assert_eq!(root(s, i + 1).unwrap(), t.root(), "size {}", i + 1);
        }
    }
    assert!(Frontier::load(s, STORED).unwrap().root() == t.root());
}
