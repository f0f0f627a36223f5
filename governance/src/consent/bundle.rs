//! The regulator bundle (`coopledger-consent-bundle/v1`, specified in `docs/consent-bundle.md`):
//! a member's complete consent history as of one checkpoint, and its offline check. Complete
//! because the member's timeline — the list of every consent entry about them — is a state key
//! proved under the state root the checkpoint ends on; a left-out withdrawal or use changes that
//! value and the proof fails.
//!
//! [`history`] is the bundle's semantics: from the timeline and the entries alone it rebuilds
//! each grant and its status after every event, and checks that every data use was covered by
//! valid consent at its moment. The node runs it to write the bundle, the verifier to check it.

use crate::consent::{
    chain_head, timeline_key, ConsentStatus, Grant, GrantEnd, Period, StoredTimeline, Timeline,
    TimelineEvent,
};
use coopledger_ledger::bundle::{Anchor, BundleError, ProvenEntry, ProvenState};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::state::app_key;
use coopledger_ledger::{Envelope, NoteVerifier};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Format tag of version 1.
pub const CONSENT_BUNDLE_FORMAT: &str = "coopledger-consent-bundle/v1";

/// One event of the history, with the status of its grant right after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryLine {
    /// Log index of the entry.
    pub index: u64,
    /// Node time of its batch, ms.
    pub ms: u64,
    /// Entry type.
    pub event: String,
    /// Grant concerned (hex id).
    pub grant: String,
    /// That grant's status after the event (for a data use: at the use, always `active`).
    pub status: ConsentStatus,
}

/// The bundle file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentBundle {
    /// Always [`CONSENT_BUNDLE_FORMAT`].
    pub format: String,
    /// The member (pseudonymous id).
    pub member: String,
    /// When set, only grants covering this purpose are followed beyond their grant entry.
    pub purpose: Option<String>,
    /// The signed checkpoint note everything is proved against.
    pub checkpoint: String,
    /// The checkpoint's last entry: the `log.state` entry with the state root.
    pub state_entry: ProvenEntry,
    /// The member's timeline (`ctl/<member>`), proved under that root.
    pub timeline: ProvenState,
    /// In the chained form: the timeline's events, whose hash chain ends on the proved head.
    /// Absent in the whole form, where the proved value holds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_events: Option<Vec<TimelineEvent>>,
    /// The timeline's entries (see `docs/consent-bundle.md` for which), each with its proof.
    pub entries: Vec<ProvenEntry>,
    /// The notice versions the followed grants were given under, each with its proof.
    pub notices: Vec<ProvenEntry>,
    /// The history computed from the entries (the verifier recomputes and compares).
    pub history: Vec<HistoryLine>,
}

/// Why a bundle does not verify (or cannot be assembled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentBundleError {
    /// A proof, checkpoint or entry failed.
    #[error(transparent)]
    Proof(#[from] BundleError),
    /// The content is inconsistent; the message names the field or log index.
    #[error("{0}")]
    Content(String),
}

fn content(msg: impl Into<String>) -> ConsentBundleError {
    ConsentBundleError::Content(msg.into())
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn payload_str<'a>(e: &'a Envelope, field: &str) -> Option<&'a str> {
    e.body().payload.get(field).and_then(Value::as_str)
}

fn payload_u64(e: &Envelope, field: &str) -> Option<u64> {
    e.body().payload.get(field).and_then(Value::as_u64)
}

/// Which grants a bundle follows beyond their grant entry.
pub fn follows(purpose: Option<&str>, grant_purposes: &[String]) -> bool {
    purpose.is_none_or(|p| grant_purposes.iter().any(|g| g == p))
}

/// Rebuilds the member's grants from `timeline` and `entries` (by log index) and returns the
/// history of the followed grants plus every grant rebuilt. Fails, naming the log index, if an
/// entry needed is missing or does not say what the timeline says it is, or if a data use was
/// not covered by valid consent for its purpose, recipient and data categories at its moment.
pub fn history(
    member: &str,
    purpose: Option<&str>,
    timeline: &Timeline,
    entries: &BTreeMap<u64, Envelope>,
) -> Result<(Vec<HistoryLine>, Vec<Grant>), ConsentBundleError> {
    if timeline.member != member {
        return Err(content(format!(
            "field `timeline`: it is the timeline of {}, not of {member}",
            timeline.member
        )));
    }
    let mut grants: Vec<Grant> = Vec::new();
    // Where each grant is in `grants`: a lookup per event, however many grants there are.
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut lines = Vec::new();
    let mut last: Option<(u64, u64)> = None;
    for ev in &timeline.events {
        if last.is_some_and(|(i, ms)| ev.index <= i || ev.ms < ms) {
            return Err(content(format!(
                "timeline event at index {} is out of order",
                ev.index
            )));
        }
        last = Some((ev.index, ev.ms));
        let at = ev.index;
        let entry = entries.get(&at);
        if ev.event == "consent.grant" {
            let e = entry.ok_or_else(|| {
                content(format!(
                    "entry {at} (consent.grant) is missing from the bundle"
                ))
            })?;
            let id = hex::encode(e.entry_id().as_bytes());
            if e.body().kind != "consent.grant"
                || id != ev.grant
                || payload_str(e, "member") != Some(member)
            {
                return Err(content(format!(
                    "entry {at} is not {member}'s consent.grant {}",
                    ev.grant
                )));
            }
            let (Some(from_ms), Some(until_ms), Some(notice), Some(version)) = (
                payload_u64(e, "fromMs"),
                payload_u64(e, "untilMs"),
                payload_str(e, "notice"),
                payload_u64(e, "version"),
            ) else {
                return Err(content(format!("entry {at}: malformed consent.grant")));
            };
            let g = Grant {
                id,
                member: member.to_owned(),
                notice: notice.to_owned(),
                version,
                purposes: strs(e.body().payload.get("purposes")),
                recipients: strs(e.body().payload.get("recipients")),
                data_categories: strs(e.body().payload.get("dataCategories")),
                periods: vec![Period {
                    from_ms,
                    until_ms,
                    index: at,
                }],
                index: at,
                ms: ev.ms,
                ended: None,
            };
            if follows(purpose, &g.purposes) {
                lines.push(line(ev, g.status_at(at, ev.ms)));
            }
            position.insert(g.id.clone(), grants.len());
            grants.push(g);
            continue;
        }
        let g = position
            .get(&ev.grant)
            .and_then(|&k| grants.get_mut(k))
            .ok_or_else(|| {
                content(format!(
                    "event at index {at} names a grant not granted before it"
                ))
            })?;
        if !follows(purpose, &g.purposes) {
            continue;
        }
        let e = entry.ok_or_else(|| {
            content(format!(
                "entry {at} ({}) is missing from the bundle",
                ev.event
            ))
        })?;
        if e.body().kind != ev.event {
            return Err(content(format!(
                "entry {at} is a {}, the timeline says {}",
                e.body().kind,
                ev.event
            )));
        }
        let names_grant = payload_str(e, "grant") == Some(g.id.as_str());
        let own = payload_str(e, "member") == Some(member);
        match ev.event.as_str() {
            "consent.renew" if names_grant && own => {
                let until_ms = payload_u64(e, "untilMs")
                    .ok_or_else(|| content(format!("entry {at}: malformed consent.renew")))?;
                let from_ms = if g.until_ms() > ev.ms {
                    g.periods.first().map_or(ev.ms, |p| p.from_ms)
                } else {
                    ev.ms
                };
                g.periods.push(Period {
                    from_ms,
                    until_ms,
                    index: at,
                });
            }
            "consent.withdraw" if names_grant && own => {
                g.ended = Some(GrantEnd::Withdrawn {
                    index: at,
                    ms: ev.ms,
                });
            }
            "consent.revoke" | "consent.invalidate" if names_grant => {
                let party = b64_encode(e.body().signer);
                g.ended = Some(if ev.event == "consent.revoke" {
                    GrantEnd::Revoked {
                        index: at,
                        ms: ev.ms,
                        party,
                    }
                } else {
                    GrantEnd::Invalidated {
                        index: at,
                        ms: ev.ms,
                        party,
                    }
                });
            }
            "data.use" if strs(e.body().payload.get("consents")).contains(&g.id) => {
                let use_purpose = payload_str(e, "purpose").unwrap_or_default();
                let recipient = payload_str(e, "recipient").unwrap_or_default();
                let categories = strs(e.body().payload.get("dataCategories"));
                if let Err(why) = g.permits(at, ev.ms, use_purpose, recipient, &categories) {
                    return Err(content(format!(
                        "the data use at index {at} ({use_purpose} for {recipient}) was NOT covered by consent {}: it {why} ({})",
                        g.id,
                        why.rule()
                    )));
                }
            }
            _ => {
                return Err(content(format!(
                    "entry {at} ({}) does not concern grant {} of {member}",
                    ev.event, g.id
                )))
            }
        }
        lines.push(line(ev, g.status_at(at, ev.ms)));
    }
    Ok((lines, grants))
}

fn line(ev: &crate::consent::TimelineEvent, status: ConsentStatus) -> HistoryLine {
    HistoryLine {
        index: ev.index,
        ms: ev.ms,
        event: ev.event.clone(),
        grant: ev.grant.clone(),
        status,
    }
}

/// The log indexes whose entries a bundle carries: every grant entry, and every event of the
/// followed grants. `purposes_of` gives a grant's purposes by id.
pub fn needed_indexes(
    timeline: &Timeline,
    purpose: Option<&str>,
    purposes_of: impl Fn(&str) -> Vec<String>,
) -> Vec<u64> {
    let mut out = BTreeSet::new();
    for ev in &timeline.events {
        if ev.event == "consent.grant" || follows(purpose, &purposes_of(&ev.grant)) {
            out.insert(ev.index);
        }
    }
    out.into_iter().collect()
}

/// What a verified bundle shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The member.
    pub member: String,
    /// Checkpoint size and its origin.
    pub size: u64,
    /// Ledger origin.
    pub origin: String,
    /// Node time of the checkpoint's batch: the "as of" time.
    pub as_of_ms: u64,
    /// The verified history.
    pub history: Vec<HistoryLine>,
    /// Each followed grant and its status as of the checkpoint.
    pub grants: Vec<(Grant, ConsentStatus)>,
    /// Data uses in the history, all covered.
    pub uses: usize,
}

impl ConsentBundle {
    /// The timeline the proved `ctl/<member>` value stands for, with `timelineEvents` in the
    /// chained form (its chain must end on the proved head).
    fn proved_timeline(&self, value: Option<&[u8]>) -> Result<Timeline, ConsentBundleError> {
        let stored: Option<StoredTimeline> = value
            .map(serde_json::from_slice)
            .transpose()
            .map_err(|e| content(format!("field `timeline.value`: {e}")))?;
        let listed = self.timeline_events.as_ref();
        match stored {
            None | Some(StoredTimeline::Whole(_)) if listed.is_some() => Err(content(
                "field `timelineEvents`: present, but the proved timeline is not a chain head",
            )),
            None => Ok(Timeline {
                member: self.member.clone(),
                events: vec![],
            }),
            Some(StoredTimeline::Whole(t)) => Ok(t),
            Some(StoredTimeline::Chained(head)) => {
                let events = listed.ok_or_else(|| {
                    content("field `timelineEvents`: missing; the proved timeline is a chain head")
                })?;
                if u64::try_from(events.len()).ok() != Some(head.length) {
                    return Err(content(format!(
                        "field `timelineEvents`: {} events, the proved head counts {}",
                        events.len(),
                        head.length
                    )));
                }
                let linked = chain_head(events).map_err(|k| {
                    content(format!("field `timelineEvents[{k}]`: cannot be linked"))
                })?;
                if b64_encode(linked) != head.head {
                    return Err(content(
                        "field `timelineEvents`: its hash chain does not end on the proved head",
                    ));
                }
                Ok(Timeline {
                    member: head.member,
                    events: events.clone(),
                })
            }
        }
    }

    /// Checks the bundle offline against the log's verifier key: checkpoint signature, the state
    /// entry it ends on, the timeline's state proof (completeness), every entry's inclusion and
    /// signature, the notices, and the history recomputed from the entries.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<BundleReport, ConsentBundleError> {
        if self.format != CONSENT_BUNDLE_FORMAT {
            return Err(content(format!(
                "field `format`: expected {CONSENT_BUNDLE_FORMAT:?}, found {:?}",
                self.format
            )));
        }
        let anchor = Anchor::open(&self.checkpoint, log_key, &self.state_entry)?;
        let (key, value) = anchor.state(&self.timeline, "timeline")?;
        if key != app_key(&timeline_key(&self.member)) {
            return Err(content(format!(
                "field `timeline.key`: not the timeline key of {}",
                self.member
            )));
        }
        let timeline = self.proved_timeline(value.as_deref())?;
        let mut entries = BTreeMap::new();
        let checked = anchor.entries(&self.entries, "entries")?;
        for (i, (p, env)) in self.entries.iter().zip(checked).enumerate() {
            if entries.insert(p.index, env.into_inner()).is_some() {
                return Err(content(format!(
                    "field `entries[{i}]`: index {} twice",
                    p.index
                )));
            }
        }
        let purpose = self.purpose.as_deref();
        let (lines, grants) = history(&self.member, purpose, &timeline, &entries)?;
        let purposes: HashMap<&str, &Vec<String>> = grants
            .iter()
            .map(|g| (g.id.as_str(), &g.purposes))
            .collect();
        let needed = needed_indexes(&timeline, purpose, |id| {
            purposes.get(id).map(|p| (*p).clone()).unwrap_or_default()
        });
        if let Some(extra) = entries.keys().find(|i| !needed.contains(i)) {
            return Err(content(format!(
                "entry {extra} is not part of {}'s consent history",
                self.member
            )));
        }
        let mut notices: BTreeMap<(String, u64), Envelope> = BTreeMap::new();
        let checked = anchor.entries(&self.notices, "notices")?;
        for (i, env) in checked.into_iter().enumerate() {
            let (Some(id), Some(v)) = (payload_str(&env, "notice"), payload_u64(&env, "version"))
            else {
                return Err(content(format!(
                    "field `notices[{i}]`: not a consent.notice"
                )));
            };
            if env.body().kind != "consent.notice" {
                return Err(content(format!(
                    "field `notices[{i}]`: not a consent.notice"
                )));
            }
            notices.insert((id.to_owned(), v), env.into_inner());
        }
        let followed: Vec<&Grant> = grants
            .iter()
            .filter(|g| follows(purpose, &g.purposes))
            .collect();
        for g in &followed {
            let n = notices.get(&(g.notice.clone(), g.version)).ok_or_else(|| {
                content(format!(
                    "notice {} version {} of grant {} is missing",
                    g.notice, g.version, g.id
                ))
            })?;
            for (field, granted) in [
                ("purposes", &g.purposes),
                ("recipients", &g.recipients),
                ("dataCategories", &g.data_categories),
            ] {
                let offered = strs(n.body().payload.get(field));
                if let Some(x) = granted.iter().find(|x| !offered.contains(x)) {
                    return Err(content(format!(
                        "grant {} has {field} {x} that its notice does not offer",
                        g.id
                    )));
                }
            }
        }
        if lines != self.history {
            let at = lines
                .iter()
                .zip(&self.history)
                .position(|(a, b)| a != b)
                .unwrap_or(lines.len().min(self.history.len()));
            return Err(content(format!(
                "field `history[{at}]`: does not match the history computed from the entries"
            )));
        }
        let as_of_ms = anchor.commitment.batch_time_ms;
        let last = anchor.commitment.size;
        Ok(BundleReport {
            member: self.member.clone(),
            size: anchor.checkpoint.checkpoint.size,
            origin: anchor.checkpoint.checkpoint.origin.clone(),
            as_of_ms,
            uses: lines.iter().filter(|l| l.event == "data.use").count(),
            history: lines,
            grants: followed
                .into_iter()
                .map(|g| (g.clone(), g.status_at(last, as_of_ms)))
                .collect(),
        })
    }
}
