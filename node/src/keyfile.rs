//! Key files: a member's or the node's Ed25519 key as JSON, created readable by its owner only.
//!
//! Format: `{"type": "ed25519", "seed": "<base64 32 bytes>", "public": "<base64 32 bytes>"}`;
//! the public key is checked against the seed on every read.

use coopledger_ledger::codec::{b64_decode, b64_encode};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    seed: String,
    public: String,
}

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists; keys are never overwritten.
    #[error("{0} already exists; not overwriting a key")]
    Exists(PathBuf),
    /// The file system refused.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a key file, or a field is wrong.
    #[error("{path} is not a coop key file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// Writes a new random key to `path` (mode 0600); refuses to overwrite.
pub fn create(path: &Path) -> Result<SigningKey, KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists(path.to_owned()));
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write(path, &key)?;
    Ok(key)
}

/// Writes `key` to a new file at `path` with owner-only permissions, fsync'd.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let f = KeyFile {
        kind: "ed25519".into(),
        seed: b64_encode(key.to_bytes()),
        public: b64_encode(key.verifying_key().to_bytes()),
    };
    let text = serde_json::to_string_pretty(&f).map_err(|e| io(std::io::Error::other(e)))? + "\n";
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut file = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(path.to_owned()),
        _ => io(e),
    })?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let f: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if f.kind != "ed25519" {
        return Err(invalid(format!(
            "field `type`: {:?} is not supported",
            f.kind
        )));
    }
    let seed: [u8; 32] = b64_decode(&f.seed)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| invalid("field `seed` is not base64 of 32 bytes".into()))?;
    let key = SigningKey::from_bytes(&seed);
    if b64_encode(key.verifying_key().to_bytes()) != f.public {
        return Err(invalid("field `public` does not match the seed".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("k.key");
        let k = create(&p)?;
        assert_eq!(read(&p)?.to_bytes(), k.to_bytes());
        assert!(matches!(create(&p), Err(KeyFileError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&p)?;
        let extra = text.replacen('{', "{\"label\":\"laptop\",", 1);
        let q = dir.path().join("extra.key");
        std::fs::write(&q, extra)?;
        assert!(
            matches!(read(&q), Err(KeyFileError::Invalid { reason, .. }) if reason.contains("label"))
        );
        let other = SigningKey::from_bytes(&[7; 32]);
        let wrong = text.replace(
            &b64_encode(k.verifying_key().to_bytes()),
            &b64_encode(other.verifying_key().to_bytes()),
        );
        std::fs::write(&q, wrong)?;
        assert!(
            matches!(read(&q), Err(KeyFileError::Invalid { reason, .. }) if reason.contains("public"))
        );
        Ok(())
    }
}
