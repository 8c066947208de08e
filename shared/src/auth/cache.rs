//! What a container remembers of who is calling, for `REALNET_AUTH_CACHE_TTL`: resolved
//! principals (by token hash or authorizer identity), each org's access rules, and the orgs
//! known to exist. Another container sees a change once its entries expire.

use std::sync::Arc;
use std::time::Duration;

use mini_moka::sync::Cache;

use super::CachedPrincipal;
use crate::access::AccessRules;

pub struct AuthCaches {
    pub(crate) principals: Cache<String, Arc<CachedPrincipal>>,
    pub(crate) rules: Cache<String, Arc<AccessRules>>,
    /// Orgs known to be set up, with their portfolio (never those that are not, so a new
    /// org is seen at once).
    pub(crate) orgs: Cache<String, Arc<str>>,
}

impl AuthCaches {
    pub fn new(ttl: Duration) -> AuthCaches {
        let ttl = ttl.max(Duration::from_millis(1));
        AuthCaches {
            principals: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
            rules: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(ttl)
                .build(),
            orgs: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }
}
