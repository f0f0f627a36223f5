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
/// until it caught up (by snapshot first, [`caught_up`]), then makes it a voter; a leave
/// removes it.
pub async fn carry_out(raft: &Raft<Cluster>, req: &ClusterRequest) -> Result<(), MembershipError> {
    leader_check(raft)?;
    let raft_err = |e: &dyn std::fmt::Display| MembershipError::Raft(e.to_string());
    match req.action.as_str() {
        "join" => {
            let addr = ReplicaAddr {
                public: req.public.clone(),
                cluster: req.cluster.clone(),
            };
            // Not openraft's own wait (`blocking = true`): it counts a learner that holds
            // nothing as caught up while the log is shorter than `replication_lag_threshold`
            // (5,000 Raft entries), so on a young cluster it made a voter of a replica still
            // installing its snapshot — one that could not help the quorum, and whose catch-up
            // took the cores from the replicas that did (`docs/replication.md` §6).
            let added = raft
                .add_learner(req.id, addr, false)
                .await
                .map_err(|e| raft_err(&e))?;
            let at = added.log_id.index;
            let seen = raft
                .wait(Some(CATCH_UP_TIMEOUT))
                .metrics(
                    |m| caught_up(m, req.id, at) || m.current_leader != Some(m.id),
                    "the joining replica holds the log",
                )
                .await
                .map_err(|_| {
                    MembershipError::Raft(format!(
                        "replica {} did not catch up within {} s; it stays a learner and \
                         keeps catching up — ask again to make it a voter",
                        req.id,
                        CATCH_UP_TIMEOUT.as_secs()
                    ))
                })?;
            if !caught_up(&seen, req.id, at) {
                return Err(MembershipError::Raft(
                    "this replica stopped leading while the new one caught up".into(),
                ));
            }
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

/// How long the leader waits for a joining replica to catch up before it refuses the join for
/// now (the replica stays a learner and keeps catching up; the joiner asks again, and
/// `coop serve` does so by itself). Inside [`JOIN_TIMEOUT`] and the CLI's 60 s call limit, so
/// the joiner hears the reason rather than a timeout.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(50);

/// Raft entries a learner may still lack and be made a voter: a few rounds of batches, which
/// it receives at line rate once it holds the log up to its own admission.
pub const CAUGHT_UP_LAG: u64 = 64;

/// Whether, in the leader's metrics `m`, replica `id` holds the Raft log up to `at` (the entry
/// that admitted it, so the snapshot it needed is installed) and lacks at most
/// [`CAUGHT_UP_LAG`] of the leader's entries: only then can it help a quorum.
pub fn caught_up(m: &openraft::RaftMetrics<u64, ReplicaAddr>, id: u64, at: u64) -> bool {
    let matched = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&id).copied().flatten())
        .map(|l| l.index);
    match (matched, m.last_log_index) {
        (Some(matched), Some(last)) => {
            matched >= at && last.saturating_sub(matched) <= CAUGHT_UP_LAG
        }
        _ => false,
    }
}
