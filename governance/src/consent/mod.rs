//! The consent ledger's records and the one status function: parties (controllers, recipients,
//! authorities), versioned consent notices, members' grants with their validity periods and end,
//! data uses, and each member's consent timeline. Status at a log index and time is computed
//! here and only here, for the rules (a data use must cite consent valid *now*), the queries and
//! the offline bundle check.
//!
//! State keys (the state machine's namespace; JSON values):
//!
//! | key | value |
//! |---|---|
//! | `party/<party id>` | [`Party`] |
//! | `notice/<notice id>/<version, 8 bytes BE>` | [`Notice`] (immutable) |
//! | `grant/<32-byte grant id>` | [`Grant`] |
//! | `mgrant/<member id>/<32-byte grant id>` | empty: a member's grants |
//! | `use/<32-byte use id>` | [`DataUse`] |
//! | `ctl/<member id>` | the member's consent timeline: a [`TimelineHead`] (chained form), or the [`Timeline`] itself (whole form, `coop.genesis` v1) |
//! | `ctle/<member id>/<n, 8 bytes BE>` | [`TimelineEvent`] `n` of the timeline (chained form only) |

pub mod bundle;
pub(crate) mod rules;

use crate::records::{cat, decode, read};
use coopledger_ledger::StateRead;
use coopledger_ledger::StoreError;
use serde::{Deserialize, Serialize};

pub(crate) fn party_key(id: &str) -> Vec<u8> {
    cat(&[b"party/", id.as_bytes()])
}
pub(crate) fn notice_key(id: &str, version: u64) -> Vec<u8> {
    cat(&[b"notice/", id.as_bytes(), b"/", &version.to_be_bytes()])
}
pub(crate) fn grant_key(id: &[u8; 32]) -> Vec<u8> {
    cat(&[b"grant/", id])
}
pub(crate) fn member_grants_prefix(member: &str) -> Vec<u8> {
    cat(&[b"mgrant/", member.as_bytes(), b"/"])
}
pub(crate) fn member_grant_key(member: &str, grant: &[u8; 32]) -> Vec<u8> {
    cat(&[&member_grants_prefix(member), grant])
}
pub(crate) fn use_key(id: &[u8; 32]) -> Vec<u8> {
    cat(&[b"use/", id])
}
pub fn timeline_key(member: &str) -> Vec<u8> {
    cat(&[b"ctl/", member.as_bytes()])
}
fn timeline_events_prefix(member: &str) -> Vec<u8> {
    cat(&[b"ctle/", member.as_bytes(), b"/"])
}
pub(crate) fn timeline_event_key(member: &str, n: u64) -> Vec<u8> {
    cat(&[&timeline_events_prefix(member), &n.to_be_bytes()])
}

/// What a party is to the co-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// Decides the purposes of processing; may revoke consents it collected.
    Controller,
    /// Receives member data (a city agency, a research institute, a company).
    Recipient,
    /// A supervisory authority; may invalidate consents.
    Authority,
}

impl PartyKind {
    /// The payload spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Controller => "controller",
            PartyKind::Recipient => "recipient",
            PartyKind::Authority => "authority",
        }
    }
}

/// A registered party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Party {
    /// Party id, an identifier (e.g. `city_transport`).
    pub id: String,
    /// Kind.
    pub kind: PartyKind,
    /// Organisation name (organisations only: no personal data).
    pub name: String,
    /// Jurisdiction, e.g. `EU`, `GB`.
    pub jurisdiction: String,
    /// Key the party signs with (revocations, invalidations, data uses), base64, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Log index of registration.
    pub index: u64,
}

/// A consent notice: what a member is asked to agree to. Immutable; a change is a new version.
/// Fields cover the ISO/IEC TS 27560 consent-record structure; terms are W3C DPV CURIEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// Notice id.
    pub notice: String,
    /// Version (1, 2, …).
    pub version: u64,
    /// Controller party id.
    pub controller: String,
    /// Purposes (e.g. `dpv:ScientificResearch`).
    pub purposes: Vec<String>,
    /// Personal data categories (e.g. `pd:HealthRecord`).
    pub data_categories: Vec<String>,
    /// Processing operations (e.g. `dpv:Share`).
    pub operations: Vec<String>,
    /// Recipient party ids.
    pub recipients: Vec<String>,
    /// Retention of the data, ms.
    pub retention_ms: u64,
    /// Jurisdiction, e.g. `EU`.
    pub jurisdiction: String,
    /// Lawful basis, e.g. `dpv:Consent`.
    pub lawful_basis: String,
    /// SHA-256 of the notice text as shown to members (base64).
    pub text_digest: String,
    /// Language of the text (BCP 47).
    pub language: String,
    /// Special-category data (GDPR Art. 9).
    pub special_category: bool,
    /// Log index of publication.
    pub index: u64,
}

/// How a grant ended, if it did. Every end is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum GrantEnd {
    /// Withdrawn by the member.
    Withdrawn {
        /// Log index.
        index: u64,
        /// Node time, ms.
        ms: u64,
    },
    /// Revoked by the controller.
    Revoked {
        /// Log index.
        index: u64,
        /// Node time, ms.
        ms: u64,
        /// Controller party id.
        party: String,
    },
    /// Invalidated by an authority.
    Invalidated {
        /// Log index.
        index: u64,
        /// Node time, ms.
        ms: u64,
        /// Authority party id.
        party: String,
    },
}

impl GrantEnd {
    /// Log index of the ending entry.
    pub fn index(&self) -> u64 {
        match self {
            GrantEnd::Withdrawn { index, .. }
            | GrantEnd::Revoked { index, .. }
            | GrantEnd::Invalidated { index, .. } => *index,
        }
    }

    /// Node time of the ending entry.
    pub fn ms(&self) -> u64 {
        match self {
            GrantEnd::Withdrawn { ms, .. }
            | GrantEnd::Revoked { ms, .. }
            | GrantEnd::Invalidated { ms, .. } => *ms,
        }
    }

    fn status(&self) -> ConsentStatus {
        match self {
            GrantEnd::Withdrawn { .. } => ConsentStatus::Withdrawn,
            GrantEnd::Revoked { .. } => ConsentStatus::Revoked,
            GrantEnd::Invalidated { .. } => ConsentStatus::Invalidated,
        }
    }
}

/// One validity period `[fromMs, untilMs)`, recorded at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Period {
    /// Valid from (ms, inclusive).
    pub from_ms: u64,
    /// Valid until (ms, exclusive).
    pub until_ms: u64,
    /// Log index of the grant or renewal that made it.
    pub index: u64,
}

/// A member's consent grant: a subset of one notice's purposes × recipients × data categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    /// Grant id: the granting entry's id (hex).
    pub id: String,
    /// Member id.
    pub member: String,
    /// Notice id and version.
    pub notice: String,
    /// Notice version.
    pub version: u64,
    /// Purposes granted.
    pub purposes: Vec<String>,
    /// Recipients granted.
    pub recipients: Vec<String>,
    /// Data categories granted.
    pub data_categories: Vec<String>,
    /// Validity periods: the grant's, then each renewal's.
    pub periods: Vec<Period>,
    /// Log index and node time of the grant.
    pub index: u64,
    /// Node time of the grant, ms.
    pub ms: u64,
    /// How it ended, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<GrantEnd>,
}

/// Where a consent stands at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Valid.
    Active,
    /// Granted for a later time.
    NotYetValid,
    /// Past its validity (and not renewed).
    Expired,
    /// Withdrawn by the member.
    Withdrawn,
    /// Revoked by the controller.
    Revoked,
    /// Invalidated by an authority.
    Invalidated,
    /// No grant (at that index).
    None,
}

impl Grant {
    /// Status as of log index `index` (entries after it are not seen) at time `ms`.
    pub fn status_at(&self, index: u64, ms: u64) -> ConsentStatus {
        if self.index > index {
            return ConsentStatus::None;
        }
        if let Some(end) = &self.ended {
            if end.index() <= index && end.ms() <= ms {
                return end.status();
            }
        }
        let periods: Vec<&Period> = self.periods.iter().filter(|p| p.index <= index).collect();
        if periods.iter().any(|p| p.from_ms <= ms && ms < p.until_ms) {
            ConsentStatus::Active
        } else if periods.iter().all(|p| ms < p.from_ms) {
            ConsentStatus::NotYetValid
        } else {
            ConsentStatus::Expired
        }
    }

    /// Whether the grant covers `purpose` for `recipient`.
    pub fn covers(&self, purpose: &str, recipient: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose) && self.recipients.iter().any(|r| r == recipient)
    }

    /// Whether the grant permits a data use, as of log index `index` at time `ms`, for
    /// `purpose`, `recipient` and every one of `categories`: the one decision the rules (at the
    /// use's admission), the bundle verifier (on replay) and the node share.
    pub fn permits(
        &self,
        index: u64,
        ms: u64,
        purpose: &str,
        recipient: &str,
        categories: &[String],
    ) -> Result<(), UseRefusal> {
        match self.status_at(index, ms) {
            ConsentStatus::Active => {}
            other => return Err(UseRefusal::Status(other)),
        }
        if !self.purposes.iter().any(|p| p == purpose) {
            return Err(UseRefusal::Purpose(purpose.to_owned()));
        }
        if !self.recipients.iter().any(|r| r == recipient) {
            return Err(UseRefusal::Recipient(recipient.to_owned()));
        }
        if let Some(c) = categories
            .iter()
            .find(|c| !self.data_categories.contains(c))
        {
            return Err(UseRefusal::Category(c.clone()));
        }
        Ok(())
    }

    /// Latest `untilMs` of any period.
    pub fn until_ms(&self) -> u64 {
        self.periods.iter().map(|p| p.until_ms).max().unwrap_or(0)
    }
}

/// Why a consent does not permit a data use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseRefusal {
    /// The consent is not active then.
    Status(ConsentStatus),
    /// It does not cover this purpose.
    Purpose(String),
    /// It does not cover this recipient.
    Recipient(String),
    /// It does not cover this data category.
    Category(String),
}

impl UseRefusal {
    /// The rule name a refused `data.use` reports.
    pub fn rule(&self) -> &'static str {
        match self {
            UseRefusal::Status(ConsentStatus::Withdrawn) => "use.withdrawn",
            UseRefusal::Status(ConsentStatus::Revoked) => "use.revoked",
            UseRefusal::Status(ConsentStatus::Invalidated) => "use.invalidated",
            UseRefusal::Status(ConsentStatus::Expired) => "use.expired",
            UseRefusal::Status(_) => "use.not_yet_valid",
            UseRefusal::Purpose(_) => "use.purpose",
            UseRefusal::Recipient(_) => "use.recipient",
            UseRefusal::Category(_) => "use.category",
        }
    }
}

impl std::fmt::Display for UseRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UseRefusal::Status(ConsentStatus::Withdrawn) => {
                f.write_str("was withdrawn by the member")
            }
            UseRefusal::Status(ConsentStatus::Revoked) => {
                f.write_str("was revoked by the controller")
            }
            UseRefusal::Status(ConsentStatus::Invalidated) => {
                f.write_str("was invalidated by an authority")
            }
            UseRefusal::Status(ConsentStatus::Expired) => f.write_str("has expired"),
            UseRefusal::Status(_) => f.write_str("is not valid yet"),
            UseRefusal::Purpose(p) => write!(f, "does not cover {p}"),
            UseRefusal::Recipient(r) => write!(f, "does not cover recipient {r}"),
            UseRefusal::Category(c) => write!(f, "does not cover {c}"),
        }
    }
}

/// A release or sale of member data, citing the consents it relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataUse {
    /// Use id: the entry id (hex).
    pub id: String,
    /// `release` or `sale`.
    pub kind: String,
    /// Recipient party id.
    pub recipient: String,
    /// Purpose.
    pub purpose: String,
    /// Data categories released.
    pub data_categories: Vec<String>,
    /// Grant ids relied on (one per member whose data is in it).
    pub consents: Vec<String>,
    /// Members whose data is in it, in the order of `consents`.
    pub members: Vec<String>,
    /// SHA-256 of the dataset (base64), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Log index.
    pub index: u64,
    /// Node time, ms.
    pub ms: u64,
}

/// One consent entry about a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineEvent {
    /// Log index of the entry.
    pub index: u64,
    /// Node time, ms.
    pub ms: u64,
    /// Entry type, e.g. `consent.grant`, `data.use`.
    pub event: String,
    /// The grant concerned (hex).
    pub grant: String,
}

/// How a co-op keeps its members' consent timelines; fixed by its genesis entry's version, so
/// a log always replays to the state roots it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineForm {
    /// `coop.genesis` v1: `ctl/<member>` holds the whole [`Timeline`], rewritten on every event
    /// (its cost grows with the history).
    #[default]
    Whole,
    /// `coop.genesis` v2: `ctl/<member>` holds a [`TimelineHead`], each event its own key.
    Chained,
}

impl TimelineForm {
    /// Whether this is the form of co-ops founded with `coop.genesis` v1 (the default, left out
    /// of the co-op record so theirs stays byte for byte what it was).
    pub fn is_whole(&self) -> bool {
        *self == TimelineForm::Whole
    }
}

/// The chained form's value of `ctl/<member>`: how many events the timeline has and the last
/// link of the hash chain over them ([`chain_link`]). Fixed in size, however long the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineHead {
    /// Member id.
    pub member: String,
    /// Number of events.
    pub length: u64,
    /// Base64 of the chain's last link (`H_length`).
    pub head: String,
}

/// What `ctl/<member>` holds, in either form. The two shapes share no required field name
/// (`events` against `length` and `head`), so a value parses as exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredTimeline {
    /// Chained form.
    Chained(TimelineHead),
    /// Whole form.
    Whole(Timeline),
}

/// Domain of the timeline's hash chain.
const CHAIN_DOMAIN: &[u8] = b"coopledger/consent-timeline/v1\0";

/// One link of the chain: `H_(k+1) = SHA-256("coopledger/consent-timeline/v1" ‖ 0x00 ‖ H_k ‖
/// u64 BE index ‖ u64 BE ms ‖ u8 length of event ‖ event ‖ 32-byte grant id)`; `H_0` is 32 zero
/// bytes. `None` when the event cannot be linked: a grant that is not 64 hex digits, or an
/// event type over 255 bytes (neither is ever written by the rules).
pub fn chain_link(prev: &[u8; 32], ev: &TimelineEvent) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let grant = crate::parse_id(&ev.grant)?;
    let len = u8::try_from(ev.event.len()).ok()?;
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(prev);
    h.update(ev.index.to_be_bytes());
    h.update(ev.ms.to_be_bytes());
    h.update([len]);
    h.update(ev.event.as_bytes());
    h.update(grant);
    Some(h.finalize().into())
}

/// The head of the chain over `events` (32 zero bytes for none); `Err(k)` names the first event
/// that cannot be linked.
pub fn chain_head(events: &[TimelineEvent]) -> Result<[u8; 32], usize> {
    events
        .iter()
        .enumerate()
        .try_fold([0u8; 32], |h, (k, ev)| chain_link(&h, ev).ok_or(k))
}

/// Every consent entry about a member, in log order: the member's complete consent history
/// (committed to by one state key, so one state proof shows nothing was left out).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeline {
    /// Member id.
    pub member: String,
    /// Events in log order.
    pub events: Vec<TimelineEvent>,
}

/// A party by id.
pub fn party(s: &dyn StateRead, id: &str) -> Result<Option<Party>, StoreError> {
    read(s, &party_key(id))
}

/// Every party, by id.
pub fn parties(s: &dyn StateRead) -> Result<Vec<Party>, StoreError> {
    s.scan(b"party/")?.iter().map(|(_, v)| decode(v)).collect()
}

/// A notice version.
pub fn notice(s: &dyn StateRead, id: &str, version: u64) -> Result<Option<Notice>, StoreError> {
    read(s, &notice_key(id, version))
}

/// Every version of every notice, by id then version.
pub fn notices(s: &dyn StateRead) -> Result<Vec<Notice>, StoreError> {
    s.scan(b"notice/")?.iter().map(|(_, v)| decode(v)).collect()
}

/// The latest version of notice `id`, if any.
pub fn latest_notice(s: &dyn StateRead, id: &str) -> Result<Option<Notice>, StoreError> {
    let prefix = cat(&[b"notice/", id.as_bytes(), b"/"]);
    match s.scan(&prefix)?.last() {
        Some((_, v)) => Ok(Some(decode(v)?)),
        None => Ok(None),
    }
}

/// A grant by id.
pub fn grant(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<Grant>, StoreError> {
    read(s, &grant_key(id))
}

/// A member's grants, by grant id.
pub fn member_grants(s: &dyn StateRead, member: &str) -> Result<Vec<Grant>, StoreError> {
    let prefix = member_grants_prefix(member);
    let mut out = Vec::new();
    for (k, _) in s.scan(&prefix)? {
        let id: [u8; 32] = k
            .get(prefix.len()..)
            .and_then(|t| t.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("member grant key".into()))?;
        out.push(grant(s, &id)?.ok_or_else(|| StoreError::Corrupt("dangling grant".into()))?);
    }
    Ok(out)
}

/// A data use by id.
pub fn data_use(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<DataUse>, StoreError> {
    read(s, &use_key(id))
}

/// A member's consent timeline (empty if none), in either form.
pub fn timeline(s: &dyn StateRead, member: &str) -> Result<Timeline, StoreError> {
    match read(s, &timeline_key(member))? {
        None => Ok(Timeline {
            member: member.to_owned(),
            events: vec![],
        }),
        Some(stored) => timeline_of(s, member, stored),
    }
}

/// The timeline a stored `ctl/<member>` value stands for: the value itself in the whole form;
/// in the chained form the first `length` event keys, checked against the head. `s` may be
/// newer than the value (event keys are never rewritten, only added after it).
pub fn timeline_of(
    s: &dyn StateRead,
    member: &str,
    stored: StoredTimeline,
) -> Result<Timeline, StoreError> {
    let head = match stored {
        StoredTimeline::Whole(t) => return Ok(t),
        StoredTimeline::Chained(head) => head,
    };
    let want = usize::try_from(head.length)
        .map_err(|_| StoreError::Corrupt(format!("timeline of {member}: length")))?;
    let events: Vec<TimelineEvent> = s
        .scan(&timeline_events_prefix(member))?
        .into_iter()
        .take(want)
        .map(|(_, v)| decode(&v))
        .collect::<Result<_, _>>()?;
    let linked = chain_head(&events)
        .ok()
        .map(coopledger_ledger::codec::b64_encode);
    if events.len() != want || linked.as_deref() != Some(head.head.as_str()) {
        return Err(StoreError::Corrupt(format!(
            "the consent timeline of {member} does not match its head"
        )));
    }
    Ok(Timeline {
        member: member.to_owned(),
        events,
    })
}

/// Where (member, purpose, recipient) stands at log index `index` and time `ms`: every grant that
/// covers the pair, with its status, and the best status among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusReport {
    /// Member id.
    pub member: String,
    /// Purpose.
    pub purpose: String,
    /// Recipient party id.
    pub recipient: String,
    /// As of this log index.
    pub at_index: u64,
    /// At this time, ms.
    pub at_ms: u64,
    /// `active` if any covering grant is active, else the status of the latest covering grant,
    /// else `none`.
    pub status: ConsentStatus,
    /// Each covering grant: id, status, data categories.
    pub grants: Vec<GrantStatus>,
}

/// One grant's status in a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantStatus {
    /// Grant id.
    pub grant: String,
    /// Status.
    pub status: ConsentStatus,
    /// Data categories it covers.
    pub data_categories: Vec<String>,
}

/// Computes a [`StatusReport`] from the member's grants.
pub fn status(
    grants: &[Grant],
    member: &str,
    purpose: &str,
    recipient: &str,
    at_index: u64,
    at_ms: u64,
) -> StatusReport {
    let mut covering: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.index <= at_index && g.covers(purpose, recipient))
        .collect();
    covering.sort_by_key(|g| g.index);
    let list: Vec<GrantStatus> = covering
        .iter()
        .map(|g| GrantStatus {
            grant: g.id.clone(),
            status: g.status_at(at_index, at_ms),
            data_categories: g.data_categories.clone(),
        })
        .collect();
    let status = if list.iter().any(|g| g.status == ConsentStatus::Active) {
        ConsentStatus::Active
    } else {
        list.last().map_or(ConsentStatus::None, |g| g.status)
    };
    StatusReport {
        member: member.to_owned(),
        purpose: purpose.to_owned(),
        recipient: recipient.to_owned(),
        at_index,
        at_ms,
        status,
        grants: list,
    }
}

/// The consent receipt given to the member on each grant, in the Kantara Consent Receipt v1.1
/// shape (whose fields ISO/IEC TS 27560 carries forward), plus where the grant sits in the log.
/// Identifies the member only by pseudonymous id.
pub fn receipt(g: &Grant, n: &Notice, controller: &Party) -> serde_json::Value {
    serde_json::json!({
        "version": "KI-CR-v1.1.0",
        "jurisdiction": n.jurisdiction,
        "consentTimestamp": g.ms / 1000,
        "collectionMethod": "signed ledger entry (consent.grant) made on the member's device",
        "consentReceiptID": g.id,
        "language": n.language,
        "piiPrincipalId": g.member,
        "piiControllers": [{
            "piiController": controller.name,
            "onBehalf": false,
            "partyId": controller.id,
        }],
        "policyUrl": format!("notice:{}/v{}#sha256={}", n.notice, n.version, n.text_digest),
        "services": [{
            "service": format!("{} v{}", n.notice, n.version),
            "purposes": g.purposes.iter().map(|p| serde_json::json!({
                "purpose": p,
                "purposeCategory": [p],
                "consentType": "EXPLICIT",
                "piiCategory": g.data_categories,
                "primaryPurpose": false,
                "termination": format!("until {} ms or withdrawal", g.until_ms()),
                "thirdPartyDisclosure": !g.recipients.is_empty(),
                "thirdPartyName": g.recipients.join(", "),
            })).collect::<Vec<_>>(),
        }],
        "sensitive": n.special_category,
        "spiCat": if n.special_category { g.data_categories.clone() } else { vec![] },
        "lawfulBasis": n.lawful_basis,
        "validity": g.periods,
        "ledger": { "index": g.index, "entryId": g.id, "notice": n.notice, "noticeVersion": n.version },
    })
}
