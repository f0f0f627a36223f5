//! The node's data folder: its layout, creating a co-op in it (node key, ledger, genesis), the
//! demo co-op `coop serve` makes in a new folder, and opening the ledger for serving.
//!
//! Layout: `node.key` (the node's signing key, 0600), `ledger/` (RocksDB), `node.addr` (the
//! address the running node bound, rewritten at each start), and for a demo co-op `demo-keys/`
//! with the founders' key files. A replica of a cluster also has `cluster.json` (its id and
//! addresses, `cluster::membership::ClusterFile`) and `raft-snapshots/` (its current snapshot). A ledger being created lives in `ledger.creating/` until its
//! genesis entry is durable and checkpointed, then is renamed into place: a crash during
//! creation never leaves a ledger without genesis.

use crate::keyfile::{self, KeyFileError};
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::{CoopRules, Founder, Genesis, Role};
use coopledger_ledger::log::OpenError;
use coopledger_ledger::store::Store;
use coopledger_ledger::{Body, Log, LogConfig, Receipt, Rejection, SubmitError};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

/// Origin of the demo co-op `coop serve` creates in a new data folder.
pub const DEMO_ORIGIN: &str = "demo.coopledger.example/ledger";

/// Why a data folder could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder already holds a ledger.
    #[error("{0} already holds a ledger")]
    Exists(PathBuf),
    /// The file system refused.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file is wrong.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The ledger could not be created or opened.
    #[error("the ledger in {path}: {source}")]
    Ledger {
        /// The ledger folder.
        path: PathBuf,
        /// The cause.
        source: OpenError,
    },
    /// The genesis entry could not be made or was refused.
    #[error("genesis refused: {0}")]
    Genesis(String),
}

impl From<Rejection> for FolderError {
    fn from(r: Rejection) -> FolderError {
        FolderError::Genesis(r.to_string())
    }
}

impl From<SubmitError> for FolderError {
    fn from(e: SubmitError) -> FolderError {
        FolderError::Genesis(e.to_string())
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FolderError {
    let path = path.to_owned();
    move |source| FolderError::Io { what, path, source }
}

/// The ledger folder inside a data folder.
pub fn ledger_dir(data: &Path) -> PathBuf {
    data.join("ledger")
}

/// The node key file inside a data folder.
pub fn node_key_path(data: &Path) -> PathBuf {
    data.join("node.key")
}

/// True when `data` holds a ledger.
pub fn exists(data: &Path) -> bool {
    Store::exists(&ledger_dir(data))
}

/// What creating a co-op produced.
#[derive(Debug, Clone)]
pub struct Created {
    /// The genesis entry's receipt.
    pub genesis: Receipt,
    /// The log's verifier key.
    pub vkey: String,
}

/// Creates the data folder, node key (kept if one is there), ledger and genesis entry.
pub async fn create(
    data: &Path,
    origin: &str,
    genesis_of: impl FnOnce(&SigningKey) -> Genesis,
) -> Result<Created, FolderError> {
    if exists(data) {
        return Err(FolderError::Exists(data.to_owned()));
    }
    std::fs::create_dir_all(data).map_err(io("cannot create", data))?;
    restrict(data)?;
    let key_path = node_key_path(data);
    let node_key = if key_path.exists() {
        keyfile::read(&key_path)?
    } else {
        keyfile::create(&key_path)?
    };
    let genesis = genesis_of(&node_key);
    let building = data.join("ledger.creating");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(io("cannot remove", &building))?;
    }
    let log = Log::create(
        &building,
        origin,
        node_key.clone(),
        CoopRules,
        LogConfig::default(),
    )
    .map_err(|source| FolderError::Ledger {
        path: building.clone(),
        source,
    })?;
    let env = Body {
        coop: origin.to_owned(),
        kind: "coop.genesis".into(),
        // v2: members' consent timelines as hash chains (`docs/consent-bundle.md`).
        version: 2,
        signer: node_key.verifying_key().to_bytes(),
        seq: 1,
        ts: coopledger_ledger::log::now_ms(),
        payload: genesis.to_payload(),
    }
    .sign(&node_key)?;
    let receipt = log.submit(env).await?;
    let vkey = log.verifier_key();
    drop(log);
    let ledger = ledger_dir(data);
    std::fs::rename(&building, &ledger).map_err(io("cannot move into place", &ledger))?;
    std::fs::File::open(data)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", data))?;
    restrict(data)?;
    Ok(Created {
        genesis: receipt,
        vkey,
    })
}

/// A demo co-op: three founders (board, treasurer, member) whose key files are left in
/// `demo-keys/` for the tour. Returns the creation and the key folder.
pub async fn create_demo(data: &Path) -> Result<(Created, PathBuf), FolderError> {
    let dir = data.join("demo-keys");
    std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
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
    let created = create(data, DEMO_ORIGIN, |node| Genesis {
        name: "Demo Drivers' Data Co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders,
        bylaws: Bylaws::single_class(),
    })
    .await?;
    Ok((created, dir))
}

/// Makes the data folder and its ledger folder private to the node's user (0700), and every
/// file directly in them 0600. Files RocksDB makes later keep its default mode but sit in a
/// folder no one else can enter.
pub fn restrict(data: &Path) -> Result<(), FolderError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for dir in [data.to_owned(), ledger_dir(data)] {
            if !dir.is_dir() {
                continue;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io("cannot restrict", &dir))?;
            for e in std::fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
                let e = e.map_err(io("cannot list", &dir))?;
                if e.file_type().map_err(io("cannot list", &dir))?.is_file() {
                    std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600))
                        .map_err(io("cannot restrict", &e.path()))?;
                }
            }
        }
    }
    Ok(())
}

/// Writes a fresh operator token to `admin.token` in `data` (0600) and returns it.
pub fn write_admin_token(data: &Path) -> Result<String, FolderError> {
    use rand::RngCore;
    let mut t = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut t);
    let token = coopledger_ledger::codec::b64_encode(t);
    let path = data.join("admin.token");
    let tmp = data.join("admin.token.new");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&tmp)
        .and_then(|mut f| f.write_all(token.as_bytes()).and_then(|_| f.sync_all()))
        .map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("cannot write", &path))?;
    Ok(token)
}

/// Makes `data` the folder of a new replica of an existing co-op (`docs/replication.md` §6):
/// the co-op's node key (copied from another replica: every replica holds the log key) and an
/// empty ledger with the co-op's origin. The ledger fills from the cluster, by snapshot first.
pub fn create_replica(data: &Path, origin: &str, node_key: &SigningKey) -> Result<(), FolderError> {
    if exists(data) {
        return Err(FolderError::Exists(data.to_owned()));
    }
    std::fs::create_dir_all(data).map_err(io("cannot create", data))?;
    restrict(data)?;
    let key_path = node_key_path(data);
    if key_path.exists() {
        if keyfile::read(&key_path)?.verifying_key() != node_key.verifying_key() {
            return Err(FolderError::Genesis(format!(
                "{} holds another key than the co-op's",
                key_path.display()
            )));
        }
    } else {
        keyfile::write(&key_path, node_key)?;
    }
    let dir = ledger_dir(data);
    let log = Log::create(
        &dir,
        origin,
        node_key.clone(),
        CoopRules,
        LogConfig::default(),
    )
    .map_err(|source| FolderError::Ledger { path: dir, source })?;
    drop(log);
    Ok(())
}

/// Opens the ledger of `data` with its node key.
pub fn open(data: &Path, config: LogConfig) -> Result<(Log<CoopRules>, SigningKey), FolderError> {
    let node_key = keyfile::read(&node_key_path(data))?;
    let dir = ledger_dir(data);
    let log = Log::open(&dir, node_key.clone(), CoopRules, config)
        .map_err(|source| FolderError::Ledger { path: dir, source })?;
    Ok((log, node_key))
}

/// What a backup holds, written beside it as `backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupInfo {
    /// The ledger's origin.
    pub origin: String,
    /// Its verifier key.
    pub vkey: String,
    /// Size of the newest checkpoint the backup is certain to hold.
    pub size: u64,
    /// That checkpoint's root (base64).
    pub root: String,
    /// When it was taken (ms since the epoch).
    pub created_ms: u64,
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The folder problem.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// The database copy failed.
    #[error("copying the database: {0}")]
    Store(#[from] coopledger_ledger::store::StoreError),
    /// The destination exists.
    #[error("{0} already exists; a backup or restore never overwrites")]
    Exists(PathBuf),
    /// `backup.json` is missing or wrong.
    #[error("{path} is not a coopledger backup: {reason}")]
    NotABackup {
        /// The backup folder.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The restored log does not hold what the backup says, or does not audit.
    #[error("the restored ledger does not check out: {0}")]
    Check(String),
}

/// Backs up the running (or stopped) `log` of the data folder `data` into `dest`: a consistent
/// copy of the ledger (`Log::backup`), the node key (0600) and `backup.json`. The vault key is
/// not in it (it never is in the data folder): back it up separately.
pub fn backup(log: &Log<CoopRules>, data: &Path, dest: &Path) -> Result<BackupInfo, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    // A backup that fails half-way is removed: no folder that looks like a backup and is not.
    write_backup(log, data, dest).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(dest);
    })
}

fn write_backup(log: &Log<CoopRules>, data: &Path, dest: &Path) -> Result<BackupInfo, BackupError> {
    std::fs::create_dir_all(dest).map_err(io("cannot create", dest))?;
    let covered = log.backup(&ledger_dir(dest))?;
    let key = std::fs::read(node_key_path(data)).map_err(io("cannot read", data))?;
    let key_path = node_key_path(dest);
    std::fs::write(&key_path, key).map_err(io("cannot write", &key_path))?;
    let info = BackupInfo {
        origin: log.origin().to_owned(),
        vkey: log.verifier_key(),
        size: covered.checkpoint.size,
        root: covered.checkpoint.root.to_base64(),
        created_ms: coopledger_ledger::log::now_ms(),
    };
    let manifest = dest.join("backup.json");
    let text = serde_json::to_string_pretty(&info).map_err(|e| BackupError::NotABackup {
        path: dest.to_owned(),
        reason: e.to_string(),
    })?;
    std::fs::write(&manifest, text + "\n").map_err(io("cannot write", &manifest))?;
    restrict(dest)?;
    std::fs::File::open(dest)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dest))?;
    Ok(info)
}

/// Restores the backup `from` into the new data folder `data`: copies it, opens the ledger
/// (which checks it holds the newest checkpoint it signed), checks it holds the backup's
/// checkpoint, and replays every entry with the co-op's rules (every state root). Returns the
/// backup's description and the restored size.
pub fn restore(from: &Path, data: &Path) -> Result<(BackupInfo, u64), BackupError> {
    let not = |reason: String| BackupError::NotABackup {
        path: from.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(from.join("backup.json"))
        .map_err(|e| not(format!("backup.json: {e}")))?;
    let info: BackupInfo =
        serde_json::from_str(&text).map_err(|e| not(format!("backup.json: {e}")))?;
    if data.exists() {
        return Err(BackupError::Exists(data.to_owned()));
    }
    // A restore that fails its checks leaves no data folder a node could start on.
    let restored = restore_checked(from, data, info).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(data);
    })?;
    Ok(restored)
}

fn restore_checked(
    from: &Path,
    data: &Path,
    info: BackupInfo,
) -> Result<(BackupInfo, u64), BackupError> {
    copy_tree(from, data)?;
    std::fs::remove_file(data.join("backup.json")).map_err(io("cannot remove", data))?;
    restrict(data)?;
    let (log, node_key) = open(data, LogConfig::default())?;
    let check = |m: String| BackupError::Check(m);
    if log.verifier_key() != info.vkey {
        return Err(check(format!(
            "its key is {}, the backup says {}",
            log.verifier_key(),
            info.vkey
        )));
    }
    let size = log.checkpoint().checkpoint.size;
    if size < info.size {
        return Err(check(format!(
            "it holds {size} entries, the backup says {}",
            info.size
        )));
    }
    let root = log
        .root(info.size)
        .map_err(|e| check(e.to_string()))?
        .to_base64();
    if root != info.root {
        return Err(check(format!("its root at size {} differs", info.size)));
    }
    let rules = CoopRules;
    let mut audit =
        coopledger_ledger::audit::Audit::new(&rules, node_key.verifying_key().to_bytes());
    for i in 0..size {
        let bytes = log.entry(i).map_err(|e| check(e.to_string()))?;
        audit.push(&bytes).map_err(|e| check(e.to_string()))?;
    }
    audit.finish().map_err(|e| check(e.to_string()))?;
    Ok((info, size))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), FolderError> {
    std::fs::create_dir_all(to).map_err(io("cannot create", to))?;
    for e in std::fs::read_dir(from).map_err(io("cannot list", from))? {
        let e = e.map_err(io("cannot list", from))?;
        let target = to.join(e.file_name());
        if e.file_type().map_err(io("cannot list", from))?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).map_err(io("cannot copy", &target))?;
        }
    }
    Ok(())
}
