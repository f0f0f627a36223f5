//! The co-op's state: the records the rules keep, their keys, and the queries over them. Every
//! query reads through [`StateRead`], so the node, a rule being applied and an offline replay
//! all see the same thing.
//!
//! Keys (in the state machine's namespace; values are JSON with a fixed field order):
//!
//! | key | value |
//! |---|---|
//! | `coop` | [`CoopState`] |
//! | `bylaws` | the bylaws in force ([`Bylaws`]) |
//! | `key/<32-byte key>` | [`KeyRecord`] |
//! | `member/<member id>` | [`MemberRecord`] |
//! | `app/<32-byte entry id>` | [`Application`] |
//! | `pending-key/<32-byte key>` | the application id (hex) pending for that key (bylaws with `admission`) |
//! | `pending-count` | pending applications, 8 bytes BE (bylaws with `admission`) |
//! | `prop/<32-byte proposal id>` | [`ProposalRecord`] |
//! | `vote/<proposal id>/<member id>` | [`VoteRecord`] (the member's current direct vote) |
//! | `proxy/<proposal id>/<grantor id>` | [`ProxyRecord`] |
//! | `held/<proposal id>/<holder id>` | number of proxies held (8 bytes BE) |
//! | `pe/<proposal id><index, 8 bytes BE>` | empty: the log entries of a proposal, in order |
//! | `open/<closesMs, 8 bytes BE><proposal id>` | empty: proposals not yet closed or withdrawn |
//! | `part/<proposal id>/<member id>` | [`Participation`] (secret ballots: who took part) |
//! | `ballot/<proposal id>/<32-byte token>` | [`BallotRecord`] (secret ballots, once published) |

use crate::bylaws::{Bylaws, DecisionKind, DecisionRules, Method};
use crate::consent::TimelineForm;
use crate::genesis::Role;
use crate::tally::{ClassId, VotingMode};
use crate::tallying::TallyRecord;
use coopledger_ledger::StateRead;
use coopledger_ledger::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) const COOP_KEY: &[u8] = b"coop";
pub(crate) const BYLAWS_KEY: &[u8] = b"bylaws";

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
pub(crate) fn key_key(k: &[u8; 32]) -> Vec<u8> {
    cat(&[b"key/", k])
}
pub(crate) fn member_key(id: &str) -> Vec<u8> {
    cat(&[b"member/", id.as_bytes()])
}
pub(crate) fn app_key(id: &[u8; 32]) -> Vec<u8> {
    cat(&[b"app/", id])
}
/// The state key of proposal `id`'s record.
pub fn prop_key(id: &[u8; 32]) -> Vec<u8> {
    cat(&[b"prop/", id])
}
pub(crate) fn vote_prefix(p: &[u8; 32]) -> Vec<u8> {
    cat(&[b"vote/", p, b"/"])
}
pub(crate) fn vote_key(p: &[u8; 32], member: &str) -> Vec<u8> {
    cat(&[&vote_prefix(p), member.as_bytes()])
}
pub(crate) fn proxy_prefix(p: &[u8; 32]) -> Vec<u8> {
    cat(&[b"proxy/", p, b"/"])
}
pub(crate) fn proxy_key(p: &[u8; 32], grantor: &str) -> Vec<u8> {
    cat(&[&proxy_prefix(p), grantor.as_bytes()])
}
pub(crate) fn held_key(p: &[u8; 32], holder: &str) -> Vec<u8> {
    cat(&[b"held/", p, b"/", holder.as_bytes()])
}
pub(crate) fn pe_prefix(p: &[u8; 32]) -> Vec<u8> {
    cat(&[b"pe/", p])
}
pub(crate) fn pe_key(p: &[u8; 32], index: u64) -> Vec<u8> {
    cat(&[&pe_prefix(p), &index.to_be_bytes()])
}
pub(crate) fn part_prefix(p: &[u8; 32]) -> Vec<u8> {
    cat(&[b"part/", p, b"/"])
}
pub(crate) fn part_key(p: &[u8; 32], member: &str) -> Vec<u8> {
    cat(&[&part_prefix(p), member.as_bytes()])
}
pub(crate) fn ballot_prefix(p: &[u8; 32]) -> Vec<u8> {
    cat(&[b"ballot/", p, b"/"])
}
pub(crate) fn ballot_key(p: &[u8; 32], token: &[u8; 32]) -> Vec<u8> {
    cat(&[&ballot_prefix(p), token])
}
/// `pending-key/<32-byte key>` → the id of that key's pending application (bylaws with an
/// `admission` section only).
pub(crate) fn pending_key_key(k: &[u8; 32]) -> Vec<u8> {
    cat(&[b"pending-key/", k])
}
/// Number of pending applications, 8 bytes big-endian (bylaws with an `admission` section).
pub(crate) const PENDING_COUNT_KEY: &[u8] = b"pending-count";
pub(crate) const OPEN_PREFIX: &[u8] = b"open/";
pub(crate) fn open_key(closes_ms: u64, p: &[u8; 32]) -> Vec<u8> {
    cat(&[OPEN_PREFIX, &closes_ms.to_be_bytes(), p])
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("governance state: {e}")))
}

pub(crate) fn read<T: for<'de> Deserialize<'de>>(
    s: &dyn StateRead,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    s.get(key)?.map(|b| decode(&b)).transpose()
}

/// The co-op as founded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoopState {
    /// Display name.
    pub name: String,
    /// Base64 node key.
    pub node_key: String,
    /// Log index of the genesis entry.
    pub genesis_index: u64,
    /// Members currently active or suspended (not expelled or withdrawn).
    pub members: u64,
    /// How members' consent timelines are kept: chained under `coop.genesis` v2; left out for
    /// the whole form of v1, so a v1 co-op's record is byte for byte what it always was.
    #[serde(default, skip_serializing_if = "TimelineForm::is_whole")]
    pub consent_timeline: TimelineForm,
}

/// A key known to the co-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRecord {
    /// Pseudonymous member id (`node` for the node key).
    pub member: String,
    /// Log index at which the key became known.
    pub since: u64,
    /// Log index of the revocation, if revoked: entries it signed before stay valid, later ones
    /// are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
    /// The member's own label for the device or holder of the key (`member.key_add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// A member in good standing.
    Active,
    /// Suspended: may not vote, propose or act until reinstated.
    Suspended,
    /// Expelled after notice and an adopted expulsion decision.
    Expelled,
    /// Left of their own accord.
    Withdrawn,
}

impl MemberStatus {
    /// Still a member (active or suspended), not expelled or withdrawn.
    pub fn is_member(self) -> bool {
        matches!(self, MemberStatus::Active | MemberStatus::Suspended)
    }
}

/// What happened to a member at a log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberEvent {
    /// Log index of the entry.
    pub index: u64,
    /// What it did: `founded`, `admitted`, `class`, `suspended`, `reinstated`, `expelled`,
    /// `withdrawn`.
    pub event: String,
    /// Status from this index on.
    pub status: MemberStatus,
    /// Class from this index on.
    pub class: ClassId,
}

/// A notice of intended expulsion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpulsionNotice {
    /// Log index of the notice.
    pub index: u64,
    /// Node time of the notice's batch.
    pub time_ms: u64,
    /// Commitment to the stated reasons (the text lives off-ledger).
    pub reason: String,
}

/// A member (a person or an organisation holding several keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberRecord {
    /// Pseudonymous id.
    pub id: String,
    /// Current class.
    pub class: ClassId,
    /// Current status.
    pub status: MemberStatus,
    /// Roles besides `member`.
    pub roles: Vec<Role>,
    /// Keys ever held (base64), revoked ones included.
    pub keys: Vec<String>,
    /// Membership history, oldest first.
    pub history: Vec<MemberEvent>,
    /// Pending expulsion notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<ExpulsionNotice>,
    /// A board key reset waiting out its veto period (`member.key_reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_reset: Option<KeyReset>,
}

/// A key reset the board has asked for on behalf of a member who lost every key: it replaces
/// all the member's keys with `key` once `due_ms` has passed, unless one of those keys vetoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyReset {
    /// Log index of the `member.key_reset` entry.
    pub index: u64,
    /// Node time of its batch.
    pub time_ms: u64,
    /// Batch time from which `member.key_reset_complete` is accepted.
    pub due_ms: u64,
    /// The new key (base64), which proved possession in the reset entry.
    pub key: String,
    /// The new key's label, if the member gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The board member who asked for it.
    pub by: String,
}

impl MemberRecord {
    /// The member's standing as of log index `index` (after the entry at `index`), or `None` if
    /// they were not yet a member.
    pub fn at(&self, index: u64) -> Option<&MemberEvent> {
        self.history.iter().rev().find(|e| e.index <= index)
    }
}

/// A membership application, signed by the applicant's new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    /// Entry id (hex).
    pub id: String,
    /// Log index.
    pub index: u64,
    /// The applicant's key (base64).
    pub key: String,
    /// The member id the applicant will have.
    pub member: String,
    /// Requested class.
    pub class: ClassId,
    /// Salted commitment to the application's off-ledger details, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Log index of the admission, once admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<u64>,
    /// Log index of the board's decline, if declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<u64>,
    /// Paid share: the digest of the payment reference the treasurer admitted it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

/// What a proposal is about, beyond its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Subject {
    /// Nothing beyond the title (and the optional document digest).
    Motion,
    /// Admit the applicant of this application (entry id, hex).
    Application {
        /// Application entry id.
        id: String,
    },
    /// Expel this member.
    Member {
        /// Member id.
        id: String,
    },
    /// Replace the bylaws with these.
    Bylaws {
        /// The proposed bylaws (version = current + 1).
        bylaws: Box<Bylaws>,
    },
    /// Adopt this allocation policy for data revenue.
    Policy {
        /// The proposed policy.
        policy: Box<crate::revenue::AllocationPolicy>,
    },
}

/// Where a proposal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProposalStatus {
    /// Created; open for votes between `opensMs` and `closesMs`.
    Open,
    /// Withdrawn by its proposer.
    Withdrawn {
        /// Log index of the withdrawal.
        index: u64,
    },
    /// Closed and tallied.
    Closed {
        /// Log index of the tally entry.
        index: u64,
        /// Whether its effect (new bylaws, a board seat) took hold.
        applied: bool,
    },
}

/// A proposal, with the electorate and rules frozen at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProposalRecord {
    /// Proposal id: the creating entry's id (hex). Also the seed of a `lot` tie-break.
    pub id: String,
    /// Log index of creation: the electorate is the voting members as of this index.
    pub index: u64,
    /// Proposer's member id.
    pub proposer: String,
    /// Kind of decision.
    pub kind: DecisionKind,
    /// Title (co-op business, never personal data).
    pub title: String,
    /// Digest of the full motion text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Voting method.
    pub method: Method,
    /// Choices (empty for yes/no).
    pub choices: Vec<String>,
    /// Voting opens (node and signer time, ms).
    pub opens_ms: u64,
    /// Voting closes (exclusive).
    pub closes_ms: u64,
    /// What it decides.
    pub subject: Subject,
    /// Bylaws version in force at creation.
    pub bylaws_version: u64,
    /// Decision rules frozen at creation.
    pub rules: DecisionRules,
    /// Voting mode frozen at creation.
    pub voting: VotingMode,
    /// Eligible members per voting class at creation.
    pub eligible: BTreeMap<ClassId, u64>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The tally, once closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<TallyRecord>,
    /// Secret-ballot bookkeeping, for proposals whose rules say `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretBallot>,
}

/// The public side of a secret ballot (see `ballot`): the class keys, who took part per class,
/// and what was published at the close.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretBallot {
    /// Public ballot key per voting class (base64 of 32 bytes), once the node published them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<ClassId, String>,
    /// Index of the `gov.ballot_key` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_index: Option<u64>,
    /// The blind-token protocol that entry named (`ballot::Protocol`): 2 for RFC 9497; absent
    /// for protocol 1, the original, so that older records read and hash as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u64>,
    /// Signed participations per class.
    pub participants: BTreeMap<ClassId, u64>,
    /// Ballots published per class.
    pub cast: BTreeMap<ClassId, u64>,
    /// Index of the first `gov.ballots` entry (the ballot box opened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<u64>,
}

impl SecretBallot {
    /// The protocol of its tokens (1 unless the `gov.ballot_key` entry said otherwise; the rules
    /// record only protocols they know).
    pub fn protocol(&self) -> crate::ballot::Protocol {
        self.protocol
            .and_then(crate::ballot::Protocol::from_number)
            .unwrap_or(crate::ballot::Protocol::Original)
    }
}

/// A member's signed participation in a secret ballot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Participation {
    /// Log index of the participation entry.
    pub index: u64,
    /// The member's class in the frozen electorate.
    pub class: ClassId,
    /// The blinded token element `M` (base64).
    pub blinded: String,
}

/// A published secret ballot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BallotRecord {
    /// The ballot's own entry id (hex): what the voter's receipt names.
    pub ballot: String,
    /// Voting class it counts in.
    pub class: ClassId,
    /// The vote.
    pub vote: Vote,
    /// Index of the `gov.ballots` entry that published it.
    pub index: u64,
}

impl ProposalRecord {
    /// The proposal id as bytes.
    pub fn id_bytes(&self) -> Result<[u8; 32], StoreError> {
        crate::payload::parse_id(&self.id)
            .ok_or_else(|| StoreError::Corrupt(format!("proposal id {:?}", self.id)))
    }
}

/// A ballot's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// Yes.
    Yes,
    /// No.
    No,
    /// Abstain.
    Abstain,
    /// Choice indexes: one for single choice, any set for approval, a ranking for ranked choice
    /// (empty: abstain).
    Choices(Vec<u32>),
}

/// A member's current direct vote on a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoteRecord {
    /// Log index of the vote entry.
    pub index: u64,
    /// The ballot.
    pub vote: Vote,
    /// Index of the vote it superseded (a revote), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<u64>,
}

/// A proxy given for one proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyRecord {
    /// The member who holds the proxy.
    pub holder: String,
    /// Log index of the grant.
    pub index: u64,
}

/// The co-op record, if genesis has happened.
pub fn coop(s: &dyn StateRead) -> Result<Option<CoopState>, StoreError> {
    read(s, COOP_KEY)
}

/// The bylaws in force.
pub fn bylaws(s: &dyn StateRead) -> Result<Option<Bylaws>, StoreError> {
    read(s, BYLAWS_KEY)
}

/// What the co-op knows of `key`.
pub fn key(s: &dyn StateRead, key: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError> {
    read(s, &key_key(key))
}

/// A member by id.
pub fn member(s: &dyn StateRead, id: &str) -> Result<Option<MemberRecord>, StoreError> {
    read(s, &member_key(id))
}

/// Every member ever admitted, by id.
pub fn members(s: &dyn StateRead) -> Result<Vec<MemberRecord>, StoreError> {
    s.scan(b"member/")?.iter().map(|(_, v)| decode(v)).collect()
}

/// One member's standing at a log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Standing {
    /// Member id.
    pub member: String,
    /// Class at that index.
    pub class: ClassId,
    /// Status at that index.
    pub status: MemberStatus,
}

/// Who was a member, in which class and standing, as of log index `index` (after the entry at
/// `index`): expelled and withdrawn members are listed with that status.
pub fn members_at(s: &dyn StateRead, index: u64) -> Result<Vec<Standing>, StoreError> {
    Ok(members(s)?
        .iter()
        .filter_map(|m| {
            m.at(index).map(|e| Standing {
                member: m.id.clone(),
                class: e.class.clone(),
                status: e.status,
            })
        })
        .collect())
}

/// An application by entry id.
pub fn application(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<Application>, StoreError> {
    read(s, &app_key(id))
}

/// Every application, in entry-id order.
pub fn applications(s: &dyn StateRead) -> Result<Vec<Application>, StoreError> {
    s.scan(b"app/")?.iter().map(|(_, v)| decode(v)).collect()
}

/// A proposal by id.
pub fn proposal(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<ProposalRecord>, StoreError> {
    read(s, &prop_key(id))
}

/// Every proposal, in id order.
pub fn proposals(s: &dyn StateRead) -> Result<Vec<ProposalRecord>, StoreError> {
    s.scan(b"prop/")?.iter().map(|(_, v)| decode(v)).collect()
}

/// Records under `prefix ‖ member id`, by member id.
fn by_member<T: for<'de> Deserialize<'de>>(
    s: &dyn StateRead,
    prefix: &[u8],
) -> Result<BTreeMap<String, T>, StoreError> {
    s.scan(prefix)?
        .iter()
        .map(|(k, v)| {
            let member = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default());
            Ok((member.into_owned(), decode(v)?))
        })
        .collect()
}

/// Current direct votes on a proposal, by member.
pub fn votes(s: &dyn StateRead, p: &[u8; 32]) -> Result<BTreeMap<String, VoteRecord>, StoreError> {
    by_member(s, &vote_prefix(p))
}

/// Proxies in force on a proposal, by grantor.
pub fn proxies(
    s: &dyn StateRead,
    p: &[u8; 32],
) -> Result<BTreeMap<String, ProxyRecord>, StoreError> {
    by_member(s, &proxy_prefix(p))
}

/// Log indexes of every entry about a proposal (creation, amendments, votes, proxies,
/// withdrawal, tally), in log order.
pub fn proposal_entries(s: &dyn StateRead, p: &[u8; 32]) -> Result<Vec<u64>, StoreError> {
    let prefix = pe_prefix(p);
    Ok(s.scan(&prefix)?
        .iter()
        .filter_map(|(k, _)| {
            let b: [u8; 8] = k.get(prefix.len()..)?.try_into().ok()?;
            Some(u64::from_be_bytes(b))
        })
        .collect())
}

/// Signed participations in a secret ballot, by member.
pub fn participations(
    s: &dyn StateRead,
    p: &[u8; 32],
) -> Result<BTreeMap<String, Participation>, StoreError> {
    by_member(s, &part_prefix(p))
}

/// Published secret ballots of a proposal, by token.
pub fn ballots(
    s: &dyn StateRead,
    p: &[u8; 32],
) -> Result<BTreeMap<[u8; 32], BallotRecord>, StoreError> {
    let prefix = ballot_prefix(p);
    s.scan(&prefix)?
        .iter()
        .map(|(k, v)| {
            let token: [u8; 32] = k
                .get(prefix.len()..)
                .and_then(|t| t.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt("ballot key is not 32 bytes".into()))?;
            Ok((token, decode(v)?))
        })
        .collect()
}

/// Every proposal not yet closed or withdrawn, by closing time.
pub fn open_proposals(s: &dyn StateRead) -> Result<Vec<[u8; 32]>, StoreError> {
    due_for_tally(s, u64::MAX)
}

/// Proposals still open whose voting closed at or before `now_ms`: the node tallies these.
pub fn due_for_tally(s: &dyn StateRead, now_ms: u64) -> Result<Vec<[u8; 32]>, StoreError> {
    Ok(s.scan(OPEN_PREFIX)?
        .iter()
        .filter_map(|(k, _)| {
            let rest = k.get(OPEN_PREFIX.len()..)?;
            let closes = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
            let id: [u8; 32] = rest.get(8..)?.try_into().ok()?;
            (closes <= now_ms).then_some(id)
        })
        .collect())
}

/// The frozen electorate of a proposal: members active in a voting class as of its creation.
pub fn electorate(
    s: &dyn StateRead,
    p: &ProposalRecord,
) -> Result<BTreeMap<String, ClassId>, StoreError> {
    Ok(members(s)?
        .iter()
        .filter_map(|m| {
            let e = m.at(p.index)?;
            (e.status == MemberStatus::Active && p.eligible.contains_key(&e.class))
                .then(|| (m.id.clone(), e.class.clone()))
        })
        .collect())
}
