//! `coop tally show|verify`: the recorded tally, and the offline recount of a proposal from its
//! entries, each proved against a signed checkpoint.

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use coopledger_governance::bylaws::{Bylaws, DecisionKind};
use coopledger_governance::parse_id;
use coopledger_governance::records::{ProposalRecord, ProposalStatus, Vote};
use coopledger_governance::tallying::{counted_ballots, electorate_digest, tally, TallyRecord};
use coopledger_ledger::bundle::{ProofFile, PROOF_FORMAT};
use coopledger_ledger::{Envelope, NoteVerifier, SignedCheckpoint, Verified};
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::{GovApiClient, LedgerApiClient};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum TallyCmd {
    /// Print the recorded tally.
    Show { id: String },
    /// Recount offline from the proposal's entries, each proven against a signed checkpoint;
    /// exit 0 when the node's tally agrees, 1 when it differs.
    Verify {
        id: String,
        /// The log's verifier key (default: ask the node — then the check proves consistency
        /// with the node's key, not the key's authenticity).
        #[arg(long)]
        vkey: Option<String>,
        /// Secret ballots: your receipt from `coop vote`; checks your ballot is among those
        /// published and counted.
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
}

/// An entry fetched from the node and proven included in the checkpoint.
struct Proven {
    index: u64,
    entry: Verified<Envelope>,
}

async fn fetch_proven(
    c: &HttpClient,
    index: u64,
    cp: &SignedCheckpoint,
    vkey: &NoteVerifier,
) -> Result<Proven> {
    let e = c.get_entry(index).await?;
    let proof = c.inclusion_proof(index, cp.checkpoint.size).await?;
    // The same check as `coop verify` runs on a proof file.
    let file = ProofFile {
        format: PROOF_FORMAT.into(),
        index,
        entry: e.entry,
        tree_size: cp.checkpoint.size,
        inclusion_proof: proof.hashes,
        checkpoint: cp.note.clone(),
    };
    let v = file
        .verify(vkey)
        .map_err(|e| anyhow!("entry {index} is not proven in the checkpoint: {e}"))?;
    Ok(Proven {
        index,
        entry: v.entry,
    })
}

/// The bylaws in force at `version`, from the log: genesis, or the adopted amendment that made
/// them (its proposal and tally entries proven).
async fn proven_bylaws(
    c: &HttpClient,
    version: u64,
    cp: &SignedCheckpoint,
    vkey: &NoteVerifier,
) -> Result<Bylaws> {
    let from_payload = |e: &Proven, field: &str| -> Result<Bylaws> {
        let v = e
            .entry
            .body()
            .payload
            .get(field)
            .cloned()
            .ok_or_else(|| anyhow!("entry {} has no bylaws", e.index))?;
        Ok(serde_json::from_value(v)?)
    };
    if version == 1 {
        let info = c.info().await?;
        let g = fetch_proven(c, info.genesis_index, cp, vkey).await?;
        return from_payload(&g, "bylaws");
    }
    for s in c.proposals().await? {
        if s.kind != DecisionKind::BylawsAmendment {
            continue;
        }
        let ProposalStatus::Closed {
            index: tally_at,
            applied: true,
        } = s.status
        else {
            continue;
        };
        let p = fetch_proven(c, s.index, cp, vkey).await?;
        let b = from_payload(&p, "bylaws")?;
        if b.version != version {
            continue;
        }
        let t = fetch_proven(c, tally_at, cp, vkey).await?;
        let adopted = t.entry.body().kind == "gov.tally"
            && t.entry
                .body()
                .payload
                .get("tally")
                .and_then(|t| t.get("outcome"))
                == Some(&json!("adopted"));
        if !adopted {
            bail!("the amendment to bylaws v{version} is not shown adopted by its tally entry");
        }
        return Ok(b);
    }
    bail!("no adopted amendment made bylaws version {version}")
}

/// `coop tally verify`: recount offline and compare; prints every difference.
pub async fn verify_tally(
    c: &HttpClient,
    id: String,
    vkey: Option<String>,
    receipt: Option<PathBuf>,
) -> Result<ExitCode> {
    let idb = parse_id(&id).ok_or_else(|| anyhow!("{id}: a proposal id is 64 hex digits"))?;
    let vkey_text = match vkey {
        Some(v) => v,
        None => c.verifier_key().await?,
    };
    let vkey = NoteVerifier::parse(&vkey_text).map_err(|e| anyhow!("verifier key: {e}"))?;
    let cp = SignedCheckpoint::open(&c.checkpoint().await?.note, &vkey)
        .map_err(|e| anyhow!("the node's checkpoint does not verify: {e}"))?;
    let record = c.proposal(id.clone()).await?;
    let indexes = c.proposal_entries(id.clone()).await?;
    let mut entries = Vec::with_capacity(indexes.len());
    for i in &indexes {
        entries.push(fetch_proven(c, *i, &cp, &vkey).await?);
    }
    let mut problems: Vec<String> = Vec::new();
    // The proposal as created and amended, from its own entries.
    let first = entries
        .first()
        .ok_or_else(|| anyhow!("the node lists no entries for {id}"))?;
    if first.entry.body().kind != "gov.propose" || *first.entry.entry_id().as_bytes() != idb {
        bail!("the first entry listed is not the proposal {id}");
    }
    let mut p: ProposalRecord = record.clone();
    let created = &first.entry.body().payload;
    apply_terms(&mut p, created);
    let bylaws = proven_bylaws(c, record.bylaws_version, &cp, &vkey).await?;
    let rules = bylaws
        .decisions
        .get(&record.kind)
        .cloned()
        .ok_or_else(|| anyhow!("the bylaws lack rules for {}", record.kind.as_str()))?;
    if rules != record.rules {
        problems.push("the node's frozen rules differ from the bylaws in the log".into());
    }
    if bylaws.voting != record.voting {
        problems.push("the node's frozen voting mode differs from the bylaws in the log".into());
    }
    p.rules = rules;
    p.voting = bylaws.voting;
    let mut votes: BTreeMap<String, Vote> = BTreeMap::new();
    let mut proxies: BTreeMap<String, String> = BTreeMap::new();
    let mut recorded: Option<(u64, TallyRecord)> = None;
    let mut secret = crate::ballot::SecretEntries::default();
    for e in entries.iter().skip(1) {
        let b = e.entry.body();
        if b.payload.get("proposal") != Some(&json!(id)) {
            problems.push(format!("entry {} is not about this proposal", e.index));
            continue;
        }
        let member = b.payload.get("member").and_then(Value::as_str);
        match (b.kind.as_str(), member) {
            ("gov.amend", _) => apply_terms(&mut p, &b.payload),
            ("gov.ballot_key", _) => {
                secret.keys = b.payload.get("keys").and_then(Value::as_object).cloned();
            }
            ("gov.ballots", _) => secret.batches.push((e.index, b.payload.clone())),
            ("gov.vote", Some(m)) if b.payload.contains_key("blinded") => {
                if b.ts < p.opens_ms || b.ts >= p.closes_ms {
                    problems.push(format!(
                        "participation at entry {} was signed outside the window",
                        e.index
                    ));
                }
                secret.participants.insert(m.to_owned());
            }
            ("gov.vote", Some(m)) => {
                if b.ts < p.opens_ms || b.ts >= p.closes_ms {
                    problems.push(format!(
                        "vote at entry {} was signed outside the window",
                        e.index
                    ));
                }
                let v = match (
                    b.payload.get("vote").and_then(Value::as_str),
                    b.payload.get("choices"),
                ) {
                    (Some("yes"), _) => Vote::Yes,
                    (Some("no"), _) => Vote::No,
                    (Some("abstain"), _) => Vote::Abstain,
                    (_, Some(list)) => Vote::Choices(serde_json::from_value(list.clone())?),
                    _ => bail!("entry {}: unreadable vote", e.index),
                };
                votes.insert(m.to_owned(), v);
            }
            ("gov.proxy", Some(m)) => match b.payload.get("to").and_then(Value::as_str) {
                Some(to) => {
                    proxies.insert(m.to_owned(), to.to_owned());
                }
                None => {
                    proxies.remove(m);
                }
            },
            ("gov.tally", _) => {
                let t: TallyRecord =
                    serde_json::from_value(b.payload.get("tally").cloned().unwrap_or(Value::Null))?;
                recorded = Some((e.index, t));
            }
            ("gov.withdraw", _) => {
                println!(
                    "proposal {id} was withdrawn at entry {}: nothing to count",
                    e.index
                );
                return Ok(ExitCode::SUCCESS);
            }
            (kind, _) => problems.push(format!("entry {} ({kind}) is unexpected", e.index)),
        }
    }
    let Some((tally_index, recorded)) = recorded else {
        bail!(
            "proposal {id} has no tally entry yet (voting closes at {} ms)",
            p.closes_ms
        );
    };
    // The electorate: the node's list must match the digest its signed tally entry commits to.
    let view = c.electorate(id.clone()).await?;
    let electorate: BTreeMap<String, String> = view
        .members
        .into_iter()
        .map(|e| (e.member, e.class))
        .collect();
    if electorate_digest(&electorate) != recorded.electorate {
        problems.push("the electorate listed does not match the digest in the tally entry".into());
    }
    for m in votes.keys().chain(proxies.keys()) {
        if !electorate.contains_key(m) {
            problems.push(format!(
                "{m} voted or gave a proxy but is not in the electorate"
            ));
        }
    }
    let is_secret = p.rules.secret;
    let mut published: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let ballots = if is_secret {
        if !votes.is_empty() || !proxies.is_empty() {
            problems.push("a secret ballot shows open votes or proxies".into());
        }
        let (b, ids) = crate::ballot::recount(
            &p,
            &cp.checkpoint.origin,
            &electorate,
            &secret,
            &mut problems,
        )?;
        published = ids;
        b
    } else {
        counted_ballots(&electorate, &votes, &proxies)
    };
    let participants = secret.participants.len() as u64;
    if let Some(path) = &receipt {
        let r = crate::ballot::read_receipt(path)?;
        let info = c.info().await?;
        let ballot = crate::ballot::check_receipt(&r, &info.node_key)?;
        if r.proposal != id {
            bail!(
                "{} is a receipt for proposal {}",
                path.display(),
                r.proposal
            );
        }
        match published.get(&ballot) {
            Some(at) => println!(
                "your ballot {} is published in entry {at} and counted",
                r.ballot
            ),
            None => problems.push(format!(
                "your ballot {} (receipt signed by the node) is missing from the published ballots",
                r.ballot
            )),
        }
    }
    let recount = tally(&p, &electorate, &ballots).map(|t| {
        if is_secret {
            t.with_participants(participants)
        } else {
            t
        }
    });
    match recount {
        Ok(mine) => {
            let (a, b) = (
                serde_json::to_value(&mine)?,
                serde_json::to_value(&recorded)?,
            );
            if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
                for (k, v) in a {
                    if b.get(k) != Some(v) {
                        problems.push(format!(
                            "{k}: recounted {v}, node recorded {}",
                            b.get(k).cloned().unwrap_or(Value::Null)
                        ));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("cannot recount: {e}")),
    }
    println!(
        "checked {} entries of proposal {id} against checkpoint {} (size {}), bylaws v{} from the log",
        entries.len(),
        cp.checkpoint.origin,
        cp.checkpoint.size,
        p.bylaws_version
    );
    if problems.is_empty() {
        println!(
            "AGREES: tally at entry {tally_index}: {} ballots ({} by proxy), participation {}, outcome {}{}",
            recorded.ballots,
            recorded.by_proxy,
            serde_json::to_value(&recorded.participation)?.as_str().unwrap_or_default(),
            serde_json::to_value(recorded.outcome)?.as_str().unwrap_or_default(),
            recorded
                .winner
                .and_then(|w| p.choices.get(w as usize))
                .map(|c| format!(", winner {c}"))
                .unwrap_or_default()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("DIFFERS:");
        for pr in problems {
            println!("  {pr}");
        }
        Ok(ExitCode::from(1))
    }
}

/// Applies the terms a `gov.propose` or `gov.amend` payload sets.
fn apply_terms(p: &mut ProposalRecord, payload: &Map<String, Value>) {
    if let Some(t) = payload.get("title").and_then(Value::as_str) {
        p.title = t.to_owned();
    }
    if let Some(m) = payload
        .get("method")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
    {
        p.method = m;
        p.choices = vec![];
    }
    if let Some(c) = payload
        .get("choices")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
    {
        p.choices = c;
    }
    if let Some(o) = payload.get("opensMs").and_then(Value::as_u64) {
        p.opens_ms = o;
    }
    if let Some(o) = payload.get("closesMs").and_then(Value::as_u64) {
        p.closes_ms = o;
    }
}
