//! The `coop` command: create and run a co-op node, manage keys, submit signed entries, fetch
//! entries and checkpoints, write proof files and verify them offline.
#![forbid(unsafe_code)]

/// Prints a line of a command's output, as `println!` would — but a standard output that can
/// no longer be written (`coop … | head -1`) ends the command through [`write_out`] rather
/// than a panic.
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// [`outln!`] without the line's end.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

/// Prints a line on a running node's console. A console that went away does not stop the
/// node: the line is dropped.
macro_rules! consoleln {
    ($($arg:tt)*) => {
        $crate::write_console(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod anchor;
mod ballot;
mod cluster;
mod consent;
mod gov;
mod node;
mod personal;
mod revenue;
mod tally;
mod who;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use coopledger_ledger::bundle::ProofFile;
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{Body, NoteVerifier};
use coopledger_node::keyfile;
use coopledger_rpc::client::{http_client, HttpClient};
use coopledger_rpc::LedgerApiClient;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// How `coop` ends, for scripts (also in `coop --help` and the README).
pub const EXIT_CODES: &str = "Exit codes:
  0  done; a check passed (VALID, AGREES, AUDIT PASSED, ACCEPTED)
  1  a check ran and failed (INVALID, DIFFERS, AUDIT FAILED, REFUSED)
  2  usage or input error: bad arguments, an unreadable or malformed file or key; or the
     output could not be written (a closed pipe, as in `coop audit | head -1`: quietly)
  3  refused by the node: a co-op rule, a bad signature, an unknown id (one line names it,
     e.g. `refused (use.withdrawn): …`)
  4  node unavailable: not reachable, timed out, overloaded or stopped (retry later)";

/// Exit code: a check ran and failed.
pub const EXIT_FAILED_CHECK: u8 = 1;
/// Exit code: usage or input error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: refused by the node.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code: the node is unavailable.
pub const EXIT_UNAVAILABLE: u8 = 4;

/// Default JSON-RPC address of a node (HTTP and WebSocket on one port; not 8545, which EVM
/// nodes use).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7341";

#[derive(Parser, Debug)]
#[command(
    name = "coop",
    version,
    about = "coopledger: a data co-op's verifiable ledger",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Node JSON-RPC URL for client commands.
    #[arg(
        long,
        global = true,
        env = "COOP_RPC",
        default_value = "http://127.0.0.1:7341"
    )]
    rpc: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a new co-op ledger in a data folder: node key, origin, founders, genesis entry.
    Init(node::InitArgs),
    /// Run the node (creates a demo co-op if the data folder is new; runs a replica when the
    /// folder holds `cluster.json`, see `coop cluster`).
    Serve(node::ServeArgs),
    /// Replicate the co-op's ledger on several nodes (docs/replication.md).
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Manage Ed25519 key files.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Sign a payload with a key file and submit it.
    Submit {
        /// Key file of the signer.
        #[arg(long)]
        key: PathBuf,
        /// Entry type, e.g. coop.attest.
        #[arg(long = "type", required_unless_present = "batch")]
        kind: Option<String>,
        /// Entry type version.
        #[arg(long, default_value_t = 1)]
        version: u64,
        /// Payload JSON object, or @FILE.
        #[arg(long, required_unless_present = "batch")]
        payload: Option<String>,
        /// A JSON file holding an array of entries `{"type", "payload", "version"?}`, signed with
        /// --key in order (consecutive sequence numbers) and sent in one `ledger_submitBatch`:
        /// sequenced together under one checkpoint, each answered on its own (exit 3 if any
        /// is refused).
        #[arg(long, conflicts_with_all = ["kind", "payload"])]
        batch: Option<PathBuf>,
        /// Sequence number (default: ask the node for the next one).
        #[arg(long)]
        seq: Option<u64>,
        /// Co-op origin (default: ask the node).
        #[arg(long)]
        coop: Option<String>,
    },
    /// Print entry N.
    Entry {
        /// Log index.
        index: u64,
    },
    /// Print the newest signed checkpoint.
    Checkpoint {
        /// Also write its signed note to this file (keep it: `coop audit --seen FILE` later
        /// checks the log still contains it).
        #[arg(long)]
        note: Option<PathBuf>,
    },
    /// Print the node's checkpoint verifier key (give it to auditors for `coop verify`).
    Vkey,
    /// Back up a data folder — while its node runs (asked over JSON-RPC with the folder's
    /// admin.token), or directly when it is stopped — into a new folder: the ledger, its record
    /// of signed checkpoints and the node key. The vault key is not included: keep it apart.
    Backup {
        /// The node's data folder.
        #[arg(long)]
        data: PathBuf,
        /// The backup folder to create.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Restore a backup into a new data folder, checking it holds the backup's checkpoint and
    /// replaying every entry with the co-op's rules; then `coop serve --data DIR` starts on it.
    Restore {
        /// The backup folder (`coop backup -o`).
        backup: PathBuf,
        /// The data folder to create.
        #[arg(long)]
        data: PathBuf,
    },
    /// Audit the node's whole log from outside: fetch every entry, check the tree root against
    /// the signed checkpoint, and replay it with the co-op's rules, checking every recorded
    /// state root. Exit code 0 = passed, 1 = failed.
    Audit {
        /// The log's verifier key `<origin>+<keyid>+<base64>`.
        #[arg(long)]
        vkey: String,
        /// A checkpoint you have seen before (a signed note file, as `coop checkpoint --note`
        /// writes it or a witness cosigned it; repeatable): the log must contain it — not be
        /// shorter, and have the same root at its size.
        #[arg(long = "seen")]
        seen: Vec<PathBuf>,
    },
    /// Write a self-contained proof file for entry N (entry, inclusion proof, signed checkpoint).
    Prove {
        /// Log index.
        index: u64,
        /// Output file.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Membership: apply, admit, keys, class, roles, suspension, notice, expulsion, withdrawal.
    #[command(subcommand)]
    Member(gov::MemberCmd),
    /// Proposals: create, amend, withdraw, show, list.
    #[command(subcommand)]
    Proposal(gov::ProposalCmd),
    /// Vote on a proposal: yes|no|abstain, or --choices 2,0,1 for choice methods.
    Vote {
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// Proposal id.
        proposal: String,
        /// yes, no or abstain (yes/no proposals).
        vote: Option<String>,
        /// Choice numbers, comma-separated (a ranking for ranked choice; empty to abstain).
        #[arg(long)]
        choices: Option<String>,
        /// Secret ballots: where to keep the node's receipt (default
        /// `ballot-<proposal>.receipt.json`).
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
    /// Give a proxy for one proposal to another member, or take it back with --revoke.
    Proxy {
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// Proposal id.
        proposal: String,
        /// Member id of the proxy holder.
        #[arg(long, conflicts_with = "revoke", required_unless_present = "revoke")]
        to: Option<String>,
        /// Take the proxy back.
        #[arg(long)]
        revoke: bool,
    },
    /// Tallies: show the recorded one, or recount it offline.
    #[command(subcommand)]
    Tally(tally::TallyCmd),
    /// Print the bylaws in force; `schema` prints their JSON Schema, `check FILE` checks a
    /// bylaws file offline against the rules (exit 0 accepted, 1 refused, naming the field).
    Bylaws {
        #[command(subcommand)]
        cmd: Option<gov::BylawsCmd>,
    },
    /// Consent: grant, renew, withdraw (your key); revoke / invalidate (party keys); status,
    /// timeline, grants, receipts.
    #[command(subcommand)]
    Consent(consent::ConsentCmd),
    /// Personal data kept off the log: submit, show, erase.
    #[command(subcommand)]
    Personal(personal::PersonalCmd),
    /// Data revenue, expenses, the allocation policy and distributions.
    #[command(subcommand)]
    Revenue(revenue::RevenueCmd),
    /// Anchors of checkpoints on an EVM chain: status, list, verify.
    #[command(subcommand)]
    Anchor(anchor::AnchorCmd),
    /// Register a party (controller, recipient, authority), as the board.
    PartyRegister {
        /// Board member's key file.
        #[arg(long)]
        key: PathBuf,
        /// Party id: 1 to 64 of [a-z0-9_-].
        #[arg(long)]
        party: String,
        /// controller, recipient or authority.
        #[arg(long)]
        kind: String,
        /// Organisation name.
        #[arg(long)]
        name: String,
        /// Jurisdiction, e.g. EU.
        #[arg(long, default_value = "EU")]
        jurisdiction: String,
        /// The party's signing key (base64 or @KEYFILE), for controllers and authorities.
        #[arg(long)]
        party_key: Option<String>,
    },
    /// Publish a consent notice (JSON file; `textFile` may stand in for `textDigest`).
    NoticePublish {
        /// Board member's or controller's key file.
        #[arg(long)]
        key: PathBuf,
        file: PathBuf,
    },
    /// Record a release or sale of member data, citing the consents it relies on.
    DataUse {
        /// Board member's or controller's key file.
        #[arg(long)]
        key: PathBuf,
        /// release or sale.
        #[arg(long, default_value = "release")]
        kind: String,
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        purpose: String,
        /// A data category, repeatable.
        #[arg(long = "category", required = true)]
        categories: Vec<String>,
        /// A consent grant id, repeatable (one per member whose data is in it).
        #[arg(long = "consent", required = true)]
        consents: Vec<String>,
        /// The dataset file (its SHA-256 is recorded).
        #[arg(long)]
        dataset: Option<PathBuf>,
    },
    /// Print the co-op's summary (name, members, bylaws version, entry types).
    Info,
    /// Verify a bundle offline (no server): a regulator bundle from `coop consent export` (the
    /// member's complete consent history) or a revenue bundle from `coop revenue statement|
    /// reconcile`. Exit code 0 = valid, 1 = invalid.
    VerifyBundle {
        /// Bundle file.
        file: PathBuf,
        /// The log's verifier key `<origin>+<keyid>+<base64>`.
        #[arg(long)]
        vkey: String,
        /// A witness key whose cosignature of the bundle's checkpoint counts; repeatable.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the `--witness` keys must have cosigned the bundle's checkpoint.
        #[arg(long = "min-witnesses", default_value_t = 0)]
        min_witnesses: usize,
    },
    /// Verify a proof file offline (no server). Exit code 0 = valid, 1 = invalid.
    Verify {
        /// Proof file from `coop prove`.
        file: PathBuf,
        /// The log's verifier key `<origin>+<keyid>+<base64>`.
        #[arg(long)]
        vkey: String,
        /// A witness key (`<name>+<keyid>+<base64(0x04 ‖ key)>`) whose cosignature counts;
        /// repeatable.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the `--witness` keys must have cosigned the proof's checkpoint.
        #[arg(long = "min-witnesses", default_value_t = 0)]
        min_witnesses: usize,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Create a new key file.
    New {
        /// Where to write it.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Show a key file's public key and member id.
    Show {
        /// Key file.
        file: PathBuf,
    },
}

/// The `--witness` keys and `--min-witnesses` of a command as a policy.
fn witness_policy(
    witnesses: &[String],
    k: usize,
) -> Result<coopledger_ledger::cosignature::WitnessPolicy> {
    if k > witnesses.len() {
        anyhow::bail!(
            "--min-witnesses {k} is more than the {} --witness keys given",
            witnesses.len()
        );
    }
    let keys = witnesses
        .iter()
        .map(|w| {
            coopledger_ledger::cosignature::WitnessKey::parse(w)
                .map_err(|e| anyhow!("--witness {w:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(coopledger_ledger::cosignature::WitnessPolicy { witnesses: keys, k })
}

/// The policy applied to one signed checkpoint note: the cosignatures that count, or why not.
fn cosigners_of(
    policy: &coopledger_ledger::cosignature::WitnessPolicy,
    note: &str,
) -> Result<Vec<coopledger_ledger::cosignature::Cosigned>, String> {
    coopledger_ledger::note::SignedNote::parse(note.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|n| policy.check(&n).map_err(|e| e.to_string()))
}

/// The "k of these witnesses" policy on the `checkpoint` (or every bundle's) of a bundle file;
/// `Some(exit code 1)` after printing INVALID when it fails.
fn check_witnesses_of_file(
    file: &std::path::Path,
    witnesses: &[String],
    k: usize,
) -> Result<Option<ExitCode>> {
    if k == 0 {
        return Ok(None);
    }
    let policy = witness_policy(witnesses, k)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut notes: Vec<String> = Vec::new();
    if let Some(cp) = v.get("checkpoint").and_then(|c| c.as_str()) {
        notes.push(cp.to_owned());
    }
    for b in v
        .get("bundles")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(cp) = b.get("checkpoint").and_then(|c| c.as_str()) {
            notes.push(cp.to_owned());
        }
    }
    if notes.is_empty() {
        outln!("INVALID: {} holds no checkpoint", file.display());
        return Ok(Some(ExitCode::from(1)));
    }
    for note in notes {
        if let Err(e) = cosigners_of(&policy, &note) {
            outln!("INVALID: checkpoint witnesses: {e}");
            return Ok(Some(ExitCode::from(1)));
        }
    }
    Ok(None)
}

/// `coop backup`: over JSON-RPC when the folder's node runs, else directly.
async fn backup(data: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let out = std::path::absolute(out).with_context(|| format!("{}", out.display()))?;
    let running = std::fs::read_to_string(data.join("node.addr"))
        .ok()
        .zip(std::fs::read_to_string(data.join("admin.token")).ok());
    if let Some((addr, token)) = running {
        let c = client(&format!("http://{}", addr.trim()))?;
        match coopledger_rpc::AdminApiClient::backup(
            &c,
            token.trim().to_owned(),
            out.display().to_string(),
        )
        .await
        {
            Ok(r) => {
                outln!(
                    "backed up {} (checkpoint size {}, root {}) into {} while the node runs",
                    r.origin,
                    r.size,
                    r.root,
                    r.path
                );
                outln!("the vault key is not in it: back up the vault key file separately");
                return Ok(());
            }
            // Not running (the address is stale): back up the folder directly below.
            Err(jsonrpsee::core::ClientError::Transport(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (log, _) = coopledger_node::folder::open(data, coopledger_ledger::LogConfig::default())?;
    let info = coopledger_node::folder::backup(&log, data, &out)?;
    outln!(
        "backed up {} (checkpoint size {}, root {}) into {} (the node was not running)",
        info.origin,
        info.size,
        info.root,
        out.display()
    );
    outln!("the vault key is not in it: back up the vault key file separately");
    Ok(())
}

/// `coop audit`: see [`Cmd::Audit`].
async fn audit(
    c: &coopledger_rpc::client::HttpClient,
    vkey: &str,
    seen: &[PathBuf],
) -> Result<ExitCode> {
    use coopledger_ledger::audit::Audit;
    use coopledger_ledger::merkle::MemoryTree;
    let vkey = NoteVerifier::parse(vkey).map_err(|e| anyhow!("--vkey: {e}"))?;
    // The checkpoints the auditor has seen, each checked under the log's key first.
    let mut earlier = Vec::with_capacity(seen.len());
    for path in seen {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --seen {}", path.display()))?;
        let cp = coopledger_ledger::SignedCheckpoint::open(&text, &vkey).map_err(|e| {
            anyhow!(
                "--seen {}: not a checkpoint of this log: {e}",
                path.display()
            )
        })?;
        earlier.push((path.display().to_string(), cp.checkpoint));
    }
    let cp = c.checkpoint().await?;
    let signed = match coopledger_ledger::SignedCheckpoint::open(&cp.note, &vkey) {
        Ok(s) => s,
        Err(e) => {
            outln!("AUDIT FAILED: the node's checkpoint: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let size = signed.checkpoint.size;
    if let Some((file, e)) = earlier.iter().find(|(_, e)| e.size > size) {
        outln!(
            "AUDIT FAILED: the log is behind a checkpoint you have seen: {file} is signed at size {}, the node serves {size} entries (entries were lost or a fork is being shown)",
            e.size
        );
        return Ok(ExitCode::from(1));
    }
    let rules = coopledger_governance::CoopRules;
    let mut replay = Audit::new(&rules, *vkey.public_key());
    let mut tree = MemoryTree::new();
    for index in 0..size {
        let e = c.get_entry(index).await?;
        let bytes = coopledger_ledger::codec::b64_decode(&e.entry)
            .map_err(|_| anyhow!("entry {index}: not base64"))?;
        tree.push(coopledger_ledger::hash::leaf_hash(&bytes));
        if let Err(err) = replay.push(&bytes) {
            outln!("AUDIT FAILED: {err}");
            return Ok(ExitCode::from(1));
        }
        for (file, e) in earlier.iter().filter(|(_, e)| e.size == index + 1) {
            if tree.root() != e.root {
                outln!(
                    "AUDIT FAILED: the log is inconsistent with a checkpoint you have seen: {file} is signed at size {} with root {}, the log's tree there is {} (two histories signed by one key)",
                    e.size,
                    e.root,
                    tree.root()
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    if tree.root() != signed.checkpoint.root {
        outln!(
            "AUDIT FAILED: the entries served hash to {}, the signed checkpoint says {}",
            tree.root(),
            signed.checkpoint.root
        );
        return Ok(ExitCode::from(1));
    }
    match replay.finish() {
        Ok(r) => {
            outln!(
                "AUDIT PASSED: {} entries of {} replayed with the co-op's rules in {} batches; every recorded state root reached (last {}); tree root matches the signed checkpoint of size {size}{}",
                r.entries,
                signed.checkpoint.origin,
                r.batches,
                r.state_root,
                if earlier.is_empty() {
                    String::new()
                } else {
                    format!("; contains the {} checkpoint(s) you have seen", earlier.len())
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            outln!("AUDIT FAILED: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rpc = cli.rpc.clone();
    // Diagnostics go to stderr; `RUST_LOG` selects them (default: warnings and errors, such as a
    // storage failure that stops the sequencer).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let from_node = e
                .chain()
                .find_map(|c| c.downcast_ref::<jsonrpsee::core::ClientError>())
                .and_then(coopledger_rpc::client::failure);
            // What the command was doing when the node answered (anyhow contexts, outermost
            // first), said before the node's own words.
            let doing: Vec<String> = e
                .chain()
                .take_while(|c| c.downcast_ref::<jsonrpsee::core::ClientError>().is_none())
                .map(ToString::to_string)
                .collect();
            let doing = if doing.is_empty() {
                String::new()
            } else {
                format!("{}: ", doing.join(": "))
            };
            match from_node {
                Some(f @ coopledger_rpc::client::Failure::Refused { .. }) => {
                    eprintln!("{}", f.line(&doing));
                    return ExitCode::from(EXIT_REFUSED);
                }
                Some(f @ coopledger_rpc::client::Failure::Unavailable { .. }) => {
                    eprintln!(
                        "{} — is a node serving {rpc}? (--rpc or COOP_RPC)",
                        f.line(&doing)
                    );
                    return ExitCode::from(EXIT_UNAVAILABLE);
                }
                None => {}
            }
            // Print each cause once: some errors (jsonrpsee's) repeat themselves as their source.
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    line = if line.is_empty() {
                        cause
                    } else {
                        format!("{line}: {cause}")
                    };
                }
            }
            eprintln!("error: {line}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Writes `args` to standard output and flushes it. When that fails the command ends at once
/// with [`EXIT_USAGE`] — quietly when the reader closed the pipe (it chose to stop reading),
/// with one line on standard error otherwise — never with 0: a script must not take a
/// `coop audit` whose verdict never reached it for one that passed.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
        std::process::exit(i32::from(EXIT_USAGE));
    }
}

/// Writes `args` to standard output for [`consoleln!`]; a failure is ignored.
pub(crate) fn write_console(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(args).and_then(|()| stdout.flush());
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn client(url: &str) -> Result<HttpClient> {
    http_client(url).with_context(|| format!("bad --rpc URL {url}"))
}

/// `coop submit --batch FILE`: signs each `{type, payload, version?}` of the file with `key`
/// (consecutive sequence numbers from `seq`, or the node's next) and sends them in one
/// `ledger_submitBatch`; prints each entry's answer; exit 3 if any was refused.
async fn submit_batch(
    c: &coopledger_rpc::client::HttpClient,
    key: &std::path::Path,
    file: &std::path::Path,
    seq: Option<u64>,
    coop: Option<String>,
) -> Result<ExitCode> {
    let key = keyfile::read(key)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let list: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of entries", file.display()))?;
    let signer = key.verifying_key().to_bytes();
    let first = match seq {
        Some(s) => s,
        None => c.next_seq(b64_encode(signer)).await?,
    };
    let coop = match coop {
        Some(o) => o,
        None => c.checkpoint().await?.origin,
    };
    let mut envs = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{}: entry {i} has no \"type\"", file.display()))?;
        let payload = item
            .get("payload")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "{}: entry {i}'s \"payload\" is not an object",
                    file.display()
                )
            })?;
        if let Some(extra) = item.as_object().and_then(|o| {
            o.keys()
                .find(|k| !["type", "payload", "version"].contains(&k.as_str()))
        }) {
            anyhow::bail!(
                "{}: entry {i} has an unknown field {extra:?}",
                file.display()
            );
        }
        let version = item.get("version").and_then(Value::as_u64).unwrap_or(1);
        let env = Body {
            coop: coop.clone(),
            kind: kind.to_owned(),
            version,
            signer,
            seq: first + i as u64,
            ts: coopledger_ledger::log::now_ms(),
            payload,
        }
        .sign(&key)
        .map_err(|r| anyhow!("entry {i}: {r}"))?;
        envs.push(env.to_value());
    }
    let answers = c.submit_batch(envs).await?;
    print_json(&answers)?;
    let refused = answers.iter().filter(|a| a.error.is_some()).count();
    if refused > 0 {
        eprintln!(
            "refused: {refused} of {} entries (see each answer's error)",
            answers.len()
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Init(args) => node::init(args).await?,
        Cmd::Serve(args) => node::serve(args).await?,
        Cmd::Cluster(cmd) => cluster::run(&cli.rpc, cmd).await?,
        Cmd::Key(KeyCmd::New { out }) => {
            let key = keyfile::create(&out)?;
            outln!("public key: {}", b64_encode(key.verifying_key().to_bytes()));
            outln!("written to: {}", out.display());
        }
        Cmd::Key(KeyCmd::Show { file }) => {
            let key = keyfile::read(&file)?;
            let public = key.verifying_key().to_bytes();
            print_json(&serde_json::json!({
                "public": b64_encode(public),
                "memberId": coopledger_governance::genesis::member_id(&public),
            }))?;
        }
        Cmd::Submit {
            key,
            batch: Some(file),
            seq,
            coop,
            ..
        } => return submit_batch(&client(&cli.rpc)?, &key, &file, seq, coop).await,
        Cmd::Submit {
            key,
            kind,
            version,
            payload,
            seq,
            coop,
            batch: None,
        } => {
            let key = keyfile::read(&key)?;
            let (Some(kind), Some(payload)) = (kind, payload) else {
                anyhow::bail!("give --type and --payload, or --batch FILE");
            };
            let text = match payload.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
                }
                None => payload,
            };
            let payload: Value = serde_json::from_str(&text).context("--payload is not JSON")?;
            let payload = payload
                .as_object()
                .cloned()
                .ok_or_else(|| anyhow!("--payload must be a JSON object"))?;
            let c = client(&cli.rpc)?;
            let signer = key.verifying_key().to_bytes();
            let seq = match seq {
                Some(s) => s,
                None => c.next_seq(b64_encode(signer)).await?,
            };
            let coop = match coop {
                Some(c) => c,
                None => c.checkpoint().await?.origin,
            };
            let env = Body {
                coop,
                kind,
                version,
                signer,
                seq,
                ts: coopledger_ledger::log::now_ms(),
                payload,
            }
            .sign(&key)
            .map_err(|r| anyhow!("{r}"))?;
            let receipt = c.submit(env.to_value()).await?;
            print_json(&receipt)?;
        }
        Cmd::Member(cmd) => gov::member(&client(&cli.rpc)?, cmd).await?,
        Cmd::Proposal(cmd) => gov::proposal(&client(&cli.rpc)?, cmd).await?,
        Cmd::Vote {
            key,
            proposal,
            vote,
            choices,
            receipt,
        } => gov::vote(&client(&cli.rpc)?, &key, proposal, vote, choices, receipt).await?,
        Cmd::Proxy {
            key,
            proposal,
            to,
            revoke: _,
        } => gov::proxy(&client(&cli.rpc)?, &key, proposal, to).await?,
        Cmd::Tally(tally::TallyCmd::Show { id }) => {
            let p = coopledger_rpc::GovApiClient::proposal(&client(&cli.rpc)?, id).await?;
            match p.tally {
                Some(t) => print_json(&t)?,
                None => anyhow::bail!(
                    "proposal {} has no tally yet (closes at {} ms)",
                    p.id,
                    p.closes_ms
                ),
            }
        }
        Cmd::Tally(tally::TallyCmd::Export { id, out, vkey }) => {
            return tally::export(&client(&cli.rpc)?, id, &out, vkey).await;
        }
        Cmd::Tally(tally::TallyCmd::Verify { id, vkey, receipt }) => {
            return tally::verify_tally(&client(&cli.rpc)?, id, vkey, receipt).await;
        }
        Cmd::Bylaws { cmd: None } => gov::bylaws(&client(&cli.rpc)?).await?,
        Cmd::Bylaws { cmd: Some(cmd) } => return gov::bylaws_offline(cmd),
        Cmd::Consent(cmd) => consent::consent(&client(&cli.rpc)?, cmd).await?,
        Cmd::Personal(cmd) => personal::personal(&client(&cli.rpc)?, cmd).await?,
        Cmd::Revenue(cmd) => revenue::revenue(&client(&cli.rpc)?, cmd).await?,
        Cmd::Anchor(cmd) => return anchor::anchor(&client(&cli.rpc)?, cmd).await,
        Cmd::PartyRegister {
            key,
            party,
            kind,
            name,
            jurisdiction,
            party_key,
        } => {
            consent::register_party(
                &client(&cli.rpc)?,
                key,
                party,
                kind,
                name,
                jurisdiction,
                party_key,
            )
            .await?
        }
        Cmd::NoticePublish { key, file } => {
            consent::publish_notice(&client(&cli.rpc)?, key, file).await?
        }
        Cmd::DataUse {
            key,
            kind,
            recipient,
            purpose,
            categories,
            consents,
            dataset,
        } => {
            consent::data_use(
                &client(&cli.rpc)?,
                key,
                kind,
                recipient,
                purpose,
                categories,
                consents,
                dataset,
            )
            .await?
        }
        Cmd::Info => print_json(&coopledger_rpc::GovApiClient::info(&client(&cli.rpc)?).await?)?,
        Cmd::Entry { index } => print_json(&client(&cli.rpc)?.get_entry(index).await?)?,
        Cmd::Checkpoint { note } => {
            let cp = client(&cli.rpc)?.checkpoint().await?;
            if let Some(path) = note {
                std::fs::write(&path, &cp.note)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            print_json(&cp)?
        }
        Cmd::Vkey => outln!("{}", client(&cli.rpc)?.verifier_key().await?),
        Cmd::Audit { vkey, seen } => return audit(&client(&cli.rpc)?, &vkey, &seen).await,
        Cmd::Backup { data, out } => backup(&data, &out).await?,
        Cmd::Restore { backup, data } => {
            let (info, size) = coopledger_node::folder::restore(&backup, &data)?;
            outln!(
                "restored {} into {}: {size} entries, the backup's checkpoint (size {}) held, every entry replayed with the co-op's rules",
                info.origin,
                data.display(),
                info.size
            );
            outln!(
                "start it with: coop serve --data {} (and the vault key: --vault-key FILE)",
                data.display()
            );
        }
        Cmd::Prove { index, out } => {
            let c = client(&cli.rpc)?;
            // The newest checkpoint the witnesses cosigned, when it covers the entry: the proof
            // then carries their cosignatures too.
            let cp = match c.cosigned_checkpoint().await {
                Ok(cp) if cp.size > index => cp,
                _ => c.checkpoint().await?,
            };
            let entry = c.get_entry(index).await?;
            let proof = c.inclusion_proof(index, cp.size).await?;
            let file = ProofFile {
                format: coopledger_ledger::bundle::PROOF_FORMAT.into(),
                index,
                entry: entry.entry,
                tree_size: cp.size,
                inclusion_proof: proof.hashes,
                checkpoint: cp.note,
            };
            // Check before writing: never hand out a proof that does not verify.
            let vkey = NoteVerifier::parse(&c.verifier_key().await?)?;
            file.verify(&vkey)
                .map_err(|e| anyhow!("node served a bad proof: {e}"))?;
            std::fs::write(&out, serde_json::to_string_pretty(&file)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            outln!(
                "proof of entry {index} at tree size {} written to {}",
                cp.size,
                out.display()
            );
        }
        Cmd::VerifyBundle {
            file,
            vkey,
            witnesses,
            min_witnesses,
        } => {
            if let Some(code) = check_witnesses_of_file(&file, &witnesses, min_witnesses)? {
                return Ok(code);
            }
            return consent::verify_bundle(&file, &vkey);
        }
        Cmd::Verify {
            file,
            vkey,
            witnesses,
            min_witnesses,
        } => {
            let vkey = NoteVerifier::parse(&vkey).map_err(|e| anyhow!("--vkey: {e}"))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let parsed: ProofFile = match serde_json::from_str(&text) {
                Ok(p) => p,
                Err(e) => {
                    outln!(
                        "INVALID: {} is not a coopledger proof file: {e}",
                        file.display()
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            let policy = witness_policy(&witnesses, min_witnesses)?;
            let cosigners = match cosigners_of(&policy, &parsed.checkpoint) {
                Ok(c) => c,
                Err(e) => {
                    outln!("INVALID: checkpoint witnesses: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            match parsed.verify(&vkey) {
                Ok(v) => {
                    if !cosigners.is_empty() {
                        outln!(
                            "cosigned by {}",
                            cosigners
                                .iter()
                                .map(|c| format!("{} at {}", c.witness, c.timestamp))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    let b = v.entry.body();
                    outln!(
                        "VALID: entry {} ({} v{}, signer {}, seq {}) is in {} at tree size {}, root {}",
                        v.index,
                        b.kind,
                        b.version,
                        b64_encode(b.signer),
                        b.seq,
                        v.checkpoint.checkpoint.origin,
                        v.checkpoint.checkpoint.size,
                        v.checkpoint.checkpoint.root
                    );
                }
                Err(e) => {
                    outln!("INVALID: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
