//! Buffers lent from a small per-thread stock instead of held by every connection: the
//! direct path's upstream and output buffers (per exchange) and a short tunnel's copy
//! buffer (per chunk). An idle keep-alive connection keeps only its small read buffer, an
//! idle tunnel none, and a busy one takes a warm buffer without a fresh allocation.

use std::cell::RefCell;

/// Capacity of a lent buffer.
pub(crate) const LENT: usize = 16 * 1024;

/// Spare buffers kept per thread; more are freed.
const KEEP: usize = 128;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of at least [`LENT`] bytes.
pub(crate) fn lend() -> Vec<u8> {
    SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(LENT))
}

/// Two empty buffers, in one visit to the stock (an exchange's pair).
pub(crate) fn lend_two() -> (Vec<u8>, Vec<u8>) {
    let fresh = || Vec::with_capacity(LENT);
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let a = spare.pop().unwrap_or_else(fresh);
        (a, spare.pop().unwrap_or_else(fresh))
    })
}

/// Takes a buffer back (one that grew past four times [`LENT`] is freed instead).
pub(crate) fn give_back(buf: Vec<u8>) {
    SPARE.with(|spare| keep(&mut spare.borrow_mut(), buf));
}

/// Takes two buffers back, in one visit to the stock.
pub(crate) fn give_back_two(a: Vec<u8>, b: Vec<u8>) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        keep(&mut spare, a);
        keep(&mut spare, b);
    });
}

fn keep(spare: &mut Vec<Vec<u8>>, mut buf: Vec<u8>) {
    if buf.capacity() < LENT || buf.capacity() > 4 * LENT || spare.len() >= KEEP {
        return;
    }
    buf.clear();
    spare.push(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_lent_again_empty_and_a_grown_one_is_not_kept() {
        let mut buf = lend();
        assert!(buf.capacity() >= LENT);
        buf.extend_from_slice(b"left over");
        let ptr = buf.as_ptr();
        give_back(buf);
        let again = lend();
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        give_back(vec![0u8; 8 * LENT]);
        give_back(Vec::new());
        let fresh = lend();
        assert!(fresh.capacity() >= LENT && fresh.capacity() <= 4 * LENT);
    }

    #[test]
    fn two_at_once_are_two_distinct_buffers_given_back_together() {
        let (a, b) = lend_two();
        assert!(a.capacity() >= LENT && b.capacity() >= LENT);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        assert_ne!(pa, pb);
        give_back_two(a, b);
        let (c, d) = lend_two();
        assert!(c.is_empty() && d.is_empty());
        let mut again = [c.as_ptr(), d.as_ptr()];
        again.sort();
        let mut before = [pa, pb];
        before.sort();
        assert_eq!(again, before, "the same two buffers come back");
    }
}
