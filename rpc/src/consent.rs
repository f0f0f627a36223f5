//! `consent_*` methods: read-only views of the consent ledger the rules keep, from the node's
//! committed state.

use crate::api::{ConsentApiServer, RpcResult};
use crate::consent_wire::{DataUseView, GrantView, NoticeView, PartyView, StatusView};
use crate::error;
use coopledger_governance::consent::{self, Grant, StoredTimeline, Timeline};
use coopledger_governance::consent_bundle::{self, ConsentBundle, CONSENT_BUNDLE_FORMAT};
use coopledger_governance::{parse_id, CoopRules};
use coopledger_ledger::bundle::{ProvenEntry, ProvenState};
use coopledger_ledger::log::now_ms;
use coopledger_ledger::{Envelope, Log, StateRead};
use jsonrpsee::core::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) struct ConsentRpc {
    pub(crate) log: Arc<Log<CoopRules>>,
    pub(crate) texts: coopledger_node::notice_texts::NoticeTexts,
}

impl ConsentRpc {
    fn state(&self) -> &dyn StateRead {
        self.log.as_ref()
    }

    /// The newest checkpointed index and the node's clock: "now" for a status.
    fn now(&self) -> (u64, u64) {
        (
            self.log.checkpoint().checkpoint.size.saturating_sub(1),
            now_ms(),
        )
    }

    fn grant_record(&self, id: &str) -> RpcResult<Grant> {
        let idb = parse_id(id)
            .ok_or_else(|| error::invalid_param("id", "must be 64 lowercase hex digits"))?;
        consent::grant(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("id", format!("no consent grant {id}")))
    }
}

/// Assembles the regulator bundle of `member` as of the newest checkpoint (see
/// `docs/consent-bundle.md`). Reads only what that checkpoint covers: the timeline comes with its
/// state proof, entries and notices with their inclusion proofs at the checkpoint's size.
pub fn assemble_bundle(
    log: &Log<CoopRules>,
    member: &str,
    purpose: Option<&str>,
) -> RpcResult<ConsentBundle> {
    let q = |e: coopledger_ledger::QueryError| error::query(&e);
    let s = |e: coopledger_ledger::store::StoreError| error::storage(&e);
    let at = log.prove_state(&consent::timeline_key(member)).map_err(q)?;
    let size = at.checkpoint.checkpoint.size;
    // The value as of the checkpoint; in the chained form its events are read from the newest
    // state (event keys are only ever added) and checked against the proved head.
    let stored: Option<StoredTimeline> = at
        .value
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| error::corrupt(format!("stored timeline of {member}: {e}")))?;
    let chained = matches!(stored, Some(StoredTimeline::Chained(_)));
    let timeline: Timeline = match stored {
        Some(stored) => consent::timeline_of(log, member, stored).map_err(s)?,
        None => Timeline {
            member: member.to_owned(),
            events: vec![],
        },
    };
    // Grant records only for their fixed parts (purposes, notice): never changed after the grant.
    let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
    for ev in &timeline.events {
        if grants.contains_key(&ev.grant) {
            continue;
        }
        let id = parse_id(&ev.grant)
            .ok_or_else(|| error::corrupt(format!("timeline names grant {:?}", ev.grant)))?;
        let g = consent::grant(log, &id)
            .map_err(s)?
            .ok_or_else(|| error::corrupt(format!("grant {} is missing", ev.grant)))?;
        grants.insert(ev.grant.clone(), g);
    }
    let proven = |index: u64| -> RpcResult<(ProvenEntry, Envelope)> {
        let bytes = log.entry(index).map_err(q)?;
        let proof = log.inclusion_proof(index, size).map_err(q)?;
        let env = Envelope::from_bytes(&bytes)
            .map_err(|e| error::corrupt(format!("stored entry {index}: {e}")))?;
        Ok((ProvenEntry::new(index, &bytes, &proof), env))
    };
    let needed = consent_bundle::needed_indexes(&timeline, purpose, |id| {
        grants
            .get(id)
            .map(|g| g.purposes.clone())
            .unwrap_or_default()
    });
    let mut entries = Vec::with_capacity(needed.len());
    let mut by_index = BTreeMap::new();
    for index in needed {
        let (p, env) = proven(index)?;
        entries.push(p);
        by_index.insert(index, env);
    }
    let mut notices = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for g in grants
        .values()
        .filter(|g| consent_bundle::follows(purpose, &g.purposes))
    {
        if !seen.insert((g.notice.clone(), g.version)) {
            continue;
        }
        let n = consent::notice(log, &g.notice, g.version)
            .map_err(s)?
            .ok_or_else(|| error::corrupt(format!("notice {} is missing", g.notice)))?;
        notices.push(proven(n.index)?.0);
    }
    let (history, _) = consent_bundle::history(member, purpose, &timeline, &by_index)
        .map_err(|e| error::corrupt(format!("consent history of {member}: {e}")))?;
    let state_index = size - 1;
    Ok(ConsentBundle {
        format: CONSENT_BUNDLE_FORMAT.into(),
        member: member.to_owned(),
        purpose: purpose.map(str::to_owned),
        // With the witnesses' cosignatures when they have already cosigned this checkpoint.
        checkpoint: coopledger_node::cosigning::cosigned_note(log, size)
            .ok()
            .flatten()
            .unwrap_or_else(|| at.checkpoint.note.clone()),
        state_entry: proven(state_index)?.0,
        timeline: ProvenState::new(&at.key, at.value.as_deref(), &at.proof),
        timeline_events: chained.then(|| timeline.events.clone()),
        entries,
        notices,
        history,
    })
}

#[async_trait]
impl ConsentApiServer for ConsentRpc {
    async fn bundle(&self, member: String, purpose: Option<String>) -> RpcResult<ConsentBundle> {
        error::member_param("member", &member)?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || assemble_bundle(&log, &member, purpose.as_deref()))
            .await
            .map_err(|e| error::corrupt(format!("bundle task: {e}")))?
    }

    async fn parties(&self) -> RpcResult<Vec<PartyView>> {
        Ok(consent::parties(self.state())
            .map_err(|e| error::storage(&e))?
            .into_iter()
            .map(PartyView::from)
            .collect())
    }

    async fn notices(&self) -> RpcResult<Vec<NoticeView>> {
        Ok(consent::notices(self.state())
            .map_err(|e| error::storage(&e))?
            .into_iter()
            .map(NoticeView::from)
            .collect())
    }

    async fn notice(&self, notice: String, version: Option<u64>) -> RpcResult<NoticeView> {
        match version {
            Some(v) => consent::notice(self.state(), &notice, v),
            None => consent::latest_notice(self.state(), &notice),
        }
        .map_err(|e| error::storage(&e))?
        .map(NoticeView::from)
        .ok_or_else(|| error::not_found("notice", format!("no notice {notice}")))
    }

    async fn notice_text(&self, notice: String, version: Option<u64>) -> RpcResult<String> {
        let n = self.notice(notice.clone(), version).await?;
        let digest: [u8; 32] = coopledger_ledger::codec::b64_decode(&n.text_digest)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| error::corrupt(format!("notice {notice}: textDigest")))?;
        let bytes = self
            .texts
            .get(&digest)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found(
                    "notice",
                    format!("the text of {notice} v{} has not been handed in", n.version),
                )
            })?;
        String::from_utf8(bytes).map_err(|_| error::corrupt(format!("notice {notice}: text")))
    }

    async fn put_notice_text(&self, text: String) -> RpcResult<Vec<String>> {
        use coopledger_node::notice_texts::TextError;
        let texts = self.texts.clone();
        tokio::task::spawn_blocking(move || texts.keep(text.as_bytes()))
            .await
            .map_err(|e| error::corrupt(format!("notice text task: {e}")))?
            .map_err(|e| match e {
                TextError::Storage(s) => error::storage(&s),
                other => error::invalid_param("text", &other.to_string()),
            })
    }

    async fn grant(&self, id: String) -> RpcResult<GrantView> {
        let (index, ms) = self.now();
        Ok(GrantView::at(self.grant_record(&id)?, index, ms))
    }

    async fn grants(&self, member: String) -> RpcResult<Vec<GrantView>> {
        error::member_param("member", &member)?;
        let (index, ms) = self.now();
        Ok(consent::member_grants(self.state(), &member)
            .map_err(|e| error::storage(&e))?
            .into_iter()
            .map(|g| GrantView::at(g, index, ms))
            .collect())
    }

    async fn status(
        &self,
        member: String,
        purpose: String,
        recipient: String,
        at_index: Option<u64>,
        at_ms: Option<u64>,
    ) -> RpcResult<StatusView> {
        error::member_param("member", &member)?;
        let grants =
            consent::member_grants(self.state(), &member).map_err(|e| error::storage(&e))?;
        let now_index = self.log.checkpoint().checkpoint.size.saturating_sub(1);
        Ok(consent::status(
            &grants,
            &member,
            &purpose,
            &recipient,
            at_index.unwrap_or(now_index),
            at_ms.unwrap_or_else(now_ms),
        )
        .into())
    }

    async fn timeline(&self, member: String) -> RpcResult<Timeline> {
        error::member_param("member", &member)?;
        consent::timeline(self.state(), &member).map_err(|e| error::storage(&e))
    }

    async fn data_use(&self, id: String) -> RpcResult<DataUseView> {
        let idb = parse_id(&id)
            .ok_or_else(|| error::invalid_param("id", "must be 64 lowercase hex digits"))?;
        consent::data_use(self.state(), &idb)
            .map_err(|e| error::storage(&e))?
            .map(DataUseView::from)
            .ok_or_else(|| error::not_found("id", format!("no data use {id}")))
    }

    async fn receipt(&self, grant: String) -> RpcResult<Value> {
        let g = self.grant_record(&grant)?;
        let s = self.state();
        let n = consent::notice(s, &g.notice, g.version)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| error::not_found("grant", "the grant's notice is missing".into()))?;
        let c = consent::party(s, &n.controller)
            .map_err(|e| error::storage(&e))?
            .ok_or_else(|| {
                error::not_found("grant", "the notice's controller is missing".into())
            })?;
        Ok(consent::receipt(&g, &n, &c))
    }
}
