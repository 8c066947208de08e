//! What a container remembers for `REALNET_AUTH_CACHE_TTL` (principals, access rules, orgs,
//! remote extensions): a bounded concurrent cache (quick_cache's, which looks an entry up
//! under a shard's read lock, with no housekeeping on the request's path) whose entries are
//! served until their deadline (`ttl` after they were kept, or sooner) and are a miss after.

use std::hash::Hash;
use std::time::{Duration, Instant};

use quick_cache::Equivalent;
use quick_cache::sync::Cache;

pub struct TtlCache<K, V> {
    /// Each value with the moment it stops being served.
    entries: Cache<K, (Instant, V)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// At most `capacity` entries, each served for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> TtlCache<K, V> {
        TtlCache {
            entries: Cache::new(capacity),
            ttl,
        }
    }

    /// The value kept under `key`, before its deadline.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (deadline, value) = self.entries.get(key)?;
        (Instant::now() < deadline).then_some(value)
    }

    /// Keeps `value` for the TTL.
    pub fn insert(&self, key: K, value: V) {
        self.insert_for(key, value, self.ttl);
    }

    /// Keeps `value` for the TTL or `at_most`, whichever is shorter (what a credential that
    /// expires sooner resolved to, say).
    pub fn insert_for(&self, key: K, value: V, at_most: Duration) {
        let deadline = Instant::now() + self.ttl.min(at_most);
        self.entries.insert(key, (deadline, value));
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.entries.remove(key);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_until_its_ttl_and_a_miss_after() {
        let cache = TtlCache::new(10, Duration::from_millis(50));
        cache.insert("org".to_string(), 1);
        assert_eq!(cache.get("org"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("org"), None);
        cache.insert("org".to_string(), 2);
        assert_eq!(cache.get("org"), Some(2));
    }

    #[test]
    fn an_entry_kept_for_less_than_the_ttl_is_a_miss_sooner() {
        let cache = TtlCache::new(10, Duration::from_secs(60));
        cache.insert_for("short".to_string(), 1, Duration::from_millis(30));
        cache.insert("long".to_string(), 2);
        assert_eq!(cache.get("short"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("short"), None);
        assert_eq!(cache.get("long"), Some(2));
    }

    #[test]
    fn removed_and_cleared_entries_are_misses() {
        let cache = TtlCache::new(10, Duration::from_secs(60));
        cache.insert("a".to_string(), 1);
        cache.insert("b".to_string(), 2);
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), Some(2));
        cache.clear();
        assert_eq!(cache.get("b"), None);
    }
}
