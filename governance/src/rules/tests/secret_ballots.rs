//! Secret ballots: class keys, signed participation, blind credentials, the published box.

use super::*;
use crate::ballot::{BallotSecrets, Blinding, ClassKey, Protocol};
use crate::rules::ballots_payload;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Bylaws whose every decision is a secret ballot (no revotes, no proxies).
fn secret_bylaws() -> Bylaws {
    let mut b = test_bylaws();
    for d in b.decisions.values_mut() {
        d.secret = true;
        d.revote = false;
        d.proxies.allowed = false;
    }
    b
}

fn ballot(token: &SigningKey, p: &str, cred: &[u8], vote: &str, ts: u64) -> Envelope {
    Body {
        coop: COOP.into(),
        kind: "gov.ballot".into(),
        version: 1,
        signer: token.verifying_key().to_bytes(),
        seq: 1,
        ts,
        payload: json!({"proposal": p, "class": "members", "credential": b64_encode(cred),
                        "vote": vote})
        .as_object()
        .unwrap()
        .clone(),
    }
    .sign(token)
    .unwrap()
}

fn batch(p: &[u8; 32], k: &ClassKey, ballots: &[Envelope]) -> Value {
    let keys = BTreeMap::from([("members".to_string(), k.clone())]);
    Value::Object(ballots_payload(p, &keys, ballots))
}

#[test]
fn secret_ballot_publishes_unlinkable_ballots_and_refuses_revotes() {
    secret_ballot_under(Protocol::Rfc9497);
}

/// Logs written before RFC 9497 tokens: their `gov.ballot_key` names no protocol.
#[test]
fn original_protocol_secret_ballots_still_count() {
    secret_ballot_under(Protocol::Original);
}

fn secret_ballot_under(protocol: Protocol) {
    let mut rng = StdRng::seed_from_u64(50);
    let founders: &[(u8, &str, &[Role])] = &[
        (2, "members", &[Role::Board]),
        (3, "members", &[]),
        (4, "members", &[]),
        (5, "members", &[]),
    ];
    let mut w = World::with(secret_bylaws(), founders);
    let p = w.propose(2, json!({}));
    let id = crate::parse_id(&p).unwrap();
    let opens = w.now;
    let k = BallotSecrets::from_node_key(&key(1))
        .class_key(&id, "members", protocol)
        .unwrap();
    let participate = |w: &mut World, n: u8, b: &Blinding| {
        w.submit(
            n,
            "gov.vote",
            json!({"proposal": p, "member": mid(n), "blinded": b64_encode(b.blinded())}),
        )
    };

    // No participation before the node has published the class keys.
    let token = |n: u8| SigningKey::from_bytes(&[100 + n; 32]);
    let mut blind = |n: u8| {
        Blinding::new(
            protocol,
            &id,
            &token(n).verifying_key().to_bytes(),
            &mut rng,
        )
        .unwrap()
    };
    assert_eq!(
        rejected_rule(participate(&mut w, 3, &blind(3)).map(|_| ())),
        "ballot.key"
    );
    let mut keys = json!({"proposal": p, "keys": {"members": b64_encode(k.public())}});
    keys["protocol"] = json!(3);
    assert_eq!(
        malformed_field(w.submit(1, "gov.ballot_key", keys.clone())),
        "body.payload.protocol"
    );
    match protocol {
        Protocol::Rfc9497 => keys["protocol"] = json!(2),
        Protocol::Original => {
            keys.as_object_mut().unwrap().remove("protocol");
        }
    }
    w.submit(1, "gov.ballot_key", keys.clone()).unwrap();
    let recorded = records::proposal(&w.s, &id).unwrap().unwrap();
    assert_eq!(recorded.secret.unwrap().protocol(), protocol);
    assert_eq!(w.refused(1, "gov.ballot_key", keys), "ballot.key");

    // An open vote on a secret proposal is refused; so is a proxy.
    assert_eq!(
        malformed_field(w.vote(3, &p, "yes")),
        "body.payload.vote",
        "the participation carries no vote"
    );
    let proxy = json!({"proposal": p, "member": mid(4), "to": mid(2)});
    assert_eq!(w.refused(4, "gov.proxy", proxy), "proxy.secret");

    // Members 2, 3, 4 take part; each unblinds the node's answer into a credential and signs
    // a ballot with a one-time key. Member 5 stays away.
    let mut cast = Vec::new();
    for (n, v) in [(2u8, "yes"), (3, "no"), (4, "yes")] {
        let b = blind(n);
        participate(&mut w, n, &b).unwrap();
        let part = records::participations(&w.s, &id).unwrap()[&mid(n)].clone();
        let answer = k
            .evaluate(
                &b64_decode(&part.blinded).unwrap(),
                &mut StdRng::seed_from_u64(7),
            )
            .unwrap();
        let cred = b.unblind(&k.public(), &answer).unwrap();
        cast.push(ballot(&token(n), &p, &cred, v, opens));
    }
    // No revotes: a second participation is refused.
    assert_eq!(
        rejected_rule(participate(&mut w, 3, &blind(3)).map(|_| ())),
        "vote.revote"
    );

    // The box is opened only at the close, and the tally waits for it.
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &k, &cast)),
        "ballot.early"
    );
    let prop = records::proposal(&w.s, &id).unwrap().unwrap();
    w.now = prop.closes_ms;
    let early_tally = tally_entry_payload(&w.s, &id).unwrap().unwrap();
    assert_eq!(
        w.refused(1, "gov.tally", Value::Object(early_tally)),
        "tally.ballots"
    );

    // Refused batches: a forged credential; an extra ballot minted with the key beyond the
    // number of participations; a token used twice; a key other than the published one.
    let forged = ballot(
        &token(9),
        &p,
        &vec![7; protocol.credential_len()],
        "yes",
        opens,
    );
    let short = ballot(&token(9), &p, &[7; 16], "yes", opens);
    assert_eq!(
        malformed_field(w.submit(1, "gov.ballots", batch(&id, &k, &[short]))),
        "body.payload.ballots[0].body.payload.credential"
    );
    let with_forged = [cast.clone(), vec![forged]].concat();
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &k, &with_forged)),
        "ballot.credential"
    );
    let minted_cred = k
        .credential(&id, &token(9).verifying_key().to_bytes())
        .unwrap();
    let minted = ballot(&token(9), &p, &minted_cred, "yes", opens);
    let stuffed = [cast.clone(), vec![minted]].concat();
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &k, &stuffed)),
        "ballot.count"
    );
    let again = ballot(
        &token(3),
        &p,
        &k.credential(&id, &token(3).verifying_key().to_bytes())
            .unwrap(),
        "yes",
        opens,
    );
    let twice = [cast[..2].to_vec(), vec![again.clone()]].concat();
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &k, &twice)),
        "ballot.token_used"
    );
    let other = BallotSecrets::from_node_key(&key(9))
        .class_key(&id, "members", protocol)
        .unwrap();
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &other, &cast)),
        "ballot.key"
    );

    // Published in two batches; order in each is by ballot id whatever the order of casting.
    let reversed: Vec<Envelope> = cast.iter().rev().cloned().collect();
    assert_eq!(batch(&id, &k, &cast), batch(&id, &k, &reversed));
    let first = batch(&id, &k, &cast[..2]);
    let ids: Vec<String> = first["ballots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| hex::encode(Envelope::from_value(b).unwrap().entry_id().as_bytes()))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    w.submit(1, "gov.ballots", first).unwrap();
    // A ballot already published cannot come again (a revote by the token holder).
    assert_eq!(
        w.refused(1, "gov.ballots", batch(&id, &k, &[cast[0].clone()])),
        "ballot.token_used"
    );
    w.submit(1, "gov.ballots", batch(&id, &k, &cast[2..]))
        .unwrap();

    // Unlinkable in the log: no ballot is signed by a member key or names a member or a
    // participation's blinded element, and every ballot carries the same time (the opening).
    let member_keys: Vec<[u8; 32]> = (2..=5).map(pk).collect();
    let parts = records::participations(&w.s, &id).unwrap();
    for b in &cast {
        let body = b.body();
        assert!(!member_keys.contains(&body.signer));
        assert_eq!(body.ts, opens);
        let text = serde_json::to_string(&b.to_value()).unwrap();
        for (m, part) in &parts {
            assert!(!text.contains(m.as_str()), "a ballot names no member");
            assert!(!text.contains(&part.blinded), "nor a participation's token");
        }
    }

    let closed = w.close(&p);
    let t = closed.tally.unwrap();
    assert_eq!((t.ballots, t.participants), (3, Some(3)));
    assert_eq!(t.outcome, Outcome::Adopted);
    let published = records::ballots(&w.s, &id).unwrap();
    assert_eq!(published.len(), 3);
    assert_eq!(
        published.values().filter(|b| b.vote == Vote::Yes).count(),
        2,
        "two yes, one no"
    );
}
