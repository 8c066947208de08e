//! What a container remembers of who is calling, for `REALNET_AUTH_CACHE_TTL`: resolved
//! principals (by token hash or authorizer identity), each org's access rules, and the orgs
//! known to exist. Another container sees a change once its entries expire.

use std::sync::Arc;
use std::time::Duration;

use super::Principal;
use crate::access::AccessRules;
use crate::cache::TtlCache;

pub struct AuthCaches {
    pub(crate) principals: TtlCache<String, Arc<Principal>>,
    pub(crate) rules: TtlCache<String, Arc<AccessRules>>,
    /// Orgs known to be set up, with their portfolio (never those that are not, so a new
    /// org is seen at once).
    pub(crate) orgs: TtlCache<String, Arc<str>>,
}

impl AuthCaches {
    /// Caches whose entries live `ttl`; none read within `settle` after a forget.
    pub fn new(ttl: Duration, settle: Duration) -> AuthCaches {
        AuthCaches {
            principals: TtlCache::new(10_000, ttl, settle),
            rules: TtlCache::new(1_000, ttl, settle),
            orgs: TtlCache::new(10_000, ttl, settle),
        }
    }
}
