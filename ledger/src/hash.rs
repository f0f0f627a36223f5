//! RFC 9162 §2.1.1 hashing: the leaf and interior-node hash functions and the `Hash` type.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 output. Every tree hash, entry id and root in the ledger is one of these.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// Parses exactly 32 bytes; anything else is not a hash.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Standard base64 with padding, the encoding used on the wire and in checkpoints.
    pub fn to_base64(&self) -> String {
        crate::codec::b64_encode(self.0)
    }

    /// Decodes standard base64 that must hold exactly 32 bytes.
    pub fn from_base64(s: &str) -> Option<Hash> {
        crate::codec::b64_decode(s)
            .ok()
            .and_then(|v| Hash::from_slice(&v))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", hex::encode(self.0))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(bytes: &[u8]) -> Hash {
    Hash(Sha256::digest(bytes).into())
}

/// The root of the empty tree: `MTH({}) = SHA-256()` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// `MTH({d(0)}) = SHA-256(0x00 || d(0))` (RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        // Pinned: transparency-dev/merkle testdata uses this value as the empty root.
        assert_eq!(
            empty_root().to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let l = leaf_hash(b"");
        // transparency-dev/merkle: leaf hash of the empty entry.
        assert_eq!(
            l.to_base64(),
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
        );
        assert_ne!(node_hash(&l, &l), sha256(&[l.0, l.0].concat()));
    }

    #[test]
    fn base64_requires_exactly_32_bytes() {
        assert!(Hash::from_base64("ZG9uJ3QgY2FyZSAx").is_none());
        assert!(Hash::from_base64("").is_none());
        let h = sha256(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()), Some(h));
    }
}
