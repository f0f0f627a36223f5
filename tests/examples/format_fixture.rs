//! Writes the data-folder fixture that `tests/tests/format_fixture.rs` opens: a small co-op
//! (genesis, an attestation, a proposal with votes and its tally, parties, a notice, a consent
//! and a data use) in the current on-disk format, plus `manifest.json` with what a reader must
//! find in it. Run once per format version, and commit the result:
//!
//! ```sh
//! cargo run -p coopledger-e2e --example format_fixture -- tests/fixtures/data-v2
//! ```
//!
//! The node key and every member key are fixed test keys (seeds 1, 2, 3, …): the fixture holds
//! no secret of any real co-op.

use anyhow::{anyhow, bail, Result};
use coopledger_e2e::sign;
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::rules::tally_entry_payload;
use coopledger_governance::{member_id, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{LogConfig, OwnEntry};
use coopledger_node::{folder, keyfile};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

const ORIGIN: &str = "fixture.example.coop/ledger";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or_else(|| anyhow!("usage: format_fixture DIR"))?,
    );
    if dir.exists() {
        bail!("{} exists; remove it first", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    keyfile::write(&folder::node_key_path(&dir), &key(1))?;
    let mut bylaws = Bylaws::single_class();
    for d in bylaws.decisions.values_mut() {
        d.min_duration_ms = 1_000;
    }
    let founders = [(2u8, Role::Board), (3, Role::Treasurer)]
        .into_iter()
        .map(|(n, r)| Founder {
            key: key(n).verifying_key().to_bytes(),
            class: "members".into(),
            roles: vec![r],
        })
        .chain([Founder {
            key: key(4).verifying_key().to_bytes(),
            class: "members".into(),
            roles: vec![],
        }])
        .collect();
    folder::create(&dir, ORIGIN, |node| Genesis {
        name: "Fixture Drivers' Co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws,
    })
    .await?;
    let (log, _) = folder::open(&dir, LogConfig::default())?;
    let mut seq = std::collections::HashMap::new();
    let mut submit = |n: u8, kind: &str, payload: Value| {
        let s = seq.entry(n).or_insert(0u64);
        *s += 1;
        sign(&key(n), ORIGIN, kind, *s, coopledger_e2e::now_ms(), payload)
    };
    let m = |n: u8| member_id(&key(n).verifying_key().to_bytes());
    log.submit(submit(
        2,
        "coop.attest",
        json!({"digest": b64_encode(Sha256::digest(b"minutes")), "kind": "minutes"}),
    )?)
    .await?;
    let now = coopledger_e2e::now_ms();
    let proposal = log
        .submit(submit(
            2,
            "gov.propose",
            json!({"kind": "ordinary", "title": "Share trip data with the city",
                   "method": "yes_no", "opensMs": now, "closesMs": now + 1_500}),
        )?)
        .await?;
    let pid = {
        let env = coopledger_ledger::Envelope::from_bytes(&log.entry(proposal.index)?)?;
        *env.entry_id().as_bytes()
    };
    for (n, v) in [(3, "yes"), (4, "yes"), (2, "no")] {
        log.submit(submit(
            n,
            "gov.vote",
            json!({"proposal": hex::encode(pid), "member": m(n), "vote": v}),
        )?)
        .await?;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    log.settle().await?;
    let tally = tally_entry_payload(&log, &pid)?.ok_or_else(|| anyhow!("nothing to tally"))?;
    log.submit_own(OwnEntry {
        kind: "gov.tally".into(),
        version: 1,
        payload: tally,
    })
    .await?;
    for (party, kind, k) in [
        ("drivers_coop", "controller", Some(20u8)),
        ("city", "recipient", None),
    ] {
        let mut p = serde_json::Map::new();
        for (f, v) in [
            ("party", party),
            ("kind", kind),
            ("name", party),
            ("jurisdiction", "EU"),
        ] {
            p.insert(f.into(), json!(v));
        }
        if let Some(k) = k {
            p.insert(
                "key".into(),
                json!(b64_encode(key(k).verifying_key().to_bytes())),
            );
        }
        let p = Value::Object(p);
        log.submit(submit(2, "party.register", p)?).await?;
    }
    log.submit(submit(
        20,
        "consent.notice",
        json!({"notice": "trips", "version": 1, "controller": "drivers_coop",
               "purposes": ["dpv:ServiceOptimisation"], "dataCategories": ["pd:Location"],
               "operations": ["dpv:Share"], "recipients": ["city"],
               "retentionMs": 365u64 * 86_400_000, "jurisdiction": "EU",
               "lawfulBasis": "dpv:Consent",
               "textDigest": b64_encode(Sha256::digest(b"We share trips ...")),
               "language": "en", "specialCategory": false}),
    )?)
    .await?;
    let now = coopledger_e2e::now_ms();
    let grant = log
        .submit(submit(
            4,
            "consent.grant",
            json!({"member": m(4), "notice": "trips", "version": 1,
                   "purposes": ["dpv:ServiceOptimisation"], "recipients": ["city"],
                   "dataCategories": ["pd:Location"], "fromMs": now,
                   "untilMs": now + 30 * 86_400_000}),
        )?)
        .await?;
    log.submit(submit(
        20,
        "data.use",
        json!({"kind": "sale", "recipient": "city", "purpose": "dpv:ServiceOptimisation",
               "dataCategories": ["pd:Location"], "consents": [hex::encode(grant.entry_id.as_bytes())]}),
    )?)
    .await?;
    let cp = log.checkpoint();
    let size = cp.checkpoint.size;
    let state = log.state_commitment(size)?;
    let manifest = json!({
        "format": 2,
        "origin": ORIGIN,
        "vkey": log.verifier_key(),
        "size": size,
        "root": cp.checkpoint.root.to_base64(),
        "stateRoot": state.root.to_base64(),
        "proposal": hex::encode(pid),
        "members": [m(2), m(3), m(4)],
    });
    drop(log);
    // RocksDB's informational logs are not part of the format.
    for f in std::fs::read_dir(folder::ledger_dir(&dir))? {
        let f = f?;
        let name = f.file_name().to_string_lossy().into_owned();
        if name == "LOG" || name.starts_with("LOG.old") {
            std::fs::remove_file(f.path())?;
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    println!("wrote {} (size {size})", dir.display());
    Ok(())
}
