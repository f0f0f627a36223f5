//! `coop personal submit|show|erase`: a member's personal data, kept off the log. The values
//! and fresh random salts are made here; only `SHA-256(salt ‖ value)` goes into the signed
//! `member.profile` entry, and the values travel to the node, which encrypts them.

use crate::gov::{member_of, sign_entry};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use coopledger_governance::personal::commitment;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::log::now_ms;
use coopledger_node::keyfile;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::personal::{read_message, Attribute};
use coopledger_rpc::PersonalApiClient;
use ed25519_dalek::Signer as _;
use rand::RngCore;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `coop personal …`
#[derive(Debug, Subcommand)]
pub enum PersonalCmd {
    /// Give your personal attributes to the co-op: they are kept off the log, encrypted under a
    /// key of yours; the log gets only salted commitments, signed by you.
    Submit {
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// `name=value`, repeatable (names: identifiers, 1 to 64 of [a-z0-9_-]).
        #[arg(long = "attr", required = true)]
        attrs: Vec<String>,
    },
    /// Read a member's attributes (yours, or any member's with a board key).
    Show {
        #[arg(long)]
        key: PathBuf,
        /// Member id (default: the key's own member).
        #[arg(long)]
        member: Option<String>,
    },
    /// Erase a member's personal data (yours, or on a member's request with a board key): the
    /// node destroys the key and data; the log keeps only commitments nobody can open.
    Erase {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: Option<String>,
    },
}

/// Runs `coop personal …`.
pub async fn personal(c: &HttpClient, cmd: PersonalCmd) -> Result<()> {
    match cmd {
        PersonalCmd::Submit { key, attrs } => {
            let k = keyfile::read(&key)?;
            let member = member_of(c, &k).await?;
            let mut sent = BTreeMap::new();
            let mut committed = Map::new();
            for a in attrs {
                let (name, value) = a
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--attr {a:?}: expected name=value"))?;
                let mut salt = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                committed.insert(
                    name.to_owned(),
                    Value::from(b64_encode(commitment(&salt, value))),
                );
                sent.insert(
                    name.to_owned(),
                    Attribute {
                        value: value.to_owned(),
                        salt: b64_encode(salt),
                    },
                );
            }
            let payload = json!({"member": member, "attributes": committed});
            let env = sign_entry(c, &k, "member.profile", payload, now_ms()).await?;
            let r = PersonalApiClient::submit(c, env.to_value(), sent).await?;
            outln!(
                "member.profile accepted at index {}: {} attribute(s) of {member} held off the log, encrypted; only salted commitments are on it",
                r.index,
                committed.len()
            );
        }
        PersonalCmd::Show { key, member } => {
            let k = keyfile::read(&key)?;
            let member = match member {
                Some(m) => m,
                None => member_of(c, &k).await?,
            };
            let ts = now_ms();
            let mut nonce = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
            let origin = coopledger_rpc::GovApiClient::info(c).await?.origin;
            let msg = read_message(&origin, &member, ts, &nonce);
            let sig = k.sign(&msg).to_bytes();
            let attrs = c
                .read(
                    member,
                    ts,
                    b64_encode(nonce),
                    b64_encode(k.verifying_key().to_bytes()),
                    b64_encode(sig),
                )
                .await?;
            outln!("{}", serde_json::to_string_pretty(&attrs)?);
        }
        PersonalCmd::Erase { key, member } => {
            let k = keyfile::read(&key)?;
            let member = match member {
                Some(m) => m,
                None => member_of(c, &k).await?,
            };
            let env =
                sign_entry(c, &k, "member.erase", json!({"member": member}), now_ms()).await?;
            let r = c.erase(env.to_value()).await?;
            outln!(
                "member.erase accepted at index {}; personal data of {member} {}",
                r.receipt.index,
                erasure_outcome(&r)
            );
        }
    }
    Ok(())
}

/// What an erasure's answer says of where the data is gone.
fn erasure_outcome(r: &coopledger_rpc::personal::ErasureResult) -> String {
    let ids = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    match (
        r.destroyed,
        r.replicas_purged.is_empty() && r.replicas_pending.is_empty(),
    ) {
        (true, true) => "destroyed on the node (key and data in no file)".to_owned(),
        (true, false) => format!(
            "destroyed on every replica ({}: key and data in no file)",
            ids(&r.replicas_purged)
        ),
        (false, true) => "NOT yet destroyed".to_owned(),
        (false, false) => format!(
            "destroyed on replica(s) {}; NOT yet on {} (each purges when it applies the erasure)",
            if r.replicas_purged.is_empty() {
                "none".to_owned()
            } else {
                ids(&r.replicas_purged)
            },
            ids(&r.replicas_pending)
        ),
    }
}
