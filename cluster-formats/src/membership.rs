//! Who is in the cluster, as written down: a replica's own record of its place
//! (`cluster.json` in its data folder), the signed requests by which a replica joins or leaves
//! — signed with the co-op's log key, which only replicas hold, so no operator token travels —
//! and the cluster's status as `coop cluster status` shows it. What the leader does with a
//! request is the node's (`node::cluster::membership`).

use crate::ReplicaAddr;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A replica's place in its cluster, kept in `<data>/cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterFile {
    /// This replica's id (unique in the cluster, not 0).
    pub id: u64,
    /// Its public JSON-RPC URL.
    pub public: String,
    /// Its cluster listener address (`host:port`).
    pub cluster: String,
    /// The first replica: make a one-replica cluster on first start.
    pub initialize: bool,
    /// A joining replica: the public URL of a member to ask to let it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_via: Option<String>,
}

/// Why `cluster.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    /// The file system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a cluster file, or a field is wrong.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ClusterFile {
    /// Where it lives in a data folder.
    pub fn path(data: &Path) -> PathBuf {
        data.join("cluster.json")
    }

    /// Reads it (`None`: the folder is a single node's).
    pub fn read(data: &Path) -> Result<Option<ClusterFile>, ClusterFileError> {
        let path = ClusterFile::path(data);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ClusterFileError::Io { path, source }),
        };
        let file = ClusterFile::parse(&text)
            .map_err(|reason| ClusterFileError::Invalid { path, reason })?;
        Ok(Some(file))
    }

    /// Parses the file's text: JSON, no unknown field, every field checked.
    pub fn parse(text: &str) -> Result<ClusterFile, String> {
        let file: ClusterFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        file.check()?;
        Ok(file)
    }

    /// Writes it (atomically: a temporary file renamed).
    pub fn write(&self, data: &Path) -> Result<(), ClusterFileError> {
        let path = ClusterFile::path(data);
        self.check().map_err(|reason| ClusterFileError::Invalid {
            path: path.clone(),
            reason,
        })?;
        let tmp = data.join("cluster.json.tmp");
        let io = |source| ClusterFileError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| ClusterFileError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Written, synced, renamed over the old one, and the rename synced: a crash leaves
        // the old file or the new one, whole.
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut out, (text + "\n").as_bytes()).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(data)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// This replica's addresses.
    pub fn addr(&self) -> ReplicaAddr {
        ReplicaAddr {
            public: self.public.clone(),
            cluster: self.cluster.clone(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.id == 0 {
            return Err("`id`: 0 is not a replica id".into());
        }
        check_addr("public", &self.public)?;
        check_addr("cluster", &self.cluster)?;
        Ok(())
    }
}

fn check_addr(field: &str, a: &str) -> Result<(), String> {
    if a.is_empty() || a.len() > 256 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{field}`: an address of 1 to 256 characters without spaces"
        ));
    }
    Ok(())
}

/// What a replica asks of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterRequest {
    /// `join` or `leave`.
    pub action: String,
    /// The replica's id.
    pub id: u64,
    /// Its public URL (`join`).
    #[serde(default)]
    pub public: String,
    /// Its cluster address (`join`).
    #[serde(default)]
    pub cluster: String,
    /// When it was signed, ms since the epoch.
    pub ts: u64,
    /// Ed25519 signature by the co-op's log key over [`ClusterRequest::message`], base64.
    pub sig: String,
}

/// How far a request's time may be from the leader's clock.
pub const REQUEST_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Why a cluster request was refused: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct RequestError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl ClusterRequest {
    /// The bytes signed: a domain-separated, line-per-field text (no field holds a newline).
    pub fn message(action: &str, id: u64, public: &str, cluster: &str, ts: u64) -> Vec<u8> {
        format!("coopledger/cluster-request/v1\n{action}\n{id}\n{public}\n{cluster}\n{ts}\n")
            .into_bytes()
    }

    /// A request signed by the log key.
    pub fn sign(
        key: &SigningKey,
        action: &str,
        id: u64,
        addr: Option<&ReplicaAddr>,
        ts: u64,
    ) -> ClusterRequest {
        let (public, cluster) = addr.map_or((String::new(), String::new()), |a| {
            (a.public.clone(), a.cluster.clone())
        });
        let sig = key.sign(&ClusterRequest::message(action, id, &public, &cluster, ts));
        ClusterRequest {
            action: action.to_owned(),
            id,
            public,
            cluster,
            ts,
            sig: b64_encode(sig.to_bytes()),
        }
    }

    /// Checks the signature (by `log_key`), the time window and the fields.
    pub fn verify(&self, log_key: &VerifyingKey, now_ms: u64) -> Result<(), RequestError> {
        let field = |field, reason: &str| RequestError {
            field,
            reason: reason.to_owned(),
        };
        if self.action != "join" && self.action != "leave" {
            return Err(field("action", "`join` or `leave`"));
        }
        if self.id == 0 {
            return Err(field("id", "0 is not a replica id"));
        }
        if self.action == "join" {
            check_addr("public", &self.public).map_err(|r| field("public", &r))?;
            check_addr("cluster", &self.cluster).map_err(|r| field("cluster", &r))?;
        }
        if self.ts.abs_diff(now_ms) > REQUEST_WINDOW_MS {
            return Err(field("ts", "more than 5 minutes from the leader's clock"));
        }
        let sig: [u8; 64] = b64_decode(&self.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| field("sig", "base64 of 64 bytes"))?;
        let msg =
            ClusterRequest::message(&self.action, self.id, &self.public, &self.cluster, self.ts);
        log_key
            .verify(&msg, &Signature::from_bytes(&sig))
            .map_err(|_| field("sig", "not the co-op's log key's signature"))
    }
}

/// One replica in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaStatus {
    /// Its id.
    pub id: u64,
    /// Its public URL.
    pub public: String,
    /// Its cluster address.
    pub cluster: String,
    /// A voter (else a learner catching up).
    pub voter: bool,
    /// The last Raft index the leader knows it holds (leader's view; `None` elsewhere or
    /// unknown).
    pub matched: Option<u64>,
    /// Raft entries it is behind the leader's last one (leader's view).
    pub lag: Option<u64>,
}

/// The cluster as one replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterStatus {
    /// The replica answering.
    pub id: u64,
    /// The leader's id, if known.
    pub leader: Option<u64>,
    /// The leader's public URL, if known.
    pub leader_public: Option<String>,
    /// The current Raft term.
    pub term: u64,
    /// The last Raft index this replica applied.
    pub applied: Option<u64>,
    /// Its last Raft index.
    pub last_log: Option<u64>,
    /// Its ledger's released size.
    pub ledger_size: u64,
    /// Every replica in the membership.
    pub replicas: Vec<ReplicaStatus>,
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

    const NOW: u64 = 1_800_000_000_000;

    fn addr() -> ReplicaAddr {
        ReplicaAddr {
            public: "http://127.0.0.1:7000".into(),
            cluster: "127.0.0.1:7100".into(),
        }
    }

    #[test]
    fn cluster_file_refuses_unknown_fields_id_zero_and_bad_addresses() {
        let good = r#"{"id":2,"public":"http://127.0.0.1:7000","cluster":"127.0.0.1:7100","initialize":false}"#;
        assert_eq!(ClusterFile::parse(good).unwrap().addr(), addr());
        let unknown = good.replace("\"id\":2", "\"id\":2,\"leader\":true");
        assert!(ClusterFile::parse(&unknown)
            .unwrap_err()
            .contains("unknown field"));
        let zero = good.replace("\"id\":2", "\"id\":0");
        assert!(ClusterFile::parse(&zero).unwrap_err().contains("`id`"));
        let spaced = good.replace("127.0.0.1:7100", "127.0.0.1 7100");
        assert!(ClusterFile::parse(&spaced)
            .unwrap_err()
            .contains("`cluster`"));
    }

    #[test]
    fn cluster_file_is_written_whole_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("cluster-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(ClusterFile::read(&dir).unwrap().is_none());
        let file = ClusterFile {
            id: 3,
            public: addr().public,
            cluster: addr().cluster,
            initialize: false,
            join_via: Some("http://127.0.0.1:7001".into()),
        };
        file.write(&dir).unwrap();
        assert_eq!(ClusterFile::read(&dir).unwrap(), Some(file));
        assert!(!dir.join("cluster.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_request_verifies_only_under_the_log_key_in_its_window_with_its_fields() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let req = ClusterRequest::sign(&key, "join", 4, Some(&addr()), NOW);
        req.verify(&key.verifying_key(), NOW).unwrap();
        let field = |r: &ClusterRequest, k: &SigningKey, now| {
            r.verify(&k.verifying_key(), now).unwrap_err().field
        };
        assert_eq!(field(&req, &other, NOW), "sig");
        assert_eq!(field(&req, &key, NOW + REQUEST_WINDOW_MS + 1), "ts");
        let mut moved = req.clone();
        moved.cluster = "127.0.0.1:9999".into();
        assert_eq!(field(&moved, &key, NOW), "sig");
        let odd = ClusterRequest::sign(&key, "promote", 4, Some(&addr()), NOW);
        assert_eq!(field(&odd, &key, NOW), "action");
        let zero = ClusterRequest::sign(&key, "leave", 0, None, NOW);
        assert_eq!(field(&zero, &key, NOW), "id");
        let mut short = req;
        short.sig = "AAAA".into();
        assert_eq!(field(&short, &key, NOW), "sig");
        let text = r#"{"action":"leave","id":2,"ts":1,"sig":"","extra":1}"#;
        assert!(serde_json::from_str::<ClusterRequest>(text).is_err());
    }
}
