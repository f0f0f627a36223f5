//! Consent rules: parties registered by the board, immutable versioned notices, grants signed by
//! the member (a subset of a notice, with a mandatory validity period), renewal, withdrawal by the
//! member (final), revocation by the controller, invalidation by an authority, and data uses,
//! which are refused unless every consent they cite is valid at the time of use for their
//! purpose, recipient and every data category. Records and status are in [`crate::consent`].

use crate::consent::{
    self, grant_key, member_grant_key, notice_key, party_key, timeline_event_key, timeline_key,
    use_key, DataUse, Grant, GrantEnd, Notice, Party, PartyKind, Period, StoredTimeline,
    TimelineEvent, TimelineForm, TimelineHead,
};
use crate::genesis::Role;
use crate::payload::{is_ident, malformed, Fields};
use crate::records::read;
use crate::records::{key_key, KeyRecord, MemberRecord};
use crate::rules::corrupt;
use crate::rules::{rule, write, Signer};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde_json::Value;

/// Key records of parties name their member as `party:<id>`.
pub(crate) const PARTY_KEY_PREFIX: &str = "party:";

/// A W3C DPV-style CURIE: `prefix:Term`, e.g. `dpv:ScientificResearch`, `pd:HealthRecord`.
fn is_curie(s: &str) -> bool {
    let Some((prefix, term)) = s.split_once(':') else {
        return false;
    };
    let p_ok = !prefix.is_empty()
        && prefix.len() <= 16
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let t_ok = !term.is_empty()
        && term.len() <= 64
        && term.starts_with(|c: char| c.is_ascii_alphabetic())
        && term.bytes().all(|b| b.is_ascii_alphanumeric());
    p_ok && t_ok
}

/// A non-empty list of distinct strings, each passing `ok`.
fn list(
    f: &Fields<'_>,
    name: &str,
    ok: fn(&str) -> bool,
    what: &str,
) -> Result<Vec<String>, ApplyError> {
    let arr = f
        .value(name)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 64)
        .ok_or_else(|| malformed(name, format!("must be a list of 1 to 64 {what}")))?;
    let mut out: Vec<String> = Vec::with_capacity(arr.len());
    for (i, v) in arr.iter().enumerate() {
        let s = v
            .as_str()
            .filter(|s| ok(s))
            .ok_or_else(|| malformed(&format!("{name}[{i}]"), format!("must be {what}")))?;
        if out.iter().any(|o| o == s) {
            return Err(malformed(&format!("{name}[{i}]"), "appears twice").into());
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

fn curies(f: &Fields<'_>, name: &str) -> Result<Vec<String>, ApplyError> {
    list(
        f,
        name,
        is_curie,
        "DPV terms such as dpv:ScientificResearch",
    )
}

fn party_ids(f: &Fields<'_>, name: &str) -> Result<Vec<String>, ApplyError> {
    list(f, name, is_ident, "party ids")
}

/// Every element of `asked` must be in `allowed`; names the first that is not.
fn subset(asked: &[String], allowed: &[String], field: &str) -> Result<(), ApplyError> {
    for (i, a) in asked.iter().enumerate() {
        if !allowed.contains(a) {
            return Err(rule(
                "consent.scope",
                format!("body.payload.{field}[{i}]: {a} is not offered by the notice"),
            ));
        }
    }
    Ok(())
}

fn load_party(view: &StateView<'_>, id: &str, field: &str) -> Result<Party, ApplyError> {
    consent::party(view, id)?.ok_or_else(|| {
        rule(
            "party.unknown",
            format!("body.payload.{field}: no registered party {id:?}"),
        )
    })
}

/// Appends one event to one member's timeline (see [`append_events`]).
fn append_event(
    view: &mut StateView<'_>,
    member: &str,
    event: &str,
    grant: &str,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    append_events(view, &[(member, grant)], event, ctx)
}

/// Appends an event to each `(member, grant)`'s timeline, in the co-op's form (read once): the
/// chained form writes the event's own key and the new head (constant work, however long the
/// history); the whole form rewrites the list.
fn append_events(
    view: &mut StateView<'_>,
    members: &[(&str, &str)],
    event: &str,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    let coop = crate::records::coop(view)?.ok_or_else(|| corrupt("co-op record missing"))?;
    for (member, grant) in members {
        let ev = TimelineEvent {
            index: ctx.index,
            ms: ctx.batch_time_ms,
            event: event.to_owned(),
            grant: (*grant).to_owned(),
        };
        append_in_form(view, coop.consent_timeline, member, ev)?;
    }
    Ok(())
}

fn append_in_form(
    view: &mut StateView<'_>,
    form: TimelineForm,
    member: &str,
    ev: TimelineEvent,
) -> Result<(), ApplyError> {
    let grant = ev.grant.clone();
    match form {
        TimelineForm::Whole => {
            let mut t = consent::timeline(view, member)?;
            t.events.push(ev);
            write(view, &timeline_key(member), &t)
        }
        TimelineForm::Chained => {
            let (length, prev) = match read::<StoredTimeline>(view, &timeline_key(member))? {
                None => (0, [0u8; 32]),
                Some(StoredTimeline::Chained(h)) => {
                    let prev = b64_decode(&h.head)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| corrupt(format!("timeline head of {member}")))?;
                    (h.length, prev)
                }
                Some(StoredTimeline::Whole(_)) => {
                    return Err(corrupt(format!(
                        "whole timeline of {member} in a chained co-op"
                    )))
                }
            };
            let head = consent::chain_link(&prev, &ev)
                .ok_or_else(|| corrupt(format!("timeline event of grant {grant}")))?;
            write(view, &timeline_event_key(member, length), &ev)?;
            write(
                view,
                &timeline_key(member),
                &TimelineHead {
                    member: member.to_owned(),
                    length: length + 1,
                    head: b64_encode(head),
                },
            )
        }
    }
}

/// `party.register {party, kind, name, jurisdiction, key?}` — by the board.
pub(crate) fn register_party(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.with_role(Role::Board)?;
    let f = Fields::new(
        &env.body().payload,
        &["party", "kind", "name", "jurisdiction", "key"],
    )?;
    let id = f.ident("party")?;
    let kind: PartyKind =
        serde_json::from_value(f.value("kind").cloned().unwrap_or(Value::Null))
            .map_err(|_| malformed("kind", "must be controller, recipient or authority"))?;
    let name = f.text("name", 200)?;
    let jurisdiction = f.text("jurisdiction", 16)?;
    if consent::party(view, &id)?.is_some() {
        return Err(rule(
            "party.known",
            format!("body.payload.party: {id} is already registered"),
        ));
    }
    let key = if f.has("key") {
        let k = f.key("key")?;
        if view.get(&key_key(&k))?.is_some() {
            return Err(rule(
                "key.known",
                "body.payload.key already belongs to a member, the node or a party",
            ));
        }
        write(
            view,
            &key_key(&k),
            &KeyRecord {
                member: format!("{PARTY_KEY_PREFIX}{id}"),
                since: ctx.index,
                revoked: None,
                label: None,
            },
        )?;
        Some(b64_encode(k))
    } else {
        None
    };
    write(
        view,
        &party_key(&id),
        &Party {
            id: id.clone(),
            kind,
            name,
            jurisdiction,
            key,
            index: ctx.index,
        },
    )
}

const NOTICE_FIELDS: &[&str] = &[
    "notice",
    "version",
    "controller",
    "purposes",
    "dataCategories",
    "operations",
    "recipients",
    "retentionMs",
    "jurisdiction",
    "lawfulBasis",
    "textDigest",
    "language",
    "specialCategory",
];

/// `consent.notice {…}` — by the board or the notice's controller; version 1, then each next
/// version; never changed once published.
pub(crate) fn publish_notice(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, NOTICE_FIELDS)?;
    let id = f.ident("notice")?;
    let version = f.uint("version")?;
    let controller = f.ident("controller")?;
    let c = load_party(view, &controller, "controller")?;
    if c.kind != PartyKind::Controller {
        return Err(rule(
            "notice.controller",
            format!(
                "body.payload.controller: {controller} is a {}",
                c.kind.as_str()
            ),
        ));
    }
    match signer {
        Signer::Party(p) if p.id == controller => {}
        _ => {
            signer.with_role(Role::Board).map_err(|_| {
                rule(
                    "role.required",
                    "a notice is published by the board or its controller",
                )
            })?;
        }
    }
    let latest = consent::latest_notice(view, &id)?.map_or(0, |n| n.version);
    if version != latest + 1 {
        return Err(rule(
            "notice.version",
            format!(
                "body.payload.version must be {} (notices are immutable; a change is a new version)",
                latest + 1
            ),
        ));
    }
    let recipients = party_ids(&f, "recipients")?;
    for (i, r) in recipients.iter().enumerate() {
        let p = load_party(view, r, &format!("recipients[{i}]"))?;
        if p.kind != PartyKind::Recipient {
            return Err(rule(
                "notice.recipient",
                format!("body.payload.recipients[{i}]: {r} is a {}", p.kind.as_str()),
            ));
        }
    }
    let lawful_basis = f
        .value("lawfulBasis")
        .and_then(Value::as_str)
        .filter(|s| is_curie(s))
        .ok_or_else(|| malformed("lawfulBasis", "must be a DPV term such as dpv:Consent"))?
        .to_owned();
    let n = Notice {
        notice: id.clone(),
        version,
        controller,
        purposes: curies(&f, "purposes")?,
        data_categories: curies(&f, "dataCategories")?,
        operations: curies(&f, "operations")?,
        recipients,
        retention_ms: f.uint("retentionMs")?,
        jurisdiction: f.text("jurisdiction", 16)?,
        lawful_basis,
        text_digest: b64_encode(f.digest("textDigest")?),
        language: f.text("language", 35)?,
        special_category: f.flag("specialCategory")?,
        index: ctx.index,
    };
    write(view, &notice_key(&id, version), &n)
}

/// The member named in `body.payload.member`, who must be the signer's member.
fn own_member<'a>(signer: &'a Signer, f: &Fields<'_>) -> Result<&'a MemberRecord, ApplyError> {
    let Signer::Member(m) = signer else {
        return Err(rule(
            "role.required",
            "consent is given and withdrawn by the member's own key",
        ));
    };
    let named = f.member("member")?;
    if named != m.id {
        return Err(rule(
            "consent.member",
            format!(
                "body.payload.member is {named} but body.signer is a key of {}",
                m.id
            ),
        ));
    }
    Ok(m)
}

/// `consent.grant {member, notice, version, purposes, recipients, dataCategories, fromMs,
/// untilMs}` — by the member's key: a subset of the notice, valid for `[fromMs, untilMs)`.
pub(crate) fn grant(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(
        &env.body().payload,
        &[
            "member",
            "notice",
            "version",
            "purposes",
            "recipients",
            "dataCategories",
            "fromMs",
            "untilMs",
        ],
    )?;
    let m = own_member(signer, &f)?;
    signer.active_member()?;
    let notice_id = f.ident("notice")?;
    let version = f.uint("version")?;
    let n = consent::notice(view, &notice_id, version)?.ok_or_else(|| {
        rule(
            "consent.notice",
            format!("body.payload.notice: no notice {notice_id} version {version}"),
        )
    })?;
    let purposes = curies(&f, "purposes")?;
    let recipients = party_ids(&f, "recipients")?;
    let categories = curies(&f, "dataCategories")?;
    subset(&purposes, &n.purposes, "purposes")?;
    subset(&recipients, &n.recipients, "recipients")?;
    subset(&categories, &n.data_categories, "dataCategories")?;
    let from_ms = f.uint("fromMs")?;
    let until_ms = f.uint("untilMs")?;
    if until_ms <= from_ms || until_ms <= ctx.batch_time_ms {
        return Err(rule(
            "consent.period",
            format!(
                "body.payload.untilMs must be after fromMs ({from_ms}) and after node time ({})",
                ctx.batch_time_ms
            ),
        ));
    }
    let id = env.entry_id();
    let g = Grant {
        id: hex::encode(id.as_bytes()),
        member: m.id.clone(),
        notice: notice_id,
        version,
        purposes,
        recipients,
        data_categories: categories,
        periods: vec![Period {
            from_ms,
            until_ms,
            index: ctx.index,
        }],
        index: ctx.index,
        ms: ctx.batch_time_ms,
        ended: None,
    };
    write(view, &grant_key(id.as_bytes()), &g)?;
    view.put(&member_grant_key(&m.id, id.as_bytes()), vec![]);
    append_event(view, &m.id, "consent.grant", &g.id, ctx)
}

fn load_grant(view: &StateView<'_>, f: &Fields<'_>) -> Result<([u8; 32], Grant), ApplyError> {
    let id = f.id("grant")?;
    let g = consent::grant(view, &id)?.ok_or_else(|| {
        rule(
            "consent.unknown",
            "body.payload.grant: no such consent grant",
        )
    })?;
    Ok((id, g))
}

fn not_ended(g: &Grant) -> Result<(), ApplyError> {
    match &g.ended {
        None => Ok(()),
        Some(end) => Err(rule(
            "consent.ended",
            format!(
                "body.payload.grant ended at index {} ({}); an ended consent stays ended",
                end.index(),
                match end {
                    GrantEnd::Withdrawn { .. } => "withdrawn",
                    GrantEnd::Revoked { .. } => "revoked",
                    GrantEnd::Invalidated { .. } => "invalidated",
                }
            ),
        )),
    }
}

fn owned_grant(
    view: &StateView<'_>,
    f: &Fields<'_>,
    m: &MemberRecord,
) -> Result<([u8; 32], Grant), ApplyError> {
    let (id, g) = load_grant(view, f)?;
    if g.member != m.id {
        return Err(rule(
            "consent.member",
            "body.payload.grant is another member's consent",
        ));
    }
    Ok((id, g))
}

/// `consent.renew {member, grant, untilMs}` — by the member: a later end. Renewing an expired
/// grant makes a new period from now; the gap stays uncovered.
pub(crate) fn renew(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member", "grant", "untilMs"])?;
    let m = own_member(signer, &f)?;
    signer.active_member()?;
    let (id, mut g) = owned_grant(view, &f, m)?;
    not_ended(&g)?;
    let until_ms = f.uint("untilMs")?;
    let now = ctx.batch_time_ms;
    if until_ms <= g.until_ms().max(now) {
        return Err(rule(
            "consent.period",
            format!(
                "body.payload.untilMs must be after the current end ({}) and node time ({now})",
                g.until_ms()
            ),
        ));
    }
    let from_ms = if g.until_ms() > now {
        g.periods.first().map_or(now, |p| p.from_ms)
    } else {
        now
    };
    g.periods.push(Period {
        from_ms,
        until_ms,
        index: ctx.index,
    });
    write(view, &grant_key(&id), &g)?;
    append_event(view, &m.id, "consent.renew", &g.id, ctx)
}

/// `consent.withdraw {member, grant}` — by the member, the same shape and authentication as the
/// grant; final. Always possible, whatever the member's standing.
pub(crate) fn withdraw(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member", "grant"])?;
    let m = own_member(signer, &f)?;
    let (id, mut g) = owned_grant(view, &f, m)?;
    not_ended(&g)?;
    g.ended = Some(GrantEnd::Withdrawn {
        index: ctx.index,
        ms: ctx.batch_time_ms,
    });
    write(view, &grant_key(&id), &g)?;
    append_event(view, &m.id, "consent.withdraw", &g.id, ctx)
}

/// `consent.revoke {grant, reason}` (the notice's controller) and `consent.invalidate {grant,
/// reason}` (an authority): end a consent; `reason` is a salted commitment.
pub(crate) fn end_by_party(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["grant", "reason"])?;
    f.digest("reason")?;
    let (id, mut g) = load_grant(view, &f)?;
    let Signer::Party(p) = signer else {
        return Err(rule(
            "role.required",
            "a consent is revoked by its controller's key or invalidated by an authority's",
        ));
    };
    let kind = env.body().kind.as_str();
    let end = if kind == "consent.revoke" {
        let n = consent::notice(view, &g.notice, g.version)?
            .ok_or_else(|| crate::rules::corrupt("grant of a missing notice"))?;
        if p.id != n.controller {
            return Err(rule(
                "role.required",
                format!(
                    "only the notice's controller {} revokes its consents",
                    n.controller
                ),
            ));
        }
        GrantEnd::Revoked {
            index: ctx.index,
            ms: ctx.batch_time_ms,
            party: p.id.clone(),
        }
    } else {
        if p.kind != PartyKind::Authority {
            return Err(rule(
                "role.required",
                "only an authority invalidates a consent",
            ));
        }
        GrantEnd::Invalidated {
            index: ctx.index,
            ms: ctx.batch_time_ms,
            party: p.id.clone(),
        }
    };
    not_ended(&g)?;
    g.ended = Some(end);
    write(view, &grant_key(&id), &g)?;
    let member = g.member.clone();
    append_event(view, &member, kind, &g.id, ctx)
}

/// `data.use {kind, recipient, purpose, dataCategories, consents, dataset?}` — by the board or a
/// controller: refused unless every cited consent is valid now for the purpose, the recipient and
/// every data category.
pub(crate) fn record_use(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    match signer {
        Signer::Party(p) if p.kind == PartyKind::Controller => {}
        _ => {
            signer.with_role(Role::Board).map_err(|_| {
                rule(
                    "role.required",
                    "a data use is recorded by the board or a controller",
                )
            })?;
        }
    }
    let f = Fields::new(
        &env.body().payload,
        &[
            "kind",
            "recipient",
            "purpose",
            "dataCategories",
            "consents",
            "dataset",
        ],
    )?;
    let kind = match f.value("kind").and_then(Value::as_str) {
        Some(k @ ("release" | "sale")) => k.to_owned(),
        _ => return Err(malformed("kind", "must be release or sale").into()),
    };
    let recipient = f.ident("recipient")?;
    let r = load_party(view, &recipient, "recipient")?;
    if r.kind != PartyKind::Recipient {
        return Err(rule(
            "use.recipient",
            format!(
                "body.payload.recipient: {recipient} is a {}",
                r.kind.as_str()
            ),
        ));
    }
    let purpose = f
        .value("purpose")
        .and_then(Value::as_str)
        .filter(|s| is_curie(s))
        .ok_or_else(|| {
            malformed(
                "purpose",
                "must be a DPV term such as dpv:ScientificResearch",
            )
        })?
        .to_owned();
    let categories = curies(&f, "dataCategories")?;
    let cited = f
        .value("consents")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 1000)
        .ok_or_else(|| malformed("consents", "must list 1 to 1000 consent grant ids"))?;
    let dataset = if f.has("dataset") {
        Some(b64_encode(f.digest("dataset")?))
    } else {
        None
    };
    let now = ctx.batch_time_ms;
    let mut grants: Vec<Grant> = Vec::with_capacity(cited.len());
    for (i, c) in cited.iter().enumerate() {
        let field = format!("body.payload.consents[{i}]");
        let id = c
            .as_str()
            .and_then(crate::parse_id)
            .ok_or_else(|| malformed(&format!("consents[{i}]"), "must be a grant id"))?;
        let g = consent::grant(view, &id)?
            .ok_or_else(|| rule("use.consent", format!("{field}: no such consent grant")))?;
        if grants.iter().any(|o| o.id == g.id || o.member == g.member) {
            return Err(rule(
                "use.consent",
                format!(
                    "{field}: one consent per member; {} is cited twice",
                    g.member
                ),
            ));
        }
        if let Err(why) = g.permits(ctx.index, now, &purpose, &recipient, &categories) {
            return Err(rule(
                why.rule(),
                format!("{field}: the consent of {} {why}", g.member),
            ));
        }
        grants.push(g);
    }
    let id = env.entry_id();
    let u = DataUse {
        id: hex::encode(id.as_bytes()),
        kind,
        recipient,
        purpose,
        data_categories: categories,
        consents: grants.iter().map(|g| g.id.clone()).collect(),
        members: grants.iter().map(|g| g.member.clone()).collect(),
        dataset,
        index: ctx.index,
        ms: now,
    };
    write(view, &use_key(id.as_bytes()), &u)?;
    let covered: Vec<(&str, &str)> = grants
        .iter()
        .map(|g| (g.member.as_str(), g.id.as_str()))
        .collect();
    append_events(view, &covered, "data.use", ctx)
}
