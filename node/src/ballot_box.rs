//! The node's ballot box for secret ballots: answers a participant's blinded token, receives
//! ballots signed with one-time keys, keeps them off the log (durably, in the store's off-log
//! records) until voting closes, and gives the clerk the `gov.ballots` entries that publish them
//! all at once, sorted by ballot id. Nothing here can make the rules accept a ballot they would
//! refuse: the box runs the same [`check_ballot`] on receipt that the rules run on publication.
//!
//! Off-log key: `ballot/<proposal id, 32 bytes><token, 32 bytes>` → the ballot's canonical
//! envelope. One key per token makes "one ballot per token" a single lookup.

use coopledger_governance::ballot::{
    receipt_message, BallotSecrets, ClassKey, Evaluation, Protocol,
};
use coopledger_governance::records::{self, ProposalRecord, ProposalStatus};
use coopledger_governance::rules::{ballots_payload, check_ballot};
use coopledger_governance::tally::ClassId;
use coopledger_governance::CoopRules;
use coopledger_ledger::codec::{b64_decode, b64_encode, canonical_json};
use coopledger_ledger::entry::admit;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{ApplyError, Envelope, Log, Rejection};
use ed25519_dalek::{Signer as _, SigningKey};
use rand::rngs::OsRng;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Largest `gov.ballots` payload the clerk builds (the entry limit is 64 KiB by default; the
/// envelope around the payload needs a few hundred bytes).
pub const BATCH_PAYLOAD_BYTES: usize = 48 * 1024;

const PREFIX: &[u8] = b"ballot/";

fn box_key(p: &[u8; 32], token: &[u8; 32]) -> Vec<u8> {
    [PREFIX, p.as_slice(), token.as_slice()].concat()
}

fn rule(rule: &str, message: impl Into<String>) -> ApplyError {
    ApplyError::Rejected(Rejection::Rule {
        rule: rule.into(),
        message: message.into(),
    })
}

/// The node's answer to a participation: `Z = k·M` with its proof, for the voter to check
/// against the class key published in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The blind-token protocol of the proposal (as its `gov.ballot_key` entry recorded it).
    pub protocol: Protocol,
    /// The member's class in the frozen electorate.
    pub class: ClassId,
    /// The class's public ballot key (as published by `gov.ballot_key`).
    pub key: [u8; 32],
    /// The blinded element from the participation entry.
    pub blinded: [u8; 32],
    /// `Z` and the proof.
    pub evaluation: Evaluation,
}

/// What the box gives the voter: the node's signature over
/// `ballot::receipt_message(origin, proposal, ballot id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Proposal id.
    pub proposal: [u8; 32],
    /// The ballot's entry id.
    pub ballot: [u8; 32],
    /// The node's Ed25519 signature.
    pub signature: [u8; 64],
}

/// The ballot box. One per node; shared by the RPC server and the clerk.
pub struct BallotBox {
    secrets: BallotSecrets,
    node_key: SigningKey,
    /// Serialises "is this token new? then store it".
    receiving: Mutex<()>,
}

impl std::fmt::Debug for BallotBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BallotBox(..)")
    }
}

impl BallotBox {
    /// The box of the node whose signing key is `node_key` (ballot keys derive from it).
    pub fn new(node_key: SigningKey) -> BallotBox {
        BallotBox {
            secrets: BallotSecrets::from_node_key(&node_key),
            node_key,
            receiving: Mutex::new(()),
        }
    }

    /// The node's public key, which signs receipts.
    pub fn node_key(&self) -> [u8; 32] {
        self.node_key.verifying_key().to_bytes()
    }

    /// The protocol of proposal `p`'s tokens: the one its `gov.ballot_key` entry recorded, or,
    /// before the keys are published, the one the node publishes them under.
    fn protocol(p: &ProposalRecord) -> Protocol {
        match &p.secret {
            Some(s) if s.keys_index.is_some() => s.protocol(),
            _ => Protocol::CURRENT,
        }
    }

    /// The secret class keys of proposal `id` for every voting class of its electorate. (A class
    /// whose key RFC 9497's derivation cannot make — a chance of about 2⁻²⁵² — is left out, and
    /// its ballots are then refused as `ballot.class`.)
    pub fn class_keys(&self, id: &[u8; 32], p: &ProposalRecord) -> BTreeMap<ClassId, ClassKey> {
        let protocol = Self::protocol(p);
        p.secret
            .iter()
            .flat_map(|s| s.participants.keys())
            .filter_map(|c| Some((c.clone(), self.secrets.class_key(id, c, protocol)?)))
            .collect()
    }

    /// The payload of the `gov.ballot_key` entry the clerk records for proposal `id`: its
    /// public class keys under [`Protocol::CURRENT`].
    pub fn key_publication(&self, id: &[u8; 32], p: &ProposalRecord) -> Map<String, Value> {
        let keys: Map<String, Value> = self
            .class_keys(id, p)
            .into_iter()
            .map(|(c, k)| (c, Value::String(b64_encode(k.public()))))
            .collect();
        let mut payload = Map::new();
        payload.insert("proposal".into(), Value::String(hex::encode(id)));
        payload.insert("keys".into(), Value::Object(keys));
        if Self::protocol(p) != Protocol::Original {
            payload.insert("protocol".into(), Value::from(Self::protocol(p).number()));
        }
        payload
    }

    fn secret_proposal(
        &self,
        log: &Log<CoopRules>,
        id: &[u8; 32],
    ) -> Result<ProposalRecord, ApplyError> {
        let p = records::proposal(log, id)?.ok_or_else(|| {
            rule(
                "proposal.unknown",
                "body.payload.proposal: no such proposal",
            )
        })?;
        let published = p.secret.as_ref().is_some_and(|s| s.keys_index.is_some());
        if p.secret.is_none() {
            return Err(rule(
                "ballot.secret",
                "body.payload.proposal is an open ballot",
            ));
        }
        if !published {
            return Err(rule(
                "ballot.key",
                "the node has not published this proposal's ballot keys yet",
            ));
        }
        Ok(p)
    }

    /// Answers `member`'s participation in proposal `id` (which must be in the log).
    pub fn answer(
        &self,
        log: &Log<CoopRules>,
        id: &[u8; 32],
        member: &str,
    ) -> Result<TokenAnswer, ApplyError> {
        let p = self.secret_proposal(log, id)?;
        let part = records::participations(log, id)?
            .remove(member)
            .ok_or_else(|| {
                rule(
                    "ballot.participation",
                    format!("member: {member} has not taken part in this ballot"),
                )
            })?;
        let blinded: [u8; 32] = b64_decode(&part.blinded)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("participation with a bad blinded token".into()))?;
        let k = self.class_keys(id, &p).remove(&part.class).ok_or_else(|| {
            rule(
                "ballot.class",
                format!("no ballot key for class {}", part.class),
            )
        })?;
        let evaluation = k
            .evaluate(&blinded, &mut OsRng)
            .ok_or_else(|| StoreError::Corrupt("participation with a bad blinded token".into()))?;
        Ok(TokenAnswer {
            protocol: k.protocol(),
            class: part.class,
            key: k.public(),
            blinded,
            evaluation,
        })
    }

    /// Receives a ballot: signature, proposal open by the node clock, and every check the rules
    /// will run at publication; then stores it durably (before answering) and signs a receipt.
    /// Casting the identical ballot again returns the same receipt; a different ballot with a
    /// used token is refused (`ballot.token_used`).
    pub fn cast(&self, log: &Log<CoopRules>, ballot: Envelope) -> Result<Receipt, ApplyError> {
        let ballot = admit(vec![ballot])
            .pop()
            .ok_or_else(|| StoreError::Corrupt("admission lost the ballot".into()))??;
        let id = ballot
            .body()
            .payload
            .get("proposal")
            .and_then(Value::as_str)
            .and_then(coopledger_governance::parse_id)
            .ok_or_else(|| Rejection::Malformed {
                field: "body.payload.proposal".into(),
                reason: "must be a proposal id of 64 lowercase hex digits".into(),
            })?;
        let p = self.secret_proposal(log, &id)?;
        let now = now_ms();
        if p.status != ProposalStatus::Open || now >= p.closes_ms {
            return Err(rule(
                "vote.window",
                format!(
                    "the ballot box closed at {} ms (node time {now} ms)",
                    p.closes_ms
                ),
            ));
        }
        if now < p.opens_ms {
            return Err(rule(
                "vote.window",
                format!("voting opens at {} ms (node time {now} ms)", p.opens_ms),
            ));
        }
        let keys = self.class_keys(&id, &p);
        let opened = check_ballot(&p, log.origin(), &keys, &ballot)?;
        let key = box_key(&id, &opened.token);
        {
            let _one_at_a_time = self
                .receiving
                .lock()
                .map_err(|_| StoreError::Corrupt("ballot box lock poisoned".into()))?;
            match log.offlog_get(&key)? {
                Some(held) if held == ballot.bytes() => {}
                Some(_) => {
                    return Err(rule(
                        "ballot.token_used",
                        "body.signer: this one-time key has already cast a ballot",
                    ))
                }
                None => log.offlog_put(&key, ballot.bytes())?,
            }
        }
        let signature = self
            .node_key
            .sign(&receipt_message(log.origin(), &id, &opened.id))
            .to_bytes();
        Ok(Receipt {
            proposal: id,
            ballot: opened.id,
            signature,
        })
    }

    /// Ballots in the box for proposal `id` that are not yet published, in ballot-id order.
    pub fn unpublished(
        &self,
        log: &Log<CoopRules>,
        id: &[u8; 32],
    ) -> Result<Vec<Envelope>, StoreError> {
        let published = records::ballots(log, id)?;
        let prefix = [PREFIX, id.as_slice()].concat();
        let mut out = Vec::new();
        for (k, v) in log.offlog_scan(&prefix)? {
            let token: Option<[u8; 32]> = k.get(prefix.len()..).and_then(|t| t.try_into().ok());
            if token.is_some_and(|t| published.contains_key(&t)) {
                continue;
            }
            let env = Envelope::from_bytes(&v)
                .map_err(|r| StoreError::Corrupt(format!("ballot box: {r}")))?;
            out.push(env);
        }
        out.sort_by_key(|e| *e.entry_id().as_bytes());
        Ok(out)
    }

    /// Payloads of the `gov.ballots` entries that publish the rest of the box for proposal `id`
    /// (at least one, which reveals the keys, if none was recorded yet), each at most
    /// [`BATCH_PAYLOAD_BYTES`] as canonical JSON.
    pub fn batches(
        &self,
        log: &Log<CoopRules>,
        id: &[u8; 32],
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let Some(p) = records::proposal(log, id)? else {
            return Ok(vec![]);
        };
        let Some(secret) = &p.secret else {
            return Ok(vec![]);
        };
        let keys = self.class_keys(id, &p);
        let rest = self.unpublished(log, id)?;
        // Canonical JSON has no whitespace, so a batch's size is the empty batch's plus each
        // ballot's own encoding and a comma between ballots: one encoding per ballot.
        let encoded = |v: &Value| -> Result<usize, StoreError> {
            canonical_json(v, "payload")
                .map(|b| b.len())
                .map_err(|e| StoreError::Corrupt(format!("ballot batch: {e:?}")))
        };
        let empty = encoded(&Value::Object(ballots_payload(id, &keys, &[])))?;
        let mut out = Vec::new();
        let mut chunk: Vec<Envelope> = Vec::new();
        let mut size = empty;
        for b in rest {
            let item = encoded(&b.to_value())?;
            if !chunk.is_empty() && size + 1 + item > BATCH_PAYLOAD_BYTES {
                out.push(ballots_payload(id, &keys, &chunk));
                chunk.clear();
                size = empty;
            }
            size += item + usize::from(!chunk.is_empty());
            chunk.push(b);
        }
        if !chunk.is_empty() || (out.is_empty() && secret.opened_at.is_none()) {
            out.push(ballots_payload(id, &keys, &chunk));
        }
        Ok(out)
    }
}
