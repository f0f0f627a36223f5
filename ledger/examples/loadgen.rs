//! Load generator for the log engine: many signers submitting concurrently through the whole
//! pipeline (admission, batched signature checks, sequencing, one fsync per batch, checkpoint,
//! inclusion proof per receipt). Entries are signed before the clock starts: signing is the
//! members' devices' work, not the node's.
//!
//! `cargo run -p coopledger-ledger --example loadgen -- [ENTRIES] [CONCURRENCY] [BATCH] [LINGER_MS]`
//! (LINGER_MS 0, the default, is group commit; 5 was the fixed window before it).
//!
//! Afterwards the log is closed and opened again, and the restart timed (the scale figure
//! "restart at 10^7 entries": `loadgen -- 10000000 256`). `LOADGEN_DIR=DIR` writes the log
//! there instead of a temporary folder, and keeps it; `LOADGEN_DIR=DIR loadgen 0` then only
//! times another restart of it.

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

    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("LOADGEN_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let cfg = LogConfig {
        batch_max_entries: batch,
        batch_max_wait: Duration::from_millis(linger),
        ..LogConfig::default()
    };
    if entries == 0 {
        // `LOADGEN_DIR=DIR loadgen 0`: only time a restart of the log kept there.
        restart(&dir, cfg);
        return;
    }
    let log = Arc::new(
        Log::create(
            &dir,
            ORIGIN,
            SigningKey::from_bytes(&[1; 32]),
            AcceptAll,
            cfg.clone(),
        )
        .unwrap(),
    );

    // One signer per concurrent client, each submitting its own entries in seq order. Up to
    // LIVE_ABOVE entries are signed before the clock starts; a larger run (the 10^7 restart
    // figure) would not fit in memory signed, so its clients sign each entry as they go, and
    // its throughput and latency include that signing.
    const LIVE_ABOVE: u64 = 1_000_000;
    let live = entries > LIVE_ABOVE;
    let signed = |key: &SigningKey, seq: u64| {
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
        .sign(key)
        .unwrap()
    };
    let t0 = Instant::now();
    let mut clients: Vec<(SigningKey, u64, Vec<Envelope>)> = Vec::new();
    for c in 0..concurrency {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(c + 1000).to_be_bytes());
        let key = SigningKey::from_bytes(&seed);
        let n = entries / concurrency + u64::from(c < entries % concurrency);
        let stream = if live {
            Vec::new()
        } else {
            (1..=n).map(|seq| signed(&key, seq)).collect()
        };
        clients.push((key, n, stream));
    }
    if live {
        println!("{entries} entries: each client signs as it submits (included below)");
    } else {
        println!(
            "signed {entries} entries in {:.2?} (client side, not measured below)",
            t0.elapsed()
        );
    }

    let start = Instant::now();
    let mut tasks = Vec::new();
    for (key, n, stream) in clients {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n as usize);
            let mut stream = stream.into_iter();
            for seq in 1..=n {
                let env = if live {
                    signed(&key, seq)
                } else {
                    stream.next().unwrap()
                };
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

    // Restart: close (every thread joined, the database closed), then open and serve a proof.
    let cp = log.checkpoint();
    drop(log);
    let reopened = restart(&dir, cfg);
    assert_eq!(reopened, cp.checkpoint, "the same checkpoint after restart");
}

/// Opens the log in `dir`, serves an inclusion proof from the middle of its tree, and prints
/// how long that took; returns the checkpoint it serves.
fn restart(dir: &std::path::Path, cfg: LogConfig) -> coopledger_ledger::Checkpoint {
    let t = Instant::now();
    let log = Log::open(dir, SigningKey::from_bytes(&[1; 32]), AcceptAll, cfg).unwrap();
    let opened = t.elapsed();
    let size = log.checkpoint().checkpoint.size;
    let proof = log.inclusion_proof(size / 2, size).unwrap();
    println!(
        "restart: opened a log of {size} entries in {opened:.1?}; first inclusion proof ({} hashes) {:.1?} after the open began; COOP-SIGNED holds {} bytes",
        proof.len(),
        t.elapsed(),
        std::fs::metadata(dir.join("COOP-SIGNED")).map_or(0, |m| m.len()),
    );
    log.checkpoint().checkpoint.clone()
}
