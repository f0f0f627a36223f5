//! `--member ID` or `--key FILE`: whichever a person has at hand names the member. A key file
//! names its member through the co-op's key register (any of the member's keys, not only the
//! first), so it works on every device a member has added.

use anyhow::{anyhow, Result};
use clap::Args;
use coopledger_ledger::codec::b64_encode;
use coopledger_node::keyfile;
use coopledger_rpc::client::HttpClient;
use coopledger_rpc::GovApiClient;
use std::path::PathBuf;

/// A member, by id or by one of their key files.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// Member id (`m-` and 16 hex digits).
    #[arg(long)]
    pub member: Option<String>,
    /// Or one of the member's key files: the id is looked up from the key.
    #[arg(long = "key", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl Who {
    /// The member id.
    pub async fn id(&self, c: &HttpClient) -> Result<String> {
        match (&self.member, &self.key) {
            (Some(m), _) => Ok(m.clone()),
            (None, Some(path)) => {
                let public = keyfile::read(path)?.verifying_key().to_bytes();
                let record = c.key(b64_encode(public)).await?;
                if record.member == "node" || record.member.contains(':') {
                    return Err(anyhow!(
                        "{} is the key of {}, not of a member",
                        path.display(),
                        record.member
                    ));
                }
                Ok(record.member)
            }
            (None, None) => Err(anyhow!("give --member ID or --key FILE")),
        }
    }
}
