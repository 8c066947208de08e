//! The access filter's subtree rules on DynamoDB, decided item by item as a page meets them:
//! an item is readable through a rule if it is the rule's root or lies below it, which its
//! chain of parents tells. Each parent is read once per page (and the chain stops at the first
//! parent already known), so a page of a folder's children costs one walk up, not a load of
//! every subtree before the query; those reads count in the page's budget. They are
//! eventually consistent reads (half the read units of strong ones), as the index reads that
//! found the items are: a page is no snapshot either way. Single-item checks (writes, a read
//! by id) walk ancestors with strongly consistent reads (`ItemStore::ancestors`).

use std::collections::HashSet;

use uuid::Uuid;

use super::DynamoStore;
use crate::item::Item;
use crate::query::{ItemQuery, Readable};
use crate::store::StoreError;

/// How far up a walk goes at most: further than any hierarchy the depth bound allows.
const MAX_WALK: usize = 1000;

/// What one page has learnt about the readable subtrees.
pub(super) struct Subtrees {
    roots: HashSet<Uuid>,
    /// Items known to lie in a subtree (what [`ItemQuery::matches`] looks up).
    pub(super) inside: HashSet<Uuid>,
    outside: HashSet<Uuid>,
}

impl Subtrees {
    pub(super) fn of(query: &ItemQuery) -> Subtrees {
        let roots = match &query.readable {
            Readable::Only { subtrees, .. } => subtrees.iter().copied().collect(),
            Readable::All => HashSet::new(),
        };
        Subtrees {
            inside: roots.iter().copied().collect(),
            roots,
            outside: HashSet::new(),
        }
    }

    /// Whether `item` needs its place in the hierarchy looked at: it is readable through a
    /// subtree rule or not at all.
    fn undecided(&self, query: &ItemQuery, item: &Item) -> bool {
        let Readable::Only {
            types,
            owner,
            owned_types,
            ..
        } = &query.readable
        else {
            return false;
        };
        let known = self.inside.contains(&item.id) || self.outside.contains(&item.id);
        let by_type = types.contains(&item.type_name);
        let by_owner =
            owner.is_some() && item.owner == *owner && owned_types.contains(&item.type_name);
        !self.roots.is_empty() && !known && !by_type && !by_owner
    }
}

impl DynamoStore {
    /// Learns whether `item` lies in one of the readable subtrees (see the module's
    /// documentation); answers how many records that read, which count in the page's budget.
    pub(super) async fn place(
        &self,
        org: &str,
        query: &ItemQuery,
        subtrees: &mut Subtrees,
        item: &Item,
    ) -> Result<usize, StoreError> {
        if !subtrees.undecided(query, item) {
            return Ok(0);
        }
        let mut chain = vec![item.id];
        let mut at = item.parent;
        let inside = loop {
            let Some(p) = at else { break false };
            if subtrees.inside.contains(&p) {
                break true;
            }
            if subtrees.outside.contains(&p) || chain.len() > MAX_WALK {
                break false;
            }
            chain.push(p);
            // Eventually consistent, like the index read that found `item`: a page is no
            // snapshot, and a parent moved in the last second may show where it was.
            at = self
                .read_record(org.to_string(), super::item_sk(p), false)
                .await?
                .map(|r| super::record_item(&r))
                .transpose()?
                .and_then(|i| i.parent);
            self.records_read
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let reads = chain.len() - 1;
        let known = if inside {
            &mut subtrees.inside
        } else {
            &mut subtrees.outside
        };
        known.extend(chain);
        Ok(reads)
    }
}
