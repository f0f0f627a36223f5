//! Personal-data rules: `member.profile` (the member's salted commitments to their attributes)
//! and `member.erase` (by the member, or by the board on the member's request). Erasure is
//! final: no profile is accepted for an erased member. Records are in [`crate::personal`].

use crate::genesis::Role;
use crate::payload::{is_ident, malformed, Fields};
use crate::personal::{self, erased_key, record_key, Erasure, PersonalRecord};
use crate::rules::{rule, write, Signer};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, StateView};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most attributes in one profile.
pub const MAX_ATTRIBUTES: usize = 32;

fn not_erased(view: &StateView<'_>, member: &str) -> Result<Option<PersonalRecord>, ApplyError> {
    let r = personal::record(view, member)?;
    if let Some(e) = r.as_ref().and_then(|r| r.erased.as_ref()) {
        return Err(rule(
            "pii.erased",
            format!(
                "body.payload.member: the personal data of {member} was erased at index {}",
                e.index
            ),
        ));
    }
    Ok(r)
}

/// `member.profile {member, attributes: {name: base64 SHA-256(salt ‖ value)}}` — by the member.
pub(crate) fn profile(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member", "attributes"])?;
    let m = signer.active_member()?;
    let member = f.member("member")?;
    if member != m.id {
        return Err(rule(
            "pii.member",
            format!(
                "body.payload.member is {member} but body.signer is a key of {}",
                m.id
            ),
        ));
    }
    let attrs = f
        .value("attributes")
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty() && a.len() <= MAX_ATTRIBUTES)
        .ok_or_else(|| {
            malformed(
                "attributes",
                format!("must be an object of 1 to {MAX_ATTRIBUTES} salted commitments"),
            )
        })?;
    let mut attributes = BTreeMap::new();
    for (name, v) in attrs {
        if !is_ident(name) {
            return Err(malformed(
                &format!("attributes.{name}"),
                format!("attribute names {}", crate::payload::IDENT_RULE),
            )
            .into());
        }
        let c = v
            .as_str()
            .and_then(coopledger_ledger::Hash::from_base64)
            .ok_or_else(|| {
                malformed(
                    &format!("attributes.{name}"),
                    "must be base64 of SHA-256(salt ‖ value), 32 bytes",
                )
            })?;
        attributes.insert(name.clone(), b64_encode(c.0));
    }
    not_erased(view, &member)?;
    write(
        view,
        &record_key(&member),
        &PersonalRecord {
            member: member.clone(),
            attributes,
            index: ctx.index,
            erased: None,
        },
    )
}

/// `member.erase {member}` — by the member, or the board acting on the member's request.
pub(crate) fn erase(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    let f = Fields::new(&env.body().payload, &["member"])?;
    let member = f.member("member")?;
    let by = match signer {
        Signer::Member(m) if m.id == member => "member",
        _ => {
            signer.with_role(Role::Board).map_err(|_| {
                rule(
                    "role.required",
                    "personal data is erased by the member or by the board on their request",
                )
            })?;
            "board"
        }
    };
    let mut r = not_erased(view, &member)?.ok_or_else(|| {
        rule(
            "pii.none",
            format!("body.payload.member: no personal data of {member} is recorded"),
        )
    })?;
    r.erased = Some(Erasure {
        index: ctx.index,
        ms: ctx.batch_time_ms,
        by: by.into(),
    });
    write(view, &record_key(&member), &r)?;
    view.put(&erased_key(&member), vec![]);
    Ok(())
}
