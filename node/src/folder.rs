//! The node's data folder: its layout, creating a co-op in it (node key, ledger, genesis), the
//! demo co-op `coop serve` makes in a new folder, and opening the ledger for serving.
//!
//! Layout: `node.key` (the node's signing key, 0600), `ledger/` (RocksDB), `node.addr` (the
//! address the running node bound, rewritten at each start), and for a demo co-op `demo-keys/`
//! with the founders' key files. A ledger being created lives in `ledger.creating/` until its
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
        version: 1,
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

/// Opens the ledger of `data` with its node key.
pub fn open(data: &Path, config: LogConfig) -> Result<(Log<CoopRules>, SigningKey), FolderError> {
    let node_key = keyfile::read(&node_key_path(data))?;
    let dir = ledger_dir(data);
    let log = Log::open(&dir, node_key.clone(), CoopRules, config)
        .map_err(|source| FolderError::Ledger { path: dir, source })?;
    Ok((log, node_key))
}
