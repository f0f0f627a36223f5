//! Wire types of the `gov_*` methods: serialisable counterparts of the governance records, so a
//! refactor of a record in `governance` cannot change the public API — it breaks the `From`
//! conversions here instead, at compile time. Shapes are pinned by `tests::shapes_are_pinned`.
//! Types that are themselves signed formats (bylaws, decision rules, voting modes, tallies,
//! allocation policies) are reused as they are: their encoding is pinned by the ledger.

use coopledger_governance::bylaws::{Bylaws, DecisionKind, DecisionRules, Method};
use coopledger_governance::genesis::Role;
use coopledger_governance::proposals::Eligibility;
use coopledger_governance::records::Vote;
use coopledger_governance::records::{
    Application, ExpulsionNotice, KeyRecord, KeyReset, MemberEvent, MemberRecord, MemberStatus,
    ProposalRecord, ProposalStatus, SecretBallot, Standing, Subject,
};
use coopledger_governance::revenue::AllocationPolicy;
use coopledger_governance::tally::VotingMode;
use coopledger_governance::tallying::TallyRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// In good standing.
    Active,
    /// Suspended.
    Suspended,
    /// Expelled.
    Expelled,
    /// Withdrew.
    Withdrawn,
}

impl From<MemberStatus> for MemberState {
    fn from(s: MemberStatus) -> MemberState {
        match s {
            MemberStatus::Active => MemberState::Active,
            MemberStatus::Suspended => MemberState::Suspended,
            MemberStatus::Expelled => MemberState::Expelled,
            MemberStatus::Withdrawn => MemberState::Withdrawn,
        }
    }
}

/// What the co-op knows of a key (`gov_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Member id (`node` for the node key, `party:<id>` for a party's).
    pub member: String,
    /// Log index at which it became known.
    pub since: u64,
    /// Log index of its revocation, if revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
    /// The member's label for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl From<KeyRecord> for KeyInfo {
    fn from(k: KeyRecord) -> KeyInfo {
        KeyInfo {
            member: k.member,
            since: k.since,
            revoked: k.revoked,
            label: k.label,
        }
    }
}

/// A membership application (`gov_application`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationView {
    /// Entry id (hex).
    pub id: String,
    /// Log index.
    pub index: u64,
    /// The applicant's key (base64).
    pub key: String,
    /// The member id the applicant will have.
    pub member: String,
    /// Requested class.
    pub class: String,
    /// Salted commitment to off-ledger details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Log index of the admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<u64>,
    /// Log index of the decline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<u64>,
    /// Paid share: digest of the payment reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

impl From<Application> for ApplicationView {
    fn from(a: Application) -> ApplicationView {
        ApplicationView {
            id: a.id,
            index: a.index,
            key: a.key,
            member: a.member,
            class: a.class,
            details: a.details,
            admitted: a.admitted,
            declined: a.declined,
            share: a.share,
        }
    }
}

/// One member's standing at an index (`gov_members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandingView {
    /// Member id.
    pub member: String,
    /// Class then.
    pub class: String,
    /// Status then.
    pub status: MemberState,
}

impl From<Standing> for StandingView {
    fn from(s: Standing) -> StandingView {
        StandingView {
            member: s.member,
            class: s.class,
            status: s.status.into(),
        }
    }
}

/// One event of a member's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberEventView {
    /// Log index.
    pub index: u64,
    /// `founded`, `admitted`, `class`, `suspended`, `reinstated`, `expelled`, `withdrawn`.
    pub event: String,
    /// Status from then on.
    pub status: MemberState,
    /// Class from then on.
    pub class: String,
}

impl From<MemberEvent> for MemberEventView {
    fn from(e: MemberEvent) -> MemberEventView {
        MemberEventView {
            index: e.index,
            event: e.event,
            status: e.status.into(),
            class: e.class,
        }
    }
}

/// A pending notice of expulsion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeView {
    /// Log index of the notice.
    pub index: u64,
    /// Node time of its batch.
    pub time_ms: u64,
    /// Commitment to the reasons.
    pub reason: String,
}

impl From<ExpulsionNotice> for NoticeView {
    fn from(n: ExpulsionNotice) -> NoticeView {
        NoticeView {
            index: n.index,
            time_ms: n.time_ms,
            reason: n.reason,
        }
    }
}

/// A board key reset waiting out its veto period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyResetView {
    /// Log index of the `member.key_reset` entry (what a veto names).
    pub index: u64,
    /// Node time of its batch.
    pub time_ms: u64,
    /// From this node time on, `member.key_reset_complete` is accepted.
    pub due_ms: u64,
    /// The new key (base64).
    pub key: String,
    /// The new key's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The board member who asked for it.
    pub by: String,
}

impl From<KeyReset> for KeyResetView {
    fn from(r: KeyReset) -> KeyResetView {
        KeyResetView {
            index: r.index,
            time_ms: r.time_ms,
            due_ms: r.due_ms,
            key: r.key,
            label: r.label,
            by: r.by,
        }
    }
}

/// A member (inside `gov_member`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    /// Pseudonymous id.
    pub id: String,
    /// Current class.
    pub class: String,
    /// Current status.
    pub status: MemberState,
    /// Roles besides member.
    pub roles: Vec<Role>,
    /// Keys ever held (base64).
    pub keys: Vec<String>,
    /// History, oldest first.
    pub history: Vec<MemberEventView>,
    /// Pending expulsion notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeView>,
    /// A key reset waiting out its veto period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_reset: Option<KeyResetView>,
}

impl From<MemberRecord> for MemberInfo {
    fn from(m: MemberRecord) -> MemberInfo {
        MemberInfo {
            id: m.id,
            class: m.class,
            status: m.status.into(),
            roles: m.roles,
            keys: m.keys,
            history: m.history.into_iter().map(Into::into).collect(),
            notice: m.notice.map(Into::into),
            key_reset: m.key_reset.map(Into::into),
        }
    }
}

/// What a proposal decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SubjectView {
    /// A motion.
    Motion,
    /// Admit this application.
    Application {
        /// Application id.
        id: String,
    },
    /// Expel this member.
    Member {
        /// Member id.
        id: String,
    },
    /// New bylaws.
    Bylaws {
        /// The proposed bylaws.
        bylaws: Box<Bylaws>,
    },
    /// A revenue allocation policy.
    Policy {
        /// The proposed policy.
        policy: Box<AllocationPolicy>,
    },
}

/// Where a proposal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProposalState {
    /// Open (for votes between opensMs and closesMs).
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
        /// Whether its effect took hold.
        applied: bool,
    },
}

/// The public side of a secret ballot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBallotView {
    /// Public ballot key per class (base64).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
    /// Index of the `gov.ballot_key` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_index: Option<u64>,
    /// The blind-token protocol of the keys, once published: 1 (original) or 2 (RFC 9497).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u64>,
    /// Participations per class.
    pub participants: BTreeMap<String, u64>,
    /// Ballots published per class.
    pub cast: BTreeMap<String, u64>,
    /// Index of the first `gov.ballots` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<u64>,
}

/// A proposal (`gov_proposal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalView {
    /// Proposal id (hex).
    pub id: String,
    /// Log index of creation.
    pub index: u64,
    /// Proposer's member id.
    pub proposer: String,
    /// Kind of decision.
    pub kind: DecisionKind,
    /// Title.
    pub title: String,
    /// Digest of the full text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Voting method.
    pub method: Method,
    /// Choices (empty for yes/no).
    pub choices: Vec<String>,
    /// Voting opens (ms).
    pub opens_ms: u64,
    /// Voting closes (ms, exclusive).
    pub closes_ms: u64,
    /// What it decides.
    pub subject: SubjectView,
    /// Bylaws version at creation.
    pub bylaws_version: u64,
    /// Rules frozen at creation.
    pub rules: DecisionRules,
    /// Voting mode frozen at creation.
    pub voting: VotingMode,
    /// Eligible members per class at creation.
    pub eligible: BTreeMap<String, u64>,
    /// Where it stands.
    pub status: ProposalState,
    /// The tally, once closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<TallyRecord>,
    /// Secret-ballot bookkeeping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretBallotView>,
}

impl From<ProposalRecord> for ProposalView {
    fn from(p: ProposalRecord) -> ProposalView {
        ProposalView {
            id: p.id,
            index: p.index,
            proposer: p.proposer,
            kind: p.kind,
            title: p.title,
            document: p.document,
            method: p.method,
            choices: p.choices,
            opens_ms: p.opens_ms,
            closes_ms: p.closes_ms,
            subject: match p.subject {
                Subject::Motion => SubjectView::Motion,
                Subject::Application { id } => SubjectView::Application { id },
                Subject::Member { id } => SubjectView::Member { id },
                Subject::Bylaws { bylaws } => SubjectView::Bylaws { bylaws },
                Subject::Policy { policy } => SubjectView::Policy { policy },
            },
            bylaws_version: p.bylaws_version,
            rules: p.rules,
            voting: p.voting,
            eligible: p.eligible,
            status: match p.status {
                ProposalStatus::Open => ProposalState::Open,
                ProposalStatus::Withdrawn { index } => ProposalState::Withdrawn { index },
                ProposalStatus::Closed { index, applied } => {
                    ProposalState::Closed { index, applied }
                }
            },
            tally: p.tally,
            secret: p.secret.map(|s| SecretBallotView {
                protocol: s.keys_index.map(|_| s.protocol().number()),
                keys: s.keys,
                keys_index: s.keys_index,
                participants: s.participants,
                cast: s.cast,
                opened_at: s.opened_at,
            }),
        }
    }
}

/// Back to the governance record, for a client that runs governance code on it (a member's
/// device checking a secret-ballot answer against the proposal's published keys).
impl From<ProposalView> for ProposalRecord {
    fn from(p: ProposalView) -> ProposalRecord {
        ProposalRecord {
            id: p.id,
            index: p.index,
            proposer: p.proposer,
            kind: p.kind,
            title: p.title,
            document: p.document,
            method: p.method,
            choices: p.choices,
            opens_ms: p.opens_ms,
            closes_ms: p.closes_ms,
            subject: match p.subject {
                SubjectView::Motion => Subject::Motion,
                SubjectView::Application { id } => Subject::Application { id },
                SubjectView::Member { id } => Subject::Member { id },
                SubjectView::Bylaws { bylaws } => Subject::Bylaws { bylaws },
                SubjectView::Policy { policy } => Subject::Policy { policy },
            },
            bylaws_version: p.bylaws_version,
            rules: p.rules,
            voting: p.voting,
            eligible: p.eligible,
            status: match p.status {
                ProposalState::Open => ProposalStatus::Open,
                ProposalState::Withdrawn { index } => ProposalStatus::Withdrawn { index },
                ProposalState::Closed { index, applied } => {
                    ProposalStatus::Closed { index, applied }
                }
            },
            tally: p.tally,
            secret: p.secret.map(|s| SecretBallot {
                keys: s.keys,
                keys_index: s.keys_index,
                // The record leaves protocol 1 unsaid.
                protocol: s.protocol.filter(|n| *n != 1),
                participants: s.participants,
                cast: s.cast,
                opened_at: s.opened_at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The API's JSON for a fixed member, key, application and proposal: a change here is a
    /// change of the public API (docs/rpc.md), never a side effect of a record refactor.
    #[test]
    fn shapes_are_pinned() {
        let key = KeyInfo::from(KeyRecord {
            member: "m-0011223344556677".into(),
            since: 3,
            revoked: Some(9),
            label: Some("ward tablet".into()),
        });
        assert_eq!(
            serde_json::to_value(&key).unwrap(),
            json!({"member": "m-0011223344556677", "since": 3, "revoked": 9, "label": "ward tablet"})
        );
        let m = MemberInfo::from(MemberRecord {
            id: "m-0011223344556677".into(),
            class: "drivers".into(),
            status: MemberStatus::Suspended,
            roles: vec![Role::Board],
            keys: vec!["AAAA".into()],
            history: vec![MemberEvent {
                index: 0,
                event: "founded".into(),
                status: MemberStatus::Active,
                class: "drivers".into(),
            }],
            notice: None,
            key_reset: None,
        });
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"id": "m-0011223344556677", "class": "drivers", "status": "suspended",
                   "roles": ["board"], "keys": ["AAAA"],
                   "history": [{"index": 0, "event": "founded", "status": "active", "class": "drivers"}]})
        );
        let mut b = Bylaws::single_class();
        b.version = 2;
        let p = ProposalView::from(ProposalRecord {
            id: "ab".repeat(32),
            index: 7,
            proposer: "m-0011223344556677".into(),
            kind: DecisionKind::BylawsAmendment,
            title: "v2".into(),
            document: None,
            method: Method::YesNo,
            choices: vec![],
            opens_ms: 10,
            closes_ms: 20,
            subject: Subject::Bylaws {
                bylaws: Box::new(b.clone()),
            },
            bylaws_version: 1,
            rules: b.decisions[&DecisionKind::BylawsAmendment].clone(),
            voting: VotingMode::OneMemberOneVote,
            eligible: BTreeMap::from([("members".into(), 3)]),
            status: ProposalStatus::Closed {
                index: 12,
                applied: true,
            },
            tally: None,
            secret: None,
        });
        let v = serde_json::to_value(&p).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "bylawsVersion",
                "choices",
                "closesMs",
                "eligible",
                "id",
                "index",
                "kind",
                "method",
                "opensMs",
                "proposer",
                "rules",
                "status",
                "subject",
                "title",
                "voting"
            ]
        );
        assert_eq!(
            v["status"],
            json!({"state": "closed", "index": 12, "applied": true})
        );
        assert_eq!(v["subject"]["type"], "bylaws");
        assert_eq!(v["kind"], "bylaws_amendment");
        // And back: a client can run governance code on what it received.
        let back: ProposalRecord = serde_json::from_value::<ProposalView>(v).unwrap().into();
        assert_eq!(ProposalView::from(back), p);
    }
}

/// Whether a member may vote on a proposal, and why not (`coopledger_governance::proposals::
/// Eligibility` is the internal counterpart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum EligibilityView {
    /// In the frozen electorate and active.
    Eligible {
        /// The class the member votes in.
        class: String,
    },
    /// No such member.
    NotAMember,
    /// Not yet a member when the proposal was created (the electorate was frozen then).
    JoinedAfter,
    /// A member then, of a class that does not vote on it.
    ClassNotVoting {
        /// The member's class then.
        class: String,
    },
    /// A member then, but suspended.
    InactiveThen,
    /// In the electorate, but no longer active.
    NotActiveNow {
        /// Where the member stands now.
        status: MemberState,
    },
}

impl From<Eligibility> for EligibilityView {
    fn from(e: Eligibility) -> EligibilityView {
        match e {
            Eligibility::Eligible { class } => EligibilityView::Eligible { class },
            Eligibility::NotAMember => EligibilityView::NotAMember,
            Eligibility::JoinedAfter => EligibilityView::JoinedAfter,
            Eligibility::ClassNotVoting { class } => EligibilityView::ClassNotVoting { class },
            Eligibility::InactiveThen => EligibilityView::InactiveThen,
            Eligibility::NotActiveNow { status } => EligibilityView::NotActiveNow {
                status: status.into(),
            },
        }
    }
}

/// A direct vote as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CastVote {
    /// Log index of the vote entry.
    pub index: u64,
    /// `"yes"`, `"no"`, `"abstain"` or `{"choices": [indexes]}`.
    pub vote: Vote,
}

/// A proxy the member gave on the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GivenProxy {
    /// The member holding it.
    pub to: String,
    /// Log index of the grant.
    pub index: u64,
    /// How the holder voted (directly), if they have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_vote: Option<CastVote>,
}

/// What a member's vote weighs on the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightView {
    /// The class the member votes in.
    pub class: String,
    /// How many members of that class are in the frozen electorate.
    pub class_eligible: u64,
    /// Under class-weighted voting, the class's weight in ppm (shared equally by
    /// `class_eligible`; before classes without voters drop out and any cap); absent under one
    /// member, one vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight_ppm: Option<u32>,
}

/// One member on one proposal (`gov_voter`): may they vote and why (not), what their vote
/// weighs, how they voted (directly, through a secret-ballot participation, or by proxy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoterView {
    /// Proposal id.
    pub proposal: String,
    /// Member id.
    pub member: String,
    /// Whether the member may vote now.
    pub eligibility: EligibilityView,
    /// What the vote weighs (when the member is in the electorate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WeightView>,
    /// The member's current direct vote (public proposals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<CastVote>,
    /// Log index of the member's participation (secret ballots: the ballot itself is not linked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participated: Option<u64>,
    /// The proxy the member gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<GivenProxy>,
    /// Proxies the member holds on the proposal.
    pub proxies_held: u64,
}
