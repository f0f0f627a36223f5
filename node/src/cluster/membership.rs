//! Who is in the cluster (`docs/replication.md` §6): a replica's own record of its place
//! (`cluster.json` in its data folder), the signed requests by which a replica joins or leaves
//! — signed with the co-op's log key, which only replicas hold, so no operator token travels —
//! and what the leader does with them, and the cluster's status as `coop cluster status` shows
//! it.

use super::{Cluster, ReplicaAddr};
pub use coopledger_cluster_formats::membership::{
    ClusterFile, ClusterFileError, ClusterRequest, ClusterStatus, ReplicaStatus, RequestError,
    REQUEST_WINDOW_MS,
};
use openraft::{ChangeMembers, Raft};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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

impl From<RequestError> for MembershipError {
    fn from(e: RequestError) -> MembershipError {
        MembershipError::Field {
            field: e.field,
            reason: e.reason,
        }
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
