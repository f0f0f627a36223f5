//! Key files: a member's or node's Ed25519 key as JSON, readable only by its owner.

use anyhow::{bail, Context, Result};
use coopledger_ledger::codec::{b64_decode, b64_encode};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    seed: String,
    public: String,
}

/// Writes a new random key to `path` (mode 0600); refuses to overwrite.
pub fn create(path: &Path) -> Result<SigningKey> {
    if path.exists() {
        bail!("{} already exists; not overwriting a key", path.display());
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write(path, &key)?;
    Ok(key)
}

/// Writes `key` to `path` with owner-only permissions.
pub fn write(path: &Path, key: &SigningKey) -> Result<()> {
    let f = KeyFile {
        kind: "ed25519".into(),
        seed: b64_encode(key.to_bytes()),
        public: b64_encode(key.verifying_key().to_bytes()),
    };
    let text = serde_json::to_string_pretty(&f)? + "\n";
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut file = opts
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    let f: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a coop key file", path.display()))?;
    if f.kind != "ed25519" {
        bail!("{}: key type {:?} is not supported", path.display(), f.kind);
    }
    let seed: [u8; 32] = b64_decode(&f.seed)
        .ok()
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("{}: field `seed` is not base64 of 32 bytes", path.display()))?;
    let key = SigningKey::from_bytes(&seed);
    if b64_encode(key.verifying_key().to_bytes()) != f.public {
        bail!("{}: field `public` does not match the seed", path.display());
    }
    Ok(key)
}
