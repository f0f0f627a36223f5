//! Consent commands: `coop party register`, `coop notice publish`, `coop consent
//! grant|renew|withdraw|revoke|invalidate|status|timeline|grants|receipt`, `coop data-use`.
//! Grants and withdrawals are signed here, on the member's device, with the member's key file.

use crate::gov::{commit_text, key_arg, member_of, sign_and_submit, submit_printing};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use coopledger_governance::consent::ConsentStatus;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::log::now_ms;
use coopledger_ledger::NoteVerifier;
use coopledger_node::keyfile;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::ConsentApiClient;
use coopledger_rpc::LedgerApiClient;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DAY_MS: u64 = 86_400_000;

/// `coop consent …`
#[derive(Debug, Subcommand)]
pub enum ConsentCmd {
    /// Grant consent (signed with your key) to part of a notice; prints the grant id and the
    /// consent receipt.
    Grant {
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// Notice id.
        #[arg(long)]
        notice: String,
        /// Notice version (default: the latest).
        #[arg(long)]
        version: Option<u64>,
        /// A purpose (DPV term), repeatable.
        #[arg(long = "purpose", required = true)]
        purposes: Vec<String>,
        /// A recipient party id, repeatable.
        #[arg(long = "recipient", required = true)]
        recipients: Vec<String>,
        /// A data category (DPV-PD term), repeatable.
        #[arg(long = "category", required = true)]
        categories: Vec<String>,
        /// Valid for this many days from now.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Write the consent receipt here (default: print it).
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
    /// Extend a grant (yours) by this many days from now.
    Renew {
        #[arg(long)]
        key: PathBuf,
        grant: String,
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Withdraw a grant (yours). Final.
    Withdraw {
        #[arg(long)]
        key: PathBuf,
        grant: String,
    },
    /// Revoke a grant, as its notice's controller (party key).
    Revoke {
        #[arg(long)]
        key: PathBuf,
        grant: String,
        /// Reason (kept off-ledger; a salted commitment goes on it).
        #[arg(long)]
        reason: String,
    },
    /// Invalidate a grant, as an authority (party key).
    Invalidate {
        #[arg(long)]
        key: PathBuf,
        grant: String,
        #[arg(long)]
        reason: String,
    },
    /// Where (member, purpose, recipient) stands, now or as of an index / time.
    Status {
        #[command(flatten)]
        who: crate::who::Who,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        at_index: Option<u64>,
        #[arg(long)]
        at_ms: Option<u64>,
    },
    /// A member's consent timeline.
    Timeline {
        #[command(flatten)]
        who: crate::who::Who,
    },
    /// A member's grants (JSON).
    Grants {
        #[command(flatten)]
        who: crate::who::Who,
    },
    /// What I have consented to: each grant, its purposes, recipients and data, and whether it
    /// is in force, withdrawn or expired.
    Mine {
        #[command(flatten)]
        who: crate::who::Who,
    },
    /// The consent receipt of a grant.
    Receipt { grant: String },
    /// Write the regulator bundle: the member's complete consent history as of the newest
    /// checkpoint, with every proof, in one file (checked here against the node's key first).
    Export {
        #[command(flatten)]
        who: crate::who::Who,
        /// Wait (up to 30 s) until this many witnesses have cosigned the bundle's checkpoint.
        #[arg(long, default_value_t = 0)]
        require_witnesses: usize,
        /// Follow only grants covering this purpose (others appear by their grant entry only).
        #[arg(long)]
        purpose: Option<String>,
        /// Output file.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

/// A status as the API spells it (`active`, `withdrawn`, …).
fn status_name(s: ConsentStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `coop verify-bundle FILE --vkey KEY`: checks a bundle of any kind offline
/// (`governance::verdict::judge`, the same code the portal runs as WebAssembly) and prints what
/// it proves. Exit code 0 = valid, 1 = invalid.
pub fn verify_bundle(file: &Path, vkey: &str) -> Result<ExitCode> {
    use coopledger_governance::verdict::{judge, Proved};
    let vkey = NoteVerifier::parse(vkey).map_err(|e| anyhow!("--vkey: {e}"))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let proved = match judge(&text, &vkey) {
        Ok(p) => p,
        Err(invalid) => {
            outln!("INVALID: {invalid}");
            return Ok(ExitCode::from(1));
        }
    };
    outln!("VALID: {}", proved.headline());
    match &proved {
        Proved::Consent(report, _) => print_consent_report(report),
        Proved::Revenue(report, facts) => match &facts.member {
            Some(m) => crate::revenue::print_statement(report, m),
            None => crate::revenue::print_reconciliation(report, "table")?,
        },
        Proved::Statement(reports, member) => {
            for r in reports {
                crate::revenue::print_statement(r, member);
            }
        }
        Proved::Tally(report) => crate::tally::print_report(report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_consent_report(report: &coopledger_governance::consent_bundle::BundleReport) {
    if report.history.is_empty() {
        outln!("  no consent entry concerns this member (the timeline's absence is proved)");
    }
    for l in &report.history {
        outln!(
            "  index {:>6}  {:>14} ms  {:<18} grant {}  -> {}",
            l.index,
            l.ms,
            l.event,
            l.grant,
            status_name(l.status)
        );
    }
    for (g, status) in &report.grants {
        outln!(
            "  grant {} ({} v{}; {}; to {}; categories {}): {} now",
            g.id,
            g.notice,
            g.version,
            g.purposes.join(","),
            g.recipients.join(","),
            g.data_categories.join(","),
            status_name(*status)
        );
    }
    outln!(
        "  {} data use(s), every one covered by valid consent at its time",
        report.uses
    );
}

/// Runs `coop consent …`.
pub async fn consent(c: &HttpClient, cmd: ConsentCmd) -> Result<()> {
    match cmd {
        ConsentCmd::Export {
            who,
            require_witnesses,
            purpose,
            out,
        } => {
            let member = who.id(c).await?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let bundle = loop {
                let b = c.bundle(member.clone(), purpose.clone()).await?;
                // Signature lines beyond the log's own are the witnesses'.
                let lines = coopledger_ledger::note::SignedNote::parse(b.checkpoint.as_bytes())
                    .map(|n| n.signatures.len().saturating_sub(1))
                    .unwrap_or(0);
                if lines >= require_witnesses {
                    break b;
                }
                if std::time::Instant::now() > deadline {
                    anyhow::bail!(
                        "the checkpoint has {lines} witness cosignatures after 30 s, {require_witnesses} required"
                    );
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            };
            let vkey = NoteVerifier::parse(&c.verifier_key().await?)
                .map_err(|e| anyhow!("node verifier key: {e}"))?;
            let report = bundle
                .verify(&vkey)
                .map_err(|e| anyhow!("the node served a bundle that does not verify: {e}"))?;
            std::fs::write(&out, serde_json::to_string_pretty(&bundle)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            outln!(
                "consent history of {member} ({} events, {} entries) as of checkpoint {} written to {}",
                report.history.len(),
                bundle.entries.len(),
                report.size,
                out.display()
            );
        }
        ConsentCmd::Grant {
            key,
            notice,
            version,
            purposes,
            recipients,
            categories,
            days,
            receipt,
        } => {
            let k = keyfile::read(&key)?;
            let member = member_of(c, &k).await?;
            let version = match version {
                Some(v) => v,
                None => c.notice(notice.clone(), None).await?.version,
            };
            let now = now_ms();
            let p = json!({
                "member": member, "notice": notice, "version": version, "purposes": purposes,
                "recipients": recipients, "dataCategories": categories, "fromMs": now,
                "untilMs": now + days.saturating_mul(DAY_MS),
            });
            let (r, id) = sign_and_submit(c, &k, "consent.grant", p).await?;
            outln!(
                "consent.grant accepted at index {} (entry id {id})",
                r.index
            );
            outln!("grant: {id}");
            let rc = c.receipt(id).await?;
            match receipt {
                Some(path) => {
                    std::fs::write(&path, serde_json::to_vec_pretty(&rc)?)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    outln!("consent receipt written to {}", path.display());
                }
                None => crate::print_json(&rc)?,
            }
        }
        ConsentCmd::Renew { key, grant, days } => {
            let k = keyfile::read(&key)?;
            let member = member_of(c, &k).await?;
            let until = now_ms() + days.saturating_mul(DAY_MS);
            let p = json!({"member": member, "grant": grant, "untilMs": until});
            let (r, _) = sign_and_submit(c, &k, "consent.renew", p).await?;
            outln!("consent.renew accepted at index {}", r.index);
        }
        ConsentCmd::Withdraw { key, grant } => {
            let k = keyfile::read(&key)?;
            let member = member_of(c, &k).await?;
            let p = json!({"member": member, "grant": grant});
            let (r, _) = sign_and_submit(c, &k, "consent.withdraw", p).await?;
            outln!(
                "consent.withdraw accepted at index {}: withdrawn for good",
                r.index
            );
        }
        ConsentCmd::Revoke { key, grant, reason } => {
            ended_by_party(c, key, "consent.revoke", &grant, &reason).await?;
        }
        ConsentCmd::Invalidate { key, grant, reason } => {
            ended_by_party(c, key, "consent.invalidate", &grant, &reason).await?;
        }
        ConsentCmd::Status {
            who,
            purpose,
            recipient,
            at_index,
            at_ms,
        } => crate::print_json(
            &c.status(who.id(c).await?, purpose, recipient, at_index, at_ms)
                .await?,
        )?,
        ConsentCmd::Timeline { who } => crate::print_json(&c.timeline(who.id(c).await?).await?)?,
        ConsentCmd::Grants { who } => crate::print_json(&c.grants(who.id(c).await?).await?)?,
        ConsentCmd::Mine { who } => {
            let member = who.id(c).await?;
            let grants = c.grants(member.clone()).await?;
            if grants.is_empty() {
                outln!("{member} has given no consent");
            }
            for g in grants {
                // The node's answer states each grant's status as of its newest checkpoint.
                let state = serde_json::to_value(g.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                outln!(
                    "grant {} at entry {}: {} — to {} for {}; data: {}",
                    g.id,
                    g.index,
                    state,
                    g.recipients.join(", "),
                    g.purposes.join(", "),
                    g.data_categories.join(", ")
                );
            }
        }
        ConsentCmd::Receipt { grant } => crate::print_json(&c.receipt(grant).await?)?,
    }
    Ok(())
}

async fn ended_by_party(
    c: &HttpClient,
    key: PathBuf,
    kind: &str,
    grant: &str,
    reason: &str,
) -> Result<()> {
    let (commitment, salt) = commit_text(reason);
    outln!("reason salt (keep off-ledger with the reason): {salt}");
    submit_printing(c, &key, kind, json!({"grant": grant, "reason": commitment})).await?;
    Ok(())
}

/// `coop party register`.
#[allow(
    clippy::too_many_arguments,
    reason = "one parameter per command-line option"
)]
pub async fn register_party(
    c: &HttpClient,
    key: PathBuf,
    party: String,
    kind: String,
    name: String,
    jurisdiction: String,
    party_key: Option<String>,
) -> Result<()> {
    let mut p = serde_json::Map::new();
    p.insert("party".into(), json!(party));
    p.insert("kind".into(), json!(kind));
    p.insert("name".into(), json!(name));
    p.insert("jurisdiction".into(), json!(jurisdiction));
    if let Some(k) = party_key {
        p.insert("key".into(), json!(b64_encode(key_arg(&k)?)));
    }
    submit_printing(c, &key, "party.register", Value::Object(p)).await?;
    Ok(())
}

/// `coop notice publish FILE`: the notice fields as JSON; `textFile` (a path) may stand in for
/// `textDigest`, which is then computed from the file — and once the notice is accepted, the
/// text is handed to the node (`consent_putNoticeText`) so members' pages can show it.
pub async fn publish_notice(c: &HttpClient, key: PathBuf, file: PathBuf) -> Result<()> {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", file.display()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("{} must hold a JSON object", file.display()))?;
    let mut text = None;
    if let Some(Value::String(name)) = obj.remove("textFile") {
        let path = file
            .parent()
            .map_or_else(|| PathBuf::from(&name), |d| d.join(&name));
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        obj.insert(
            "textDigest".into(),
            json!(b64_encode(Sha256::digest(&bytes))),
        );
        text = Some((path, bytes));
    }
    submit_printing(c, &key, "consent.notice", v).await?;
    if let Some((path, bytes)) = text {
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow!(
                "{} is not UTF-8: the node keeps UTF-8 texts",
                path.display()
            )
        })?;
        c.put_notice_text(text)
            .await
            .with_context(|| format!("the node did not keep the text of {}", path.display()))?;
        outln!("text: kept by the node (members' pages show it)");
    }
    Ok(())
}

/// `coop data-use`: record a release or sale citing the consents it relies on.
#[allow(
    clippy::too_many_arguments,
    reason = "one parameter per command-line option"
)]
pub async fn data_use(
    c: &HttpClient,
    key: PathBuf,
    kind: String,
    recipient: String,
    purpose: String,
    categories: Vec<String>,
    consents: Vec<String>,
    dataset: Option<PathBuf>,
) -> Result<()> {
    let mut p = serde_json::Map::new();
    p.insert("kind".into(), json!(kind));
    p.insert("recipient".into(), json!(recipient));
    p.insert("purpose".into(), json!(purpose));
    p.insert("dataCategories".into(), json!(categories));
    p.insert("consents".into(), json!(consents));
    if let Some(path) = dataset {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        p.insert("dataset".into(), json!(b64_encode(Sha256::digest(&bytes))));
    }
    submit_printing(c, &key, "data.use", Value::Object(p)).await?;
    Ok(())
}
