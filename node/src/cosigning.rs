//! The log side of witnessing: after each new checkpoint, ask every configured witness to
//! cosign it (C2SP tlog-witness `add-checkpoint`, with the log's own consistency proof from the
//! size that witness last cosigned), and keep the cosignatures beside the checkpoint so the node
//! can serve the cosigned note. Runs off the ingest path: a slow or absent witness never delays
//! a receipt.
//!
//! Off-log keys: `cosig/<u64 BE size>` → the checkpoint note with every cosignature line
//! collected for it; `cosig-latest` → the largest such size (u64 BE).

use crate::http::{HttpClient, HttpError};
use coopledger_governance::CoopRules;
use coopledger_ledger::cosignature::{cosignatures, WitnessKey};
use coopledger_ledger::note::NoteError;
use coopledger_ledger::note::SignedNote;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::witness::AddCheckpoint;
use coopledger_ledger::QueryError;
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
    pub fn parse(spec: &str) -> Result<WitnessPeer, PeerSpecError> {
        let (url, vkey) = spec
            .split_once(',')
            .ok_or_else(|| PeerSpecError::Shape(spec.to_owned()))?;
        if !url.starts_with("http://") {
            return Err(PeerSpecError::Scheme(url.to_owned()));
        }
        let key = WitnessKey::parse(vkey).map_err(|e| PeerSpecError::Key(vkey.to_owned(), e))?;
        Ok(WitnessPeer {
            url: url.trim_end_matches('/').to_owned(),
            key,
        })
    }
}

/// Why a `--witness URL,VKEY` is not usable.
#[derive(Debug, thiserror::Error)]
pub enum PeerSpecError {
    /// Not `URL,VKEY`.
    #[error("{0:?}: expected URL,VKEY")]
    Shape(String),
    /// Not an `http://` address.
    #[error("{0:?}: only http:// witnesses are supported")]
    Scheme(String),
    /// Not a witness key.
    #[error("{0:?}: {1}")]
    Key(String, NoteError),
}

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// The log could not give a proof or keep the lines.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The log could not give a consistency proof.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The witness could not be reached.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The witness answered with something other than a cosignature.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The answer, trimmed.
        body: String,
    },
    /// The answer is not what the protocol says.
    #[error("the witness's answer: {0}")]
    Answer(String),
    /// The answer's cosignature does not verify.
    #[error("the witness's cosignature: {0}")]
    Cosignature(#[from] NoteError),
    /// The witness has cosigned more of this log than the log has.
    #[error("the witness has cosigned size {witness}, beyond ours ({ours})")]
    Ahead {
        /// Its size.
        witness: u64,
        /// Ours.
        ours: u64,
    },
    /// The witness refuses the log's view at the size it knows.
    #[error("409 at size {0}: the witness holds another view")]
    OtherView(u64),
    /// The witness's size changed between two requests.
    #[error("the witness's size kept changing")]
    Unsettled,
}

fn cosig_key(size: u64) -> Vec<u8> {
    [b"cosig/".as_slice(), &size.to_be_bytes()].concat()
}

/// The note of the checkpoint of `size` with the cosignatures collected for it, if any.
pub fn cosigned_note(log: &Log<CoopRules>, size: u64) -> Result<Option<String>, StoreError> {
    log.offlog_get(&cosig_key(size))?
        .map(|v| {
            String::from_utf8(v)
                .map_err(|_| StoreError::Corrupt(format!("cosigned note {size} is not UTF-8")))
        })
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
) -> Result<String, CosignError> {
    let size = cp.checkpoint.size;
    for _ in 0..2 {
        let proof = if *known == 0 || *known == size {
            vec![]
        } else {
            log.consistency_proof(*known, size)?
        };
        let req = AddCheckpoint {
            old_size: *known,
            proof,
            note: cp.note.clone(),
        };
        let url = format!("{}/add-checkpoint", peer.url);
        let (status, body) = http
            .post(&url, "text/plain", req.to_body().into_bytes())
            .await?;
        let body = String::from_utf8(body).map_err(|_| CosignError::Answer("not UTF-8".into()))?;
        match status {
            200 => {
                let note = SignedNote::parse(format!("{}{body}", cp.note).as_bytes())?;
                let got = cosignatures(&note, std::slice::from_ref(&peer.key))?;
                if got.is_empty() {
                    return Err(CosignError::Answer(
                        "no cosignature by the witness's key".into(),
                    ));
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
                    .map_err(|_| CosignError::Answer(format!("409 without a size: {body:?}")))?;
                if k > size {
                    return Err(CosignError::Ahead {
                        witness: k,
                        ours: size,
                    });
                }
                if k == *known {
                    return Err(CosignError::OtherView(k));
                }
                *known = k;
            }
            other => {
                return Err(CosignError::Status {
                    status: other,
                    body: body.trim().to_owned(),
                })
            }
        }
    }
    Err(CosignError::Unsettled)
}

/// Adds `lines` to the stored cosigned note of `cp` (creating it), once per witness name.
fn keep(log: &Log<CoopRules>, cp: &SignedCheckpoint, lines: &str) -> Result<(), StoreError> {
    let size = cp.checkpoint.size;
    let mut note = cosigned_note(log, size)?.unwrap_or_else(|| cp.note.clone());
    for l in lines.lines() {
        let name = l.split(' ').nth(1).unwrap_or_default();
        if !note.lines().any(|x| x.split(' ').nth(1) == Some(name)) {
            note.push_str(l);
            note.push('\n');
        }
    }
    log.offlog_put(&cosig_key(size), note.as_bytes())?;
    if latest_cosigned_size(log)?.is_none_or(|s| s < size) {
        log.offlog_put(LATEST_KEY, &size.to_be_bytes())?;
    }
    Ok(())
}

const LATEST_KEY: &[u8] = b"cosig-latest";

/// The largest checkpoint size with any cosignature.
pub fn latest_cosigned_size(log: &Log<CoopRules>) -> Result<Option<u64>, StoreError> {
    Ok(log
        .offlog_get(LATEST_KEY)?
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
