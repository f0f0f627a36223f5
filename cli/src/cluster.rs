//! `coop cluster init|join|status|leave` (`docs/replication.md` §6): making a data folder a
//! replica's, and asking the cluster's leader to let a replica in or out. `coop serve` runs a
//! replica when its folder holds `cluster.json`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use coopledger_node::cluster::membership::{ClusterFile, ClusterRequest};
use coopledger_node::cluster::ReplicaAddr;
use coopledger_node::{folder, keyfile};
use jsonrpsee::core::client::ClientT;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Make this data folder the first replica of a new cluster (a demo co-op is created in a
    /// new folder, as `coop serve` would). Then `coop serve --data DIR` starts it.
    Init(PlaceArgs),
    /// Make a new data folder a replica of an existing co-op's cluster: the co-op's node key
    /// (copied from a replica) and an empty ledger; `coop serve --data DIR` then starts it,
    /// asks the leader to let it in, and catches up.
    Join {
        #[command(flatten)]
        place: PlaceArgs,
        /// Public URL of any replica of the cluster.
        #[arg(long)]
        via: String,
        /// The co-op's node key file (from another replica's data folder, `node.key`).
        #[arg(long)]
        node_key: PathBuf,
    },
    /// Leader, term, and every replica's applied index and lag (`--rpc` names any replica).
    Status,
    /// Take the replica of this data folder out of the cluster (asked of the replica at
    /// `--rpc`, forwarded to the leader).
    Leave {
        /// The leaving replica's data folder.
        #[arg(long, default_value = "coop-data")]
        data: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct PlaceArgs {
    /// The replica's data folder.
    #[arg(long, default_value = "coop-data")]
    data: PathBuf,
    /// Its id in the cluster (1, 2, 3…; unique).
    #[arg(long)]
    id: u64,
    /// The public URL members and the portal use (what `--listen` of `coop serve` serves).
    #[arg(long)]
    public: String,
    /// Its cluster listener, `host:port` (replicas only; mutual TLS with the co-op's key).
    #[arg(long)]
    cluster: String,
}

pub async fn run(rpc: &str, cmd: ClusterCmd) -> Result<()> {
    match cmd {
        ClusterCmd::Init(place) => {
            if !folder::exists(&place.data) {
                outln!(
                    "no ledger in {}; creating a demo co-op",
                    place.data.display()
                );
                folder::create_demo(&place.data).await?;
            }
            let file = ClusterFile {
                id: place.id,
                public: place.public,
                cluster: place.cluster,
                initialize: true,
                join_via: None,
            };
            refuse_existing(&place.data)?;
            file.write(&place.data)?;
            outln!(
                "{} is replica {} of a new cluster; start it with `coop serve --data {} --listen {}`",
                place.data.display(),
                file.id,
                place.data.display(),
                listen_of(&file.public)
            );
        }
        ClusterCmd::Join {
            place,
            via,
            node_key,
        } => {
            let key = keyfile::read(&node_key)?;
            let client = crate::client(&via)?;
            let cp: Value = client
                .request("ledger_checkpoint", jsonrpsee::rpc_params![])
                .await
                .with_context(|| format!("cannot reach {via}"))?;
            let origin = cp
                .get("origin")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{via} answered no origin"))?
                .to_owned();
            let vkey: String = client
                .request("ledger_verifierKey", jsonrpsee::rpc_params![])
                .await
                .with_context(|| format!("cannot reach {via}"))?;
            let signer = coopledger_ledger::NoteSigner::new(&origin, key.clone())
                .map_err(|e| anyhow!("{e}"))?;
            if signer.vkey() != vkey {
                bail!(
                    "{} is not the co-op's node key: the cluster's verifier key is {vkey}",
                    node_key.display()
                );
            }
            refuse_existing(&place.data)?;
            folder::create_replica(&place.data, &origin, &key)?;
            let file = ClusterFile {
                id: place.id,
                public: place.public,
                cluster: place.cluster,
                initialize: false,
                join_via: Some(via),
            };
            file.write(&place.data)?;
            outln!(
                "{} is ready to join {origin} as replica {}; start it with `coop serve --data {} --listen {}`",
                place.data.display(),
                file.id,
                place.data.display(),
                listen_of(&file.public)
            );
        }
        ClusterCmd::Status => {
            let status: Value = crate::client(rpc)?
                .request("cluster_status", jsonrpsee::rpc_params![])
                .await?;
            crate::print_json(&status)?;
        }
        ClusterCmd::Leave { data } => {
            let file = ClusterFile::read(&data)?
                .ok_or_else(|| anyhow!("{} is not a replica's folder", data.display()))?;
            let key = keyfile::read(&folder::node_key_path(&data))?;
            let request = ClusterRequest::sign(
                &key,
                "leave",
                file.id,
                None,
                coopledger_ledger::log::now_ms(),
            );
            ask_leader(rpc, "cluster_leave", &request).await?;
            outln!("replica {} left the cluster", file.id);
        }
    }
    Ok(())
}

fn refuse_existing(data: &Path) -> Result<()> {
    if ClusterFile::path(data).exists() {
        bail!(
            "{} is already a replica's folder ({} exists)",
            data.display(),
            ClusterFile::path(data).display()
        );
    }
    Ok(())
}

/// `host:port` of a public URL, for the hint printed.
fn listen_of(public: &str) -> String {
    public
        .split_once("://")
        .map_or(public, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned()
}

/// Sends `request` to `url`, following a `NOT_LEADER` answer to the leader it names (a few
/// times: the leader may change meanwhile).
pub async fn ask_leader(url: &str, method: &str, request: &ClusterRequest) -> Result<()> {
    let mut at = url.to_owned();
    for _ in 0..10 {
        let answer = crate::client(&at)?
            .request::<Value, _>(method, jsonrpsee::rpc_params![request])
            .await;
        match answer {
            Ok(_) => return Ok(()),
            Err(jsonrpsee::core::ClientError::Call(e))
                if e.code() == coopledger_rpc::error::code::NOT_LEADER =>
            {
                let leader = e
                    .data()
                    .and_then(|d| serde_json::from_str::<Value>(d.get()).ok())
                    .and_then(|d| d.get("leader").and_then(Value::as_str).map(str::to_owned));
                match leader {
                    Some(l) => at = l,
                    None => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            Err(e) => return Err(anyhow!("{method} at {at}: {e}")),
        }
    }
    bail!("{method}: no leader answered (the cluster may have no quorum)")
}

/// A starting replica that is not yet in its cluster asks to join (`cluster.json` says via
/// which member), retrying until the leader answers.
pub async fn join_when_started(data: &Path, file: &ClusterFile) -> Result<()> {
    let Some(via) = &file.join_via else {
        return Ok(());
    };
    let key = keyfile::read(&folder::node_key_path(data))?;
    let addr: ReplicaAddr = file.addr();
    let mut last = None;
    for _ in 0..20 {
        let request = ClusterRequest::sign(
            &key,
            "join",
            file.id,
            Some(&addr),
            coopledger_ledger::log::now_ms(),
        );
        match ask_leader(via, "cluster_join", &request).await {
            Ok(()) => {
                // Joined: the folder is a member now; later starts need not ask.
                let mut joined = file.clone();
                joined.join_via = None;
                joined.write(data)?;
                return Ok(());
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("could not join")))
}
