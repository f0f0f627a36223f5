//! `coop init` and `coop serve`: the data folder, the node key, genesis, and running the server.
//!
//! Data folder layout: `node.key` (the node's signing key, 0600), `ledger/` (RocksDB),
//! `node.addr` (the address the running node bound, rewritten at each start), and for a demo
//! co-op `demo-keys/` with the founders' key files.

use crate::keyfile;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::{CoopRules, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_decode;
use coopledger_ledger::{Body, Log, LogConfig};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Origin of the demo co-op `coop serve` creates in a new data folder.
pub const DEMO_ORIGIN: &str = "demo.coopledger.example/ledger";

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Data folder to create.
    #[arg(long, default_value = "coop-data")]
    data: PathBuf,
    /// The ledger's origin (checkpoint key name), e.g. `drivers.example.coop/ledger`.
    #[arg(long)]
    origin: String,
    /// Display name of the co-op.
    #[arg(long)]
    name: String,
    /// A founder: `PUBKEY_BASE64[:item,item]` or `@KEYFILE[:item,item]`; items are roles
    /// (board, treasurer, auditor) and `class=NAME` (needed when the bylaws have several
    /// classes). Repeat for each founder.
    #[arg(long = "founder", required = true)]
    founders: Vec<String>,
    /// Bylaws JSON file (default: one class `members`, one member one vote, simple majority
    /// with a 20% quorum, two-thirds for special resolutions, amendments and expulsions).
    #[arg(long)]
    bylaws: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Data folder (created with a demo co-op when new).
    #[arg(long, default_value = "coop-data")]
    data: PathBuf,
    /// Address for JSON-RPC over HTTP and WebSocket. Port 0 picks a free port.
    #[arg(long, default_value = crate::DEFAULT_LISTEN)]
    listen: String,
    /// A batch closes at this many entries.
    #[arg(long, default_value_t = 1024)]
    batch_entries: usize,
    /// …or this many milliseconds after its first entry.
    #[arg(long, default_value_t = 5)]
    batch_ms: u64,
    /// Allowed distance between an entry's timestamp and the node clock, in seconds.
    #[arg(long, default_value_t = 300)]
    ts_window_secs: u64,
    /// Largest entry accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_entry_bytes: usize,
    /// Act as a witness (C2SP tlog-witness, `POST /add-checkpoint` on the same port) for the
    /// log with this verifier key; repeatable.
    #[arg(long = "witness-for")]
    witness_for: Vec<String>,
    /// A witness to ask for a cosignature of every checkpoint, as `http://host:port,VKEY`
    /// (its witness key); repeatable. Asked off the ingest path.
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// Anchor checkpoints on the EVM chain at this JSON-RPC URL.
    #[arg(long, requires_all = ["anchor_chain_id", "anchor_key"])]
    anchor_rpc: Option<String>,
    /// The chain's EIP-155 id (checked against the chain).
    #[arg(long)]
    anchor_chain_id: Option<u64>,
    /// File holding the 32-byte secp256k1 key (hex) that pays for anchors.
    #[arg(long)]
    anchor_key: Option<PathBuf>,
    /// Anchor at most every this many seconds…
    #[arg(long, default_value_t = 600)]
    anchor_every_secs: u64,
    /// …or as soon as this many entries are unanchored.
    #[arg(long, default_value_t = 10_000)]
    anchor_every_entries: u64,
    /// Blocks (including the anchor's own) before an anchor is recorded.
    #[arg(long, default_value_t = 6)]
    anchor_confirmations: u64,
}

fn parse_founder(spec: &str, bylaws: &Bylaws) -> Result<Founder> {
    let (key_part, roles_part) = match spec.split_once(':') {
        Some((k, r)) => (k, r),
        None => (spec, ""),
    };
    let key: [u8; 32] = match key_part.strip_prefix('@') {
        Some(path) => keyfile::read(Path::new(path))?.verifying_key().to_bytes(),
        None => b64_decode(key_part)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                anyhow!("--founder {spec}: key must be base64 of 32 bytes or @KEYFILE")
            })?,
    };
    let mut roles = Vec::new();
    let mut class = None;
    for r in roles_part.split(',').filter(|r| !r.is_empty()) {
        if let Some(c) = r.strip_prefix("class=") {
            class = Some(c.to_owned());
            continue;
        }
        roles.push(Role::parse(r).ok_or_else(|| anyhow!("--founder {spec}: unknown role {r:?}"))?);
    }
    let class = match class {
        Some(c) => c,
        None if bylaws.classes.len() == 1 => {
            bylaws.classes.keys().next().cloned().unwrap_or_default()
        }
        None => bail!(
            "--founder {spec}: say the member class with class=NAME (classes: {})",
            bylaws
                .classes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(Founder { key, class, roles })
}

/// Creates the data folder, node key, ledger and genesis entry.
async fn create(
    data: &Path,
    origin: &str,
    genesis_of: impl FnOnce(&SigningKey) -> Genesis,
) -> Result<()> {
    let ledger_dir = data.join("ledger");
    if coopledger_ledger::store::Store::exists(&ledger_dir) {
        bail!("{} already holds a ledger", data.display());
    }
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let key_path = data.join("node.key");
    let node_key = if key_path.exists() {
        keyfile::read(&key_path)?
    } else {
        keyfile::create(&key_path)?
    };
    let genesis = genesis_of(&node_key);
    // Build the ledger beside its final place and move it in only once its genesis entry is
    // durable and checkpointed: a crash during creation never leaves a ledger without genesis.
    let building = data.join("ledger.creating");
    if building.exists() {
        std::fs::remove_dir_all(&building)
            .with_context(|| format!("cannot remove {}", building.display()))?;
    }
    let log = Log::create(
        &building,
        origin,
        node_key.clone(),
        CoopRules,
        LogConfig::default(),
    )?;
    let env = Body {
        coop: origin.to_owned(),
        kind: "coop.genesis".into(),
        version: 1,
        signer: node_key.verifying_key().to_bytes(),
        seq: 1,
        ts: coopledger_ledger::log::now_ms(),
        payload: genesis.to_payload(),
    }
    .sign(&node_key)
    .map_err(|r| anyhow!("genesis: {r}"))?;
    let receipt = log
        .submit(env)
        .await
        .map_err(|e| anyhow!("genesis refused: {e}"))?;
    let vkey = log.verifier_key();
    drop(log);
    std::fs::rename(&building, &ledger_dir)
        .with_context(|| format!("cannot move {} into place", building.display()))?;
    std::fs::File::open(data)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", data.display()))?;
    println!("created co-op {origin:?} in {}", data.display());
    println!(
        "genesis entry: index {}, checkpoint size {}",
        receipt.index, receipt.checkpoint.checkpoint.size
    );
    println!("verifier key: {vkey}");
    Ok(())
}

pub async fn init(args: InitArgs) -> Result<()> {
    let bylaws = match &args.bylaws {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let b: Bylaws = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid bylaws", path.display()))?;
            b.validate()
                .with_context(|| format!("{}: bylaws refused", path.display()))?;
            b
        }
        None => Bylaws::single_class(),
    };
    let founders = args
        .founders
        .iter()
        .map(|s| parse_founder(s, &bylaws))
        .collect::<Result<Vec<_>>>()?;
    let name = args.name.clone();
    create(&args.data, &args.origin, |node| Genesis {
        name,
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws,
    })
    .await
}

/// A demo co-op: three founders whose key files are left in `demo-keys/` for the tour.
async fn create_demo(data: &Path) -> Result<()> {
    let dir = data.join("demo-keys");
    std::fs::create_dir_all(&dir)?;
    let mut founders = Vec::new();
    for (file, roles) in [
        ("board.key", vec![Role::Board]),
        ("treasurer.key", vec![Role::Treasurer]),
        ("member.key", vec![]),
    ] {
        // Reuse keys left by an interrupted earlier attempt.
        let path = dir.join(file);
        let k = if path.exists() {
            keyfile::read(&path)?
        } else {
            keyfile::create(&path)?
        };
        founders.push(Founder {
            key: k.verifying_key().to_bytes(),
            class: "members".into(),
            roles,
        });
    }
    create(data, DEMO_ORIGIN, |node| Genesis {
        name: "Demo Drivers' Data Co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws: Bylaws::single_class(),
    })
    .await?;
    println!(
        "demo founders' keys: {}/{{board,treasurer,member}}.key",
        dir.display()
    );
    Ok(())
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let ledger_dir = args.data.join("ledger");
    if !coopledger_ledger::store::Store::exists(&ledger_dir) {
        println!(
            "no ledger in {}; creating a demo co-op",
            args.data.display()
        );
        create_demo(&args.data).await?;
    }
    let node_key = keyfile::read(&args.data.join("node.key"))?;
    let config = LogConfig {
        batch_max_entries: args.batch_entries.max(1),
        batch_max_wait: Duration::from_millis(args.batch_ms),
        ts_window: Duration::from_secs(args.ts_window_secs),
        max_entry_bytes: args.max_entry_bytes,
        ..LogConfig::default()
    };
    let log = Arc::new(
        Log::open(&ledger_dir, node_key.clone(), CoopRules, config).with_context(|| {
            format!(
                "cannot open the ledger in {} (is another node running on it?)",
                ledger_dir.display()
            )
        })?,
    );
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Erasures the log ordered but a crash kept from being carried out are done before serving.
    let personal = coopledger_rpc::PersonalData::new(log.clone());
    let pending = personal
        .sweep()
        .context("cannot carry out pending erasures")?;
    if pending > 0 {
        println!("destroyed the personal data of {pending} erased member(s)");
    }
    let ballots = Arc::new(coopledger_rpc::BallotBox::new(node_key.clone()));
    let mut services = coopledger_rpc::NodeServices::default();
    let anchoring = match &args.anchor_rpc {
        Some(url) => {
            let path = args.anchor_key.clone().unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read --anchor-key {}", path.display()))?;
            let bytes = hex::decode(text.trim().trim_start_matches("0x"))
                .map_err(|_| anyhow::anyhow!("--anchor-key: not hex"))?;
            let key = k256::ecdsa::SigningKey::from_slice(&bytes)
                .map_err(|_| anyhow::anyhow!("--anchor-key: not a secp256k1 key"))?;
            Some(coopledger_rpc::anchoring::AnchorConfig {
                rpc_url: url.clone(),
                chain_id: args.anchor_chain_id.unwrap_or_default(),
                key,
                every: std::time::Duration::from_secs(args.anchor_every_secs),
                every_entries: args.anchor_every_entries.max(1),
                confirmations: args.anchor_confirmations.max(1),
            })
        }
        None => None,
    };
    if !args.witness_for.is_empty() {
        let logs = args
            .witness_for
            .iter()
            .map(|v| {
                coopledger_ledger::NoteVerifier::parse(v)
                    .map_err(|e| anyhow::anyhow!("--witness-for {v:?}: {e}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let origins = logs.iter().map(|l| l.name().to_owned()).collect();
        let w = coopledger_rpc::witness::node_witness(log.clone(), &node_key, logs)
            .map_err(|e| anyhow::anyhow!("witness: {e}"))?;
        println!("witness key: {}", w.vkey());
        services.witness = Some((Arc::new(w), origins));
    }
    let peers = args
        .witnesses
        .iter()
        .map(|w| {
            coopledger_rpc::cosigning::WitnessPeer::parse(w)
                .map_err(|e| anyhow::anyhow!("--witness {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let anchor_status = services.anchor_status.clone();
    let node = coopledger_rpc::serve(listener, log.clone(), ballots.clone(), services).await?;
    let cosigning = tokio::spawn(coopledger_rpc::cosigning::run(log.clone(), peers));
    let anchorer = anchoring.map(|cfg| {
        println!("anchoring on chain {} at {}", cfg.chain_id, cfg.rpc_url);
        tokio::spawn(coopledger_rpc::anchoring::run(
            log.clone(),
            node_key.clone(),
            cfg,
            anchor_status.clone(),
        ))
    });
    std::fs::write(args.data.join("node.addr"), format!("{}\n", node.addr))?;
    let cp = log.checkpoint();
    println!(
        "coop node listening on http://{} (WebSocket on the same port)",
        node.addr
    );
    println!("origin: {}", log.origin());
    println!("verifier key: {}", log.verifier_key());
    println!(
        "checkpoint: size {} root {}",
        cp.checkpoint.size, cp.checkpoint.root
    );
    tracing::info!(addr = %node.addr, "serving");
    let clerk = tokio::spawn(crate::clerk::run(log.clone(), node_key, ballots));
    let eraser = tokio::spawn(carry_out_erasures(log.clone(), personal));
    shutdown_signal().await;
    println!("shutting down");
    clerk.abort();
    eraser.abort();
    cosigning.abort();
    let _ = cosigning.await;
    if let Some(a) = anchorer {
        a.abort();
        let _ = a.await;
    }
    let _ = clerk.await;
    let _ = eraser.await;
    let _ = node.handle.stop();
    node.handle.stopped().await;
    drop(log);
    Ok(())
}

/// After every checkpoint, destroys the personal data of members whose erasure it recorded
/// (however the `member.erase` entry arrived).
async fn carry_out_erasures(log: Arc<Log<CoopRules>>, personal: coopledger_rpc::PersonalData) {
    let mut checkpoints = log.subscribe();
    loop {
        match checkpoints.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        let p = personal.clone();
        match tokio::task::spawn_blocking(move || p.sweep()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(members = n, "personal data destroyed"),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot destroy erased personal data"),
            Err(e) => tracing::error!(error = %e, "erasure task failed"),
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
