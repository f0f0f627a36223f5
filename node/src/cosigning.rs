//! The log side of witnessing: after each new checkpoint, ask every configured witness to
//! cosign it (C2SP tlog-witness `add-checkpoint`, with the log's own consistency proof from the
//! size that witness last cosigned), and keep the cosignatures beside the checkpoint so the node
//! can serve the cosigned note. Runs off the ingest path: a slow or absent witness never delays
//! a receipt.
//!
//! Off-log keys: `cosig/<u64 BE size>` → the checkpoint note with every cosignature line
//! collected for it; `cosig-latest` → the largest such size (u64 BE).

use crate::http::HttpClient;
use coopledger_governance::CoopRules;
use coopledger_ledger::cosignature::{cosignatures, WitnessKey};
use coopledger_ledger::note::SignedNote;
use coopledger_ledger::witness::AddCheckpoint;
use coopledger_ledger::{Log, SignedCheckpoint};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A witness this log asks: where, and whose key must sign.
#[derive(Debug, Clone)]
pub struct WitnessPeer {
    /// `http://host:port` (the `add-checkpoint` path is appended).
    pub url: String,
    /// The witness's key.
    pub key: WitnessKey,
}

impl WitnessPeer {
    /// Parses `URL,VKEY`.
    pub fn parse(spec: &str) -> Result<WitnessPeer, String> {
        let (url, vkey) = spec
            .split_once(',')
            .ok_or_else(|| format!("{spec:?}: expected URL,VKEY"))?;
        if !url.starts_with("http://") {
            return Err(format!("{url:?}: only http:// witnesses are supported"));
        }
        let key = WitnessKey::parse(vkey).map_err(|e| format!("{vkey:?}: {e}"))?;
        Ok(WitnessPeer {
            url: url.trim_end_matches('/').to_owned(),
            key,
        })
    }
}

fn cosig_key(size: u64) -> Vec<u8> {
    [b"cosig/".as_slice(), &size.to_be_bytes()].concat()
}

/// The note of the checkpoint of `size` with the cosignatures collected for it, if any.
pub fn cosigned_note(log: &Log<CoopRules>, size: u64) -> Result<Option<String>, String> {
    log.offlog_get(&cosig_key(size))
        .map_err(|e| e.to_string())?
        .map(|v| String::from_utf8(v).map_err(|e| e.to_string()))
        .transpose()
}

/// Asks `peer` to cosign `cp`; `known` is the size it last cosigned (learned from a 409).
/// Returns the verified cosignature line and the new known size.
async fn ask(
    http: &HttpClient,
    log: &Log<CoopRules>,
    peer: &WitnessPeer,
    cp: &SignedCheckpoint,
    known: &mut u64,
) -> Result<String, String> {
    let size = cp.checkpoint.size;
    for _ in 0..2 {
        let proof = if *known == 0 || *known == size {
            vec![]
        } else {
            log.consistency_proof(*known, size)
                .map_err(|e| e.to_string())?
        };
        let req = AddCheckpoint {
            old_size: *known,
            proof,
            note: cp.note.clone(),
        };
        let url = format!("{}/add-checkpoint", peer.url);
        let (status, body) = http
            .post(&url, "text/plain", req.to_body().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let body = String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())?;
        match status {
            200 => {
                let note = SignedNote::parse(format!("{}{body}", cp.note).as_bytes())
                    .map_err(|e| e.to_string())?;
                let got = cosignatures(&note, std::slice::from_ref(&peer.key))
                    .map_err(|e| e.to_string())?;
                if got.is_empty() {
                    return Err("the answer holds no cosignature by the witness's key".into());
                }
                *known = size;
                // Keep only the witness's own line(s).
                let prefix = format!("\u{2014} {} ", peer.key.name());
                return Ok(body
                    .lines()
                    .filter(|l| l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect());
            }
            409 => {
                let k: u64 = body
                    .trim()
                    .parse()
                    .map_err(|_| format!("409 without a size: {body:?}"))?;
                if k > size {
                    return Err(format!(
                        "the witness has cosigned size {k}, beyond ours ({size})"
                    ));
                }
                if k == *known {
                    return Err(format!("409 at size {k}: the witness holds another view"));
                }
                *known = k;
            }
            other => return Err(format!("HTTP {other}: {}", body.trim())),
        }
    }
    Err("the witness's size kept changing".into())
}

/// Adds `lines` to the stored cosigned note of `cp` (creating it), once per witness name.
fn keep(log: &Log<CoopRules>, cp: &SignedCheckpoint, lines: &str) -> Result<(), String> {
    let size = cp.checkpoint.size;
    let mut note = cosigned_note(log, size)?.unwrap_or_else(|| cp.note.clone());
    for l in lines.lines() {
        let name = l.split(' ').nth(1).unwrap_or_default();
        if !note.lines().any(|x| x.split(' ').nth(1) == Some(name)) {
            note.push_str(l);
            note.push('\n');
        }
    }
    log.offlog_put(&cosig_key(size), note.as_bytes())
        .map_err(|e| e.to_string())?;
    if latest_cosigned_size(log)?.is_none_or(|s| s < size) {
        log.offlog_put(LATEST_KEY, &size.to_be_bytes())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

const LATEST_KEY: &[u8] = b"cosig-latest";

/// The largest checkpoint size with any cosignature.
pub fn latest_cosigned_size(log: &Log<CoopRules>) -> Result<Option<u64>, String> {
    Ok(log
        .offlog_get(LATEST_KEY)
        .map_err(|e| e.to_string())?
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map(u64::from_be_bytes))
}

/// Runs forever: on each new checkpoint (and once at start), asks every witness, with
/// backoff on failure; a later checkpoint supersedes an unanswered one.
pub async fn run(log: Arc<Log<CoopRules>>, peers: Vec<WitnessPeer>) {
    if peers.is_empty() {
        return;
    }
    let http = HttpClient::new(Duration::from_secs(10));
    let mut known: HashMap<String, u64> = HashMap::new();
    let mut checkpoints = log.subscribe();
    let mut backoff = Duration::from_millis(200);
    loop {
        let cp = log.checkpoint();
        let mut failed = false;
        for peer in &peers {
            let k = known.entry(peer.url.clone()).or_insert(0);
            if *k == cp.checkpoint.size && cosigned_note(&log, *k).ok().flatten().is_some() {
                continue;
            }
            match ask(&http, &log, peer, &cp, k).await {
                Ok(lines) => {
                    if let Err(e) = keep(&log, &cp, &lines) {
                        tracing::error!(error = %e, "cannot store a cosignature");
                    }
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(witness = %peer.url, error = %e, "witness did not cosign");
                }
            }
        }
        let wait = if failed {
            backoff = (backoff * 2).min(Duration::from_secs(30));
            backoff
        } else {
            backoff = Duration::from_millis(200);
            Duration::from_secs(3600)
        };
        tokio::select! {
            r = checkpoints.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    return;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
