//! What a container remembers of the remote extensions it called, for
//! `REALNET_AUTH_CACHE_TTL` (as it remembers access rules): each one's item, parsed (handlers
//! with their compiled schemas), and its signing secret, so that a warm call reads nothing
//! from the store. A write to any `Extension` item committed in this container (a create, a
//! change, a rotation, a delete) forgets them all at once; another container sees it once
//! its entry expires. A call that raced a rotation cannot bring the old secret back (see
//! [`TtlCache`]). An extension that does not exist is not remembered, so a new one is seen at
//! once.

use std::sync::Arc;
use std::time::Duration;

use super::RemoteExtension;
use crate::cache::{Read, TtlCache};

/// By org and extension name.
pub struct RemoteExtensions(TtlCache<(String, String), Arc<RemoteExtension>>);

/// An org and an extension name, borrowed: hashed as the `(String, String)` key is.
#[derive(Hash)]
struct Key<'a>(&'a str, &'a str);

impl quick_cache::Equivalent<(String, String)> for Key<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl RemoteExtensions {
    /// A cache whose entries live `ttl`; none at all for a zero `ttl`.
    pub fn new(ttl: Duration) -> RemoteExtensions {
        RemoteExtensions(TtlCache::new(1_000, ttl, Duration::ZERO))
    }

    pub(super) fn get(&self, org: &str, name: &str) -> Option<Arc<RemoteExtension>> {
        self.0.get(&Key(org, name))
    }

    /// Where a read from the store begins: pass it to [`RemoteExtensions::keep`].
    pub(super) fn begin(&self) -> Read {
        self.0.begin()
    }

    /// Keeps what `read` found.
    pub(super) fn keep(&self, read: Read, extension: Arc<RemoteExtension>) {
        let key = (extension.org.clone(), extension.name.clone());
        self.0.keep(read, key, extension);
    }

    /// Forgets every remote extension, after a write to an `Extension` item made here.
    pub(crate) fn forget(&self) {
        self.0.forget_all();
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
    fn an_extension_is_found_by_org_and_name_until_forgotten() {
        let cache = RemoteExtensions::new(Duration::from_secs(60));
        cache.keep(cache.begin(), extension("a"));
        assert!(cache.get("o", "a").is_some());
        assert!(cache.get("o", "b").is_none());
        assert!(cache.get("p", "a").is_none());
        // A read began, a write committed and forgot, then the read kept what it found.
        let read = cache.begin();
        cache.forget();
        assert!(cache.get("o", "a").is_none());
        cache.keep(read, extension("a"));
        assert!(
            cache.get("o", "a").is_none(),
            "the stale read is not served"
        );
    }
}
