//! The tally bundle (`coopledger-tally-bundle/v1`, specified in `docs/tally-bundle.md`): one
//! closed proposal's count as of one signed checkpoint, recountable offline by anyone holding the
//! log's verifier key — a regulator or a court with a file and no node.
//!
//! Complete because every record the count reads is a state key proved, present or absent, under
//! the state root the checkpoint ends on: the proposal (with the electorate's size per class
//! frozen at creation), each member of the electorate, and for each of them the vote, proxy or
//! participation key. A vote left out or added changes a proved value and its proof fails.
//! Honest because every vote, proxy, participation and ballot those records name comes with its
//! signed entry and inclusion proof, and must say what the record says.
//!
//! The recount is [`compute_tally`] — the very function the rules run before accepting the
//! node's `gov.tally` entry — run over the proved records. [`gather`] is the one description
//! of what the count reads: the node runs it over its state to know what to prove, the
//! verifier over the bundle to find what is proved.

use crate::bylaws::Bylaws;
use crate::payload::Fields;
use crate::proposals::votes::vote_from;
use crate::records::{
    self, ballot_prefix, key_key, member_key, part_key, prop_key, proxy_key, vote_key,
    BallotRecord, CoopState, Participation, ProposalRecord, ProposalStatus, ProxyRecord, Subject,
    VoteRecord, COOP_KEY,
};
use crate::rules::{check_ballot, compute_tally, revealed_keys};
use crate::tally::{ClassId, Outcome};
use crate::tallying::TallyRecord;
use coopledger_ledger::bundle::{Anchor, BundleError, ProvenEntry, ProvenState};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::entry::admit;
use coopledger_ledger::state::{app_key, KeyValue};
use coopledger_ledger::{Envelope, NoteVerifier, StateRead, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Format tag of version 1.
pub const TALLY_BUNDLE_FORMAT: &str = "coopledger-tally-bundle/v1";

/// The bundle file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TallyBundle {
    /// Always [`TALLY_BUNDLE_FORMAT`].
    pub format: String,
    /// The proposal (hex id).
    pub proposal: String,
    /// The signed checkpoint note everything is proved against.
    pub checkpoint: String,
    /// The checkpoint's last entry: the `log.state` entry with the state root.
    pub state_entry: ProvenEntry,
    /// Every state key the count reads (see [`gather`]), each proved present or absent under
    /// that root, in key order.
    pub states: Vec<ProvenState>,
    /// Every entry the records name (see [`needed_entries`]), each with its inclusion proof, in
    /// log order.
    pub entries: Vec<ProvenEntry>,
    /// The tally as recorded (the verifier recounts and compares).
    pub tally: TallyRecord,
}

/// Why a bundle does not verify (or cannot be assembled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TallyBundleError {
    /// A proof, checkpoint or entry failed.
    #[error(transparent)]
    Proof(#[from] BundleError),
    /// A record the count needs is not in the bundle or cannot be read.
    #[error("{0}")]
    Missing(String),
    /// The content is inconsistent; the message names the record or log index.
    #[error("{0}")]
    Content(String),
}

fn content(msg: impl Into<String>) -> TallyBundleError {
    TallyBundleError::Content(msg.into())
}

impl From<StoreError> for TallyBundleError {
    fn from(e: StoreError) -> TallyBundleError {
        match e {
            StoreError::Corrupt(m) => TallyBundleError::Missing(m),
            other => TallyBundleError::Missing(other.to_string()),
        }
    }
}

/// Everything the count of one proposal reads, read through a [`StateRead`].
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The co-op record (node key, genesis index).
    pub coop: CoopState,
    /// The proposal.
    pub proposal: ProposalRecord,
    /// For bylaws after the first version: the amendment that made them.
    pub amendment: Option<ProposalRecord>,
    /// The frozen electorate: member → class at creation.
    pub electorate: BTreeMap<String, ClassId>,
    /// Direct votes, by member (open ballots).
    pub votes: BTreeMap<String, VoteRecord>,
    /// Proxies, by grantor (open ballots).
    pub proxies: BTreeMap<String, ProxyRecord>,
    /// Signed participations, by member (secret ballots).
    pub participations: BTreeMap<String, Participation>,
    /// Published ballots, by token (secret ballots).
    pub ballots: BTreeMap<[u8; 32], BallotRecord>,
    /// Every state key read, in order.
    pub keys: BTreeSet<Vec<u8>>,
}

/// Reads, through `s`, every record the count of proposal `id` needs: the co-op record, the
/// proposal, the amendment that made its bylaws, every member record, and for each member of
/// the electorate (and each proxy holder) the vote and proxy keys, or the participation key of
/// a secret ballot, and every published ballot. Over a bundle, a key it needs that is not proved
/// fails with [`TallyBundleError::Missing`] naming it.
pub fn gather(s: &dyn StateRead, id: &[u8; 32]) -> Result<Gathered, TallyBundleError> {
    let mut keys = BTreeSet::new();
    let coop: CoopState = read(s, &mut keys, COOP_KEY.to_vec(), "the co-op record")?
        .ok_or_else(|| content("the co-op record is proved absent: no genesis"))?;
    let pid = hex::encode(id);
    let proposal: ProposalRecord = read(s, &mut keys, prop_key(id), "the proposal record")?
        .ok_or_else(|| content(format!("proposal {pid} is proved absent")))?;
    // The amendment whose adoption made these bylaws (genesis made version 1).
    let mut amendment = None;
    if proposal.bylaws_version > 1 {
        for (k, v) in s.scan(b"prop/")? {
            let Ok(a) = serde_json::from_slice::<ProposalRecord>(&v) else {
                continue;
            };
            let makes = matches!(&a.subject, Subject::Bylaws { bylaws } if bylaws.version == proposal.bylaws_version);
            if makes && matches!(a.status, ProposalStatus::Closed { applied: true, .. }) {
                keys.insert(k);
                amendment = Some(a);
                break;
            }
        }
    }
    let electorate = records::electorate(s, &proposal)?;
    for m in electorate.keys() {
        keys.insert(member_key(m));
    }
    let mut votes = BTreeMap::new();
    let mut proxies = BTreeMap::new();
    let mut participations = BTreeMap::new();
    let mut ballots = BTreeMap::new();
    if proposal.secret.is_some() {
        for m in electorate.keys() {
            if let Some(r) = read(s, &mut keys, part_key(id, m), "a participation")? {
                participations.insert(m.clone(), r);
            }
        }
        let prefix = ballot_prefix(id);
        for (k, v) in s.scan(&prefix)? {
            let token: [u8; 32] = k
                .get(prefix.len()..)
                .and_then(|t| t.try_into().ok())
                .ok_or_else(|| content("a ballot key is not 32 bytes"))?;
            let r: BallotRecord =
                serde_json::from_slice(&v).map_err(|e| content(format!("a ballot: {e}")))?;
            keys.insert(k);
            ballots.insert(token, r);
        }
    } else {
        let mut voters: BTreeSet<String> = electorate.keys().cloned().collect();
        for m in electorate.keys() {
            if let Some(r) = read::<ProxyRecord>(s, &mut keys, proxy_key(id, m), "a proxy")? {
                voters.insert(r.holder.clone());
                proxies.insert(m.clone(), r);
            }
        }
        for m in &voters {
            if let Some(r) = read::<VoteRecord>(s, &mut keys, vote_key(id, m), "a vote")? {
                votes.insert(m.clone(), r);
            }
        }
    }
    Ok(Gathered {
        coop,
        proposal,
        amendment,
        electorate,
        votes,
        proxies,
        participations,
        ballots,
        keys,
    })
}

/// Reads state key `key` through `s`, noting it in `keys`, and decodes its record; `what` names
/// it in errors.
fn read<T: serde::de::DeserializeOwned>(
    s: &dyn StateRead,
    keys: &mut BTreeSet<Vec<u8>>,
    key: Vec<u8>,
    what: &str,
) -> Result<Option<T>, TallyBundleError> {
    let value = s.get(&key)?;
    let record = value
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(|e| content(format!("{what} ({}): {e}", printable(&key))))?;
    keys.insert(key);
    Ok(record)
}

/// The log entries the gathered records name: the proposal's creation, the entry that made its
/// bylaws (genesis, or the amendment's tally), each counted vote, proxy and participation, each
/// `gov.ballots` entry, and the tally entry.
pub fn needed_entries(g: &Gathered) -> Result<BTreeSet<u64>, TallyBundleError> {
    let p = &g.proposal;
    let ProposalStatus::Closed {
        index: tally_at, ..
    } = p.status
    else {
        return Err(content(match p.status {
            ProposalStatus::Withdrawn { index } => {
                format!(
                    "proposal {} was withdrawn at entry {index}: nothing to count",
                    p.id
                )
            }
            _ => format!(
                "proposal {} has no tally yet (voting closes at {} ms)",
                p.id, p.closes_ms
            ),
        }));
    };
    let mut out = BTreeSet::from([p.index, tally_at]);
    match &g.amendment {
        Some(a) => {
            if let ProposalStatus::Closed { index, .. } = a.status {
                out.insert(index);
            }
        }
        None => {
            out.insert(g.coop.genesis_index);
        }
    }
    out.extend(g.votes.values().map(|v| v.index));
    out.extend(g.proxies.values().map(|v| v.index));
    out.extend(g.participations.values().map(|v| v.index));
    out.extend(g.ballots.values().map(|v| v.index));
    Ok(out)
}

/// The signing keys whose records the bundle proves: the signers of the votes, proxies and
/// participations (members' keys; their revocation is checked).
pub fn signer_keys(g: &Gathered, entries: &BTreeMap<u64, Envelope>) -> Vec<Vec<u8>> {
    g.votes
        .values()
        .map(|v| v.index)
        .chain(g.proxies.values().map(|v| v.index))
        .chain(g.participations.values().map(|v| v.index))
        .filter_map(|i| entries.get(&i))
        .map(|e| key_key(&e.body().signer))
        .collect()
}

/// The proved records of a bundle, read like the node's state: a key not proved is an error
/// naming it, a scan returns the proved keys present under its prefix.
#[derive(Debug, Default)]
struct ProvedState {
    values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn printable(key: &[u8]) -> String {
    key.iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                (*b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

impl StateRead for ProvedState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.values.get(key).cloned().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "state key {} is not proved in the bundle",
                printable(key)
            ))
        })
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .values
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect())
    }
}

/// What a valid tally bundle establishes.
#[derive(Debug, Clone)]
pub struct TallyReport {
    /// Checkpoint origin (the co-op).
    pub origin: String,
    /// Checkpoint size.
    pub size: u64,
    /// The proposal, as proved.
    pub proposal: ProposalRecord,
    /// The bylaws version its rules were frozen from, proved by genesis or an adopted amendment.
    pub bylaws_version: u64,
    /// Members in the frozen electorate.
    pub electorate: usize,
    /// Entries checked.
    pub entries: usize,
    /// The recount (equal to the recorded tally).
    pub tally: TallyRecord,
    /// Log index of the tally entry.
    pub tally_index: u64,
    /// Secret ballots: each published ballot's id and the entry that published it.
    pub published: BTreeMap<[u8; 32], u64>,
    /// The node key (base64) the co-op record names: it signs ballot receipts.
    pub node_key: String,
}

fn payload_str<'a>(e: &'a Envelope, field: &str) -> Option<&'a str> {
    e.body().payload.get(field).and_then(Value::as_str)
}

/// The entry at `index`, which the record `what` names.
fn entry_at<'a>(
    entries: &'a BTreeMap<u64, Envelope>,
    index: u64,
    what: &str,
) -> Result<&'a Envelope, TallyBundleError> {
    entries.get(&index).ok_or_else(|| {
        TallyBundleError::Missing(format!("entry {index} ({what}) is missing from the bundle"))
    })
}

/// Checks that `e`, named by a record of member `m`, is a `kind` entry about proposal `pid`
/// signed by one of `m`'s keys that was not revoked before it.
fn member_entry(
    proved: &ProvedState,
    e: &Envelope,
    index: u64,
    kind: &str,
    pid: &str,
    m: &str,
) -> Result<(), TallyBundleError> {
    let b = e.body();
    if b.kind != kind
        || payload_str(e, "proposal") != Some(pid)
        || payload_str(e, "member") != Some(m)
    {
        return Err(content(format!(
            "entry {index} is not a {kind} by {m} on this proposal"
        )));
    }
    let key = records::key(proved, &b.signer)?.ok_or_else(|| {
        content(format!(
            "entry {index}: its signer {} is proved unknown to the co-op",
            b64_encode(b.signer)
        ))
    })?;
    if key.member != m {
        return Err(content(format!(
            "entry {index}: signed by a key of {}, not of {m}",
            key.member
        )));
    }
    if key.revoked.is_some_and(|r| r < index) {
        return Err(content(format!(
            "entry {index}: signed with a key revoked before it"
        )));
    }
    Ok(())
}

fn inside_window(p: &ProposalRecord, e: &Envelope, index: u64) -> Result<(), TallyBundleError> {
    let ts = e.body().ts;
    if ts < p.opens_ms || ts >= p.closes_ms {
        return Err(content(format!(
            "entry {index} was signed at {ts} ms, outside the voting window {} to {} ms",
            p.opens_ms, p.closes_ms
        )));
    }
    Ok(())
}

impl TallyBundle {
    /// Recounts the bundle offline against the log's verifier key: the checkpoint signature, the
    /// state entry it ends on, every state proof, the bylaws the rules were frozen from, every
    /// counted entry against its record, and the tally recomputed by the rules' own function.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<TallyReport, TallyBundleError> {
        if self.format != TALLY_BUNDLE_FORMAT {
            return Err(content(format!(
                "field `format`: expected {TALLY_BUNDLE_FORMAT:?}, found {:?}",
                self.format
            )));
        }
        let id = crate::parse_id(&self.proposal)
            .ok_or_else(|| content("field `proposal`: must be 64 lowercase hex digits"))?;
        let anchor = Anchor::open(&self.checkpoint, log_key, &self.state_entry)?;
        let origin = anchor.checkpoint.checkpoint.origin.clone();
        let mut proved = ProvedState::default();
        for (i, s) in self.states.iter().enumerate() {
            let (key, value) = anchor.state(s, &format!("states[{i}]"))?;
            let app = key.strip_prefix(&app_key(&[])[..]).ok_or_else(|| {
                content(format!("field `states[{i}].key`: not a co-op state key"))
            })?;
            if proved.values.insert(app.to_vec(), value).is_some() {
                return Err(content(format!("field `states[{i}]`: key proved twice")));
            }
        }
        let mut entries = BTreeMap::new();
        for (i, p) in self.entries.iter().enumerate() {
            let env = anchor.entry(p, &format!("entries[{i}]"))?;
            if entries.insert(p.index, env.into_inner()).is_some() {
                return Err(content(format!(
                    "field `entries[{i}]`: index {} twice",
                    p.index
                )));
            }
        }
        let g = gather(&proved, &id)?;
        let p = &g.proposal;
        let needed = needed_entries(&g)?;
        let mut needed_keys = g.keys.clone();
        needed_keys.extend(signer_keys(&g, &entries));
        for k in &needed_keys {
            proved.get(k)?; // every key of a signer is proved too
        }
        if let Some(extra) = entries.keys().find(|i| !needed.contains(i)) {
            return Err(content(format!(
                "entry {extra} is not part of this count (no counted record names it)"
            )));
        }
        // The proposal is the one created at its index.
        let created = entry_at(&entries, p.index, "the proposal's creation")?;
        if created.body().kind != "gov.propose" || *created.entry_id().as_bytes() != id {
            return Err(content(format!(
                "entry {} is not the creation of proposal {}",
                p.index, self.proposal
            )));
        }
        let bylaws = self.frozen_bylaws(&g, &entries)?;
        let rules = bylaws.decisions.get(&p.kind).ok_or_else(|| {
            content(format!(
                "bylaws v{} have no rules for {}",
                bylaws.version,
                p.kind.as_str()
            ))
        })?;
        if *rules != p.rules || bylaws.voting != p.voting {
            return Err(content(format!(
                "the proposal's frozen rules or voting mode differ from bylaws v{}",
                bylaws.version
            )));
        }
        let pid = self.proposal.as_str();
        for (m, v) in &g.votes {
            let e = entry_at(&entries, v.index, &format!("the vote of {m}"))?;
            member_entry(&proved, e, v.index, "gov.vote", pid, m)?;
            inside_window(p, e, v.index)?;
            let allowed = ["proposal", "member", "vote", "choices"];
            let said = Fields::new(&e.body().payload, &allowed)
                .map_err(|r| content(format!("entry {}: {r}", v.index)))
                .and_then(|f| {
                    vote_from(&f, p).map_err(|r| content(format!("entry {}: {r}", v.index)))
                })?;
            if said != v.vote {
                return Err(content(format!(
                    "the vote of {m} is recorded as {:?} but entry {} says {said:?}",
                    v.vote, v.index
                )));
            }
        }
        for (m, r) in &g.proxies {
            let e = entry_at(&entries, r.index, &format!("the proxy of {m}"))?;
            member_entry(&proved, e, r.index, "gov.proxy", pid, m)?;
            if payload_str(e, "to") != Some(r.holder.as_str()) {
                return Err(content(format!(
                    "the proxy of {m} is recorded to {} but entry {} says otherwise",
                    r.holder, r.index
                )));
            }
        }
        let published = self.check_secret(&g, &proved, &entries, &origin)?;
        // Only now (every record's entry found): nothing proved that the count does not read.
        if let Some(extra) = proved.values.keys().find(|k| !needed_keys.contains(*k)) {
            return Err(content(format!(
                "state key {} is not part of this count",
                printable(extra)
            )));
        }
        // The tally entry, by the node, and the recount by the rules' own function.
        let ProposalStatus::Closed {
            index: tally_at, ..
        } = p.status
        else {
            return Err(content("the proposal is not closed"));
        };
        let t = entry_at(&entries, tally_at, "the tally")?;
        let node_key = coopledger_ledger::codec::b64_decode(&g.coop.node_key)
            .map_err(|_| content("the co-op record's node key is not base64"))?;
        if t.body().kind != "gov.tally"
            || payload_str(t, "proposal") != Some(pid)
            || t.body().signer[..] != node_key[..]
        {
            return Err(content(format!(
                "entry {tally_at} is not the node's gov.tally of this proposal"
            )));
        }
        let recount = compute_tally(&proved, &id)
            .map_err(|e| content(format!("cannot recount: {e}")))?
            .ok_or_else(|| content("the proposal vanished"))?;
        let recount_json = serde_json::to_value(&recount).map_err(|e| content(e.to_string()))?;
        for (what, claimed) in [
            (
                format!("entry {tally_at} (gov.tally)"),
                t.body().payload.get("tally").cloned(),
            ),
            (
                "the proposal record's tally".to_owned(),
                serde_json::to_value(&p.tally).ok(),
            ),
            (
                "field `tally`".to_owned(),
                serde_json::to_value(&self.tally).ok(),
            ),
        ] {
            if claimed.as_ref() != Some(&recount_json) {
                return Err(content(format!(
                    "{what} differs from the recount: {}",
                    differences(&recount_json, claimed.as_ref()).join("; ")
                )));
            }
        }
        Ok(TallyReport {
            origin,
            size: anchor.checkpoint.checkpoint.size,
            proposal: p.clone(),
            bylaws_version: bylaws.version,
            electorate: g.electorate.len(),
            entries: entries.len(),
            tally: recount,
            tally_index: tally_at,
            published,
            node_key: g.coop.node_key.clone(),
        })
    }

    /// The bylaws the proposal's rules were frozen from: genesis's (version 1), or those of the
    /// adopted amendment whose tally entry is in the bundle.
    fn frozen_bylaws(
        &self,
        g: &Gathered,
        entries: &BTreeMap<u64, Envelope>,
    ) -> Result<Bylaws, TallyBundleError> {
        let v = g.proposal.bylaws_version;
        match &g.amendment {
            None if v == 1 => {
                let at = g.coop.genesis_index;
                let e = entry_at(entries, at, "genesis")?;
                if e.body().kind != "coop.genesis" {
                    return Err(content(format!("entry {at} is not the genesis entry")));
                }
                let b: Bylaws = serde_json::from_value(
                    e.body()
                        .payload
                        .get("bylaws")
                        .cloned()
                        .unwrap_or(Value::Null),
                )
                .map_err(|e| content(format!("the bylaws of genesis: {e}")))?;
                Ok(b)
            }
            None => Err(TallyBundleError::Missing(format!(
                "the adopted amendment that made bylaws v{v} is not proved in the bundle"
            ))),
            Some(a) => {
                let Subject::Bylaws { bylaws } = &a.subject else {
                    return Err(content("the amendment is not a bylaws amendment"));
                };
                let (
                    Some(t),
                    ProposalStatus::Closed {
                        index,
                        applied: true,
                    },
                ) = (&a.tally, &a.status)
                else {
                    return Err(content("the amendment was not applied"));
                };
                let e = entry_at(entries, *index, "the amendment's tally")?;
                let adopted = e.body().kind == "gov.tally"
                    && payload_str(e, "proposal") == Some(a.id.as_str())
                    && t.outcome == Outcome::Adopted
                    && e.body().payload.get("tally") == serde_json::to_value(t).ok().as_ref();
                if !adopted {
                    return Err(content(format!(
                        "entry {index} does not show the amendment to bylaws v{v} adopted"
                    )));
                }
                Ok(bylaws.as_ref().clone())
            }
        }
    }

    /// Secret ballots: each participation signed by its member, each published ballot found in
    /// its `gov.ballots` entry and valid under the revealed class key, the counts per class as
    /// the proposal record says, never more ballots than participations. Returns each ballot's id
    /// and publishing entry.
    fn check_secret(
        &self,
        g: &Gathered,
        proved: &ProvedState,
        entries: &BTreeMap<u64, Envelope>,
        origin: &str,
    ) -> Result<BTreeMap<[u8; 32], u64>, TallyBundleError> {
        let p = &g.proposal;
        let Some(secret) = &p.secret else {
            return Ok(BTreeMap::new());
        };
        let pid = p.id.as_str();
        let mut took_part: BTreeMap<ClassId, u64> = BTreeMap::new();
        for (m, r) in &g.participations {
            let e = entry_at(entries, r.index, &format!("the participation of {m}"))?;
            member_entry(proved, e, r.index, "gov.vote", pid, m)?;
            inside_window(p, e, r.index)?;
            if payload_str(e, "blinded") != Some(r.blinded.as_str())
                || g.electorate.get(m) != Some(&r.class)
            {
                return Err(content(format!(
                    "the participation of {m} does not match entry {}",
                    r.index
                )));
            }
            *took_part.entry(r.class.clone()).or_default() += 1;
        }
        if took_part
            != secret
                .participants
                .clone()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect()
        {
            return Err(content(
                "the participations proved do not add up to those the proposal record counts",
            ));
        }
        let mut cast: BTreeMap<ClassId, u64> = BTreeMap::new();
        let mut published = BTreeMap::new();
        for (token, r) in &g.ballots {
            let e = entry_at(entries, r.index, "a gov.ballots entry")?;
            if e.body().kind != "gov.ballots" || payload_str(e, "proposal") != Some(pid) {
                return Err(content(format!(
                    "entry {} is not a gov.ballots entry of this proposal",
                    r.index
                )));
            }
            let keys = revealed_keys(p, e.body().payload.get("keys"))
                .map_err(|err| content(format!("entry {}: {err}", r.index)))?;
            let list: Vec<Envelope> = e
                .body()
                .payload
                .get("ballots")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|b| Envelope::from_value(b).ok())
                        .collect()
                })
                .unwrap_or_default();
            let found = list
                .into_iter()
                .find(|b| hex::encode(b.entry_id().as_bytes()) == r.ballot)
                .ok_or_else(|| {
                    content(format!(
                        "ballot {} is not published in entry {}",
                        r.ballot, r.index
                    ))
                })?;
            let verified = admit(vec![found])
                .pop()
                .ok_or_else(|| content("no verdict"))?
                .map_err(|err| content(format!("ballot {}: {err}", r.ballot)))?;
            let opened = check_ballot(p, origin, &keys, &verified)
                .map_err(|err| content(format!("ballot {}: {err}", r.ballot)))?;
            if opened.token != *token || opened.class != r.class || opened.vote != r.vote {
                return Err(content(format!(
                    "ballot {} is recorded in class {} as {:?}, but its entry {} says class {} \
                     and {:?}",
                    r.ballot, r.class, r.vote, r.index, opened.class, opened.vote
                )));
            }
            *cast.entry(r.class.clone()).or_default() += 1;
            published.insert(opened.id, r.index);
        }
        if cast
            != secret
                .cast
                .clone()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect()
        {
            return Err(content(
                "the ballots proved do not add up to those the proposal record counts as cast",
            ));
        }
        for (class, n) in &cast {
            let allowed = took_part.get(class).copied().unwrap_or(0);
            if *n > allowed {
                return Err(content(format!(
                    "class {class}: {n} ballots but {allowed} participations"
                )));
            }
        }
        Ok(published)
    }
}

/// The fields of `claimed` that differ from `recount`, for the message.
fn differences(recount: &Value, claimed: Option<&Value>) -> Vec<String> {
    let (Some(a), Some(b)) = (recount.as_object(), claimed.and_then(Value::as_object)) else {
        return vec!["not a tally".into()];
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: recounted {v}, claimed {}",
                b.get(k).cloned().unwrap_or(Value::Null)
            )
        })
        .chain(
            b.keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| format!("{k}: claimed but not recounted")),
        )
        .collect()
}
