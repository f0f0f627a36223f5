//! The personal-data vault (DESIGN §7): members' attributes, kept off the log, each member's
//! encrypted (ChaCha20-Poly1305) under a key of their own in the node's off-log store; the log
//! holds only the salted commitments of their `member.profile` entry. Erasure destroys the key
//! and the data and rewrites storage so neither is left in any file (`Log::offlog_shred`); the
//! commitments in the log can then be neither opened nor guessed, and every proof still holds.
//!
//! Order of writes (DESIGN §11, "off-log writes follow the rules' acceptance"): a profile's
//! entry is sequenced first; only once the rules accepted it, and only while it is still the
//! member's latest profile and the member is not erased, is the data stored — under the vault's
//! one write lock, which the erasure sweep also takes. A refused entry writes nothing; a crash
//! after the entry and before the data leaves the commitment without data, and the member's
//! retry (the same entry: the same receipt) stores it.
//!
//! Keys: each member's data key is stored *wrapped* under the vault key (a key-encryption key
//! that is not in the data folder: `VaultKey`, from a 0600 file beside it or from the
//! environment), so the data folder alone decrypts nothing.
//!
//! Off-log keys: `pii-key/<member>` → `0x01 ‖ 12-byte nonce ‖ ChaCha20-Poly1305(vault key,
//! data key)` (associated data `"coopledger/v1/pii-key\0" ‖ member`; a bare 32-byte key is
//! the format before wrapping, wrapped at start-up); `pii-data/<member>` → 12-byte nonce ‖
//! ciphertext of `{"<attribute>": {"value": …, "salt": …}}` under the data key, bound to the
//! member id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use coopledger_governance::personal::{self, commitment};
use coopledger_governance::records;
use coopledger_governance::{CoopRules, MemberStatus, Role};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::log::now_ms;
use coopledger_ledger::sig::{verify_one, SignedMessage};
use coopledger_ledger::store::StoreError;
use coopledger_ledger::{Envelope, Log, Receipt, Rejection, SubmitError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Domain separation of a signed read request; the message is [`read_message`].
pub const READ_CONTEXT: &[u8] = b"coopledger/v2/personal-read\0";
const AAD_CONTEXT: &[u8] = b"coopledger/v1/pii\0";
/// A read request is valid from `ts − READ_AHEAD_MS` (clocks differ)…
const READ_AHEAD_MS: u64 = 5_000;
/// …to `ts + READ_VALID_MS`; its nonce is remembered that long.
const READ_VALID_MS: u64 = 30_000;
/// Nonces remembered at most (a flood of valid requests past this is refused until some expire).
const MAX_NONCES: usize = 100_000;

/// What a member (or board member) signs to read personal data: the method's context, the
/// co-op, the member, the time and a fresh nonce, so a request is good for one read, on one
/// co-op's node, for 30 seconds:
/// `"coopledger/v2/personal-read\0" ‖ origin ‖ 0x00 ‖ member ‖ 0x00 ‖ ts (u64 BE) ‖ nonce (16)`.
pub fn read_message(origin: &str, member: &str, ts: u64, nonce: &[u8; 16]) -> Vec<u8> {
    [
        READ_CONTEXT,
        origin.as_bytes(),
        &[0],
        member.as_bytes(),
        &[0],
        &ts.to_be_bytes(),
        nonce,
    ]
    .concat()
}

/// One attribute as the member sends it: the value and the salt its commitment used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// The value in clear (never written to disk unencrypted, never on the log).
    pub value: String,
    /// Base64 of the 32-byte random salt.
    pub salt: String,
}

/// Why the vault refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A request field is wrong (named as the caller sent it).
    #[error("{field}: {reason}")]
    Field {
        /// The field, e.g. `attributes.name.salt`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The signer may not do this.
    #[error("{field}: {reason}")]
    Forbidden {
        /// The field naming the signer.
        field: &'static str,
        /// Why not.
        reason: &'static str,
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

impl From<SubmitError> for VaultError {
    fn from(e: SubmitError) -> VaultError {
        match e {
            SubmitError::Rejected(r) => VaultError::Rejected(r),
            other => VaultError::Submit(other),
        }
    }
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> VaultError {
    VaultError::Field {
        field: field.into(),
        reason: reason.into(),
    }
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

const WRAP_CONTEXT: &[u8] = b"coopledger/v1/pii-key\0";
const WRAPPED: u8 = 0x01;
const WRAPPED_LEN: usize = 1 + 12 + 32 + 16;

/// The vault key: the key-encryption key under which every member's data key is wrapped. It is
/// kept out of the data folder (a 0600 file beside it, or the `COOP_VAULT_KEY` environment
/// variable, base64 of 32 bytes); back it up with the data folder, or the data is lost.
#[derive(Clone)]
pub struct VaultKey([u8; 32]);

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey(..)")
    }
}

/// Why the vault key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum VaultKeyError {
    /// The file system refused.
    #[error("vault key file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file or variable does not hold base64 of 32 bytes.
    #[error("vault key {0}: must be base64 of 32 bytes")]
    Malformed(String),
}

impl VaultKey {
    /// From raw bytes (tests, or a key held elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> VaultKey {
        VaultKey(bytes)
    }

    /// From base64 text (the file's content or the environment variable).
    pub fn parse(what: &str, text: &str) -> Result<VaultKey, VaultKeyError> {
        b64_decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(VaultKey)
            .ok_or_else(|| VaultKeyError::Malformed(what.to_owned()))
    }

    /// Reads the key file at `path`; if there is none and `create` is true, makes a new random
    /// key there (mode 0600, fsync'd).
    pub fn load(path: &std::path::Path, create: bool) -> Result<Option<VaultKey>, VaultKeyError> {
        let io = |source| VaultKeyError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return VaultKey::parse(&path.display().to_string(), &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(format!("{}\n", b64_encode(k)).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Some(VaultKey(k)))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    fn wrap(&self, member: &str, data_key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: data_key,
                    aad: &[WRAP_CONTEXT, member.as_bytes()].concat(),
                },
            )
            .map_err(|_| StoreError::Corrupt("cannot wrap a data key".into()))?;
        Ok([&[WRAPPED], nonce.as_slice(), &sealed].concat())
    }

    fn unwrap_key(&self, member: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let bad = || {
            StoreError::Corrupt(format!(
                "the data key of {member} does not unwrap under this vault key (wrong \
                 --vault-key?)"
            ))
        };
        if stored.len() != WRAPPED_LEN || stored.first() != Some(&WRAPPED) {
            return Err(bad());
        }
        let (nonce, sealed) = stored.get(1..).unwrap_or_default().split_at(12);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &[WRAP_CONTEXT, member.as_bytes()].concat(),
                },
            )
            .map_err(|_| bad())
    }
}

/// True when `log`'s vault holds a member's data key wrapped (so the vault key that wrapped it
/// must already exist). Bare keys of a folder from before wrapping do not count: a new vault
/// key may be made for them.
pub fn holds_wrapped_key(log: &Log<CoopRules>) -> Result<bool, StoreError> {
    Ok(log
        .offlog_scan(b"pii-key/")?
        .iter()
        .any(|(_, v)| v.len() != 32))
}

/// The off-log personal-data store of one node.
#[derive(Debug, Clone)]
pub struct Vault {
    log: Arc<Log<CoopRules>>,
    /// Held while data is stored or shredded, so "still the latest profile, not erased" and the
    /// write that relies on it are one step against every other writer.
    writes: Arc<Mutex<()>>,
    /// Nonces of read requests seen, with when they expire (ms).
    nonces: Arc<Mutex<std::collections::HashMap<[u8; 16], u64>>>,
    /// Wraps every member's data key.
    key: VaultKey,
}

impl Vault {
    /// The vault over `log`'s off-log records, its data keys wrapped under `key`.
    pub fn new(log: Arc<Log<CoopRules>>, key: VaultKey) -> Vault {
        Vault {
            log,
            writes: Arc::new(Mutex::new(())),
            nonces: Arc::default(),
            key,
        }
    }

    /// Wraps every data key still stored bare (the format before wrapping); returns how many.
    /// Run at start-up, before anything reads the vault.
    pub fn wrap_bare_keys(&self) -> Result<usize, StoreError> {
        let _held = self.lock();
        let mut n = 0;
        for (k, v) in self.log.offlog_scan(b"pii-key/")? {
            if v.len() == 32 {
                let member = String::from_utf8_lossy(k.get(8..).unwrap_or_default()).into_owned();
                let wrapped = self.key.wrap(&member, &v)?;
                self.log.offlog_put(&k, &wrapped)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The member's data key, unwrapped; `None` if none is stored.
    fn data_key_of(&self, member: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.log
            .offlog_get(&key_key(member))?
            .map(|stored| self.key.unwrap_key(member, &stored))
            .transpose()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is the store itself, whose writes are atomic; a panic elsewhere
        // leaves nothing half-done to protect.
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a member's profile: checks the attributes open the entry's commitments, submits
    /// the entry, and — only once the rules accepted it — stores the data encrypted. Returns the
    /// entry's receipt.
    pub async fn submit_profile(
        &self,
        env: Envelope,
        attributes: BTreeMap<String, Attribute>,
    ) -> Result<Receipt, VaultError> {
        let body = env.body();
        if body.kind != "member.profile" {
            return Err(field("entry", "must be a member.profile entry"));
        }
        let member = body
            .payload
            .get("member")
            .and_then(Value::as_str)
            .ok_or_else(|| field("entry", "body.payload.member is missing"))?
            .to_owned();
        let committed = body
            .payload
            .get("attributes")
            .and_then(Value::as_object)
            .ok_or_else(|| field("entry", "body.payload.attributes is missing"))?;
        if let Some(extra) = attributes.keys().find(|k| !committed.contains_key(*k)) {
            return Err(field(
                format!("attributes.{extra}"),
                "has no commitment in the entry",
            ));
        }
        for (name, c) in committed {
            let f = format!("attributes.{name}");
            let a = attributes
                .get(name)
                .ok_or_else(|| field(&f, "the entry commits to it; send it"))?;
            let salt: [u8; 32] = b64_decode(&a.salt)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| field(format!("{f}.salt"), "must be base64 of 32 bytes"))?;
            if c.as_str() != Some(b64_encode(commitment(&salt, &a.value)).as_str()) {
                return Err(field(
                    f,
                    "value and salt do not open the entry's commitment",
                ));
            }
        }
        // The rules decide first; nothing is written for an entry they refuse.
        let receipt = self.log.submit(env).await?;
        let vault = self.clone();
        let index = receipt.index;
        tokio::task::spawn_blocking(move || vault.store_accepted(&member, index, &attributes))
            .await
            .map_err(|e| StoreError::Corrupt(format!("personal-data task: {e}")))??;
        Ok(receipt)
    }

    /// Stores `attrs` for the profile entry at `index` if it is still the member's latest and
    /// the member is not erased; otherwise stores nothing (a newer profile's submitter stores
    /// its own data; the data of a member erased since is never stored).
    fn store_accepted(
        &self,
        member: &str,
        index: u64,
        attrs: &BTreeMap<String, Attribute>,
    ) -> Result<(), VaultError> {
        let _held = self.lock();
        match personal::record(self.log.as_ref(), member)? {
            Some(r) if r.erased.is_none() && r.index == index => Ok(self.store(member, attrs)?),
            _ => Ok(()),
        }
    }

    /// Encrypts and stores `attrs` under the member's key (made on first use). Both writes are
    /// fsync'd before this returns. Callers hold the write lock.
    fn store(&self, member: &str, attrs: &BTreeMap<String, Attribute>) -> Result<(), StoreError> {
        let key = match self.data_key_of(member)? {
            Some(k) => k,
            None => {
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                self.log
                    .offlog_put(&key_key(member), &self.key.wrap(member, &k)?)?;
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
            self.data_key_of(member)?,
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

    /// Checks a read request: `signer` signed [`read_message`] for this co-op, `member`, `ts`
    /// and `nonce`; `ts` is recent; the nonce was not used before; and the signer is a current
    /// key of the member, or of an active board member.
    pub fn authorise_read(
        &self,
        member: &str,
        ts: u64,
        nonce: &[u8; 16],
        signer: &[u8; 32],
        sig: &[u8; 64],
    ) -> Result<(), VaultError> {
        let now = now_ms();
        if ts > now + READ_AHEAD_MS || ts.saturating_add(READ_VALID_MS) < now {
            return Err(field(
                "ts",
                "a read request is valid for 30 seconds from its ts (and up to 5 s early)",
            ));
        }
        let msg = read_message(self.log.origin(), member, ts, nonce);
        if !verify_one(&SignedMessage {
            key: signer,
            msg: &msg,
            sig,
        }) {
            return Err(field("sig", "does not verify for signer"));
        }
        {
            let mut seen = self
                .nonces
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.retain(|_, expiry| *expiry >= now);
            if seen.contains_key(nonce) {
                return Err(field("nonce", "was already used; sign a new request"));
            }
            if seen.len() >= MAX_NONCES {
                return Err(field("nonce", "too many reads in flight; retry shortly"));
            }
            seen.insert(*nonce, ts.saturating_add(READ_VALID_MS));
        }
        let state = self.log.as_ref();
        let k = records::key(state, signer)?.filter(|k| k.revoked.is_none());
        let allowed = match k {
            Some(k) if k.member == member => true,
            Some(k) => records::member(state, &k.member)?.is_some_and(|m| {
                m.status == MemberStatus::Active && m.roles.contains(&Role::Board)
            }),
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(VaultError::Forbidden {
                field: "signer",
                reason: "personal data is read only by the member or the board",
            })
        }
    }

    /// Submits a `member.erase` entry and, once the rules accepted it, destroys the member's key
    /// and data. Returns the receipt and whether nothing of the member is left in any file.
    pub async fn erase(&self, env: Envelope) -> Result<(Receipt, bool), VaultError> {
        if env.body().kind != "member.erase" {
            return Err(field("entry", "must be a member.erase entry"));
        }
        let member = env
            .body()
            .payload
            .get("member")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let receipt = self.log.submit(env).await?;
        let vault = self.clone();
        let destroyed = tokio::task::spawn_blocking(move || -> Result<bool, StoreError> {
            vault.sweep()?;
            Ok(!vault.holds(&member)?)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("erasure task: {e}")))??;
        Ok((receipt, destroyed))
    }

    /// Carries out every erasure the log has ordered whose key or data is still stored; returns
    /// how many members' data it destroyed. Run at start-up and after each checkpoint, so an
    /// erasure acknowledged just before a crash is still carried out.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let _held = self.lock();
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

    /// After every checkpoint, destroys the personal data of members whose erasure it recorded
    /// (however the `member.erase` entry arrived). Runs until the log closes.
    pub async fn carry_out_erasures(self) {
        let mut checkpoints = self.log.subscribe();
        loop {
            match checkpoints.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let v = self.clone();
            match tokio::task::spawn_blocking(move || v.sweep()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(members = n, "personal data destroyed"),
                Ok(Err(e)) => tracing::error!(error = %e, "cannot destroy erased personal data"),
                Err(e) => tracing::error!(error = %e, "erasure task failed"),
            }
        }
    }
}
