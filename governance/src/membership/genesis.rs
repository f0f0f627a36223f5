//! The genesis entry: what a co-op is when its ledger begins.

use crate::bylaws::Bylaws;
use crate::tally::ClassId;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::Rejection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A role a key can hold; entry types are gated by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary member.
    Member,
    /// Board of directors.
    Board,
    /// Keeps the books, records revenue.
    Treasurer,
    /// Audits; may read everything, signs audit statements.
    Auditor,
    /// The ledger node itself (genesis, node records).
    Node,
}

impl Role {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "board" => Some(Role::Board),
            "treasurer" => Some(Role::Treasurer),
            "auditor" => Some(Role::Auditor),
            "node" => Some(Role::Node),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Board => "board",
            Role::Treasurer => "treasurer",
            Role::Auditor => "auditor",
            Role::Node => "node",
        }
    }
}

/// A founding member: a key, a member class and the roles it starts with (every founder is a
/// member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Founder {
    /// Ed25519 public key.
    pub key: [u8; 32],
    /// Member class, one of the bylaws' classes.
    pub class: ClassId,
    /// Roles besides `member`.
    pub roles: Vec<Role>,
}

/// The payload of `coop.genesis` v1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Display name of the co-op (not personal data).
    pub name: String,
    /// The node's key: signs genesis, checkpoints and node records.
    pub node_key: [u8; 32],
    /// Founding members.
    pub founders: Vec<Founder>,
    /// The first bylaws (version 1).
    pub bylaws: Bylaws,
}

/// Pseudonymous member id derived from the member's first key: `m-` and 16 hex digits of
/// `SHA-256("coopledger/member\0" ‖ key)`. No personal data is needed to name a member.
pub fn member_id(first_key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"coopledger/member\0");
    h.update(first_key);
    let d: [u8; 32] = h.finalize().into();
    format!("m-{}", hex::encode(&d[..8]))
}

/// Whether `s` has the shape of a member id.
pub fn is_member_id(s: &str) -> bool {
    s.len() == 18
        && s.starts_with("m-")
        && s.bytes()
            .skip(2)
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

use crate::payload::malformed;

fn key_from(v: Option<&Value>, field: &str) -> Result<[u8; 32], Rejection> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(field, "must be a base64 Ed25519 public key"))?;
    let k = b64_decode(s)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| malformed(field, "must be base64 of 32 bytes"))?;
    if !coopledger_ledger::sig::is_acceptable_key(&k) {
        return Err(malformed(
            field,
            "is not a canonical, full-order Ed25519 key",
        ));
    }
    Ok(k)
}

impl Genesis {
    /// The payload object.
    pub fn to_payload(&self) -> Map<String, Value> {
        let founders: Vec<Value> = self
            .founders
            .iter()
            .map(|f| {
                serde_json::json!({
                    "key": b64_encode(f.key),
                    "class": f.class,
                    "roles": f.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("node".into(), Value::String(b64_encode(self.node_key)));
        m.insert("founders".into(), Value::Array(founders));
        m.insert(
            "bylaws".into(),
            serde_json::to_value(&self.bylaws).unwrap_or(Value::Null),
        );
        m
    }

    /// Parses and validates the payload; errors name the field.
    pub fn from_payload(p: &Map<String, Value>) -> Result<Genesis, Rejection> {
        if let Some(extra) = p
            .keys()
            .find(|k| !["name", "node", "founders", "bylaws"].contains(&k.as_str()))
        {
            return Err(malformed(extra, "unknown field"));
        }
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.chars().count() <= 200)
            .ok_or_else(|| malformed("name", "must be a string of 1 to 200 characters"))?
            .to_owned();
        let node_key = key_from(p.get("node"), "node")?;
        let bylaws = parse_bylaws(p.get("bylaws"), "bylaws")?;
        if bylaws.version != 1 {
            return Err(malformed(
                "bylaws.version",
                "the first bylaws are version 1",
            ));
        }
        let list = p
            .get("founders")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= 1000)
            .ok_or_else(|| malformed("founders", "must be a list of 1 to 1000 founders"))?;
        let mut founders: Vec<Founder> = Vec::with_capacity(list.len());
        for (i, f) in list.iter().enumerate() {
            let field = format!("founders[{i}]");
            let key = key_from(f.get("key"), &format!("{field}.key"))?;
            if key == node_key || founders.iter().any(|g| g.key == key) {
                return Err(malformed(&format!("{field}.key"), "appears twice"));
            }
            let class = f
                .get("class")
                .and_then(Value::as_str)
                .filter(|c| bylaws.classes.contains_key(*c))
                .ok_or_else(|| {
                    malformed(
                        &format!("{field}.class"),
                        "must name one of the bylaws' member classes",
                    )
                })?
                .to_owned();
            let mut roles = Vec::new();
            for (j, r) in f
                .get("roles")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(&format!("{field}.roles"), "must be a list"))?
                .iter()
                .enumerate()
            {
                let role = r
                    .as_str()
                    .and_then(Role::parse)
                    .filter(|r| !matches!(r, Role::Node | Role::Member))
                    .ok_or_else(|| {
                        malformed(
                            &format!("{field}.roles[{j}]"),
                            "must be board, treasurer or auditor",
                        )
                    })?;
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            roles.sort();
            founders.push(Founder { key, class, roles });
        }
        Ok(Genesis {
            name,
            node_key,
            founders,
            bylaws,
        })
    }
}

/// Parses and validates bylaws found at `body.payload.<field>`; errors name the nested field.
pub(crate) fn parse_bylaws(v: Option<&Value>, field: &str) -> Result<Bylaws, Rejection> {
    let v = v.ok_or_else(|| malformed(field, "the bylaws object is required"))?;
    Bylaws::from_json(v).map_err(|e| {
        let at = if e.field.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", e.field)
        };
        malformed(&at, e.reason)
    })
}
