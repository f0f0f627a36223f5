//! `CoopRules`: the entry-type registry and the validate-and-apply function for each type.
//! Every refusal is a `Rejection::Rule` with a stable rule name (listed in `docs/rules.md`) or a
//! `Rejection::Malformed` naming the payload field; a refused entry changes nothing.

pub mod anchors;
use crate::consent::rules as consent;
use crate::membership::rules as membership;
use crate::personal::rules as personal;
use crate::proposals::rules as proposals;
use crate::proposals::{ballots, tallies, votes};
use crate::revenue::rules as revenue;

use crate::consent::TimelineForm;
use crate::genesis::{member_id, Genesis, Role};
use crate::records::{
    self, key_key, member_key, CoopState, KeyRecord, MemberEvent, MemberRecord, MemberStatus,
    BYLAWS_KEY, COOP_KEY,
};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::StoreError;
use coopledger_ledger::{
    ApplyContext, ApplyError, Envelope, Rejection, StateMachine, StateView, Verified,
};
use serde::Serialize;

pub use ballots::{ballots_payload, check_ballot, revealed_keys, OpenedBallot, BALLOT_TYPE};
pub use membership::{invitation_message, key_add_message};
pub use tallies::{compute_tally, tally_entry_payload};

/// Registered `(type, version)` pairs; anything else is refused at admission.
pub const ENTRY_TYPES: &[(&str, u64)] = &[
    ("coop.genesis", 1),
    ("coop.genesis", 2),
    ("coop.attest", 1),
    ("member.apply", 1),
    ("member.decline", 1),
    ("member.admit", 1),
    ("member.key_add", 1),
    ("member.key_revoke", 1),
    ("member.key_reset", 1),
    ("member.key_reset_veto", 1),
    ("member.key_reset_complete", 1),
    ("member.class", 1),
    ("member.role", 1),
    ("member.suspend", 1),
    ("member.reinstate", 1),
    ("member.notice", 1),
    ("member.expel", 1),
    ("member.withdraw", 1),
    ("gov.propose", 1),
    ("gov.amend", 1),
    ("gov.withdraw", 1),
    ("gov.vote", 1),
    ("gov.proxy", 1),
    ("gov.tally", 1),
    ("gov.ballot_key", 1),
    ("gov.ballots", 1),
    ("party.register", 1),
    ("consent.notice", 1),
    ("consent.grant", 1),
    ("consent.renew", 1),
    ("consent.withdraw", 1),
    ("consent.revoke", 1),
    ("consent.invalidate", 1),
    ("data.use", 1),
    ("member.profile", 1),
    ("member.erase", 1),
    ("revenue.record", 1),
    ("revenue.expense", 1),
    ("revenue.distribute", 1),
    ("revenue.payment", 1),
    ("revenue.unclaimed", 1),
    ("anchor.receipt", 1),
];

/// The co-op's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoopRules;

pub(crate) fn write<T: Serialize>(
    view: &mut StateView<'_>,
    key: &[u8],
    v: &T,
) -> Result<(), ApplyError> {
    let bytes =
        serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(format!("governance state: {e}")))?;
    view.put(key, bytes);
    Ok(())
}

pub(crate) fn rule(rule: &str, message: impl Into<String>) -> ApplyError {
    ApplyError::Rejected(Rejection::Rule {
        rule: rule.to_owned(),
        message: message.into(),
    })
}

pub(crate) fn corrupt(what: impl Into<String>) -> ApplyError {
    ApplyError::Storage(StoreError::Corrupt(what.into()))
}

/// Who signed an entry, resolved against the co-op's keys.
pub(crate) enum Signer {
    /// The node key.
    Node,
    /// A member's current key.
    Member(MemberRecord),
    /// A registered party's key (controller, recipient, authority).
    Party(crate::consent::Party),
}

impl Signer {
    /// The member, if the signer is one in good standing.
    pub(crate) fn active_member(&self) -> Result<&MemberRecord, ApplyError> {
        match self {
            Signer::Node => Err(rule(
                "role.required",
                "the node key does not act as a member",
            )),
            Signer::Party(p) => Err(rule(
                "role.required",
                format!("party {} does not act as a member", p.id),
            )),
            Signer::Member(m) if m.status == MemberStatus::Active => Ok(m),
            Signer::Member(m) => Err(rule(
                "member.active",
                format!("member {} is {:?}, not active", m.id, m.status).to_lowercase(),
            )),
        }
    }

    /// An active member holding `role`.
    pub(crate) fn with_role(&self, role: Role) -> Result<&MemberRecord, ApplyError> {
        let m = self.active_member()?;
        if !m.roles.contains(&role) {
            return Err(rule(
                "role.required",
                format!("this entry type needs the {} role", role.as_str()),
            ));
        }
        Ok(m)
    }

    pub(crate) fn require_node(&self) -> Result<(), ApplyError> {
        match self {
            Signer::Node => Ok(()),
            Signer::Member(_) | Signer::Party(_) => Err(rule(
                "role.required",
                "only the node key records this entry type",
            )),
        }
    }
}

fn resolve_signer(view: &StateView<'_>, key: &[u8; 32]) -> Result<Signer, ApplyError> {
    let Some(k) = records::key(view, key)? else {
        return Err(Rejection::UnknownSigner {
            signer: b64_encode(key),
        }
        .into());
    };
    if let Some(at) = k.revoked {
        return Err(rule(
            "key.revoked",
            format!("body.signer was revoked at log index {at}; sign with a current key"),
        ));
    }
    if k.member == "node" {
        return Ok(Signer::Node);
    }
    if let Some(party) = k.member.strip_prefix(consent::PARTY_KEY_PREFIX) {
        let p = crate::consent::party(view, party)?
            .ok_or_else(|| corrupt(format!("key of unknown party {party}")))?;
        return Ok(Signer::Party(p));
    }
    let m = records::member(view, &k.member)?
        .ok_or_else(|| corrupt(format!("key of unknown member {}", k.member)))?;
    Ok(Signer::Member(m))
}

impl CoopRules {
    fn apply_genesis(
        &self,
        view: &mut StateView<'_>,
        env: &Envelope,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let g = Genesis::from_payload(&env.body().payload)?;
        if g.node_key != env.body().signer {
            return Err(rule(
                "genesis.node_signs",
                "body.signer must be the node key named in body.payload.node",
            ));
        }
        let node = KeyRecord {
            member: "node".into(),
            since: ctx.index,
            revoked: None,
            label: None,
        };
        write(view, &key_key(&g.node_key), &node)?;
        for f in &g.founders {
            let id = member_id(&f.key);
            write(
                view,
                &key_key(&f.key),
                &KeyRecord {
                    member: id.clone(),
                    since: ctx.index,
                    revoked: None,
                    label: None,
                },
            )?;
            let m = MemberRecord {
                id: id.clone(),
                class: f.class.clone(),
                status: MemberStatus::Active,
                roles: f.roles.clone(),
                keys: vec![b64_encode(f.key)],
                history: vec![MemberEvent {
                    index: ctx.index,
                    event: "founded".into(),
                    status: MemberStatus::Active,
                    class: f.class.clone(),
                }],
                notice: None,
                key_reset: None,
            };
            write(view, &member_key(&id), &m)?;
        }
        write(view, BYLAWS_KEY, &g.bylaws)?;
        let coop = CoopState {
            name: g.name,
            node_key: b64_encode(g.node_key),
            genesis_index: ctx.index,
            members: g.founders.len() as u64,
            // v2 is v1 with chained consent timelines (`docs/consent-bundle.md`).
            consent_timeline: if env.body().version >= 2 {
                TimelineForm::Chained
            } else {
                TimelineForm::Whole
            },
        };
        write(view, COOP_KEY, &coop)
    }

    fn apply_attest(&self, env: &Envelope) -> Result<(), ApplyError> {
        let f = crate::payload::Fields::new(&env.body().payload, &["digest", "kind"])?;
        f.digest("digest")?;
        f.ident("kind")?;
        Ok(())
    }
}

/// Adjusts the co-op's member count.
pub(crate) fn count_members(view: &mut StateView<'_>, delta: i64) -> Result<(), ApplyError> {
    let mut coop = records::coop(view)?.ok_or_else(|| corrupt("co-op record missing"))?;
    coop.members = coop.members.saturating_add_signed(delta);
    write(view, COOP_KEY, &coop)
}

impl StateMachine for CoopRules {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        ENTRY_TYPES.iter().any(|(k, v)| *k == kind && *v == version)
    }

    fn apply(
        &self,
        view: &mut StateView<'_>,
        entry: &Verified<Envelope>,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let body = entry.body();
        let founded = records::coop(view)?.is_some();
        match (founded, body.kind.as_str()) {
            (false, "coop.genesis") => return self.apply_genesis(view, entry, ctx),
            (false, _) => {
                return Err(rule(
                    "genesis.first",
                    "the ledger has no genesis yet; the first entry must be coop.genesis",
                ))
            }
            (true, "coop.genesis") => {
                return Err(rule(
                    "genesis.once",
                    "this co-op already has its genesis entry",
                ))
            }
            // An applicant signs with a key the co-op does not know yet.
            (true, "member.apply") => return membership::apply_application(view, entry, ctx),
            // A key reset is completed by its new key, which the co-op does not know yet (or
            // by a board member).
            (true, "member.key_reset_complete") => {
                let signer = match records::key(view, &body.signer)? {
                    Some(_) => Some(resolve_signer(view, &body.signer)?),
                    None => None,
                };
                return membership::key_reset_complete(view, entry, ctx, signer.as_ref());
            }
            (true, _) => {}
        }
        // Every other entry: only current keys known to the co-op may sign.
        let signer = resolve_signer(view, &body.signer)?;
        match body.kind.as_str() {
            "coop.attest" => {
                signer.active_member()?;
                self.apply_attest(entry)
            }
            "member.admit" => membership::admit(view, entry, ctx, &signer),
            "member.decline" => membership::decline(view, entry, ctx, &signer),
            "member.key_add" => membership::key_add(view, entry, ctx, &signer),
            "member.key_revoke" => membership::key_revoke(view, entry, ctx, &signer),
            "member.key_reset" => membership::key_reset(view, entry, ctx, &signer),
            "member.key_reset_veto" => membership::key_reset_veto(view, entry, &signer),
            "member.class" => membership::change_class(view, entry, ctx, &signer),
            "member.role" => membership::change_role(view, entry, &signer),
            "member.suspend" => membership::suspend(view, entry, ctx, &signer),
            "member.reinstate" => membership::reinstate(view, entry, ctx, &signer),
            "member.notice" => membership::notice(view, entry, ctx, &signer),
            "member.expel" => membership::expel(view, entry, ctx, &signer),
            "member.withdraw" => membership::withdraw(view, entry, ctx, &signer),
            "gov.propose" => proposals::propose(view, entry, ctx, &signer),
            "gov.amend" => proposals::amend(view, entry, ctx, &signer),
            "gov.withdraw" => proposals::withdraw(view, entry, ctx, &signer),
            "gov.vote" => votes::vote(view, entry, ctx, &signer),
            "gov.proxy" => votes::proxy(view, entry, ctx, &signer),
            "gov.tally" => tallies::record_tally(view, entry, ctx, &signer),
            "gov.ballot_key" => ballots::publish_keys(view, entry, ctx, &signer),
            "gov.ballots" => ballots::publish_ballots(view, entry, ctx, &signer),
            "party.register" => consent::register_party(view, entry, ctx, &signer),
            "consent.notice" => consent::publish_notice(view, entry, ctx, &signer),
            "consent.grant" => consent::grant(view, entry, ctx, &signer),
            "consent.renew" => consent::renew(view, entry, ctx, &signer),
            "consent.withdraw" => consent::withdraw(view, entry, ctx, &signer),
            "consent.revoke" | "consent.invalidate" => {
                consent::end_by_party(view, entry, ctx, &signer)
            }
            "data.use" => consent::record_use(view, entry, ctx, &signer),
            "member.profile" => personal::profile(view, entry, ctx, &signer),
            "member.erase" => personal::erase(view, entry, ctx, &signer),
            "revenue.record" => revenue::record(view, entry, ctx, &signer),
            "revenue.expense" => revenue::expense(view, entry, ctx, &signer),
            "revenue.distribute" => revenue::distribute(view, entry, ctx, &signer),
            "revenue.payment" => revenue::payment(view, entry, ctx, &signer),
            "revenue.unclaimed" => revenue::unclaimed(view, entry, ctx, &signer),
            "anchor.receipt" => anchors::receipt(view, entry, ctx, &signer),
            other => Err(rule(
                "type.registered",
                format!("entry type {other:?} has no rule (registry and rules disagree)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
