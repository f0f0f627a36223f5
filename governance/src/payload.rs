//! Reading typed fields out of an entry payload: every error is a `Malformed` rejection that
//! names the field by its path (`body.payload.opensMs`), so a client knows what to fix.

use crate::genesis::is_member_id;
use coopledger_ledger::codec::b64_decode;
use coopledger_ledger::Rejection;
use serde_json::{Map, Value};

/// A `Malformed` rejection for `body.payload.<field>`.
pub(crate) fn malformed(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::Malformed {
        field: format!("body.payload.{field}"),
        reason: reason.into(),
    }
}

/// The payload of one entry, with the set of fields its type allows.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Refuses fields the type does not define.
    pub(crate) fn new(map: &'a Map<String, Value>, allowed: &[&str]) -> Result<Self, Rejection> {
        if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(malformed(extra, "unknown field"));
        }
        Ok(Fields { map })
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn value(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string of 1 to `max` characters.
    pub(crate) fn text(&self, name: &str, max: usize) -> Result<String, Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.chars().count() <= max)
            .map(str::to_owned)
            .ok_or_else(|| malformed(name, format!("must be a string of 1 to {max} characters")))
    }

    /// An identifier ([`is_ident`]).
    pub(crate) fn ident(&self, name: &str) -> Result<String, Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| is_ident(s))
            .map(str::to_owned)
            .ok_or_else(|| malformed(name, IDENT_RULE))
    }

    /// A non-negative integer.
    pub(crate) fn uint(&self, name: &str) -> Result<u64, Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed(name, "must be a non-negative integer"))
    }

    /// A boolean.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_bool)
            .ok_or_else(|| malformed(name, "must be true or false"))
    }

    /// A base64 Ed25519 public key that is canonical and of full order.
    pub(crate) fn key(&self, name: &str) -> Result<[u8; 32], Rejection> {
        let k = self
            .map
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| b64_decode(s).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| malformed(name, "must be base64 of a 32-byte Ed25519 public key"))?;
        if !coopledger_ledger::sig::is_acceptable_key(&k) {
            return Err(malformed(
                name,
                "is not a canonical, full-order Ed25519 key",
            ));
        }
        Ok(k)
    }

    /// Base64 of exactly 64 bytes (a signature).
    pub(crate) fn signature(&self, name: &str) -> Result<[u8; 64], Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| b64_decode(s).ok())
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| malformed(name, "must be base64 of a 64-byte Ed25519 signature"))
    }

    /// Base64 of a 32-byte digest (a salted commitment or a document hash).
    pub(crate) fn digest(&self, name: &str) -> Result<[u8; 32], Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| b64_decode(s).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| malformed(name, "must be base64 of a 32-byte SHA-256 digest"))
    }

    /// An entry id or proposal id: 64 lowercase hex digits.
    pub(crate) fn id(&self, name: &str) -> Result<[u8; 32], Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .and_then(parse_id)
            .ok_or_else(|| malformed(name, "must be an id of 64 lowercase hex digits"))
    }

    /// A member id `m-` and 16 hex digits.
    pub(crate) fn member(&self, name: &str) -> Result<String, Rejection> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| is_member_id(s))
            .map(str::to_owned)
            .ok_or_else(|| malformed(name, "must be a member id (m- and 16 hex digits)"))
    }
}

/// What every identifier looks like, said once (`docs/governance.md`, "Identifiers").
pub const IDENT_RULE: &str =
    "must be 1 to 64 characters of [a-z0-9_-], e.g. city_transport or 2026-q3";

/// The one rule for every identifier a co-op chooses — member classes, party ids, attestation
/// kinds, accounting periods, personal attribute names: 1 to 64 characters of `[a-z0-9_-]`.
/// (Each used to have its own, narrower rule; this is their union, so every entry they
/// accepted is still accepted and old logs replay the same.)
pub fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses 64 lowercase hex digits.
pub fn parse_id(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok().and_then(|b| b.try_into().ok())
}
