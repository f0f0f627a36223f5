//! The state machine the ledger's integration tests drive: notes, counted.

#![allow(
    dead_code,
    reason = "each test binary uses what it needs of the shared helpers"
)]

use coopledger_ledger::{
    ApplyContext, ApplyError, Envelope, Rejection, StateMachine, StateView, Verified,
};

/// Accepts `test.note` v1; refuses payloads with `"refuse": true`; counts notes in its state
/// and records tagged ones.
pub struct Notes;

impl StateMachine for Notes {
    fn accepts(&self, kind: &str, version: u64) -> bool {
        kind == "test.note" && version == 1
    }
    fn apply(
        &self,
        state: &mut StateView<'_>,
        e: &Verified<Envelope>,
        _: &ApplyContext,
    ) -> Result<(), ApplyError> {
        if e.body().payload.get("refuse").is_some() {
            return Err(Rejection::Rule {
                rule: "test.refuse".into(),
                message: "refused".into(),
            }
            .into());
        }
        let n = state
            .get(b"count")?
            .map(|v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        state.put(b"count", (n + 1).to_be_bytes().to_vec());
        // `"tag": "x"` also records the note's sequence number under `tag/x`.
        if let Some(tag) = e.body().payload.get("tag").and_then(|t| t.as_str()) {
            state.put(
                format!("tag/{tag}").as_bytes(),
                e.body().seq.to_be_bytes().to_vec(),
            );
        }
        Ok(())
    }
}
