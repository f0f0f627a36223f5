//! Proposals: creation with the electorate and rules frozen, amendment before opening,
//! withdrawal. Votes and proxies are in `votes.rs`, the tally entry in `tallies.rs`.

use crate::bylaws::{DecisionKind, Method};
use crate::genesis::{is_member_id, parse_bylaws, Role};
use crate::payload::{malformed, Fields};
use crate::records::{
    self, open_key, pe_key, prop_key, MemberStatus, ProposalRecord, ProposalStatus, SecretBallot,
    Subject,
};
use crate::rules::{corrupt, rule, write, Signer};
use crate::tally::ClassId;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde_json::Value;
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
            let m = crate::membership::rules::current_member(view, f)?;
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

pub(crate) fn note_entry(view: &mut StateView<'_>, p: &[u8; 32], ctx: &ApplyContext) {
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

pub(crate) fn load(
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

pub(crate) fn require_open(p: &ProposalRecord) -> Result<(), ApplyError> {
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
pub(crate) fn propose(
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
pub(crate) fn amend(
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
pub(crate) fn withdraw(
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
