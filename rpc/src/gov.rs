//! `gov_*` methods: read-only views of the governance state the rules keep, answered from the
//! node's committed state (entries go in through `ledger_submit`).

use crate::api::{GovApiServer, RpcResult};
use crate::error;
use crate::gov_wire::{
    ApplicationView, CastVote, GivenProxy, KeyInfo, ProposalView, StandingView, VoterView,
    WeightView,
};
use crate::wire::{
    BallotReceipt, BallotToken, CoopInfo, Elector, ElectorateView, KeyView, MemberView,
    ProposalSummary,
};
use coopledger_governance::bylaws::{Bylaws, ResultsVisibility};
use coopledger_governance::proposals::{eligibility, Eligibility};
use coopledger_governance::records::{self, ProposalRecord, ProposalStatus};
use coopledger_governance::tally::VotingMode;
use coopledger_governance::tally_bundle::{self, TallyBundle};
use coopledger_governance::tallying::{electorate_digest, TallyRecord};
use coopledger_governance::{parse_id, CoopRules, ENTRY_TYPES};
use coopledger_ledger::bundle::{ProvenEntry, ProvenState};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::{Envelope, Log, StateRead};
use coopledger_node::BallotBox;
use jsonrpsee::core::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most applications `gov_applications` returns (the bylaws' default `admission.maxPending`).
pub const MAX_APPLICATIONS: usize = 1000;

pub(crate) struct GovRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
    pub(crate) ballots: Arc<BallotBox>,
}

fn id_param(field: &str, s: &str) -> RpcResult<[u8; 32]> {
    parse_id(s).ok_or_else(|| error::invalid_param(field, "must be 64 lowercase hex digits"))
}

impl GovRpc {
    fn state(&self) -> &dyn StateRead {
        self.log.as_ref()
    }

    fn proposal_record(&self, id: &str) -> RpcResult<([u8; 32], ProposalRecord)> {
        let idb = id_param("id", id)?;
        let p = records::proposal(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("id", format!("no proposal {id}")))?;
        Ok((idb, p))
    }

    fn now_index(&self) -> u64 {
        self.log.checkpoint().checkpoint.size.saturating_sub(1)
    }
}

/// Assembles the tally bundle of closed proposal `id` (see `docs/tally-bundle.md`): the records
/// [`tally_bundle::gather`] reads and the signers' key records, all proved against one
/// checkpoint, and every entry they name with its inclusion proof at that checkpoint's size.
pub fn assemble_tally_bundle(log: &Log<CoopRules>, id: &[u8; 32]) -> RpcResult<TallyBundle> {
    let q = |e: coopledger_ledger::QueryError| error::query(&e);
    let bad = |e: tally_bundle::TallyBundleError| error::corrupt(format!("tally bundle: {e}"));
    // What the count reads, from the node's state; the values come from the proofs below.
    let g = tally_bundle::gather(log, id).map_err(bad)?;
    let needed = tally_bundle::needed_entries(&g).map_err(bad)?;
    let mut envelopes = BTreeMap::new();
    for &i in &needed {
        let bytes = log.entry(i).map_err(q)?;
        let env = Envelope::from_bytes(&bytes)
            .map_err(|e| error::corrupt(format!("stored entry {i}: {e}")))?;
        envelopes.insert(i, (bytes, env));
    }
    let by_index: BTreeMap<u64, Envelope> = envelopes
        .iter()
        .map(|(i, (_, e))| (*i, e.clone()))
        .collect();
    let mut keys = g.keys.clone();
    keys.extend(tally_bundle::signer_keys(&g, &by_index));
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    // Every state proof against the same checkpoint (the newest whose state holds the tally).
    let proofs = log.prove_states(&keys).map_err(q)?;
    let first = proofs
        .first()
        .ok_or_else(|| error::corrupt("no state proof".into()))?;
    let size = first.checkpoint.checkpoint.size;
    let note = first.checkpoint.note.clone();
    let proven = |index: u64, bytes: &[u8]| -> RpcResult<ProvenEntry> {
        let proof = log.inclusion_proof(index, size).map_err(q)?;
        Ok(ProvenEntry::new(index, bytes, &proof))
    };
    let mut entries = Vec::with_capacity(envelopes.len());
    for (i, (bytes, _)) in &envelopes {
        entries.push(proven(*i, bytes)?);
    }
    let state_index = size.saturating_sub(1);
    let state_bytes = log.entry(state_index).map_err(q)?;
    let prop = proofs
        .iter()
        .find(|s| s.key.get(1..) == Some(&records::prop_key(id)[..]))
        .and_then(|s| s.value.as_deref())
        .ok_or_else(|| error::corrupt("the proposal is not in its proof".into()))?;
    let tally = serde_json::from_slice::<ProposalRecord>(prop)
        .map_err(|e| error::corrupt(format!("stored proposal: {e}")))?
        .tally
        .ok_or_else(|| error::corrupt("a closed proposal without its tally".into()))?;
    Ok(TallyBundle {
        format: tally_bundle::TALLY_BUNDLE_FORMAT.into(),
        proposal: hex::encode(id),
        // With the witnesses' cosignatures when they have already cosigned this checkpoint.
        checkpoint: coopledger_node::cosigning::cosigned_note(log, size)
            .ok()
            .flatten()
            .unwrap_or(note),
        state_entry: proven(state_index, &state_bytes)?,
        states: proofs
            .iter()
            .map(|s| ProvenState::new(&s.key, s.value.as_deref(), &s.proof))
            .collect(),
        entries,
        tally,
    })
}

#[async_trait]
impl GovApiServer for GovRpc {
    async fn info(&self) -> RpcResult<CoopInfo> {
        let s = self.state();
        let coop = records::coop(s)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("coop", "the ledger has no genesis".into()))?;
        let bylaws = records::bylaws(s)
            .map_err(|e| error::storage(&e))?
            .map_or(0, |b| b.version);
        Ok(CoopInfo {
            origin: self.log.origin().to_owned(),
            name: coop.name,
            node_key: coop.node_key,
            genesis_index: coop.genesis_index,
            members: coop.members,
            bylaws_version: bylaws,
            entry_types: ENTRY_TYPES
                .iter()
                .map(|(t, v)| format!("{t}/{v}"))
                .collect(),
        })
    }

    async fn bylaws(&self) -> RpcResult<Bylaws> {
        records::bylaws(self.state())
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("bylaws", "the ledger has no genesis".into()))
    }

    async fn member(&self, member: String, at_index: Option<u64>) -> RpcResult<MemberView> {
        error::member_param("member", &member)?;
        let record = records::member(self.state(), &member)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("member", format!("no member {member}")))?;
        let at_index = at_index.unwrap_or_else(|| self.now_index());
        let standing = record.at(at_index).cloned();
        let mut keys = Vec::with_capacity(record.keys.len());
        for k in &record.keys {
            let bytes: [u8; 32] = b64_decode(k)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| error::corrupt(format!("member {member} holds key {k:?}")))?;
            let r = records::key(self.state(), &bytes)
                .map_err(|e| error::storage(&e))?
                .ok_or_else(|| error::corrupt(format!("key {k} of {member} is unknown")))?;
            keys.push(KeyView {
                key: k.clone(),
                since: r.since,
                revoked: r.revoked,
                label: r.label,
            });
        }
        Ok(MemberView {
            record: record.into(),
            at_index,
            standing: standing.map(Into::into),
            keys,
        })
    }

    async fn members(&self, at_index: Option<u64>) -> RpcResult<Vec<StandingView>> {
        let at = at_index.unwrap_or_else(|| self.now_index());
        Ok(records::members_at(self.state(), at)
            .map_err(|e| error::storage(&e))?
            .into_iter()
            .map(StandingView::from)
            .collect())
    }

    async fn key(&self, key: String) -> RpcResult<KeyInfo> {
        let k: [u8; 32] = b64_decode(&key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| error::invalid_param("key", "must be base64 of a 32-byte key"))?;
        records::key(self.state(), &k)
            .map_err(|e| error::storage(&e))?
            .map(KeyInfo::from)
            .ok_or_else(|| error::not_found("key", "not a key of this co-op".into()))
    }

    async fn application(&self, id: String) -> RpcResult<ApplicationView> {
        let idb = id_param("id", &id)?;
        records::application(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .map(ApplicationView::from)
            .ok_or_else(|| error::not_found("id", format!("no application {id}")))
    }

    async fn applications(&self, pending: Option<bool>) -> RpcResult<Vec<ApplicationView>> {
        let mut all = records::applications(self.state()).map_err(|e| error::storage(&e))?;
        if pending == Some(true) {
            all.retain(|a| a.admitted.is_none() && a.declined.is_none());
        }
        all.sort_by_key(|a| std::cmp::Reverse(a.index));
        all.truncate(MAX_APPLICATIONS);
        Ok(all.into_iter().map(ApplicationView::from).collect())
    }

    async fn proposal(&self, id: String) -> RpcResult<ProposalView> {
        Ok(self.proposal_record(&id)?.1.into())
    }

    async fn proposals(&self) -> RpcResult<Vec<ProposalSummary>> {
        let mut all: Vec<ProposalSummary> = records::proposals(self.state())
            .map_err(|e| error::storage(&e))?
            .iter()
            .map(ProposalSummary::from)
            .collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.index));
        Ok(all)
    }

    async fn proposal_entries(&self, id: String) -> RpcResult<Vec<u64>> {
        let (idb, _) = self.proposal_record(&id)?;
        records::proposal_entries(self.state(), &idb).map_err(|e| error::storage(&e))
    }

    async fn voter(&self, proposal: String, member: String) -> RpcResult<VoterView> {
        error::member_param("member", &member)?;
        let idb = id_param("proposal", &proposal)?;
        let p = records::proposal(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("proposal", format!("no proposal {proposal}")))?;
        let s = self.state();
        let storage = |e: coopledger_ledger::StoreError| error::storage(&e);
        let eligibility = eligibility(s, &p, &member).map_err(storage)?;
        let frozen_class = match &eligibility {
            Eligibility::Eligible { class } => Some(class.clone()),
            Eligibility::NotActiveNow { .. } => records::member(s, &member)
                .map_err(storage)?
                .and_then(|m| m.at(p.index).map(|e| e.class.clone())),
            _ => None,
        };
        let weight = frozen_class.map(|class| WeightView {
            class_eligible: p.eligible.get(&class).copied().unwrap_or(0),
            class_weight_ppm: match &p.voting {
                VotingMode::OneMemberOneVote => None,
                VotingMode::ClassWeighted { weights, .. } => weights.get(&class).copied(),
            },
            class,
        });
        let votes = records::votes(s, &idb).map_err(storage)?;
        let cast = |who: &str| {
            votes.get(who).map(|v| CastVote {
                index: v.index,
                vote: v.vote.clone(),
            })
        };
        let proxy = records::proxies(s, &idb)
            .map_err(storage)?
            .remove(&member)
            .map(|g| GivenProxy {
                holder_vote: cast(&g.holder),
                to: g.holder,
                index: g.index,
            });
        let proxies_held = records::proxies(s, &idb)
            .map_err(storage)?
            .values()
            .filter(|g| g.holder == member)
            .count() as u64;
        let participated = if p.rules.secret {
            records::participations(s, &idb)
                .map_err(storage)?
                .get(&member)
                .map(|x| x.index)
        } else {
            None
        };
        Ok(VoterView {
            proposal: p.id.clone(),
            vote: cast(&member),
            member,
            eligibility: eligibility.into(),
            weight,
            participated,
            proxy,
            proxies_held,
        })
    }

    async fn electorate(&self, id: String) -> RpcResult<ElectorateView> {
        let (_, p) = self.proposal_record(&id)?;
        let e = records::electorate(self.state(), &p).map_err(|e| error::storage(&e))?;
        Ok(ElectorateView {
            proposal: p.id.clone(),
            digest: electorate_digest(&e),
            members: e
                .into_iter()
                .map(|(member, class)| Elector { member, class })
                .collect(),
        })
    }

    async fn tally_bundle(&self, id: String) -> RpcResult<TallyBundle> {
        let (idb, p) = self.proposal_record(&id)?;
        match p.status {
            ProposalStatus::Open => return Err(error::results_sealed(p.closes_ms)),
            ProposalStatus::Withdrawn { index } => {
                return Err(error::not_found(
                    "id",
                    format!("proposal {id} was withdrawn at entry {index}: nothing to count"),
                ))
            }
            ProposalStatus::Closed { .. } => {}
        }
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || assemble_tally_bundle(&log, &idb))
            .await
            .map_err(|e| error::corrupt(format!("bundle task: {e}")))?
    }

    async fn live_tally(&self, id: String) -> RpcResult<TallyRecord> {
        let (idb, p) = self.proposal_record(&id)?;
        if let Some(t) = p.tally {
            return Ok(t);
        }
        if p.status != ProposalStatus::Open {
            return Err(error::not_found(
                "id",
                format!("proposal {id} was withdrawn"),
            ));
        }
        if p.rules.results != ResultsVisibility::Live || p.secret.is_some() {
            return Err(error::results_sealed(p.closes_ms));
        }
        coopledger_governance::rules::compute_tally(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("id", format!("no proposal {id}")))
    }

    async fn ballot_token(&self, proposal: String, member: String) -> RpcResult<BallotToken> {
        let id = id_param("proposal", &proposal)?;
        error::member_param("member", &member)?;
        let a = self
            .ballots
            .answer(&self.log, &id, &member)
            .map_err(|e| error::apply(&e))?;
        Ok(BallotToken {
            protocol: a.protocol.number(),
            class: a.class,
            key: b64_encode(a.key),
            blinded: b64_encode(a.blinded),
            evaluated: b64_encode(a.evaluation.evaluated),
            challenge: b64_encode(a.evaluation.challenge),
            response: b64_encode(a.evaluation.response),
        })
    }

    async fn cast_ballot(&self, ballot: Value) -> RpcResult<BallotReceipt> {
        let env = Envelope::from_value(&ballot).map_err(|r| error::rejection(&r))?;
        let r = self
            .ballots
            .cast(&self.log, env)
            .map_err(|e| error::apply(&e))?;
        Ok(BallotReceipt {
            origin: self.log.origin().to_owned(),
            proposal: hex::encode(r.proposal),
            ballot: hex::encode(r.ballot),
            node_key: b64_encode(self.ballots.node_key()),
            signature: b64_encode(r.signature),
        })
    }
}
