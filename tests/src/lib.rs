//! Harness for end-to-end tests: runs the real `coop` binary as a child process on a loopback
//! port chosen by the OS, and signs entries the way a member's device does.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod netns;

use anyhow::{anyhow, bail, Context, Result};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use coopledger_ledger::{Body, Envelope};
use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the `coop` binary built by this `cargo test` run (next to the test executables).
pub fn coop_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("COOP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<triple>/debug/deps/<test> → target/<triple>/debug/coop
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate target dir from {}", exe.display()))?;
    let bin = dir.join("coop");
    if !bin.exists() {
        bail!(
            "{} not found: run the whole workspace (`cargo test --workspace`), which builds it, \
             or `cargo build -p coopledger-cli` first, or set COOP_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// A running `coop serve` process. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Node {
    child: Child,
    /// `127.0.0.1:PORT` it bound.
    pub addr: String,
    /// Its data folder.
    pub data: PathBuf,
    /// What it printed at start-up.
    pub banner: Vec<String>,
}

impl Node {
    /// Starts `coop serve --data DATA --listen 127.0.0.1:0 [extra…]` and waits until it listens
    /// (`extra` may give its own `--listen`).
    pub fn start(data: &Path, extra: &[&str]) -> Result<Node> {
        Node::start_in(None, data, extra)
    }

    /// [`Node::start`] inside the network namespace `netns` (`ip netns exec NETNS coop serve
    /// …`), when given.
    pub fn start_in(netns: Option<&str>, data: &Path, extra: &[&str]) -> Result<Node> {
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(coop_bin()?);
                c
            }
            None => Command::new(coop_bin()?),
        };
        let mut child = command
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(listen)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start coop serve")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("node did not start in time; printed {banner:?}");
            }
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("node exited during start-up; printed {banner:?}");
            };
            let line = line?;
            banner.push(line.clone());
            let rest = line
                .strip_prefix("coop node listening on http://")
                .or_else(|| line.strip_prefix("coop node listening on https://"));
            if let Some(rest) = rest {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok(Node {
            child,
            addr,
            data: data.to_owned(),
            banner,
        })
    }

    /// `http://ADDR`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// SIGTERM, as a service manager stops it; waits and returns the exit code.
    pub fn terminate(mut self) -> Result<Option<i32>> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        Ok(self.child.wait()?.code())
    }

    /// SIGKILL: no shutdown code runs, as in a power cut of the process.
    pub fn kill9(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a `coop key` file.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let seed: [u8; 32] = v
        .get("seed")
        .and_then(Value::as_str)
        .and_then(|s| b64_decode(s).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("bad key file {}", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    coopledger_ledger::log::now_ms()
}

/// Signs an entry as a member's device does.
pub fn sign(
    key: &SigningKey,
    coop: &str,
    kind: &str,
    seq: u64,
    ts: u64,
    payload: Value,
) -> Result<Envelope> {
    let payload: Map<String, Value> = payload
        .as_object()
        .cloned()
        .ok_or_else(|| anyhow!("payload must be an object"))?;
    Body {
        coop: coop.to_owned(),
        kind: kind.to_owned(),
        version: 1,
        signer: key.verifying_key().to_bytes(),
        seq,
        ts,
        payload,
    }
    .sign(key)
    .map_err(|r| anyhow!("{r}"))
}

/// A valid `coop.attest` payload for document number `n`.
pub fn attest(n: u64) -> Value {
    let digest = coopledger_ledger::hash::sha256(format!("minutes of meeting {n}").as_bytes());
    serde_json::json!({ "digest": b64_encode(digest.0), "kind": "minutes" })
}

/// Runs `coop ARGS…` to completion: (exit code, stdout, stderr).
pub fn coop(args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(coop_bin()?).args(args).output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// One HTTP/1.1 POST over a plain socket to `addr` (`host:port`): status, content type, body —
/// for endpoints that are not JSON-RPC (the witness's `/add-checkpoint`).
pub fn http_post(addr: &str, path: &str, body: &[u8]) -> Result<(u16, String, String)> {
    http_request(addr, "POST", path, body)
}

/// The node's `GET /metrics` text.
pub fn metrics(addr: &str) -> Result<String> {
    let (status, _, body) = http_get(addr, "/metrics")?;
    if status != 200 {
        bail!("GET /metrics answered {status}: {body}");
    }
    Ok(body)
}

/// The value of the sample `name` (labels included, as printed, e.g.
/// `coop_entries_refused_total{reason="replay"}`) in a metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}

/// One HTTP/1.1 GET (as `http_post`): status, content type, body.
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String, String)> {
    http_request(addr, "GET", path, b"")
}

fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("malformed status line: {head}"))?;
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok((status, ctype, body.to_owned()))
}

/// anvil's first default account (a public test key; never holds value).
pub const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The native anvil binary installed by `scripts/setup.sh` (not npm's node wrapper, so that
/// killing it stops the chain); `ANVIL` overrides.
pub fn anvil_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("ANVIL") {
        return Ok(PathBuf::from(p));
    }
    let scope = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/@foundry-rs");
    std::fs::read_dir(&scope)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin/anvil"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            anyhow!(
                "anvil is not installed under {}: run scripts/setup.sh",
                scope.display()
            )
        })
}

/// A running anvil on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Anvil(Child);

impl Anvil {
    /// anvil mining a block every second.
    pub fn start(port: u16) -> Result<Anvil> {
        Anvil::start_with(port, &["--block-time", "1"])
    }

    /// anvil with these extra arguments; returns once it accepts connections.
    pub fn start_with(port: u16, extra: &[&str]) -> Result<Anvil> {
        let child = Command::new(anvil_bin()?)
            .args(["--port", &port.to_string(), "--silent"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start anvil")?;
        let anvil = Anvil(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("anvil did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(anvil)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free right now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The vault key of nodes run in-process by tests.
pub const TEST_VAULT_KEY: [u8; 32] = [7; 32];

/// Starts a node in this process on the ledger in `data`: JSON-RPC on a port-0 loopback
/// listener, default log settings, the test vault key, anchoring if given. Send on the returned
/// channel to stop it, then await `RunningNode::stopped`.
pub async fn start_in_process(
    data: &Path,
    anchoring: Option<coopledger_node::anchoring::AnchorConfig>,
) -> Result<(
    coopledger_node::RunningNode,
    tokio::sync::oneshot::Sender<()>,
)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = coopledger_node::Node::start(
        coopledger_node::NodeConfig {
            data: data.to_owned(),
            log: coopledger_ledger::LogConfig::default(),
            witness_for: vec![],
            witnesses: vec![],
            vault_key: coopledger_node::VaultKeySource::Key(
                coopledger_node::vault::VaultKey::from_bytes(TEST_VAULT_KEY),
            ),
            anchoring,
            frontend: std::sync::Arc::new(coopledger_rpc::JsonRpc::default()),
            cluster: None,
        },
        std::net::TcpListener::bind("127.0.0.1:0")?,
        async move {
            let _ = stopped.await;
        },
    )
    .await?;
    Ok((running, stop))
}
