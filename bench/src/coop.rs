//! coopledger under test: a fresh data folder made with `coop init` (every member a founder),
//! `coop serve` on a loopback port, and clients submitting over JSON-RPC — one entry a request
//! (`ledger_submit`) or many (`ledger_submitBatch`).

use crate::drive::Client;
use crate::http::Http;
use crate::workload::{Workload, ORIGIN};
use anyhow::{anyhow, bail, Context, Result};
use coopledger_ledger::codec::b64_encode;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `coop` binary: `COOP_BIN`, or the one built beside this program.
pub fn coop_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("COOP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("cannot locate the directory of {}", exe.display()))?;
    // Integration tests run from `deps/`; the binaries sit one level up.
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let bin = d.join("coop");
        if bin.exists() {
            return Ok(bin);
        }
    }
    bail!(
        "no `coop` binary beside {}: build it with the same profile \
         (`cargo build --release -p coopledger-cli`) or set COOP_BIN",
        exe.display()
    )
}

/// `coop init` in `data` with every member of `w` a founder (the first on the board).
fn init_coop(data: &Path, w: &Workload) -> Result<()> {
    let bin = coop_bin()?;
    let mut init = Command::new(&bin);
    init.arg("init")
        .arg("--data")
        .arg(data)
        .args(["--origin", ORIGIN, "--name", "Bench Co-op"]);
    for (i, key) in w.members.iter().enumerate() {
        let pk = b64_encode(key.verifying_key().to_bytes());
        let founder = if i == 0 { format!("{pk}:board") } else { pk };
        init.arg("--founder").arg(founder);
    }
    let out = init.output().context("cannot run coop init")?;
    if !out.status.success() {
        bail!(
            "coop init failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A loopback port free right now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs `coop ARGS…`, insisting on success; returns what it printed.
fn coop(args: &[&str]) -> Result<String> {
    let out = Command::new(coop_bin()?)
        .args(args)
        .output()
        .context("cannot run coop")?;
    if !out.status.success() {
        bail!(
            "coop {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Three replicas of one co-op on this machine (`coop cluster init` and `join`), each a
/// `coop serve`; the clients use the leader. Stopped when dropped.
#[derive(Debug)]
pub struct CoopCluster {
    /// The replicas, the leader first.
    pub nodes: Vec<CoopNode>,
}

impl CoopCluster {
    /// The co-op of `w` in `root/r1`, made the first replica, then two more joining it; returns
    /// once all three vote.
    pub fn start(root: &Path, w: &Workload, clients: usize) -> Result<CoopCluster> {
        let r1 = root.join("r1");
        init_coop(&r1, w)?;
        let vault_key = root.join("vault.key");
        let vault = vault_key
            .to_str()
            .ok_or_else(|| anyhow!("path not UTF-8"))?;
        let mut nodes = Vec::new();
        for id in 1..=3u64 {
            let data = root.join(format!("r{id}"));
            let d = data.to_str().ok_or_else(|| anyhow!("path not UTF-8"))?;
            let (port, cport) = (free_port()?, free_port()?);
            let public = format!("http://127.0.0.1:{port}");
            let cluster = format!("127.0.0.1:{cport}");
            let id_text = id.to_string();
            let via = nodes.first().map(|n: &CoopNode| n.url.clone());
            let verb = if via.is_some() { "join" } else { "init" };
            let mut args = vec![
                "cluster",
                verb,
                "--data",
                d,
                "--id",
                &id_text,
                "--public",
                &public,
                "--cluster",
                &cluster,
            ];
            let key = r1.join("node.key");
            let key = key
                .to_str()
                .ok_or_else(|| anyhow!("path not UTF-8"))?
                .to_owned();
            if let Some(via) = &via {
                args.extend(["--via", via.as_str(), "--node-key", key.as_str()]);
            }
            coop(&args)?;
            let listen = format!("127.0.0.1:{port}");
            nodes.push(CoopNode::serve_with(
                &data,
                clients,
                &listen,
                &["--vault-key", vault],
            )?);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let first = nodes
            .first()
            .map(|n| n.url.clone())
            .ok_or_else(|| anyhow!("no replica started"))?;
        let leader = loop {
            let status = coop(&["--rpc", &first, "cluster", "status"])?;
            let v: Value = serde_json::from_str(&status)?;
            let voters = v.get("replicas").and_then(Value::as_array).map_or(0, |r| {
                r.iter()
                    .filter(|r| r.get("voter") == Some(&Value::Bool(true)))
                    .count()
            });
            let leader = v
                .get("leaderPublic")
                .and_then(Value::as_str)
                .and_then(|l| nodes.iter().position(|n| n.url == l));
            if let (3, Some(at)) = (voters, leader) {
                break at;
            }
            if Instant::now() > deadline {
                bail!("the cluster did not form in 120 s: {status}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        nodes.swap(0, leader);
        Ok(CoopCluster { nodes })
    }

    /// The leader.
    pub fn leader(&self) -> Result<&CoopNode> {
        self.nodes.first().ok_or_else(|| anyhow!("no replica"))
    }
}

/// A running `coop serve` on its own data folder; stopped when dropped.
#[derive(Debug)]
pub struct CoopNode {
    child: Child,
    pub url: String,
    data: PathBuf,
}

impl CoopNode {
    /// `coop init` in `data` with every member of `w` a founder (the first on the board), then
    /// `coop serve` on 127.0.0.1 with connection limits for `clients` clients. Entries' signed
    /// timestamps must stay valid for the whole run, so the clock window is a day.
    pub fn start(data: &Path, w: &Workload, clients: usize) -> Result<CoopNode> {
        init_coop(data, w)?;
        CoopNode::serve(data, clients)
    }

    /// `coop serve` on an existing data folder.
    fn serve(data: &Path, clients: usize) -> Result<CoopNode> {
        CoopNode::serve_with(data, clients, "127.0.0.1:0", &[])
    }

    /// `coop serve` on `data` listening on `listen`, with `extra` arguments.
    fn serve_with(data: &Path, clients: usize, listen: &str, extra: &[&str]) -> Result<CoopNode> {
        let bin = coop_bin()?;
        let limit = (clients * 2 + 16).to_string();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--listen", listen, "--ts-window-secs", "86400"])
            .args(["--max-connections", &limit, "--max-per-peer", &limit])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start coop serve")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let Some(line) = lines.next().transpose()? else {
                let _ = child.kill();
                bail!("coop serve exited during start-up");
            };
            if let Some(rest) = line.strip_prefix("coop node listening on http://") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("coop serve did not start in 60 s");
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok(CoopNode {
            child,
            url: format!("http://{addr}"),
            data: data.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the node as a service manager does (SIGTERM, then waits).
    fn stop(mut self) -> Result<PathBuf> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        self.child.wait()?;
        Ok(self.data.clone())
    }

    /// The bytes its data folder takes on disk (allocated blocks, every file): right after a
    /// clean stop, when the database's write-ahead log still holds every write of the run; and
    /// after one more start and stop, which folds that log into compressed tables (the steady
    /// state of a folder).
    pub fn stop_and_measure(self) -> Result<(u64, u64)> {
        let data = self.stop()?;
        let stopped = disk_bytes(&data)?;
        let settled = CoopNode::serve(&data, 1)?.stop()?;
        Ok((stopped, disk_bytes(&settled)?))
    }

    /// The node's own account of a run, from its `GET /metrics`: mean batch size, mean fsync
    /// time of the database write and of the record, mean time from arrival to receipt.
    pub async fn account(&self) -> Result<String> {
        let text = Http::new(&self.url)?.get_text("/metrics").await?;
        let sample = |name: &str| {
            text.lines().find_map(|l| {
                let (n, v) = l.rsplit_once(' ')?;
                (n == name).then(|| v.parse::<f64>().ok())?
            })
        };
        let mean = |base: &str| -> Option<f64> {
            let (sum, count) = if let Some((name, labels)) = base.split_once('{') {
                (
                    sample(&format!("{name}_sum{{{labels}"))?,
                    sample(&format!("{name}_count{{{labels}"))?,
                )
            } else {
                (
                    sample(&format!("{base}_sum"))?,
                    sample(&format!("{base}_count"))?,
                )
            };
            (count > 0.0).then(|| sum / count)
        };
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{:.2} ms", s * 1000.0));
        // A histogram's mean, and the bound of its slowest sample (the smallest bucket holding
        // every sample): a single stalled fsync shows in the second where a mean hides it.
        let both = |name: &str, label: &str| {
            let base = if label.is_empty() {
                name.to_owned()
            } else {
                format!("{name}{{{label}}}")
            };
            match slowest_bucket(&text, name, label) {
                Some(le) => format!("{} (all ≤ {})", ms(mean(&base)), ms(Some(le))),
                None => ms(mean(&base)),
            }
        };
        let mut account = format!(
            "batches of {:.1} entries on average ({} batches); fsync: database {}, record {}; \
             arrival to receipt {}",
            mean("coop_batch_entries").unwrap_or(0.0),
            sample("coop_batch_entries_count").unwrap_or(0.0),
            both("coop_fsync_seconds", "file=\"database\""),
            both("coop_fsync_seconds", "file=\"record\""),
            both("coop_ack_seconds", ""),
        );
        // A replica: how many of its own batches it had sequenced while Raft replicated them.
        let used = sample("coop_proposals_applied_total{outcome=\"used\"}");
        let again = sample("coop_proposals_applied_total{outcome=\"sequenced_again\"}");
        if used.is_some() || again.is_some() {
            account.push_str(&format!(
                "; own batches sequenced during replication: {} used, {} sequenced again",
                used.unwrap_or(0.0),
                again.unwrap_or(0.0)
            ));
        }
        Ok(account)
    }
}

impl Drop for CoopNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member's device (or a gateway for several): one connection, requests one after another.
#[derive(Debug)]
pub struct CoopClient {
    http: Http,
    workload: Arc<Workload>,
}

impl CoopClient {
    pub fn connect(url: &str, workload: Arc<Workload>) -> Result<CoopClient> {
        Ok(CoopClient {
            http: Http::new(url)?,
            workload,
        })
    }
}

fn entry_json(w: &Workload, i: usize) -> Result<&str> {
    w.entries
        .get(i)
        .map(|e| e.json.as_str())
        .ok_or_else(|| anyhow!("no entry {i}"))
}

impl Client for CoopClient {
    async fn send(&mut self, entries: &[usize]) -> Result<()> {
        if let [one] = entries {
            let receipt = self
                .http
                .call(
                    "ledger_submit",
                    &format!("[{}]", entry_json(&self.workload, *one)?),
                )
                .await?;
            if receipt.get("index").and_then(Value::as_u64).is_none() {
                bail!("ledger_submit answered without a receipt: {receipt}");
            }
            return Ok(());
        }
        let list = entries
            .iter()
            .map(|&i| entry_json(&self.workload, i))
            .collect::<Result<Vec<_>>>()?
            .join(",");
        let answers = self
            .http
            .call("ledger_submitBatch", &format!("[[{list}]]"))
            .await?;
        let answers = answers
            .as_array()
            .ok_or_else(|| anyhow!("ledger_submitBatch answered {answers}"))?;
        if answers.len() != entries.len() {
            bail!("{} answers for {} entries", answers.len(), entries.len());
        }
        if let Some(refused) = answers.iter().find(|a| a.get("receipt").is_none()) {
            bail!("an entry was refused: {refused}");
        }
        Ok(())
    }
}

/// The smallest bucket bound of histogram `name` (with `label`, if any, among its labels) that
/// holds all its samples, from Prometheus text: `name_bucket{label,le="B"} N` against
/// `name_count{label} N`.
fn slowest_bucket(text: &str, name: &str, label: &str) -> Option<f64> {
    let count_key = if label.is_empty() {
        format!("{name}_count")
    } else {
        format!("{name}_count{{{label}}}")
    };
    let value = |line: &str| line.rsplit_once(' ')?.1.parse::<f64>().ok();
    let count = text
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(k, _)| k == count_key))
        .and_then(value)?;
    if count <= 0.0 {
        return None;
    }
    text.lines()
        .filter_map(|l| {
            let labels = l.strip_prefix(name)?.strip_prefix("_bucket{")?;
            let (labels, _) = labels.split_once('}')?;
            if !label.is_empty() && !labels.split(',').any(|p| p == label) {
                return None;
            }
            let le = labels
                .split(',')
                .find_map(|p| p.strip_prefix("le=\""))?
                .strip_suffix('"')?
                .parse::<f64>()
                .ok()?;
            (value(l)? >= count).then_some(le)
        })
        .reduce(f64::min)
}

/// Bytes allocated on disk to every file under `dir`.
fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += disk_bytes(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    #[test]
    fn the_slowest_bucket_is_the_smallest_holding_every_sample_of_that_label() {
        let text = "\
coop_fsync_seconds_bucket{file=\"database\",le=\"0.0001\"} 3
coop_fsync_seconds_bucket{file=\"database\",le=\"0.0002\"} 9
coop_fsync_seconds_bucket{file=\"database\",le=\"0.4\"} 9
coop_fsync_seconds_bucket{file=\"database\",le=\"0.8\"} 10
coop_fsync_seconds_bucket{file=\"database\",le=\"+Inf\"} 10
coop_fsync_seconds_count{file=\"database\"} 10
coop_fsync_seconds_bucket{file=\"record\",le=\"0.0001\"} 2
coop_fsync_seconds_bucket{file=\"record\",le=\"0.0002\"} 2
coop_fsync_seconds_count{file=\"record\"} 2
coop_ack_seconds_bucket{le=\"0.01\"} 0
coop_ack_seconds_bucket{le=\"0.02\"} 4
coop_ack_seconds_count 4
";
        let fsync = "coop_fsync_seconds";
        // One fsync of ten took between 0.4 and 0.8 s.
        assert_eq!(slowest_bucket(text, fsync, "file=\"database\""), Some(0.8));
        assert_eq!(slowest_bucket(text, fsync, "file=\"record\""), Some(0.0001));
        assert_eq!(slowest_bucket(text, "coop_ack_seconds", ""), Some(0.02));
        assert_eq!(slowest_bucket(text, fsync, "file=\"other\""), None);
    }
}
