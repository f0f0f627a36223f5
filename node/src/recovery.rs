//! Recovery kits: a member's backup key, sealed in their browser under a recovery code the node
//! never sees, kept by the node so a member who lost their device can give a new one their
//! membership (docs/portal.md, "Recovery").
//!
//! The member's device makes a backup key, registers it with an ordinary `member.key_add`
//! (label `recovery`), and seals its private key under a key derived from a recovery code shown
//! once. The node receives the `member.key_add` entry, the sealed kit and a *locator* (also
//! derived from the code, one-way): it stores the kit under the locator only once the rules
//! have accepted the entry (DESIGN §11, "off-log writes follow the rules' acceptance"). A new
//! device derives the locator from the code, fetches the kit, opens it, and signs a
//! `member.key_add` for itself with the backup key.
//!
//! What the node holds cannot open a kit (the code has 120 bits of entropy, a passkey's PRF output 256 and only its
//! one-way derivations reach the node); a kit whose backup key has been revoked, or whose
//! member has left, is not handed out. A new backup key's kit drops the previous key's kits.
//!
//! One backup key may be sealed more than once — under the recovery code, and under a passkey's
//! PRF output — each kit stored by sending the same `member.key_add` again (the log answers a
//! resubmitted entry with its first receipt) with its own locator.
//!
//! Off-log keys: `recovery/<locator hex>` → JSON [`Kit`]; `recovery-of/<member>` → JSON
//! `{key, locators}`: the member's current backup key and its kits' locators. Fault table: a
//! crash after the entry and before the kit is stored leaves a backup key without a kit (the
//! member's retry of the same entry gets the same receipt and stores it; the portal revokes older
//! `recovery` keys when it makes a new one); a crash between a kit and its pointer leaves an
//! earlier key's kits in place, never handed out once that key is revoked.

use coopledger_governance::records;
use coopledger_governance::CoopRules;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{Envelope, Log, Receipt, Rejection, SubmitError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Largest sealed kit accepted, in bytes (a sealed PKCS #8 Ed25519 key is 76).
pub const MAX_KIT_BYTES: usize = 512;
/// Smallest: a nonce and an authentication tag.
pub const MIN_KIT_BYTES: usize = 28;

/// A stored recovery kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kit {
    /// The member the backup key belongs to.
    pub member: String,
    /// The backup key (base64 of its 32-byte public key).
    pub key: String,
    /// The sealed private key, as the member's device made it (base64).
    pub sealed: String,
    /// Log index of the `member.key_add` entry that registered the backup key.
    pub index: u64,
}

/// Why a kit was not stored.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A request field is wrong (named as the caller sent it).
    #[error("{field}: {reason}")]
    Field {
        /// The field, e.g. `locator`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The co-op's rules refused the entry.
    #[error(transparent)]
    Rejected(Rejection),
    /// The log did not take the entry.
    #[error(transparent)]
    Submit(SubmitError),
    /// The off-log store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl From<SubmitError> for KitError {
    fn from(e: SubmitError) -> KitError {
        match e {
            SubmitError::Rejected(r) => KitError::Rejected(r),
            other => KitError::Submit(other),
        }
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> KitError {
    KitError::Field {
        field,
        reason: reason.into(),
    }
}

fn kit_key(locator: &[u8; 32]) -> Vec<u8> {
    [b"recovery/".as_slice(), hex::encode(locator).as_bytes()].concat()
}

fn pointer_key(member: &str) -> Vec<u8> {
    [b"recovery-of/".as_slice(), member.as_bytes()].concat()
}

/// `recovery-of/<member>`: the member's current backup key and where its kits are.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pointer {
    key: String,
    /// Log index of the key's `member.key_add`.
    index: u64,
    locators: Vec<String>,
}

/// Most kits one backup key may have (the code, a passkey or two).
pub const MAX_KITS_PER_KEY: usize = 4;

/// The node's recovery kits.
#[derive(Debug, Clone)]
pub struct RecoveryKits {
    log: Arc<Log<CoopRules>>,
    /// Held while a kit and its pointer are written, so two stores for one member do not
    /// interleave.
    writes: Arc<Mutex<()>>,
}

impl RecoveryKits {
    /// The kits kept in `log`'s off-log records.
    pub fn new(log: Arc<Log<CoopRules>>) -> RecoveryKits {
        RecoveryKits {
            log,
            writes: Arc::default(),
        }
    }

    /// Submits `entry` (a `member.key_add` registering the backup key) and, once the rules
    /// accepted it, stores `sealed` under `locator` for the member. Returns the entry's receipt.
    pub async fn store(
        &self,
        entry: Envelope,
        locator: [u8; 32],
        sealed: Vec<u8>,
    ) -> Result<Receipt, KitError> {
        let body = entry.body();
        if body.kind != "member.key_add" {
            return Err(field(
                "entry",
                "must be the member.key_add entry of the backup key",
            ));
        }
        let key: [u8; 32] = body
            .payload
            .get("key")
            .and_then(Value::as_str)
            .and_then(|k| b64_decode(k).ok())
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| field("entry", "body.payload.key must be base64 of 32 bytes"))?;
        if !(MIN_KIT_BYTES..=MAX_KIT_BYTES).contains(&sealed.len()) {
            return Err(field(
                "kit",
                format!("must be {MIN_KIT_BYTES} to {MAX_KIT_BYTES} bytes"),
            ));
        }
        if let Some(held) = self.read(&locator)? {
            if held.key != b64_encode(key) {
                return Err(field(
                    "locator",
                    "already holds another key's kit; make a new recovery code",
                ));
            }
        }
        // The rules decide first; nothing is written for an entry they refuse.
        let receipt = self.log.submit(entry).await?;
        let this = self.clone();
        let index = receipt.index;
        tokio::task::spawn_blocking(move || this.store_accepted(&key, index, &locator, &sealed))
            .await
            .map_err(|e| StoreError::Corrupt(format!("recovery task: {e}")))??;
        Ok(receipt)
    }

    /// Stores the kit of the accepted backup key `key`, registered at `index`, beside the other
    /// kits of that key (a code and a passkey each seal it), and drops the kits of the member's
    /// previous backup key.
    fn store_accepted(
        &self,
        key: &[u8; 32],
        index: u64,
        locator: &[u8; 32],
        sealed: &[u8],
    ) -> Result<(), KitError> {
        let _held = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rec = records::key(self.log.as_ref(), key)?
            .ok_or_else(|| StoreError::Corrupt("an accepted key is not in the state".into()))?;
        let kit = Kit {
            member: rec.member.clone(),
            key: b64_encode(key),
            sealed: b64_encode(sealed),
            index,
        };
        let bytes = serde_json::to_vec(&kit)
            .map_err(|e| StoreError::Corrupt(format!("recovery kit: {e}")))?;
        if rec.revoked.is_some() {
            return Err(field("entry", "this backup key has been revoked"));
        }
        let mut kept: Vec<String> = match self.kits_of(&rec.member)? {
            Some(p) if p.key == kit.key => p.locators,
            // A replay of an older backup key's entry (it is public) must not drop the kits of
            // the member's newer one.
            Some(p) if p.index > index => {
                return Err(field(
                    "entry",
                    "the member has a newer backup key; this one's kits are not kept",
                ))
            }
            Some(p) => {
                for l in &p.locators {
                    self.log
                        .offlog_delete(&[b"recovery/".as_slice(), l.as_bytes()].concat())?;
                }
                vec![]
            }
            None => vec![],
        };
        let hex_locator = hex::encode(locator);
        if !kept.contains(&hex_locator) {
            if kept.len() >= MAX_KITS_PER_KEY {
                return Err(field(
                    "locator",
                    format!("this backup key already has {MAX_KITS_PER_KEY} kits"),
                ));
            }
            kept.push(hex_locator);
        }
        self.log.offlog_put(&kit_key(locator), &bytes)?;
        let pointer = Pointer {
            key: kit.key,
            index,
            locators: kept,
        };
        let pointer = serde_json::to_vec(&pointer)
            .map_err(|e| StoreError::Corrupt(format!("recovery pointer: {e}")))?;
        self.log.offlog_put(&pointer_key(&rec.member), &pointer)?;
        Ok(())
    }

    /// The member's current backup key and the locators of its kits.
    fn kits_of(&self, member: &str) -> Result<Option<Pointer>, StoreError> {
        self.log
            .offlog_get(&pointer_key(member))?
            .map(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Corrupt(format!("recovery pointer: {e}")))
            })
            .transpose()
    }

    fn read(&self, locator: &[u8; 32]) -> Result<Option<Kit>, StoreError> {
        self.log
            .offlog_get(&kit_key(locator))?
            .map(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Corrupt(format!("recovery kit: {e}")))
            })
            .transpose()
    }

    /// The kit under `locator`, if one is held whose backup key is still a current key of a
    /// member (active or suspended).
    pub fn fetch(&self, locator: &[u8; 32]) -> Result<Option<Kit>, StoreError> {
        let Some(kit) = self.read(locator)? else {
            return Ok(None);
        };
        let key: Option<[u8; 32]> = b64_decode(&kit.key).ok().and_then(|k| k.try_into().ok());
        let Some(key) = key else {
            return Err(StoreError::Corrupt("recovery kit key".into()));
        };
        let state = self.log.as_ref();
        let current = records::key(state, &key)?
            .is_some_and(|k| k.revoked.is_none() && k.member == kit.member)
            && records::member(state, &kit.member)?.is_some_and(|m| m.status.is_member());
        Ok(current.then_some(kit))
    }
}
