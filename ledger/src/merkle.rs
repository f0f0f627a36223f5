//! RFC 9162 tree shape: the stored nodes that make up any range of leaves, proof plans
//! (§2.1.3.1 inclusion, §2.1.4.1 consistency), proof construction from a node store, and the
//! append frontier that gives the new root without reading the tree.
//!
//! Only *perfect* subtrees are ever stored: node `(level, index)` is the root of leaves
//! `[index·2^level, (index+1)·2^level)` and exists once the tree holds all of them. Every hash a
//! proof needs is the hash of a span of leaves `[start, end)` that the RFC's recursion produces,
//! and such a span is the right-fold of at most 64 stored nodes (one per set bit of its length).
//! So a proof costs O(log n) node reads, fetched in one multi-get, and nothing is ever rebuilt.

use crate::hash::{empty_root, node_hash, Hash};

/// A perfect subtree: leaves `[index << level, (index + 1) << level)`; level 0 is a leaf hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of that level, from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` whose first leaf is `start` (which must be aligned to `2^level`).
    pub fn covering(start: u64, level: u8) -> NodeId {
        NodeId {
            level,
            index: start >> level,
        }
    }
}

/// A contiguous run of leaves `[start, end)` whose Merkle Tree Hash is one proof element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
}

impl Span {
    /// The perfect subtrees, left to right, whose right-fold is `MTH(D[start:end])`.
    ///
    /// Valid for the spans RFC 9162's recursion produces, whose `start` is a multiple of the
    /// smallest power of two ≥ the span's length; `Span { start: 0, end: n }` always qualifies.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut at = self.start;
        let len = self.end.saturating_sub(self.start);
        for level in (0..64u8).rev() {
            if len & (1u64 << level) != 0 {
                out.push(NodeId::covering(at, level));
                at += 1u64 << level;
            }
        }
        out
    }
}

/// Right-folds the hashes of a span's nodes into the span's MTH (RFC 9162 §2.1.1 recursion).
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut it = hashes.iter().rev();
    match it.next() {
        None => empty_root(),
        Some(last) => it.fold(*last, |acc, h| node_hash(h, &acc)),
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The spans whose hashes form `PATH(m, D[0:n])`, in proof order (RFC 9162 §2.1.3.1).
/// `m < n` is the caller's to check.
pub fn inclusion_plan(m: u64, n: u64) -> Vec<Span> {
    fn path(m: u64, start: u64, end: u64, out: &mut Vec<Span>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            path(m, start, start + k, out);
            out.push(Span {
                start: start + k,
                end,
            });
        } else {
            path(m - k, start + k, end, out);
            out.push(Span {
                start,
                end: start + k,
            });
        }
    }
    let mut out = Vec::new();
    path(m, 0, n, &mut out);
    out
}

/// The spans whose hashes form `PROOF(m, D[0:n])` (RFC 9162 §2.1.4.1); empty when `m == n`.
/// `0 < m <= n` is the caller's to check.
pub fn consistency_plan(m: u64, n: u64) -> Vec<Span> {
    fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Span>) {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(Span { start, end });
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            subproof(m, start, start + k, complete, out);
            out.push(Span {
                start: start + k,
                end,
            });
        } else {
            subproof(m - k, start + k, end, false, out);
            out.push(Span {
                start,
                end: start + k,
            });
        }
    }
    let mut out = Vec::new();
    if m < n {
        subproof(m, 0, n, true, &mut out);
    }
    out
}

/// Where tree nodes are read from. The contract: `nodes` returns one hash per id, in order, and
/// only ids of perfect subtrees inside the tree the caller asked about are ever requested.
pub trait NodeSource {
    /// Error from the underlying storage.
    type Error;
    /// Reads the given nodes; a missing node is an error (the store is corrupt or too small).
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// Hashes every span with one batched read.
pub fn span_hashes<S: NodeSource>(src: &S, spans: &[Span]) -> Result<Vec<Hash>, S::Error> {
    let per_span: Vec<Vec<NodeId>> = spans.iter().map(Span::nodes).collect();
    let ids: Vec<NodeId> = per_span.iter().flatten().copied().collect();
    let hashes = src.nodes(&ids)?;
    let mut out = Vec::with_capacity(spans.len());
    let mut at = 0usize;
    for ids in &per_span {
        let part = hashes.get(at..at + ids.len()).unwrap_or(&[]);
        out.push(fold(part));
        at += ids.len();
    }
    Ok(out)
}

/// The root of the first `size` leaves.
pub fn root<S: NodeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    Ok(span_hashes(
        src,
        &[Span {
            start: 0,
            end: size,
        }],
    )?
    .pop()
    .unwrap_or_else(empty_root))
}

/// The perfect subtrees on the right edge of a tree of `size` leaves: exactly the stored nodes
/// whose fold is the root, kept in memory by the sequencer so an append never reads the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Left to right, strictly decreasing levels (one per set bit of `size`).
    peaks: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Loads the frontier of a stored tree of `size` leaves (O(log n) reads).
    pub fn load<S: NodeSource>(src: &S, size: u64) -> Result<Frontier, S::Error> {
        let ids = Span {
            start: 0,
            end: size,
        }
        .nodes();
        let hashes = src.nodes(&ids)?;
        Ok(Frontier {
            size,
            peaks: ids.into_iter().zip(hashes).collect(),
        })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored nodes on the right edge, left to right.
    pub fn peaks(&self) -> &[(NodeId, Hash)] {
        &self.peaks
    }

    /// `MTH(D[0:size])`.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.peaks.iter().map(|(_, h)| *h).collect();
        fold(&hashes)
    }

    /// Appends one leaf hash and pushes every node that became complete (the leaf itself first,
    /// then each new parent) to `created`: exactly what must be stored for this leaf.
    pub fn push(&mut self, leaf: Hash, created: &mut Vec<(NodeId, Hash)>) {
        let mut node = (
            NodeId {
                level: 0,
                index: self.size,
            },
            leaf,
        );
        created.push(node);
        while let Some(&(left_id, left)) = self.peaks.last() {
            if left_id.level != node.0.level {
                break;
            }
            self.peaks.pop();
            let parent = (
                NodeId {
                    level: left_id.level + 1,
                    index: left_id.index >> 1,
                },
                node_hash(&left, &node.1),
            );
            created.push(parent);
            node = parent;
        }
        self.peaks.push(node);
        self.size += 1;
    }
}

/// Nodes held in memory in front of a slower source: asked ids it holds are answered from
/// memory, the rest with one read of `fallback`, in the order asked.
#[derive(Debug)]
pub struct CachedNodes<'a, S> {
    /// Nodes in memory.
    pub memory: &'a std::collections::HashMap<NodeId, Hash>,
    /// Where the others are read.
    pub fallback: &'a S,
}

impl<S: NodeSource> NodeSource for CachedNodes<'_, S> {
    type Error = S::Error;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, S::Error> {
        let missing: Vec<NodeId> = ids
            .iter()
            .filter(|id| !self.memory.contains_key(id))
            .copied()
            .collect();
        let mut fetched = if missing.is_empty() {
            Vec::new()
        } else {
            self.fallback.nodes(&missing)?
        }
        .into_iter();
        Ok(ids
            .iter()
            .filter_map(|id| self.memory.get(id).copied().or_else(|| fetched.next()))
            .collect())
    }
}

/// An in-memory node store: the reference implementation tests compare the RocksDB store with.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    frontier: Frontier,
    nodes: std::collections::HashMap<NodeId, Hash>,
}

/// A node the in-memory tree does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tree node {0:?} is not stored")]
pub struct MissingNode(pub NodeId);

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut created = Vec::new();
        self.frontier.push(leaf, &mut created);
        self.nodes.extend(created);
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Current root.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MissingNode> {
        ids.iter()
            .map(|id| self.nodes.get(id).copied().ok_or(MissingNode(*id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// MTH straight from RFC 9162 §2.1.1, recursive over the raw leaves: the oracle.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn frontier_root_matches_recursive_definition() {
        let mut t = MemoryTree::new();
        let mut leaves = Vec::new();
        assert_eq!(t.root(), empty_root());
        for i in 0u32..300 {
            let l = leaf_hash(&i.to_be_bytes());
            leaves.push(l);
            t.push(l);
            assert_eq!(t.root(), mth(&leaves), "size {}", i + 1);
            assert_eq!(root(&t, leaves.len() as u64), Ok(mth(&leaves)));
            for size in [1usize, leaves.len() / 2, leaves.len()] {
                if size > 0 {
                    assert_eq!(root(&t, size as u64), Ok(mth(&leaves[..size])));
                }
            }
        }
    }

    #[test]
    fn frontier_reloads_from_stored_nodes() {
        let mut t = MemoryTree::new();
        for i in 0u32..77 {
            t.push(leaf_hash(&i.to_be_bytes()));
            let loaded = Frontier::load(&t, t.size());
            assert_eq!(loaded.as_ref().map(Frontier::root), Ok(t.root()));
        }
    }

    #[test]
    fn cached_nodes_answer_like_the_store_whatever_memory_holds() {
        let mut t = MemoryTree::new();
        for i in 0u32..100 {
            t.push(leaf_hash(&i.to_be_bytes()));
        }
        let memory: std::collections::HashMap<NodeId, Hash> = t
            .nodes
            .iter()
            .filter(|(id, _)| id.index % 3 == 0)
            .map(|(id, h)| (*id, *h))
            .collect();
        let cached = CachedNodes {
            memory: &memory,
            fallback: &t,
        };
        for m in 0..100 {
            let plan = inclusion_plan(m, 100);
            assert_eq!(span_hashes(&cached, &plan), span_hashes(&t, &plan));
        }
    }

    #[test]
    fn plans_have_logarithmic_length() {
        assert!(inclusion_plan(0, 1).is_empty());
        assert_eq!(inclusion_plan(5, 8).len(), 3);
        assert_eq!(inclusion_plan(6, 7).len(), 2);
        assert!(consistency_plan(4, 4).is_empty());
        assert_eq!(consistency_plan(4, 8).len(), 1);
        assert_eq!(consistency_plan(3, 7).len(), 4);
    }
}
