//! The ledger's offline checks as one function from a JSON request to a JSON answer, and the
//! `coop-verify` command around it (stdin to stdout). Built for `wasm32-wasip1` it is the
//! portal's verifier (`portal/src/verifier.ts` runs it with a small WASI shim), so the browser
//! gives the node's verdict on every signature, proof, note and bundle: it *is* the node's code.
//! Requests:
//!
//! | `op` | fields | answer |
//! |---|---|---|
//! | `bundle` | `text` (the file), `vkey` | `{valid, kind, headline}` or `{valid: false, cause}` |
//! | `signature` | `key`, `message`, `signature` (hex) | `{valid}`: the ledger's Ed25519 rule |
//! | `inclusion` | `leafHash`, `index`, `size`, `proof[]`, `root` (base64) | `{valid}` or `{valid: false, cause}` |
//! | `consistency` | `size1`, `size2`, `proof[]`, `root1`, `root2` (base64) | likewise |
//! | `note` | `note` (text), `vkey` | `{valid, signers}` or `{valid: false, cause}` |
//! | `canonical` | `value` (any JSON) | `{canonical}`: RFC 8785 text, or `{cause}` |
//! | `ballotBlind` | `protocol` (1, 2), `proposal` (hex), `token` (base64) | `{blinded, state}`: the participation's `M` and the voter's secret state (base64) |
//! | `ballotUnblind` | `protocol`, `proposal`, `token`, `state`, `key`, `evaluated`, `challenge`, `response` (base64) | `{credential}` once the node's proof checks against `key`, or `{cause}` |
//!
//! The two ballot requests are the voter's side of a secret ballot (`governance::ballot`), so
//! the browser blinds and unblinds with the node's own code; `ballotBlind` draws its randomness
//! from the host (WASI `random_get`, the browser's `crypto.getRandomValues`).
//!
//! A request that is not one of these gets `{"error": …}` (and `coop-verify` exit code 2).

use coopledger_governance::ballot::{Blinding, Evaluation, Protocol};
use coopledger_governance::verdict::judge;
use coopledger_ledger::codec::{b64_decode, b64_encode, canonical_json};
use coopledger_ledger::cosignature::{cosignatures, WitnessKey};
use coopledger_ledger::note::{NoteVerifier, SignedNote};
use coopledger_ledger::sig::{verify_one, SignedMessage};
use coopledger_ledger::verify::{verify_consistency, verify_inclusion, ProofError};
use coopledger_ledger::Hash;
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest request `coop-verify` reads (a bundle of a few thousand members fits).
pub const MAX_REQUEST: u64 = 64 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
enum Request {
    Bundle {
        text: String,
        vkey: String,
    },
    Signature {
        key: String,
        message: String,
        signature: String,
    },
    #[serde(rename_all = "camelCase")]
    Inclusion {
        leaf_hash: String,
        index: u64,
        size: u64,
        proof: Vec<String>,
        root: String,
    },
    #[serde(rename_all = "camelCase")]
    Consistency {
        size1: u64,
        size2: u64,
        proof: Vec<String>,
        root1: String,
        root2: String,
    },
    Note {
        note: String,
        vkey: String,
    },
    /// A checkpoint's witness cosignatures: the log's signature under `vkey`, then each
    /// cosignature line by one of `witnesses` (C2SP tlog-cosignature key strings).
    Cosigned {
        note: String,
        vkey: String,
        witnesses: Vec<String>,
    },
    Canonical {
        value: Value,
    },
    BallotBlind {
        protocol: u64,
        proposal: String,
        token: String,
    },
    BallotUnblind {
        protocol: u64,
        proposal: String,
        token: String,
        state: String,
        key: String,
        evaluated: String,
        challenge: String,
        response: String,
    },
}

/// The protocol, proposal id and token of a ballot request.
fn ballot_terms(
    protocol: u64,
    proposal: &str,
    token: &str,
) -> Result<(Protocol, [u8; 32], [u8; 32]), Value> {
    let protocol = Protocol::from_number(protocol)
        .ok_or_else(|| json!({"cause": format!("unknown ballot protocol {protocol}")}))?;
    let proposal = coopledger_governance::parse_id(proposal)
        .ok_or_else(|| json!({"cause": "proposal must be 64 lowercase hex digits"}))?;
    let token =
        b64_32(token).ok_or_else(|| json!({"cause": "token must be base64 of 32 bytes"}))?;
    Ok((protocol, proposal, token))
}

fn b64_32(s: &str) -> Option<[u8; 32]> {
    b64_decode(s).ok().and_then(|b| b.try_into().ok())
}

fn invalid(cause: impl std::fmt::Display) -> Value {
    json!({"valid": false, "cause": cause.to_string()})
}

/// Hashes from base64; a string that is not a 32-byte hash is an invalid proof, named.
fn hashes(what: &str, list: &[String]) -> Result<Vec<Hash>, Value> {
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            Hash::from_base64(h)
                .ok_or_else(|| invalid(format!("{what}[{i}] is not a 32-byte hash")))
        })
        .collect()
}

fn hash(what: &str, h: &str) -> Result<Hash, Value> {
    Hash::from_base64(h).ok_or_else(|| invalid(format!("{what} is not a 32-byte hash")))
}

/// `{valid: true}`, the proof's refusal, or the reason its hashes could not be read.
fn proof_answer(checked: Result<Result<(), ProofError>, Value>) -> Value {
    match checked {
        Ok(Ok(())) => json!({"valid": true}),
        Ok(Err(e)) => invalid(e),
        Err(unreadable) => unreadable,
    }
}

fn answer_to(request: Request) -> Value {
    match request {
        Request::Bundle { text, vkey } => {
            let vkey = match NoteVerifier::parse(&vkey) {
                Ok(k) => k,
                Err(e) => return invalid(format!("the verifier key: {e}")),
            };
            match judge(&text, &vkey) {
                Ok(p) => match p.reconciliation() {
                    Some(r) => json!({"valid": true, "kind": p.kind(), "headline": p.headline(),
                        "reconciliation": r}),
                    None => json!({"valid": true, "kind": p.kind(), "headline": p.headline()}),
                },
                Err(e) => invalid(e),
            }
        }
        Request::Signature {
            key,
            message,
            signature,
        } => {
            let key: Option<[u8; 32]> = hex::decode(&key).ok().and_then(|k| k.try_into().ok());
            let sig: Option<[u8; 64]> =
                hex::decode(&signature).ok().and_then(|s| s.try_into().ok());
            let (Some(key), Some(sig), Ok(msg)) = (key, sig, hex::decode(&message)) else {
                return invalid("key, message and signature must be hex of 32, any and 64 bytes");
            };
            json!({"valid": verify_one(&SignedMessage { key: &key, msg: &msg, sig: &sig })})
        }
        Request::Inclusion {
            leaf_hash,
            index,
            size,
            proof,
            root,
        } => proof_answer((|| {
            let (leaf, proof, root) = (
                hash("leafHash", &leaf_hash)?,
                hashes("proof", &proof)?,
                hash("root", &root)?,
            );
            Ok(verify_inclusion(&leaf, index, size, &proof, &root))
        })()),
        Request::Consistency {
            size1,
            size2,
            proof,
            root1,
            root2,
        } => proof_answer((|| {
            let (proof, root1, root2) = (
                hashes("proof", &proof)?,
                hash("root1", &root1)?,
                hash("root2", &root2)?,
            );
            Ok(verify_consistency(size1, size2, &proof, &root1, &root2))
        })()),
        Request::Note { note, vkey } => {
            let vkey = match NoteVerifier::parse(&vkey) {
                Ok(k) => k,
                Err(e) => return invalid(format!("the verifier key: {e}")),
            };
            match SignedNote::parse(note.as_bytes()).and_then(|n| n.verify(&[vkey])) {
                Ok(signers) => json!({"valid": true, "signers": signers}),
                Err(e) => invalid(e),
            }
        }
        Request::Cosigned {
            note,
            vkey,
            witnesses,
        } => {
            let vkey = match NoteVerifier::parse(&vkey) {
                Ok(k) => k,
                Err(e) => return invalid(format!("the verifier key: {e}")),
            };
            let mut keys = Vec::with_capacity(witnesses.len());
            for (i, w) in witnesses.iter().enumerate() {
                match WitnessKey::parse(w) {
                    Ok(k) => keys.push(k),
                    Err(e) => return invalid(format!("witnesses[{i}]: {e}")),
                }
            }
            let checked = SignedNote::parse(note.as_bytes()).and_then(|n| {
                n.verify(&[vkey])?;
                cosignatures(&n, &keys)
            });
            match checked {
                Ok(c) => json!({
                    "valid": true,
                    "cosigned": c
                        .iter()
                        .map(|c| json!({"witness": c.witness, "timestamp": c.timestamp}))
                        .collect::<Vec<_>>(),
                }),
                Err(e) => invalid(e),
            }
        }
        Request::BallotBlind {
            protocol,
            proposal,
            token,
        } => match ballot_terms(protocol, &proposal, &token) {
            Ok((protocol, proposal, token)) => {
                match Blinding::new(protocol, &proposal, &token, &mut rand::rngs::OsRng) {
                    Some(b) => {
                        json!({"blinded": b64_encode(b.blinded()), "state": b64_encode(b.to_bytes())})
                    }
                    None => json!({"cause": "unlucky randomness; try again"}),
                }
            }
            Err(v) => v,
        },
        Request::BallotUnblind {
            protocol,
            proposal,
            token,
            state,
            key,
            evaluated,
            challenge,
            response,
        } => {
            let (protocol, proposal, token) = match ballot_terms(protocol, &proposal, &token) {
                Ok(t) => t,
                Err(v) => return v,
            };
            let blinding = b64_decode(&state)
                .ok()
                .and_then(|b| Blinding::from_bytes(protocol, &proposal, &token, &b));
            let answer = (b64_32(&evaluated), b64_32(&challenge), b64_32(&response));
            let (Some(blinding), Some(key), (Some(evaluated), Some(challenge), Some(response))) =
                (blinding, b64_32(&key), answer)
            else {
                return json!({"cause": "state, key, evaluated, challenge and response must be base64 of the right lengths"});
            };
            let e = Evaluation {
                evaluated,
                challenge,
                response,
            };
            match blinding.unblind(&key, &e) {
                Some(credential) => json!({"credential": b64_encode(credential)}),
                None => json!({"cause": "the node's answer does not prove the published key"}),
            }
        }
        Request::Canonical { value } => match canonical_json(&value, "value") {
            Ok(bytes) => json!({"canonical": String::from_utf8_lossy(&bytes)}),
            Err(e) => json!({"cause": format!("{e:?}")}),
        },
    }
}

/// The answer to one request (JSON text); `Err` with `{"error": …}` when it is not a request.
pub fn answer(request: &str) -> Result<Value, Value> {
    serde_json::from_str::<Request>(request)
        .map(answer_to)
        .map_err(|e| json!({"error": format!("not a request: {e}")}))
}
