//! Module-bound types: a type whose `module` attribute names a linked extension that serves
//! it ([`super::Extension::source`]) gets its items from that extension, not the store. The
//! HTTP API lists them with the usual query parameters and gets them by id through the
//! type's endpoint, filtered by the caller's access rules as stored items are (a rule on a
//! stored item reaches the bound items under it, or under its descendants). If
//! the source has a [writer](super::ItemWriter), `POST`, `PATCH`, `PUT` and `DELETE` reach
//! it (by the type's endpoint, or `POST /api/items` naming the type), after the checks a
//! stored item's write gets; else they are refused (`422`) and nothing changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

use super::invoke::{CallError, Outcome};
use super::{Call, HandlerError, ItemSource};
use crate::access::{AccessRules, Permission};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::attributes::ValidationErrors;
use crate::item::behaviour::TypeBehaviour;
use crate::item::ops::{self, Change, NewItem, Origin};
use crate::item::{Item, ItemError};
use crate::query::{ItemQuery, Readable};
use crate::store::{Page, StoreError};

/// One page of `items` for `query`: filtered (the query's filters and its access filter),
/// sorted, after the cursor's position, at most `limit`. The page is filled in order, so the
/// subtree rules look up no more parents than the page needs.
pub async fn page_of(
    query: &ItemQuery,
    items: Vec<Item>,
    subtrees: &mut Subtrees<'_>,
) -> Result<Page, StoreError> {
    let mut items: Vec<Item> = items.into_iter().filter(|i| query.is_after(i)).collect();
    items.sort_by(|a, b| query.compare(a, b));
    let mut page = Vec::new();
    for item in items {
        if page.len() > query.limit {
            break;
        }
        if subtrees.passes(query, &item).await? {
            page.push(item);
        }
    }
    Ok(Page::from_rows(query, page))
}

/// The subtree rules of a caller's reads (the `subtrees` of [`Readable::Only`]) applied to
/// module-bound items, which the store cannot expand: an item is in a subtree when it, its
/// parent or an ancestor of its parent (stored items, within `REALNET_MAX_DEPTH`) is the
/// rule's item, as for a write. Each distinct parent's ancestry is read once.
pub struct Subtrees<'a> {
    rn: &'a Realnet,
    org: &'a str,
    roots: Vec<Uuid>,
    parents: HashMap<Uuid, bool>,
}

impl<'a> Subtrees<'a> {
    pub fn new(rn: &'a Realnet, org: &'a str, readable: &Readable) -> Self {
        let roots = match readable {
            Readable::All => Vec::new(),
            Readable::Only { subtrees, .. } => subtrees.clone(),
        };
        Subtrees {
            rn,
            org,
            roots,
            parents: HashMap::new(),
        }
    }

    /// Whether `item` passes `query`: its filters, and its access filter with the subtree
    /// rules.
    async fn passes(&mut self, query: &ItemQuery, item: &Item) -> Result<bool, StoreError> {
        if query.matches(item, &HashSet::new()) {
            return Ok(true);
        }
        // Readable if in a subtree: only worth looking up when the rest of the query passes.
        Ok(query.matches(item, &HashSet::from([item.id])) && self.covers(item).await?)
    }

    /// Whether `item` is in one of the subtrees.
    async fn covers(&mut self, item: &Item) -> Result<bool, StoreError> {
        if self.roots.is_empty() {
            return Ok(false);
        }
        if self.roots.contains(&item.id) {
            return Ok(true);
        }
        let Some(parent) = item.parent else {
            return Ok(false);
        };
        if let Some(known) = self.parents.get(&parent) {
            return Ok(*known);
        }
        let covered = self.roots.contains(&parent)
            || self
                .rn
                .store
                .ancestors(self.org, parent, self.rn.config.max_depth)
                .await?
                .iter()
                .any(|a| self.roots.contains(a));
        self.parents.insert(parent, covered);
        Ok(covered)
    }
}

/// The type's module-bound source, if every type `query` asks for is served by one.
fn bound(rn: &Realnet, types: &[String]) -> Option<Arc<dyn super::ItemSource>> {
    let first = types.first()?;
    let (ext, source) = rn.extensions.source_of(first)?;
    types
        .iter()
        .all(|t| {
            rn.extensions
                .source_of(t)
                .is_some_and(|(e, _)| e.name == ext.name)
        })
        .then(|| source.clone())
}

/// Whether `type_name` is module-bound.
pub fn is_bound(rn: &Realnet, type_name: &str) -> bool {
    rn.extensions.source_of(type_name).is_some()
}

/// A page of a module-bound type's items for `p`, or `None` if `query` is not about one.
pub async fn query(
    rn: &Arc<Realnet>,
    p: &Principal,
    query: &ItemQuery,
) -> Result<Option<Page>, HandlerError> {
    let Some(source) = bound(rn, &query.types) else {
        return Ok(None);
    };
    let rules = rn.access_rules(&p.org).await.map_err(ItemError::from)?;
    let mut query = query.clone();
    query.readable = rules.readable(p, &rn.types);
    let call = Call::new(rn.clone(), p.clone(), None);
    // The source answers the caller's org's items; one it gives of another org is dropped.
    let mut items = source.items(&call).await?;
    items.retain(|i| i.org == p.org);
    let mut subtrees = Subtrees::new(rn, &p.org, &query.readable);
    let page = page_of(&query, items, &mut subtrees)
        .await
        .map_err(ItemError::from)?;
    Ok(Some(page))
}

/// A module-bound item of `type_name` by id for `p`, if it exists and `p` may read it.
pub async fn get(
    rn: &Arc<Realnet>,
    p: &Principal,
    type_name: &str,
    id: Uuid,
) -> Result<Option<Item>, HandlerError> {
    let Some((_, source)) = rn.extensions.source_of(type_name) else {
        return Ok(None);
    };
    let rules = rn.access_rules(&p.org).await.map_err(ItemError::from)?;
    let call = Call::new(rn.clone(), p.clone(), None);
    readable(rn, &rules, p, source.as_ref(), &call, type_name, id).await
}

/// The item from `source`, if it is of `type_name` (or a subtype), of the caller's org, and
/// `p` may read it.
async fn readable(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    source: &dyn ItemSource,
    call: &Call,
    type_name: &str,
    id: Uuid,
) -> Result<Option<Item>, HandlerError> {
    let Some(item) = source.item(call, id).await?.filter(|i| i.org == p.org) else {
        return Ok(None);
    };
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = rn.types.subtypes(type_name).to_vec();
    query.readable = rules.readable(p, &rn.types);
    let mut subtrees = Subtrees::new(rn, &p.org, &query.readable);
    let readable = subtrees
        .passes(&query, &item)
        .await
        .map_err(ItemError::from)?;
    Ok(readable.then_some(item))
}

/// The source of `type_name`, which must write.
fn writing(rn: &Realnet, type_name: &str) -> Result<Arc<dyn ItemSource>, ItemError> {
    match rn.extensions.source_of(type_name) {
        Some((_, source)) if source.writer().is_some() => Ok(source.clone()),
        Some((ext, _)) => Err(ValidationErrors::single(
            "type",
            format!(
                "the items of {type_name} come from extension {:?} (its module), which does not write them: they are read-only",
                ext.name
            ),
        )
        .into()),
        None => Err(ValidationErrors::single(
            "type",
            format!("{type_name} is not served by an extension"),
        )
        .into()),
    }
}

/// Whether `p` may do `wanted` to `item`, a module-bound item: as for a stored item, a rule
/// on the item, its parent or an ancestor of its parent (stored items) applies.
async fn may(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    wanted: Permission,
    item: &Item,
) -> Result<(), ItemError> {
    let types = (&rn.types, &rn.behaviours);
    let mut lineage = vec![item.id];
    if let Some(parent) = item.parent
        && rules.needs_lineage(p, wanted)
    {
        lineage.push(parent);
        lineage.extend(
            rn.store
                .ancestors(&p.org, parent, rn.config.max_depth)
                .await?,
        );
    }
    if rules.allows(p, wanted, types, &item.type_name, item.owner, &lineage) {
        Ok(())
    } else {
        Err(ops::denied(
            p,
            format!("{} item {}", wanted.as_str(), item.id),
        ))
    }
}

/// Commits what the source staged through `call` (item writes, files, jobs) once its own
/// write succeeded.
async fn settle(rn: &Realnet, p: &Principal, call: &Call) -> Result<(), CallError> {
    Outcome::of(call, serde_json::Value::Null)
        .commit(rn, p, Vec::new())
        .await
        .map(drop)
}

/// Creates a module-bound item for a client (`POST`): checked as [`ops::create`] checks a
/// stored one, then stored by the type's source.
pub async fn create(
    rn: &Arc<Realnet>,
    p: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<Item, CallError> {
    let source = writing(rn, &input.type_name)?;
    let prepared = ops::prepare_new(rn, p, input, scope, Origin::Client).await?;
    let item = prepared.item.expect("a created item");
    let writer = source.writer().expect("checked by writing");
    let call = Call::new(rn.clone(), p.clone(), None);
    let item = writer.create(&call, item).await?;
    settle(rn, p, &call).await?;
    Ok(item)
}

/// The item `p` may read and do `wanted` to, from the writing source of `type_name`.
async fn current(
    rn: &Arc<Realnet>,
    p: &Principal,
    type_name: &str,
    id: Uuid,
    wanted: Permission,
) -> Result<(Arc<dyn ItemSource>, Arc<AccessRules>, Call, Item), CallError> {
    let source = writing(rn, type_name)?;
    let rules = rn.access_rules(&p.org).await.map_err(ItemError::from)?;
    let call = Call::new(rn.clone(), p.clone(), None);
    let item = readable(rn, &rules, p, source.as_ref(), &call, type_name, id)
        .await?
        .ok_or(ItemError::NotFound(id))?;
    may(rn, &rules, p, wanted, &item).await?;
    Ok((source, rules, call, item))
}

/// Changes a module-bound item of `type_name` for a client (`PATCH` / `PUT`, with
/// `if_match` the version it is based on): checked as [`ops::update`] checks a stored one,
/// then stored by the type's source.
pub async fn update(
    rn: &Arc<Realnet>,
    p: &Principal,
    type_name: &str,
    id: Uuid,
    change: Change,
    if_match: Option<i64>,
) -> Result<Item, CallError> {
    let (source, rules, call, current) = current(rn, p, type_name, id, Permission::Update).await?;
    let (next, _) =
        ops::next_version(rn, &rules, p, &current, &change, if_match, Origin::Client).await?;
    let writer = source.writer().expect("checked by writing");
    let item = writer.update(&call, next, current.version).await?;
    settle(rn, p, &call).await?;
    Ok(item)
}

/// Deletes a module-bound item of `type_name` for a client (`DELETE`, with `if_match` the
/// version it is based on). It has no children: items in the store cannot be under it.
pub async fn delete(
    rn: &Arc<Realnet>,
    p: &Principal,
    type_name: &str,
    id: Uuid,
    if_match: Option<i64>,
) -> Result<(), CallError> {
    let (source, rules, call, current) = current(rn, p, type_name, id, Permission::Delete).await?;
    ops::check_version(&current, if_match).map_err(ItemError::from)?;
    rn.behaviours
        .of(&current.type_name)
        .check_delete(p, &rules, &current)?;
    let writer = source.writer().expect("checked by writing");
    writer.delete(&call, &current).await?;
    settle(rn, p, &call).await
}

/// What a module-bound type is to the store's item operations: items that are not in the
/// store, so neither clients nor handlers put them there (the item API sends a writing
/// source's writes to the source instead: [`create`], [`update`], [`delete`]).
pub struct BoundItems;

impl TypeBehaviour for BoundItems {
    fn made_by_server(&self) -> Option<&'static str> {
        Some(
            "the items of this type come from its extension (its module): they are not in the store",
        )
    }
}
