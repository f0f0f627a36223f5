//! Secret ballots on the member's device: take part (a `gov.vote` signed with the member's key,
//! carrying only a blinded token), check the node's answer against the class key published in
//! the log, sign the ballot with a one-time key, cast it into the box and keep the node-signed
//! receipt; after the close, `coop tally verify --receipt` finds the ballot among those the
//! tally bundle proves published (the ballots themselves are checked in
//! `governance::tally_bundle`).

use crate::gov::sign_and_submit;
use anyhow::{anyhow, bail, Context, Result};
use coopledger_governance::ballot::{receipt_message, Blinding, Evaluation};
use coopledger_governance::parse_id;
use coopledger_governance::records::ProposalRecord;
use coopledger_governance::rules::BALLOT_TYPE;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::Body;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::wire::BallotReceipt;
use coopledger_rpc::GovApiClient;
use ed25519_dalek::{Signature, SigningKey, Verifier as _, VerifyingKey};
use rand::rngs::OsRng;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn bytes32(s: &str, what: &str) -> Result<[u8; 32]> {
    b64_decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{what} is not base64 of 32 bytes"))
}

/// Checks a receipt's node signature; returns the ballot id.
pub fn check_receipt(r: &BallotReceipt, node_key: &str) -> Result<[u8; 32]> {
    if r.node_key != node_key {
        bail!(
            "the receipt is signed by {}, not the co-op's node key {node_key}",
            r.node_key
        );
    }
    let key = VerifyingKey::from_bytes(&bytes32(node_key, "the node key")?)
        .map_err(|_| anyhow!("the node key is not an Ed25519 key"))?;
    let sig: [u8; 64] = b64_decode(&r.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("the receipt signature is not base64 of 64 bytes"))?;
    let proposal = parse_id(&r.proposal).ok_or_else(|| anyhow!("receipt: bad proposal id"))?;
    let ballot = parse_id(&r.ballot).ok_or_else(|| anyhow!("receipt: bad ballot id"))?;
    key.verify(
        &receipt_message(&r.origin, &proposal, &ballot),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| anyhow!("the receipt's signature does not verify"))?;
    Ok(ballot)
}

/// `coop vote` on a secret proposal. `choice` holds `vote` or `choices`.
pub async fn vote_secretly(
    c: &HttpClient,
    key: &SigningKey,
    member: &str,
    mut p: ProposalRecord,
    choice: Map<String, Value>,
    receipt_path: Option<PathBuf>,
) -> Result<()> {
    let id = parse_id(&p.id).ok_or_else(|| anyhow!("bad proposal id {}", p.id))?;
    // The clerk publishes the class keys within moments of the proposal; wait for them.
    for _ in 0..50 {
        if p.secret.as_ref().is_some_and(|s| s.keys_index.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        p = c.proposal(p.id.clone()).await?.into();
    }
    let info = c.info().await?;
    // The protocol is the one the log recorded with the keys, not what the node says now.
    let protocol = p
        .secret
        .as_ref()
        .filter(|s| s.keys_index.is_some())
        .map(|s| s.protocol())
        .ok_or_else(|| anyhow!("the node has not published this proposal's ballot keys yet"))?;
    let one_time = SigningKey::generate(&mut OsRng);
    let token = one_time.verifying_key().to_bytes();
    let blinding = Blinding::new(protocol, &id, &token, &mut OsRng)
        .ok_or_else(|| anyhow!("unlucky randomness; retry"))?;
    let part =
        json!({ "proposal": p.id, "member": member, "blinded": b64_encode(blinding.blinded()) });
    let (r, _) = sign_and_submit(c, key, "gov.vote", part)
        .await
        .context("taking part")?;
    outln!("{member} took part (signed) at index {}", r.index);

    let answer = c.ballot_token(p.id.clone(), member.to_owned()).await?;
    // The key must be the one published in the log for the class, or the node could tell this
    // voter's ballot apart from everyone else's.
    let published = p
        .secret
        .as_ref()
        .and_then(|s| s.keys.get(&answer.class))
        .ok_or_else(|| anyhow!("no ballot key is published for class {}", answer.class))?;
    if answer.protocol != protocol.number() {
        bail!(
            "the node answered under token protocol {}, but the log records {}: not casting",
            answer.protocol,
            protocol.number()
        );
    }
    if *published != answer.key {
        bail!(
            "the node answered with a key other than the one published for {}: not casting",
            answer.class
        );
    }
    let evaluation = Evaluation {
        evaluated: bytes32(&answer.evaluated, "evaluated")?,
        challenge: bytes32(&answer.challenge, "challenge")?,
        response: bytes32(&answer.response, "response")?,
    };
    let credential = blinding
        .unblind(&bytes32(published, "the class key")?, &evaluation)
        .ok_or_else(|| {
            anyhow!("the node's answer does not prove the published key: not casting")
        })?;

    let mut payload = Map::new();
    payload.insert("proposal".into(), json!(p.id));
    payload.insert("class".into(), json!(answer.class));
    payload.insert("credential".into(), json!(b64_encode(credential)));
    payload.extend(choice);
    // Every ballot carries the opening time, so the log shows nothing of when it was cast.
    let ballot = Body {
        coop: info.origin.clone(),
        kind: BALLOT_TYPE.into(),
        version: 1,
        signer: token,
        seq: 1,
        ts: p.opens_ms,
        payload,
    }
    .sign(&one_time)
    .map_err(|r| anyhow!("ballot: {r}"))?;
    let receipt = c
        .cast_ballot(ballot.to_value())
        .await
        .context("casting the ballot")?;
    let ballot_id = check_receipt(&receipt, &info.node_key)?;
    if ballot_id != *ballot.entry_id().as_bytes() {
        bail!("the receipt names another ballot");
    }
    let path = receipt_path.unwrap_or_else(|| {
        PathBuf::from(format!(
            "ballot-{}.receipt.json",
            p.id.get(..12).unwrap_or("")
        ))
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&receipt)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    outln!(
        "ballot {} cast secretly; the node's receipt is in {} (it shows how you voted once the \
         ballots are published: keep it private)",
        receipt.ballot,
        path.display()
    );
    outln!(
        "check after the close: coop tally verify {} --receipt {}",
        p.id,
        path.display()
    );
    Ok(())
}

/// Reads a receipt file.
pub fn read_receipt(path: &Path) -> Result<BallotReceipt> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a ballot receipt", path.display()))
}
