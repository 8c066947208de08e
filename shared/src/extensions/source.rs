//! Module-bound types: a type whose `module` attribute names a linked extension that serves
//! it ([`super::Extension::source`]) gets its items from that extension, not the store. The
//! HTTP API lists them with the usual query parameters and gets them by id through the
//! type's endpoint; they are read-only, and filtered by the caller's access rules exactly as
//! stored items are.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use super::{Call, HandlerError};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::behaviour::TypeBehaviour;
use crate::item::{Item, ItemError};
use crate::query::ItemQuery;
use crate::store::Page;

/// One page of `items` for `query`: filtered (the query's filters and its access filter),
/// sorted, after the cursor's position, at most `limit`.
pub fn page_of(query: &ItemQuery, items: Vec<Item>) -> Page {
    let none = HashSet::new();
    let mut items: Vec<Item> = items
        .into_iter()
        .filter(|i| query.matches(i, &none) && query.is_after(i))
        .collect();
    items.sort_by(|a, b| query.compare(a, b));
    items.truncate(query.limit + 1);
    Page::from_rows(query, items)
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
    let items = source.items(&call).await?;
    Ok(Some(page_of(&query, items)))
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
    let readable = rules.readable(p, &rn.types);
    let call = Call::new(rn.clone(), p.clone(), None);
    let item = source.item(&call, id).await?;
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = rn.types.subtypes(type_name).to_vec();
    query.readable = readable;
    Ok(item.filter(|i| query.matches(i, &HashSet::new())))
}

/// What a module-bound type is to the item operations: items clients cannot make (nor
/// change: they are not in the store).
pub struct BoundItems;

impl TypeBehaviour for BoundItems {
    fn made_by_server(&self) -> Option<&'static str> {
        Some("the items of this type come from its extension (its module): they are read-only")
    }
}
