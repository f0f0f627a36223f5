//! Three replicas in one process, with real openraft, real ledgers on disk and a loopback
//! network that can cut a replica off (the network over sockets is `rpc`'s, tested there):
//! every replica signs the same notes over the same entries; a follower refuses submissions
//! with the leader's address; the leader's death elects another that acknowledges; a cut-off
//! leader acknowledges nothing and its uncommitted tail never reaches any ledger; a replica
//! that joins after the log was purged catches up by snapshot, even when installing it outlasts
//! one try, and becomes a voter only once it holds the log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use super::network::{self, CallFailed, CallFuture, PeerCalls};
use super::replica::{PurgeReport, Replica, ReplicaConfig};
use super::tests::Notes;
use super::{Cluster, ReplicaAddr};
use coopledger_ledger::log::{now_ms, LogConfig};
use coopledger_ledger::{Body, Envelope, Log, SubmitError};
use ed25519_dalek::SigningKey;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ORIGIN: &str = "cluster.example/log";

/// Loopback network: calls go straight to the target's Raft, unless either end is cut off.
#[derive(Clone, Default)]
struct Net {
    rafts: Arc<Mutex<HashMap<u64, Raft<Cluster>>>>,
    cut: Arc<Mutex<HashSet<u64>>>,
    /// Replicas Raft cannot reach, but calls outside Raft can (they fall behind, and say so).
    behind: Arc<Mutex<HashSet<u64>>>,
    /// Calls carrying a snapshot's last piece (the ones that install it), by receiver.
    installs: Arc<Mutex<HashMap<u64, usize>>>,
}

impl Net {
    fn raft_target(&self, from: u64, to: u64) -> Result<Raft<Cluster>, Unreachable> {
        let behind = self.behind.lock().unwrap();
        if behind.contains(&from) || behind.contains(&to) {
            return Err(Unreachable::new(&std::io::Error::other("held behind")));
        }
        drop(behind);
        self.target(from, to)
    }

    fn target(&self, from: u64, to: u64) -> Result<Raft<Cluster>, Unreachable> {
        let cut = self.cut.lock().unwrap();
        if cut.contains(&from) || cut.contains(&to) {
            return Err(Unreachable::new(&std::io::Error::other("cut off")));
        }
        self.rafts
            .lock()
            .unwrap()
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&std::io::Error::other("no such replica")))
    }
}

struct From {
    net: Net,
    me: u64,
}

/// Calls outside Raft (`network::PURGED`) over the same loopback, by cluster address.
struct Calls {
    net: Net,
    me: u64,
}

impl PeerCalls for Calls {
    fn call(&self, peer: &str, method: &'static str, params: String) -> CallFuture {
        let to = (1..=9).find(|&id| addr(id).cluster == peer);
        let target = to
            .ok_or_else(|| CallFailed(format!("no replica at {peer}")))
            .and_then(|to| {
                self.net
                    .target(self.me, to)
                    .map_err(|e| CallFailed(e.to_string()))
            });
        Box::pin(async move {
            network::answer(&target?, method, &params)
                .await
                .map_err(|e| CallFailed(e.to_string()))
        })
    }
}

struct Conn {
    net: Net,
    me: u64,
    to: u64,
}

impl RaftNetworkFactory<Cluster> for From {
    type Network = Conn;
    async fn new_client(&mut self, target: u64, _: &ReplicaAddr) -> Conn {
        Conn {
            net: self.net.clone(),
            me: self.me,
            to: target,
        }
    }
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, ReplicaAddr, RaftError<u64, E>>>;

impl RaftNetwork<Cluster> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Cluster>,
        _: RPCOption,
    ) -> Rpc<AppendEntriesResponse<u64>> {
        let raft = self.net.raft_target(self.me, self.to)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Cluster>,
        _: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let raft = self.net.raft_target(self.me, self.to)?;
        if rpc.done {
            *self
                .net
                .installs
                .lock()
                .unwrap()
                .entry(self.to)
                .or_default() += 1;
        }
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, _: RPCOption) -> Rpc<VoteResponse<u64>> {
        let raft = self.net.raft_target(self.me, self.to)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

fn addr(id: u64) -> ReplicaAddr {
    ReplicaAddr {
        public: format!("http://127.0.0.1:{}", 9000 + id),
        cluster: format!("127.0.0.1:{}", 9100 + id),
    }
}

struct Cluster3 {
    net: Net,
    dir: tempfile::TempDir,
    replicas: BTreeMap<u64, Replica<Notes>>,
    /// `ReplicaConfig::snapshot_install_timeout` of the replicas started from now on.
    install_timeout: Duration,
}

impl Cluster3 {
    async fn start_replica(&mut self, id: u64, snapshot_every: u64) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = LogConfig {
            replicate: Some(tx),
            ..LogConfig::default()
        };
        let key = SigningKey::from_bytes(&[9; 32]);
        let path = self.dir.path().join(format!("r{id}"));
        let log = if path.join("ledger").exists() {
            Log::open(&path.join("ledger"), key, Notes, config).unwrap()
        } else {
            Log::create(&path.join("ledger"), ORIGIN, key, Notes, config).unwrap()
        };
        let mut rc = ReplicaConfig::new(id, &path);
        rc.submit_timeout = Duration::from_secs(1);
        rc.snapshot_every = snapshot_every;
        rc.keep_after_snapshot = 0;
        rc.snapshot_install_timeout = self.install_timeout;
        let replica = Replica::start(
            rc,
            Arc::new(log),
            rx,
            From {
                net: self.net.clone(),
                me: id,
            },
        )
        .await
        .unwrap()
        .with_peer_calls(Arc::new(Calls {
            net: self.net.clone(),
            me: id,
        }));
        self.net
            .rafts
            .lock()
            .unwrap()
            .insert(id, replica.raft.clone());
        self.replicas.insert(id, replica);
    }

    async fn new(ids: &[u64], snapshot_every: u64) -> Cluster3 {
        Cluster3::with_install_timeout(ids, snapshot_every, Duration::from_secs(60)).await
    }

    async fn with_install_timeout(
        ids: &[u64],
        snapshot_every: u64,
        install_timeout: Duration,
    ) -> Cluster3 {
        let mut c = Cluster3 {
            net: Net::default(),
            dir: tempfile::tempdir().unwrap(),
            replicas: BTreeMap::new(),
            install_timeout,
        };
        for &id in ids {
            c.start_replica(id, snapshot_every).await;
        }
        let members: BTreeMap<u64, ReplicaAddr> = ids.iter().map(|&i| (i, addr(i))).collect();
        c.replicas[&ids[0]].raft.initialize(members).await.unwrap();
        c
    }

    /// The leader every running, reachable replica agrees on.
    async fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let cut = self.net.cut.lock().unwrap().clone();
            let seen: HashSet<Option<u64>> = self
                .replicas
                .iter()
                .filter(|(id, _)| !cut.contains(id))
                .map(|(_, r)| r.raft.metrics().borrow().current_leader)
                .collect();
            if seen.len() == 1 {
                if let Some(Some(l)) = seen.into_iter().next() {
                    if !cut.contains(&l) && self.replicas.contains_key(&l) {
                        return l;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader agreed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The leader takes a snapshot and purges its Raft log below it.
    async fn snapshot_and_purge(&self, leader: u64) {
        self.replicas[&leader]
            .raft
            .trigger()
            .snapshot()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.replicas[&leader].raft.metrics().borrow().clone();
            if m.purged.is_some() && m.snapshot.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "no snapshot or purge: {m:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replica 3 starts empty and joins (1, 2); waits, at most `within`, until it installed a
    /// snapshot and released the leader's checkpoint.
    async fn join_third(&mut self, leader: u64, within: Duration) {
        self.start_replica(3, 5).await;
        let raft = self.replicas[&leader].raft.clone();
        raft.add_learner(3, addr(3), false).await.unwrap();
        raft.change_membership([1, 2, 3], false).await.unwrap();
        let size = self.log(leader).checkpoint().checkpoint.size;
        let deadline = Instant::now() + within;
        loop {
            let m = self.replicas[&3].raft.metrics().borrow().clone();
            if m.snapshot.is_some() && self.log(3).checkpoint().checkpoint.size >= size {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica 3 did not catch up by snapshot: at {} of {size}; {m:?}",
                self.log(3).checkpoint().checkpoint.size
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self, id: u64) -> &Log<Notes> {
        &self.replicas[&id].log
    }

    fn arc(&self, id: u64) -> Arc<Log<Notes>> {
        self.replicas[&id].log.clone()
    }

    /// Waits until replica `id` released a checkpoint of at least `size`.
    async fn released(&self, id: u64, size: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log(id).checkpoint().checkpoint.size < size {
            assert!(
                Instant::now() < deadline,
                "replica {id} stuck at {}, waiting for {size}",
                self.log(id).checkpoint().checkpoint.size
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every running replica holds the same entries and signs the same note at the leader's
    /// size.
    async fn converged(&self, ids: &[u64]) {
        let leader = self.leader().await;
        let size = self.log(leader).checkpoint().checkpoint.size;
        let note = self.log(leader).checkpoint().note.clone();
        let entries: Vec<Vec<u8>> = (0..size)
            .map(|i| self.log(leader).entry(i).unwrap())
            .collect();
        for &id in ids {
            self.released(id, size).await;
            assert_eq!(
                self.log(id).checkpoint_at(size).unwrap().as_deref(),
                Some(note.as_str()),
                "replica {id} signed another note at {size}"
            );
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(&self.log(id).entry(i as u64).unwrap(), e);
            }
        }
    }
}

fn note(key: &SigningKey, seq: u64) -> Envelope {
    let mut payload = serde_json::Map::new();
    payload.insert("n".into(), seq.into());
    Body {
        coop: ORIGIN.into(),
        kind: "test.note".into(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts: now_ms(),
        payload,
    }
    .sign(key)
    .unwrap()
}

/// Stores an off-log record under `key` through `log`, then shreds it (an erasure).
async fn store_and_erase(log: Arc<Log<Notes>>, key: &'static [u8]) {
    use coopledger_ledger::log::replication::OfflogOp;
    log.offlog_write(vec![OfflogOp::Put {
        key: key.to_vec(),
        value: vec![7; 32],
    }])
    .await
    .unwrap();
    log.offlog_write(vec![OfflogOp::Shred {
        keys: vec![key.to_vec()],
    }])
    .await
    .unwrap();
}

/// Submits `count` notes from distinct members concurrently; returns their receipts.
/// Submits `entry` to the current leader until it is acknowledged (at most 30 s).
async fn submit_to_leader(c: &Cluster3, entry: Envelope) -> coopledger_ledger::Receipt {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.arc(c.leader().await).submit(entry.clone()).await {
            Ok(receipt) => return receipt,
            Err(e) => assert!(Instant::now() < deadline, "never acknowledged: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn load(
    log: &Arc<Log<Notes>>,
    first_member: u8,
    count: u8,
) -> Vec<coopledger_ledger::Receipt> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let log = log.clone();
            let key = SigningKey::from_bytes(&[first_member.wrapping_add(i); 32]);
            tokio::spawn(async move { log.submit(note(&key, 1)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_sign_the_same_notes_and_a_new_leader_acknowledges_after_the_old_dies() {
    let mut c = Cluster3::new(&[1, 2, 3], 10_000).await;
    let leader = c.leader().await;
    let receipts = load(&c.arc(leader), 10, 20).await;
    assert_eq!(receipts.len(), 20);
    c.converged(&[1, 2, 3]).await;
    // The leader sequenced its batches while Raft replicated them, and wrote that.
    let (used, again) = c.log(leader).metrics().speculations();
    assert!(
        used >= 1,
        "speculations used {used}, sequenced again {again}"
    );

    // A follower refuses a submission and names the leader's public address.
    let follower = *c.replicas.keys().find(|&&id| id != leader).unwrap();
    let refused = c
        .log(follower)
        .submit(note(&SigningKey::from_bytes(&[99; 32]), 1))
        .await;
    assert_eq!(
        refused,
        Err(SubmitError::NotLeader {
            leader: Some(addr(leader).public)
        })
    );

    // The leader dies; another is elected and acknowledges.
    let died = Instant::now();
    c.net.cut.lock().unwrap().insert(leader);
    let old = c.replicas.remove(&leader).unwrap();
    old.shutdown().await;
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    let more = load(&c.arc(new_leader), 40, 5).await;
    let took = died.elapsed();
    eprintln!("failover: first acknowledgements {took:?} after the leader's death");
    // Every acknowledged entry before the failover is where it was, with the same leaf hash.
    for r in &receipts {
        assert_eq!(
            coopledger_ledger::hash::leaf_hash(&c.log(new_leader).entry(r.index).unwrap()),
            r.leaf_hash
        );
    }
    assert!(more.iter().all(|r| r.index >= receipts.len() as u64));
    let live: Vec<u64> = c.replicas.keys().copied().collect();
    c.converged(&live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_leader_acknowledges_nothing_and_its_tail_reaches_no_ledger() {
    let c = Cluster3::new(&[1, 2, 3], 10_000).await;
    let old = c.leader().await;
    load(&c.arc(old), 10, 3).await;
    c.converged(&[1, 2, 3]).await;
    let before = c.log(old).written_size().unwrap();

    c.net.cut.lock().unwrap().insert(old);
    // The minority leader cannot commit: the submitter is told so, and nothing is applied.
    let lonely = note(&SigningKey::from_bytes(&[77; 32]), 1);
    let answer = c.log(old).submit(lonely.clone()).await;
    assert!(
        matches!(
            answer,
            Err(SubmitError::NoQuorum) | Err(SubmitError::NotLeader { .. })
        ),
        "{answer:?}"
    );
    assert_eq!(c.log(old).written_size().unwrap(), before);

    // The majority goes on.
    let new_leader = c.leader().await;
    assert_ne!(new_leader, old);
    load(&c.arc(new_leader), 30, 3).await;

    // Healed: the old leader's uncommitted proposal is discarded; it converges on the
    // majority's history, and the lonely entry is in no ledger.
    c.net.cut.lock().unwrap().clear();
    c.converged(&[1, 2, 3]).await;
    for id in [1, 2, 3] {
        let log = c.log(id);
        let size = log.checkpoint().checkpoint.size;
        assert!(
            (0..size).all(|i| log.entry(i).unwrap() != lonely.bytes()),
            "replica {id} holds the uncommitted entry"
        );
    }
    // Resubmitted to the leader, it is accepted once.
    let leader = c.leader().await;
    let receipt = c.log(leader).submit(lonely).await.unwrap();
    assert!(!receipt.duplicate);
    c.converged(&[1, 2, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_joining_after_the_log_was_purged_catches_up_by_snapshot() {
    let mut c = Cluster3::new(&[1, 2], 5).await;
    let leader = c.leader().await;
    for round in 0..4u8 {
        load(&c.arc(leader), 10 + round * 10, 4).await;
    }
    c.converged(&[1, 2]).await;
    c.snapshot_and_purge(leader).await;
    c.join_third(leader, Duration::from_secs(10)).await;
    c.converged(&[1, 2, 3]).await;
    // The snapshot may cover erasures it never applied: its erasure mark is raised to the
    // snapshot's index (kept in its ledger), so a replayed erasure is not confirmed early.
    let installed = c.replicas[&3]
        .raft
        .metrics()
        .borrow()
        .snapshot
        .unwrap()
        .index;
    let probe =
        super::state_machine::LedgerMachine::new(c.arc(3), c.dir.path().join("probe")).unwrap();
    assert!(probe.stored_shred_mark().unwrap() >= installed);
    // And it keeps up afterwards.
    load(&c.arc(leader), 90, 3).await;
    c.converged(&[1, 2, 3]).await;
    assert_eq!(
        c.log(3).state_get(b"count").unwrap(),
        c.log(leader).state_get(b"count").unwrap()
    );
}

/// A join (`membership::carry_out`, as `cluster_join` runs it) makes the newcomer a voter only
/// once it holds the log — here a young one, well under openraft's own 5,000-entry "caught up"
/// bound, that it can only get by snapshot: while the leader cannot reach it the join waits and
/// it stays a learner; once it is reachable the join finishes, and by then it holds the snapshot
/// and the log up to its own admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_replica_becomes_a_voter_only_once_it_holds_the_log() {
    let mut c = Cluster3::new(&[1, 2], 5).await;
    let leader = c.leader().await;
    load(&c.arc(leader), 10, 4).await;
    c.converged(&[1, 2]).await;
    c.snapshot_and_purge(leader).await;
    c.start_replica(3, 5).await;
    c.net.behind.lock().unwrap().insert(3);
    let raft = c.replicas[&leader].raft.clone();
    let request = super::membership::ClusterRequest::sign(
        &SigningKey::from_bytes(&[9; 32]),
        "join",
        3,
        Some(&addr(3)),
        now_ms(),
    );
    let join = tokio::spawn({
        let raft = raft.clone();
        async move { super::membership::carry_out(&raft, &request).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m = raft.metrics().borrow().clone();
    assert!(
        !join.is_finished(),
        "the join finished while replica 3 held nothing"
    );
    assert!(
        !m.membership_config.membership().voter_ids().any(|v| v == 3),
        "replica 3 was made a voter before it held the log: {m:?}"
    );
    assert!(
        m.membership_config.membership().get_node(&3).is_some(),
        "replica 3 is not even a learner"
    );
    let held_then = m.last_log_index.unwrap();
    c.net.behind.lock().unwrap().remove(&3);
    tokio::time::timeout(Duration::from_secs(20), join)
        .await
        .expect("the join did not finish once replica 3 was reachable")
        .unwrap()
        .unwrap();
    let m = raft.metrics().borrow().clone();
    assert!(m.membership_config.membership().voter_ids().any(|v| v == 3));
    assert!(
        c.replicas[&3].raft.metrics().borrow().snapshot.is_some(),
        "a voter without the snapshot it needed"
    );
    let matched = m.replication.as_ref().unwrap()[&3].unwrap().index;
    assert!(
        matched >= held_then,
        "replica 3 holds the log to {matched}, the leader held {held_then} before: {m:?}"
    );
    load(&c.arc(leader), 50, 3).await;
    c.converged(&[1, 2, 3]).await;
}

/// A snapshot whose install outlasts the sender's limit: the call installing it runs out, is
/// sent again, and the receiver — which kept importing — imports only what it still lacks. A
/// history longer than one try converges (here 1,000 notes against a 300 ms limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_install_longer_than_one_try_still_converges() {
    let mut c = Cluster3::with_install_timeout(&[1, 2], 5, Duration::from_millis(300)).await;
    for seq in 1..=10u64 {
        let log = c.arc(c.leader().await);
        let tasks: Vec<_> = (0..100u8)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let entry = note(&SigningKey::from_bytes(&[i; 32]), seq);
                    (entry.clone(), log.submit(entry).await)
                })
            })
            .collect();
        for t in tasks {
            if let (entry, Err(e)) = t.await.unwrap() {
                // A loaded machine (CI builds beside the tests) can miss a heartbeat and elect
                // another leader, or let a submit outlast its 1 s: the entry is sent again to
                // whoever leads (the same entry, so a copy committed after all answers with its
                // receipt and counts once).
                eprintln!("seq {seq}: {e}; sent again");
                submit_to_leader(&c, entry).await;
            }
        }
    }
    c.converged(&[1, 2]).await;
    let leader = c.leader().await;
    c.snapshot_and_purge(leader).await;
    let started = Instant::now();
    c.join_third(leader, Duration::from_secs(120)).await;
    let tries = c.net.installs.lock().unwrap().get(&3).copied().unwrap_or(0);
    eprintln!(
        "caught up by snapshot in {:?}, {tries} tries",
        started.elapsed()
    );
    assert!(tries >= 2, "the install never outlasted a try ({tries})");
    c.converged(&[1, 2, 3]).await;
    assert_eq!(
        c.log(3).state_get(b"count").unwrap(),
        Some(1000u64.to_be_bytes().to_vec())
    );
}

/// An erasure's answer speaks for every replica: each one confirms over the network that it
/// purged its Raft log through the erasure; one that is cut off is named as pending, and
/// confirms once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_confirms_an_erasure_purged_and_a_cut_off_one_is_named_pending() {
    let c = Cluster3::new(&[1, 2, 3], 10_000).await;
    let leader = c.leader().await;
    let follower = *c.replicas.keys().find(|&&id| id != leader).unwrap();
    let erase = |key: &'static [u8]| store_and_erase(c.arc(leader), key);
    load(&c.arc(leader), 10, 5).await;
    erase(b"pii-key/first").await;
    // The erasure's Raft index: the last one applied when its write returned.
    let erased_at = c.replicas[&leader]
        .raft
        .metrics()
        .borrow()
        .last_applied
        .unwrap()
        .index;
    let report = c.replicas[&leader]
        .erasure_purged(Duration::from_secs(30), Duration::from_secs(20))
        .await;
    assert_eq!(
        report,
        PurgeReport {
            purged: vec![1, 2, 3],
            pending: vec![]
        }
    );
    // Confirmed means done: each replica's log is purged through the erasure already.
    for (id, r) in &c.replicas {
        let purged = r.raft.metrics().borrow().purged.map_or(0, |l| l.index);
        assert!(
            purged >= erased_at,
            "replica {id}: purged {purged} < {erased_at}"
        );
    }
    // A malformed question gets no answer.
    let raft = c.replicas[&leader].raft.clone();
    assert!(network::answer(&raft, network::PURGED, r#"{"x":1}"#)
        .await
        .is_err());

    c.net.cut.lock().unwrap().insert(follower);
    erase(b"pii-key/second").await;
    let report = c.replicas[&leader]
        .erasure_purged(Duration::from_secs(30), Duration::from_millis(500))
        .await;
    assert_eq!(report.pending, vec![follower]);
    assert_eq!(report.purged.len(), 2);
    assert!(!report.purged.contains(&follower));

    c.net.cut.lock().unwrap().remove(&follower);
    let report = c.replicas[&leader]
        .erasure_purged(Duration::from_secs(30), Duration::from_secs(20))
        .await;
    assert_eq!(
        report,
        PurgeReport {
            purged: vec![1, 2, 3],
            pending: vec![]
        }
    );
}

/// Erasure entries are public, so anyone can send one again: the replay is answered from the
/// replicas' purge marks, with no snapshot and no purge, and against the index of the latest
/// erasure — kept across a restart, so a replica that has not purged is never called done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_erasure_takes_no_snapshot_and_is_answered_across_a_restart() {
    let mut c = Cluster3::new(&[1, 2, 3], 10_000).await;
    let leader = c.leader().await;
    let erase = store_and_erase;
    load(&c.arc(leader), 10, 5).await;
    erase(c.arc(leader), b"pii-key/first").await;
    let all = PurgeReport {
        purged: vec![1, 2, 3],
        pending: vec![],
    };
    let report = c.replicas[&leader]
        .erasure_purged(Duration::from_secs(30), Duration::from_secs(20))
        .await;
    assert_eq!(report, all);
    // Later entries: a snapshot "through everything applied" would be a new one now.
    load(&c.arc(leader), 40, 5).await;
    c.converged(&[1, 2, 3]).await;
    let marks = |c: &Cluster3| -> Vec<(u64, Option<u64>, Option<u64>)> {
        c.replicas
            .iter()
            .map(|(id, r)| {
                let m = r.raft.metrics().borrow().clone();
                (*id, m.snapshot.map(|l| l.index), m.purged.map(|l| l.index))
            })
            .collect()
    };
    let before = marks(&c);
    for _ in 0..5 {
        assert_eq!(c.replicas[&leader].erasure_confirmed().await, all);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        marks(&c),
        before,
        "a replayed erasure took a snapshot or purged"
    );

    // A later erasure a follower has not applied (Raft cannot reach it; it answers questions):
    // a replay is answered against the later erasure's index, so it is named pending.
    let follower = *c.replicas.keys().find(|&&id| id != leader).unwrap();
    c.net.behind.lock().unwrap().insert(follower);
    erase(c.arc(leader), b"pii-key/second").await;
    let report = c.replicas[&leader]
        .erasure_purged(Duration::from_secs(30), Duration::from_millis(300))
        .await;
    assert_eq!(report.pending, vec![follower]);
    assert_eq!(
        c.replicas[&leader].erasure_confirmed().await.pending,
        vec![follower]
    );

    // The third replica restarts: it still knows the latest erasure's index.
    let third = *c
        .replicas
        .keys()
        .find(|&&id| id != leader && id != follower)
        .unwrap();
    let old = c.replicas.remove(&third).unwrap();
    old.shutdown().await;
    let log = old.log.clone();
    drop(old);
    // Raft's tasks let go of the ledger as they end; then its database can be opened again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&log) > 1 {
        assert!(
            Instant::now() < deadline,
            "the stopped replica's ledger is still held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(log);
    c.start_replica(third, 10_000).await;
    // (Until Raft has loaded its state, a replay is answered "pending" for all.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = c.replicas[&third].raft.metrics().borrow().clone();
        if m.membership_config.membership().nodes().count() == 3 && m.purged.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica {third} did not load: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = c.replicas[&third].erasure_confirmed().await;
    assert_eq!(report.pending, vec![follower], "{report:?}");

    // Back, the follower applies the erasure and purges on its own; replays then say so.
    c.net.behind.lock().unwrap().remove(&follower);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = c.replicas[&third].erasure_confirmed().await;
        if report == all {
            break;
        }
        assert!(Instant::now() < deadline, "never confirmed: {report:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
