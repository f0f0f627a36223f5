//! `CoopRules`: the entry-type registry and the validate-and-apply function for each type.
//!
//! State layout (keys in the state machine's namespace, values JSON with fixed field order):
//! - `coop` → [`CoopState`]
//! - `key/<32-byte key>` → [`KeyRecord`]

use crate::genesis::{member_id, Genesis, Role};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{
    ApplyContext, ApplyError, Envelope, Rejection, StateMachine, StateView, Verified,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Registered `(type, version)` pairs; anything else is refused at admission.
pub const ENTRY_TYPES: &[(&str, u64)] = &[("coop.genesis", 1), ("coop.attest", 1)];

/// The co-op as founded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoopState {
    /// Display name.
    pub name: String,
    /// Base64 node key.
    pub node_key: String,
    /// Log index of the genesis entry.
    pub genesis_index: u64,
    /// Number of members.
    pub members: u64,
}

/// A key known to the co-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Pseudonymous member id (`node` for the node key).
    pub member: String,
    /// Roles held through this key.
    pub roles: Vec<Role>,
    /// Log index at which the key became known.
    pub since: u64,
}

/// The co-op's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoopRules;

const COOP_KEY: &[u8] = b"coop";

fn key_key(k: &[u8; 32]) -> Vec<u8> {
    let mut v = b"key/".to_vec();
    v.extend_from_slice(k);
    v
}

fn read<T: for<'de> Deserialize<'de>>(raw: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    raw.map(|b| {
        serde_json::from_slice(&b)
            .map_err(|e| StoreError::Corrupt(format!("governance state: {e}")))
    })
    .transpose()
}

fn write<T: Serialize>(view: &mut StateView<'_>, key: &[u8], v: &T) -> Result<(), ApplyError> {
    let bytes =
        serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(format!("governance state: {e}")))?;
    view.put(key, bytes);
    Ok(())
}

fn rule(rule: &str, message: impl Into<String>) -> ApplyError {
    ApplyError::Rejected(Rejection::Rule {
        rule: rule.to_owned(),
        message: message.into(),
    })
}

impl CoopRules {
    /// The co-op record, if genesis has happened (reads any key-value getter).
    pub fn coop(
        get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<CoopState>, StoreError> {
        read(get(COOP_KEY)?)
    }

    /// What the co-op knows of `key`.
    pub fn key(
        get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
        key: &[u8; 32],
    ) -> Result<Option<KeyRecord>, StoreError> {
        read(get(&key_key(key))?)
    }

    fn apply_genesis(
        &self,
        view: &mut StateView<'_>,
        env: &Envelope,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let g = Genesis::from_payload(&env.body().payload)?;
        if g.node_key != env.body().signer {
            return Err(rule(
                "genesis.node_signs",
                "body.signer must be the node key named in body.payload.node",
            ));
        }
        let node = KeyRecord {
            member: "node".into(),
            roles: vec![Role::Node],
            since: ctx.index,
        };
        write(view, &key_key(&g.node_key), &node)?;
        for f in &g.founders {
            let mut roles = vec![Role::Member];
            roles.extend(f.roles.iter().copied());
            let rec = KeyRecord {
                member: member_id(&f.key),
                roles,
                since: ctx.index,
            };
            write(view, &key_key(&f.key), &rec)?;
        }
        let coop = CoopState {
            name: g.name,
            node_key: b64_encode(g.node_key),
            genesis_index: ctx.index,
            members: g.founders.len() as u64,
        };
        write(view, COOP_KEY, &coop)
    }

    fn apply_attest(&self, env: &Envelope) -> Result<(), ApplyError> {
        let p = &env.body().payload;
        if let Some(extra) = p.keys().find(|k| !["digest", "kind"].contains(&k.as_str())) {
            return Err(Rejection::Malformed {
                field: format!("body.payload.{extra}"),
                reason: "unknown field".into(),
            }
            .into());
        }
        let digest_ok = p
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|s| b64_decode(s).ok())
            .is_some_and(|d| d.len() == 32);
        if !digest_ok {
            return Err(Rejection::Malformed {
                field: "body.payload.digest".into(),
                reason: "must be base64 of a 32-byte SHA-256 digest".into(),
            }
            .into());
        }
        let kind_ok = p.get("kind").and_then(Value::as_str).is_some_and(|k| {
            !k.is_empty()
                && k.len() <= 64
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if !kind_ok {
            return Err(Rejection::Malformed {
                field: "body.payload.kind".into(),
                reason: "must be 1 to 64 characters of [a-z0-9-], e.g. \"minutes\"".into(),
            }
            .into());
        }
        Ok(())
    }
}

impl StateMachine for CoopRules {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        ENTRY_TYPES.iter().any(|(k, v)| *k == kind && *v == version)
    }

    fn apply(
        &self,
        view: &mut StateView<'_>,
        entry: &Verified<Envelope>,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let body = entry.body();
        let coop: Option<CoopState> = read(view.get(COOP_KEY)?)?;
        match (coop, body.kind.as_str()) {
            (None, "coop.genesis") => return self.apply_genesis(view, entry, ctx),
            (None, _) => {
                return Err(rule(
                    "genesis.first",
                    "the ledger has no genesis yet; the first entry must be coop.genesis",
                ))
            }
            (Some(_), "coop.genesis") => {
                return Err(rule(
                    "genesis.once",
                    "this co-op already has its genesis entry",
                ))
            }
            (Some(_), _) => {}
        }
        // Only keys known to the co-op may sign.
        let known: Option<KeyRecord> = read(view.get(&key_key(&body.signer))?)?;
        let Some(_signer) = known else {
            return Err(Rejection::UnknownSigner {
                signer: b64_encode(body.signer),
            }
            .into());
        };
        match body.kind.as_str() {
            "coop.attest" => self.apply_attest(entry),
            other => Err(rule(
                "type.registered",
                format!("entry type {other:?} has no rule (registry and rules disagree)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
