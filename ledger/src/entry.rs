//! The entry envelope and its canonical signed body (DESIGN §3), the stateless admission checks,
//! and `Verified<Envelope>`, which only [`admit`] can make — a skipped check cannot compile.
//!
//! Wire and storage form (RFC 8785 canonical JSON, the exact bytes hashed into the tree):
//! `{"body":{"coop":…,"payload":{…},"seq":…,"signer":…,"ts":…,"type":…,"v":…},"sig":"<base64>"}`.
//! The signature is Ed25519 over `b"coopledger/v1/entry\0" ‖ canonical(body)`; the entry id is
//! `SHA-256(canonical(body))`.

use crate::codec::{b64_decode, b64_encode, canonical_json, CanonicalError, MAX_SAFE_INTEGER};
use crate::hash::{leaf_hash, sha256, Hash};
use crate::sig::{verify_many, SignedMessage};
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Map, Value};
use std::ops::Deref;

/// Domain separation for entry signatures: no signature made for anything else is an entry's.
pub const SIGNING_CONTEXT: &[u8] = b"coopledger/v1/entry\0";

/// Why an entry is refused. Every variant names what was wrong; the RPC layer gives each its own
/// stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a well-formed envelope (missing or mistyped field, float, non-canonical bytes).
    #[error("field `{field}`: {reason}")]
    Malformed {
        /// JSON path of the field, e.g. `body.seq`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The encoded entry is larger than the node accepts.
    #[error("entry is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Size of the canonical envelope.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// `body.coop` names another co-op.
    #[error("field `body.coop`: entry is for co-op {got:?}, this ledger is {expected:?}")]
    WrongCoop {
        /// This ledger's origin.
        expected: String,
        /// What the entry says.
        got: String,
    },
    /// `body.type`/`body.v` is not a registered pair.
    #[error("field `body.type`: entry type {kind:?} version {version} is not accepted here")]
    UnknownType {
        /// Entry type.
        kind: String,
        /// Version.
        version: u64,
    },
    /// `body.ts` is too far from the node's clock.
    #[error(
        "field `body.ts`: {ts} ms is more than {window_ms} ms from the node's clock ({now} ms)"
    )]
    TimestampOutOfWindow {
        /// The signer's timestamp.
        ts: u64,
        /// The node's clock.
        now: u64,
        /// Allowed distance.
        window_ms: u64,
    },
    /// The signature does not verify under the coopledger rule (see `sig`).
    #[error("field `sig`: signature does not verify for body.signer")]
    BadSignature,
    /// The signer's key is not known to the co-op's state.
    #[error("field `body.signer`: key {signer} is not a key of this co-op")]
    UnknownSigner {
        /// Base64 public key.
        signer: String,
    },
    /// `body.seq` is not above the signer's last accepted sequence number.
    #[error("field `body.seq`: {got} was already used; the signer's last accepted seq is {last}")]
    Replay {
        /// Last accepted sequence number of this signer.
        last: u64,
        /// The submitted one.
        got: u64,
    },
    /// A rule of the co-op's state machine refused the entry.
    #[error("rule `{rule}`: {message}")]
    Rule {
        /// Stable rule name, e.g. `genesis.first`.
        rule: String,
        /// Human explanation naming the field.
        message: String,
    },
}

impl Rejection {
    fn malformed(field: &str, reason: impl Into<String>) -> Rejection {
        Rejection::Malformed {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<CanonicalError> for Rejection {
    fn from(e: CanonicalError) -> Rejection {
        match e {
            CanonicalError::NotASafeInteger { path } => Rejection::Malformed {
                field: path,
                reason: "numbers must be integers within ±(2^53−1); floats are not allowed".into(),
            },
        }
    }
}

/// The signed body of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The co-op (ledger origin) the entry is for; it cannot be replayed into another ledger.
    pub coop: String,
    /// Entry type, e.g. `coop.genesis`.
    pub kind: String,
    /// Version of the entry type's payload schema.
    pub version: u64,
    /// Ed25519 public key of the signer.
    pub signer: [u8; 32],
    /// Per-signer sequence number, strictly increasing (replays are refused).
    pub seq: u64,
    /// Signer's clock, milliseconds since the Unix epoch.
    pub ts: u64,
    /// Type-specific content (a JSON object).
    pub payload: Map<String, Value>,
}

impl Body {
    /// The body as a JSON value (field names as on the wire).
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "coop": self.coop,
            "type": self.kind,
            "v": self.version,
            "signer": b64_encode(self.signer),
            "seq": self.seq,
            "ts": self.ts,
            "payload": Value::Object(self.payload.clone()),
        })
    }

    /// RFC 8785 bytes of the body.
    pub fn canonical(&self) -> Result<Vec<u8>, Rejection> {
        Ok(canonical_json(&self.to_value(), "body")?)
    }

    /// Signs the body, giving a complete envelope (what a member's device does).
    pub fn sign(self, key: &SigningKey) -> Result<Envelope, Rejection> {
        let body_bytes = self.canonical()?;
        let mut msg = SIGNING_CONTEXT.to_vec();
        msg.extend_from_slice(&body_bytes);
        let sig = key.sign(&msg).to_bytes();
        Envelope::assemble(self, body_bytes, sig)
    }

    fn from_value(v: &Value) -> Result<Body, Rejection> {
        let obj = v
            .as_object()
            .ok_or_else(|| Rejection::malformed("body", "must be an object"))?;
        const FIELDS: [&str; 7] = ["coop", "type", "v", "signer", "seq", "ts", "payload"];
        if let Some(extra) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Rejection::malformed(
                &format!("body.{extra}"),
                "unknown field",
            ));
        }
        let string = |f: &str| -> Result<String, Rejection> {
            let field = format!("body.{f}");
            match obj.get(f) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => Err(Rejection::malformed(&field, "must not be empty")),
                Some(_) => Err(Rejection::malformed(&field, "must be a string")),
                None => Err(Rejection::malformed(&field, "missing")),
            }
        };
        let int = |f: &str, min: u64| -> Result<u64, Rejection> {
            let field = format!("body.{f}");
            match obj.get(f) {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .filter(|i| *i >= min && *i <= MAX_SAFE_INTEGER as u64)
                    .ok_or_else(|| {
                        Rejection::malformed(
                            &field,
                            format!("must be an integer from {min} to 2^53−1"),
                        )
                    }),
                Some(_) => Err(Rejection::malformed(&field, "must be an integer")),
                None => Err(Rejection::malformed(&field, "missing")),
            }
        };
        let kind = string("type")?;
        if !kind.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        }) {
            return Err(Rejection::malformed("body.type", "must match [a-z0-9._-]+"));
        }
        let signer = b64_decode(&string("signer")?)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| {
                Rejection::malformed("body.signer", "must be base64 of a 32-byte Ed25519 key")
            })?;
        let payload = match obj.get("payload") {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Rejection::malformed("body.payload", "must be an object")),
            None => return Err(Rejection::malformed("body.payload", "missing")),
        };
        Ok(Body {
            coop: string("coop")?,
            kind,
            version: int("v", 1)?,
            signer,
            seq: int("seq", 1)?,
            ts: int("ts", 0)?,
            payload,
        })
    }
}

/// A signed entry: body, its canonical bytes, the signature, and the canonical envelope bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    body: Body,
    body_bytes: Vec<u8>,
    sig: [u8; 64],
    bytes: Vec<u8>,
}

impl Envelope {
    /// `body_bytes` must be the body's canonical form (`Body::canonical`; the same bytes as
    /// the canonical form of the JSON it was parsed from, since every field it reads comes back
    /// unchanged — strings and integers as they were, the signer's base64 decoded strictly).
    fn assemble(body: Body, body_bytes: Vec<u8>, sig: [u8; 64]) -> Result<Envelope, Rejection> {
        // The canonical form of `{"body": body, "sig": base64(sig)}`, put together rather than
        // built as a JSON tree and serialised again: RFC 8785 orders `body` before `sig` and
        // writes no whitespace, and base64 has no character JSON escapes
        // (`envelope_bytes_are_the_canonical_form_of_the_envelope` checks it against
        // `canonical_json`).
        let sig_b64 = b64_encode(sig);
        let mut bytes = Vec::with_capacity(body_bytes.len() + sig_b64.len() + 18);
        bytes.extend_from_slice(b"{\"body\":");
        bytes.extend_from_slice(&body_bytes);
        bytes.extend_from_slice(b",\"sig\":\"");
        bytes.extend_from_slice(sig_b64.as_bytes());
        bytes.extend_from_slice(b"\"}");
        Ok(Envelope {
            body,
            body_bytes,
            sig,
            bytes,
        })
    }

    /// Parses an envelope given as a JSON value `{"body": {...}, "sig": "<base64>"}`.
    pub fn from_value(v: &Value) -> Result<Envelope, Rejection> {
        let obj = v
            .as_object()
            .ok_or_else(|| Rejection::malformed("entry", "must be an object with body and sig"))?;
        if let Some(extra) = obj.keys().find(|k| *k != "body" && *k != "sig") {
            return Err(Rejection::malformed(extra, "unknown field"));
        }
        let body_v = obj
            .get("body")
            .ok_or_else(|| Rejection::malformed("body", "missing"))?;
        // Canonicalise first so a float anywhere is reported with its path.
        let body_bytes = canonical_json(body_v, "body")?;
        let body = Body::from_value(body_v)?;
        let sig = match obj.get("sig") {
            Some(Value::String(s)) => b64_decode(s)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or_else(|| {
                    Rejection::malformed("sig", "must be base64 of a 64-byte signature")
                })?,
            Some(_) => return Err(Rejection::malformed("sig", "must be a string")),
            None => return Err(Rejection::malformed("sig", "missing")),
        };
        Envelope::assemble(body, body_bytes, sig)
    }

    /// Parses stored or transmitted envelope bytes, which must already be canonical: the bytes
    /// hashed into the tree have exactly one form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, Rejection> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Rejection::malformed("entry", format!("not JSON: {e}")))?;
        let env = Envelope::from_value(&v)?;
        if env.bytes != bytes {
            return Err(Rejection::malformed(
                "entry",
                "bytes are not the RFC 8785 canonical form",
            ));
        }
        Ok(env)
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The exact bytes stored and hashed into the tree.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.sig
    }

    /// `SHA-256(canonical(body))`: equal bodies are the same entry, whatever the signature bytes.
    pub fn entry_id(&self) -> Hash {
        sha256(&self.body_bytes)
    }

    /// RFC 9162 leaf hash of the envelope bytes.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.bytes)
    }

    /// The envelope as JSON (what `ledger_getEntry` shows as `decoded`).
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "body": self.body.to_value(), "sig": b64_encode(self.sig) })
    }

    fn signed_message(&self) -> Vec<u8> {
        let mut msg = SIGNING_CONTEXT.to_vec();
        msg.extend_from_slice(&self.body_bytes);
        msg
    }
}

/// A value whose checks have passed. Only this crate can make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Verified<T> {
    /// The inner value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

#[cfg(feature = "storage")]
impl Verified<Envelope> {
    /// An envelope this process has just signed with the node key (the sequencer's own entries):
    /// its signature holds by construction, so no check is repeated.
    pub(crate) fn signed_here(env: Envelope) -> Verified<Envelope> {
        Verified(env)
    }

    /// An envelope of a batch replication committed, proposed by another replica of this log:
    /// that replica checked its signature before proposing it, and only holders of this log's
    /// key can propose (`docs/replication.md` §1). Not checked again, so every replica applies
    /// exactly the entries the proposer admitted — the same verdicts, never a divergence.
    pub(crate) fn committed(env: Envelope) -> Verified<Envelope> {
        Verified(env)
    }
}

/// The stateless admission rules of one ledger.
#[derive(Debug, Clone)]
pub struct AdmissionPolicy {
    /// The ledger's origin: `body.coop` must equal it.
    pub coop: String,
    /// Largest canonical envelope accepted, in bytes.
    pub max_entry_bytes: usize,
    /// Allowed distance between `body.ts` and the node clock, in milliseconds.
    pub ts_window_ms: u64,
}

impl AdmissionPolicy {
    /// Size, co-op, registered type and timestamp — everything but the signature and the state.
    pub fn check(
        &self,
        env: &Envelope,
        accepts: impl Fn(&str, u64) -> bool,
        now_ms: u64,
    ) -> Result<(), Rejection> {
        if env.bytes.len() > self.max_entry_bytes {
            return Err(Rejection::TooLarge {
                size: env.bytes.len(),
                max: self.max_entry_bytes,
            });
        }
        let b = &env.body;
        if b.coop != self.coop {
            return Err(Rejection::WrongCoop {
                expected: self.coop.clone(),
                got: b.coop.clone(),
            });
        }
        if crate::state::is_ledger_type(&b.kind) || !accepts(&b.kind, b.version) {
            return Err(Rejection::UnknownType {
                kind: b.kind.clone(),
                version: b.version,
            });
        }
        if b.ts.abs_diff(now_ms) > self.ts_window_ms {
            return Err(Rejection::TimestampOutOfWindow {
                ts: b.ts,
                now: now_ms,
                window_ms: self.ts_window_ms,
            });
        }
        Ok(())
    }
}

/// Checks the signatures of many envelopes at once (batched, spread over all cores) and wraps
/// the good ones as `Verified`. The verdict for each is exactly that of checking it alone.
pub fn admit(envelopes: Vec<Envelope>) -> Vec<Result<Verified<Envelope>, Rejection>> {
    use rayon::prelude::*;
    const CHUNK: usize = 64;
    let msgs: Vec<Vec<u8>> = envelopes.iter().map(Envelope::signed_message).collect();
    let verdicts: Vec<bool> = envelopes
        .par_chunks(CHUNK)
        .zip(msgs.par_chunks(CHUNK))
        .flat_map_iter(|(envs, msgs)| {
            let items: Vec<SignedMessage<'_>> = envs
                .iter()
                .zip(msgs)
                .map(|(e, m)| SignedMessage {
                    key: &e.body.signer,
                    msg: m,
                    sig: &e.sig,
                })
                .collect();
            verify_many(&items)
        })
        .collect();
    envelopes
        .into_iter()
        .zip(verdicts)
        .map(|(e, ok)| {
            if ok {
                Ok(Verified(e))
            } else {
                Err(Rejection::BadSignature)
            }
        })
        .collect()
}

/// Re-checks one stored envelope (for offline verification of a proof file).
pub fn verify_stored(bytes: &[u8]) -> Result<Verified<Envelope>, Rejection> {
    let env = Envelope::from_bytes(bytes)?;
    admit(vec![env])
        .pop()
        .unwrap_or(Err(Rejection::BadSignature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn body(seq: u64) -> Body {
        Body {
            coop: "coop.example/demo".into(),
            kind: "coop.attest".into(),
            version: 1,
            signer: key().verifying_key().to_bytes(),
            seq,
            ts: 1_700_000_000_000,
            payload: json!({"digest": "abc", "n": 3})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn envelope_round_trips_through_its_canonical_bytes() {
        let env = body(1).sign(&key()).unwrap();
        let back = Envelope::from_bytes(env.bytes()).unwrap();
        assert_eq!(back, env);
        assert_eq!(Envelope::from_value(&env.to_value()).unwrap(), env);
        let text = std::str::from_utf8(env.bytes()).unwrap();
        assert!(
            text.starts_with(
                r#"{"body":{"coop":"coop.example/demo","payload":{"digest":"abc","n":3},"seq":1,"#
            ),
            "{text}"
        );
        assert!(verify_stored(env.bytes()).is_ok());
    }

    /// The envelope's bytes are put together from the body's canonical bytes (`assemble`):
    /// they must be exactly `canonical_json` of the whole envelope, for payloads with escapes,
    /// control characters, non-ASCII text, nesting and large integers, whether the entry was
    /// signed here or parsed from JSON written in another order.
    #[test]
    fn envelope_bytes_are_the_canonical_form_of_the_envelope() {
        let payloads = [
            json!({}),
            json!({"digest": "abc", "n": 3}),
            json!({"quote": "say \"hi\"", "slash": "a/b\\c", "ctl": "\u{1}\u{8}\t\n\u{c}\r\u{1f}"}),
            json!({"text": "Zoë – 配当 🚲", "nested": {"z": [1, {"b": "x", "a": null}], "a": true}}),
            json!({"max": 9_007_199_254_740_991u64, "zero": 0, "list": [[], {}, ""]}),
        ];
        for (seq, payload) in (1u64..).zip(payloads) {
            let mut b = body(seq);
            b.payload = payload.as_object().unwrap().clone();
            let env = b.sign(&key()).unwrap();
            let whole = json!({"body": env.body().to_value(), "sig": b64_encode(env.signature())});
            assert_eq!(env.bytes(), canonical_json(&whole, "").unwrap().as_slice());
            // The same entry as JSON with its members in another order and with whitespace.
            let text = format!(
                "{{ \"sig\" : {}, \"body\" : {} }}",
                serde_json::to_string(&whole["sig"]).unwrap(),
                serde_json::to_string_pretty(&whole["body"]).unwrap()
            );
            let parsed = Envelope::from_value(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(parsed.bytes(), env.bytes());
            assert_eq!(parsed.entry_id(), env.entry_id());
            assert_eq!(Envelope::from_bytes(env.bytes()).unwrap(), env);
        }
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let env = body(1).sign(&key()).unwrap();
        let pretty = serde_json::to_vec_pretty(&env.to_value()).unwrap();
        assert!(
            matches!(Envelope::from_bytes(&pretty), Err(Rejection::Malformed { field, .. }) if field == "entry")
        );
    }

    #[test]
    fn entry_id_ignores_the_signature_but_leaf_hash_does_not() {
        let a = body(1).sign(&key()).unwrap();
        let mut v = a.to_value();
        v["sig"] = json!(b64_encode([0u8; 64]));
        let b = Envelope::from_value(&v).unwrap();
        assert_eq!(a.entry_id(), b.entry_id());
        assert_ne!(a.leaf_hash(), b.leaf_hash());
        assert!(admit(vec![b]).pop().unwrap().is_err());
    }

    #[test]
    fn malformed_fields_are_named() {
        let env = body(1).sign(&key()).unwrap();
        let cases: Vec<(&str, Value)> = vec![
            ("body.seq", json!({"body": {"seq": "one"}})),
            ("body.payload.x", json!(null)),
            ("body.extra", json!(null)),
            ("sig", json!(null)),
            ("body.signer", json!(null)),
        ];
        for (field, _) in &cases {
            let mut v = env.to_value();
            match *field {
                "body.seq" => v["body"]["seq"] = json!("one"),
                "body.payload.x" => v["body"]["payload"]["x"] = json!(1.5),
                "body.extra" => v["body"]["extra"] = json!(1),
                "sig" => v["sig"] = json!("AAAA"),
                "body.signer" => v["body"]["signer"] = json!("AAAA"),
                _ => unreachable!(),
            }
            match Envelope::from_value(&v) {
                Err(Rejection::Malformed { field: f, .. }) => assert_eq!(&f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn admission_policy_checks_each_rule() {
        let policy = AdmissionPolicy {
            coop: "coop.example/demo".into(),
            max_entry_bytes: 4096,
            ts_window_ms: 1000,
        };
        let now = 1_700_000_000_000;
        let env = body(1).sign(&key()).unwrap();
        let yes = |_: &str, _: u64| true;
        assert!(policy.check(&env, yes, now).is_ok());
        assert!(matches!(
            policy.check(&env, |_, _| false, now),
            Err(Rejection::UnknownType { .. })
        ));
        assert!(matches!(
            policy.check(&env, yes, now + 1001),
            Err(Rejection::TimestampOutOfWindow { .. })
        ));
        let other = AdmissionPolicy {
            coop: "x".into(),
            ..policy.clone()
        };
        assert!(matches!(
            other.check(&env, yes, now),
            Err(Rejection::WrongCoop { .. })
        ));
        let small = AdmissionPolicy {
            max_entry_bytes: 10,
            ..policy
        };
        assert!(matches!(
            small.check(&env, yes, now),
            Err(Rejection::TooLarge { .. })
        ));
    }
}
