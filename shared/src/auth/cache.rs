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
    /// Caches whose entries live `ttl`. The rules read within `settle` (the store's query
    /// lag) after a change to them are not kept: a rule just made may be missing from what
    /// was read, and a rule can restrict as well as grant (an account with rules of its own
    /// is an admin's to change). The others need no settle: a principal's token, account
    /// and groups are consistent reads, and what was found by a lagging query is read again
    /// by id (`store::current`); what a lagging read misses (an account, an org, an
    /// extension just made) is not there yet, which grants nothing and is not kept.
    pub fn new(ttl: Duration, settle: Duration) -> AuthCaches {
        AuthCaches {
            principals: TtlCache::new(10_000, ttl, Duration::ZERO),
            rules: TtlCache::new(1_000, ttl, settle),
            orgs: TtlCache::new(10_000, ttl, Duration::ZERO),
        }
    }
}
