//! What a container remembers for `REALNET_AUTH_CACHE_TTL` (principals, access rules, orgs,
//! remote extensions): a bounded concurrent cache (quick_cache's, which looks an entry up
//! under a shard's read lock, with no housekeeping on the request's path) whose entries are
//! served until their deadline (`ttl` after they were kept, or sooner) and are a miss after.
//!
//! Deadlines are on the wall clock, which a credential's expiry is written in and which
//! keeps running while a Lambda container is frozen between invocations.
//!
//! A write made in this container forgets what it changed once it committed. A read that
//! began before that commit may still be under way and keep what it found after the forget;
//! so a read takes a [`Read`] before it asks the store, and what it keeps is served only if
//! nothing was forgotten since that read began (any forget, of any key: forgets are rare).
//! Where the store's queries lag its writes (DynamoDB's indexes), a read that began after the
//! forget may still miss what was just made; a cache built with a `settle` keeps nothing under
//! a key from a read that began within that long after the key (or everything) was forgotten,
//! however long the read then took.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use quick_cache::Equivalent;
use quick_cache::sync::Cache;

pub struct TtlCache<K, V> {
    entries: Cache<K, Entry<V>>,
    ttl: Duration,
    /// How long after a forget what is read is not kept (the store's query lag).
    settle: Duration,
    /// How many forgets this cache has seen.
    forgets: AtomicU64,
    /// With a settle: when keys were last forgotten, by their hash (two keys of one hash
    /// settle together, which is safe).
    forgotten: Mutex<Forgotten>,
    hasher: RandomState,
}

/// When keys were last forgotten.
#[derive(Default)]
struct Forgotten {
    /// By each key's hash.
    keys: HashMap<u64, SystemTime>,
    /// The last [`TtlCache::forget_all`] (or a clear of `keys`, which stands for one).
    all: Option<SystemTime>,
}

/// So many keys forgotten are remembered one by one; past it they count as everything.
const FORGOTTEN_KEYS: usize = 10_000;

#[derive(Clone)]
struct Entry<V> {
    /// When it stops being served.
    until: SystemTime,
    /// The forget count when the read that found it began.
    since: u64,
    value: V,
}

/// Where a read from the store began, for [`TtlCache::keep`]: the forget count, and when.
#[must_use]
pub struct Read(u64, SystemTime);

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// At most `capacity` entries, each served for `ttl`; none kept for a zero `ttl`, nor
    /// within `settle` after a forget.
    pub fn new(capacity: usize, ttl: Duration, settle: Duration) -> TtlCache<K, V> {
        TtlCache {
            entries: Cache::new(capacity.max(1)),
            ttl,
            settle,
            forgets: AtomicU64::new(0),
            forgotten: Mutex::new(Forgotten::default()),
            hasher: RandomState::new(),
        }
    }

    /// The value kept under `key`, before its deadline and with nothing forgotten since the
    /// read that found it.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let entry = self.entries.get(key)?;
        let current = entry.since == self.forgets.load(Ordering::SeqCst);
        (current && SystemTime::now() < entry.until).then_some(entry.value)
    }

    /// Marks the start of a read from the store whose result may be kept.
    pub fn begin(&self) -> Read {
        Read(self.forgets.load(Ordering::SeqCst), SystemTime::now())
    }

    /// Keeps what `read` found for the TTL.
    pub fn keep(&self, read: Read, key: K, value: V) {
        self.keep_until(read, key, value, None);
    }

    /// Keeps what `read` found for the TTL or until `until`, whichever is sooner (what a
    /// credential that expires sooner resolved to, say); nothing already past `until`.
    pub fn keep_until(&self, read: Read, key: K, value: V, until: Option<SystemTime>) {
        if self.ttl.is_zero() {
            return;
        }
        if self.settling(&read, &key) {
            return;
        }
        let now = SystemTime::now();
        let mut deadline = now + self.ttl;
        if let Some(until) = until {
            if until <= now {
                return;
            }
            deadline = deadline.min(until);
        }
        let entry = Entry {
            until: deadline,
            since: read.0,
            value,
        };
        self.entries.insert(key, entry);
    }

    /// Forgets `key`. Like every forget, it makes every entry kept before it a miss too (a
    /// read under way when it came is told apart by its count alone).
    pub fn forget<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if !self.settle.is_zero() {
            let mut forgotten = self.lock_forgotten();
            if forgotten.keys.len() >= FORGOTTEN_KEYS {
                forgotten.keys.clear();
                forgotten.all = Some(SystemTime::now());
            }
            let hash = self.hasher.hash_one(key);
            forgotten.keys.insert(hash, SystemTime::now());
        }
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(key);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        if !self.settle.is_zero() {
            let mut forgotten = self.lock_forgotten();
            forgotten.keys.clear();
            forgotten.all = Some(SystemTime::now());
        }
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    /// Whether `read`, of `key`, began within the settle after `key` was last forgotten.
    fn settling(&self, read: &Read, key: &K) -> bool {
        if self.settle.is_zero() {
            return false;
        }
        let forgotten = self.lock_forgotten();
        let last = forgotten
            .keys
            .get(&self.hasher.hash_one(key))
            .copied()
            .max(forgotten.all);
        last.is_some_and(|at| read.1 < at + self.settle)
    }

    fn lock_forgotten(&self) -> std::sync::MutexGuard<'_, Forgotten> {
        // What it holds is whole after any panic: a poisoned lock is still good.
        self.forgotten
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forgets what a write may have changed when dropped: once the write returned, or when its
/// future was dropped mid-write (a client gone, a timeout), since a write reported failed, or
/// never answered, may have committed, and forgetting too much is safe.
pub(crate) struct ForgetOnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> ForgetOnDrop<F> {
    pub(crate) fn new(forget: F) -> ForgetOnDrop<F> {
        ForgetOnDrop(Some(forget))
    }
}

impl<F: FnOnce()> Drop for ForgetOnDrop<F> {
    fn drop(&mut self) {
        if let Some(forget) = self.0.take() {
            forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep<V: Clone>(cache: &TtlCache<String, V>, key: &str, value: V) {
        cache.keep(cache.begin(), key.to_string(), value);
    }

    #[test]
    fn nothing_read_within_the_settle_after_a_forget_is_kept() {
        let cache = TtlCache::new(10, Duration::from_secs(60), Duration::from_millis(200));
        keep(&cache, "a", 1);
        assert_eq!(cache.get("a"), Some(1), "no forget yet");
        cache.forget("a");
        keep(&cache, "a", 2);
        assert_eq!(cache.get("a"), None, "read within the settle");
        keep(&cache, "b", 1);
        assert_eq!(cache.get("b"), Some(1), "another key does not settle");
        std::thread::sleep(Duration::from_millis(250));
        keep(&cache, "a", 3);
        assert_eq!(cache.get("a"), Some(3), "read after it");
        cache.forget_all();
        keep(&cache, "b", 2);
        assert_eq!(cache.get("b"), None, "everything settles after forget_all");
    }

    #[test]
    fn a_slow_read_that_began_within_the_settle_is_not_kept() {
        let cache = TtlCache::new(10, Duration::from_secs(60), Duration::from_millis(100));
        cache.forget("a");
        let read = cache.begin();
        std::thread::sleep(Duration::from_millis(150));
        cache.keep(read, "a".to_string(), 1);
        assert_eq!(cache.get("a"), None, "it began within the settle");
    }

    #[test]
    fn an_entry_is_served_until_its_ttl_and_a_miss_after() {
        let cache = TtlCache::new(10, Duration::from_millis(50), Duration::ZERO);
        keep(&cache, "org", 1);
        assert_eq!(cache.get("org"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("org"), None);
        keep(&cache, "org", 2);
        assert_eq!(cache.get("org"), Some(2));
    }

    #[test]
    fn an_entry_kept_until_before_the_ttl_is_a_miss_sooner() {
        let cache = TtlCache::new(10, Duration::from_secs(60), Duration::ZERO);
        let soon = SystemTime::now() + Duration::from_millis(30);
        cache.keep_until(cache.begin(), "short".to_string(), 1, Some(soon));
        keep(&cache, "long", 2);
        assert_eq!(cache.get("short"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("short"), None);
        assert_eq!(cache.get("long"), Some(2));
        let past = SystemTime::now() - Duration::from_secs(1);
        cache.keep_until(cache.begin(), "past".to_string(), 3, Some(past));
        assert_eq!(cache.get("past"), None, "what has expired is not kept");
    }

    #[test]
    fn forgotten_entries_are_misses() {
        let cache = TtlCache::new(10, Duration::from_secs(60), Duration::ZERO);
        keep(&cache, "a", 1);
        keep(&cache, "b", 2);
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
        keep(&cache, "b", 2);
        cache.forget_all();
        assert_eq!(cache.get("b"), None);
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_served() {
        let cache = TtlCache::new(10, Duration::from_secs(60), Duration::ZERO);
        // A read began, a write committed and forgot, then the read kept what it found.
        let read = cache.begin();
        cache.forget("a");
        cache.keep(read, "a".to_string(), "stale");
        assert_eq!(cache.get("a"), None, "the stale read is not served");
        let read = cache.begin();
        cache.forget_all();
        cache.keep(read, "a".to_string(), "stale");
        assert_eq!(cache.get("a"), None);
        keep(&cache, "a", "fresh");
        assert_eq!(cache.get("a"), Some("fresh"));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = TtlCache::new(10, Duration::ZERO, Duration::ZERO);
        keep(&cache, "a", 1);
        assert_eq!(cache.get("a"), None);
    }
}
