//! The JSON-RPC interface: method names and parameter names are a stable contract with outside
//! verifiers. The macro generates both the server trait and the typed client (`LedgerApiClient`).

use crate::wire::{CheckpointInfo, ConsistencyProof, EntryResult, InclusionProof, SubmitResult};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;

/// Result type of every method.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// `ledger_*`: the verifiable log.
#[rpc(server, client, namespace = "ledger")]
pub trait LedgerApi {
    /// Submits a signed entry; answers once a stored checkpoint covers it.
    #[method(name = "submit")]
    async fn submit(&self, entry: Value) -> RpcResult<SubmitResult>;

    /// Entry at `index`: exact bytes (base64), leaf hash, decoded envelope.
    #[method(name = "getEntry")]
    async fn get_entry(&self, index: u64) -> RpcResult<EntryResult>;

    /// The newest signed checkpoint.
    #[method(name = "checkpoint")]
    async fn checkpoint(&self) -> RpcResult<CheckpointInfo>;

    /// The checkpoint the node signed at exactly `size` (every checkpoint is stored).
    #[method(name = "checkpointAt")]
    async fn checkpoint_at(&self, size: u64) -> RpcResult<CheckpointInfo>;

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
