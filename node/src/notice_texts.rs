//! The texts of consent notices: the log holds each notice's `textDigest` (SHA-256 of the text a
//! member reads before consenting); the node keeps the texts themselves, off the log, so a
//! member's page can show them — and checks each against its digest before showing it.
//!
//! A text is kept only when a published notice commits to its digest (the rules accepted that
//! notice first: off-log writes follow acceptance), so anyone may hand one in: it can only ever
//! be the text the co-op published. Off-log key: `notice-text/<hex digest>` → the text's bytes.

use coopledger_governance::consent;
use coopledger_governance::CoopRules;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::store::StoreError;
use coopledger_ledger::Log;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Longest notice text kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Why a text was not kept.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Over [`MAX_TEXT_BYTES`].
    #[error("text: {0} bytes, more than the {MAX_TEXT_BYTES} kept")]
    TooLong(usize),
    /// No published notice commits to this text.
    #[error("text: no published notice has this text's SHA-256 ({0}) as its textDigest")]
    Unpublished(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

fn text_key(digest: &[u8; 32]) -> Vec<u8> {
    [b"notice-text/".as_slice(), hex::encode(digest).as_bytes()].concat()
}

/// The notice texts of one node.
#[derive(Debug, Clone)]
pub struct NoticeTexts {
    log: Arc<Log<CoopRules>>,
}

impl NoticeTexts {
    /// The texts kept in `log`'s off-log records.
    pub fn new(log: Arc<Log<CoopRules>>) -> NoticeTexts {
        NoticeTexts { log }
    }

    /// Keeps `text` if a published notice commits to it; returns the notices (`id vN`) that do.
    pub fn keep(&self, text: &[u8]) -> Result<Vec<String>, TextError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TextError::TooLong(text.len()));
        }
        let digest: [u8; 32] = Sha256::digest(text).into();
        let b64 = b64_encode(digest);
        let citing: Vec<String> = consent::notices(self.log.as_ref())?
            .into_iter()
            .filter(|n| n.text_digest == b64)
            .map(|n| format!("{} v{}", n.notice, n.version))
            .collect();
        if citing.is_empty() {
            return Err(TextError::Unpublished(b64));
        }
        self.log.offlog_put(&text_key(&digest), text)?;
        Ok(citing)
    }

    /// The text whose SHA-256 is `digest`, if kept.
    pub fn get(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.log.offlog_get(&text_key(digest))
    }
}
