//! Data revenue: the policy by vote, revenues and uses, distributions, payments, unclaimed.

use super::*;
use crate::revenue::{self, Distribution, Split};

const SELL: &str = "dpv:SellInsightsFromData";
const TREASURER: u8 = 5;

fn digest(text: &str) -> String {
    use coopledger_ledger::codec::b64_encode;
    use sha2::{Digest, Sha256};
    b64_encode(Sha256::digest(text.as_bytes()))
}

/// Drivers' co-op: 2 board, 3 and 4 drivers, 5 treasurer; the city buys insights. Drivers 3
/// and 4 consent to selling to the city; 2 does not. Use A carries 3 and 4, use B only 3.
fn drivers() -> (World, Vec<String>) {
    let mut w = World::with(
        test_bylaws(),
        &[
            (2, "members", &[Role::Board]),
            (3, "members", &[]),
            (4, "members", &[]),
            (TREASURER, "members", &[Role::Treasurer]),
        ],
    );
    for (party, kind) in [
        ("drivers_coop", "controller"),
        ("city", "recipient"),
        ("broker", "recipient"),
    ] {
        w.submit(
            2,
            "party.register",
            json!({"party": party, "kind": kind, "name": party, "jurisdiction": "EU"}),
        )
        .unwrap();
    }
    w.submit(
        2,
        "consent.notice",
        json!({"notice": "trips", "version": 1, "controller": "drivers_coop",
               "purposes": [SELL, "dpv:ServiceProvision"], "dataCategories": ["pd:Location"],
               "operations": ["dpv:Share"], "recipients": ["city", "broker"], "retentionMs": DAY,
               "jurisdiction": "EU", "lawfulBasis": "dpv:Consent", "textDigest": digest("notice"),
               "language": "en", "specialCategory": false}),
    )
    .unwrap();
    let mut grants = vec![];
    for n in [3, 4] {
        let m = w.member_of(n);
        let now = w.now;
        let g = w
            .submit(
                n,
                "consent.grant",
                json!({"member": m, "notice": "trips", "version": 1,
                "purposes": [SELL, "dpv:ServiceProvision"], "recipients": ["city", "broker"],
                "dataCategories": ["pd:Location"], "fromMs": now, "untilMs": now + DAY}),
            )
            .unwrap();
        grants.push(hex::encode(g));
    }
    let mut uses = vec![];
    for (cited, purpose, to) in [
        (vec![grants[0].clone(), grants[1].clone()], SELL, "city"),
        (vec![grants[0].clone()], SELL, "city"),
        (vec![grants[1].clone()], "dpv:ServiceProvision", "city"),
        (vec![grants[1].clone()], SELL, "broker"),
    ] {
        let u = w
            .submit(
                2,
                "data.use",
                json!({"kind": "sale", "recipient": to, "purpose": purpose,
                "dataCategories": ["pd:Location"], "consents": cited}),
            )
            .unwrap();
        uses.push(hex::encode(u));
    }
    (w, uses)
}

fn policy(split: &str) -> Value {
    json!({"reservePpm": 100_000, "communityPpm": 100_000, "poolPpm": 800_000, "split": split,
           "minPayout": 0, "unclaimed": "reserve", "claimDays": 90,
           "communityFund": "city_research_fund"})
}

fn adopt(w: &mut World, policy: Value) {
    let p = w.propose(
        2,
        json!({"kind": "distribution_approval", "title": "Revenue policy", "policy": policy}),
    );
    for n in [2, 3, 4, TREASURER] {
        w.vote(n, &p, "yes").unwrap();
    }
    let rec = w.close(&p);
    assert!(
        matches!(
            rec.status,
            crate::records::ProposalStatus::Closed { applied: true, .. }
        ),
        "{rec:?}"
    );
}

/// `""` when accepted, else the rule name.
fn distribute(w: &mut World, d: &Distribution) -> String {
    match w.submit(
        TREASURER,
        "revenue.distribute",
        json!({"period": d.period, "currency": d.currency, "distribution": d}),
    ) {
        Ok(_) => String::new(),
        Err(e) => rejected_rule(Err(e)),
    }
}

#[test]
fn a_distribution_is_the_one_computed_from_the_log_under_the_adopted_policy() {
    let (mut w, uses) = drivers();
    let rev = |uses: &[&String], amount: u64, cur: &str| {
        json!({"payer": "city", "amount": amount, "currency": cur, "period": "2026-q3",
               "evidence": digest("invoice"), "purpose": SELL, "uses": uses})
    };
    // Only the treasurer records revenue; uses must be of the revenue's purpose and payer.
    assert_eq!(
        w.refused(2, "revenue.record", rev(&[&uses[0]], 100, "EUR")),
        "role.required"
    );
    assert_eq!(
        w.refused(TREASURER, "revenue.record", rev(&[&uses[2]], 100, "EUR")),
        "revenue.purpose"
    );
    assert_eq!(
        w.refused(TREASURER, "revenue.record", rev(&[&uses[3]], 100, "EUR")),
        "revenue.payer"
    );
    assert_eq!(
        malformed_field(w.submit(TREASURER, "revenue.record", rev(&[&uses[0]], 0, "EUR"))),
        "body.payload.amount"
    );
    w.submit(
        TREASURER,
        "revenue.record",
        rev(&[&uses[0], &uses[1]], 100_001, "EUR"),
    )
    .unwrap();
    assert_eq!(
        w.refused(TREASURER, "revenue.record", rev(&[&uses[1]], 5, "EUR")),
        "revenue.use_paid"
    );
    w.submit(
        TREASURER,
        "revenue.expense",
        json!({"payee": "Hosting Ltd", "amount": 1, "currency": "EUR",
        "period": "2026-q3", "evidence": digest("bill")}),
    )
    .unwrap();
    // Another currency is another distribution: never mixed.
    w.submit(
        TREASURER,
        "revenue.expense",
        json!({"payee": "Bank", "amount": 999, "currency": "USD",
        "period": "2026-q3", "evidence": digest("fee")}),
    )
    .unwrap();

    // No policy adopted yet.
    assert!(matches!(
        revenue::compute(&w.s, "2026-q3", "EUR"),
        Err(revenue::DistributionError::NoPolicy)
    ));
    adopt(&mut w, policy("contribution"));
    let d = revenue::compute(&w.s, "2026-q3", "EUR").unwrap();
    assert_eq!((d.gross, d.expense_total, d.net), (100_001, 1, 100_000));
    assert_eq!((d.reserve, d.community, d.pool), (10_000, 10_000, 80_000));
    // Driver 3's data was in both paid uses, driver 4's in one; driver 2 never consented.
    let lines: Vec<(String, u64, u64)> = d
        .lines
        .iter()
        .map(|l| (l.member.clone(), l.basis, l.amount))
        .collect();
    let (m3, m4) = (w.member_of(3), w.member_of(4));
    let mut want = vec![(m3.clone(), 2, 53_333), (m4.clone(), 1, 26_667)];
    want.sort();
    // 80,000 × 2/3 = 53,333.33…, × 1/3 = 26,666.66…: the larger remainder gets the extra cent.
    assert_eq!(lines, want);

    // Refusals: unbalanced, a non-consenting member's line, the wrong currency, tampered.
    let mut bad = d.clone();
    bad.lines[0].amount += 1;
    assert_eq!(distribute(&mut w, &bad), "distribution.unbalanced");
    let mut bad = d.clone();
    let take = bad.lines[0].amount;
    bad.lines[0].amount = 0;
    bad.lines.push(revenue::Line {
        member: w.member_of(2),
        basis: 1,
        amount: take,
        below_minimum: false,
    });
    assert_eq!(distribute(&mut w, &bad), "distribution.ineligible");
    let mut bad = d.clone();
    bad.currency = "USD".into();
    assert_eq!(
        rejected_rule(
            w.submit(
                TREASURER,
                "revenue.distribute",
                json!({"period": "2026-q3", "currency": "EUR", "distribution": bad})
            )
            .map(|_| ())
        ),
        "distribution.currency"
    );
    let mut bad = d.clone();
    bad.reserve -= 1;
    bad.community += 1;
    assert_eq!(distribute(&mut w, &bad), "distribution.mismatch");
    assert_eq!(
        rejected_rule(
            w.submit(
                2,
                "revenue.distribute",
                json!({"period": "2026-q3", "currency": "EUR", "distribution": d})
            )
            .map(|_| ())
        ),
        "role.required"
    );

    assert_eq!(distribute(&mut w, &d), "");
    assert_eq!(
        revenue::distribution(&w.s, "2026-q3", "EUR").unwrap(),
        Some(d.clone())
    );
    // Closed: no second distribution, no more revenue for the period.
    assert_eq!(distribute(&mut w, &d), "revenue.closed");
    assert_eq!(
        w.refused(TREASURER, "revenue.record", rev(&[&uses[1]], 5, "EUR")),
        "revenue.closed"
    );
}

#[test]
fn a_policy_needs_its_vote_and_may_send_everything_to_the_community() {
    let (mut w, uses) = drivers();
    // A malformed policy cannot even be proposed.
    let mut bad = policy("equal");
    bad["poolPpm"] = json!(800_001);
    let r = w.submit(
        2,
        "gov.propose",
        json!({"kind": "distribution_approval", "title": "x",
        "method": "yes_no", "opensMs": w.now, "closesMs": w.now + 120_000, "policy": bad}),
    );
    assert_eq!(malformed_field(r), "body.payload.policy");
    // Money to the community fund needs the fund named.
    for unnamed in [
        json!({"reservePpm": 0, "communityPpm": 1, "poolPpm": 999_999, "split": "equal",
               "minPayout": 0, "unclaimed": "reserve", "claimDays": 9}),
        json!({"reservePpm": 0, "communityPpm": 0, "poolPpm": 1_000_000, "split": "equal",
               "minPayout": 0, "unclaimed": "community_fund", "claimDays": 9}),
    ] {
        let r = w.submit(
            2,
            "gov.propose",
            json!({"kind": "distribution_approval", "title": "x", "method": "yes_no",
                   "opensMs": w.now, "closesMs": w.now + 120_000, "policy": unnamed}),
        );
        assert_eq!(malformed_field(r), "body.payload.policy");
    }
    // A rejected policy is not in force.
    let p = w.propose(2, json!({"kind": "distribution_approval", "title": "All to members", "policy": policy("equal")}));
    for n in [2, 3, 4, TREASURER] {
        w.vote(n, &p, "no").unwrap();
    }
    w.close(&p);
    assert_eq!(revenue::policy(&w.s).unwrap(), None);
    let mut all_community = policy("equal");
    all_community["reservePpm"] = json!(0);
    all_community["communityPpm"] = json!(1_000_000);
    all_community["poolPpm"] = json!(0);
    adopt(&mut w, all_community);
    let pif = revenue::policy(&w.s).unwrap().unwrap();
    assert_eq!((pif.version, pif.policy.split), (1, Split::Equal));
    w.submit(
        TREASURER,
        "revenue.record",
        json!({"payer": "city", "amount": 12_345, "currency": "EUR",
        "period": "2026-q4", "evidence": digest("inv"), "purpose": SELL, "uses": [uses[0]]}),
    )
    .unwrap();
    let d = revenue::compute(&w.s, "2026-q4", "EUR").unwrap();
    assert_eq!((d.community, d.pool, d.reserve), (12_345, 0, 0));
    // All to the named fund: no zero line for any member.
    assert_eq!(d.community_fund.as_deref(), Some("city_research_fund"));
    assert!(d.lines.is_empty(), "{:?}", d.lines);
    assert_eq!(distribute(&mut w, &d), "");
}

#[test]
fn lines_are_paid_whole_once_and_unpaid_ones_go_where_the_policy_says_after_the_claim_period() {
    let (mut w, uses) = drivers();
    w.submit(TREASURER, "revenue.record", json!({"payer": "city", "amount": 1_000, "currency": "EUR",
        "period": "2026-q3", "evidence": digest("inv"), "purpose": SELL, "uses": [uses[0], uses[1]]})).unwrap();
    let mut pol = policy("contribution");
    pol["minPayout"] = json!(300);
    pol["unclaimed"] = json!("community_fund");
    adopt(&mut w, pol);
    let d = revenue::compute(&w.s, "2026-q3", "EUR").unwrap();
    assert_eq!(distribute(&mut w, &d), "");
    let (m3, m4) = (w.member_of(3), w.member_of(4));
    let line = |m: &str| d.lines.iter().find(|l| l.member == m).unwrap().clone();
    // Pool 800 by 2 : 1 → 533 and 267; 267 is below the 300 minimum.
    assert_eq!((line(&m3).amount, line(&m4).amount), (533, 267));
    assert!(line(&m4).below_minimum && !line(&m3).below_minimum);
    let pay = |w: &mut World, m: &str, amount: u64, status: &str| match w.submit(
        TREASURER,
        "revenue.payment",
        json!({"period": "2026-q3", "currency": "EUR", "member": m, "amount": amount,
               "reference": "SEPA-2026-0001", "status": status}),
    ) {
        Ok(_) => String::new(),
        Err(e) => rejected_rule(Err(e)),
    };
    assert_eq!(pay(&mut w, &m3, 532, "paid"), "payment.amount");
    let m2 = w.member_of(2);
    assert_eq!(pay(&mut w, &m2, 1, "paid"), "payment.line");
    assert_eq!(pay(&mut w, &m4, 267, "paid"), "payment.minimum");
    assert_eq!(pay(&mut w, &m3, 533, "failed"), "");
    assert_eq!(
        pay(&mut w, &m3, 533, "paid"),
        "",
        "a failed payment may be retried"
    );
    assert_eq!(pay(&mut w, &m3, 533, "paid"), "payment.twice");
    let unclaimed = json!({"period": "2026-q3", "currency": "EUR"});
    assert_eq!(
        w.refused(TREASURER, "revenue.unclaimed", unclaimed.clone()),
        "payment.claim_open"
    );
    w.now += 90 * DAY;
    w.submit(TREASURER, "revenue.unclaimed", unclaimed.clone())
        .unwrap();
    let st = revenue::settlement(&w.s, "2026-q3", "EUR")
        .unwrap()
        .unwrap();
    let moved = st.unclaimed.unwrap();
    assert_eq!(
        (moved.amount, moved.to, moved.members),
        (267, revenue::Unclaimed::CommunityFund, vec![m4.clone()])
    );
    assert_eq!(
        w.refused(TREASURER, "revenue.unclaimed", unclaimed),
        "payment.closed"
    );
    assert_eq!(pay(&mut w, &m3, 533, "paid"), "payment.closed");
}
