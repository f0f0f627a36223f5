//! The consent bundle at scale (issue 16, item 5): one member with `EVENTS` consent events
//! (grants, and the data uses citing them, one each), written through the node's own engine and
//! rules into a RocksDB data folder; then the regulator bundle is assembled as the node does for
//! `consent_bundle`, and verified offline as `coop verify` and the portal do (parse the file,
//! check every signature, proof and the history). Prints the time of each step.
//!
//! ```sh
//! cargo run --release -p coopledger-e2e --example consent_scale -- 10000 [DIR]
//! ```

#![allow(
    clippy::indexing_slicing,
    reason = "a measuring tool: fixed JSON shapes and five timings it made itself"
)]

use anyhow::{anyhow, bail, Context, Result};
use coopledger_e2e::{now_ms, sign};
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::consent_bundle::ConsentBundle;
use coopledger_governance::{member_id, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{LogConfig, NoteVerifier};
use coopledger_node::{folder, keyfile};
use ed25519_dalek::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

const ORIGIN: &str = "scale.example.coop/ledger";
const BOARD: u8 = 2;
const MEMBER: u8 = 3;
const CONTROLLER: u8 = 20;
/// Entries handed to the log at once (grants and uses of one member interleaved, in order).
const CHUNK: usize = 500;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .ok_or_else(|| anyhow!("usage: consent_scale EVENTS [DIR]"))?
        .parse()
        .context("EVENTS must be a whole number")?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().join("data"), PathBuf::from);
    if dir.exists() {
        bail!("{} exists; remove it first", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    keyfile::write(&folder::node_key_path(&dir), &key(1))?;
    let founders = [(BOARD, vec![Role::Board]), (MEMBER, vec![])]
        .into_iter()
        .map(|(n, roles)| Founder {
            key: key(n).verifying_key().to_bytes(),
            class: "members".into(),
            roles,
        })
        .collect();
    folder::create(&dir, ORIGIN, |node| Genesis {
        name: "Scale Health Co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws: Bylaws::single_class(),
    })
    .await?;
    let (log, _) = folder::open(&dir, LogConfig::default())?;
    let mut seqs: HashMap<u8, u64> = HashMap::new();
    let mut signed = |n: u8, kind: &str, payload: serde_json::Value| {
        let s = seqs.entry(n).or_insert(0);
        *s += 1;
        sign(&key(n), ORIGIN, kind, *s, now_ms(), payload)
    };
    for (party, kind, k) in [
        ("health_coop", "controller", Some(CONTROLLER)),
        ("research_institute", "recipient", None),
    ] {
        let mut p = json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"});
        if let Some(k) = k {
            p["key"] = json!(b64_encode(key(k).verifying_key().to_bytes()));
        }
        log.submit(signed(BOARD, "party.register", p)?).await?;
    }
    log.submit(signed(
        CONTROLLER,
        "consent.notice",
        json!({"notice": "health", "version": 1, "controller": "health_coop",
               "purposes": ["dpv:ScientificResearch"], "dataCategories": ["pd:Dietary"],
               "operations": ["dpv:Share"], "recipients": ["research_institute"],
               "retentionMs": 365u64 * 86_400_000, "jurisdiction": "EU",
               "lawfulBasis": "dpv:Consent",
               "textDigest": b64_encode(Sha256::digest(b"We share your diet records ...")),
               "language": "en", "specialCategory": false}),
    )?)
    .await?;

    // Each pair: the member grants, the controller uses that grant (two timeline events).
    let member = member_id(&key(MEMBER).verifying_key().to_bytes());
    let started = Instant::now();
    let mut written = 0usize;
    let mut lap = Instant::now();
    while written < events {
        let mut grants = Vec::new();
        let now = now_ms();
        let pairs = (CHUNK / 2).min((events - written).div_ceil(2));
        for _ in 0..pairs {
            grants.push(signed(
                MEMBER,
                "consent.grant",
                json!({"member": member, "notice": "health", "version": 1,
                       "purposes": ["dpv:ScientificResearch"],
                       "recipients": ["research_institute"], "dataCategories": ["pd:Dietary"],
                       "fromMs": now - 1_000, "untilMs": now + 86_400_000}),
            )?);
        }
        let mut chunk = Vec::new();
        for g in grants {
            let id = hex::encode(g.entry_id().as_bytes());
            chunk.push(g);
            chunk.push(signed(
                CONTROLLER,
                "data.use",
                json!({"kind": "release", "recipient": "research_institute",
                       "purpose": "dpv:ScientificResearch", "dataCategories": ["pd:Dietary"],
                       "consents": [id]}),
            )?);
        }
        chunk.truncate(events - written);
        let n = chunk.len();
        for (i, r) in log.submit_many(chunk).await.into_iter().enumerate() {
            r.with_context(|| format!("event {} refused", written + i))?;
        }
        written += n;
        if written.is_multiple_of(2_000) || written == events {
            println!(
                "{written:>7} events  last 2,000 in {:>8.1} ms",
                lap.elapsed().as_secs_f64() * 1e3
            );
            lap = Instant::now();
        }
    }
    let writing = started.elapsed();
    log.settle().await?;

    let t = Instant::now();
    let bundle = coopledger_rpc::consent::assemble_bundle(&log, &member, None)
        .map_err(|e| anyhow!("assembling the bundle: {}", e.message()))?;
    let assembling = t.elapsed();
    let text = serde_json::to_string(&bundle)?;
    let vkey = log.verifier_key();
    drop(log);

    // Offline, as `coop verify` does: from the file's text and the log's verifier key alone.
    let verifier = NoteVerifier::parse(&vkey)?;
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..5 {
        let t = Instant::now();
        let parsed: ConsentBundle = serde_json::from_str(&text)?;
        report = Some(parsed.verify(&verifier)?);
        times.push(t.elapsed());
    }
    times.sort();
    let report = report.ok_or_else(|| anyhow!("no verification ran"))?;
    if report.history.len() != events {
        bail!(
            "the bundle shows {} events, not {events}",
            report.history.len()
        );
    }
    let bytes_on_disk = dir_bytes(&dir)?;
    println!("events                {events}");
    println!(
        "writing               {:.1} s ({:.0} events/s)",
        writing.as_secs_f64(),
        events as f64 / writing.as_secs_f64()
    );
    println!(
        "assembling the bundle {:.0} ms",
        assembling.as_secs_f64() * 1e3
    );
    println!("bundle file           {} bytes", text.len());
    println!(
        "verifying offline     median {:.0} ms, slowest {:.0} ms of 5 (parse + every check)",
        times[2].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3
    );
    println!("data folder           {bytes_on_disk} bytes");
    Ok(())
}

fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        total += if m.is_dir() {
            dir_bytes(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(total)
}
