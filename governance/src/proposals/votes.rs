//! Votes and proxies: signed votes within the window (by signer time and node time), by a
//! member of the frozen electorate in good standing; revotes where the bylaws allow; proxies
//! within the caps. Secret ballots' participation is in `ballots.rs`.

use crate::bylaws::Method;
use crate::payload::{malformed, Fields};
use crate::proposals::rules::{load, note_entry, require_open};
use crate::records::{
    self, held_key, proxy_key, vote_key, MemberStatus, ProposalRecord, ProxyRecord, Vote,
    VoteRecord,
};
use crate::rules::{rule, write, Signer};
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde_json::Value;

/// Whether `member` may vote (or give or hold a proxy) on `p` now: in the frozen electorate and
/// in good standing.
/// Whether a member may vote on a proposal now — the one answer `gov.vote` and `gov.proxy`
/// enforce and the portal explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    /// In the frozen electorate and active: votes in `class`.
    Eligible {
        /// The member's class when the proposal was created.
        class: String,
    },
    /// No such member.
    NotAMember,
    /// Not yet a member when the proposal was created (the electorate was frozen then).
    JoinedAfter,
    /// A member then, but of a class that does not vote on it.
    ClassNotVoting {
        /// The member's class when the proposal was created.
        class: String,
    },
    /// A member then, but not active (suspended).
    InactiveThen,
    /// In the electorate, but no longer active (suspended, withdrawn or expelled since).
    NotActiveNow {
        /// Where the member stands now.
        status: MemberStatus,
    },
}

/// Where `member` stands for proposal `p`.
pub fn eligibility(
    s: &dyn coopledger_ledger::StateRead,
    p: &ProposalRecord,
    member: &str,
) -> Result<Eligibility, coopledger_ledger::StoreError> {
    let Some(m) = records::member(s, member)? else {
        return Ok(Eligibility::NotAMember);
    };
    let Some(then) = m.at(p.index) else {
        return Ok(Eligibility::JoinedAfter);
    };
    if then.status != MemberStatus::Active {
        return Ok(Eligibility::InactiveThen);
    }
    if !p.eligible.contains_key(&then.class) {
        return Ok(Eligibility::ClassNotVoting {
            class: then.class.clone(),
        });
    }
    if m.status != MemberStatus::Active {
        return Ok(Eligibility::NotActiveNow { status: m.status });
    }
    Ok(Eligibility::Eligible {
        class: then.class.clone(),
    })
}

fn check_voter(view: &StateView<'_>, p: &ProposalRecord, member: &str) -> Result<(), ApplyError> {
    match eligibility(view, p, member)? {
        Eligibility::Eligible { .. } => Ok(()),
        Eligibility::NotAMember => {
            Err(rule("vote.electorate", format!("{member} is not a member")))
        }
        Eligibility::JoinedAfter
        | Eligibility::ClassNotVoting { .. }
        | Eligibility::InactiveThen => Err(rule(
            "vote.electorate",
            format!(
                "{member} is not in the electorate frozen when the proposal was created (index {})",
                p.index
            ),
        )),
        Eligibility::NotActiveNow { status } => Err(rule(
            "vote.suspended",
            format!("{member} is {status:?} and may not vote").to_lowercase(),
        )),
    }
}

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

pub(crate) fn vote_from(f: &Fields<'_>, p: &ProposalRecord) -> Result<Vote, ApplyError> {
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
pub(crate) fn vote(
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
        return crate::proposals::ballots::participate(view, &f, &id, p, m, ctx);
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
pub(crate) fn proxy(
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
