//! The command one Raft entry carries: a batch a replica's log proposed
//! (`coopledger_ledger::batch::ProposedBatch`), as JSON with the entries' bytes in base64.

use base64::Engine;
use coopledger_ledger::batch::{BatchItem, OfflogOp, OwnEntry, ProposedBatch};
use serde::{Deserialize, Serialize};

/// What one Raft entry carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Command {
    /// A batch a replica's log proposed (`ledger::log::replication`).
    Batch(BatchCommand),
}

/// A proposed batch as it is stored in the Raft log and sent between replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchCommand {
    /// The proposing log's opening id (only it answers submitters).
    pub proposer: u64,
    /// The proposer's number for the batch.
    pub ticket: u64,
    /// The entries, in order.
    pub items: Vec<Item>,
    /// The proposer's batch time, ms since the epoch.
    pub batch_time_ms: u64,
}

/// One item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Item {
    /// A signed entry's canonical bytes, base64.
    Signed(String),
    /// One of the node's own entries, signed by each replica with the log key as it is
    /// sequenced.
    Own {
        /// Entry type.
        kind: String,
        /// Payload schema version.
        version: u64,
        /// The payload, in the ledger's JSON (integers only: a float would not come back the
        /// same on every replica, so it is refused here).
        #[serde(deserialize_with = "ledger_json")]
        payload: serde_json::Map<String, serde_json::Value>,
    },
    /// Off-log writes (ballot box, vault, witness state…), applied with the batch.
    Offlog(Vec<OfflogWire>),
}

/// A payload the ledger's canonical JSON accepts (`coopledger_ledger::codec`).
fn ledger_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    let value = serde_json::Value::Object(serde_json::Map::deserialize(d)?);
    coopledger_ledger::codec::canonical_json(&value, "payload")
        .map_err(serde::de::Error::custom)?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(serde::de::Error::custom("payload: not an object")),
    }
}

/// One off-log write; keys and values base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum OfflogWire {
    /// Store `value` under `key`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Shred `keys` (crypto-shredding: their bytes leave every file).
    Shred {
        /// The keys.
        keys: Vec<String>,
    },
}

impl OfflogWire {
    fn from_op(op: OfflogOp) -> OfflogWire {
        let b64 = base64::engine::general_purpose::STANDARD;
        match op {
            OfflogOp::Put { key, value } => OfflogWire::Put {
                key: b64.encode(key),
                value: b64.encode(value),
            },
            OfflogOp::Delete { key } => OfflogWire::Delete {
                key: b64.encode(key),
            },
            OfflogOp::Shred { keys } => OfflogWire::Shred {
                keys: keys.into_iter().map(|k| b64.encode(k)).collect(),
            },
        }
    }

    /// The write; base64 that does not decode becomes empty bytes (identically everywhere).
    fn into_op(self) -> OfflogOp {
        let b64 = base64::engine::general_purpose::STANDARD;
        let d = |t: String| b64.decode(t).unwrap_or_default();
        match self {
            OfflogWire::Put { key, value } => OfflogOp::Put {
                key: d(key),
                value: d(value),
            },
            OfflogWire::Delete { key } => OfflogOp::Delete { key: d(key) },
            OfflogWire::Shred { keys } => OfflogOp::Shred {
                keys: keys.into_iter().map(d).collect(),
            },
        }
    }
}

impl From<ProposedBatch> for BatchCommand {
    fn from(b: ProposedBatch) -> BatchCommand {
        let b64 = base64::engine::general_purpose::STANDARD;
        BatchCommand {
            proposer: b.proposer,
            ticket: b.ticket,
            items: b
                .items
                .into_iter()
                .map(|i| match i {
                    BatchItem::Signed(bytes) => Item::Signed(b64.encode(bytes)),
                    BatchItem::Own(own) => Item::Own {
                        kind: own.kind,
                        version: own.version,
                        payload: own.payload,
                    },
                    BatchItem::Offlog(ops) => {
                        Item::Offlog(ops.into_iter().map(OfflogWire::from_op).collect())
                    }
                })
                .collect(),
            batch_time_ms: b.batch_time_ms,
        }
    }
}

impl BatchCommand {
    /// Whether applying it shreds off-log records (after which the Raft log's copies must go).
    pub fn shreds(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(i, Item::Offlog(ops) if ops.iter().any(|o| matches!(o, OfflogWire::Shred { .. })))
        })
    }

    /// The batch for the ledger. An item whose base64 does not decode is passed on empty, so
    /// every replica refuses it identically (an empty entry does not parse).
    pub fn into_batch(self) -> ProposedBatch {
        let b64 = base64::engine::general_purpose::STANDARD;
        ProposedBatch {
            proposer: self.proposer,
            ticket: self.ticket,
            items: self
                .items
                .into_iter()
                .map(|i| match i {
                    Item::Signed(text) => BatchItem::Signed(b64.decode(text).unwrap_or_default()),
                    Item::Own {
                        kind,
                        version,
                        payload,
                    } => BatchItem::Own(OwnEntry {
                        kind,
                        version,
                        payload,
                    }),
                    Item::Offlog(ops) => {
                        BatchItem::Offlog(ops.into_iter().map(OfflogWire::into_op).collect())
                    }
                })
                .collect(),
            batch_time_ms: self.batch_time_ms,
        }
    }
}

/// What applying a command answers the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Applied {
    /// Tree size after the command.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "test code: a panic is a test failure with a message"
    )]

    use super::*;

    fn batch() -> ProposedBatch {
        let mut payload = serde_json::Map::new();
        payload.insert("size".into(), serde_json::json!(4));
        ProposedBatch {
            proposer: 11,
            ticket: 3,
            items: vec![
                BatchItem::Signed(b"{\"signed\":1}".to_vec()),
                BatchItem::Own(OwnEntry {
                    kind: "witness.cosigned".into(),
                    version: 1,
                    payload,
                }),
                BatchItem::Offlog(vec![
                    OfflogOp::Put {
                        key: vec![0, 1],
                        value: vec![255],
                    },
                    OfflogOp::Delete { key: vec![2] },
                    OfflogOp::Shred {
                        keys: vec![vec![3], vec![]],
                    },
                ]),
            ],
            batch_time_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_batch_survives_the_command_and_its_json() {
        let command = Command::Batch(BatchCommand::from(batch()));
        let json = serde_json::to_vec(&command).unwrap();
        let Command::Batch(back) = serde_json::from_slice::<Command>(&json).unwrap();
        assert!(back.shreds());
        assert_eq!(back.into_batch(), batch());
    }

    #[test]
    fn unknown_fields_are_refused_and_bad_base64_becomes_an_empty_entry() {
        let extra = r#"{"batch":{"proposer":1,"ticket":1,"items":[],"batchTimeMs":0,"x":1}}"#;
        assert!(serde_json::from_str::<Command>(extra).is_err());
        let bad =
            r#"{"batch":{"proposer":1,"ticket":1,"items":[{"signed":"!!"}],"batchTimeMs":0}}"#;
        let Command::Batch(b) = serde_json::from_str::<Command>(bad).unwrap();
        assert!(!b.shreds());
        assert_eq!(b.into_batch().items, vec![BatchItem::Signed(Vec::new())]);
    }
}
