//! Replicated co-ops for end-to-end tests: replicas made with `coop cluster init` and
//! `coop cluster join`, run as real `coop serve` processes on loopback ports, and the waits
//! the tests need (an agreed leader, a number of voters, every replica caught up).

use crate::{coop, free_port, Node};
use anyhow::{anyhow, bail, Result};
use coopledger_rpc::client::http_client;
use coopledger_rpc::LedgerApiClient;
use jsonrpsee::core::client::ClientT;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One replica: its id, folder, public port, and its process while it runs.
#[derive(Debug)]
pub struct Replica {
    /// Its id in the cluster.
    pub id: u64,
    /// Its data folder.
    pub data: PathBuf,
    /// Where it is reached: `127.0.0.1`, or its address in its network namespace.
    pub host: String,
    /// Its public port.
    pub port: u16,
    /// The network namespace it runs in, if any (`crate::netns`).
    pub netns: Option<String>,
    /// The running `coop serve`, if it runs.
    pub node: Option<Node>,
    /// More `coop serve` arguments, given at every start.
    pub serve: Vec<String>,
}

impl Replica {
    /// Its public URL.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Starts `coop serve` on its folder and port, with the cluster's vault key file (in its
    /// namespace, listening on every address there, when it has one).
    pub fn start(&mut self, vault_key: &Path) -> Result<()> {
        let key = vault_key
            .to_str()
            .ok_or_else(|| anyhow!("vault key path is not UTF-8"))?;
        let extra = self.serve.iter().map(String::as_str);
        self.node = Some(match &self.netns {
            None => {
                let listen = format!("127.0.0.1:{}", self.port);
                let args: Vec<&str> = ["--listen", &listen, "--vault-key", key]
                    .into_iter()
                    .chain(extra)
                    .collect();
                Node::start(&self.data, &args)?
            }
            Some(ns) => {
                let listen = format!("0.0.0.0:{}", self.port);
                let args: Vec<&str> =
                    ["--listen", &listen, "--insecure-listen", "--vault-key", key]
                        .into_iter()
                        .chain(extra)
                        .collect();
                Node::start_in(Some(ns), &self.data, &args)?
            }
        });
        Ok(())
    }

    /// Kills it with SIGKILL.
    pub fn kill9(&mut self) -> Result<()> {
        match self.node.take() {
            Some(n) => n.kill9(),
            None => Ok(()),
        }
    }
}

fn run_coop(args: &[String]) -> Result<String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = coop(&refs)?;
    if code != 0 {
        bail!("coop {args:?} exited {code}: {out}{err}");
    }
    Ok(out)
}

/// Where a replica will be reached.
#[derive(Debug, Clone)]
pub struct Place {
    /// Its host (`127.0.0.1`, or its address in its namespace).
    pub host: String,
    /// Its public port.
    pub port: u16,
    /// Its cluster port.
    pub cluster_port: u16,
    /// Its network namespace, if any.
    pub netns: Option<String>,
    /// More `coop serve` arguments, given at every start.
    pub serve: Vec<String>,
}

impl Place {
    /// Free ports on 127.0.0.1.
    pub fn loopback() -> Result<Place> {
        Ok(Place {
            host: "127.0.0.1".into(),
            port: free_port()?,
            cluster_port: free_port()?,
            netns: None,
            serve: Vec::new(),
        })
    }

    fn args(&self, data: &Path, id: u64) -> Vec<String> {
        vec![
            "--data".into(),
            data.display().to_string(),
            "--id".into(),
            id.to_string(),
            "--public".into(),
            format!("http://{}:{}", self.host, self.port),
            "--cluster".into(),
            format!("{}:{}", self.host, self.cluster_port),
        ]
    }

    fn replica(&self, id: u64, data: PathBuf) -> Replica {
        Replica {
            id,
            data,
            host: self.host.clone(),
            port: self.port,
            netns: self.netns.clone(),
            node: None,
            serve: self.serve.clone(),
        }
    }
}

/// Makes `data` (a co-op's folder, or new: a demo co-op) replica 1 of a new cluster and starts
/// it on free loopback ports.
pub fn init(data: &Path, vault_key: &Path) -> Result<Replica> {
    init_at(data, vault_key, &Place::loopback()?)
}

/// [`init`] at `place`.
pub fn init_at(data: &Path, vault_key: &Path, place: &Place) -> Result<Replica> {
    let mut args = vec!["cluster".to_owned(), "init".to_owned()];
    args.extend(place.args(data, 1));
    run_coop(&args)?;
    let mut r = place.replica(1, data.to_owned());
    r.start(vault_key)?;
    Ok(r)
}

/// Makes `dir/r<id>` a replica joining via the member at `via` with the node key `node_key`,
/// and starts it on free loopback ports (it asks to join as it starts).
pub fn join(dir: &Path, id: u64, via: &str, node_key: &Path, vault_key: &Path) -> Result<Replica> {
    join_at(dir, id, via, node_key, vault_key, &Place::loopback()?)
}

/// [`join`] at `place`.
pub fn join_at(
    dir: &Path,
    id: u64,
    via: &str,
    node_key: &Path,
    vault_key: &Path,
    place: &Place,
) -> Result<Replica> {
    let data = dir.join(format!("r{id}"));
    let mut args = vec!["cluster".to_owned(), "join".to_owned()];
    args.extend(place.args(&data, id));
    args.extend([
        "--via".to_owned(),
        via.to_owned(),
        "--node-key".to_owned(),
        node_key.display().to_string(),
    ]);
    run_coop(&args)?;
    let mut r = place.replica(id, data);
    r.start(vault_key)?;
    Ok(r)
}

/// `cluster_status` of the replica at `url`, if it answers.
pub async fn status(url: &str) -> Option<Value> {
    let c = http_client(url).ok()?;
    c.request::<Value, _>("cluster_status", jsonrpsee::rpc_params![])
        .await
        .ok()
}

/// The id and URL of the leader every running replica agrees on (waits up to 20 s).
pub async fn leader(replicas: &[Replica]) -> Result<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut seen = Vec::new();
        for r in replicas.iter().filter(|r| r.node.is_some()) {
            if let Some(s) = status(&r.url()).await {
                seen.push((
                    s.get("leader").and_then(Value::as_u64),
                    s.get("leaderPublic")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                ));
            }
        }
        if let Some((Some(id), Some(url))) = seen.first().cloned() {
            let live = replicas.iter().any(|r| r.id == id && r.node.is_some());
            if live && seen.iter().all(|s| s.0 == Some(id)) {
                return Ok((id, url));
            }
        }
        if Instant::now() > deadline {
            bail!("no agreed leader: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 60 s) until the replica at `url` lists `n` voters.
pub async fn voters(url: &str, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = status(url).await {
            let count = s.get("replicas").and_then(Value::as_array).map_or(0, |r| {
                r.iter()
                    .filter(|r| r.get("voter") == Some(&Value::Bool(true)))
                    .count()
            });
            if count == n {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the cluster never had {n} voters");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 30 s) until every running replica released at least `size` entries.
pub async fn caught_up(replicas: &[Replica], size: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in replicas.iter().filter(|r| r.node.is_some()) {
        let c = http_client(&r.url())?;
        loop {
            let now = c.checkpoint().await.map(|cp| cp.size).unwrap_or(0);
            if now >= size {
                break;
            }
            if Instant::now() > deadline {
                bail!("replica {} stuck at {now}, waiting for {size}", r.id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// The size of the newest checkpoint of the replica at `url`.
pub async fn size_at(url: &str) -> Result<u64> {
    Ok(http_client(url)?.checkpoint().await?.size)
}

/// Waits until every running replica released as many entries as the one at `url` has now;
/// returns that size.
pub async fn caught_up_with(replicas: &[Replica], url: &str) -> Result<u64> {
    let size = size_at(url).await?;
    caught_up(replicas, size).await?;
    Ok(size)
}

/// A three-replica cluster over the co-op in `dir/r1` (made first by the caller, or a demo
/// co-op), the vault key file in `dir/vault.key`; returns once all three vote.
pub async fn three(dir: &Path) -> Result<Vec<Replica>> {
    three_serving(dir, &[]).await
}

/// [`three`], each replica started with the `coop serve` arguments `serve` as well.
pub async fn three_serving(dir: &Path, serve: &[&str]) -> Result<Vec<Replica>> {
    let vault_key = dir.join("vault.key");
    let place = || -> Result<Place> {
        Ok(Place {
            serve: serve.iter().map(|s| (*s).to_owned()).collect(),
            ..Place::loopback()?
        })
    };
    let first = init_at(&dir.join("r1"), &vault_key, &place()?)?;
    let via = first.url();
    let node_key = dir.join("r1/node.key");
    let mut replicas = vec![first];
    for id in [2, 3] {
        replicas.push(join_at(dir, id, &via, &node_key, &vault_key, &place()?)?);
    }
    voters(&via, 3).await?;
    Ok(replicas)
}
