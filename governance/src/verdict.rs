//! The verdict on a bundle file, whatever its kind: the one place that reads a bundle's
//! `format`, runs its offline verifier and words what it proves or why it fails. `coop
//! verify-bundle` and the portal's verifier (this code compiled to WebAssembly, `verifier/`)
//! both call [`judge`], so the terminal and the browser give the same verdict by construction.

use crate::consent_bundle::{BundleReport, ConsentBundle, CONSENT_BUNDLE_FORMAT};
use crate::revenue_bundle::{
    RevenueBundle, RevenueReport, Statement, REVENUE_BUNDLE_FORMAT, STATEMENT_FORMAT,
};
use crate::tally_bundle::{TallyBundle, TallyReport, TALLY_BUNDLE_FORMAT};
use coopledger_ledger::note::NoteVerifier;

/// What a valid bundle established, by kind.
#[derive(Debug, Clone)]
pub enum Proved {
    /// A member's consent history (`coopledger-consent-bundle/v1`), and the purpose it was
    /// exported for, if any.
    Consent(Box<BundleReport>, Option<String>),
    /// A distribution with its settlement and policy (`coopledger-revenue-bundle/v1`); the
    /// member it was cut for, if any.
    Revenue(Box<RevenueReport>, RevenueBundleFacts),
    /// A member's statement over several distributions (`coopledger-revenue-statement/v1`).
    Statement(Vec<RevenueReport>, String),
    /// A recounted tally (`coopledger-tally-bundle/v1`).
    Tally(Box<TallyReport>),
}

/// The revenue bundle's own fields a headline names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueBundleFacts {
    /// Period.
    pub period: String,
    /// Currency.
    pub currency: String,
    /// The member the bundle was cut for.
    pub member: Option<String>,
}

impl Proved {
    /// The kind, as a word: `consent`, `revenue`, `statement` or `tally`.
    pub fn kind(&self) -> &'static str {
        match self {
            Proved::Consent(..) => "consent",
            Proved::Revenue(..) => "revenue",
            Proved::Statement(..) => "statement",
            Proved::Tally(..) => "tally",
        }
    }

    /// For a revenue bundle, its distribution reconciled with its settlement (what `coop
    /// revenue reconcile` prints).
    pub fn reconciliation(&self) -> Option<crate::revenue_bundle::Reconciliation> {
        match self {
            Proved::Revenue(r, _) => Some(crate::revenue_bundle::reconciliation(r)),
            _ => None,
        }
    }

    /// One sentence saying what the bundle proves (after `VALID: `).
    pub fn headline(&self) -> String {
        match self {
            Proved::Consent(r, purpose) => format!(
                "the complete consent history of {} in {} as of checkpoint {} (node time {} ms){}",
                r.member,
                r.origin,
                r.size,
                r.as_of_ms,
                purpose
                    .as_deref()
                    .map(|p| format!(", for purpose {p}"))
                    .unwrap_or_default()
            ),
            Proved::Revenue(r, b) => format!(
                "the distribution of {} in {}, its settlement and its policy's adopting vote, as \
                 of checkpoint {} of {}",
                b.period, b.currency, r.size, r.origin
            ),
            Proved::Statement(reports, member) => format!(
                "the statement of {member} over {} distribution(s)",
                reports.len()
            ),
            Proved::Tally(r) => format!(
                "the tally at entry {} is what the proved votes give",
                r.tally_index
            ),
        }
    }
}

/// Why a bundle is not valid: one line, naming the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Reads `text` as a bundle of the kind its `format` names (a file with none is read as a
/// consent bundle, as the first bundles had no other kind) and verifies it offline against the
/// log's verifier key.
pub fn judge(text: &str, vkey: &NoteVerifier) -> Result<Proved, Invalid> {
    let format = serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| Invalid(format!("the file is not JSON: {e}")))?
        .get("format")
        .and_then(|f| f.as_str())
        .map(str::to_owned);
    let not_a = |what: &str, e: serde_json::Error| Invalid(format!("not a {what}: {e}"));
    match format.as_deref() {
        Some(REVENUE_BUNDLE_FORMAT) => {
            let b: RevenueBundle =
                serde_json::from_str(text).map_err(|e| not_a("revenue bundle", e))?;
            let r = b.verify(vkey).map_err(|e| Invalid(e.to_string()))?;
            Ok(Proved::Revenue(
                Box::new(r),
                RevenueBundleFacts {
                    period: b.period,
                    currency: b.currency,
                    member: b.member,
                },
            ))
        }
        Some(STATEMENT_FORMAT) => {
            let s: Statement =
                serde_json::from_str(text).map_err(|e| not_a("revenue statement", e))?;
            let reports = s.verify(vkey).map_err(|e| Invalid(e.to_string()))?;
            Ok(Proved::Statement(reports, s.member))
        }
        Some(TALLY_BUNDLE_FORMAT) => {
            let b: TallyBundle =
                serde_json::from_str(text).map_err(|e| not_a("tally bundle", e))?;
            let r = b.verify(vkey).map_err(|e| Invalid(e.to_string()))?;
            Ok(Proved::Tally(Box::new(r)))
        }
        Some(CONSENT_BUNDLE_FORMAT) | None => {
            let b: ConsentBundle =
                serde_json::from_str(text).map_err(|e| not_a("consent bundle", e))?;
            let r = b.verify(vkey).map_err(|e| Invalid(e.to_string()))?;
            Ok(Proved::Consent(Box::new(r), b.purpose))
        }
        Some(other) => Err(Invalid(format!(
            "unknown bundle format {other:?} (this verifier reads {CONSENT_BUNDLE_FORMAT}, \
             {REVENUE_BUNDLE_FORMAT}, {STATEMENT_FORMAT} and {TALLY_BUNDLE_FORMAT})"
        ))),
    }
}
