//! `admin_*`: what only the node's operator may ask — today a consistent backup while the node
//! runs. The operator proves who they are with the token the node writes into its data folder
//! at every start (`admin.token`, 0600): reading it needs the node user's access to the folder.

use crate::api::{AdminApiServer, BackupResult, RpcResult};
use crate::error;
use coopledger_node::{folder, Node};
use jsonrpsee::core::async_trait;
use std::sync::Arc;

pub(crate) struct AdminRpc {
    pub(crate) node: Arc<Node>,
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[async_trait]
impl AdminApiServer for AdminRpc {
    async fn backup(&self, token: String, path: String) -> RpcResult<BackupResult> {
        if !same(token.as_bytes(), self.node.admin_token.as_bytes()) {
            return Err(error::forbidden(
                "token",
                "is not this node's admin.token (read it from the data folder)",
            ));
        }
        let dest = std::path::PathBuf::from(&path);
        if !dest.is_absolute() {
            return Err(error::invalid_param("path", "must be an absolute path"));
        }
        if dest.exists() {
            return Err(error::invalid_param(
                "path",
                "already exists; a backup never overwrites",
            ));
        }
        let node = self.node.clone();
        let info =
            tokio::task::spawn_blocking(move || folder::backup(&node.log, &node.data, &dest))
                .await
                .map_err(|e| error::corrupt(format!("backup task: {e}")))?
                .map_err(|e| error::corrupt(e.to_string()))?;
        Ok(BackupResult {
            path,
            origin: info.origin,
            size: info.size,
            root: info.root,
        })
    }
}
