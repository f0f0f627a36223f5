//! Membership lifecycle: application, admission by decision, keys (add with proof of
//! possession, revoke), class, roles, suspension and reinstatement, expulsion after notice and
//! decision, voluntary withdrawal. Every change is appended to the member's history, so "who was
//! a member, in which class, at index N" has one answer.

use crate::bylaws::{AdmittedBy, DecisionKind, MAX_ADMISSIONS_PER_ENTRY};
use crate::genesis::{member_id, Role};
use crate::payload::{malformed, Fields};
use crate::records::{
    self, app_key, key_key, member_key, Application, ExpulsionNotice, KeyRecord, KeyReset,
    MemberEvent, MemberRecord, MemberStatus, ProposalRecord, ProposalStatus, Subject,
};
use crate::rules::{corrupt, count_members, rule, write, Signer};
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
pub(crate) fn current_member(
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

/// Domain of an invitation: a board member's key signs
/// `"coopledger/invitation\0" ‖ coop ‖ 0x00 ‖ the applicant's 32-byte key`.
pub const INVITATION_DOMAIN: &[u8] = b"coopledger/invitation\0";

/// The message a board member signs to invite the holder of `applicant`.
pub fn invitation_message(coop: &str, applicant: &[u8; 32]) -> Vec<u8> {
    [INVITATION_DOMAIN, coop.as_bytes(), &[0], applicant].concat()
}

fn pending_count(view: &StateView<'_>) -> Result<u64, ApplyError> {
    Ok(view
        .get(records::PENDING_COUNT_KEY)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn set_pending_count(view: &mut StateView<'_>, n: u64) {
    view.put(records::PENDING_COUNT_KEY, n.to_be_bytes().to_vec());
}

/// Checks `invitation` (a signature) by `invitedBy` (a key): a current key of an active board
/// member, over [`invitation_message`] for `applicant`.
fn check_invitation(
    view: &StateView<'_>,
    f: &Fields<'_>,
    coop: &str,
    applicant: &[u8; 32],
) -> Result<(), ApplyError> {
    let by = f.key("invitedBy")?;
    let sig = f.signature("invitation")?;
    let k = records::key(view, &by)?
        .filter(|k| k.revoked.is_none())
        .ok_or_else(|| {
            rule(
                "apply.invitation",
                "body.payload.invitedBy: not a current key of the co-op",
            )
        })?;
    let board = records::member(view, &k.member)?
        .is_some_and(|m| m.status == MemberStatus::Active && m.roles.contains(&Role::Board));
    if !board {
        return Err(rule(
            "apply.invitation",
            "body.payload.invitedBy: not the key of an active board member",
        ));
    }
    let msg = invitation_message(coop, applicant);
    if !verify_one(&SignedMessage {
        key: &by,
        msg: &msg,
        sig: &sig,
    }) {
        return Err(rule(
            "apply.invitation",
            "body.payload.invitation: not a signature of this applicant's invitation by invitedBy",
        ));
    }
    Ok(())
}

/// `member.apply {class, details?, invitation?, invitedBy?}` — signed by the applicant's new
/// key. Under bylaws with an `admission` section: one pending application per key, at most
/// `maxPending` pending in all, and an invitation when the bylaws require one.
pub(crate) fn apply_application(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    let f = Fields::new(
        &env.body().payload,
        &["class", "details", "invitation", "invitedBy"],
    )?;
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
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    let invited = f.has("invitation") || f.has("invitedBy");
    if invited {
        check_invitation(view, &f, &env.body().coop, &key)?;
    }
    let id = env.entry_id();
    if let Some(adm) = bylaws.admission {
        if adm.invitation_required && !invited {
            return Err(rule(
                "apply.invitation",
                "the bylaws admit applications only with an invitation signed by a board \
                 member (body.payload.invitation, body.payload.invitedBy)",
            ));
        }
        if let Some(prev) = view.get(&records::pending_key_key(&key))? {
            return Err(rule(
                "apply.pending",
                format!(
                    "body.signer already has application {} pending",
                    String::from_utf8_lossy(&prev)
                ),
            ));
        }
        let pending = pending_count(view)?;
        if pending >= adm.max_pending {
            return Err(rule(
                "apply.cap",
                format!(
                    "{pending} applications are pending, the most the bylaws allow \
                     (admission.maxPending); apply again once the board has dealt with some"
                ),
            ));
        }
        view.put(
            &records::pending_key_key(&key),
            hex::encode(id.as_bytes()).into_bytes(),
        );
        set_pending_count(view, pending + 1);
    }
    let a = Application {
        id: hex::encode(id.as_bytes()),
        index: ctx.index,
        key: b64_encode(key),
        member: member_id(&key),
        class,
        details,
        admitted: None,
        declined: None,
        share: None,
    };
    write(view, &app_key(id.as_bytes()), &a)
}

/// The application ids an admit or decline entry names: `applications` (a list of at most
/// [`MAX_ADMISSIONS_PER_ENTRY`], no repeats) or the single `application`.
fn application_list(f: &Fields<'_>) -> Result<Vec<[u8; 32]>, ApplyError> {
    if f.has("application") {
        if f.has("applications") {
            return Err(
                malformed("applications", "give application or applications, not both").into(),
            );
        }
        return Ok(vec![f.id("application")?]);
    }
    let list = f
        .value("applications")
        .and_then(serde_json::Value::as_array)
        .filter(|l| !l.is_empty() && l.len() <= MAX_ADMISSIONS_PER_ENTRY)
        .ok_or_else(|| {
            malformed(
                "applications",
                format!("must be a list of 1 to {MAX_ADMISSIONS_PER_ENTRY} application ids"),
            )
        })?;
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let id = v.as_str().and_then(crate::parse_id).ok_or_else(|| {
            malformed(
                &format!("applications[{i}]"),
                "must be 64 lowercase hex digits",
            )
        })?;
        if out.contains(&id) {
            return Err(malformed(&format!("applications[{i}]"), "named twice").into());
        }
        out.push(id);
    }
    Ok(out)
}

/// A pending application (neither admitted nor declined).
fn pending_application(
    view: &StateView<'_>,
    id: &[u8; 32],
    at: &str,
) -> Result<Application, ApplyError> {
    let app = records::application(view, id)?.ok_or_else(|| {
        rule(
            "admit.application",
            format!("body.payload.{at}: no such application"),
        )
    })?;
    if app.admitted.is_some() {
        return Err(rule(
            "admit.application",
            format!("body.payload.{at}: already admitted"),
        ));
    }
    if app.declined.is_some() {
        return Err(rule(
            "admit.application",
            format!("body.payload.{at}: declined"),
        ));
    }
    Ok(app)
}

/// Frees an application's pending slot (bylaws with an `admission` section).
fn release_pending(view: &mut StateView<'_>, app: &Application) -> Result<(), ApplyError> {
    let key: [u8; 32] = coopledger_ledger::codec::b64_decode(&app.key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("application key"))?;
    let k = records::pending_key_key(&key);
    if view.get(&k)?.is_some() {
        view.delete(&k);
        let n = pending_count(view)?;
        set_pending_count(view, n.saturating_sub(1));
    }
    Ok(())
}

/// `member.admit` — admits applicants, as the bylaws' `admission.by` says:
/// - `{application, decision}` by a board member, citing the adopted admission decision (every
///   mode; the only one under bylaws without an `admission` section, or `general_vote`);
/// - `board`: `{applications: [id…]}` (or `{application}`) by a board member;
/// - `paid_share`: `{applications: [id…], shares: [digest…]}` by the treasurer, one payment
///   reference digest per applicant.
///
/// All or nothing: one application that cannot be admitted refuses the entry.
pub(crate) fn admit(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(
        &env.body().payload,
        &["application", "applications", "decision", "shares"],
    )?;
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    let by = bylaws.admission.map(|a| a.by);
    let ids = application_list(&f)?;
    let mut shares: Vec<Option<String>> = vec![None; ids.len()];
    if f.has("decision") {
        signer.with_role(Role::Board)?;
        let [id] = ids.as_slice() else {
            return Err(malformed("applications", "a decision admits one application").into());
        };
        let app = pending_application(view, id, "application")?;
        adopted_decision(
            view,
            &f,
            DecisionKind::Admission,
            &Subject::Application { id: app.id.clone() },
        )?;
        if f.has("shares") {
            return Err(malformed("shares", "only a paid-share admission takes shares").into());
        }
    } else {
        match by {
            Some(AdmittedBy::Board) => {
                signer.with_role(Role::Board)?;
                if f.has("shares") {
                    return Err(
                        malformed("shares", "only a paid-share admission takes shares").into(),
                    );
                }
            }
            Some(AdmittedBy::PaidShare) => {
                signer.with_role(Role::Treasurer)?;
                let list = f
                    .value("shares")
                    .and_then(serde_json::Value::as_array)
                    .filter(|l| l.len() == ids.len())
                    .ok_or_else(|| {
                        malformed(
                            "shares",
                            "must list one payment reference digest per application",
                        )
                    })?;
                for (i, v) in list.iter().enumerate() {
                    let d = v
                        .as_str()
                        .and_then(|s| coopledger_ledger::codec::b64_decode(s).ok())
                        .filter(|b| b.len() == 32)
                        .ok_or_else(|| {
                            malformed(
                                &format!("shares[{i}]"),
                                "must be base64 of a 32-byte digest",
                            )
                        })?;
                    if let Some(slot) = shares.get_mut(i) {
                        *slot = Some(b64_encode(d));
                    }
                }
            }
            Some(AdmittedBy::GeneralVote) | None => {
                return Err(rule(
                    "admit.decision",
                    "the bylaws admit members by general vote: cite the adopted admission \
                     decision (body.payload.decision)",
                ))
            }
        }
    }
    for (i, (id, share)) in ids.iter().zip(shares).enumerate() {
        let at = if f.has("application") {
            "application".to_owned()
        } else {
            format!("applications[{i}]")
        };
        let mut app = pending_application(view, id, &at)?;
        let key: [u8; 32] = coopledger_ledger::codec::b64_decode(&app.key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("application key"))?;
        if records::key(view, &key)?.is_some() {
            return Err(rule(
                "apply.known_key",
                format!("body.payload.{at}: the applicant's key is already in use by the co-op"),
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
            key_reset: None,
        };
        record_event(view, &mut m, ctx, "admitted")?;
        app.admitted = Some(ctx.index);
        app.share = share;
        write(view, &app_key(id), &app)?;
        release_pending(view, &app)?;
    }
    count_members(view, ids.len() as i64)
}

/// `member.decline {applications: [id…]}` (or `{application}`) — by a board member: the
/// applications are closed unadmitted and their pending slots freed (bylaws may cap pending
/// applications). The reason, if any, stays off-ledger.
pub(crate) fn decline(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(&env.body().payload, &["application", "applications"])?;
    for (i, id) in application_list(&f)?.iter().enumerate() {
        let at = if f.has("application") {
            "application".to_owned()
        } else {
            format!("applications[{i}]")
        };
        let mut app = pending_application(view, id, &at)?;
        app.declined = Some(ctx.index);
        write(view, &app_key(id), &app)?;
        release_pending(view, &app)?;
    }
    Ok(())
}

/// `member.key_add {key, proof}` — a member adds a key (rotation, or another device or officer
/// of an organisation); `proof` is the new key's signature of [`key_add_message`].
pub(crate) fn key_add(
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
    let label = key_label(&f)?;
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
pub(crate) fn key_revoke(
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
    let current = current_keys(view, &owner)?.len();
    if current <= 1 {
        return Err(rule(
            "key.last",
            "body.payload.key: a member keeps at least one current key; add the new key first",
        ));
    }
    rec.revoked = Some(ctx.index);
    write(view, &key_key(&key), &rec)
}

/// A label from `body.payload.label`, if given: public, so the CLI and portal say never to put
/// a name or a number in it.
fn key_label(f: &Fields<'_>) -> Result<Option<String>, ApplyError> {
    Ok(if f.has("label") {
        Some(f.text("label", 64)?)
    } else {
        None
    })
}

/// The keys of `m` that are current (known and not revoked), decoded.
fn current_keys(view: &StateView<'_>, m: &MemberRecord) -> Result<Vec<[u8; 32]>, ApplyError> {
    let mut out = Vec::new();
    for k in &m.keys {
        let bytes: Option<[u8; 32]> = coopledger_ledger::codec::b64_decode(k)
            .ok()
            .and_then(|b| b.try_into().ok());
        if let Some(b) = bytes {
            if records::key(view, &b)?.is_some_and(|r| r.revoked.is_none()) {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// `member.key_reset {member, key, proof, label?}` — by a board member, for a member (active or
/// suspended) who has lost every key: `key` proves possession with [`key_add_message`] like a
/// key add. Nothing changes yet: the reset waits out the bylaws' `keyReset.waitMs`, during
/// which any current key of the member can veto it (`member.key_reset_veto`); after it,
/// `member.key_reset_complete` replaces all the member's keys with `key`. One reset at a time.
pub(crate) fn key_reset(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let board = signer.with_role(Role::Board)?.id.clone();
    let f = Fields::new(&env.body().payload, &["member", "key", "proof", "label"])?;
    let mut m = current_member(view, &f)?;
    let key = f.key("key")?;
    let proof = f.signature("proof")?;
    let label = key_label(&f)?;
    if m.id == board {
        return Err(rule(
            "reset.self",
            "body.payload.member: a board member cannot reset their own keys; another board \
             member must",
        ));
    }
    if let Some(r) = &m.key_reset {
        return Err(rule(
            "reset.pending",
            format!(
                "body.payload.member: a key reset (entry {}) is already waiting; it must be \
                 completed or vetoed first",
                r.index
            ),
        ));
    }
    if !verify_one(&SignedMessage {
        key: &key,
        msg: &key_add_message(&env.body().coop, &m.id),
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
    let bylaws = records::bylaws(view)?.ok_or_else(|| corrupt("bylaws missing"))?;
    m.key_reset = Some(KeyReset {
        index: ctx.index,
        time_ms: ctx.batch_time_ms,
        due_ms: ctx.batch_time_ms.saturating_add(bylaws.key_reset_wait_ms()),
        key: b64_encode(key),
        label,
        by: board,
    });
    write(view, &member_key(&m.id), &m)
}

/// `member.key_reset_veto {member, reset}` — by any current key of the member, naming the
/// pending reset by its log index: the reset is cancelled. (A member who still holds a key and
/// did not ask for a reset has the last word.)
pub(crate) fn key_reset_veto(
    view: &mut StateView<'_>,
    env: &Envelope,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member", "reset"])?;
    let mut m = current_member(view, &f)?;
    if !matches!(signer, Signer::Member(s) if s.id == m.id) {
        return Err(rule(
            "reset.veto_signer",
            "only a current key of the member named in body.payload.member can veto",
        ));
    }
    let at = f.uint("reset")?;
    match &m.key_reset {
        Some(r) if r.index == at => {}
        Some(r) => {
            return Err(rule(
                "reset.unknown",
                format!(
                    "body.payload.reset: the pending key reset is entry {}, not {at}",
                    r.index
                ),
            ))
        }
        None => {
            return Err(rule(
                "reset.unknown",
                format!("body.payload.reset: no key reset of {} is waiting", m.id),
            ))
        }
    }
    m.key_reset = None;
    write(view, &member_key(&m.id), &m)
}

/// `member.key_reset_complete {member}` — once the reset's waiting period has passed (by the
/// batch's time), signed by the new key itself (the member's new device) or by a board member:
/// every current key of the member is revoked at this index and the new key takes their place.
/// `signer` is `None` when the new key signs (the co-op does not know it yet).
pub(crate) fn key_reset_complete(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: Option<&Signer>,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member"])?;
    let mut m = current_member(view, &f)?;
    let Some(reset) = m.key_reset.clone() else {
        return Err(rule(
            "reset.unknown",
            format!("body.payload.member: no key reset of {} is waiting", m.id),
        ));
    };
    let key: [u8; 32] = coopledger_ledger::codec::b64_decode(&reset.key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("key reset key"))?;
    match signer {
        Some(s) => {
            s.with_role(Role::Board)?;
        }
        None if env.body().signer == key => {}
        None => {
            return Err(rule(
                "reset.signer",
                "body.signer: only the reset's new key or a board member completes a key reset",
            ))
        }
    }
    if ctx.batch_time_ms < reset.due_ms {
        return Err(rule(
            "reset.waiting",
            format!(
                "the key reset (entry {}) can be completed from {} ms; the member's keys may \
                 still veto it until then (now {} ms)",
                reset.index, reset.due_ms, ctx.batch_time_ms
            ),
        ));
    }
    if records::key(view, &key)?.is_some() {
        return Err(rule(
            "key.known",
            "the reset's key became known to the co-op meanwhile; the board asks again",
        ));
    }
    for old in current_keys(view, &m)? {
        let mut rec = records::key(view, &old)?.ok_or_else(|| corrupt("member key"))?;
        rec.revoked = Some(ctx.index);
        write(view, &key_key(&old), &rec)?;
    }
    write(
        view,
        &key_key(&key),
        &KeyRecord {
            member: m.id.clone(),
            since: ctx.index,
            revoked: None,
            label: reset.label,
        },
    )?;
    m.keys.push(reset.key);
    m.key_reset = None;
    write(view, &member_key(&m.id), &m)
}

/// `member.class {member, class}` — by the board.
pub(crate) fn change_class(
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
pub(crate) fn change_role(
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
pub(crate) fn suspend(
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
pub(crate) fn reinstate(
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
pub(crate) fn notice(
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
pub(crate) fn expel(
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
pub(crate) fn withdraw(
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
