//! The pacer: releases request i at its due time, to the microsecond. tokio's timer ticks in
//! whole milliseconds (rounding up), and waking from any timer costs over 100 µs on this VM (a
//! timerfd was tried): so the pacer sleeps on tokio until `SPIN` before a due time, then spins,
//! yielding so the connections and the I/O driver run meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const SPIN: Duration = Duration::from_millis(2);

/// How many requests have been released so far, and one wake-up per connection.
pub struct Released {
    count: AtomicU64,
    wakes: Vec<Notify>,
}

impl Released {
    pub fn new(connections: usize) -> Arc<Self> {
        Arc::new(Released {
            count: AtomicU64::new(0),
            wakes: (0..connections).map(|_| Notify::new()).collect(),
        })
    }

    /// Waits until request `i`, which runs on connection `c`, has been released.
    pub async fn wait(&self, i: u64, c: usize) {
        // a permit left by an earlier request that went out late only loops once
        while self.count.load(Ordering::Acquire) <= i {
            self.wakes[c].notified().await;
        }
    }
}

/// Releases requests 0..total, each at `due(i)`, waking connection `i % connections`.
pub async fn pace(total: u64, due: impl Fn(u64) -> Instant, released: Arc<Released>) {
    let n = released.wakes.len() as u64;
    for i in 0..total {
        let due = due(i);
        if let Some(early) = due.checked_sub(SPIN) {
            if Instant::now() < early {
                tokio::time::sleep_until(early.into()).await;
            }
        }
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
        released.count.store(i + 1, Ordering::Release);
        released.wakes[(i % n) as usize].notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn releases_on_time_and_in_order() {
        let start = Instant::now() + Duration::from_millis(5);
        let released = Released::new(2);
        let due = move |i: u64| start + Duration::from_micros(300 * i);
        let pacer = tokio::spawn(pace(10, due, released.clone()));
        for i in 0..10u64 {
            released.wait(i, (i % 2) as usize).await;
            let late = Instant::now().duration_since(due(i));
            assert!(Instant::now() >= due(i), "request {i} released early");
            // tokio's timer alone would be up to a millisecond late
            assert!(
                late < Duration::from_micros(500),
                "request {i} released {late:?} late"
            );
        }
        pacer.await.unwrap();
        assert_eq!(released.count.load(Ordering::Relaxed), 10);
    }
}
