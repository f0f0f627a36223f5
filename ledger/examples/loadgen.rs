//! Load generator for the log engine: many signers submitting concurrently through the whole
//! pipeline (admission, batched signature checks, sequencing, one fsync per batch, checkpoint,
//! inclusion proof per receipt). Entries are signed before the clock starts: signing is the
//! members' devices' work, not the node's.
//!
//! `cargo run -p coopledger-ledger --example loadgen -- [ENTRIES] [CONCURRENCY] [BATCH] [LINGER_MS]`
//! (LINGER_MS 0, the default, is group commit; 5 was the fixed window before it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: any failure should abort loudly"
)]

use coopledger_ledger::log::{now_ms, LogConfig};
use coopledger_ledger::{
    ApplyContext, ApplyError, Body, Envelope, Log, StateMachine, StateView, Verified,
};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "loadgen.example/log";

/// Accepts every `load.note` v1 entry (the rules' cost is governance's, measured separately).
struct AcceptAll;

impl StateMachine for AcceptAll {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        kind == "load.note" && version == 1
    }
    fn apply(
        &self,
        _: &mut StateView<'_>,
        _: &Verified<Envelope>,
        _: &ApplyContext,
    ) -> Result<(), ApplyError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let entries = *args.first().unwrap_or(&20_000);
    let concurrency = *args.get(1).unwrap_or(&256);
    let batch = *args.get(2).unwrap_or(&1024) as usize;
    let linger = *args.get(3).unwrap_or(&0);

    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        batch_max_entries: batch,
        batch_max_wait: Duration::from_millis(linger),
        ..LogConfig::default()
    };
    let log = Arc::new(
        Log::create(
            dir.path(),
            ORIGIN,
            SigningKey::from_bytes(&[1; 32]),
            AcceptAll,
            cfg,
        )
        .unwrap(),
    );

    // One signer per concurrent client, each submitting its own entries in seq order.
    let t0 = Instant::now();
    let mut streams: Vec<Vec<Envelope>> = Vec::new();
    for c in 0..concurrency {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(c + 1000).to_be_bytes());
        let key = SigningKey::from_bytes(&seed);
        let n = entries / concurrency + u64::from(c < entries % concurrency);
        streams.push(
            (1..=n)
                .map(|seq| {
                    let mut payload = serde_json::Map::new();
                    payload.insert("n".into(), seq.into());
                    Body {
                        coop: ORIGIN.into(),
                        kind: "load.note".into(),
                        version: 1,
                        signer: key.verifying_key().to_bytes(),
                        seq,
                        ts: now_ms(),
                        payload,
                    }
                    .sign(&key)
                    .unwrap()
                })
                .collect(),
        );
    }
    println!(
        "signed {entries} entries in {:.2?} (client side, not measured below)",
        t0.elapsed()
    );

    let start = Instant::now();
    let mut tasks = Vec::new();
    for stream in streams {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(stream.len());
            for env in stream {
                let t = Instant::now();
                log.submit(env).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let size = log.checkpoint().checkpoint.size;
    println!(
        "{entries} entries acknowledged in {secs:.2} s = {:.0} entries/s; latency p50 {:.1?} p99 {:.1?}; concurrency {concurrency}, batch ≤ {batch}, linger {linger} ms; log size {size} (one log.state entry per batch)",
        entries as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}
