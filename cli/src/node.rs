//! `coop init` and `coop serve`: their arguments, and what they print. The data folder and the
//! running node are `coopledger_node` (`folder`, `Node::start`).

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::{Founder, Genesis, Role};
use coopledger_ledger::codec::b64_decode;
use coopledger_ledger::LogConfig;
use coopledger_node::{folder, keyfile, Node, NodeConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// A batch holds at most this many entries.
    #[arg(long, default_value_t = 1024)]
    batch_entries: usize,
    /// Milliseconds a batch lingers for more entries after taking what was queued; 0 (the
    /// default) is group commit: an idle node commits at once, a busy one batches whatever
    /// arrived during the previous fsync.
    #[arg(long, default_value_t = 0)]
    batch_ms: u64,
    /// Allowed distance between an entry's timestamp and the node clock, in seconds.
    #[arg(long, default_value_t = 300)]
    ts_window_secs: u64,
    /// The vault key file (wraps members' personal-data keys; keep it out of the data folder
    /// and back it up). Default: beside the data folder, `<data>.vault-key`, made when the
    /// vault is empty. `COOP_VAULT_KEY` (base64 of 32 bytes) takes precedence.
    #[arg(long)]
    vault_key: Option<PathBuf>,
    /// Connections served at once (HTTP and WebSocket together); one more gets HTTP 429.
    #[arg(long, default_value_t = 512)]
    max_connections: u32,
    /// A browser origin (`https://portal.example.coop`) allowed to open a WebSocket besides the
    /// node's own address; repeatable. Handshakes with any other `Origin` are refused (403).
    #[arg(long = "ws-origin")]
    ws_origins: Vec<String>,
    /// Serve TLS with this PEM certificate chain (with `--tls-key`).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow a non-loopback `--listen` address without TLS (requests and answers cross the
    /// network in clear). Prefer `--tls-cert`/`--tls-key`, or a TLS-terminating proxy.
    #[arg(long)]
    insecure_listen: bool,
    /// Entries a second, in all, from keys the co-op does not know (applications to join);
    /// more are refused with OVERLOADED and a retry delay. Members' keys are never limited.
    #[arg(long, default_value_t = 20)]
    stranger_writes_per_sec: u32,
    /// Connections from one peer address at once; more are closed before any HTTP.
    #[arg(long, default_value_t = 64)]
    max_per_peer: usize,
    /// Seconds an HTTP connection may wait for its next request headers, or a WebSocket go
    /// without answering the node's ping, before it is closed.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Seconds a request body may take to arrive; then HTTP 408 and the connection closes.
    #[arg(long, default_value_t = 10)]
    body_timeout_secs: u64,
    /// Largest entry accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_entry_bytes: usize,
    /// A replica only: seconds it gives one call sending a piece of a snapshot to another
    /// replica (default 60). The last piece is answered once the receiver imported the
    /// history; an import that takes longer goes on, and is waited for again on the next try
    /// (`docs/replication.md` §6).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    snapshot_install_secs: Option<u64>,
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
    /// Tip offered per gas (EIP-1559 maxPriorityFeePerGas), in wei.
    #[arg(long, default_value_t = 1_000_000_000)]
    anchor_tip_wei: u128,
    /// Never pay more than this per gas (EIP-1559 maxFeePerGas, or a legacy gas price), in
    /// wei; an anchor that would is not sent and `anchor status` says why.
    #[arg(long, default_value_t = 100_000_000_000)]
    anchor_max_fee_wei: u128,
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

pub async fn init(args: InitArgs) -> Result<()> {
    let bylaws = match &args.bylaws {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            Bylaws::from_json(&v).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Bylaws::single_class(),
    };
    let founders = args
        .founders
        .iter()
        .map(|s| parse_founder(s, &bylaws))
        .collect::<Result<Vec<_>>>()?;
    let name = args.name.clone();
    let created = folder::create(&args.data, &args.origin, |node| Genesis {
        name,
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws,
    })
    .await?;
    print_created(&args.data, &args.origin, &created);
    Ok(())
}

fn print_created(data: &Path, origin: &str, c: &folder::Created) {
    outln!("created co-op {origin:?} in {}", data.display());
    outln!(
        "genesis entry: index {}, checkpoint size {}",
        c.genesis.index,
        c.genesis.checkpoint.checkpoint.size
    );
    outln!("verifier key: {}", c.vkey);
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    // Refused before anything is made: a flag that would change nothing is not ignored.
    if args.snapshot_install_secs.is_some()
        && coopledger_node::cluster::membership::ClusterFile::read(&args.data)?.is_none()
    {
        bail!(
            "--snapshot-install-secs applies to a replica, and {} has no cluster.json",
            args.data.display()
        );
    }
    if !folder::exists(&args.data) {
        outln!(
            "no ledger in {}; creating a demo co-op",
            args.data.display()
        );
        let (created, keys) = folder::create_demo(&args.data).await?;
        print_created(&args.data, folder::DEMO_ORIGIN, &created);
        outln!(
            "demo founders' keys: {}/{{board,treasurer,member}}.key",
            keys.display()
        );
    }
    let anchoring = match &args.anchor_rpc {
        Some(url) => {
            let path = args.anchor_key.clone().unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read --anchor-key {}", path.display()))?;
            let bytes = hex::decode(text.trim().trim_start_matches("0x"))
                .map_err(|_| anyhow!("--anchor-key: not hex"))?;
            let key = k256::ecdsa::SigningKey::from_slice(&bytes)
                .map_err(|_| anyhow!("--anchor-key: not a secp256k1 key"))?;
            Some(coopledger_node::anchoring::AnchorConfig {
                rpc_url: url.clone(),
                chain_id: args.anchor_chain_id.unwrap_or_default(),
                key,
                every: Duration::from_secs(args.anchor_every_secs),
                every_entries: args.anchor_every_entries.max(1),
                confirmations: args.anchor_confirmations.max(1),
                fees: coopledger_node::anchoring::FeePolicy {
                    tip: args.anchor_tip_wei,
                    max_fee: args.anchor_max_fee_wei,
                },
            })
        }
        None => None,
    };
    let witness_for = args
        .witness_for
        .iter()
        .map(|v| {
            coopledger_ledger::NoteVerifier::parse(v)
                .map_err(|e| anyhow!("--witness-for {v:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| {
            coopledger_node::cosigning::WitnessPeer::parse(w).map_err(|e| anyhow!("--witness {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(coopledger_rpc::listen::tls_config(cert, key)?),
        _ => None,
    };
    let vault_key = match std::env::var("COOP_VAULT_KEY") {
        Ok(text) => coopledger_node::VaultKeySource::Key(coopledger_node::vault::VaultKey::parse(
            "COOP_VAULT_KEY",
            &text,
        )?),
        Err(_) => match &args.vault_key {
            Some(path) => coopledger_node::VaultKeySource::File(path.clone()),
            None => coopledger_node::VaultKeySource::beside(&args.data),
        },
    };
    let cluster_file = coopledger_node::cluster::membership::ClusterFile::read(&args.data)?;
    let cluster = match &cluster_file {
        Some(f) => {
            let mut tuning =
                coopledger_node::cluster::replica::ReplicaConfig::new(f.id, &args.data);
            if let Some(secs) = args.snapshot_install_secs {
                tuning.snapshot_install_timeout = Duration::from_secs(secs);
            }
            let key = keyfile::read(&folder::node_key_path(&args.data))?;
            let tls = coopledger_rpc::cluster::ClusterTls::new(&key)
                .map_err(|e| anyhow!("cluster TLS: {e}"))?;
            let listener = std::net::TcpListener::bind(&f.cluster)
                .with_context(|| format!("cannot listen on the cluster address {}", f.cluster))?;
            Some(coopledger_node::cluster::ClusterSetup {
                id: f.id,
                me: f.addr(),
                listener,
                frontend: Arc::new(coopledger_rpc::cluster::RaftListener {
                    tls: tls.server.clone(),
                    max_connections: 64,
                }),
                calls: Arc::new(coopledger_rpc::cluster::PeerClient::new(
                    tls.client,
                    tuning.snapshot_install_timeout,
                )),
                initialize: f.initialize,
                tuning,
            })
        }
        None => None,
    };
    let config = NodeConfig {
        cluster,
        vault_key,
        data: args.data.clone(),
        log: LogConfig {
            batch_max_entries: args.batch_entries.max(1),
            batch_max_wait: Duration::from_millis(args.batch_ms),
            ts_window: Duration::from_secs(args.ts_window_secs),
            max_entry_bytes: args.max_entry_bytes,
            ..LogConfig::default()
        },
        witness_for,
        witnesses,
        anchoring,
        frontend: Arc::new(coopledger_rpc::JsonRpc {
            max_connections: args.max_connections.max(1),
            body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
            ws_origins: args.ws_origins.clone(),
            max_per_peer: args.max_per_peer.max(1),
            strangers_per_sec: args.stranger_writes_per_sec.max(1),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            tls: tls.clone(),
        }),
    };
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() && tls.is_none() {
        if !args.insecure_listen {
            bail!(
                "refusing to listen on {bound} without TLS: the node speaks plain HTTP. Listen \
                 on loopback behind a TLS-terminating reverse proxy, or give --insecure-listen \
                 if this network is trusted"
            );
        }
        eprintln!(
            "warning: listening on {bound} without TLS (--insecure-listen): requests and \
             answers cross the network in clear"
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = Node::start(config, listener, async move {
        let _ = stop_rx.await;
    })
    .await?;
    if running.erased_at_start > 0 {
        consoleln!(
            "destroyed the personal data of {} erased member(s)",
            running.erased_at_start
        );
    }
    let log = &running.node.log;
    if let Some((w, _)) = &running.node.witness {
        consoleln!("witness key: {}", w.vkey());
    }
    if let Some(a) = &args.anchor_rpc {
        consoleln!(
            "anchoring on chain {} at {a}",
            args.anchor_chain_id.unwrap_or_default()
        );
    }
    std::fs::write(args.data.join("node.addr"), format!("{}\n", running.addr))?;
    let cp = log.checkpoint();
    if coopledger_rpc::portal::is_built() {
        consoleln!(
            "portal: {}://{}/ (open it in a browser)",
            if tls.is_some() { "https" } else { "http" },
            running.addr
        );
    } else {
        consoleln!("portal: not built into this binary (run scripts/setup.sh, then rebuild)");
    }
    consoleln!(
        "coop node listening on {}://{} (WebSocket on the same port)",
        if tls.is_some() { "https" } else { "http" },
        running.addr
    );
    consoleln!("origin: {}", log.origin());
    consoleln!("verifier key: {}", log.verifier_key());
    consoleln!(
        "checkpoint: size {} root {}",
        cp.checkpoint.size,
        cp.checkpoint.root
    );
    if let Some(f) = &cluster_file {
        consoleln!(
            "replica {} of the cluster; cluster listener {} (mutual TLS with the co-op's key)",
            f.id,
            f.cluster
        );
        if f.join_via.is_some() {
            let (data, f) = (args.data.clone(), f.clone());
            tokio::spawn(async move {
                match crate::cluster::join_when_started(&data, &f).await {
                    Ok(()) => consoleln!("joined the cluster as replica {}", f.id),
                    Err(e) => eprintln!("could not join the cluster: {e:#}"),
                }
            });
        }
    }
    tracing::info!(addr = %running.addr, "serving");
    shutdown_signal().await;
    consoleln!("shutting down");
    let _ = stop_tx.send(());
    running.stopped().await;
    Ok(())
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
