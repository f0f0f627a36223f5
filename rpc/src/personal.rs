//! Members' personal data, kept off the log (DESIGN §7): each member's attributes are encrypted
//! (ChaCha20-Poly1305) under a key of their own in the node's off-log store; the log holds only
//! the salted commitments of their `member.profile` entry. Erasure destroys the key and the
//! data and rewrites storage so neither is left in any file (`Log::offlog_shred`); the
//! commitments in the log can then be neither opened nor guessed, and every proof still holds.
//!
//! Off-log keys: `pii-key/<member>` → the 32-byte data key; `pii-data/<member>` → 12-byte
//! nonce ‖ ciphertext of `{"<attribute>": {"value": …, "salt": …}}`, bound to the member id.

use crate::api::{PersonalApiServer, RpcResult};
use crate::error;
use crate::server::parse_entry;
use crate::wire::SubmitResult;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use coopledger_governance::personal::{self, commitment};
use coopledger_governance::records;
use coopledger_governance::{CoopRules, MemberStatus, Role};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::log::now_ms;
use coopledger_ledger::sig::{verify_one, SignedMessage};
use coopledger_ledger::store::StoreError;
use coopledger_ledger::Log;
use jsonrpsee::core::async_trait;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Domain separation of a signed read request: `context ‖ member ‖ ts (8 bytes BE)`.
pub const READ_CONTEXT: &[u8] = b"coopledger/v1/personal-read\0";
const AAD_CONTEXT: &[u8] = b"coopledger/v1/pii\0";
/// How far a read request's `ts` may be from the node clock.
const READ_WINDOW_MS: u64 = 300_000;

/// One attribute as the member sends it: the value and the salt its commitment used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// The value in clear (never written to disk unencrypted, never on the log).
    pub value: String,
    /// Base64 of the 32-byte random salt.
    pub salt: String,
}

/// What `personal_erase` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureResult {
    /// The erasure entry's receipt.
    pub receipt: SubmitResult,
    /// True once the member's key and data are in no file of the node.
    pub destroyed: bool,
}

fn key_key(member: &str) -> Vec<u8> {
    [b"pii-key/".as_slice(), member.as_bytes()].concat()
}
fn data_key(member: &str) -> Vec<u8> {
    [b"pii-data/".as_slice(), member.as_bytes()].concat()
}
fn aad(member: &str) -> Vec<u8> {
    [AAD_CONTEXT, member.as_bytes()].concat()
}

/// The off-log personal-data store of one node.
#[derive(Debug, Clone)]
pub struct PersonalData {
    log: Arc<Log<CoopRules>>,
}

impl PersonalData {
    /// The store over `log`'s off-log records.
    pub fn new(log: Arc<Log<CoopRules>>) -> PersonalData {
        PersonalData { log }
    }

    /// Encrypts and stores `attrs` under the member's key (made on first use). Both writes are
    /// fsync'd before this returns.
    fn store(&self, member: &str, attrs: &BTreeMap<String, Attribute>) -> Result<(), StoreError> {
        let key = match self.log.offlog_get(&key_key(member))? {
            Some(k) if k.len() == 32 => k,
            _ => {
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                self.log.offlog_put(&key_key(member), &k)?;
                k
            }
        };
        let plain = serde_json::to_vec(attrs)
            .map_err(|e| StoreError::Corrupt(format!("personal data: {e}")))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = ChaCha20Poly1305::new(Key::from_slice(&key))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(member),
                },
            )
            .map_err(|_| StoreError::Corrupt("cannot encrypt personal data".into()))?;
        self.log
            .offlog_put(&data_key(member), &[nonce.as_slice(), &sealed].concat())
    }

    /// The member's attributes, decrypted; `None` if none are stored (or they were erased).
    pub fn read(&self, member: &str) -> Result<Option<BTreeMap<String, Attribute>>, StoreError> {
        let (Some(key), Some(data)) = (
            self.log.offlog_get(&key_key(member))?,
            self.log.offlog_get(&data_key(member))?,
        ) else {
            return Ok(None);
        };
        let (nonce, sealed) = data.split_at(12.min(data.len()));
        if key.len() != 32 || nonce.len() != 12 {
            return Err(StoreError::Corrupt(format!("personal data of {member}")));
        }
        let plain = ChaCha20Poly1305::new(Key::from_slice(&key))
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(member),
                },
            )
            .map_err(|_| {
                StoreError::Corrupt(format!("personal data of {member} does not decrypt"))
            })?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("personal data of {member}: {e}")))
    }

    /// Carries out every erasure the log has ordered whose key or data is still stored; returns
    /// how many members' data it destroyed. Run at start-up and after each checkpoint, so an
    /// erasure acknowledged just before a crash is still carried out.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let mut keys = Vec::new();
        let mut members = 0;
        for m in personal::erased_members(self.log.as_ref())? {
            let (k, d) = (key_key(&m), data_key(&m));
            let held = self.log.offlog_get(&k)?.is_some() || self.log.offlog_get(&d)?.is_some();
            if held {
                keys.push(k);
                keys.push(d);
                members += 1;
            }
        }
        if !keys.is_empty() {
            self.log.offlog_shred(&keys)?;
        }
        Ok(members)
    }

    /// True while any key or data of `member` is stored.
    pub fn holds(&self, member: &str) -> Result<bool, StoreError> {
        Ok(self.log.offlog_get(&key_key(member))?.is_some()
            || self.log.offlog_get(&data_key(member))?.is_some())
    }
}

pub(crate) struct PersonalRpc {
    pub(crate) data: PersonalData,
}

impl PersonalRpc {
    fn log(&self) -> &Log<CoopRules> {
        &self.data.log
    }

    /// Checks a read request: `signer` (base64 key) signed `READ_CONTEXT ‖ member ‖ ts` and is a
    /// current key of the member, or of an active board member.
    fn authorise_read(&self, member: &str, ts: u64, signer: &str, sig: &str) -> RpcResult<()> {
        if ts.abs_diff(now_ms()) > READ_WINDOW_MS {
            return Err(error::invalid_param(
                "ts",
                "must be within 5 minutes of the node clock",
            ));
        }
        let key: [u8; 32] = b64_decode(signer)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| error::invalid_param("signer", "must be base64 of a 32-byte key"))?;
        let sig: [u8; 64] = b64_decode(sig)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| error::invalid_param("sig", "must be base64 of a 64-byte signature"))?;
        let msg = [READ_CONTEXT, member.as_bytes(), &ts.to_be_bytes()].concat();
        if !verify_one(&SignedMessage {
            key: &key,
            msg: &msg,
            sig: &sig,
        }) {
            return Err(error::invalid_param("sig", "does not verify for signer"));
        }
        let state = self.log();
        let k = records::key(state, &key)
            .map_err(|e| error::storage(&e))?
            .filter(|k| k.revoked.is_none());
        let allowed = match k {
            Some(k) if k.member == member => true,
            Some(k) => records::member(state, &k.member)
                .map_err(|e| error::storage(&e))?
                .is_some_and(|m| {
                    m.status == MemberStatus::Active && m.roles.contains(&Role::Board)
                }),
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(error::forbidden(
                "signer",
                "personal data is read only by the member or the board",
            ))
        }
    }
}

#[async_trait]
impl PersonalApiServer for PersonalRpc {
    async fn submit(
        &self,
        entry: Value,
        attributes: BTreeMap<String, Attribute>,
    ) -> RpcResult<SubmitResult> {
        let env = parse_entry(&entry)?;
        let body = env.body();
        if body.kind != "member.profile" {
            return Err(error::invalid_param(
                "entry",
                "must be a member.profile entry",
            ));
        }
        let member = body
            .payload
            .get("member")
            .and_then(Value::as_str)
            .ok_or_else(|| error::invalid_param("entry", "body.payload.member is missing"))?
            .to_owned();
        let committed = body
            .payload
            .get("attributes")
            .and_then(Value::as_object)
            .ok_or_else(|| error::invalid_param("entry", "body.payload.attributes is missing"))?;
        if let Some(extra) = attributes.keys().find(|k| !committed.contains_key(*k)) {
            return Err(error::invalid_param(
                &format!("attributes.{extra}"),
                "has no commitment in the entry",
            ));
        }
        for (name, c) in committed {
            let field = format!("attributes.{name}");
            let a = attributes
                .get(name)
                .ok_or_else(|| error::invalid_param(&field, "the entry commits to it; send it"))?;
            let salt: [u8; 32] = b64_decode(&a.salt)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| {
                    error::invalid_param(&format!("{field}.salt"), "must be base64 of 32 bytes")
                })?;
            if c.as_str() != Some(b64_encode(commitment(&salt, &a.value)).as_str()) {
                return Err(error::invalid_param(
                    &field,
                    "value and salt do not open the entry's commitment",
                ));
            }
        }
        if let Some(e) = personal::record(self.log(), &member)
            .map_err(|e| error::storage(&e))?
            .and_then(|r| r.erased)
        {
            return Err(error::rejection(&coopledger_ledger::Rejection::Rule {
                rule: "pii.erased".into(),
                message: format!(
                    "body.payload.member: the personal data of {member} was erased at index {}",
                    e.index
                ),
            }));
        }
        // Data first (encrypted, fsync'd), then the entry that commits to it; if the entry is
        // refused the data goes again, so nothing is kept that the log does not account for.
        let previous = self.data.read(&member).map_err(|e| error::storage(&e))?;
        self.data
            .store(&member, &attributes)
            .map_err(|e| error::storage(&e))?;
        match self.log().submit(env).await {
            Ok(r) => Ok(SubmitResult::from(&r)),
            Err(e) => {
                let undo = match &previous {
                    Some(p) => self.data.store(&member, p),
                    None => self
                        .log()
                        .offlog_shred(&[key_key(&member), data_key(&member)]),
                };
                if let Err(u) = undo {
                    tracing::error!(error = %u, "cannot undo personal data of a refused profile");
                }
                Err(error::submit(&e))
            }
        }
    }

    async fn read(
        &self,
        member: String,
        ts: u64,
        signer: String,
        sig: String,
    ) -> RpcResult<BTreeMap<String, String>> {
        self.authorise_read(&member, ts, &signer, &sig)?;
        let attrs = self
            .data
            .read(&member)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "member",
                    format!("no personal data of {member} is held (none given, or erased)"),
                )
            })?;
        Ok(attrs.into_iter().map(|(k, a)| (k, a.value)).collect())
    }

    async fn erase(&self, entry: Value) -> RpcResult<ErasureResult> {
        let env = parse_entry(&entry)?;
        if env.body().kind != "member.erase" {
            return Err(error::invalid_param(
                "entry",
                "must be a member.erase entry",
            ));
        }
        let member = env
            .body()
            .payload
            .get("member")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let r = self
            .log()
            .submit(env)
            .await
            .map_err(|e| error::submit(&e))?;
        let data = self.data.clone();
        let destroyed = tokio::task::spawn_blocking(move || -> Result<bool, StoreError> {
            data.sweep()?;
            Ok(!data.holds(&member)?)
        })
        .await
        .map_err(|e| error::corrupt(format!("erasure task: {e}")))?
        .map_err(|e| error::storage(&e))?;
        Ok(ErasureResult {
            receipt: SubmitResult::from(&r),
            destroyed,
        })
    }
}
