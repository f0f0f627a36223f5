//! Proposals and votes: creation with the electorate and rules frozen, amendment before opening,
//! withdrawal, signed votes within the window (by signer time and node time), revotes, proxies
//! within the caps, and the node's tally entry, which must equal the tally recomputed here.

use super::{corrupt, rule, write, Signer};
use crate::bylaws::{DecisionKind, Method};
use crate::genesis::{is_member_id, parse_bylaws, Role};
use crate::payload::{malformed, Fields};
use crate::records::{
    self, held_key, member_key, open_key, pe_key, prop_key, proxy_key, vote_key, MemberStatus,
    ProposalRecord, ProposalStatus, ProxyRecord, SecretBallot, Subject, Vote, VoteRecord,
    BYLAWS_KEY,
};
use crate::tally::{ClassId, Outcome};
use crate::tallying::{counted_ballots, tally, CountedBallot, TallyRecord};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateRead, StateView};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const MAX_CHOICES: usize = 64;

fn kind_from(f: &Fields<'_>) -> Result<DecisionKind, ApplyError> {
    let s = f.value("kind").and_then(Value::as_str).unwrap_or_default();
    DecisionKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            malformed(
                "kind",
                "must be ordinary, special, bylaws_amendment, admission, expulsion, \
                 distribution_approval or board_election",
            )
            .into()
        })
}

fn method_from(f: &Fields<'_>) -> Result<Method, ApplyError> {
    serde_json::from_value(f.value("method").cloned().unwrap_or(Value::Null)).map_err(|_| {
        malformed(
            "method",
            "must be yes_no, single_choice, approval or ranked_choice",
        )
        .into()
    })
}

fn choices_from(f: &Fields<'_>, method: Method) -> Result<Vec<String>, ApplyError> {
    let list = match f.value("choices") {
        None => vec![],
        Some(v) => v
            .as_array()
            .ok_or_else(|| malformed("choices", "must be a list of strings"))?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.as_str()
                    .filter(|s| !s.is_empty() && s.chars().count() <= 200)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        malformed(&format!("choices[{i}]"), "must be 1 to 200 characters")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if method == Method::YesNo {
        if !list.is_empty() {
            return Err(malformed("choices", "a yes_no proposal has no choices").into());
        }
        return Ok(list);
    }
    if list.len() < 2 || list.len() > MAX_CHOICES {
        return Err(malformed("choices", format!("needs 2 to {MAX_CHOICES} choices")).into());
    }
    for (i, c) in list.iter().enumerate() {
        if list.iter().take(i).any(|d| d == c) {
            return Err(malformed(&format!("choices[{i}]"), "appears twice").into());
        }
    }
    Ok(list)
}

/// Checks method, choices and the voting window against the frozen rules, at node time `now`.
fn check_terms(p: &ProposalRecord, now: u64, signer_ts: u64) -> Result<(), ApplyError> {
    if !p.rules.methods.contains(&p.method) {
        return Err(rule(
            "proposal.method",
            format!(
                "body.payload.method: the bylaws allow {:?} for {} decisions",
                p.rules.methods,
                p.kind.as_str()
            ),
        ));
    }
    if p.kind == DecisionKind::BoardElection && p.method == Method::YesNo {
        return Err(rule(
            "proposal.method",
            "body.payload.method: a board election chooses among candidates",
        ));
    }
    if p.closes_ms <= p.opens_ms {
        return Err(rule(
            "proposal.duration",
            "body.payload.closesMs must be after opensMs",
        ));
    }
    let duration = p.closes_ms - p.opens_ms;
    if duration < p.rules.min_duration_ms || duration > p.rules.max_duration_ms {
        return Err(rule(
            "proposal.duration",
            format!(
                "body.payload.closesMs: voting must last {} to {} ms, not {duration}",
                p.rules.min_duration_ms, p.rules.max_duration_ms
            ),
        ));
    }
    let notice = p.rules.min_notice_ms;
    if notice > 0 && p.opens_ms < now.saturating_add(notice) {
        return Err(rule(
            "proposal.notice",
            format!(
                "body.payload.opensMs: the bylaws require {notice} ms notice (node time {now} ms)"
            ),
        ));
    }
    if notice == 0 && p.opens_ms < signer_ts.min(now) {
        return Err(rule(
            "proposal.notice",
            "body.payload.opensMs is in the past",
        ));
    }
    Ok(())
}

fn subject_from(
    view: &StateView<'_>,
    f: &Fields<'_>,
    kind: DecisionKind,
    choices: &[String],
    current_version: u64,
) -> Result<Subject, ApplyError> {
    let wants = match kind {
        DecisionKind::Admission => "application",
        DecisionKind::Expulsion => "member",
        DecisionKind::BylawsAmendment => "bylaws",
        DecisionKind::DistributionApproval => "policy",
        _ => "",
    };
    for field in ["application", "member", "bylaws", "policy"] {
        if f.has(field) && field != wants {
            return Err(
                malformed(field, format!("not used by a {} proposal", kind.as_str())).into(),
            );
        }
    }
    match kind {
        DecisionKind::Admission => {
            let id = f.id("application")?;
            let app = records::application(view, &id)?.ok_or_else(|| {
                rule(
                    "proposal.subject",
                    "body.payload.application: no such application",
                )
            })?;
            if app.admitted.is_some() {
                return Err(rule(
                    "proposal.subject",
                    "body.payload.application: already admitted",
                ));
            }
            Ok(Subject::Application { id: app.id })
        }
        DecisionKind::Expulsion => {
            let m = super::membership::current_member(view, f)?;
            Ok(Subject::Member { id: m.id })
        }
        DecisionKind::BylawsAmendment => {
            let b = parse_bylaws(f.value("bylaws"), "bylaws")?;
            if b.version != current_version + 1 {
                return Err(rule(
                    "proposal.subject",
                    format!(
                        "body.payload.bylaws.version must be {} (the bylaws in force are version \
                         {current_version})",
                        current_version + 1
                    ),
                ));
            }
            Ok(Subject::Bylaws {
                bylaws: Box::new(b),
            })
        }
        DecisionKind::DistributionApproval => {
            let v = f.value("policy").cloned().ok_or_else(|| {
                malformed(
                    "policy",
                    "a distribution_approval proposal carries the allocation policy",
                )
            })?;
            let policy: crate::revenue::AllocationPolicy = serde_json::from_value(v)
                .map_err(|e| malformed("policy", format!("not an allocation policy: {e}")))?;
            policy
                .validate()
                .map_err(|m| malformed("policy", m.to_string()))?;
            Ok(Subject::Policy {
                policy: Box::new(policy),
            })
        }
        DecisionKind::BoardElection => {
            for (i, c) in choices.iter().enumerate() {
                let ok = is_member_id(c)
                    && records::member(view, c)?.is_some_and(|m| m.status == MemberStatus::Active);
                if !ok {
                    return Err(rule(
                        "proposal.subject",
                        format!("body.payload.choices[{i}]: candidates are active members' ids"),
                    ));
                }
            }
            Ok(Subject::Motion)
        }
        _ => Ok(Subject::Motion),
    }
}

pub(super) fn note_entry(view: &mut StateView<'_>, p: &[u8; 32], ctx: &ApplyContext) {
    view.put(&pe_key(p, ctx.index), vec![]);
}

/// Stores an open proposal, indexes it by closing time and records this entry as one of its own.
fn save_open(
    view: &mut StateView<'_>,
    id: &[u8; 32],
    p: &ProposalRecord,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    write(view, &prop_key(id), p)?;
    view.put(&open_key(p.closes_ms, id), vec![]);
    note_entry(view, id, ctx);
    Ok(())
}

pub(super) fn load(
    view: &StateView<'_>,
    f: &Fields<'_>,
) -> Result<([u8; 32], ProposalRecord), ApplyError> {
    let id = f.id("proposal")?;
    let p = records::proposal(view, &id)?.ok_or_else(|| {
        rule(
            "proposal.unknown",
            "body.payload.proposal: no such proposal",
        )
    })?;
    Ok((id, p))
}

pub(super) fn require_open(p: &ProposalRecord) -> Result<(), ApplyError> {
    match p.status {
        ProposalStatus::Open => Ok(()),
        ProposalStatus::Withdrawn { index } => Err(rule(
            "proposal.closed",
            format!("body.payload.proposal was withdrawn at index {index}"),
        )),
        ProposalStatus::Closed { index, .. } => Err(rule(
            "proposal.closed",
            format!("body.payload.proposal was closed and tallied at index {index}"),
        )),
    }
}

const PROPOSE_FIELDS: &[&str] = &[
    "kind",
    "title",
    "document",
    "method",
    "choices",
    "opensMs",
    "closesMs",
    "application",
    "member",
    "bylaws",
    "policy",
];

/// `gov.propose` — by an active member of a voting class.
pub(super) fn propose(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let m = signer.active_member()?;
    let f = Fields::new(&env.body().payload, PROPOSE_FIELDS)?;
    let kind = kind_from(&f)?;
    let title = f.text("title", 200)?;
    let document = if f.has("document") {
        Some(b64_encode(f.digest("document")?))
    } else {
        None
    };
    let method = method_from(&f)?;
    let choices = choices_from(&f, method)?;
    let opens_ms = f.uint("opensMs")?;
    let closes_ms = f.uint("closesMs")?;
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    if !bylaws.classes.get(&m.class).is_some_and(|c| c.votes) {
        return Err(rule(
            "proposal.proposer",
            format!("{} is in class {}, which does not vote", m.id, m.class),
        ));
    }
    let subject = subject_from(view, &f, kind, &choices, bylaws.version)?;
    let rules = bylaws
        .decisions
        .get(&kind)
        .cloned()
        .ok_or_else(|| corrupt("bylaws lack a decision kind"))?;
    let mut eligible: BTreeMap<ClassId, u64> = bylaws
        .classes
        .iter()
        .filter(|(_, c)| c.votes)
        .map(|(id, _)| (id.clone(), 0))
        .collect();
    for member in records::members(view)? {
        if member.status == MemberStatus::Active {
            if let Some(n) = eligible.get_mut(&member.class) {
                *n += 1;
            }
        }
    }
    let secret = rules.secret.then(|| SecretBallot {
        participants: eligible
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, _)| (c.clone(), 0))
            .collect(),
        cast: BTreeMap::new(),
        ..SecretBallot::default()
    });
    let id = env.entry_id();
    let mut p = ProposalRecord {
        id: hex::encode(id.as_bytes()),
        index: ctx.index,
        proposer: m.id.clone(),
        kind,
        title,
        document,
        method,
        choices,
        opens_ms,
        closes_ms,
        subject,
        bylaws_version: bylaws.version,
        rules,
        voting: bylaws.voting.clone(),
        eligible,
        status: ProposalStatus::Open,
        tally: None,
        secret: None,
    };
    p.secret = secret;
    check_terms(&p, ctx.batch_time_ms, env.body().ts)?;
    save_open(view, id.as_bytes(), &p, ctx)
}

/// `gov.amend {proposal, title?, document?, method?, choices?, opensMs?, closesMs?}` — by the
/// proposer, before voting opens; the electorate and rules stay as frozen at creation.
pub(super) fn amend(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let m = signer.active_member()?;
    let f = Fields::new(
        &env.body().payload,
        &[
            "proposal", "title", "document", "method", "choices", "opensMs", "closesMs",
        ],
    )?;
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    if p.proposer != m.id {
        return Err(rule(
            "proposal.proposer",
            "only the proposer may amend a proposal",
        ));
    }
    if ctx.batch_time_ms >= p.opens_ms {
        return Err(rule(
            "proposal.opened",
            format!(
                "voting opened at {} ms; a proposal is amended only before it opens",
                p.opens_ms
            ),
        ));
    }
    view.delete(&open_key(p.closes_ms, &id));
    if f.has("title") {
        p.title = f.text("title", 200)?;
    }
    if f.has("document") {
        p.document = Some(b64_encode(f.digest("document")?));
    }
    if f.has("method") {
        p.method = method_from(&f)?;
    }
    if f.has("choices") || f.has("method") {
        p.choices = choices_from(&f, p.method)?;
        if p.kind == DecisionKind::BoardElection {
            let version = p.bylaws_version;
            subject_from(view, &f, p.kind, &p.choices, version)?;
        }
    }
    if f.has("opensMs") {
        p.opens_ms = f.uint("opensMs")?;
    }
    if f.has("closesMs") {
        p.closes_ms = f.uint("closesMs")?;
    }
    check_terms(&p, ctx.batch_time_ms, env.body().ts)?;
    save_open(view, &id, &p, ctx)
}

/// `gov.withdraw {proposal}` — by the proposer (or the board) before it is tallied.
pub(super) fn withdraw(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["proposal"])?;
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    let m = signer.active_member()?;
    if p.proposer != m.id {
        signer.with_role(Role::Board).map_err(|_| {
            rule(
                "proposal.proposer",
                "only the proposer or the board may withdraw a proposal",
            )
        })?;
    }
    if ctx.batch_time_ms >= p.closes_ms {
        return Err(rule(
            "proposal.closed",
            "voting has closed; the proposal is tallied, not withdrawn",
        ));
    }
    view.delete(&open_key(p.closes_ms, &id));
    p.status = ProposalStatus::Withdrawn { index: ctx.index };
    write(view, &prop_key(&id), &p)?;
    note_entry(view, &id, ctx);
    Ok(())
}

/// Whether `member` may vote (or give or hold a proxy) on `p` now: in the frozen electorate and
/// in good standing.
fn check_voter(view: &StateView<'_>, p: &ProposalRecord, member: &str) -> Result<(), ApplyError> {
    let m = records::member(view, member)?
        .ok_or_else(|| rule("vote.electorate", format!("{member} is not a member")))?;
    let frozen = m
        .at(p.index)
        .is_some_and(|e| e.status == MemberStatus::Active && p.eligible.contains_key(&e.class));
    if !frozen {
        return Err(rule(
            "vote.electorate",
            format!(
                "{member} is not in the electorate frozen when the proposal was created (index {})",
                p.index
            ),
        ));
    }
    if m.status != MemberStatus::Active {
        return Err(rule(
            "vote.suspended",
            format!("{member} is {:?} and may not vote", m.status).to_lowercase(),
        ));
    }
    Ok(())
}

/// Votes and proxies name the member they are for, so the log alone says whose vote it is
/// (a member may sign with any of their keys); it must be the signer's member.
fn check_member_field(f: &Fields<'_>, m: &crate::records::MemberRecord) -> Result<(), ApplyError> {
    let named = f.member("member")?;
    if named != m.id {
        return Err(rule(
            "vote.member",
            format!(
                "body.payload.member is {named} but body.signer is a key of {}",
                m.id
            ),
        ));
    }
    Ok(())
}

fn check_window(p: &ProposalRecord, ctx: &ApplyContext, ts: u64) -> Result<(), ApplyError> {
    let inside = |t: u64| t >= p.opens_ms && t < p.closes_ms;
    if !inside(ctx.batch_time_ms) || !inside(ts) {
        return Err(rule(
            "vote.window",
            format!(
                "voting is open from {} to {} ms; signer time {ts}, node time {}",
                p.opens_ms, p.closes_ms, ctx.batch_time_ms
            ),
        ));
    }
    Ok(())
}

pub(super) fn vote_from(f: &Fields<'_>, p: &ProposalRecord) -> Result<Vote, ApplyError> {
    if p.method == Method::YesNo {
        if f.has("choices") {
            return Err(malformed("choices", "a yes_no proposal takes body.payload.vote").into());
        }
        return match f.value("vote").and_then(Value::as_str) {
            Some("yes") => Ok(Vote::Yes),
            Some("no") => Ok(Vote::No),
            Some("abstain") => Ok(Vote::Abstain),
            _ => Err(malformed("vote", "must be yes, no or abstain").into()),
        };
    }
    if f.has("vote") {
        return Err(malformed(
            "vote",
            "this proposal takes body.payload.choices (choice indexes)",
        )
        .into());
    }
    let list = f
        .value("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("choices", "must be a list of choice indexes"))?;
    let n = p.choices.len() as u64;
    let mut out: Vec<u32> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let c = c
            .as_u64()
            .filter(|c| *c < n)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| {
                rule(
                    "vote.choice",
                    format!(
                        "body.payload.choices[{i}]: choices are 0 to {}",
                        n.saturating_sub(1)
                    ),
                )
            })?;
        if out.contains(&c) {
            return Err(rule(
                "vote.choice",
                format!("body.payload.choices[{i}]: choice {c} appears twice"),
            ));
        }
        out.push(c);
    }
    if p.method == Method::SingleChoice && out.len() > 1 {
        return Err(rule(
            "vote.choice",
            "body.payload.choices: single_choice takes one choice (or none to abstain)",
        ));
    }
    Ok(Vote::Choices(out))
}

/// `gov.vote {proposal, member, vote | choices}` — by a member of the frozen electorate, in good
/// standing, inside the window by both clocks. A revote (where allowed) supersedes the earlier
/// vote, which stays in the log.
pub(super) fn vote(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let Signer::Member(m) = signer else {
        return Err(rule("role.required", "only members vote"));
    };
    let f = Fields::new(
        &env.body().payload,
        &["proposal", "member", "vote", "choices", "blinded"],
    )?;
    check_member_field(&f, m)?;
    let (id, p) = load(view, &f)?;
    require_open(&p)?;
    check_window(&p, ctx, env.body().ts)?;
    check_voter(view, &p, &m.id)?;
    if p.rules.secret {
        return super::ballots::participate(view, &f, &id, p, m, ctx);
    }
    if f.has("blinded") {
        return Err(malformed("blinded", "only a secret ballot takes a blinded token").into());
    }
    let v = vote_from(&f, &p)?;
    let previous: Option<VoteRecord> = records::read(view, &vote_key(&id, &m.id))?;
    if let Some(prev) = &previous {
        if !p.rules.revote {
            return Err(rule(
                "vote.revote",
                format!(
                    "{} already voted at index {}; the bylaws do not allow revotes on {} decisions",
                    m.id,
                    prev.index,
                    p.kind.as_str()
                ),
            ));
        }
    }
    let rec = VoteRecord {
        index: ctx.index,
        vote: v,
        supersedes: previous.map(|v| v.index),
    };
    write(view, &vote_key(&id, &m.id), &rec)?;
    note_entry(view, &id, ctx);
    Ok(())
}

fn held(view: &StateView<'_>, p: &[u8; 32], holder: &str) -> Result<u64, ApplyError> {
    Ok(view
        .get(&held_key(p, holder))?
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes))
}

fn set_held(view: &mut StateView<'_>, p: &[u8; 32], holder: &str, n: u64) {
    if n == 0 {
        view.delete(&held_key(p, holder));
    } else {
        view.put(&held_key(p, holder), n.to_be_bytes().to_vec());
    }
}

/// `gov.proxy {proposal, member, to}` — the grantor names a holder (`to`: member id) or takes the proxy
/// back (`to`: null), before voting closes. A holder holds at most the bylaws' maximum.
pub(super) fn proxy(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let Signer::Member(m) = signer else {
        return Err(rule("role.required", "only members give proxies"));
    };
    let f = Fields::new(&env.body().payload, &["proposal", "member", "to"])?;
    check_member_field(&f, m)?;
    let (id, p) = load(view, &f)?;
    require_open(&p)?;
    if p.rules.secret {
        return Err(rule(
            "proxy.secret",
            "a secret ballot takes no proxies: a proxy's vote would show the grantor's",
        ));
    }
    if !p.rules.proxies.allowed {
        return Err(rule(
            "proxy.disallowed",
            format!(
                "the bylaws allow no proxies for {} decisions",
                p.kind.as_str()
            ),
        ));
    }
    if ctx.batch_time_ms >= p.closes_ms {
        return Err(rule("vote.window", "voting has closed"));
    }
    check_voter(view, &p, &m.id)?;
    let to = if f.has("to") {
        Some(f.member("to")?)
    } else {
        None
    };
    let previous: Option<ProxyRecord> = records::read(view, &proxy_key(&id, &m.id))?;
    if let Some(prev) = &previous {
        let n = held(view, &id, &prev.holder)?;
        set_held(view, &id, &prev.holder, n.saturating_sub(1));
    }
    match to {
        None => {
            if previous.is_none() {
                return Err(rule(
                    "proxy.none",
                    "body.payload.to is null but no proxy was given",
                ));
            }
            view.delete(&proxy_key(&id, &m.id));
        }
        Some(holder) => {
            if holder == m.id {
                return Err(rule(
                    "proxy.self",
                    "body.payload.to: a member cannot hold their own proxy",
                ));
            }
            check_voter(view, &p, &holder).map_err(|_| {
                rule(
                    "proxy.electorate",
                    format!("body.payload.to: {holder} cannot vote on this proposal"),
                )
            })?;
            let n = held(view, &id, &holder)?;
            let cap = u64::from(p.rules.proxies.max_per_proxy);
            if n >= cap {
                return Err(rule(
                    "proxy.cap",
                    format!("body.payload.to: {holder} already holds {n} proxies, the most the bylaws allow"),
                ));
            }
            set_held(view, &id, &holder, n + 1);
            write(
                view,
                &proxy_key(&id, &m.id),
                &ProxyRecord {
                    holder,
                    index: ctx.index,
                },
            )?;
        }
    }
    note_entry(view, &id, ctx);
    Ok(())
}

/// The tally of proposal `id` from the current state (the node records it when voting closes).
pub fn compute_tally(s: &dyn StateRead, id: &[u8; 32]) -> Result<Option<TallyRecord>, StoreError> {
    let Some(p) = records::proposal(s, id)? else {
        return Ok(None);
    };
    let electorate = records::electorate(s, &p)?;
    if p.secret.is_some() {
        let ballots: Vec<CountedBallot> = records::ballots(s, id)?
            .into_values()
            .map(|b| CountedBallot {
                class: b.class,
                vote: b.vote,
                by_proxy: false,
            })
            .collect();
        let participants = records::participations(s, id)?.len() as u64;
        return tally(&p, &electorate, &ballots)
            .map(|t| Some(t.with_participants(participants)))
            .map_err(|e| StoreError::Corrupt(format!("tally of proposal {}: {e}", p.id)));
    }
    let votes: BTreeMap<String, Vote> = records::votes(s, id)?
        .into_iter()
        .map(|(m, v)| (m, v.vote))
        .collect();
    let proxies: BTreeMap<String, String> = records::proxies(s, id)?
        .into_iter()
        .map(|(g, r)| (g, r.holder))
        .collect();
    let ballots = counted_ballots(&electorate, &votes, &proxies);
    tally(&p, &electorate, &ballots)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("tally of proposal {}: {e}", p.id)))
}

/// The payload of the `gov.tally` entry for proposal `id`, as the node signs it.
pub fn tally_entry_payload(
    s: &dyn StateRead,
    id: &[u8; 32],
) -> Result<Option<Map<String, Value>>, StoreError> {
    let Some(t) = compute_tally(s, id)? else {
        return Ok(None);
    };
    let mut m = Map::new();
    m.insert("proposal".into(), Value::String(hex::encode(id)));
    m.insert(
        "tally".into(),
        serde_json::to_value(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    );
    Ok(Some(m))
}

/// `gov.tally {proposal, tally}` — by the node, once voting has closed by node time. Refused
/// unless `tally` is exactly the tally recomputed here. Applies the effect of an adopted bylaws
/// amendment (if the bylaws have not changed since) or board election (the winner joins the
/// board).
pub(super) fn record_tally(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.require_node()?;
    let f = Fields::new(&env.body().payload, &["proposal", "tally"])?;
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    if ctx.batch_time_ms < p.closes_ms {
        return Err(rule(
            "tally.early",
            format!(
                "voting closes at {} ms; node time is {} ms",
                p.closes_ms, ctx.batch_time_ms
            ),
        ));
    }
    if p.secret.as_ref().is_some_and(|s| s.opened_at.is_none()) {
        return Err(rule(
            "tally.ballots",
            "the ballot box of this secret ballot has not been published (gov.ballots)",
        ));
    }
    let t = compute_tally(view, &id)?.ok_or_else(|| corrupt("proposal vanished"))?;
    let expected = serde_json::to_value(&t).map_err(|e| corrupt(e.to_string()))?;
    if f.value("tally") != Some(&expected) {
        return Err(rule(
            "tally.mismatch",
            "body.payload.tally differs from the tally recomputed from the proposal's votes",
        ));
    }
    let mut applied = false;
    if t.outcome == Outcome::Adopted {
        match (&p.subject, p.kind) {
            (Subject::Bylaws { bylaws }, DecisionKind::BylawsAmendment) => {
                let current = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
                if current.version == p.bylaws_version {
                    write(view, BYLAWS_KEY, bylaws.as_ref())?;
                    applied = true;
                }
            }
            (Subject::Policy { policy }, DecisionKind::DistributionApproval) => {
                let version = crate::revenue::policy(view)?.map_or(1, |p| p.version + 1);
                let record = crate::revenue::PolicyInForce {
                    policy: policy.as_ref().clone(),
                    proposal: hex::encode(id),
                    tally_index: ctx.index,
                    version,
                };
                write(view, crate::revenue::POLICY_KEY, &record)?;
                write(view, &crate::revenue::policy_version_key(version), &record)?;
                applied = true;
            }
            (_, DecisionKind::BoardElection) => {
                let winner = t
                    .winner
                    .and_then(|w| p.choices.get(w as usize))
                    .cloned()
                    .unwrap_or_default();
                if let Some(mut m) = records::member(view, &winner)? {
                    if m.status == MemberStatus::Active && !m.roles.contains(&Role::Board) {
                        m.roles.push(Role::Board);
                        m.roles.sort();
                        write(view, &member_key(&m.id), &m)?;
                    }
                    applied = m.status == MemberStatus::Active;
                }
            }
            _ => {}
        }
    }
    view.delete(&open_key(p.closes_ms, &id));
    p.status = ProposalStatus::Closed {
        index: ctx.index,
        applied,
    };
    p.tally = Some(t);
    write(view, &prop_key(&id), &p)?;
    note_entry(view, &id, ctx);
    Ok(())
}
