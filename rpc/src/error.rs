//! Stable JSON-RPC error codes. Codes never change meaning; new ones are only added. Every
//! message names the offending field; `data` carries `{"field": …}` or `{"rule": …}` where known.
//! The same table is published in the OpenRPC document (`rpc.discover`) and in `docs/rpc.md`.

use coopledger_ledger::{QueryError, Rejection, SubmitError};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

/// Error codes. JSON-RPC's own: -32700 parse error (malformed JSON), -32600 invalid request,
/// -32601 method not found, -32602 invalid params (wrong parameter shape or encoding).
pub mod code {
    /// Parameters are well-typed JSON but a value is invalid (bad base64, wrong hash length).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The entry is not a well-formed envelope (missing/mistyped field, float, non-canonical).
    pub const MALFORMED_ENTRY: i32 = 1001;
    /// The signature does not verify.
    pub const BAD_SIGNATURE: i32 = 1002;
    /// The signer's key is not known to the co-op.
    pub const UNKNOWN_SIGNER: i32 = 1003;
    /// `body.coop` names another co-op.
    pub const WRONG_COOP: i32 = 1004;
    /// `body.type` / `body.v` is not registered.
    pub const UNKNOWN_ENTRY_TYPE: i32 = 1005;
    /// `body.seq` was already used by this signer.
    pub const REPLAYED_SEQUENCE: i32 = 1006;
    /// `body.ts` is outside the node's window.
    pub const TIMESTAMP_OUT_OF_WINDOW: i32 = 1007;
    /// The entry is larger than the node accepts.
    pub const ENTRY_TOO_LARGE: i32 = 1008;
    /// A co-op rule refused the entry (`data.rule` names it).
    pub const RULE_VIOLATION: i32 = 1009;
    /// No such entry / leaf.
    pub const NOT_FOUND: i32 = 2001;
    /// An index or size outside the checkpointed log, or an impossible range.
    pub const OUT_OF_RANGE: i32 = 2002;
    /// The node is overloaded; retry.
    pub const OVERLOADED: i32 = 3001;
    /// The node is not sequencing (shutting down or stopped after a storage failure).
    pub const UNAVAILABLE: i32 = 3002;
    /// Storage failed.
    pub const STORAGE: i32 = 3003;
    /// Replicated co-op: no quorum of replicas confirmed the entry in time.
    pub const NO_QUORUM: i32 = 3004;
    /// Replicated co-op: this replica is not the leader; `data.leader` says which is.
    pub const NOT_LEADER: i32 = 3005;
    /// Results of an open vote are published only after it closes.
    pub const RESULTS_SEALED: i32 = 2003;
    /// The request is well-formed and signed, but the signer may not do this.
    pub const FORBIDDEN: i32 = 2004;
}

/// `(code, name, meaning)` for every application code, for documentation and `rpc.discover`.
pub const TABLE: &[(i32, &str, &str)] = &[
    (
        code::MALFORMED_ENTRY,
        "MALFORMED_ENTRY",
        "entry is not a well-formed canonical envelope; data.field names the field",
    ),
    (
        code::BAD_SIGNATURE,
        "BAD_SIGNATURE",
        "signature does not verify for body.signer",
    ),
    (
        code::UNKNOWN_SIGNER,
        "UNKNOWN_SIGNER",
        "body.signer is not a key of this co-op",
    ),
    (
        code::WRONG_COOP,
        "WRONG_COOP",
        "body.coop is not this ledger's origin",
    ),
    (
        code::UNKNOWN_ENTRY_TYPE,
        "UNKNOWN_ENTRY_TYPE",
        "body.type/body.v is not a registered pair",
    ),
    (
        code::REPLAYED_SEQUENCE,
        "REPLAYED_SEQUENCE",
        "body.seq is not above the signer's last accepted seq",
    ),
    (
        code::TIMESTAMP_OUT_OF_WINDOW,
        "TIMESTAMP_OUT_OF_WINDOW",
        "body.ts is too far from the node clock",
    ),
    (
        code::ENTRY_TOO_LARGE,
        "ENTRY_TOO_LARGE",
        "canonical entry exceeds the node's size limit",
    ),
    (
        code::RULE_VIOLATION,
        "RULE_VIOLATION",
        "a co-op rule refused the entry; data.rule names it",
    ),
    (
        code::NOT_FOUND,
        "NOT_FOUND",
        "no entry with that leaf hash or id in the checkpointed log",
    ),
    (
        code::OUT_OF_RANGE,
        "OUT_OF_RANGE",
        "index or size outside the checkpointed log; data.field names it",
    ),
    (
        code::RESULTS_SEALED,
        "RESULTS_SEALED",
        "the bylaws publish this vote's results only after it closes",
    ),
    (
        code::FORBIDDEN,
        "FORBIDDEN",
        "the signed request's signer may not do this; data.field names the parameter",
    ),
    (
        code::OVERLOADED,
        "OVERLOADED",
        "too many submissions queued; retry",
    ),
    (
        code::UNAVAILABLE,
        "UNAVAILABLE",
        "node is not sequencing; resubmit later to get the receipt",
    ),
    (code::STORAGE, "STORAGE", "storage failed on the node"),
    (
        code::NO_QUORUM,
        "NO_QUORUM",
        "no quorum of replicas confirmed the entry in time; resubmit (duplicates are safe)",
    ),
    (
        code::NOT_LEADER,
        "NOT_LEADER",
        "this replica is not the leader; data.leader is the leader's address when known",
    ),
];

fn err(code: i32, message: String, data: serde_json::Value) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, Some(data))
}

/// Invalid parameter value, naming the parameter.
pub fn invalid_param(field: &str, reason: &str) -> ErrorObjectOwned {
    err(
        code::INVALID_PARAMS,
        format!("parameter `{field}`: {reason}"),
        json!({ "field": field }),
    )
}

/// Refuses a parameter that is not a member id (`m-` and 16 lowercase hex digits), naming it.
pub fn member_param(field: &str, member: &str) -> Result<(), ErrorObjectOwned> {
    if coopledger_governance::genesis::is_member_id(member) {
        Ok(())
    } else {
        Err(invalid_param(
            field,
            "must be a member id (m- and 16 lowercase hex digits)",
        ))
    }
}

/// Maps a refusal by the co-op's rules (or a storage failure while applying them).
pub fn apply(e: &coopledger_ledger::ApplyError) -> ErrorObjectOwned {
    match e {
        coopledger_ledger::ApplyError::Rejected(r) => rejection(r),
        coopledger_ledger::ApplyError::Storage(s) => storage(s),
    }
}

/// Maps an entry rejection to its code.
pub fn rejection(r: &Rejection) -> ErrorObjectOwned {
    let msg = r.to_string();
    match r {
        Rejection::Malformed { field, .. } => {
            err(code::MALFORMED_ENTRY, msg, json!({ "field": field }))
        }
        Rejection::TooLarge { size, max } => err(
            code::ENTRY_TOO_LARGE,
            msg,
            json!({ "field": "entry", "size": size, "max": max }),
        ),
        Rejection::WrongCoop { expected, .. } => err(
            code::WRONG_COOP,
            msg,
            json!({ "field": "body.coop", "expected": expected }),
        ),
        Rejection::UnknownType { .. } => err(
            code::UNKNOWN_ENTRY_TYPE,
            msg,
            json!({ "field": "body.type" }),
        ),
        Rejection::TimestampOutOfWindow { now, window_ms, .. } => err(
            code::TIMESTAMP_OUT_OF_WINDOW,
            msg,
            json!({ "field": "body.ts", "now": now, "windowMs": window_ms }),
        ),
        Rejection::BadSignature => err(code::BAD_SIGNATURE, msg, json!({ "field": "sig" })),
        Rejection::UnknownSigner { .. } => {
            err(code::UNKNOWN_SIGNER, msg, json!({ "field": "body.signer" }))
        }
        Rejection::Replay { last, .. } => err(
            code::REPLAYED_SEQUENCE,
            msg,
            json!({ "field": "body.seq", "lastSeq": last }),
        ),
        Rejection::Rule { rule, .. } => err(code::RULE_VIOLATION, msg, json!({ "rule": rule })),
    }
}

/// Maps a submission failure to its code.
pub fn submit(e: &SubmitError) -> ErrorObjectOwned {
    match e {
        SubmitError::Rejected(r) => rejection(r),
        SubmitError::Overloaded => err(code::OVERLOADED, e.to_string(), json!({})),
        SubmitError::Stopped => err(code::UNAVAILABLE, e.to_string(), json!({})),
        SubmitError::Storage(s) => storage(s),
        SubmitError::NoQuorum => err(code::NO_QUORUM, e.to_string(), json!({})),
        SubmitError::NotLeader { leader } => {
            err(code::NOT_LEADER, e.to_string(), json!({ "leader": leader }))
        }
    }
}

/// Entries from unknown keys are over their budget for now.
pub fn strangers_limited(retry_after_ms: u64) -> ErrorObjectOwned {
    err(
        code::OVERLOADED,
        format!(
            "entries from keys the co-op does not know are limited; retry in {retry_after_ms} ms"
        ),
        json!({ "field": "body.signer", "retryAfterMs": retry_after_ms }),
    )
}

/// Maps a read failure to its code.
pub fn query(e: &QueryError) -> ErrorObjectOwned {
    match e {
        QueryError::NotFound(_) => err(code::NOT_FOUND, e.to_string(), json!({})),
        QueryError::OutOfRange { field, .. } => {
            err(code::OUT_OF_RANGE, e.to_string(), json!({ "field": field }))
        }
        QueryError::Storage(_) => err(code::STORAGE, e.to_string(), json!({})),
    }
}

/// A governance record that does not exist; `field` names the parameter.
pub fn not_found(field: &str, what: String) -> ErrorObjectOwned {
    err(code::NOT_FOUND, what, json!({ "field": field }))
}

/// The state could not be read.
pub fn storage(e: &coopledger_ledger::store::StoreError) -> ErrorObjectOwned {
    use coopledger_ledger::store::StoreError;
    match e {
        // A replica's off-log write on a follower: the caller (or the forwarding middleware)
        // goes to the leader.
        StoreError::NotLeader { leader } => {
            err(code::NOT_LEADER, e.to_string(), json!({ "leader": leader }))
        }
        StoreError::Unreplicated(_) => err(code::NO_QUORUM, e.to_string(), json!({})),
        _ => err(code::STORAGE, e.to_string(), json!({})),
    }
}

/// The node's own records contradict each other (a storage fault): reported as `STORAGE`.
pub fn corrupt(what: String) -> ErrorObjectOwned {
    err(
        code::STORAGE,
        format!("storage is inconsistent: {what}"),
        json!({}),
    )
}

/// A signed request whose signer may not do what it asks.
pub fn forbidden(field: &str, reason: &str) -> ErrorObjectOwned {
    err(
        code::FORBIDDEN,
        format!("parameter `{field}`: {reason}"),
        json!({ "field": field }),
    )
}

/// Results sealed until close.
pub fn results_sealed(closes_ms: u64) -> ErrorObjectOwned {
    err(
        code::RESULTS_SEALED,
        format!("results are published after voting closes at {closes_ms} ms"),
        json!({ "closesMs": closes_ms }),
    )
}
