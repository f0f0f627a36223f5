//! The peer a co-op would build instead: PostgreSQL (started here on a fresh cluster, fsync and
//! synchronous commit on, as installed) behind an app that parses and verifies each entry's
//! Ed25519 signature exactly as the ledger does, then stores it.
//!
//! Three tables, three ways an app would write:
//! - `audit`: one INSERT transaction per entry; `UNIQUE (signer, seq)` refuses replays.
//! - `audit_chained`: the same plus a prev-hash chain column, so a rewrite shows — every entry
//!   reads and updates the chain head under a row lock, one transaction per entry.
//! - `audit` again, written in bulk: one multi-row INSERT transaction per request.

use crate::drive::Client;
use crate::host;
use crate::workload::Workload;
use anyhow::{anyhow, bail, Context, Result};
use coopledger_ledger::entry::admit;
use coopledger_ledger::{Envelope, Verified};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{NoTls, Statement};

const SCHEMA: &str = "
CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    signer bytea NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    entry bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (signer, seq)
);
CREATE TABLE audit_chained (
    id bigserial PRIMARY KEY,
    signer bytea NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    entry bytea NOT NULL,
    prev bytea NOT NULL,
    hash bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (signer, seq)
);
CREATE TABLE chain_head (id int PRIMARY KEY, head bytea NOT NULL);
INSERT INTO chain_head VALUES (1, '\\x0000000000000000000000000000000000000000000000000000000000000000');
";

/// The directory of PostgreSQL's server programs: `PG_BIN`, the newest
/// `/usr/lib/postgresql/*/bin` (Debian), or wherever `initdb` is on the PATH.
fn pg_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        .and_then(|p| p.parent().map(Path::to_path_buf));
    found.ok_or_else(|| {
        anyhow!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin): run scripts/setup.sh")
    })
}

/// PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` account.
fn run_as() -> Result<Option<(u32, u32)>> {
    if host::own_uid()? != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .map(Some)
        .ok_or_else(|| {
            anyhow!("running as root and there is no `postgres` account to run PostgreSQL as")
        })
}

/// A PostgreSQL server on a fresh cluster in a folder of its own; stopped when dropped.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    port: u16,
    pub version: String,
}

impl Postgres {
    /// `initdb` in `dir/cluster`, then `postgres` on a free loopback port accepting
    /// `connections` clients. Only `listen_addresses`, `port`, the socket folder and
    /// `max_connections` are set; durability is as installed (fsync and synchronous commit on).
    pub fn start(dir: &Path, connections: usize) -> Result<Postgres> {
        let bin = pg_bin()?;
        let user = run_as()?;
        let cluster = dir.join("cluster");
        let sockets = dir.join("sockets");
        for d in [&cluster, &sockets] {
            std::fs::create_dir_all(d)?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
            }
        }
        if user.is_some() {
            // The postgres account must be able to reach its folders.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        let as_user = |cmd: &mut Command| {
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
        };
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&cluster)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        as_user(&mut initdb);
        let out = initdb.output().context("cannot run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let version = Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let port = host::free_port()?;
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&cluster)
            .arg("-k")
            .arg(&sockets)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", &format!("max_connections={}", connections + 10)])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut server);
        let child = server.spawn().context("cannot start postgres")?;
        Ok(Postgres {
            child,
            port,
            version,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection, waiting up to 30 s for the server to accept it.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let config = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio_postgres::connect(&config, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return Ok(client);
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(anyhow!("PostgreSQL did not accept a connection: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Creates the tables.
    pub async fn create_schema(&self) -> Result<()> {
        self.connect()
            .await?
            .batch_execute(SCHEMA)
            .await
            .context("cannot create the schema")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGKILL on the postmaster leaves its backends to exit on their own; a fast shutdown
        // (SIGINT) stops them all.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the app writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One INSERT transaction per entry.
    Single,
    /// One transaction per entry that also extends a prev-hash chain.
    Chained,
    /// One multi-row INSERT transaction per request.
    Bulk,
}

/// The app's connection and its prepared statements.
#[derive(Debug)]
pub struct PgClient {
    client: tokio_postgres::Client,
    workload: Arc<Workload>,
    mode: Mode,
    insert: Statement,
    head: Statement,
    advance: Statement,
}

impl PgClient {
    pub async fn connect(pg: &Postgres, workload: Arc<Workload>, mode: Mode) -> Result<PgClient> {
        let client = pg.connect().await?;
        let insert = match mode {
            Mode::Single => "INSERT INTO audit (signer, seq, kind, entry) VALUES ($1, $2, $3, $4)",
            Mode::Chained => {
                "INSERT INTO audit_chained (signer, seq, kind, entry, prev, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)"
            }
            Mode::Bulk => {
                "INSERT INTO audit (signer, seq, kind, entry) \
                 SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::text[], $4::bytea[])"
            }
        };
        let insert = client.prepare(insert).await?;
        let head = client
            .prepare("SELECT head FROM chain_head WHERE id = 1 FOR UPDATE")
            .await?;
        let advance = client
            .prepare("UPDATE chain_head SET head = $1 WHERE id = 1")
            .await?;
        Ok(PgClient {
            client,
            workload,
            mode,
            insert,
            head,
            advance,
        })
    }

    /// What the app does before writing: parse the JSON and check the signature, as the node
    /// does at admission.
    fn verify(&self, i: usize) -> Result<Verified<Envelope>> {
        let e = self
            .workload
            .entries
            .get(i)
            .ok_or_else(|| anyhow!("no entry {i}"))?;
        let value: serde_json::Value = serde_json::from_str(&e.json)?;
        let env = Envelope::from_value(&value).map_err(|r| anyhow!("entry {i}: {r}"))?;
        admit(vec![env])
            .pop()
            .ok_or_else(|| anyhow!("no verdict"))?
            .map_err(|r| anyhow!("entry {i}: {r}"))
    }
}

impl Client for PgClient {
    async fn send(&mut self, entries: &[usize]) -> Result<()> {
        let verified = entries
            .iter()
            .map(|&i| self.verify(i))
            .collect::<Result<Vec<_>>>()?;
        match self.mode {
            Mode::Single => {
                for v in &verified {
                    let b = v.body();
                    let seq = i64::try_from(b.seq)?;
                    self.client
                        .execute(
                            &self.insert,
                            &[&b.signer.as_slice(), &seq, &b.kind, &v.bytes()],
                        )
                        .await?;
                }
            }
            Mode::Chained => {
                for v in &verified {
                    let b = v.body();
                    let seq = i64::try_from(b.seq)?;
                    let tx = self.client.transaction().await?;
                    let prev: Vec<u8> = tx.query_one(&self.head, &[]).await?.try_get(0)?;
                    let hash = Sha256::new()
                        .chain_update(&prev)
                        .chain_update(v.bytes())
                        .finalize()
                        .to_vec();
                    tx.execute(
                        &self.insert,
                        &[
                            &b.signer.as_slice(),
                            &seq,
                            &b.kind,
                            &v.bytes(),
                            &prev,
                            &hash,
                        ],
                    )
                    .await?;
                    tx.execute(&self.advance, &[&hash]).await?;
                    tx.commit().await?;
                }
            }
            Mode::Bulk => {
                let signers: Vec<&[u8]> = verified.iter().map(|v| &v.body().signer[..]).collect();
                let seqs = verified
                    .iter()
                    .map(|v| i64::try_from(v.body().seq))
                    .collect::<Result<Vec<_>, _>>()?;
                let kinds: Vec<&str> = verified.iter().map(|v| v.body().kind.as_str()).collect();
                let bytes: Vec<&[u8]> = verified.iter().map(|v| v.bytes()).collect();
                self.client
                    .execute(&self.insert, &[&signers, &seqs, &kinds, &bytes])
                    .await?;
            }
        }
        Ok(())
    }
}

/// Rows stored in `table` (the run checks every entry arrived).
pub async fn count(pg: &Postgres, table: &str) -> Result<u64> {
    let n: i64 = pg
        .connect()
        .await?
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .try_get(0)?;
    Ok(u64::try_from(n)?)
}

/// Empties the tables between runs.
pub async fn reset(pg: &Postgres) -> Result<()> {
    pg.connect()
        .await?
        .batch_execute("TRUNCATE audit, audit_chained RESTART IDENTITY")
        .await
        .context("cannot empty the tables")
}
