//! Who is in the cluster (`docs/replication.md` §6): a replica's own record of its place
//! (`cluster.json` in its data folder), the signed requests by which a replica joins or leaves
//! — signed with the co-op's log key, which only replicas hold, so no operator token travels —
//! and what the leader does with them, and the cluster's status as `coop cluster status` shows
//! it.

use super::{Cluster, ReplicaAddr};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use openraft::{ChangeMembers, Raft};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        let file: ClusterFile =
            serde_json::from_str(&text).map_err(|e| ClusterFileError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        file.check()
            .map_err(|reason| ClusterFileError::Invalid { path, reason })?;
        Ok(Some(file))
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
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
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

/// Why a cluster request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// A field is wrong (named).
    #[error("`{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// This replica is not the leader.
    #[error("this replica is not the leader")]
    NotLeader {
        /// The leader's public URL, if known.
        leader: Option<String>,
    },
    /// Raft refused or failed.
    #[error("raft: {0}")]
    Raft(String),
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
    pub fn verify(&self, log_key: &VerifyingKey, now_ms: u64) -> Result<(), MembershipError> {
        let field = |field, reason: &str| MembershipError::Field {
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

fn leader_check(raft: &Raft<Cluster>) -> Result<(), MembershipError> {
    let m = raft.metrics().borrow().clone();
    if m.current_leader == Some(m.id) {
        return Ok(());
    }
    let leader = m
        .current_leader
        .and_then(|l| m.membership_config.membership().get_node(&l).cloned())
        .map(|n| n.public);
    Err(MembershipError::NotLeader { leader })
}

/// Carries out a verified request on the leader: a join adds the replica as a learner, waits
/// until it caught up (by snapshot first), then makes it a voter; a leave removes it.
pub async fn carry_out(raft: &Raft<Cluster>, req: &ClusterRequest) -> Result<(), MembershipError> {
    leader_check(raft)?;
    let raft_err = |e: &dyn std::fmt::Display| MembershipError::Raft(e.to_string());
    match req.action.as_str() {
        "join" => {
            let addr = ReplicaAddr {
                public: req.public.clone(),
                cluster: req.cluster.clone(),
            };
            raft.add_learner(req.id, addr, true)
                .await
                .map_err(|e| raft_err(&e))?;
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([req.id])), false)
                .await
                .map_err(|e| raft_err(&e))?;
        }
        _ => {
            // One membership change: out of the voters and, not retained as a learner, out of
            // the cluster.
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([req.id])), false)
                .await
                .map_err(|e| raft_err(&e))?;
        }
    }
    Ok(())
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

/// The status from `raft`'s metrics.
pub fn status(raft: &Raft<Cluster>, ledger_size: u64) -> ClusterStatus {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let matched: BTreeMap<u64, Option<u64>> = m
        .replication
        .as_ref()
        .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
        .unwrap_or_default();
    let last = m.last_log_index;
    let replicas = membership
        .nodes()
        .map(|(id, n)| {
            let seen = if *id == m.id {
                last
            } else {
                matched.get(id).copied().flatten()
            };
            let leading = m.current_leader == Some(m.id);
            ReplicaStatus {
                id: *id,
                public: n.public.clone(),
                cluster: n.cluster.clone(),
                voter: voters.contains(id),
                matched: if leading { seen } else { None },
                lag: if leading {
                    last.map(|l| l.saturating_sub(seen.unwrap_or(0)))
                } else {
                    None
                },
            }
        })
        .collect();
    ClusterStatus {
        id: m.id,
        leader: m.current_leader,
        leader_public: m
            .current_leader
            .and_then(|l| membership.get_node(&l))
            .map(|n| n.public.clone()),
        term: m.current_term,
        applied: m.last_applied.map(|l| l.index),
        last_log: last,
        ledger_size,
        replicas,
    }
}

/// How long a join may take on the leader (the newcomer's snapshot included).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
