//! Never roll back past a signed checkpoint, never sign a fork (DESIGN §11):
//!
//! - a database that lost acknowledged entries (here: an older copy of the folder with the
//!   newer record of signed checkpoints beside it) is refused at start, with the sizes named;
//! - a database whose tree differs from the one the node signed (a fork) is refused;
//! - the corruption table: one byte flipped in each kind of RocksDB file (write-ahead log,
//!   SST, MANIFEST, CURRENT, OPTIONS) of copies of a stopped and of a "killed" (never closed)
//!   data folder. Each trial ends in one of: refused to start, a read error on the damaged
//!   entry, or no effect — never a shorter log, never different entries, never a checkpoint
//!   inconsistent with the one signed. `COOP_CORRUPTION_TRIALS` (default 4 per file kind and
//!   folder) sets the number of flips; the full run's figures are in `docs/format.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_ledger::log::{now_ms, LogConfig, OpenError};
use coopledger_ledger::signed::SignedFile;
use coopledger_ledger::{Body, Hash, Log};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ORIGIN: &str = "rollback.example/log";

mod common;
use common::Notes;

fn node() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn config() -> LogConfig {
    LogConfig {
        batch_max_wait: Duration::from_millis(1),
        ..LogConfig::default()
    }
}

async fn submit(log: &Log<Notes>, key: &SigningKey, seq: u64, text: &str) {
    let env = Body {
        coop: ORIGIN.into(),
        kind: "test.note".into(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts: now_ms(),
        payload: serde_json::json!({ "text": text })
            .as_object()
            .unwrap()
            .clone(),
    }
    .sign(key)
    .unwrap();
    log.submit(env).await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn open(dir: &Path) -> Result<Log<Notes>, OpenError> {
    Log::open(dir, node(), Notes, config())
}

#[tokio::test]
async fn a_database_behind_its_signed_checkpoint_or_forked_from_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (a, old) = (root.path().join("a"), root.path().join("old"));
    let member = SigningKey::from_bytes(&[2; 32]);
    let log = Log::create(&a, ORIGIN, node(), Notes, config()).unwrap();
    for seq in 1..=3 {
        submit(&log, &member, seq, "first").await;
    }
    let early = log.checkpoint().checkpoint.size;
    drop(log);
    copy_dir(&a, &old);
    let log = open(&a).unwrap();
    for seq in 4..=6 {
        submit(&log, &member, seq, "second").await;
    }
    let signed = log.checkpoint().checkpoint.size;
    drop(log);

    // The old database with the newer record beside it: acknowledged entries are missing.
    let behind = root.path().join("behind");
    copy_dir(&old, &behind);
    std::fs::copy(SignedFile::path(&a), SignedFile::path(&behind)).unwrap();
    match open(&behind) {
        Err(OpenError::BehindSigned {
            signed: s,
            durable: d,
        }) => {
            assert_eq!((s, d), (signed, early));
            let msg = OpenError::BehindSigned {
                signed: s,
                durable: d,
            }
            .to_string();
            assert!(msg.contains("Refusing to start"), "{msg}");
            assert!(!msg.contains("another node"), "{msg}");
        }
        other => panic!("expected BehindSigned, got {:?}", other.map(|_| ())),
    }

    // The old database grown with other entries to the same size: a different history.
    let forked = root.path().join("forked");
    copy_dir(&old, &forked);
    let log = open(&forked).unwrap();
    for seq in 4..=6 {
        submit(&log, &member, seq, "other").await;
    }
    assert_eq!(log.checkpoint().checkpoint.size, signed);
    drop(log);
    std::fs::copy(SignedFile::path(&a), SignedFile::path(&forked)).unwrap();
    match open(&forked) {
        Err(OpenError::ForkedFromSigned { size }) => assert_eq!(size, signed),
        other => panic!("expected ForkedFromSigned, got {:?}", other.map(|_| ())),
    }

    // The original folder still opens, and a folder without the record (written before it
    // existed) gets one.
    let log = open(&a).unwrap();
    assert_eq!(log.checkpoint().checkpoint.size, signed);
    drop(log);
    std::fs::remove_file(SignedFile::path(&old)).unwrap();
    drop(open(&old).unwrap());
    assert!(SignedFile::read_latest(&old).unwrap().is_some());
}

#[derive(Debug, Default)]
struct Outcomes {
    refused: u32,
    read_error: u32,
    no_effect: u32,
}

/// What a flipped byte did to the log in `dir`, compared with the `entries` and `root` it had.
fn judge(dir: &Path, entries: &[Vec<u8>], root: Hash, o: &mut Outcomes, what: &str) {
    let log = match open(dir) {
        Err(_) => {
            o.refused += 1;
            return;
        }
        Ok(log) => log,
    };
    let cp = log.checkpoint();
    assert!(
        cp.checkpoint.size >= entries.len() as u64,
        "{what}: opened with {} entries, fewer than the {} signed",
        cp.checkpoint.size,
        entries.len()
    );
    assert_eq!(
        log.root(entries.len() as u64).ok(),
        Some(root),
        "{what}: the tree at the signed size changed"
    );
    let mut failed = false;
    for (i, want) in entries.iter().enumerate() {
        match log.entry(i as u64) {
            Ok(got) => assert_eq!(&got, want, "{what}: entry {i} came back different"),
            Err(_) => failed = true,
        }
    }
    if failed {
        o.read_error += 1;
    } else {
        o.no_effect += 1;
    }
}

#[tokio::test]
async fn a_flipped_byte_in_any_file_is_refused_detected_or_harmless() {
    let trials: usize = std::env::var("COOP_CORRUPTION_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let root = tempfile::tempdir().unwrap();
    let member = SigningKey::from_bytes(&[2; 32]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9162);
    let mut table: BTreeMap<(&str, &str), Outcomes> = BTreeMap::new();
    for mode in ["stopped", "killed"] {
        let dir = root.path().join(mode);
        let log = Log::create(&dir, ORIGIN, node(), Notes, config()).unwrap();
        for seq in 1..=40 {
            submit(
                &log,
                &member,
                seq,
                &format!("note {seq} {}", "x".repeat(seq as usize)),
            )
            .await;
        }
        let size = log.checkpoint().checkpoint.size;
        let root_hash = log.checkpoint().checkpoint.root;
        let entries: Vec<Vec<u8>> = (0..size).map(|i| log.entry(i).unwrap()).collect();
        let pristine = root.path().join(format!("{mode}-pristine"));
        if mode == "stopped" {
            drop(log);
            copy_dir(&dir, &pristine);
        } else {
            // As after SIGKILL: the files as they are while the database is still open.
            copy_dir(&dir, &pristine);
            // A torn tail: the next batch's write cut short by a power cut before its fsync
            // returned (so never acknowledged) must still recover, to the acknowledged size.
            submit(&log, &member, 41, "never acknowledged").await;
            let torn = root.path().join("torn");
            copy_dir(&pristine, &torn);
            let wal = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .max()
                .unwrap();
            let grown = std::fs::read(dir.join(&wal)).unwrap();
            let before = std::fs::metadata(pristine.join(&wal)).map_or(0, |m| m.len() as usize);
            assert!(
                grown.len() > before + 20,
                "the next batch went to the same WAL"
            );
            // Cut inside the new batch's record (its checkpoint's record follows it).
            let cut = before + (grown.len() - before) / 3;
            std::fs::write(torn.join(&wal), &grown[..cut]).unwrap();
            let log2 = open(&torn).expect("a torn tail of an unacknowledged write recovers");
            assert_eq!(log2.checkpoint().checkpoint.size, size, "cut at {cut}");
            assert_eq!(log2.checkpoint().checkpoint.root, root_hash);
            drop(log2);
            std::mem::forget(log);
        }
        let files: Vec<(String, &str)> = std::fs::read_dir(&pristine)
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let kind = if name.ends_with(".log") {
                    "WAL"
                } else if name.ends_with(".sst") {
                    "SST"
                } else if name.starts_with("MANIFEST") {
                    "MANIFEST"
                } else if name == "CURRENT" {
                    "CURRENT"
                } else if name.starts_with("OPTIONS") {
                    "OPTIONS"
                } else {
                    return None;
                };
                Some((name, kind))
            })
            .collect();
        for kind in ["WAL", "SST", "MANIFEST", "CURRENT", "OPTIONS"] {
            let of_kind: Vec<&String> = files
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(n, _)| n)
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            let o = table.entry((mode, kind)).or_default();
            for t in 0..trials {
                let name = of_kind[rng.gen_range(0..of_kind.len())];
                let copy = root.path().join(format!("{mode}-{kind}-{t}"));
                copy_dir(&pristine, &copy);
                let path = copy.join(name);
                let mut bytes = std::fs::read(&path).unwrap();
                if bytes.is_empty() {
                    continue;
                }
                let at = rng.gen_range(0..bytes.len());
                bytes[at] ^= 1 << rng.gen_range(0..8);
                std::fs::write(&path, &bytes).unwrap();
                judge(
                    &copy,
                    &entries,
                    root_hash,
                    o,
                    &format!("{mode} {name} byte {at}"),
                );
                std::fs::remove_dir_all(&copy).unwrap();
            }
        }
    }
    println!("folder    file      refused  read-error  no-effect");
    for ((mode, kind), o) in &table {
        println!(
            "{mode:<9} {kind:<9} {:>7}  {:>10}  {:>9}",
            o.refused, o.read_error, o.no_effect
        );
    }
    // Both folders had a write-ahead log and a MANIFEST to damage.
    assert!(table.contains_key(&("stopped", "WAL")));
    assert!(table.contains_key(&("killed", "MANIFEST")));
}
