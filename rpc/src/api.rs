//! The JSON-RPC interface: method names and parameter names are a stable contract with outside
//! verifiers. The macro generates both the server trait and the typed client (`LedgerApiClient`).

use crate::consent_wire::{
    DataUseView, GrantView, NoticeView, PartyView, PolicyView, SettlementView, StatusView,
};
use crate::gov_wire::{ApplicationView, KeyInfo, ProposalView, StandingView, VoterView};
use crate::personal::{Attribute, ErasureResult};
use crate::recovery::KitView;
use crate::revenue::PeriodBooks;
use crate::wire::{
    BallotReceipt, BallotToken, BatchAnswer, CheckpointInfo, ConsistencyProof, CoopInfo,
    ElectorateView, EntryResult, InclusionProof, MemberView, ProposalSummary, SubmitResult,
};
use crate::witness::WitnessInfo;
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::consent::Timeline;
use coopledger_governance::consent_bundle::ConsentBundle;
use coopledger_governance::revenue::Distribution;
use coopledger_governance::revenue_bundle::{RevenueBundle, Statement};
use coopledger_governance::rules::anchors::AnchorReceipt;
use coopledger_governance::tally_bundle::TallyBundle;
use coopledger_governance::tallying::TallyRecord;
use coopledger_ledger::witness::{SplitViewEvidence, Witnessed};
use coopledger_node::anchoring::AnchorStatus;
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// Result type of every method.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// `ledger_*`: the verifiable log.
#[rpc(server, client, namespace = "ledger")]
pub trait LedgerApi {
    /// Submits a signed entry; answers once a stored checkpoint covers it.
    #[method(name = "submit")]
    async fn submit(&self, entry: Value) -> RpcResult<SubmitResult>;

    /// Submits up to 1,000 signed entries in one request, sequenced together (one checkpoint
    /// covers every accepted one; a signer's consecutive entries in order are all accepted).
    /// Answers one object per entry, in order: `{receipt}` or `{error: {code, message, data}}`
    /// with the codes `ledger_submit` uses.
    #[method(name = "submitBatch")]
    async fn submit_batch(&self, entries: Vec<Value>) -> RpcResult<Vec<BatchAnswer>>;

    /// Entry at `index`: exact bytes (base64), leaf hash, decoded envelope.
    #[method(name = "getEntry")]
    async fn get_entry(&self, index: u64) -> RpcResult<EntryResult>;

    /// The newest signed checkpoint.
    #[method(name = "checkpoint")]
    async fn checkpoint(&self) -> RpcResult<CheckpointInfo>;

    /// The checkpoint the node signed at exactly `size` (every checkpoint is stored).
    #[method(name = "checkpointAt")]
    async fn checkpoint_at(&self, size: u64) -> RpcResult<CheckpointInfo>;

    /// The newest checkpoint its witnesses have cosigned, with their cosignature lines after
    /// the node's signature (C2SP tlog-cosignature); `NOT_FOUND` until one has.
    #[method(name = "cosignedCheckpoint")]
    async fn cosigned_checkpoint(&self) -> RpcResult<CheckpointInfo>;

    /// The witnesses this node asks to cosign its checkpoints (C2SP witness key strings), so a
    /// verifier can check the cosignature lines of `ledger_cosignedCheckpoint`.
    #[method(name = "witnesses")]
    async fn witnesses(&self) -> RpcResult<Vec<String>>;

    /// Inclusion proof of entry `index` in the tree of `treeSize` entries.
    #[method(name = "inclusionProof")]
    async fn inclusion_proof(
        &self,
        index: u64,
        #[argument(rename = "treeSize")] tree_size: u64,
    ) -> RpcResult<InclusionProof>;

    /// Inclusion proof of the entry with leaf hash `leafHash` (base64).
    #[method(name = "inclusionProofByHash")]
    async fn inclusion_proof_by_hash(
        &self,
        #[argument(rename = "leafHash")] leaf_hash: String,
        #[argument(rename = "treeSize")] tree_size: u64,
    ) -> RpcResult<InclusionProof>;

    /// Consistency proof between two tree sizes.
    #[method(name = "consistencyProof")]
    async fn consistency_proof(
        &self,
        #[argument(rename = "fromSize")] from_size: u64,
        #[argument(rename = "toSize")] to_size: u64,
    ) -> RpcResult<ConsistencyProof>;

    /// The checkpoint verifier key `<origin>+<keyid>+<base64>`.
    #[method(name = "verifierKey")]
    async fn verifier_key(&self) -> RpcResult<String>;

    /// The next sequence number `signer` (base64 public key) should use.
    #[method(name = "nextSeq")]
    async fn next_seq(&self, signer: String) -> RpcResult<u64>;

    /// Pushes every new checkpoint as a `ledger_newCheckpoint` notification.
    #[subscription(name = "subscribeCheckpoints" => "newCheckpoint", unsubscribe = "unsubscribeCheckpoints", item = CheckpointInfo)]
    async fn subscribe_checkpoints(&self) -> SubscriptionResult;
}

/// `gov_*`: the co-op's governance state — bylaws, members, proposals, votes and tallies.
/// Entries are submitted with `ledger_submit`; these methods read what the rules made of them.
#[rpc(server, client, namespace = "gov")]
pub trait GovApi {
    /// The co-op: name, node key, genesis index, member count, bylaws version, entry types.
    #[method(name = "info")]
    async fn info(&self) -> RpcResult<CoopInfo>;

    /// The bylaws in force.
    #[method(name = "bylaws")]
    async fn bylaws(&self) -> RpcResult<Bylaws>;

    /// One member: record, history, and standing as of `atIndex` (default: now).
    #[method(name = "member")]
    async fn member(
        &self,
        member: String,
        #[argument(rename = "atIndex")] at_index: Option<u64>,
    ) -> RpcResult<MemberView>;

    /// Who was a member, in which class and standing, as of log index `atIndex` (default: now).
    #[method(name = "members")]
    async fn members(
        &self,
        #[argument(rename = "atIndex")] at_index: Option<u64>,
    ) -> RpcResult<Vec<StandingView>>;

    /// What the co-op knows of a key (base64): its member, since when, revoked when.
    #[method(name = "key")]
    async fn key(&self, key: String) -> RpcResult<KeyInfo>;

    /// A membership application by entry id (hex).
    #[method(name = "application")]
    async fn application(&self, id: String) -> RpcResult<ApplicationView>;

    /// Applications, newest first, at most [`crate::gov::MAX_APPLICATIONS`]; with
    /// `pending: true` only those neither admitted nor declined (what the board decides on).
    #[method(name = "applications")]
    async fn applications(&self, pending: Option<bool>) -> RpcResult<Vec<ApplicationView>>;

    /// A proposal by id (hex): terms, frozen rules and electorate counts, status, tally.
    #[method(name = "proposal")]
    async fn proposal(&self, id: String) -> RpcResult<ProposalView>;

    /// Every proposal, newest first.
    #[method(name = "proposals")]
    async fn proposals(&self) -> RpcResult<Vec<ProposalSummary>>;

    /// Log indexes of every entry about a proposal, in log order (creation, amendments, votes,
    /// proxies, withdrawal, tally): fetch them with inclusion proofs to recount.
    #[method(name = "proposalEntries")]
    async fn proposal_entries(&self, id: String) -> RpcResult<Vec<u64>>;

    /// One member on one proposal: whether they may vote now and why not, what their vote
    /// weighs, their current vote (or secret-ballot participation), the proxy they gave and how
    /// its holder voted, and the proxies they hold.
    #[method(name = "voter")]
    async fn voter(&self, proposal: String, member: String) -> RpcResult<VoterView>;

    /// The frozen electorate of a proposal, with the digest its tally commits to.
    #[method(name = "electorate")]
    async fn electorate(&self, id: String) -> RpcResult<ElectorateView>;

    /// The tally bundle of a closed proposal (`coopledger-tally-bundle/v1`): every record and
    /// entry its count reads, proved under the newest checkpoint, for an offline recount
    /// (`coop verify-bundle`). RESULTS_SEALED while voting is open; NOT_FOUND when withdrawn.
    #[method(name = "tallyBundle")]
    async fn tally_bundle(&self, id: String) -> RpcResult<TallyBundle>;

    /// The running tally of an open proposal whose bylaws make results live; refused with
    /// RESULTS_SEALED when results come only after close.
    #[method(name = "liveTally")]
    async fn live_tally(&self, id: String) -> RpcResult<TallyRecord>;

    /// Secret ballots: the node's answer to `member`'s participation in `proposal` (the blinded
    /// token of their `gov.vote`), with a proof the voter checks against the published key.
    #[method(name = "ballotToken")]
    async fn ballot_token(&self, proposal: String, member: String) -> RpcResult<BallotToken>;

    /// Secret ballots: puts a `gov.ballot` signed with a one-time key into the ballot box. Checked
    /// as the rules will check it, stored durably, published with every other ballot when voting
    /// closes; answered with a receipt signed by the node.
    #[method(name = "castBallot")]
    async fn cast_ballot(&self, ballot: Value) -> RpcResult<BallotReceipt>;
}

/// `consent_*`: the consent ledger — parties, notices, grants, statuses, timelines, data uses,
/// receipts. Entries are submitted with `ledger_submit`.
#[rpc(server, client, namespace = "consent")]
pub trait ConsentApi {
    /// Every registered party.
    #[method(name = "parties")]
    async fn parties(&self) -> RpcResult<Vec<PartyView>>;

    /// Every version of every notice.
    #[method(name = "notices")]
    async fn notices(&self) -> RpcResult<Vec<NoticeView>>;

    /// One notice; the latest version unless `version` is given.
    #[method(name = "notice")]
    async fn notice(&self, notice: String, version: Option<u64>) -> RpcResult<NoticeView>;

    /// The text of a notice (the latest version unless `version` is given), as published: its
    /// SHA-256 is the notice's `textDigest` (check it). `NOT_FOUND` until someone hands it in.
    #[method(name = "noticeText")]
    async fn notice_text(&self, notice: String, version: Option<u64>) -> RpcResult<String>;

    /// Hands in the text of a published notice (UTF-8, at most 64 KiB): kept only if a notice's
    /// `textDigest` is its SHA-256; answers the notices that cite it (`id vN`).
    #[method(name = "putNoticeText")]
    async fn put_notice_text(&self, text: String) -> RpcResult<Vec<String>>;

    /// A grant by id (hex), with its periods and end.
    #[method(name = "grant")]
    async fn grant(&self, id: String) -> RpcResult<GrantView>;

    /// A member's grants.
    #[method(name = "grants")]
    async fn grants(&self, member: String) -> RpcResult<Vec<GrantView>>;

    /// Where (member, purpose, recipient) stands as of log index `atIndex` (default: now) at
    /// time `atMs` (default: the node's clock).
    #[method(name = "status")]
    async fn status(
        &self,
        member: String,
        purpose: String,
        recipient: String,
        #[argument(rename = "atIndex")] at_index: Option<u64>,
        #[argument(rename = "atMs")] at_ms: Option<u64>,
    ) -> RpcResult<StatusView>;

    /// Every consent entry about a member, in log order.
    #[method(name = "timeline")]
    async fn timeline(&self, member: String) -> RpcResult<Timeline>;

    /// A data use by id (hex).
    #[method(name = "use")]
    async fn data_use(&self, id: String) -> RpcResult<DataUseView>;

    /// The consent receipt of a grant (Kantara Consent Receipt v1.1 shape).
    #[method(name = "receipt")]
    async fn receipt(&self, grant: String) -> RpcResult<Value>;

    /// The regulator bundle: the member's complete consent history as of the newest checkpoint,
    /// with every proof needed to check it offline (`coopledger-consent-bundle/v1`). With
    /// `purpose`, grants not covering it are shown by their grant entry only.
    #[method(name = "bundle")]
    async fn bundle(&self, member: String, purpose: Option<String>) -> RpcResult<ConsentBundle>;
}

/// `personal_*`: members' personal data, off the log (encrypted per member; only salted
/// commitments are on the log), and its erasure.
#[rpc(server, client, namespace = "personal")]
pub trait PersonalApi {
    /// Stores the attributes (encrypted, off the log) and submits the member's
    /// `member.profile` entry, which must commit to exactly these values and salts.
    #[method(name = "submit")]
    async fn submit(
        &self,
        entry: Value,
        attributes: BTreeMap<String, Attribute>,
    ) -> RpcResult<SubmitResult>;

    /// The member's attributes, for a request signed by the member or a board member:
    /// `sig` over `"coopledger/v2/personal-read\0" ‖ origin ‖ 0 ‖ member ‖ 0 ‖ ts (8 bytes BE)
    /// ‖ nonce (16 bytes)`; good for one read within 30 s of `ts`.
    #[method(name = "read")]
    async fn read(
        &self,
        member: String,
        ts: u64,
        nonce: String,
        signer: String,
        sig: String,
    ) -> RpcResult<BTreeMap<String, String>>;

    /// Submits a `member.erase` entry, then destroys the member's key and data on this node.
    #[method(name = "erase")]
    async fn erase(&self, entry: Value) -> RpcResult<ErasureResult>;
}

/// `recovery_*`: members' recovery kits — a backup key sealed in the member's browser under a
/// recovery code the node never sees, stored with the backup key's `member.key_add`.
#[rpc(server, client, namespace = "recovery")]
pub trait RecoveryApi {
    /// Submits `entry` (the `member.key_add` registering the backup key) and, once the rules
    /// accepted it, keeps `kit` (base64 of the sealed key, 28 to 512 bytes) under `locator`
    /// (base64 of the 32 bytes the recovery code derives). The member's previous kit is dropped.
    #[method(name = "store")]
    async fn store(&self, entry: Value, locator: String, kit: String) -> RpcResult<SubmitResult>;

    /// The kit under `locator`, while its backup key is a current key of a member.
    #[method(name = "kit")]
    async fn kit(&self, locator: String) -> RpcResult<KitView>;
}

/// `revenue_*`: data revenue, expenses, the allocation policy in force and distributions.
/// Entries are submitted with `ledger_submit`.
#[rpc(server, client, namespace = "revenue")]
pub trait RevenueApi {
    /// The allocation policy in force and the vote that adopted it (`null` if none).
    #[method(name = "policy")]
    async fn policy(&self) -> RpcResult<Option<PolicyView>>;

    /// The revenues and expenses of a period in a currency.
    #[method(name = "ledger")]
    async fn ledger(&self, period: String, currency: String) -> RpcResult<PeriodBooks>;

    /// The distribution the log implies for a period in a currency, exactly as
    /// `revenue.distribute` must carry it (refused by rule name when none can be made).
    #[method(name = "preview")]
    async fn preview(&self, period: String, currency: String) -> RpcResult<Distribution>;

    /// The recorded distribution of a period in a currency.
    #[method(name = "distribution")]
    async fn distribution(&self, period: String, currency: String) -> RpcResult<Distribution>;

    /// Every recorded distribution, by period then currency.
    #[method(name = "distributions")]
    async fn distributions(&self) -> RpcResult<Vec<Distribution>>;

    /// Payments against a distribution's lines and the unclaimed transfer, if made.
    #[method(name = "settlement")]
    async fn settlement(&self, period: String, currency: String) -> RpcResult<SettlementView>;

    /// A member's statement (`coopledger-revenue-statement/v1`): the revenue bundle of every
    /// recorded distribution with a line of theirs.
    #[method(name = "statement")]
    async fn statement(&self, member: String) -> RpcResult<Statement>;

    /// The revenue bundle of a recorded distribution (`coopledger-revenue-bundle/v1`): a
    /// member's statement when `member` is given, else the whole reconciliation.
    #[method(name = "bundle")]
    async fn bundle(
        &self,
        period: String,
        currency: String,
        member: Option<String>,
    ) -> RpcResult<RevenueBundle>;
}

/// `witness_*`: this node as a witness (C2SP tlog-witness) for other co-ops' logs. Checkpoints
/// are submitted with HTTP `POST /add-checkpoint` on the same port, as the protocol defines.
#[rpc(server, client, namespace = "witness")]
pub trait WitnessApi {
    /// The witness's name, key and the logs it follows.
    #[method(name = "info")]
    async fn info(&self) -> RpcResult<WitnessInfo>;

    /// The latest checkpoint this witness cosigned for `origin`.
    #[method(name = "latest")]
    async fn latest(&self, origin: String) -> RpcResult<Witnessed>;

    /// Split-view evidence kept about `origin`: pairs of checkpoints the log signed that cannot
    /// both be true.
    #[method(name = "evidence")]
    async fn evidence(&self, origin: String) -> RpcResult<Vec<SplitViewEvidence>>;
}

/// `anchor_*`: anchoring of checkpoints on an EVM chain.
#[rpc(server, client, namespace = "anchor")]
pub trait AnchorApi {
    /// What the anchoring loop is doing: enabled, chain, anchored size, pending transaction,
    /// last error and failures in a row.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<AnchorStatus>;

    /// Every recorded `anchor.receipt`, by anchored size.
    #[method(name = "list")]
    async fn list(&self) -> RpcResult<Vec<AnchorReceipt>>;
}

/// What `admin_backup` wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupResult {
    /// Where.
    pub path: String,
    /// The ledger's origin.
    pub origin: String,
    /// Size of the newest checkpoint the backup is certain to hold.
    pub size: u64,
    /// Its root (base64).
    pub root: String,
}

/// `admin_*`: the node's operator, who proves it by reading `admin.token` from the data folder
/// (readable by the node's user only).
#[rpc(server, client, namespace = "admin")]
pub trait AdminApi {
    /// Writes a consistent backup of the running node into `path` (absolute; must not exist):
    /// the ledger, its record of signed checkpoints and the node key. The vault key is not
    /// included.
    #[method(name = "backup")]
    async fn backup(&self, token: String, path: String) -> RpcResult<BackupResult>;
}
