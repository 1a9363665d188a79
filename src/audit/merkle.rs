//! The Merkle tree over the records (RFC 9162 §2.1): leaf `SHA-256(0x00 ‖ line)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`; the tree head of any size, inclusion and consistency proofs
//! and their verification. [`Tree`] keeps every perfect subtree (about two hashes a leaf), so
//! that an append is one or two hashes on average and a proof a few dozen lookups;
//! [`CompactRange`] computes a root from a stream of leaves in `O(log n)` memory.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The whole tree, every perfect subtree kept: `levels[l][i]` covers leaves
/// `[i·2ˡ, (i+1)·2ˡ)`.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

/// A proof was asked for sizes the tree cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of size {size}")]
    NoSuchLeaf { index: u64, size: u64 },
    #[error("tree size {size} is beyond the log's {have} records")]
    TooLarge { size: u64, have: u64 },
    #[error("a consistency proof needs 0 < first ({first}) <= second ({second})")]
    BadRange { first: u64, second: u64 },
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// A tree of these leaves.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Tree {
        let mut t = Tree::new();
        for l in leaves {
            t.push(l);
        }
        t
    }

    /// How many leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// Appends a leaf hash and every perfect subtree it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut node = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(node);
            if row.len() % 2 == 1 {
                return;
            }
            node = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    /// Keeps only the first `size` leaves (a log cut back to its last intact record).
    pub fn truncate(&mut self, size: u64) {
        for (l, row) in self.levels.iter_mut().enumerate() {
            row.truncate((size >> l) as usize);
        }
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    /// The hash of leaves `[start, start+size)`; `start` is a multiple of the largest power
    /// of two not above `size`, as every subtree of RFC 9162's recursion is.
    fn subtree(&self, start: u64, size: u64) -> Hash {
        if size.is_power_of_two() {
            let l = size.trailing_zeros() as usize;
            return self.levels[l][(start >> l) as usize];
        }
        let k = split(size);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, size - k))
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::TooLarge {
                size,
                have: self.size(),
            });
        }
        Ok(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves
    /// (RFC 9162 §2.1.3.1), leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.size() {
            return Err(ProofError::TooLarge {
                size,
                have: self.size(),
            });
        }
        if index >= size {
            return Err(ProofError::NoSuchLeaf { index, size });
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Ok(path)
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The consistency proof from the tree of `first` leaves to the tree of `second`
    /// (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        if second > self.size() {
            return Err(ProofError::TooLarge {
                size: second,
                have: self.size(),
            });
        }
        if first == 0 || first > second {
            return Err(ProofError::BadRange { first, second });
        }
        let mut out = Vec::new();
        self.subproof(first, 0, second, true, &mut out);
        Ok(out)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Checks a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *first_root && sr == *second_root && snode == 0
}

/// The right edge of a tree being built leaf by leaf: its perfect subtrees, largest first.
#[derive(Debug, Clone, Default)]
pub struct CompactRange {
    size: u64,
    stack: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            let left = self.stack.pop().unwrap_or_default();
            node = node_hash(&left, &node);
            n >>= 1;
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// The root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |r, left| node_hash(left, &r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH straight from RFC 9162's definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn roots_match_the_definition_and_the_compact_range() {
        let ls = leaves(70);
        let t = Tree::from_leaves(ls.iter().copied());
        let mut c = CompactRange::new();
        assert_eq!(c.root(), empty_root());
        for n in 0..=70 {
            assert_eq!(t.root(n as u64).expect("root"), mth(&ls[..n]), "size {n}");
            if n > 0 {
                c.push(ls[n - 1]);
                assert_eq!(c.root(), mth(&ls[..n]), "compact {n}");
            }
        }
        assert!(t.root(71).is_err());
    }

    #[test]
    fn known_vectors() {
        // The empty tree is SHA-256 of nothing; RFC 6962's test leaf "" is 6e340b9c…
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let ls = leaves(33);
        let t = Tree::from_leaves(ls.iter().copied());
        for size in 1..=33u64 {
            let root = t.root(size).expect("root");
            for i in 0..size {
                let p = t.inclusion_proof(i, size).expect("proof");
                assert!(verify_inclusion(i, size, &ls[i as usize], &p, &root));
                let other = ls[((i + 1) % 33) as usize];
                assert!(!verify_inclusion(i, size, &other, &p, &root));
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = leaf_hash(first);
                    assert!(!verify_inclusion(i, size, &ls[i as usize], &bad, &root));
                }
            }
        }
        assert!(t.inclusion_proof(5, 5).is_err());
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_fork_does_not() {
        let ls = leaves(40);
        let t = Tree::from_leaves(ls.iter().copied());
        for second in 1..=40u64 {
            let r2 = t.root(second).expect("root");
            for first in 1..=second {
                let r1 = t.root(first).expect("root");
                let p = t.consistency_proof(first, second).expect("proof");
                assert!(
                    verify_consistency(first, second, &r1, &r2, &p),
                    "{first}→{second}"
                );
                if first < second {
                    let forged = leaf_hash(b"forged");
                    assert!(!verify_consistency(first, second, &forged, &r2, &p));
                    assert!(!verify_consistency(first, second, &r1, &forged, &p));
                }
            }
        }
        // A different history of the same first size does not extend.
        let mut other = ls.clone();
        other[3] = leaf_hash(b"rewritten");
        let o = Tree::from_leaves(other);
        let p = t.consistency_proof(10, 40).expect("proof");
        assert!(!verify_consistency(
            10,
            40,
            &o.root(10).expect("root"),
            &t.root(40).expect("root"),
            &p
        ));
    }

    #[test]
    fn truncate_then_grow_gives_the_same_tree() {
        let ls = leaves(50);
        let mut t = Tree::from_leaves(ls.iter().copied());
        t.truncate(21);
        assert_eq!(t.size(), 21);
        assert_eq!(t.root(21).expect("root"), mth(&ls[..21]));
        for l in &ls[21..] {
            t.push(*l);
        }
        assert_eq!(t.root(50).expect("root"), mth(&ls));
        t.truncate(0);
        assert_eq!(t.size(), 0);
    }
}
