//! What a container remembers of the remote extensions it called, for
//! `REALNET_AUTH_CACHE_TTL` (as it remembers access rules): each one's item, parsed (handlers
//! with their compiled schemas), and its signing secret, so that a warm call reads nothing
//! from the store. A write to any `Extension` item committed in this container (a create, a
//! change, a rotation, a delete) forgets them all at once; another container sees it once
//! its entry expires. An entry is served only if no forget happened since the read that made
//! it began, so a call that raced a rotation cannot bring the old secret back. An extension
//! that does not exist is not remembered, so a new one is seen at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::RemoteExtension;
use crate::cache::TtlCache;

pub struct RemoteExtensions {
    /// By org and extension name: the forget count its read began at, and what it found.
    entries: TtlCache<(String, String), (u64, Arc<RemoteExtension>)>,
    /// How many times everything was forgotten.
    forgets: AtomicU64,
    enabled: bool,
}

impl RemoteExtensions {
    /// A cache whose entries live `ttl`; none at all for a zero `ttl`.
    pub fn new(ttl: Duration) -> RemoteExtensions {
        RemoteExtensions {
            entries: TtlCache::new(1_000, ttl),
            forgets: AtomicU64::new(0),
            enabled: !ttl.is_zero(),
        }
    }

    pub(super) fn get(&self, org: &str, name: &str) -> Option<Arc<RemoteExtension>> {
        if !self.enabled {
            return None;
        }
        let (since, extension) = self.entries.get(&(org.to_string(), name.to_string()))?;
        (since == self.forgets.load(Ordering::SeqCst)).then_some(extension)
    }

    /// Where a read from the store begins: pass it to [`RemoteExtensions::keep`].
    pub(super) fn begin(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Keeps what a read begun at `since` found (served only while nothing was forgotten
    /// since).
    pub(super) fn keep(&self, since: u64, extension: Arc<RemoteExtension>) {
        if self.enabled {
            let key = (extension.org.clone(), extension.name.clone());
            self.entries.insert(key, (since, extension));
        }
    }

    /// Forgets every remote extension, after a write to an `Extension` item made here.
    pub(crate) fn forget(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::remote::{Endpoint, RemoteExtension};

    fn extension(name: &str) -> Arc<RemoteExtension> {
        Arc::new(RemoteExtension {
            id: uuid::Uuid::now_v7(),
            org: "o".into(),
            name: name.into(),
            type_name: "Extension".into(),
            owner: None,
            description: String::new(),
            endpoint: Endpoint::Lambda("f".into()),
            timeout: Duration::from_secs(1),
            handlers: Vec::new(),
            secret: None,
        })
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_served() {
        let cache = RemoteExtensions::new(Duration::from_secs(60));
        let since = cache.begin();
        cache.keep(since, extension("a"));
        assert!(cache.get("o", "a").is_some());
        // A read began, a write committed and forgot, then the read kept what it found.
        let since = cache.begin();
        cache.forget();
        cache.keep(since, extension("a"));
        assert!(
            cache.get("o", "a").is_none(),
            "the stale read is not served"
        );
        cache.keep(cache.begin(), extension("a"));
        assert!(cache.get("o", "a").is_some());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = RemoteExtensions::new(Duration::ZERO);
        cache.keep(cache.begin(), extension("a"));
        assert!(cache.get("o", "a").is_none());
    }
}
