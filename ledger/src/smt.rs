//! The state commitment (DESIGN §4): a compact sparse Merkle tree over every state key, its
//! batch update, and proofs that a key holds a value *or is absent*.
//!
//! The tree (specified byte by byte in `docs/format.md`, "State tree"):
//! - a key's **path** is `SHA-256(key)`, read most-significant bit first (0 = left);
//! - a subtree holding no key hashes to [`EMPTY`] (32 zero bytes);
//! - a subtree holding exactly one key is that key's **leaf**, placed as high as it can go:
//!   `SHA-256(0x02 ‖ path ‖ SHA-256(value))`;
//! - any other subtree is a **node** `SHA-256(0x03 ‖ left ‖ right)`.
//!
//! The shape is a function of the key set alone, so the root is the same on every machine and
//! after every replay, whatever order the keys were written in. The tags 0x02/0x03 differ from
//! RFC 9162's 0x00/0x01, so no state-tree hash can pass for a log-tree hash. A tree of `n` keys
//! is about `log2(n)` deep: an update or a proof reads two nodes per level, not 256.

use crate::hash::{sha256, Hash};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// The hash of an empty subtree.
pub const EMPTY: Hash = Hash([0u8; 32]);

/// Largest depth a leaf can have: two distinct 256-bit paths part at bit 255 at the latest.
pub const MAX_DEPTH: u16 = 256;

/// Where a key sits in the tree.
pub fn key_path(key: &[u8]) -> Hash {
    sha256(key)
}

/// `SHA-256(0x02 ‖ path ‖ value_hash)`.
pub fn leaf_hash(path: &Hash, value_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x02]);
    h.update(path.0);
    h.update(value_hash.0);
    Hash(h.finalize().into())
}

/// `SHA-256(0x03 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x03]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Bit `i` of `path` (most significant first); `false` beyond 255.
pub fn bit(path: &Hash, i: u16) -> bool {
    let byte = path.0.get(usize::from(i / 8)).copied().unwrap_or(0);
    (byte >> (7 - (i % 8))) & 1 == 1
}

/// A subtree's position: its depth and the first `depth` bits of every path below it (the
/// remaining bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Distance from the root (0 = root).
    pub depth: u16,
    /// The common prefix, zero-padded to 256 bits.
    pub prefix: [u8; 32],
}

impl Position {
    /// The root.
    pub const ROOT: Position = Position {
        depth: 0,
        prefix: [0u8; 32],
    };

    /// The left (`false`) or right (`true`) child.
    pub fn child(&self, right: bool) -> Position {
        let mut prefix = self.prefix;
        if right {
            if let Some(b) = prefix.get_mut(usize::from(self.depth / 8)) {
                *b |= 0x80 >> (self.depth % 8);
            }
        }
        Position {
            depth: self.depth + 1,
            prefix,
        }
    }

    /// Storage key: depth (2 bytes, big-endian) then the 32-byte prefix.
    pub fn to_key(&self) -> [u8; 34] {
        let mut k = [0u8; 34];
        let (d, p) = k.split_at_mut(2);
        d.copy_from_slice(&self.depth.to_be_bytes());
        p.copy_from_slice(&self.prefix);
        k
    }
}

/// A stored subtree of at least one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtNode {
    /// Two or more keys below; the subtree's hash.
    Node(Hash),
    /// Exactly one key: its path and the hash of its value.
    Leaf {
        /// `SHA-256(key)`.
        path: Hash,
        /// `SHA-256(value)`.
        value_hash: Hash,
    },
}

impl SmtNode {
    /// The subtree's hash.
    pub fn hash(&self) -> Hash {
        match self {
            SmtNode::Node(h) => *h,
            SmtNode::Leaf { path, value_hash } => leaf_hash(path, value_hash),
        }
    }

    /// Storage value: `0x01 ‖ hash` for a node, `0x02 ‖ path ‖ value_hash` for a leaf.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            SmtNode::Node(h) => [&[0x01u8][..], &h.0].concat(),
            SmtNode::Leaf { path, value_hash } => [&[0x02u8][..], &path.0, &value_hash.0].concat(),
        }
    }

    /// Parses [`SmtNode::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<SmtNode> {
        match bytes.split_first() {
            Some((0x01, h)) => Hash::from_slice(h).map(SmtNode::Node),
            Some((0x02, rest)) if rest.len() == 64 => {
                let (p, v) = rest.split_at(32);
                Some(SmtNode::Leaf {
                    path: Hash::from_slice(p)?,
                    value_hash: Hash::from_slice(v)?,
                })
            }
            _ => None,
        }
    }
}

fn hash_of(node: &Option<SmtNode>) -> Hash {
    node.as_ref().map_or(EMPTY, SmtNode::hash)
}

/// Where the committed tree's nodes are read from.
pub trait SmtSource {
    /// Storage error type.
    type Error: From<SmtCorrupt>;
    /// The node at `pos`, if the subtree there holds any key.
    fn smt_node(&self, pos: &Position) -> Result<Option<SmtNode>, Self::Error>;
}

/// The stored tree is not a valid tree (a node below the deepest possible level).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state tree is corrupt at depth {0}")]
pub struct SmtCorrupt(pub u16);

/// Node writes of an update: `None` deletes the node at that position.
pub type SmtWrites = BTreeMap<Position, Option<SmtNode>>;

/// Applies `changes` (`path → Some(value_hash)` sets, `None` removes) to the committed tree in
/// `src`. Returns the new root and the node writes that turn the stored tree into the new one.
/// Contract: `src` holds a tree this function produced (or nothing); the result is the tree of
/// the new key set, independent of the order of past updates.
pub fn update<S: SmtSource>(
    src: &S,
    changes: &BTreeMap<Hash, Option<Hash>>,
) -> Result<(Hash, SmtWrites), S::Error> {
    let changes: Vec<(Hash, Option<Hash>)> = changes.iter().map(|(k, v)| (*k, *v)).collect();
    let mut writes = SmtWrites::new();
    let current = src.smt_node(&Position::ROOT)?;
    let root = update_at(src, Position::ROOT, current, &changes, &mut writes)?;
    Ok((hash_of(&root), writes))
}

/// The root of the committed tree.
pub fn root<S: SmtSource>(src: &S) -> Result<Hash, S::Error> {
    Ok(hash_of(&src.smt_node(&Position::ROOT)?))
}

/// `changes` are sorted by path and all lie below `pos`.
fn update_at<S: SmtSource>(
    src: &S,
    pos: Position,
    current: Option<SmtNode>,
    changes: &[(Hash, Option<Hash>)],
    writes: &mut SmtWrites,
) -> Result<Option<SmtNode>, S::Error> {
    if changes.is_empty() {
        return Ok(current);
    }
    let new = match current {
        Some(SmtNode::Node(_)) => {
            if pos.depth >= MAX_DEPTH {
                return Err(SmtCorrupt(pos.depth).into());
            }
            let split = changes.partition_point(|(p, _)| !bit(p, pos.depth));
            let (l, r) = changes.split_at(split);
            let (lpos, rpos) = (pos.child(false), pos.child(true));
            let lcur = src.smt_node(&lpos)?;
            let rcur = src.smt_node(&rpos)?;
            let lnew = update_at(src, lpos, lcur, l, writes)?;
            let rnew = update_at(src, rpos, rcur, r, writes)?;
            join(lpos, lnew, rpos, rnew, writes)
        }
        None | Some(SmtNode::Leaf { .. }) => {
            // The subtree holds at most one key now: rebuild it from the keys it will hold.
            let mut keys: Vec<(Hash, Hash)> = changes
                .iter()
                .filter_map(|(p, v)| v.map(|v| (*p, v)))
                .collect();
            if let Some(SmtNode::Leaf { path, value_hash }) = current {
                if !changes.iter().any(|(p, _)| *p == path) {
                    let at = keys.partition_point(|(p, _)| *p < path);
                    keys.insert(at, (path, value_hash));
                }
            }
            build(pos, &keys, writes)?
        }
    };
    writes.insert(pos, new);
    Ok(new)
}

/// The node at a position whose children became `l` and `r`: empty, a leaf lifted from below
/// (its old position is deleted), or a node.
fn join(
    lpos: Position,
    l: Option<SmtNode>,
    rpos: Position,
    r: Option<SmtNode>,
    writes: &mut SmtWrites,
) -> Option<SmtNode> {
    match (l, r) {
        (None, None) => None,
        (Some(leaf @ SmtNode::Leaf { .. }), None) => {
            writes.insert(lpos, None);
            Some(leaf)
        }
        (None, Some(leaf @ SmtNode::Leaf { .. })) => {
            writes.insert(rpos, None);
            Some(leaf)
        }
        (l, r) => Some(SmtNode::Node(node_hash(&hash_of(&l), &hash_of(&r)))),
    }
}

/// The subtree at `pos` holding exactly `keys` (sorted, distinct, all below `pos`), written to
/// positions that hold nothing yet.
fn build<E: From<SmtCorrupt>>(
    pos: Position,
    keys: &[(Hash, Hash)],
    writes: &mut SmtWrites,
) -> Result<Option<SmtNode>, E> {
    match keys {
        [] => Ok(None),
        [(path, value_hash)] => Ok(Some(SmtNode::Leaf {
            path: *path,
            value_hash: *value_hash,
        })),
        _ => {
            if pos.depth >= MAX_DEPTH {
                return Err(SmtCorrupt(pos.depth).into());
            }
            let split = keys.partition_point(|(p, _)| !bit(p, pos.depth));
            let (l, r) = keys.split_at(split);
            let (lpos, rpos) = (pos.child(false), pos.child(true));
            let lnew = build(lpos, l, writes)?;
            let rnew = build(rpos, r, writes)?;
            if let Some(n) = lnew {
                writes.insert(lpos, Some(n));
            }
            if let Some(n) = rnew {
                writes.insert(rpos, Some(n));
            }
            Ok(Some(SmtNode::Node(node_hash(
                &hash_of(&lnew),
                &hash_of(&rnew),
            ))))
        }
    }
}

/// What the walk down a key's path ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// An empty subtree: no key with this path prefix exists.
    Empty,
    /// The one key of the subtree there (the asked key itself, or another one).
    Leaf {
        /// That key's path.
        path: Hash,
        /// Hash of its value.
        value_hash: Hash,
    },
}

/// Proof of a key's value or absence: the siblings from the root down, then where the walk ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    /// Sibling hashes, root level first; its length is the depth of `terminal`.
    pub siblings: Vec<Hash>,
    /// The subtree the key's path leads to.
    pub terminal: Terminal,
}

/// The proof for `key` in the committed tree.
pub fn prove<S: SmtSource>(src: &S, key: &[u8]) -> Result<StateProof, S::Error> {
    let path = key_path(key);
    let mut pos = Position::ROOT;
    let mut node = src.smt_node(&pos)?;
    let mut siblings = Vec::new();
    loop {
        match node {
            None => {
                return Ok(StateProof {
                    siblings,
                    terminal: Terminal::Empty,
                })
            }
            Some(SmtNode::Leaf { path, value_hash }) => {
                return Ok(StateProof {
                    siblings,
                    terminal: Terminal::Leaf { path, value_hash },
                })
            }
            Some(SmtNode::Node(_)) => {
                if pos.depth >= MAX_DEPTH {
                    return Err(SmtCorrupt(pos.depth).into());
                }
                let right = bit(&path, pos.depth);
                let sibling = src.smt_node(&pos.child(!right))?;
                siblings.push(hash_of(&sibling));
                pos = pos.child(right);
                node = src.smt_node(&pos)?;
            }
        }
    }
}

/// Why a state proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// More siblings than the tree can be deep.
    #[error("proof has {0} siblings; a state tree is at most 256 deep")]
    TooDeep(usize),
    /// A leaf or empty subtree whose sibling is empty would sit one level higher.
    #[error("proof is not in canonical form: the last sibling is empty")]
    NotCanonical,
    /// The proof ends on a different key, or on nothing, where the value was claimed.
    #[error("proof shows the key {found}, not the claimed value")]
    WrongTerminal {
        /// What the proof shows.
        found: &'static str,
    },
    /// The proof ends on a key that cannot be on this key's path.
    #[error("proof ends on a key whose path does not share the first {0} bits")]
    OffPath(usize),
    /// The recomputed root is not the committed root.
    #[error("computed root {computed} does not match the committed state root {expected}")]
    RootMismatch {
        /// Root from the proof.
        computed: Hash,
        /// Root committed in the log.
        expected: Hash,
    },
}

/// Checks that, in the tree with root `root`, `key` holds `value` (`Some`) or is absent
/// (`None`). Only canonical proofs (as [`prove`] makes them) are accepted.
pub fn verify(
    root: &Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), StateProofError> {
    let path = key_path(key);
    let depth = proof.siblings.len();
    if depth > usize::from(MAX_DEPTH) {
        return Err(StateProofError::TooDeep(depth));
    }
    if proof.siblings.last().is_some_and(|s| *s == EMPTY) {
        return Err(StateProofError::NotCanonical);
    }
    let start = match (value, proof.terminal) {
        (
            Some(v),
            Terminal::Leaf {
                path: p,
                value_hash,
            },
        ) if p == path => {
            if value_hash != sha256(v) {
                return Err(StateProofError::WrongTerminal {
                    found: "with another value",
                });
            }
            leaf_hash(&p, &value_hash)
        }
        (Some(_), Terminal::Leaf { .. }) | (Some(_), Terminal::Empty) => {
            return Err(StateProofError::WrongTerminal { found: "absent" })
        }
        (None, Terminal::Leaf { path: p, .. }) if p == path => {
            return Err(StateProofError::WrongTerminal { found: "present" })
        }
        (
            None,
            Terminal::Leaf {
                path: p,
                value_hash,
            },
        ) => {
            // Another key: it must share this key's path down to where the walk stopped.
            if (0..depth as u16).any(|i| bit(&p, i) != bit(&path, i)) {
                return Err(StateProofError::OffPath(depth));
            }
            leaf_hash(&p, &value_hash)
        }
        (None, Terminal::Empty) => EMPTY,
    };
    let mut h = start;
    for (i, sibling) in proof.siblings.iter().enumerate().rev() {
        h = if bit(&path, i as u16) {
            node_hash(sibling, &h)
        } else {
            node_hash(&h, sibling)
        };
    }
    if h != *root {
        return Err(StateProofError::RootMismatch {
            computed: h,
            expected: *root,
        });
    }
    Ok(())
}

/// A tree held in memory (offline replay, tests).
#[derive(Debug, Default, Clone)]
pub struct MemorySmt {
    nodes: BTreeMap<Position, SmtNode>,
}

impl MemorySmt {
    /// An empty tree.
    pub fn new() -> MemorySmt {
        MemorySmt::default()
    }

    /// Applies `changes` (see [`update`]) and returns the new root.
    pub fn apply(&mut self, changes: &BTreeMap<Hash, Option<Hash>>) -> Result<Hash, SmtCorrupt> {
        let (root, writes) = update(&*self, changes)?;
        for (pos, node) in writes {
            match node {
                Some(n) => self.nodes.insert(pos, n),
                None => self.nodes.remove(&pos),
            };
        }
        Ok(root)
    }

    /// Number of stored nodes (leaves and nodes).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl SmtSource for MemorySmt {
    type Error = SmtCorrupt;
    fn smt_node(&self, pos: &Position) -> Result<Option<SmtNode>, SmtCorrupt> {
        Ok(self.nodes.get(pos).copied())
    }
}

/// The single writer's memory of the tree's upper levels (depth ≤ `max_depth`, at most
/// `2^(max_depth+1)` positions), absent nodes included, so an update reads storage only below
/// them. Coherent because only the writer changes the tree: it applies each update's writes once
/// they are committed ([`SmtCache::committed`]).
#[derive(Debug)]
pub struct SmtCache {
    nodes: RefCell<HashMap<Position, Option<SmtNode>>>,
    max_depth: u16,
}

impl SmtCache {
    /// An empty cache of the levels down to `max_depth`.
    pub fn new(max_depth: u16) -> SmtCache {
        SmtCache {
            nodes: RefCell::new(HashMap::new()),
            max_depth,
        }
    }

    /// `source` read through this cache.
    pub fn over<'a, S: SmtSource>(&'a self, source: &'a S) -> CachedSmt<'a, S> {
        CachedSmt {
            cache: self,
            source,
        }
    }

    /// Records an update's writes once they are durable.
    pub fn committed(&self, writes: &SmtWrites) {
        let mut nodes = self.nodes.borrow_mut();
        for (pos, node) in writes {
            if pos.depth <= self.max_depth {
                nodes.insert(*pos, *node);
            }
        }
    }

    /// Forgets everything (after a failed commit, the cache may be ahead of storage).
    pub fn clear(&self) {
        self.nodes.borrow_mut().clear();
    }
}

/// A [`SmtSource`] read through a [`SmtCache`].
#[derive(Debug)]
pub struct CachedSmt<'a, S> {
    cache: &'a SmtCache,
    source: &'a S,
}

impl<S: SmtSource> SmtSource for CachedSmt<'_, S> {
    type Error = S::Error;
    fn smt_node(&self, pos: &Position) -> Result<Option<SmtNode>, S::Error> {
        if pos.depth > self.cache.max_depth {
            return self.source.smt_node(pos);
        }
        if let Some(hit) = self.cache.nodes.borrow().get(pos) {
            return Ok(*hit);
        }
        let node = self.source.smt_node(pos)?;
        self.cache.nodes.borrow_mut().insert(*pos, node);
        Ok(node)
    }
}

/// The changes to the state tree implied by state writes (`key → Some(value)` or `None`).
pub fn changes_of<'a>(
    writes: impl IntoIterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
) -> BTreeMap<Hash, Option<Hash>> {
    writes
        .into_iter()
        .map(|(k, v)| (key_path(k), v.as_ref().map(|v| sha256(v))))
        .collect()
}

#[cfg(test)]
#[path = "smt_tests.rs"]
mod tests;
