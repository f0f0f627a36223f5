//! Secret ballots in the rules: the node's `gov.ballot_key` (one public key per voting class,
//! before anyone takes part), a member's signed participation (`gov.vote` carrying a blinded
//! token instead of a vote; once only), and the `gov.ballots` entries in which the node publishes
//! the ballot box at the close, sorted by ballot id, with the class keys that let anyone check
//! every credential. The cryptography is in [`crate::ballot`].

use crate::ballot::{point, ClassKey, Protocol};
use crate::payload::{malformed, Fields};
use crate::proposals::rules::{load, note_entry, require_open};
use crate::proposals::votes::vote_from;
use crate::records::{
    self, ballot_key, part_key, prop_key, BallotRecord, MemberRecord, Participation, ProposalRecord,
};
use crate::rules::{corrupt, rule, write, Signer};
use crate::tally::ClassId;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::entry::admit;
use coopledger_ledger::{ApplyContext, ApplyError, Envelope, Rejection, StateView, Verified};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Entry type of a ballot (signed by the voter's one-time key; never a log entry of its own).
pub const BALLOT_TYPE: &str = "gov.ballot";

fn secret_of(p: &ProposalRecord) -> Result<&crate::records::SecretBallot, ApplyError> {
    p.secret.as_ref().ok_or_else(|| {
        rule(
            "ballot.secret",
            format!(
                "body.payload.proposal: {} decisions are open ballots",
                p.kind.as_str()
            ),
        )
    })
}

/// `gov.ballot_key {proposal, keys: {class: base64}, protocol?}` — by the node, once, before
/// voting closes: a public key for every class of the frozen electorate, and the blind-token
/// protocol (`2`, RFC 9497; absent means the original protocol 1, as older logs have it).
pub(crate) fn publish_keys(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.require_node()?;
    let f = Fields::new(&env.body().payload, &["proposal", "keys", "protocol"])?;
    let protocol = match f.value("protocol") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n == Protocol::Rfc9497.number())
                .ok_or_else(|| {
                    malformed(
                        "protocol",
                        "must be 2 (RFC 9497 VOPRF, ristretto255-SHA512); absent means protocol 1",
                    )
                })?,
        ),
    };
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    let s = secret_of(&p)?;
    if let Some(at) = s.keys_index {
        return Err(rule(
            "ballot.key",
            format!("the ballot keys were published at index {at}"),
        ));
    }
    if ctx.batch_time_ms >= p.closes_ms {
        return Err(rule("vote.window", "voting has closed"));
    }
    let obj = f
        .value("keys")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("keys", "must map each voting class to a key"))?;
    let mut keys = BTreeMap::new();
    for class in s.participants.keys() {
        let k = obj
            .get(class)
            .and_then(Value::as_str)
            .filter(|k| b64_decode(k).ok().and_then(|b| point(&b)).is_some())
            .ok_or_else(|| {
                malformed(
                    &format!("keys.{class}"),
                    "must be base64 of a 32-byte Ristretto element",
                )
            })?;
        keys.insert(class.clone(), k.to_owned());
    }
    if let Some(extra) = obj.keys().find(|c| !keys.contains_key(*c)) {
        return Err(malformed(
            &format!("keys.{extra}"),
            "not a class of the frozen electorate",
        )
        .into());
    }
    let s = p.secret.get_or_insert_with(Default::default);
    s.keys = keys;
    s.keys_index = Some(ctx.index);
    s.protocol = protocol;
    write(view, &prop_key(&id), &p)?;
    note_entry(view, &id, ctx);
    Ok(())
}

/// A `gov.vote` on a secret proposal: the member signs that they take part and sends the blinded
/// token `blinded`; no vote is in it, and there is no second one.
pub(crate) fn participate(
    view: &mut StateView<'_>,
    f: &Fields<'_>,
    id: &[u8; 32],
    mut p: ProposalRecord,
    m: &MemberRecord,
    ctx: &ApplyContext,
) -> Result<(), ApplyError> {
    if f.has("vote") || f.has("choices") {
        return Err(malformed(
            "vote",
            "a secret ballot is cast in the ballot box; the participation carries body.payload.blinded",
        )
        .into());
    }
    let blinded = f
        .value("blinded")
        .and_then(Value::as_str)
        .filter(|b| b64_decode(b).ok().and_then(|b| point(&b)).is_some())
        .ok_or_else(|| malformed("blinded", "must be base64 of a 32-byte Ristretto element"))?;
    if secret_of(&p)?.keys_index.is_none() {
        return Err(rule(
            "ballot.key",
            "the node has not published this proposal's ballot keys yet; try again shortly",
        ));
    }
    if let Some(prev) = records::read::<Participation>(view, &part_key(id, &m.id))? {
        return Err(rule(
            "vote.revote",
            format!(
                "{} took part at index {}; a secret ballot allows no revotes",
                m.id, prev.index
            ),
        ));
    }
    let class = m
        .at(p.index)
        .map(|e| e.class.clone())
        .ok_or_else(|| corrupt("voter without standing at creation"))?;
    let s = p.secret.get_or_insert_with(Default::default);
    *s.participants.entry(class.clone()).or_default() += 1;
    write(
        view,
        &part_key(id, &m.id),
        &Participation {
            index: ctx.index,
            class,
            blinded: blinded.to_owned(),
        },
    )?;
    write(view, &prop_key(id), &p)?;
    note_entry(view, id, ctx);
    Ok(())
}

/// A ballot whose form, credential and vote are valid for a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedBallot {
    /// The ballot's entry id.
    pub id: [u8; 32],
    /// Its one-time key: the token.
    pub token: [u8; 32],
    /// The class it counts in.
    pub class: ClassId,
    /// The vote.
    pub vote: crate::records::Vote,
}

/// Checks one ballot (signature already verified) for proposal `p` of co-op `origin` against the
/// class keys: type, co-op, proposal, signer time inside the window, class, credential
/// (recomputed from the class key, the proposal and the token under the key's protocol), and a vote valid for the method. Used by the ballot box on receipt, by the
/// rules on publication and by `coop tally verify`.
pub fn check_ballot(
    p: &ProposalRecord,
    origin: &str,
    keys: &BTreeMap<ClassId, ClassKey>,
    ballot: &Verified<Envelope>,
) -> Result<OpenedBallot, ApplyError> {
    let b = ballot.body();
    if b.kind != BALLOT_TYPE || b.version != 1 {
        return Err(rule(
            "ballot.form",
            format!("body.type must be {BALLOT_TYPE} version 1"),
        ));
    }
    if b.coop != origin {
        return Err(rule(
            "ballot.form",
            format!("body.coop is {:?}, not this co-op", b.coop),
        ));
    }
    let f = Fields::new(
        &b.payload,
        &["proposal", "class", "credential", "vote", "choices"],
    )?;
    if hex::encode(f.id("proposal")?) != p.id {
        return Err(rule(
            "ballot.proposal",
            "body.payload.proposal is another proposal",
        ));
    }
    if b.ts < p.opens_ms || b.ts >= p.closes_ms {
        return Err(rule(
            "vote.window",
            format!(
                "body.ts {} is outside the voting window {} to {} ms",
                b.ts, p.opens_ms, p.closes_ms
            ),
        ));
    }
    let class = f.ident("class")?;
    let key = keys.get(&class).ok_or_else(|| {
        rule(
            "ballot.class",
            format!("body.payload.class: {class} is not a voting class of this proposal"),
        )
    })?;
    let length = key.protocol().credential_len();
    let credential = f
        .value("credential")
        .and_then(Value::as_str)
        .and_then(|c| b64_decode(c).ok())
        .filter(|c| c.len() == length)
        .ok_or_else(|| malformed("credential", format!("must be base64 of {length} bytes")))?;
    let id = p.id_bytes()?;
    if key.credential(&id, &b.signer) != Some(credential) {
        return Err(rule(
            "ballot.credential",
            format!(
                "body.payload.credential was not issued for this token in class {class} of this \
                 proposal"
            ),
        ));
    }
    let vote = vote_from(&f, p)?;
    Ok(OpenedBallot {
        id: *ballot.entry_id().as_bytes(),
        token: b.signer,
        class,
        vote,
    })
}

/// Names the ballot a refusal came from: `body.payload.ballots[i]…`.
fn in_ballot(i: usize, e: ApplyError) -> ApplyError {
    match e {
        ApplyError::Rejected(Rejection::Malformed { field, reason }) => {
            ApplyError::Rejected(Rejection::Malformed {
                field: format!("body.payload.ballots[{i}].{field}"),
                reason,
            })
        }
        ApplyError::Rejected(Rejection::Rule { rule, message }) => {
            ApplyError::Rejected(Rejection::Rule {
                rule,
                message: format!("body.payload.ballots[{i}]: {message}"),
            })
        }
        ApplyError::Rejected(other) => ApplyError::Rejected(Rejection::Rule {
            rule: "ballot.form".into(),
            message: format!("body.payload.ballots[{i}]: {other}"),
        }),
        other => other,
    }
}

/// Parses `keys` of a `gov.ballots` payload and checks each against the published public key.
pub fn revealed_keys(
    p: &ProposalRecord,
    keys: Option<&Value>,
) -> Result<BTreeMap<ClassId, ClassKey>, ApplyError> {
    let s = secret_of(p)?;
    let obj = keys
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("keys", "must map each voting class to its secret key"))?;
    let mut out = BTreeMap::new();
    for (class, public) in &s.keys {
        let k = obj
            .get(class)
            .and_then(Value::as_str)
            .and_then(|k| b64_decode(k).ok())
            .and_then(|b| ClassKey::from_bytes(&b, s.protocol()))
            .ok_or_else(|| {
                malformed(
                    &format!("keys.{class}"),
                    "must be base64 of a canonical non-zero scalar",
                )
            })?;
        if b64_encode(k.public()) != *public {
            return Err(rule(
                "ballot.key",
                format!("body.payload.keys.{class} is not the key published for the class"),
            ));
        }
        out.insert(class.clone(), k);
    }
    if let Some(extra) = obj.keys().find(|c| !out.contains_key(*c)) {
        return Err(malformed(&format!("keys.{extra}"), "not a class with a ballot key").into());
    }
    Ok(out)
}

/// `gov.ballots {proposal, keys, ballots: [envelope…]}` — by the node, once voting has closed and
/// before the tally: publishes ballots from the box (in ballot-id order) and the class keys.
/// Every ballot must check; no token may be used twice; no class may have more ballots than
/// signed participations. Large boxes take several entries.
pub(crate) fn publish_ballots(
    view: &mut StateView<'_>,
    env: &Envelope,
    ctx: &ApplyContext,
    signer: &Signer,
) -> Result<(), ApplyError> {
    signer.require_node()?;
    let f = Fields::new(&env.body().payload, &["proposal", "keys", "ballots"])?;
    let (id, mut p) = load(view, &f)?;
    require_open(&p)?;
    if secret_of(&p)?.keys_index.is_none() {
        return Err(rule("ballot.key", "no ballot keys were published"));
    }
    if ctx.batch_time_ms < p.closes_ms {
        return Err(rule(
            "ballot.early",
            format!(
                "ballots are published when voting closes at {} ms; node time is {} ms",
                p.closes_ms, ctx.batch_time_ms
            ),
        ));
    }
    let keys = revealed_keys(&p, f.value("keys"))?;
    let list = f
        .value("ballots")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("ballots", "must be a list of signed ballots"))?;
    let mut envelopes = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        envelopes.push(Envelope::from_value(v).map_err(|r| in_ballot(i, r.into()))?);
    }
    let mut previous: Option<[u8; 32]> = None;
    for (i, verdict) in admit(envelopes).into_iter().enumerate() {
        let ballot = verdict.map_err(|r| in_ballot(i, r.into()))?;
        let opened =
            check_ballot(&p, &env.body().coop, &keys, &ballot).map_err(|e| in_ballot(i, e))?;
        if previous.is_some_and(|prev| prev >= opened.id) {
            return Err(rule(
                "ballot.order",
                format!("body.payload.ballots[{i}]: ballots are published in ballot-id order"),
            ));
        }
        previous = Some(opened.id);
        let key = ballot_key(&id, &opened.token);
        if view.get(&key)?.is_some() {
            return Err(rule(
                "ballot.token_used",
                format!("body.payload.ballots[{i}]: this token has already cast a ballot"),
            ));
        }
        let s = p.secret.get_or_insert_with(Default::default);
        let allowed = s.participants.get(&opened.class).copied().unwrap_or(0);
        let cast = s.cast.entry(opened.class.clone()).or_default();
        if *cast >= allowed {
            return Err(rule(
                "ballot.count",
                format!(
                    "body.payload.ballots[{i}]: class {} has {allowed} participations and no \
                     more ballots",
                    opened.class
                ),
            ));
        }
        *cast += 1;
        write(
            view,
            &key,
            &BallotRecord {
                ballot: hex::encode(opened.id),
                class: opened.class,
                vote: opened.vote,
                index: ctx.index,
            },
        )?;
    }
    let s = p.secret.get_or_insert_with(Default::default);
    s.opened_at = s.opened_at.or(Some(ctx.index));
    write(view, &prop_key(&id), &p)?;
    note_entry(view, &id, ctx);
    Ok(())
}

/// The payload of a `gov.ballots` entry: `ballots` sorted by ballot id here.
pub fn ballots_payload(
    proposal: &[u8; 32],
    keys: &BTreeMap<ClassId, ClassKey>,
    ballots: &[Envelope],
) -> Map<String, Value> {
    let mut sorted: Vec<&Envelope> = ballots.iter().collect();
    sorted.sort_by_key(|e| *e.entry_id().as_bytes());
    let mut m = Map::new();
    m.insert("proposal".into(), Value::String(hex::encode(proposal)));
    m.insert(
        "keys".into(),
        Value::Object(
            keys.iter()
                .map(|(c, k)| (c.clone(), Value::String(b64_encode(k.to_bytes()))))
                .collect(),
        ),
    );
    m.insert(
        "ballots".into(),
        Value::Array(sorted.into_iter().map(Envelope::to_value).collect()),
    );
    m
}
