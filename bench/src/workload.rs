//! The fixed workload: members' keys and their pre-signed `coop.attest` entries, and how the
//! entries are dealt to clients (a client owns its signers, so each signer's entries arrive in
//! order, as from one device).

use anyhow::{anyhow, Result};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::hash::sha256;
use coopledger_ledger::{Body, Envelope};
use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};

/// The ledger origin every system's entries are signed for.
pub const ORIGIN: &str = "bench.coopledger.example/ledger";

/// One pre-signed entry.
#[derive(Debug)]
pub struct Entry {
    /// Index of its signer in [`Workload::members`].
    pub member: usize,
    /// The envelope as JSON text, as a member's device sends it.
    pub json: String,
}

/// Members and the entries they signed, before any clock starts.
#[derive(Debug)]
pub struct Workload {
    /// The members' signing keys (the first is on the board).
    pub members: Vec<SigningKey>,
    /// Entry `i` is signed by member `i % members`, with that member's next sequence number.
    pub entries: Vec<Entry>,
}

impl Workload {
    /// `entries` attestations by `members` members, round-robin, timestamped `ts`.
    pub fn sign(members: usize, entries: usize, ts: u64) -> Result<Workload> {
        let members: Vec<SigningKey> = (0..members)
            .map(|m| {
                let seed = sha256(format!("coop-bench member {m}").as_bytes());
                SigningKey::from_bytes(&seed.0)
            })
            .collect();
        let count = members.len();
        let entries = (0..entries)
            .map(|i| {
                let member = i % count;
                let key = members
                    .get(member)
                    .ok_or_else(|| anyhow!("no member {member}"))?;
                let digest = sha256(format!("minutes of meeting {i}").as_bytes());
                let Value::Object(payload) = json!({
                    "digest": b64_encode(digest.0),
                    "kind": "minutes",
                }) else {
                    return Err(anyhow!("payload is not an object"));
                };
                let env = sign(key, (i / count) as u64 + 1, ts, payload)?;
                Ok(Entry {
                    member,
                    json: env.to_value().to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Workload { members, entries })
    }

    /// The first `take` entries dealt to `clients` clients by signer, each client's list cut into
    /// requests of `per_request` entries: `plan[client][request] = entry indexes`.
    pub fn plan(&self, take: usize, clients: usize, per_request: usize) -> Vec<Vec<Vec<usize>>> {
        let clients = clients.max(1);
        let mut owned: Vec<Vec<usize>> = vec![Vec::new(); clients];
        for (i, e) in self.entries.iter().take(take).enumerate() {
            if let Some(list) = owned.get_mut(e.member % clients) {
                list.push(i);
            }
        }
        owned
            .into_iter()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.chunks(per_request.max(1))
                    .map(<[usize]>::to_vec)
                    .collect()
            })
            .collect()
    }
}

fn sign(key: &SigningKey, seq: u64, ts: u64, payload: Map<String, Value>) -> Result<Envelope> {
    Body {
        coop: ORIGIN.to_owned(),
        kind: "coop.attest".to_owned(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts,
        payload,
    }
    .sign(key)
    .map_err(|r| anyhow!("cannot sign: {r}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn a_plan_keeps_each_signers_entries_on_one_client_in_order() {
        let w = Workload::sign(7, 50, 1).unwrap();
        let plan = w.plan(40, 3, 4);
        let mut seen = Vec::new();
        for (c, requests) in plan.iter().enumerate() {
            let flat: Vec<usize> = requests.iter().flatten().copied().collect();
            assert!(
                flat.windows(2).all(|p| p[0] < p[1]),
                "client {c} out of order"
            );
            assert!(flat.iter().all(|&i| w.entries[i].member % 3 == c));
            assert!(requests.iter().all(|r| !r.is_empty() && r.len() <= 4));
            seen.extend(flat);
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..40).collect::<Vec<_>>(),
            "every entry exactly once"
        );
        // More clients than signers: the idle ones are left out.
        assert_eq!(w.plan(50, 20, 1).len(), 7);
    }
}
