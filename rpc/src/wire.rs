//! Wire types: field names and encodings exactly as outside verifiers see them (camelCase,
//! hashes and bytes in standard base64, sizes and indexes as JSON integers).

use coopledger_governance::bylaws::DecisionKind;
use coopledger_governance::records::{ProposalRecord, ProposalStatus};
use coopledger_governance::tally::Outcome;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{Hash, Receipt, SignedCheckpoint};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A signed checkpoint: the full C2SP note plus its parsed fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// The whole signed note text.
    pub note: String,
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
}

impl From<&SignedCheckpoint> for CheckpointInfo {
    fn from(c: &SignedCheckpoint) -> CheckpointInfo {
        CheckpointInfo {
            note: c.note.clone(),
            origin: c.checkpoint.origin.clone(),
            size: c.checkpoint.size,
            root: c.checkpoint.root.to_base64(),
        }
    }
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Leaf index.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Base64 hashes, leaf-side first.
    pub hashes: Vec<String>,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// Older tree size.
    pub from_size: u64,
    /// Newer tree size.
    pub to_size: u64,
    /// Base64 hashes.
    pub hashes: Vec<String>,
}

/// The receipt `ledger_submit` returns once a stored checkpoint covers the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResult {
    /// Position in the log.
    pub index: u64,
    /// Base64 `SHA-256(0x00 ‖ entry)`.
    pub leaf_hash: String,
    /// Base64 `SHA-256(canonical body)`.
    pub entry_id: String,
    /// The checkpoint covering the entry.
    pub checkpoint: CheckpointInfo,
    /// Inclusion proof of `index` in `checkpoint`.
    pub inclusion_proof: InclusionProof,
    /// True when the same body was already in the log (this is its original receipt).
    pub duplicate: bool,
}

impl From<&Receipt> for SubmitResult {
    fn from(r: &Receipt) -> SubmitResult {
        SubmitResult {
            index: r.index,
            leaf_hash: r.leaf_hash.to_base64(),
            entry_id: r.entry_id.to_base64(),
            checkpoint: CheckpointInfo::from(r.checkpoint.as_ref()),
            inclusion_proof: InclusionProof {
                index: r.index,
                tree_size: r.checkpoint.checkpoint.size,
                hashes: hashes_b64(&r.inclusion_proof),
            },
            duplicate: r.duplicate,
        }
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResult {
    /// Position in the log.
    pub index: u64,
    /// Base64 of the exact bytes hashed into the tree.
    pub entry: String,
    /// Base64 leaf hash.
    pub leaf_hash: String,
    /// The envelope as JSON, for reading.
    pub decoded: Value,
}

/// Base64 of each hash.
pub fn hashes_b64(h: &[Hash]) -> Vec<String> {
    h.iter().map(Hash::to_base64).collect()
}

/// Base64 of bytes.
pub fn bytes_b64(b: &[u8]) -> String {
    b64_encode(b)
}

/// The co-op at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoopInfo {
    /// The ledger's origin.
    pub origin: String,
    /// Display name.
    pub name: String,
    /// Base64 node key.
    pub node_key: String,
    /// Log index of genesis.
    pub genesis_index: u64,
    /// Members active or suspended.
    pub members: u64,
    /// Version of the bylaws in force.
    pub bylaws_version: u64,
    /// Registered entry types as `type/v`.
    pub entry_types: Vec<String>,
}

/// A member's record and their standing at the index asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The full record (current class, status, roles, keys, history).
    pub record: crate::gov_wire::MemberInfo,
    /// The index the standing is for.
    pub at_index: u64,
    /// Standing at that index (`null`: not yet a member then).
    pub standing: Option<crate::gov_wire::MemberEventView>,
    /// Every key the member has held, oldest first: when added, revoked (if so), its label.
    pub keys: Vec<KeyView>,
}

/// One of a member's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    /// The public key (base64).
    pub key: String,
    /// Log index at which it was added.
    pub since: u64,
    /// Log index of its revocation; `null` while it may sign.
    pub revoked: Option<u64>,
    /// The member's label for it, if any.
    pub label: Option<String>,
}

/// A proposal in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalSummary {
    /// Id (hex).
    pub id: String,
    /// Log index of creation.
    pub index: u64,
    /// Kind of decision.
    pub kind: DecisionKind,
    /// Title.
    pub title: String,
    /// Voting method.
    pub method: coopledger_governance::bylaws::Method,
    /// A secret ballot (votes go through the ballot box, not the log).
    pub secret: bool,
    /// Voting opens.
    pub opens_ms: u64,
    /// Voting closes.
    pub closes_ms: u64,
    /// Status.
    pub status: crate::gov_wire::ProposalState,
    /// Outcome, once tallied.
    pub outcome: Option<Outcome>,
}

impl From<&ProposalRecord> for ProposalSummary {
    fn from(p: &ProposalRecord) -> ProposalSummary {
        ProposalSummary {
            id: p.id.clone(),
            index: p.index,
            kind: p.kind,
            title: p.title.clone(),
            method: p.method,
            secret: p.rules.secret,
            opens_ms: p.opens_ms,
            closes_ms: p.closes_ms,
            status: match p.status {
                ProposalStatus::Open => crate::gov_wire::ProposalState::Open,
                ProposalStatus::Withdrawn { index } => {
                    crate::gov_wire::ProposalState::Withdrawn { index }
                }
                ProposalStatus::Closed { index, applied } => {
                    crate::gov_wire::ProposalState::Closed { index, applied }
                }
            },
            outcome: p.tally.as_ref().map(|t| t.outcome),
        }
    }
}

/// One member of a frozen electorate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Elector {
    /// Member id.
    pub member: String,
    /// Class the member votes in.
    pub class: String,
}

/// A proposal's frozen electorate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElectorateView {
    /// Proposal id.
    pub proposal: String,
    /// Members in id order.
    pub members: Vec<Elector>,
    /// `electorate_digest` of the list: equals the tally's `electorate` field.
    pub digest: String,
}

/// The node's answer to a secret-ballot participation (see `coopledger_governance::ballot`):
/// `evaluated = k·blinded` and a proof `(challenge, response)` that `k` is the class key
/// published in the log — for protocol 2 RFC 9497's `BlindEvaluate` (the proof is
/// `challenge ‖ response`). Keys and elements base64 of 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BallotToken {
    /// The blind-token protocol the proposal's `gov.ballot_key` entry recorded (1 or 2).
    pub protocol: u64,
    /// The member's class in the frozen electorate.
    pub class: String,
    /// The class's public ballot key.
    pub key: String,
    /// The blinded token from the participation entry.
    pub blinded: String,
    /// `Z = k·M`.
    pub evaluated: String,
    /// Proof challenge `c`.
    pub challenge: String,
    /// Proof response `s`.
    pub response: String,
}

/// The ballot box's receipt: the node's signature over
/// `"coopledger/ballot-receipt\0" ‖ origin ‖ "\n" ‖ proposal id ‖ ballot id` (32-byte ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BallotReceipt {
    /// The ledger's origin.
    pub origin: String,
    /// Proposal id (hex).
    pub proposal: String,
    /// The ballot's entry id (hex): find it in the proposal's `gov.ballots` entries after the close.
    pub ballot: String,
    /// The node key that signed (base64).
    pub node_key: String,
    /// Ed25519 signature (base64).
    pub signature: String,
}

/// Most entries one `ledger_submitBatch` takes.
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// One entry's answer in `ledger_submitBatch`: its receipt, or why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchAnswer {
    /// The receipt, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SubmitResult>,
    /// The refusal, as a JSON-RPC error object (`code`, `message`, `data`), when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}
