//! Proofs at scale (issue 16, item 5): an RFC 9162 tree of 10^8 leaves generated straight into
//! a RocksDB store (`Store::generate_tree`: sorted table files ingested at once — the sequencer
//! would take days to write it), then inclusion and consistency proofs read from it exactly as
//! `Log::inclusion_proof` and `Log::consistency_proof` read them (`merkle::span_hashes`, one
//! `multi_get`), each checked against the tree's root. Prints the read time's percentiles.
//!
//! ```sh
//! cargo run --release -p coopledger-ledger --example proofs_at_scale -- generate DIR 100000000
//! sync; echo 3 > /proc/sys/vm/drop_caches      # optional, as root: measure from a cold disk
//! cargo run --release -p coopledger-ledger --example proofs_at_scale -- measure DIR [SAMPLES]
//! ```
//!
//! Leaf `i` is `SHA-256(0x00 ‖ u64 BE i)` (the leaf hash of the 8-byte entry `i`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: any failure should abort loudly"
)]

use coopledger_ledger::hash::leaf_hash;
use coopledger_ledger::merkle::{self, consistency_plan, inclusion_plan};
use coopledger_ledger::store::Store;
use coopledger_ledger::verify::{verify_consistency, verify_inclusion};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: proofs_at_scale generate DIR LEAVES | measure DIR [SAMPLES]";
    let dir = PathBuf::from(args.get(1).expect(usage));
    match args.first().map(String::as_str) {
        Some("generate") => generate(&dir, args.get(2).expect(usage).parse().expect(usage)),
        Some("measure") => measure(
            &dir,
            args.get(2).map_or(10_000, |s| s.parse().expect(usage)),
        ),
        _ => panic!("{usage}"),
    }
}

fn generate(dir: &Path, leaves: u64) {
    let db = dir.join("ledger");
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let store = Store::create(&db, "scale.example/log", "scale.example/log+00000000+none").unwrap();
    let t = Instant::now();
    let size = store
        .generate_tree((0..leaves).map(|i| leaf_hash(&i.to_be_bytes())), &scratch)
        .unwrap();
    let took = t.elapsed();
    drop(store);
    std::fs::remove_dir_all(&scratch).unwrap();
    println!(
        "generated a tree of {size} leaves in {took:.1?}: {} bytes on disk",
        dir_bytes(&db)
    );
}

fn measure(dir: &Path, samples: u64) {
    let t = Instant::now();
    let store = Store::open(&dir.join("ledger")).unwrap();
    let n = store.size().unwrap();
    let root = merkle::root(&store, n).unwrap();
    println!(
        "opened the store and computed the root of {n} leaves in {:.1?}",
        t.elapsed()
    );
    // A fixed sequence of positions spread over the whole tree (xorshift64*).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |below: u64| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    };

    let mut inclusion = Vec::new();
    for _ in 0..samples {
        let i = next(n);
        let t = Instant::now();
        let proof = merkle::span_hashes(&store, &inclusion_plan(i, n)).unwrap();
        inclusion.push(t.elapsed());
        verify_inclusion(&leaf_hash(&i.to_be_bytes()), i, n, &proof, &root).unwrap();
    }
    report("inclusion proof (index in 0..n, tree of n)", &mut inclusion);

    let mut consistency = Vec::new();
    for _ in 0..samples / 10 {
        let m = 1 + next(n - 1);
        let t = Instant::now();
        let proof = merkle::span_hashes(&store, &consistency_plan(m, n)).unwrap();
        consistency.push(t.elapsed());
        let old_root = merkle::root(&store, m).unwrap();
        verify_consistency(m, n, &proof, &old_root, &root).unwrap();
    }
    report("consistency proof (m in 1..n to n)", &mut consistency);
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{what}: {} proofs, each checked; read p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        times.len(),
        pct(0.50),
        pct(0.99),
        times[times.len() - 1]
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
