//! Pure proof verification — RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) — with no
//! I/O, used by the node's own tests, the CLI's offline `coop verify`, and anyone else.
//!
//! Decisions on the edge cases the RFC leaves to implementations (same as transparency-dev/merkle):
//! - a consistency proof *from* size 0 is rejected: it would prove nothing;
//! - equal sizes need an empty proof and equal roots;
//! - hashes are typed `[u8; 32]`, so a hash of any other length is rejected when decoded, before
//!   any proof is looked at.

use crate::hash::{node_hash, Hash};

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `index >= tree_size`.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof has more or fewer hashes than the tree shape allows.
    #[error("proof has the wrong number of hashes for this tree shape")]
    WrongLength,
    /// Recomputed root does not match.
    #[error("recomputed root does not match the expected root")]
    RootMismatch,
    /// `from > to` in a consistency proof.
    #[error("consistency proof asked from size {from} to smaller size {to}")]
    SizesReversed {
        /// Older size.
        from: u64,
        /// Newer size.
        to: u64,
    },
    /// Consistency from the empty tree proves nothing and is refused.
    #[error("consistency proof from the empty tree is meaningless")]
    FromEmpty,
}

/// RFC 9162 §2.1.3.2: verify that `leaf` is leaf `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    // Steps 2–3.
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        // 4a.
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        // 4b.
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // 4c.
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verify that the tree of `size1` leaves with `root1` is a prefix of the tree
/// of `size2` leaves with `root2`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesReversed {
            from: size1,
            to: size2,
        });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if size1 == 0 {
        return Err(ProofError::FromEmpty);
    }
    // Step 1.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::WrongLength);
    };
    // Step 2: if size1 is an exact power of 2, the path starts with root1 itself.
    let (mut fr, mut sr, rest) = if size1.is_power_of_two() {
        (*root1, *root1, proof)
    } else {
        (*first, *first, rest)
    };
    // Step 3.
    let mut fnode = size1 - 1;
    let mut snode = size2 - 1;
    // Step 4.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Steps 5–6.
    for c in rest {
        // 6a.
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        // 6b.
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // 6c.
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *root1 || sr != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::{consistency_plan, inclusion_plan, span_hashes, MemoryTree};

    fn tree(n: u32) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(leaf_hash(&i.to_le_bytes()));
        }
        t
    }

    #[test]
    fn every_inclusion_and_consistency_proof_of_small_trees_verifies() -> Result<(), String> {
        let t = tree(40);
        for n in 1..=40u64 {
            let root_n = crate::merkle::root(&t, n).map_err(|e| e.to_string())?;
            for m in 0..n {
                let leaf = leaf_hash(&(m as u32).to_le_bytes());
                let proof = span_hashes(&t, &inclusion_plan(m, n)).map_err(|e| e.to_string())?;
                verify_inclusion(&leaf, m, n, &proof, &root_n)
                    .map_err(|e| format!("inclusion {m}/{n}: {e}"))?;
                let size1 = m + 1;
                let root1 = crate::merkle::root(&t, size1).map_err(|e| e.to_string())?;
                let proof =
                    span_hashes(&t, &consistency_plan(size1, n)).map_err(|e| e.to_string())?;
                verify_consistency(size1, n, &proof, &root1, &root_n)
                    .map_err(|e| format!("consistency {size1}->{n}: {e}"))?;
            }
        }
        Ok(())
    }
}
