//! An org's access rules, read from its `Acl` items and cached per container.

use std::sync::Arc;

use crate::access::{AccessRule, AccessRules};
use crate::context::Realnet;
use crate::query::ItemQuery;
use crate::store::StoreError;

impl Realnet {
    /// The access rules of `org`: its `Acl` items, cached for `REALNET_AUTH_CACHE_TTL`.
    pub async fn access_rules(&self, org: &str) -> Result<Arc<AccessRules>, StoreError> {
        if let Some(rules) = self.auth.rules.get(org) {
            return Ok(rules);
        }
        let read = self.auth.rules.begin();
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = self.types.subtypes("Acl").to_vec();
        query.limit = crate::query::MAX_LIMIT;
        let mut rules = Vec::new();
        loop {
            let page = self.store.query(org, &query).await?;
            let items = crate::store::current(&*self.store, org, &query, page.items).await?;
            rules.extend(items.iter().filter_map(AccessRule::from_item));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let rules = Arc::new(AccessRules::new(rules));
        self.auth.rules.keep(read, org.to_string(), rules.clone());
        Ok(rules)
    }

    /// Forgets `org`'s cached rules after a change to them made in this container.
    pub(crate) fn forget_rules(&self, org: &str) {
        self.auth.rules.forget(org);
    }
}
