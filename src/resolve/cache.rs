//! The answer cache: positive and negative answers keyed by normalised name, with expiry.
//!
//! Sharded: 16 `RwLock<HashMap>`s chosen by a hash of the name, so a hit takes one read lock
//! that only requests for names of the same shard share, and readers never block each other.
//! When a shard is full, expired entries go first, then an arbitrary one (no LRU bookkeeping
//! on the hit path).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::dns::DnsFailure;

const SHARDS: usize = 16;

/// A cached answer: the addresses, or the negative answer.
pub(crate) type Answer = Result<Arc<[IpAddr]>, DnsFailure>;

struct Entry {
    answer: Answer,
    expires: Instant,
}

type Shard = RwLock<HashMap<Box<str>, Entry>>;

pub(crate) struct Cache {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

impl Cache {
    /// A cache of about `capacity` entries; 0 caches nothing.
    pub(crate) fn new(capacity: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, name: &str) -> &Shard {
        let i = self.hasher.hash_one(name) as usize % SHARDS;
        &self.shards[i]
    }

    /// The answer for `name` and its remaining lifetime, if it has not expired at `now`.
    pub(crate) fn get(&self, name: &str, now: Instant) -> Option<(Answer, Duration)> {
        let shard = self
            .shard(name)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(name)?;
        let left = entry.expires.checked_duration_since(now)?;
        (!left.is_zero()).then(|| (entry.answer.clone(), left))
    }

    pub(crate) fn insert(&self, name: &str, answer: Answer, ttl: Duration, now: Instant) {
        if self.per_shard == 0 || ttl.is_zero() {
            return;
        }
        let mut shard = self
            .shard(name)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(name) {
            shard.retain(|_, e| e.expires > now);
            if shard.len() >= self.per_shard {
                if let Some(victim) = shard.keys().next().cloned() {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(
            name.into(),
            Entry {
                answer,
                expires: now + ttl,
            },
        );
    }

    /// Entries held, expired or not (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(s: &[&str]) -> Answer {
        Ok(s.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn entries_expire() {
        let cache = Cache::new(100);
        let t0 = Instant::now();
        cache.insert(
            "a.example",
            addrs(&["192.0.2.1"]),
            Duration::from_secs(5),
            t0,
        );
        let (answer, left) = cache.get("a.example", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(answer, addrs(&["192.0.2.1"]));
        assert_eq!(left, Duration::from_secs(4));
        assert!(cache
            .get("a.example", t0 + Duration::from_secs(5))
            .is_none());
        assert!(cache.get("b.example", t0).is_none());
    }

    #[test]
    fn negative_answers_are_kept() {
        let cache = Cache::new(100);
        let t0 = Instant::now();
        cache.insert(
            "nx.example",
            Err(DnsFailure::NxDomain),
            Duration::from_secs(30),
            t0,
        );
        assert_eq!(
            cache.get("nx.example", t0).map(|(a, _)| a),
            Some(Err(DnsFailure::NxDomain))
        );
    }

    #[test]
    fn size_is_bounded_and_expired_entries_go_first() {
        let cache = Cache::new(32); // 2 a shard
        let t0 = Instant::now();
        for i in 0..1000 {
            let name = format!("n{i}.example");
            cache.insert(&name, addrs(&["192.0.2.1"]), Duration::from_secs(60), t0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        // The newest entry is always present.
        assert!(cache.get("n999.example", t0).is_some());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = Cache::new(0);
        let t0 = Instant::now();
        cache.insert(
            "a.example",
            addrs(&["192.0.2.1"]),
            Duration::from_secs(5),
            t0,
        );
        assert!(cache.get("a.example", t0).is_none());
    }
}
