//! Governance commands: membership (`coop member …`), proposals (`coop proposal …`), votes and
//! proxies (`coop vote`, `coop proxy`), tallies (`coop tally show|verify`), bylaws. Every entry is
//! signed here, on the member's device, with the member's key file.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use coopledger_governance::key_add_message;
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::Body;
use coopledger_node::keyfile;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::wire::SubmitResult;
use coopledger_rpc::{GovApiClient, LedgerApiClient};
use ed25519_dalek::{Signer as _, SigningKey};
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Signs `payload` as an entry of type `kind` with `key` and submits it; returns the receipt
/// and the entry id (hex: proposal and application ids are entry ids).
pub async fn sign_and_submit(
    c: &HttpClient,
    key: &SigningKey,
    kind: &str,
    payload: Value,
) -> Result<(SubmitResult, String)> {
    sign_and_submit_at(c, key, kind, payload, coopledger_ledger::log::now_ms()).await
}

/// As [`sign_and_submit`], with the signer's timestamp `ts` (ms since the epoch).
pub async fn sign_and_submit_at(
    c: &HttpClient,
    key: &SigningKey,
    kind: &str,
    payload: Value,
    ts: u64,
) -> Result<(SubmitResult, String)> {
    let env = sign_entry(c, key, kind, payload, ts).await?;
    let id = hex::encode(env.entry_id().as_bytes());
    let receipt = c.submit(env.to_value()).await?;
    Ok((receipt, id))
}

/// Signs an entry of `kind` with the signer's next sequence number, for this node's co-op.
pub async fn sign_entry(
    c: &HttpClient,
    key: &SigningKey,
    kind: &str,
    payload: Value,
    ts: u64,
) -> Result<coopledger_ledger::Envelope> {
    let payload = payload
        .as_object()
        .cloned()
        .ok_or_else(|| anyhow!("payload must be a JSON object"))?;
    let signer = key.verifying_key().to_bytes();
    let seq = c.next_seq(b64_encode(signer)).await?;
    let coop = c.checkpoint().await?.origin;
    Body {
        coop,
        kind: kind.into(),
        version: 1,
        signer,
        seq,
        ts,
        payload,
    }
    .sign(key)
    .map_err(|r| anyhow!("{r}"))
}

/// A salted commitment to off-ledger text: `SHA-256("coopledger/commitment\0" ‖ salt ‖ text)`.
/// The text and salt stay off the ledger (and can be erased); the commitment proves them later.
pub(crate) fn commit_text(text: &str) -> (String, String) {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut h = Sha256::new();
    h.update(b"coopledger/commitment\0");
    h.update(salt);
    h.update(text.as_bytes());
    (b64_encode(h.finalize()), hex::encode(salt))
}

pub(crate) async fn member_of(c: &HttpClient, key: &SigningKey) -> Result<String> {
    let rec = c
        .key(b64_encode(key.verifying_key().to_bytes()))
        .await
        .context("this key is not known to the co-op")?;
    Ok(rec.member)
}

#[derive(Subcommand, Debug)]
pub enum MemberCmd {
    /// Apply for membership with a new key (prints the application id).
    Apply {
        /// The applicant's new key file.
        #[arg(long)]
        key: PathBuf,
        /// Requested member class.
        #[arg(long)]
        class: String,
        /// Application details kept off-ledger; only a salted commitment is recorded.
        #[arg(long)]
        details: Option<String>,
        /// The invitation file from `coop member invite` (when the bylaws require one).
        #[arg(long)]
        invitation: Option<PathBuf>,
    },
    /// Board: invite the holder of a key to apply (writes the invitation file they apply with).
    Invite {
        /// A board member's key file.
        #[arg(long)]
        key: PathBuf,
        /// The applicant's public key: base64, or @KEYFILE.
        #[arg(long)]
        applicant: String,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Admit applicants as the bylaws say: citing an adopted admission decision (--decision,
    /// one application), by the board (up to 500 --application in one entry), or by the
    /// treasurer on paid shares (one --share reference per --application).
    Admit {
        #[arg(long)]
        key: PathBuf,
        /// An application id; repeat for many.
        #[arg(long = "application", required = true)]
        applications: Vec<String>,
        /// The adopted admission decision (general vote).
        #[arg(long)]
        decision: Option<String>,
        /// Paid share: the payment reference of each application, in order (kept off-ledger;
        /// its SHA-256 is recorded).
        #[arg(long = "share")]
        shares: Vec<String>,
    },
    /// Board: decline pending applications (frees their places under the bylaws' cap).
    Decline {
        #[arg(long)]
        key: PathBuf,
        /// An application id; repeat for many.
        #[arg(long = "application", required = true)]
        applications: Vec<String>,
    },
    /// Add a key to your membership (rotation, another device or officer).
    KeyAdd {
        /// One of your current keys.
        #[arg(long)]
        key: PathBuf,
        /// The new key file (it signs a proof of possession).
        #[arg(long)]
        new_key: PathBuf,
        /// A label to know the key by, up to 64 characters ("treasurer's laptop"). It is
        /// public on the ledger: never a name, an address or a number.
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a key (yours, or any as board); past entries it signed stay valid.
    KeyRevoke {
        #[arg(long)]
        key: PathBuf,
        /// The key to revoke: base64 or @KEYFILE.
        #[arg(long)]
        revoke: String,
    },
    /// Board: move a member to another class.
    Class {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
        #[arg(long)]
        class: String,
    },
    /// Board: grant or remove a role (board, treasurer, auditor).
    Role {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
        #[arg(long)]
        role: String,
        /// Remove instead of grant.
        #[arg(long)]
        remove: bool,
    },
    /// Board: suspend a member (the reason stays off-ledger; a commitment is recorded).
    Suspend {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
        #[arg(long)]
        reason: String,
    },
    /// Board: reinstate a suspended member.
    Reinstate {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
    },
    /// Board: give notice of intended expulsion (starts the bylaws' notice period).
    Notice {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
        #[arg(long)]
        reason: String,
    },
    /// Board: expel after the notice period, citing the adopted expulsion decision.
    Expel {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        member: String,
        #[arg(long)]
        decision: String,
    },
    /// Leave the co-op.
    Withdraw {
        #[arg(long)]
        key: PathBuf,
    },
    /// Show a member (and their standing at log index --at): by id, or by one of their key
    /// files (`--key`). Each key is listed with when it was added and, if so, revoked.
    Show {
        /// Member id.
        #[arg(required_unless_present = "key", conflicts_with = "key")]
        member: Option<String>,
        /// Or one of the member's key files.
        #[arg(long)]
        key: Option<std::path::PathBuf>,
        #[arg(long)]
        at: Option<u64>,
    },
    /// Who was a member, in which class, at log index --at (default: now).
    List {
        #[arg(long)]
        at: Option<u64>,
    },
}

#[derive(Args, Debug)]
pub struct ProposeArgs {
    /// Proposer's key file.
    #[arg(long)]
    key: PathBuf,
    /// ordinary, special, bylaws_amendment, admission, expulsion, distribution_approval,
    /// board_election.
    #[arg(long)]
    kind: String,
    #[arg(long)]
    title: String,
    /// yes_no, single_choice, approval, ranked_choice.
    #[arg(long, default_value = "yes_no")]
    method: String,
    /// A choice (repeat); for a board election, candidates' member ids.
    #[arg(long = "choice")]
    choices: Vec<String>,
    /// Voting opens this many seconds from now.
    #[arg(long, default_value_t = 0)]
    opens_in: u64,
    /// Voting lasts this many seconds.
    #[arg(long)]
    duration: u64,
    /// Admission: the application id.
    #[arg(long)]
    application: Option<String>,
    /// Expulsion: the member id.
    #[arg(long)]
    member: Option<String>,
    /// Bylaws amendment: the new bylaws JSON file (version = current + 1).
    #[arg(long)]
    bylaws: Option<PathBuf>,
    /// Distribution approval: the allocation policy JSON file (`docs/revenue.md`).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A file with the full motion text; its SHA-256 is recorded.
    #[arg(long)]
    document: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ProposalCmd {
    /// Create a proposal (prints its id).
    Create(ProposeArgs),
    /// Change the title, times or choices before voting opens.
    Amend {
        #[arg(long)]
        key: PathBuf,
        id: String,
        #[arg(long)]
        title: Option<String>,
        /// New closing time: this many seconds after opening.
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Withdraw a proposal before it closes.
    Withdraw {
        #[arg(long)]
        key: PathBuf,
        id: String,
    },
    /// Show a proposal.
    Show { id: String },
    /// List proposals.
    List,
}

pub(crate) fn key_arg(spec: &str) -> Result<[u8; 32]> {
    match spec.strip_prefix('@') {
        Some(path) => Ok(keyfile::read(Path::new(path))?.verifying_key().to_bytes()),
        None => b64_decode(spec)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("{spec}: a key is base64 of 32 bytes or @KEYFILE")),
    }
}

pub(crate) async fn submit_printing(
    c: &HttpClient,
    key: &Path,
    kind: &str,
    payload: Value,
) -> Result<(SubmitResult, String)> {
    let key = keyfile::read(key)?;
    let (r, id) = sign_and_submit(c, &key, kind, payload).await?;
    outln!("{kind} accepted at index {} (entry id {id})", r.index);
    Ok((r, id))
}

/// A board entry about `member` whose reason stays off-ledger (a salted commitment goes on it).
async fn with_reason(
    c: &HttpClient,
    key: &Path,
    kind: &str,
    member: &str,
    reason: &str,
) -> Result<()> {
    let (commitment, salt) = commit_text(reason);
    outln!("reason salt (keep off-ledger with the reason): {salt}");
    submit_printing(
        c,
        key,
        kind,
        json!({"member": member, "reason": commitment}),
    )
    .await?;
    Ok(())
}

pub async fn member(c: &HttpClient, cmd: MemberCmd) -> Result<()> {
    match cmd {
        MemberCmd::Apply {
            key,
            class,
            details,
            invitation,
        } => {
            let mut p = obj(json!({ "class": class }));
            if let Some(d) = details {
                let (commitment, salt) = commit_text(&d);
                p.insert("details".into(), json!(commitment));
                outln!("details salt (keep off-ledger with the details): {salt}");
            }
            if let Some(path) = invitation {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let inv: Map<String, Value> = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an invitation", path.display()))?;
                for field in ["invitedBy", "invitation"] {
                    let v = inv
                        .get(field)
                        .cloned()
                        .ok_or_else(|| anyhow!("{}: no {field}", path.display()))?;
                    p.insert(field.into(), v);
                }
            }
            let (_, id) = submit_printing(c, &key, "member.apply", Value::Object(p)).await?;
            outln!("application: {id}");
        }
        MemberCmd::Invite {
            key,
            applicant,
            out,
        } => {
            let k = keyfile::read(&key)?;
            let applicant = key_arg(&applicant)?;
            let coop = c.checkpoint().await?.origin;
            let sig = k.sign(&coopledger_governance::rules::invitation_message(
                &coop, &applicant,
            ));
            let inv = json!({
                "invitedBy": b64_encode(k.verifying_key().to_bytes()),
                "invitation": b64_encode(sig.to_bytes()),
            });
            std::fs::write(&out, serde_json::to_string_pretty(&inv)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            outln!(
                "invitation for {} written to {} (apply with --invitation)",
                b64_encode(applicant),
                out.display()
            );
        }
        MemberCmd::Admit {
            key,
            applications,
            decision,
            shares,
        } => {
            let mut p = obj(json!({}));
            match (&decision, applications.as_slice()) {
                (Some(d), [one]) => {
                    p.insert("application".into(), json!(one));
                    p.insert("decision".into(), json!(d));
                }
                (Some(_), _) => bail!("--decision admits one --application"),
                (None, list) => {
                    p.insert("applications".into(), json!(list));
                }
            }
            if !shares.is_empty() {
                if shares.len() != applications.len() {
                    bail!("give one --share per --application");
                }
                let digests: Vec<String> = shares
                    .iter()
                    .map(|s| b64_encode(sha2::Sha256::digest(s.as_bytes())))
                    .collect();
                p.insert("shares".into(), json!(digests));
            }
            let (r, _) = submit_printing(c, &key, "member.admit", Value::Object(p)).await?;
            outln!(
                "{} member(s) admitted at index {}",
                applications.len(),
                r.index
            );
        }
        MemberCmd::Decline { key, applications } => {
            submit_printing(
                c,
                &key,
                "member.decline",
                json!({ "applications": applications }),
            )
            .await?;
        }
        MemberCmd::KeyAdd {
            key,
            new_key,
            label,
        } => {
            let k = keyfile::read(&key)?;
            let new = keyfile::read(&new_key)?;
            let member = member_of(c, &k).await?;
            let coop = c.checkpoint().await?.origin;
            let proof = new.sign(&key_add_message(&coop, &member));
            let mut payload = obj(json!({
                "key": b64_encode(new.verifying_key().to_bytes()),
                "proof": b64_encode(proof.to_bytes()),
            }));
            if let Some(l) = label {
                payload.insert("label".into(), Value::String(l));
            }
            let payload = Value::Object(payload);
            let (r, _) = sign_and_submit(c, &k, "member.key_add", payload).await?;
            outln!("key added to {member} at index {}", r.index);
        }
        MemberCmd::KeyRevoke { key, revoke } => {
            let k = key_arg(&revoke)?;
            submit_printing(c, &key, "member.key_revoke", json!({"key": b64_encode(k)})).await?;
        }
        MemberCmd::Class { key, member, class } => {
            submit_printing(
                c,
                &key,
                "member.class",
                json!({"member": member, "class": class}),
            )
            .await?;
        }
        MemberCmd::Role {
            key,
            member,
            role,
            remove,
        } => {
            submit_printing(
                c,
                &key,
                "member.role",
                json!({"member": member, "role": role, "grant": !remove}),
            )
            .await?;
        }
        MemberCmd::Suspend {
            key,
            member,
            reason,
        } => with_reason(c, &key, "member.suspend", &member, &reason).await?,
        MemberCmd::Notice {
            key,
            member,
            reason,
        } => with_reason(c, &key, "member.notice", &member, &reason).await?,
        MemberCmd::Reinstate { key, member } => {
            submit_printing(c, &key, "member.reinstate", json!({"member": member})).await?;
        }
        MemberCmd::Expel {
            key,
            member,
            decision,
        } => {
            submit_printing(
                c,
                &key,
                "member.expel",
                json!({"member": member, "decision": decision}),
            )
            .await?;
        }
        MemberCmd::Withdraw { key } => {
            submit_printing(c, &key, "member.withdraw", json!({})).await?;
        }
        MemberCmd::Show { member, key, at } => {
            let who = crate::who::Who { member, key };
            crate::print_json(&c.member(who.id(c).await?, at).await?)?;
        }
        MemberCmd::List { at } => crate::print_json(&c.members(at).await?)?,
    }
    Ok(())
}

pub async fn proposal(c: &HttpClient, cmd: ProposalCmd) -> Result<()> {
    match cmd {
        ProposalCmd::Create(a) => {
            let now = coopledger_ledger::log::now_ms();
            let opens = now + a.opens_in * 1000;
            let mut p = obj(json!({
                "kind": a.kind,
                "title": a.title,
                "method": a.method,
                "opensMs": opens,
                "closesMs": opens + a.duration * 1000,
            }));
            if !a.choices.is_empty() {
                p.insert("choices".into(), json!(a.choices));
            }
            if let Some(app) = a.application {
                p.insert("application".into(), json!(app));
            }
            if let Some(m) = a.member {
                p.insert("member".into(), json!(m));
            }
            if let Some(path) = a.bylaws {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let b: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                p.insert("bylaws".into(), b);
            }
            if let Some(path) = a.policy {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let v: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                p.insert("policy".into(), v);
            }
            if let Some(path) = a.document {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                p.insert("document".into(), json!(b64_encode(Sha256::digest(&bytes))));
            }
            // Signed at the same instant voting opens: "now" for the rules' notice check.
            let key = keyfile::read(&a.key)?;
            let (r, id) = sign_and_submit_at(c, &key, "gov.propose", Value::Object(p), now).await?;
            outln!("gov.propose accepted at index {} (entry id {id})", r.index);
            outln!("proposal: {id}");
        }
        ProposalCmd::Amend {
            key,
            id,
            title,
            duration,
        } => {
            let mut p = obj(json!({ "proposal": id }));
            if let Some(t) = title {
                p.insert("title".into(), json!(t));
            }
            if let Some(d) = duration {
                let current = c.proposal(id.clone()).await?;
                p.insert("closesMs".into(), json!(current.opens_ms + d * 1000));
            }
            submit_printing(c, &key, "gov.amend", Value::Object(p)).await?;
        }
        ProposalCmd::Withdraw { key, id } => {
            submit_printing(c, &key, "gov.withdraw", json!({ "proposal": id })).await?;
        }
        ProposalCmd::Show { id } => crate::print_json(&c.proposal(id).await?)?,
        ProposalCmd::List => crate::print_json(&c.proposals().await?)?,
    }
    Ok(())
}

/// `coop vote`: yes/no/abstain, or `--choices` for choice methods (a ranking for ranked choice).
pub async fn vote(
    c: &HttpClient,
    key: &Path,
    id: String,
    vote: Option<String>,
    choices: Option<String>,
    receipt: Option<PathBuf>,
) -> Result<()> {
    let k = keyfile::read(key)?;
    let member = member_of(c, &k).await?;
    let mut choice = Map::new();
    match (vote, choices) {
        (Some(v), None) => {
            choice.insert("vote".into(), json!(v));
        }
        (None, Some(list)) => {
            let parsed: Vec<u64> = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim().parse::<u64>())
                .collect::<Result<_, _>>()
                .context("--choices is a comma-separated list of choice numbers, e.g. 2,0,1")?;
            choice.insert("choices".into(), json!(parsed));
        }
        _ => bail!("give either yes|no|abstain or --choices"),
    }
    let proposal = c.proposal(id.clone()).await?;
    if proposal.secret.is_some() {
        return crate::ballot::vote_secretly(c, &k, &member, proposal.into(), choice, receipt)
            .await;
    }
    let mut p = obj(json!({ "proposal": id, "member": member }));
    p.extend(choice);
    let (r, _) = sign_and_submit(c, &k, "gov.vote", Value::Object(p)).await?;
    outln!("vote by {member} recorded at index {}", r.index);
    Ok(())
}

/// `coop proxy`: give (`--to`) or take back (`--revoke`) a proxy for one proposal.
pub async fn proxy(c: &HttpClient, key: &Path, id: String, to: Option<String>) -> Result<()> {
    let k = keyfile::read(key)?;
    let member = member_of(c, &k).await?;
    let p = json!({ "proposal": id, "member": member, "to": to });
    let (r, _) = sign_and_submit(c, &k, "gov.proxy", p).await?;
    outln!("proxy of {member} recorded at index {}", r.index);
    Ok(())
}

pub async fn bylaws(c: &HttpClient) -> Result<()> {
    crate::print_json(&c.bylaws().await?)
}

/// The published JSON Schema of bylaws (`docs/bylaws/bylaws.schema.json`).
pub const BYLAWS_SCHEMA: &str = include_str!("../../docs/bylaws/bylaws.schema.json");

/// `coop bylaws schema|check`: no node needed.
#[derive(clap::Subcommand, Debug)]
pub enum BylawsCmd {
    /// Print the JSON Schema of bylaws (examples for each voting mode: docs/bylaws/).
    Schema,
    /// Check a bylaws file as the rules would read it: unknown or misspelt fields, ratios,
    /// weights, every kind of decision.
    Check {
        /// Bylaws JSON file.
        file: std::path::PathBuf,
    },
}

/// Runs a [`BylawsCmd`].
pub fn bylaws_offline(cmd: BylawsCmd) -> Result<std::process::ExitCode> {
    match cmd {
        BylawsCmd::Schema => out!("{BYLAWS_SCHEMA}"),
        BylawsCmd::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let v: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    outln!("REFUSED: {} is not JSON: {e}", file.display());
                    return Ok(std::process::ExitCode::from(1));
                }
            };
            match coopledger_governance::bylaws::Bylaws::from_json(&v) {
                Ok(b) => outln!(
                    "ACCEPTED: bylaws v{} with {} classes and rules for every kind of decision",
                    b.version,
                    b.classes.len()
                ),
                Err(e) => {
                    outln!("REFUSED: {e}");
                    return Ok(std::process::ExitCode::from(1));
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The object inside a `json!({...})` literal.
fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
