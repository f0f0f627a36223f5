//! Membership lifecycle: application, admission by decision, keys (add with proof of
//! possession, revoke), class, roles, suspension and reinstatement, expulsion after notice and
//! decision, voluntary withdrawal. Every change is appended to the member's history, so "who was
//! a member, in which class, at index N" has one answer.

use super::{corrupt, count_members, rule, write, Signer};
use crate::bylaws::DecisionKind;
use crate::genesis::{member_id, Role};
use crate::payload::{malformed, Fields};
use crate::records::{
    self, app_key, key_key, member_key, Application, ExpulsionNotice, KeyRecord, MemberEvent,
    MemberRecord, MemberStatus, ProposalRecord, ProposalStatus, Subject,
};
use crate::tally::Outcome;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::sig::{verify_one, SignedMessage};
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};

/// Domain of a key-add proof of possession: the new key signs
/// `"coopledger/key-add\0" ‖ coop ‖ 0x00 ‖ member id`.
pub const KEY_ADD_DOMAIN: &[u8] = b"coopledger/key-add\0";

/// The message a new key signs to prove it belongs to `member` of `coop`.
pub fn key_add_message(coop: &str, member: &str) -> Vec<u8> {
    [KEY_ADD_DOMAIN, coop.as_bytes(), &[0], member.as_bytes()].concat()
}

fn class_exists(view: &StateView<'_>, class: &str, field: &str) -> Result<(), ApplyError> {
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    if !bylaws.classes.contains_key(class) {
        return Err(rule(
            "class.unknown",
            format!(
                "body.payload.{field}: {class:?} is not a member class of the bylaws (classes: {})",
                bylaws
                    .classes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

fn target(view: &StateView<'_>, f: &Fields<'_>) -> Result<MemberRecord, ApplyError> {
    let id = f.member("member")?;
    records::member(view, &id)?.ok_or_else(|| {
        rule(
            "member.unknown",
            format!("body.payload.member: no member {id}"),
        )
    })
}

/// The member named by `body.payload.member`, who must still be a member.
pub(super) fn current_member(
    view: &StateView<'_>,
    f: &Fields<'_>,
) -> Result<MemberRecord, ApplyError> {
    let m = target(view, f)?;
    if !m.status.is_member() {
        return Err(rule(
            "member.status",
            format!("body.payload.member: {} is no longer a member", m.id),
        ));
    }
    Ok(m)
}

fn record_event(
    view: &mut StateView<'_>,
    m: &mut MemberRecord,
    ctx: &ApplyContext,
    event: &str,
) -> Result<(), ApplyError> {
    m.history.push(MemberEvent {
        index: ctx.index,
        event: event.into(),
        status: m.status,
        class: m.class.clone(),
    });
    write(view, &member_key(&m.id), m)
}

/// A decision that must exist, be of `kind`, be closed and adopted, and be about `subject`.
fn adopted_decision(
    view: &StateView<'_>,
    f: &Fields<'_>,
    kind: DecisionKind,
    subject: &Subject,
) -> Result<ProposalRecord, ApplyError> {
    let id = f.id("decision")?;
    let p = records::proposal(view, &id)?.ok_or_else(|| {
        rule(
            "decision.unknown",
            "body.payload.decision: no such proposal",
        )
    })?;
    if p.kind != kind {
        return Err(rule(
            "decision.kind",
            format!(
                "body.payload.decision: the proposal is a {} decision, not {}",
                p.kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    if p.subject != *subject {
        return Err(rule(
            "decision.subject",
            "body.payload.decision: the decision is about something else",
        ));
    }
    let adopted = matches!(p.status, ProposalStatus::Closed { .. })
        && p.tally
            .as_ref()
            .is_some_and(|t| t.outcome == Outcome::Adopted);
    if !adopted {
        return Err(rule(
            "decision.adopted",
            "body.payload.decision: the proposal has not been closed and adopted",
        ));
    }
    Ok(p)
}

/// `member.apply {class, details?}` — signed by the applicant's new key.
pub(super) fn apply_application(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["class", "details"])?;
    let class = f.ident("class")?;
    let details = if f.has("details") {
        Some(b64_encode(f.digest("details")?))
    } else {
        None
    };
    let key = env.body().signer;
    if records::key(view, &key)?.is_some() {
        return Err(rule(
            "apply.known_key",
            "body.signer already belongs to the co-op; an applicant signs with a new key",
        ));
    }
    class_exists(view, &class, "class")?;
    let id = env.entry_id();
    let a = Application {
        id: hex::encode(id.as_bytes()),
        index: ctx.index,
        key: b64_encode(key),
        member: member_id(&key),
        class,
        details,
        admitted: None,
    };
    write(view, &app_key(id.as_bytes()), &a)
}

/// `member.admit {application, decision}` — by the board, citing the adopted admission.
pub(super) fn admit(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["application", "decision"])?;
    let app_id = f.id("application")?;
    let mut app = records::application(view, &app_id)?.ok_or_else(|| {
        rule(
            "admit.application",
            "body.payload.application: no such application",
        )
    })?;
    if app.admitted.is_some() {
        return Err(rule(
            "admit.application",
            "body.payload.application: already admitted",
        ));
    }
    adopted_decision(
        view,
        &f,
        DecisionKind::Admission,
        &Subject::Application { id: app.id.clone() },
    )?;
    let key: [u8; 32] = coopledger_ledger::codec::b64_decode(&app.key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("application key"))?;
    if records::key(view, &key)?.is_some() {
        return Err(rule(
            "apply.known_key",
            "the applicant's key is already in use by the co-op",
        ));
    }
    // The class must still exist under the bylaws in force.
    class_exists(view, &app.class, "application")?;
    write(
        view,
        &key_key(&key),
        &KeyRecord {
            member: app.member.clone(),
            since: ctx.index,
            revoked: None,
            label: None,
        },
    )?;
    let mut m = MemberRecord {
        id: app.member.clone(),
        class: app.class.clone(),
        status: MemberStatus::Active,
        roles: vec![],
        keys: vec![app.key.clone()],
        history: vec![],
        notice: None,
    };
    record_event(view, &mut m, ctx, "admitted")?;
    app.admitted = Some(ctx.index);
    write(view, &app_key(&app_id), &app)?;
    count_members(view, 1)
}

/// `member.key_add {key, proof}` — a member adds a key (rotation, or another device or officer
/// of an organisation); `proof` is the new key's signature of [`key_add_message`].
pub(super) fn key_add(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let m = signer.active_member()?;
    let f = Fields::new(&env.body().payload, &["key", "proof", "label"])?;
    let key = f.key("key")?;
    let proof = f.signature("proof")?;
    // A label the member recognises the device by ("treasurer's laptop"): public, so never a
    // name or a number — the CLI says so.
    let label = if f.has("label") {
        Some(f.text("label", 64)?)
    } else {
        None
    };
    let msg = key_add_message(&env.body().coop, &m.id);
    if !verify_one(&SignedMessage {
        key: &key,
        msg: &msg,
        sig: &proof,
    }) {
        return Err(rule(
            "key.proof",
            "body.payload.proof: not a signature by body.payload.key of the key-add message",
        ));
    }
    if records::key(view, &key)?.is_some() {
        return Err(rule(
            "key.known",
            "body.payload.key: this key is already known to the co-op",
        ));
    }
    write(
        view,
        &key_key(&key),
        &KeyRecord {
            member: m.id.clone(),
            since: ctx.index,
            revoked: None,
            label,
        },
    )?;
    let mut m = m.clone();
    m.keys.push(b64_encode(key));
    write(view, &member_key(&m.id), &m)
}

/// `member.key_revoke {key}` — by the key's member (with any current key) or the board. Entries
/// the key signed before stay valid; later ones are refused. A member keeps at least one key.
pub(super) fn key_revoke(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["key"])?;
    let key = f.key("key")?;
    let mut rec = records::key(view, &key)?
        .ok_or_else(|| rule("key.unknown", "body.payload.key: not a key of the co-op"))?;
    if !matches!(signer, Signer::Member(m) if m.id == rec.member) {
        signer.with_role(Role::Board)?;
    }
    if rec.revoked.is_some() {
        return Err(rule("key.revoked", "body.payload.key: already revoked"));
    }
    let owner = records::member(view, &rec.member)?
        .ok_or_else(|| rule("key.unknown", "body.payload.key: not a member's key"))?;
    let mut current = 0;
    for k in &owner.keys {
        let bytes: Option<[u8; 32]> = coopledger_ledger::codec::b64_decode(k)
            .ok()
            .and_then(|b| b.try_into().ok());
        if let Some(b) = bytes {
            if records::key(view, &b)?.is_some_and(|r| r.revoked.is_none()) {
                current += 1;
            }
        }
    }
    if current <= 1 {
        return Err(rule(
            "key.last",
            "body.payload.key: a member keeps at least one current key; add the new key first",
        ));
    }
    rec.revoked = Some(ctx.index);
    write(view, &key_key(&key), &rec)
}

/// `member.class {member, class}` — by the board.
pub(super) fn change_class(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member", "class"])?;
    let mut m = current_member(view, &f)?;
    let class = f.ident("class")?;
    class_exists(view, &class, "class")?;
    if m.class == class {
        return Err(rule(
            "class.same",
            format!("body.payload.class: {} is already in {class}", m.id),
        ));
    }
    m.class = class;
    record_event(view, &mut m, ctx, "class")
}

/// `member.role {member, role, grant}` — the board grants or removes board, treasurer or
/// auditor.
pub(super) fn change_role(
    view: &mut StateView<'_>,
    env: &Envelope,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member", "role", "grant"])?;
    let mut m = target(view, &f)?;
    let role = f
        .value("role")
        .and_then(|v| v.as_str())
        .and_then(Role::parse)
        .filter(|r| matches!(r, Role::Board | Role::Treasurer | Role::Auditor))
        .ok_or_else(|| malformed("role", "must be board, treasurer or auditor"))?;
    let grant = f.flag("grant")?;
    if grant && m.status != MemberStatus::Active {
        return Err(rule(
            "member.status",
            format!("body.payload.member: {} is not active", m.id),
        ));
    }
    if grant == m.roles.contains(&role) {
        return Err(rule(
            "role.unchanged",
            format!(
                "body.payload.role: {} {} the {} role",
                m.id,
                if grant {
                    "already has"
                } else {
                    "does not have"
                },
                role.as_str()
            ),
        ));
    }
    if grant {
        m.roles.push(role);
        m.roles.sort();
    } else {
        m.roles.retain(|r| *r != role);
    }
    write(view, &member_key(&m.id), &m)
}

/// `member.suspend {member, reason}` — by the board; `reason` commits to the off-ledger text.
pub(super) fn suspend(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member", "reason"])?;
    let mut m = target(view, &f)?;
    f.digest("reason")?;
    if m.status != MemberStatus::Active {
        return Err(rule(
            "member.status",
            format!("body.payload.member: {} is not active", m.id),
        ));
    }
    m.status = MemberStatus::Suspended;
    record_event(view, &mut m, ctx, "suspended")
}

/// `member.reinstate {member}` — by the board.
pub(super) fn reinstate(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member"])?;
    let mut m = target(view, &f)?;
    if m.status != MemberStatus::Suspended {
        return Err(rule(
            "member.status",
            format!("body.payload.member: {} is not suspended", m.id),
        ));
    }
    m.status = MemberStatus::Active;
    record_event(view, &mut m, ctx, "reinstated")
}

/// `member.notice {member, reason}` — the board gives notice of intended expulsion; the bylaws'
/// notice period runs from this entry's batch time.
pub(super) fn notice(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member", "reason"])?;
    let mut m = current_member(view, &f)?;
    let reason = f.digest("reason")?;
    m.notice = Some(ExpulsionNotice {
        index: ctx.index,
        time_ms: ctx.batch_time_ms,
        reason: b64_encode(reason),
    });
    write(view, &member_key(&m.id), &m)
}

/// `member.expel {member, decision}` — by the board, after a notice and the bylaws' notice
/// period, citing the adopted expulsion decision.
pub(super) fn expel(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["member", "decision"])?;
    let mut m = current_member(view, &f)?;
    let Some(notice) = m.notice.clone() else {
        return Err(rule(
            "expel.notice",
            format!(
                "body.payload.member: {} has not been given notice (member.notice)",
                m.id
            ),
        ));
    };
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    let period = bylaws
        .decisions
        .get(&DecisionKind::Expulsion)
        .map_or(0, |d| d.notice_period_ms);
    let due = notice.time_ms.saturating_add(period);
    if ctx.batch_time_ms < due {
        return Err(rule(
            "expel.notice_period",
            format!(
                "the notice period runs until {due} ms (notice at index {}, period {period} ms)",
                notice.index
            ),
        ));
    }
    adopted_decision(
        view,
        &f,
        DecisionKind::Expulsion,
        &Subject::Member { id: m.id.clone() },
    )?;
    m.status = MemberStatus::Expelled;
    m.notice = None;
    record_event(view, &mut m, ctx, "expelled")?;
    count_members(view, -1)
}

/// `member.withdraw {}` — a member leaves (also while suspended).
pub(super) fn withdraw(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    Fields::new(&env.body().payload, &[])?;
    let Signer::Member(m) = signer else {
        return Err(rule("role.required", "only a member can withdraw"));
    };
    if !matches!(m.status, MemberStatus::Active | MemberStatus::Suspended) {
        return Err(rule(
            "member.status",
            format!("{} is no longer a member", m.id),
        ));
    }
    let mut m = m.clone();
    m.status = MemberStatus::Withdrawn;
    m.notice = None;
    record_event(view, &mut m, ctx, "withdrawn")?;
    count_members(view, -1)
}
