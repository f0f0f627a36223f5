//! Criterion benchmarks of the ingest ceiling's parts: signature verdicts (single vs batched),
//! entries parsed (as submitted and as stored), tree appends, and proofs served from RocksDB.
//! Run: `cargo bench -p coopledger-ledger`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_ledger::hash::leaf_hash;
use coopledger_ledger::merkle::{inclusion_plan, span_hashes, Frontier};
use coopledger_ledger::sig::{verify_many, verify_one, SignedMessage};
use coopledger_ledger::store::{BatchWrite, Store};
use coopledger_ledger::{Body, Envelope};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};

fn signatures(c: &mut Criterion) {
    let n = 256usize;
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("entry body {i}").into_bytes())
        .collect();
    let pubs: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let sigs: Vec<[u8; 64]> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| k.sign(m).to_bytes())
        .collect();
    let items: Vec<SignedMessage<'_>> = (0..n)
        .map(|i| SignedMessage {
            key: &pubs[i],
            msg: &msgs[i],
            sig: &sigs[i],
        })
        .collect();
    let mut g = c.benchmark_group("signatures");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("verify_one x256", |b| {
        b.iter(|| items.iter().filter(|m| verify_one(m)).count())
    });
    g.bench_function("verify_many 256", |b| b.iter(|| verify_many(&items)));
    // Reference point on the same machine: ed25519-dalek's own checks.
    let vks: Vec<ed25519_dalek::VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
    let dsigs: Vec<ed25519_dalek::Signature> = sigs
        .iter()
        .map(ed25519_dalek::Signature::from_bytes)
        .collect();
    g.bench_function("dalek verify_strict x256", |b| {
        b.iter(|| {
            (0..n)
                .filter(|&i| vks[i].verify_strict(&msgs[i], &dsigs[i]).is_ok())
                .count()
        })
    });
    let mrefs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    g.bench_function("dalek verify_batch 256", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&mrefs, &dsigs, &vks).is_ok())
    });
    g.finish();
}

fn tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("frontier append 1024 leaves", |b| {
        b.iter_batched(
            Frontier::new,
            |mut f| {
                let mut created = Vec::with_capacity(2048);
                for i in 0u64..1024 {
                    f.push(leaf_hash(&i.to_be_bytes()), &mut created);
                }
                f.root()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        Store::create(dir.path(), "bench.example/log", "unused").unwrap_or_else(|e| panic!("{e}"));
    let mut f = Frontier::new();
    let size = 1u64 << 20;
    while f.size() < size {
        let mut w = BatchWrite::default();
        for _ in 0..4096 {
            f.push(leaf_hash(&f.size().to_be_bytes()), &mut w.nodes);
        }
        w.new_size = f.size();
        store.commit(&w).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut i = 0u64;
    c.bench_function("inclusion proof from RocksDB, tree of 2^20", |b| {
        b.iter(|| {
            i = (i * 7919 + 13) % size;
            span_hashes(&store, &inclusion_plan(i, size - 3))
        })
    });
}

/// Parsing entries like the benchmark's `coop.attest` ones (~340 bytes): as a member submits
/// them (a JSON value) and as a follower or an audit reads them (stored canonical bytes).
fn entries(c: &mut Criterion) {
    let n = 256u64;
    let envs: Vec<Envelope> = (0..n)
        .map(|i| {
            let key = SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]);
            let payload = serde_json::json!({
                "claim": format!("trip data batch {i} delivered to the city, 1,024 rows"),
                "digest": format!("{:064x}", i * 7919),
            });
            Body {
                coop: "bench.example/coop".into(),
                kind: "coop.attest".into(),
                version: 1,
                signer: key.verifying_key().to_bytes(),
                seq: i + 1,
                ts: 1_800_000_000_000 + i,
                payload: payload.as_object().cloned().unwrap_or_default(),
            }
            .sign(&key)
            .unwrap()
        })
        .collect();
    let values: Vec<serde_json::Value> = envs.iter().map(Envelope::to_value).collect();
    let mut g = c.benchmark_group("entries");
    g.throughput(Throughput::Elements(n));
    g.bench_function("from_value x256 (submitted)", |b| {
        b.iter(|| {
            for v in &values {
                Envelope::from_value(v).unwrap();
            }
        })
    });
    g.bench_function("from_bytes x256 (stored)", |b| {
        b.iter(|| {
            for e in &envs {
                Envelope::from_bytes(e.bytes()).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, signatures, entries, tree);
criterion_main!(benches);
