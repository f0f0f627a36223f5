//! `coop tally show|export|verify` and the tally half of `coop verify-bundle`: every recount goes
//! through one verifier, `TallyBundle::verify` in governance — online (`verify` fetches the
//! bundle from the node) or from a file with no node at all (`verify-bundle`).

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use coopledger_governance::tally::Share;
use coopledger_governance::tally_bundle::TallyReport;
use coopledger_ledger::NoteVerifier;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::{GovApiClient, LedgerApiClient};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum TallyCmd {
    /// Print the recorded tally.
    Show { id: String },
    /// Write the tally bundle of a closed proposal: the proposal, the bylaws it was frozen from,
    /// the electorate, every vote / proxy / ballot with its proof under one signed checkpoint,
    /// and the recorded tally. Anyone recounts it with no node: `coop verify-bundle FILE --vkey`.
    Export {
        id: String,
        /// Where to write the bundle.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// The log's verifier key the bundle is checked against before it is written.
        #[arg(long, env = "COOP_VKEY")]
        vkey: Option<String>,
    },
    /// Recount a closed proposal from its tally bundle (fetched from the node, checked here);
    /// exit 0 when the recorded tally agrees, 1 when it does not.
    Verify {
        id: String,
        /// The log's verifier key `<origin>+<keyid>+<base64>` to trust. Without it (or
        /// COOP_VKEY) the node's own key is used, and a warning says the check then proves the
        /// node consistent with itself, not that this is the co-op's log.
        #[arg(long, env = "COOP_VKEY")]
        vkey: Option<String>,
        /// Secret ballots: your receipt from `coop vote`; checks your ballot is among those
        /// published and counted.
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
}

/// The key to verify against: the one pinned by the user, or — loudly — the node's own.
async fn trusted_key(c: &HttpClient, pinned: Option<String>) -> Result<(NoteVerifier, String)> {
    let text = match pinned {
        Some(k) => k,
        None => {
            let k = c.verifier_key().await?;
            eprintln!(
                "WARNING: no verifier key pinned (--vkey or COOP_VKEY); trusting the key the node \
                 itself gave ({k}). This proves the node consistent with itself, not that this \
                 is your co-op's log."
            );
            k
        }
    };
    let v = NoteVerifier::parse(&text).map_err(|e| anyhow!("--vkey: {e}"))?;
    Ok((v, text))
}

fn share(s: &Share) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Prints what a verified bundle establishes.
/// The details of a recounted tally (after its headline).
pub fn print_report(r: &TallyReport) {
    let p = &r.proposal;
    let t = &r.tally;
    outln!(
        "recounted proposal {} ({:?}, {}) against {}'s checkpoint of size {}, bylaws v{}",
        p.id,
        p.title,
        p.kind.as_str(),
        r.origin,
        r.size,
        r.bylaws_version
    );
    outln!(
        "  electorate {} members {:?}; {} entries checked",
        r.electorate,
        t.eligible,
        r.entries
    );
    outln!(
        "  {} ballots ({} by proxy), participation {} (quorum {}), outcome {}{}",
        t.ballots,
        t.by_proxy,
        share(&t.participation),
        if t.quorum_met { "met" } else { "not met" },
        name(&t.outcome),
        t.winner
            .and_then(|w| p.choices.get(w as usize))
            .map(|c| format!(", winner {c}"))
            .unwrap_or_default()
    );
    if let coopledger_governance::tallying::TallyResult::YesNo(y) = &t.result {
        outln!(
            "  yes share {} against {} {} ({}), threshold {}",
            y.yes_share
                .as_ref()
                .map(share)
                .unwrap_or_else(|| "none".into()),
            name(&p.rules.threshold.comparator),
            p.rules.threshold.ratio(),
            name(&p.rules.threshold.basis),
            if y.threshold_met { "met" } else { "not met" }
        );
    }
}

/// `coop tally export ID -o FILE`.
pub async fn export(
    c: &HttpClient,
    id: String,
    out: &Path,
    vkey: Option<String>,
) -> Result<ExitCode> {
    let bundle = c.tally_bundle(id).await?;
    let (vkey, vkey_text) = trusted_key(c, vkey).await?;
    if let Err(e) = bundle.verify(&vkey) {
        outln!("INVALID: the node's bundle does not verify, nothing written: {e}");
        return Ok(ExitCode::from(1));
    }
    let text = serde_json::to_string_pretty(&bundle)?;
    std::fs::write(out, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    outln!(
        "wrote {} ({} state proofs, {} entries, checkpoint size {}); recount it with: coop \
         verify-bundle {} --vkey {}",
        out.display(),
        bundle.states.len(),
        bundle.entries.len(),
        bundle.state_entry.index + 1,
        out.display(),
        vkey_text
    );
    Ok(ExitCode::SUCCESS)
}

/// `coop tally verify`: the same recount, on a bundle fetched from the node.
pub async fn verify_tally(
    c: &HttpClient,
    id: String,
    vkey: Option<String>,
    receipt: Option<PathBuf>,
) -> Result<ExitCode> {
    let bundle = c.tally_bundle(id.clone()).await?;
    let (vkey, _) = trusted_key(c, vkey).await?;
    let report = match bundle.verify(&vkey) {
        Ok(r) => r,
        Err(e) => {
            outln!("DIFFERS: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    print_report(&report);
    if let Some(path) = &receipt {
        let r = crate::ballot::read_receipt(path)?;
        if r.proposal != id {
            bail!(
                "{} is a receipt for proposal {}",
                path.display(),
                r.proposal
            );
        }
        let ballot = crate::ballot::check_receipt(&r, &report.node_key)?;
        match report.published.get(&ballot) {
            Some(at) => outln!(
                "your ballot {} is published in entry {at} and counted",
                r.ballot
            ),
            None => {
                outln!(
                    "DIFFERS: your ballot {} (receipt signed by the node) is missing from the \
                     published ballots",
                    r.ballot
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    outln!(
        "AGREES: tally at entry {}: {} ballots ({} by proxy), outcome {}",
        report.tally_index,
        report.tally.ballots,
        report.tally.by_proxy,
        name(&report.tally.outcome)
    );
    Ok(ExitCode::SUCCESS)
}
