//! The lookup structure: published prefixes flattened into disjoint, sorted intervals, each
//! pointing at the most specific prefix that covers it. A lookup is one binary search; no
//! lock, no allocation.

/// Disjoint intervals `[start, end]`, sorted, each with the index of its entry.
#[derive(Debug, Clone, Default)]
pub struct Segments<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    entries: Vec<u32>,
}

impl<T: Copy + Ord + TryFrom<u128>> Segments<T> {
    /// Flattens nested-or-disjoint prefixes `(first, last, entry)` (CIDRs are one or the
    /// other, never partly overlapping; equal prefixes must have been merged before).
    pub fn flatten(mut items: Vec<(u128, u128, u32)>) -> Segments<T> {
        // Outer before inner: by start, then the longer interval first.
        items.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out: Vec<(u128, u128, u32)> = Vec::with_capacity(items.len() * 2);
        let mut stack: Vec<(u128, u32)> = Vec::new();
        // The first position not yet emitted; `None` past the end of the address space.
        let mut pos: Option<u128> = Some(0);
        let close = |out: &mut Vec<(u128, u128, u32)>, pos: &mut Option<u128>, end, entry| {
            if let Some(p) = *pos {
                if p <= end {
                    out.push((p, end, entry));
                }
            }
            *pos = end.checked_add(1);
        };
        for (start, end, entry) in items {
            while let Some(&(top_end, top_entry)) = stack.last() {
                if top_end >= start {
                    break;
                }
                stack.pop();
                close(&mut out, &mut pos, top_end, top_entry);
            }
            if let (Some(&(_, top_entry)), Some(p)) = (stack.last(), pos) {
                if p < start {
                    out.push((p, start - 1, top_entry));
                }
            }
            stack.push((end, entry));
            pos = Some(start);
        }
        while let Some((top_end, top_entry)) = stack.pop() {
            close(&mut out, &mut pos, top_end, top_entry);
        }
        let mut s = Segments {
            starts: Vec::with_capacity(out.len()),
            ends: Vec::with_capacity(out.len()),
            entries: Vec::with_capacity(out.len()),
        };
        for (start, end, entry) in out {
            // Both bounds fit: they come from addresses of this family.
            if let (Ok(a), Ok(b)) = (T::try_from(start), T::try_from(end)) {
                s.starts.push(a);
                s.ends.push(b);
                s.entries.push(entry);
            }
        }
        s
    }

    /// The entry of the most specific prefix holding `x`.
    #[inline]
    pub fn lookup(&self, x: T) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= x);
        let j = i.checked_sub(1)?;
        (x <= *self.ends.get(j)?).then(|| self.entries.get(j).copied())?
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Bytes held (for the memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<T>() * 2 + self.entries.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::Segments;

    #[test]
    fn most_specific_wins_and_gaps_stay_gaps() {
        // 0: [0,255] (a /24), 1: [16,31] inside it, 2: [20,23] inside that, 3: [300,301].
        let s: Segments<u32> =
            Segments::flatten(vec![(16, 31, 1), (0, 255, 0), (300, 301, 3), (20, 23, 2)]);
        let at = |x| s.lookup(x);
        assert_eq!(at(0), Some(0));
        assert_eq!(at(15), Some(0));
        assert_eq!(at(16), Some(1));
        assert_eq!(at(19), Some(1));
        assert_eq!(at(20), Some(2));
        assert_eq!(at(23), Some(2));
        assert_eq!(at(24), Some(1));
        assert_eq!(at(31), Some(1));
        assert_eq!(at(32), Some(0));
        assert_eq!(at(255), Some(0));
        assert_eq!(at(256), None);
        assert_eq!(at(300), Some(3));
        assert_eq!(at(302), None);
    }

    #[test]
    fn the_end_of_the_address_space() {
        let max = u128::from(u32::MAX);
        let s: Segments<u32> = Segments::flatten(vec![(0, max, 0), (max - 1, max, 1)]);
        assert_eq!(s.lookup(u32::MAX), Some(1));
        assert_eq!(s.lookup(0), Some(0));
        let s: Segments<u128> = Segments::flatten(vec![(0, u128::MAX, 7)]);
        assert_eq!(s.lookup(u128::MAX), Some(7));
    }
}
