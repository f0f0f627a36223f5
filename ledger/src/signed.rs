//! The node's memory of what it has signed, kept outside the database: an append-only file,
//! `COOP-SIGNED`, in the ledger folder, with every checkpoint note the node released, each
//! appended and fsync'd before the checkpoint is given to anyone — on a single node. A replica
//! appends its notes behind the releases, each only after an fsync of the database covering its
//! batch (`crate::sequencer`, `docs/replication.md` §2): its checkpoints are re-derived from
//! the committed Raft log, which a quorum holds on disk.
//!
//! Why outside RocksDB: a fault that damages the database's write-ahead log can make RocksDB
//! recover silently to an earlier point (its default recovery stops at the first bad record).
//! A node that then served the shorter log would sign a second checkpoint at a size it had
//! already signed, with another root: a fork, signed by its own key. With this file the node
//! knows the newest checkpoint it ever signed and refuses to start on a database that does not
//! contain it (`Log::open`), and refuses to sign anything that does not extend it.
//!
//! Format: records of `u32 LE length ‖ note bytes ‖ first 8 bytes of SHA-256(note)`. A record
//! cut short at the end of the file is a write a crash interrupted before its fsync returned —
//! never released — and is ignored; any other damage is refused. When the file passes 1 MiB it
//! is rewritten with its last record only (written beside, fsync'd, renamed over, folder
//! fsync'd).

use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name inside the ledger folder.
pub const FILE_NAME: &str = "COOP-SIGNED";
const ROTATE_BYTES: u64 = 1 << 20;
const CHECK_BYTES: usize = 8;

/// Why the record of signed checkpoints could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SignedFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record in the middle of the file is damaged.
    #[error("{path}: record at byte {offset} is damaged ({reason})")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

fn check(note: &[u8]) -> [u8; CHECK_BYTES] {
    let h = Sha256::digest(note);
    let mut c = [0u8; CHECK_BYTES];
    c.copy_from_slice(h.get(..CHECK_BYTES).unwrap_or(&[0; CHECK_BYTES]));
    c
}

fn record(note: &str) -> Vec<u8> {
    let b = note.as_bytes();
    let mut r = Vec::with_capacity(4 + b.len() + CHECK_BYTES);
    r.extend_from_slice(&(b.len() as u32).to_le_bytes());
    r.extend_from_slice(b);
    r.extend_from_slice(&check(b));
    r
}

/// The append-only record of released checkpoints of one ledger.
#[derive(Debug)]
pub struct SignedFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl SignedFile {
    /// The file's path for the ledger in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// Reads the newest released checkpoint note recorded in `dir`, if the file exists.
    pub fn read_latest(dir: &Path) -> Result<Option<String>, SignedFileError> {
        let path = SignedFile::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SignedFileError::Io { path, source }),
        };
        let mut at = 0usize;
        let mut latest = None;
        let damaged = |offset: usize, reason| SignedFileError::Damaged {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        while at < bytes.len() {
            let Some(len) = bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| u32::from_le_bytes(b) as usize)
            else {
                break; // a torn length at the very end: never released
            };
            let end = at + 4 + len + CHECK_BYTES;
            if end > bytes.len() {
                break; // a torn record at the very end: never released
            }
            let note = bytes.get(at + 4..at + 4 + len).unwrap_or_default();
            let sum = bytes.get(at + 4 + len..end).unwrap_or_default();
            if sum != check(note) {
                return Err(damaged(at, "checksum mismatch"));
            }
            let text = std::str::from_utf8(note).map_err(|_| damaged(at, "not UTF-8"))?;
            latest = Some(text.to_owned());
            at = end;
        }
        Ok(latest)
    }

    /// Opens (or creates) the file in `dir` for appending.
    pub fn open(dir: &Path) -> Result<SignedFile, SignedFileError> {
        let path = SignedFile::path(dir);
        let io = |source| SignedFileError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(SignedFile { path, file, len })
    }

    /// Appends `note` and fsyncs; only then may the checkpoint be released.
    pub fn append(&mut self, note: &str) -> Result<(), SignedFileError> {
        if self.len >= ROTATE_BYTES {
            return self.rewrite(note);
        }
        let io = |source| SignedFileError::Io {
            path: self.path.clone(),
            source,
        };
        let r = record(note);
        self.file.write_all(&r).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += r.len() as u64;
        Ok(())
    }

    /// Appends `notes` (in signing order) with one fsync; only then may any of them be released.
    /// After a rotation the file holds the last of them only, as [`SignedFile::append`] would.
    pub fn append_all(&mut self, notes: &[&str]) -> Result<(), SignedFileError> {
        let Some(last) = notes.last() else {
            return Ok(());
        };
        if self.len >= ROTATE_BYTES {
            return self.rewrite(last);
        }
        let io = |source| SignedFileError::Io {
            path: self.path.clone(),
            source,
        };
        let records: Vec<u8> = notes.iter().flat_map(|n| record(n)).collect();
        self.file.write_all(&records).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += records.len() as u64;
        Ok(())
    }

    /// Replaces the file with one holding `note` only.
    fn rewrite(&mut self, note: &str) -> Result<(), SignedFileError> {
        let fresh = self.path.with_extension("new");
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| SignedFileError::Io { path: p, source }
        };
        let r = record(note);
        {
            let mut f = File::create(&fresh).map_err(io(&fresh))?;
            f.write_all(&r).map_err(io(&fresh))?;
            f.sync_all().map_err(io(&fresh))?;
        }
        std::fs::rename(&fresh, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        self.len = r.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_record_survives_a_torn_tail_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SignedFile::read_latest(dir.path()).unwrap(), None);
        let mut f = SignedFile::open(dir.path()).unwrap();
        f.append("one\n").unwrap();
        f.append("two\n").unwrap();
        assert_eq!(
            SignedFile::read_latest(dir.path()).unwrap().as_deref(),
            Some("two\n")
        );
        let path = SignedFile::path(dir.path());
        let whole = std::fs::read(&path).unwrap();
        // A record cut anywhere inside by a crash: the one before it is the latest.
        for cut in [
            whole.len() - 1,
            whole.len() - 8,
            whole.len() - 12,
            whole.len() - 14,
        ] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert_eq!(
                SignedFile::read_latest(dir.path()).unwrap().as_deref(),
                Some("one\n"),
                "cut at {cut}"
            );
        }
        // A flipped byte in a complete record is refused, not skipped.
        let mut bad = whole.clone();
        bad[5] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            SignedFile::read_latest(dir.path()),
            Err(SignedFileError::Damaged { offset: 0, .. })
        ));
    }

    #[test]
    fn a_long_file_is_rewritten_with_its_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = SignedFile::open(dir.path()).unwrap();
        let note = "x".repeat(4096);
        for i in 0..300 {
            f.append(&format!("{note}{i}\n")).unwrap();
        }
        let len = std::fs::metadata(SignedFile::path(dir.path()))
            .unwrap()
            .len();
        assert!(len < ROTATE_BYTES + 8192, "{len}");
        assert_eq!(
            SignedFile::read_latest(dir.path()).unwrap(),
            Some(format!("{note}299\n"))
        );
    }

    #[test]
    fn notes_appended_together_read_back_as_if_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = SignedFile::open(dir.path()).unwrap();
        f.append_all(&[]).unwrap();
        assert_eq!(SignedFile::read_latest(dir.path()).unwrap(), None);
        f.append_all(&["one\n", "two\n", "three\n"]).unwrap();
        let together = std::fs::read(SignedFile::path(dir.path())).unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut g = SignedFile::open(other.path()).unwrap();
        for n in ["one\n", "two\n", "three\n"] {
            g.append(n).unwrap();
        }
        assert_eq!(
            together,
            std::fs::read(SignedFile::path(other.path())).unwrap()
        );
        assert_eq!(
            SignedFile::read_latest(dir.path()).unwrap().as_deref(),
            Some("three\n")
        );
        // Past the rotation size, the file keeps the last note of the group.
        let big = "y".repeat(4096);
        let notes: Vec<String> = (0..300).map(|i| format!("{big}{i}\n")).collect();
        for chunk in notes.chunks(7) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            f.append_all(&refs).unwrap();
        }
        assert_eq!(
            SignedFile::read_latest(dir.path()).unwrap(),
            Some(format!("{big}299\n"))
        );
    }
}
