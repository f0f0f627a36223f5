//! Personal data on the ledger (DESIGN §7): only salted commitments. A member's profile entry
//! commits to each attribute as `SHA-256(salt ‖ value)` with a 32-byte random salt; the values
//! and salts live off the log, encrypted under a per-member key, and an erasure entry orders
//! that key and data destroyed. After erasure the commitments in the log cannot be opened or
//! guessed (the salts are gone) and every proof still verifies.
//!
//! State keys: `pii/<member id>` → [`PersonalRecord`]; `pii-erased/<member id>` → empty, the
//! erasures the node must carry out (scanned by the node's sweep).

pub(crate) mod rules;

use crate::records::{cat, read};
use coopledger_ledger::StateRead;
use coopledger_ledger::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// State key of a member's personal-data record.
pub fn record_key(member: &str) -> Vec<u8> {
    cat(&[b"pii/", member.as_bytes()])
}

/// Prefix of the erasure markers.
pub const ERASED_PREFIX: &[u8] = b"pii-erased/";

/// State key of a member's erasure marker.
pub fn erased_key(member: &str) -> Vec<u8> {
    cat(&[ERASED_PREFIX, member.as_bytes()])
}

/// `SHA-256(salt ‖ UTF-8 value)`: the commitment to one attribute.
pub fn commitment(salt: &[u8; 32], value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// When and by whom a member's personal data was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Erasure {
    /// Log index of the erasure entry.
    pub index: u64,
    /// Node time, ms.
    pub ms: u64,
    /// `member` (the member asked) or `board` (on the member's request to the co-op).
    pub by: String,
}

/// What the ledger knows of a member's personal data: commitments only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonalRecord {
    /// Member id.
    pub member: String,
    /// Attribute name → base64 commitment, as of the latest profile entry.
    pub attributes: BTreeMap<String, String>,
    /// Log index of the latest profile entry.
    pub index: u64,
    /// Set once erased; final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erasure>,
}

/// A member's record, if any.
pub fn record(s: &dyn StateRead, member: &str) -> Result<Option<PersonalRecord>, StoreError> {
    read(s, &record_key(member))
}

/// Members whose erasure was ordered (the node's to-do list; it keeps no secret once done).
pub fn erased_members(s: &dyn StateRead) -> Result<Vec<String>, StoreError> {
    Ok(s.scan(ERASED_PREFIX)?
        .into_iter()
        .filter_map(|(k, _)| {
            k.strip_prefix(ERASED_PREFIX)
                .and_then(|m| std::str::from_utf8(m).ok())
                .map(str::to_owned)
        })
        .collect())
}
