//! C2SP signed notes (signed-note v1) and tlog checkpoints: signing with the node key, verifier
//! keys `<name>+<hex key id>+<base64(0x01 ‖ key)>`, parsing with the Go `sumdb/note` rules, and
//! checkpoint bodies (C2SP tlog-checkpoint).

use crate::codec::{b64_decode, b64_encode};
use crate::hash::Hash;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

/// Signature type byte for Ed25519 in signed notes.
pub const ALG_ED25519: u8 = 0x01;
/// At most this many signature lines are read (same limit as Go's `note.Open`).
pub const MAX_SIGNATURES: usize = 100;
const SIG_PREFIX: &str = "\u{2014} ";

/// What is wrong with a note, key or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key name is empty, has white space or a `+`.
    #[error("invalid key name {0:?}")]
    BadName(String),
    /// A verifier key string does not parse.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// The verifier key's id does not match its name and key.
    #[error("verifier key id does not match its name and key")]
    VerifierKeyIdMismatch,
    /// A signature by a known key is invalid.
    #[error("invalid signature by {0}")]
    BadSignature(String),
    /// No signature by any of the given keys.
    #[error("note has no signature by a known key")]
    NoKnownSignature,
    /// The checkpoint text is not a C2SP checkpoint.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(&'static str),
    /// Fewer witnesses cosigned than the policy requires.
    #[error("{have} of the required {need} witness cosignatures")]
    NotEnoughCosignatures {
        /// Valid cosignatures by the policy's witnesses.
        have: usize,
        /// Required.
        need: usize,
    },
    /// The checkpoint's origin line is not the signing key's name.
    #[error("checkpoint origin {origin:?} is not the key name {key_name:?}")]
    OriginMismatch {
        /// Origin in the checkpoint.
        origin: String,
        /// Name of the key that signed it.
        key_name: String,
    },
}

/// `isValidName` from Go's note package: non-empty, no Unicode white space, no `+`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// Key id: the first four bytes of `SHA-256(name ‖ 0x0A ‖ alg ‖ key)`, big-endian.
pub fn key_id(name: &str, alg_and_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_and_key);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A note signer: a key name and an Ed25519 signing key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer named `name` (for a log: its origin).
    pub fn new(name: &str, key: SigningKey) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadName(name.to_owned()));
        }
        let mut ak = vec![ALG_ED25519];
        ak.extend_from_slice(key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            id: key_id(name, &ak),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string, `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
    pub fn vkey(&self) -> String {
        let mut ak = vec![ALG_ED25519];
        ak.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, b64_encode(ak))
    }

    /// The verifier for this signer.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key().to_bytes(),
        }
    }

    /// Signs `text` (which must end in a newline, hold no blank line and no control characters
    /// other than newline) and returns the whole note: text, blank line, one signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes()).to_bytes();
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig);
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            b64_encode(blob)
        ))
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline"));
    }
    if text.contains("\n\n") {
        return Err(NoteError::Malformed("text must not contain a blank line"));
    }
    if text.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed("text holds a control character"));
    }
    Ok(())
}

/// Parses a verifier key `<name>+<8 hex digits>+<base64(alg ‖ 32-byte Ed25519 key)>` whose
/// signature type must be `alg`, checking the key id: `(name, id, key)`.
pub(crate) fn parse_vkey(vkey: &str, alg: u8) -> Result<(String, u32, [u8; 32]), NoteError> {
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(NoteError::BadVerifierKey("expected name+keyid+key"));
    };
    if !valid_name(name) {
        return Err(NoteError::BadName(name.to_owned()));
    }
    if id_hex.len() != 8 {
        return Err(NoteError::BadVerifierKey("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16)
        .map_err(|_| NoteError::BadVerifierKey("key id must be 8 hex digits"))?;
    let ak = b64_decode(key_b64).map_err(|_| NoteError::BadVerifierKey("key is not base64"))?;
    let Some((&got, key)) = ak.split_first() else {
        return Err(NoteError::BadVerifierKey("empty key"));
    };
    if got != alg {
        return Err(NoteError::BadVerifierKey("unknown signature algorithm"));
    }
    if key_id(name, &ak) != id {
        return Err(NoteError::VerifierKeyIdMismatch);
    }
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::BadVerifierKey("Ed25519 key must be 32 bytes"))?;
    Ok((name.to_owned(), id, key))
}

/// A verifier key: who may have signed a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: [u8; 32],
}

impl NoteVerifier {
    /// Parses `<name>+<8 hex digits>+<base64(0x01 ‖ 32-byte key)>`, checking the id.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let (name, id, key) = parse_vkey(vkey, ALG_ED25519)?;
        Ok(NoteVerifier { name, id, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.key
    }

    fn verifies(&self, text: &str, sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(sig) else {
            return false;
        };
        ed25519_dalek::VerifyingKey::from_bytes(&self.key)
            .map(|k| {
                k.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// Signature bytes (after the 4-byte key id).
    pub sig: Vec<u8>,
}

/// A note parsed into text and signature lines (syntax checked, no signature checked yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note with the rules of Go's `note.Open`: valid UTF-8 without control characters
    /// other than newline; text, a blank line, then one or more lines `— <name> <base64>` each
    /// ending in a newline; at most 100 of them.
    pub fn parse(note: &[u8]) -> Result<SignedNote, NoteError> {
        let note =
            std::str::from_utf8(note).map_err(|_| NoteError::Malformed("note is not UTF-8"))?;
        if note.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
            return Err(NoteError::Malformed("note holds a control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let text = note.get(..=split).unwrap_or_default();
        let sigs = note.get(split + 2..).unwrap_or_default();
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature block must end in a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs.trim_end_matches('\n').split('\n') {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "line in the signature block is not a signature",
            ))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("signature line has no signature"))?;
            if !valid_name(name) || b64.is_empty() {
                return Err(NoteError::Malformed("bad signature line"));
            }
            let blob =
                b64_decode(b64).map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("signature too short"));
            }
            let (id, sig) = blob.split_at(4);
            let id: [u8; 4] = id
                .try_into()
                .map_err(|_| NoteError::Malformed("signature too short"))?;
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes(id),
                sig: sig.to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(NoteError::Malformed("more than 100 signatures"));
            }
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Checks the note against known verifiers with `note.Open` semantics: every signature by a
    /// known (name, key id) must be valid; at least one must be present. Returns the names of the
    /// known keys that signed. Signatures by unknown keys are ignored.
    pub fn verify(&self, known: &[NoteVerifier]) -> Result<Vec<String>, NoteError> {
        let mut signed_by: Vec<String> = Vec::new();
        for s in &self.signatures {
            let Some(v) = known.iter().find(|v| v.name == s.name && v.id == s.key_id) else {
                continue;
            };
            if signed_by.contains(&v.name) {
                continue;
            }
            if !v.verifies(&self.text, &s.sig) {
                return Err(NoteError::BadSignature(s.name.clone()));
            }
            signed_by.push(v.name.clone());
        }
        if signed_by.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(signed_by)
    }
}

/// The body of a C2SP tlog checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (also the name of the key that signs it).
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// RFC 9162 root of the first `size` entries.
    pub root: Hash,
    /// Optional extension lines (none are written by this node).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// `<origin>\n<size>\n<base64 root>\n` followed by any extension lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses checkpoint text: origin, decimal size without leading zeros, base64 32-byte root,
    /// then non-empty extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::BadCheckpoint("text must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::BadCheckpoint("missing origin"))?;
        let size_s = lines
            .next()
            .ok_or(NoteError::BadCheckpoint("missing size"))?;
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(NoteError::BadCheckpoint("size must be a decimal number"));
        }
        let size = size_s
            .parse::<u64>()
            .map_err(|_| NoteError::BadCheckpoint("size out of range"))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or(NoteError::BadCheckpoint("root must be base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::BadCheckpoint("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// A checkpoint together with the signed note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The whole signed note, exactly as signed and stored.
    pub note: String,
}

impl SignedCheckpoint {
    /// Opens a checkpoint note with the log's verifier key: the signature must verify and the
    /// origin must be the key's name (so a checkpoint of another log never passes).
    pub fn open(note: &str, log_key: &NoteVerifier) -> Result<SignedCheckpoint, NoteError> {
        let parsed = SignedNote::parse(note.as_bytes())?;
        parsed.verify(std::slice::from_ref(log_key))?;
        let checkpoint = Checkpoint::parse(&parsed.text)?;
        if checkpoint.origin != log_key.name() {
            return Err(NoteError::OriginMismatch {
                origin: checkpoint.origin,
                key_name: log_key.name().to_owned(),
            });
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note: note.to_owned(),
        })
    }
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod note_tests;
