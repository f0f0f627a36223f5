//! The consent ledger: parties, notices, grants, renewal, withdrawal, revocation, data uses.

use super::*;
use crate::consent::{self as c, ConsentStatus};

const CONTROLLER: u8 = 20;
const AUTHORITY: u8 = 21;
const PATIENT: u8 = 3;
const RESEARCH: &str = "dpv:ScientificResearch";
const CARE: &str = "dpv:ServiceProvision";

fn digest(text: &str) -> String {
    use coopledger_ledger::codec::b64_encode;
    use sha2::{Digest, Sha256};
    b64_encode(Sha256::digest(text.as_bytes()))
}

/// A health-data co-op: controller (key 20) and authority (key 21) with keys, three
/// recipients, and notice `health` v1 offering care and research to all three.
fn health_coop() -> World {
    health_coop_founded(2)
}

/// The same co-op founded with `coop.genesis` of `version`.
fn health_coop_founded(version: u64) -> World {
    let mut w = World::founded(
        version,
        test_bylaws(),
        &[
            (2, "members", &[Role::Board]),
            (3, "members", &[]),
            (4, "members", &[]),
        ],
    );
    for (party, kind, k) in [
        ("health_coop", "controller", Some(CONTROLLER)),
        ("dpa", "authority", Some(AUTHORITY)),
        ("physicians", "recipient", None),
        ("research_institute", "recipient", None),
        ("pharma", "recipient", None),
    ] {
        let mut p = json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"});
        if let Some(k) = k {
            p["key"] = json!(coopledger_ledger::codec::b64_encode(pk(k)));
        }
        w.submit(2, "party.register", p).unwrap();
    }
    w.submit(CONTROLLER, "consent.notice", notice(1)).unwrap();
    w
}

fn notice(version: u64) -> Value {
    json!({
        "notice": "health", "version": version, "controller": "health_coop",
        "purposes": [CARE, RESEARCH],
        "dataCategories": ["pd:MedicalHealth", "pd:Dietary", "pd:Genetic"],
        "operations": ["dpv:Store", "dpv:Share"],
        "recipients": ["physicians", "research_institute", "pharma"],
        "retentionMs": 365 * DAY, "jurisdiction": "EU", "lawfulBasis": "dpv:Consent",
        "textDigest": digest("We share your records with ..."), "language": "en",
        "specialCategory": true,
    })
}

fn grant(
    w: &mut World,
    n: u8,
    purposes: &[&str],
    to: &[&str],
    cats: &[&str],
    from: u64,
    until: u64,
) -> Result<String, ApplyError> {
    let m = w.member_of(n);
    w.submit(
        n,
        "consent.grant",
        json!({"member": m, "notice": "health", "version": 1, "purposes": purposes,
               "recipients": to, "dataCategories": cats, "fromMs": from, "untilMs": until}),
    )
    .map(hex::encode)
}

fn use_of(w: &mut World, to: &str, purpose: &str, cats: &[&str], consents: &[&str]) -> String {
    rejected_rule(
        w.submit(
            2,
            "data.use",
            json!({"kind": "release", "recipient": to, "purpose": purpose,
               "dataCategories": cats, "consents": consents}),
        )
        .map(|_| ()),
    )
}

fn used(w: &mut World, to: &str, purpose: &str, cats: &[&str], consents: &[&str]) {
    w.submit(
        CONTROLLER,
        "data.use",
        json!({"kind": "sale", "recipient": to, "purpose": purpose,
               "dataCategories": cats, "consents": consents}),
    )
    .unwrap();
}

#[test]
fn uses_must_cite_consent_valid_for_purpose_recipient_and_every_category() {
    let mut w = health_coop();
    let now = w.now;
    // Physicians get all data; the research institute only medical and dietary; pharma
    // nothing.
    let care = grant(
        &mut w,
        PATIENT,
        &[CARE],
        &["physicians"],
        &["pd:MedicalHealth", "pd:Dietary", "pd:Genetic"],
        now,
        now + DAY,
    )
    .unwrap();
    let research = grant(
        &mut w,
        PATIENT,
        &[RESEARCH],
        &["research_institute"],
        &["pd:MedicalHealth", "pd:Dietary"],
        now,
        now + DAY,
    )
    .unwrap();
    used(
        &mut w,
        "physicians",
        CARE,
        &["pd:Genetic", "pd:MedicalHealth"],
        &[&care],
    );
    used(
        &mut w,
        "research_institute",
        RESEARCH,
        &["pd:MedicalHealth"],
        &[&research],
    );
    assert_eq!(
        use_of(
            &mut w,
            "pharma",
            RESEARCH,
            &["pd:MedicalHealth"],
            &[&research]
        ),
        "use.recipient"
    );
    assert_eq!(
        use_of(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Genetic"],
            &[&research]
        ),
        "use.category"
    );
    assert_eq!(
        use_of(
            &mut w,
            "research_institute",
            CARE,
            &["pd:Dietary"],
            &[&research]
        ),
        "use.purpose"
    );
    assert_eq!(
        use_of(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&research, &research]
        ),
        "use.consent"
    );
    // A grant cannot reach beyond its notice, nor end before it starts.
    let m = w.member_of(PATIENT);
    let beyond = json!({"member": m, "notice": "health", "version": 1, "purposes": [RESEARCH],
        "recipients": ["city_transport"], "dataCategories": ["pd:Dietary"], "fromMs": now, "untilMs": now + 1});
    assert_eq!(w.refused(PATIENT, "consent.grant", beyond), "consent.scope");
    let empty = grant(
        &mut w,
        PATIENT,
        &[RESEARCH],
        &["pharma"],
        &["pd:Dietary"],
        now,
        now,
    );
    assert_eq!(rejected_rule(empty.map(|_| ())), "consent.period");
    // Nobody grants for another member.
    let other = json!({"member": m, "notice": "health", "version": 1, "purposes": [RESEARCH],
        "recipients": ["pharma"], "dataCategories": ["pd:Dietary"], "fromMs": now, "untilMs": now + DAY});
    assert_eq!(w.refused(4, "consent.grant", other), "consent.member");
}

#[test]
fn withdrawal_is_final_and_expiry_renewal_revocation_and_invalidation_are_respected() {
    let mut w = health_coop();
    let now = w.now;
    let g = grant(
        &mut w,
        PATIENT,
        &[RESEARCH],
        &["research_institute"],
        &["pd:Dietary"],
        now,
        now + 1_000,
    )
    .unwrap();
    used(
        &mut w,
        "research_institute",
        RESEARCH,
        &["pd:Dietary"],
        &[&g],
    );
    // Expiry at untilMs (exclusive), then renewal: the gap stays uncovered.
    w.now = now + 1_000;
    assert_eq!(
        use_of(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g]
        ),
        "use.expired"
    );
    let m = w.member_of(PATIENT);
    w.now = now + 5_000;
    w.submit(
        PATIENT,
        "consent.renew",
        json!({"member": m, "grant": g, "untilMs": now + DAY}),
    )
    .unwrap();
    used(
        &mut w,
        "research_institute",
        RESEARCH,
        &["pd:Dietary"],
        &[&g],
    );
    let gr = c::grant(&w.s, &crate::parse_id(&g).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        gr.status_at(u64::MAX, now + 2_000),
        ConsentStatus::Expired,
        "the gap"
    );
    assert_eq!(gr.status_at(u64::MAX, now + 6_000), ConsentStatus::Active);
    // Another member cannot withdraw it; the member can, once, for good.
    let theirs = json!({"member": w.member_of(4), "grant": g});
    assert_eq!(w.refused(4, "consent.withdraw", theirs), "consent.member");
    let withdraw = json!({"member": m, "grant": g});
    let at = w.index;
    w.submit(PATIENT, "consent.withdraw", withdraw.clone())
        .unwrap();
    assert_eq!(
        use_of(
            &mut w,
            "research_institute",
            RESEARCH,
            &["pd:Dietary"],
            &[&g]
        ),
        "use.withdrawn"
    );
    assert_eq!(
        w.refused(PATIENT, "consent.withdraw", withdraw),
        "consent.ended"
    );
    assert_eq!(
        w.refused(
            PATIENT,
            "consent.renew",
            json!({"member": m, "grant": g, "untilMs": now + 2 * DAY})
        ),
        "consent.ended"
    );
    // Status by index: active just before the withdrawal, withdrawn from it on.
    let grants = c::member_grants(&w.s, &m).unwrap();
    assert_eq!(
        c::status(&grants, &m, RESEARCH, "research_institute", at - 1, w.now).status,
        ConsentStatus::Active
    );
    assert_eq!(
        c::status(&grants, &m, RESEARCH, "research_institute", at, w.now).status,
        ConsentStatus::Withdrawn
    );
    assert_eq!(
        c::status(&grants, &m, RESEARCH, "pharma", at, w.now).status,
        ConsentStatus::None
    );
    // The timeline has every event, in log order.
    let t = c::timeline(&w.s, &m).unwrap();
    let kinds: Vec<&str> = t.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "consent.grant",
            "data.use",
            "consent.renew",
            "data.use",
            "consent.withdraw"
        ]
    );

    // Revocation is the controller's; invalidation an authority's.
    let t0 = w.now;
    let g2 = grant(
        &mut w,
        PATIENT,
        &[RESEARCH],
        &["pharma"],
        &["pd:Dietary"],
        t0,
        t0 + DAY,
    )
    .unwrap();
    let g3 = grant(
        &mut w,
        PATIENT,
        &[CARE],
        &["physicians"],
        &["pd:Dietary"],
        t0,
        t0 + DAY,
    )
    .unwrap();
    let reason = json!(digest("salted reason"));
    assert_eq!(
        w.refused(
            AUTHORITY,
            "consent.revoke",
            json!({"grant": g2, "reason": reason})
        ),
        "role.required"
    );
    assert_eq!(
        w.refused(
            CONTROLLER,
            "consent.invalidate",
            json!({"grant": g3, "reason": reason})
        ),
        "role.required"
    );
    assert_eq!(
        w.refused(2, "consent.revoke", json!({"grant": g2, "reason": reason})),
        "role.required"
    );
    w.submit(
        CONTROLLER,
        "consent.revoke",
        json!({"grant": g2, "reason": reason}),
    )
    .unwrap();
    w.submit(
        AUTHORITY,
        "consent.invalidate",
        json!({"grant": g3, "reason": reason}),
    )
    .unwrap();
    assert_eq!(
        use_of(&mut w, "pharma", RESEARCH, &["pd:Dietary"], &[&g2]),
        "use.revoked"
    );
    assert_eq!(
        use_of(&mut w, "physicians", CARE, &["pd:Dietary"], &[&g3]),
        "use.invalidated"
    );
    // A consent for later is not valid yet.
    let later = grant(
        &mut w,
        PATIENT,
        &[CARE],
        &["physicians"],
        &["pd:Dietary"],
        t0 + DAY,
        t0 + 2 * DAY,
    )
    .unwrap();
    assert_eq!(
        use_of(&mut w, "physicians", CARE, &["pd:Dietary"], &[&later]),
        "use.not_yet_valid"
    );
}

#[test]
fn notices_are_immutable_and_versioned_and_parties_are_registered_by_the_board() {
    let mut w = health_coop();
    assert_eq!(
        w.refused(CONTROLLER, "consent.notice", notice(1)),
        "notice.version"
    );
    assert_eq!(
        w.refused(CONTROLLER, "consent.notice", notice(3)),
        "notice.version"
    );
    w.submit(2, "consent.notice", notice(2)).unwrap();
    assert_eq!(w.refused(3, "consent.notice", notice(3)), "role.required");
    let mut bad = notice(3);
    bad["recipients"] = json!(["dpa"]);
    assert_eq!(w.refused(2, "consent.notice", bad), "notice.recipient");
    let mut bad = notice(3);
    bad["purposes"] = json!(["research"]);
    assert_eq!(
        malformed_field(w.submit(2, "consent.notice", bad)),
        "body.payload.purposes[0]"
    );
    let p = json!({"party": "city", "kind": "recipient", "name": "City", "jurisdiction": "EU"});
    assert_eq!(w.refused(3, "party.register", p.clone()), "role.required");
    w.submit(2, "party.register", p.clone()).unwrap();
    assert_eq!(w.refused(2, "party.register", p), "party.known");
    assert_eq!(c::notices(&w.s).unwrap().len(), 2);
}

/// The bundle's semantics (`consent_bundle::history`) rebuilds, from the entries alone, the
/// grants the rules keep in state, and refuses a history in which a use follows the end of
/// the consent it cites.
#[test]
fn the_bundle_history_rebuilds_the_rules_grants_and_catches_an_uncovered_use() {
    for version in [1, 2] {
        bundle_history_rebuilds_the_rules_grants(version);
    }
}

fn bundle_history_rebuilds_the_rules_grants(version: u64) {
    use crate::consent_bundle::history;
    let mut w = health_coop_founded(version);
    let now = w.now;
    let m = w.member_of(PATIENT);
    let g = grant(
        &mut w,
        PATIENT,
        &[RESEARCH],
        &["research_institute"],
        &["pd:Dietary"],
        now,
        now + 1_000,
    )
    .unwrap();
    let care = grant(
        &mut w,
        PATIENT,
        &[CARE],
        &["physicians"],
        &["pd:Genetic"],
        now,
        now + DAY,
    )
    .unwrap();
    used(
        &mut w,
        "research_institute",
        RESEARCH,
        &["pd:Dietary"],
        &[&g],
    );
    w.now = now + 5_000;
    w.submit(
        PATIENT,
        "consent.renew",
        json!({"member": m, "grant": g, "untilMs": now + DAY}),
    )
    .unwrap();
    used(
        &mut w,
        "research_institute",
        RESEARCH,
        &["pd:Dietary"],
        &[&g],
    );
    used(&mut w, "physicians", CARE, &["pd:Genetic"], &[&care]);
    w.now = now + 6_000;
    w.submit(
        PATIENT,
        "consent.withdraw",
        json!({"member": m, "grant": g}),
    )
    .unwrap();
    w.submit(
        CONTROLLER,
        "consent.revoke",
        json!({"grant": care, "reason": digest("audit")}),
    )
    .unwrap();

    let t = c::timeline(&w.s, &m).unwrap();
    let (lines, rebuilt) = history(&m, None, &t, &w.log).unwrap();
    assert_eq!(lines.len(), t.events.len());
    for r in &rebuilt {
        let mut kept = c::grant(&w.s, &crate::parse_id(&r.id).unwrap())
            .unwrap()
            .unwrap();
        // The rules name the revoking party by id; the entries alone show its key.
        let mut r = r.clone();
        if let (
            Some(c::GrantEnd::Revoked { party, .. }),
            Some(c::GrantEnd::Revoked { party: p2, .. }),
        ) = (&mut kept.ended, &mut r.ended)
        {
            *p2 = party.clone();
        }
        assert_eq!(r, kept);
    }
    let statuses: Vec<ConsentStatus> = lines.iter().map(|l| l.status).collect();
    assert_eq!(statuses.last(), Some(&ConsentStatus::Revoked));
    assert!(statuses.contains(&ConsentStatus::Withdrawn));

    // Filtered by purpose: only the research grant is followed past its grant entry.
    let (research, _) = history(&m, Some(RESEARCH), &t, &w.log).unwrap();
    assert!(research.iter().all(|l| l.grant == g));

    // Move the last research use after the withdrawal: the history refuses it.
    let mut forged = t.clone();
    let use_at = forged
        .events
        .iter()
        .rposition(|e| e.event == "data.use" && e.grant == g)
        .unwrap();
    let mut ev = forged.events.remove(use_at);
    let use_entry = w.log.get(&ev.index).unwrap().clone();
    let last = forged.events.last().unwrap().clone();
    ev.index = last.index + 1;
    ev.ms = last.ms;
    forged.events.push(ev.clone());
    let mut log = w.log.clone();
    log.insert(ev.index, use_entry);
    let err = history(&m, None, &forged, &log).unwrap_err().to_string();
    assert!(err.contains("NOT covered"), "{err}");
    // A timeline that leaves an entry out of the bundle is refused by index.
    let mut short = w.log.clone();
    short.remove(&t.events[3].index);
    let err = history(&m, None, &t, &short).unwrap_err().to_string();
    assert!(err.contains("missing from the bundle"), "{err}");
}

/// One member's events: grants and uses, a renewal, a withdrawal (the same entries whatever the
/// form).
fn many_events(w: &mut World, pairs: usize) -> String {
    let now = w.now;
    let m = w.member_of(PATIENT);
    let mut last = String::new();
    for _ in 0..pairs {
        last = grant(
            w,
            PATIENT,
            &[RESEARCH],
            &["research_institute"],
            &["pd:Dietary"],
            now,
            now + DAY,
        )
        .unwrap();
        used(w, "research_institute", RESEARCH, &["pd:Dietary"], &[&last]);
    }
    w.submit(
        PATIENT,
        "consent.renew",
        json!({"member": m, "grant": last, "untilMs": now + 2 * DAY}),
    )
    .unwrap();
    w.submit(
        PATIENT,
        "consent.withdraw",
        json!({"member": m, "grant": last}),
    )
    .unwrap();
    m
}

/// `coop.genesis` v2 keeps each timeline as a hash chain: a small head that does not grow with
/// the history, one key per event, and the same timeline as the whole form gives for the same
/// entries; v1 co-ops keep the whole list in one value, as their logs recorded.
#[test]
fn a_chained_timeline_has_a_fixed_size_head_and_the_same_events_as_the_whole_form() {
    use coopledger_ledger::StateRead;
    let mut chained = health_coop_founded(2);
    let mut whole = health_coop_founded(1);
    let m = many_events(&mut chained, 40);
    assert_eq!(many_events(&mut whole, 40), m);

    let t = c::timeline(&chained.s, &m).unwrap();
    assert_eq!(t.events.len(), 82);
    assert_eq!(t, c::timeline(&whole.s, &m).unwrap());
    assert_eq!(
        crate::records::coop(&chained.s)
            .unwrap()
            .unwrap()
            .consent_timeline,
        c::TimelineForm::Chained
    );
    assert_eq!(
        crate::records::coop(&whole.s)
            .unwrap()
            .unwrap()
            .consent_timeline,
        c::TimelineForm::Whole
    );

    // Chained: the head counts the events and ends their chain; each event has its key.
    let raw = chained.s.get(&c::timeline_key(&m)).unwrap().clone();
    assert!(raw.len() < 120, "{} bytes", raw.len());
    let head: c::TimelineHead = serde_json::from_slice(&raw).unwrap();
    assert_eq!(head.length, 82);
    assert_eq!(
        head.head,
        coopledger_ledger::codec::b64_encode(c::chain_head(&t.events).unwrap())
    );
    let events = chained.s.scan(b"ctle/").unwrap();
    assert_eq!(events.len(), 82);
    // Whole: one value holding every event, and no event keys.
    let raw = whole.s.get(&c::timeline_key(&m)).unwrap().clone();
    let listed: c::Timeline = serde_json::from_slice(&raw).unwrap();
    assert_eq!(listed, t);
    assert!(whole.s.scan(b"ctle/").unwrap().is_empty());

    // Any change to a stored event breaks the chain: reading the timeline reports corruption.
    let (k, v) = events[5].clone();
    let mut ev: c::TimelineEvent = serde_json::from_slice(&v).unwrap();
    ev.ms += 1;
    let s = Tampered {
        base: &chained.s,
        key: k,
        value: serde_json::to_vec(&ev).unwrap(),
    };
    let err = c::timeline(&s, &m).unwrap_err().to_string();
    assert!(err.contains("does not match its head"), "{err}");
}

/// State with one value replaced, as a tampered store would read.
struct Tampered<'a> {
    base: &'a coopledger_ledger::state::MemoryState,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl coopledger_ledger::StateRead for Tampered<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, coopledger_ledger::StoreError> {
        if key == self.key {
            return Ok(Some(self.value.clone()));
        }
        coopledger_ledger::StateRead::get(self.base, key)
    }
    fn scan(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<coopledger_ledger::state::KeyValue>, coopledger_ledger::StoreError> {
        Ok(self
            .base
            .scan(prefix)?
            .into_iter()
            .map(|(k, v)| {
                let v = if k == self.key { self.value.clone() } else { v };
                (k, v)
            })
            .collect())
    }
}

/// The chain's links are pinned: an independent verifier following `docs/consent-bundle.md`
/// must reach these bytes.
#[test]
fn the_timeline_chain_is_pinned() {
    let ev = |index, event: &str, grant: u8| c::TimelineEvent {
        index,
        ms: 1_764_000_000_000 + index,
        event: event.into(),
        grant: hex::encode([grant; 32]),
    };
    let events = [ev(7, "consent.grant", 1), ev(9, "data.use", 1)];
    assert_eq!(c::chain_head(&[]).unwrap(), [0u8; 32]);
    // H_1 by hand from the documented layout.
    let mut bytes = b"coopledger/consent-timeline/v1\0".to_vec();
    bytes.extend([0u8; 32]);
    bytes.extend(7u64.to_be_bytes());
    bytes.extend(1_764_000_000_007u64.to_be_bytes());
    bytes.push(13);
    bytes.extend(b"consent.grant");
    bytes.extend([1u8; 32]);
    let h1: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
    assert_eq!(c::chain_head(&events[..1]).unwrap(), h1);
    assert_eq!(
        hex::encode(c::chain_head(&events).unwrap()),
        "88934d6df1084653d180755e9018cf6c72bfdd8eba1780b2fc840b72a9e3e9d5"
    );
    // A grant id that is not 64 lowercase hex digits cannot be linked.
    let mut bad = events.to_vec();
    bad[1].grant = "ab".into();
    assert_eq!(c::chain_head(&bad), Err(1));
}
