//! The item operations behind the API and the CLI: they check input against the type registry
//! and the store (references, parents, cycles, versions) and then write through
//! [`ItemStore::apply`](crate::store::ItemStore::apply). Every operation runs as a
//! [`Principal`], stays inside its org and is checked against the org's access rules: an item
//! the caller may not read is reported exactly like a missing one (`404`), a write the caller
//! may not make is `403`, and a caller without credentials is told to log in (`401`).
//!
//! This module names no type: what is special about a type (identity items, files, jobs,
//! schedules) is its [behaviour](super::behaviour), asked at each step. Fields a type declares
//! `managed` are the server's: a client that sends one with another value than it has is
//! refused (`422`), and only an [`Origin::Server`] write may set them.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::attributes::{ValidationErrors, validate_merge, validate_name, validate_new};
pub use super::behaviour::Origin;
use super::behaviour::Pending;
use super::prepared::Prepared;
use super::{Item, ItemError, now};
use crate::access::{AccessRules, Permission};
use crate::auth::Principal;
use crate::cache::ForgetOnDrop;
use crate::context::Realnet;
use crate::query::{ItemQuery, ParentFilter, Readable};
use crate::store::{Page, StoreError, Write};
use crate::types::TypeDef;

/// Attempts at a read-modify-write without `If-Match` before giving up on a busy item.
const UPDATE_ATTEMPTS: usize = 5;

/// At most this many items go in one recursive delete.
pub const MAX_DELETE: usize = 1000;

/// The refusal of `action` to `p`: log in first, or not allowed.
pub(crate) fn denied(p: &Principal, action: String) -> ItemError {
    if p.is_public() {
        ItemError::Unauthenticated(format!("log in to {action} (POST /api/auth)"))
    } else {
        ItemError::Forbidden(format!("you may not {action}"))
    }
}

/// The item, if it exists in the caller's org and the caller may read it.
async fn readable(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    id: Uuid,
) -> Result<Option<Item>, StoreError> {
    match rn.store.get(&p.org, id).await? {
        Some(item)
            if rn
                .may(
                    rules,
                    p,
                    Permission::Read,
                    &item.type_name,
                    item.owner,
                    Some(id),
                )
                .await? =>
        {
            Ok(Some(item))
        }
        _ => Ok(None),
    }
}

/// A new item as a caller describes it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub type_name: String,
    pub name: String,
    pub parent: Option<Uuid>,
    pub attributes: Map<String, Value>,
}

/// A change to an item: a merge (`PATCH`) or a replacement (`PUT`).
#[derive(Debug, Clone)]
pub enum Change {
    Patch {
        name: Option<String>,
        /// `Some(None)` moves the item to the root.
        parent: Option<Option<Uuid>>,
        attributes: Option<Map<String, Value>>,
    },
    Replace {
        name: String,
        parent: Option<Uuid>,
        attributes: Map<String, Value>,
    },
}

fn type_in_scope<'a>(
    rn: &'a Realnet,
    type_name: &str,
    scope: Option<&str>,
) -> Result<&'a TypeDef, ValidationErrors> {
    let t = rn
        .types
        .get(type_name)
        .ok_or_else(|| ValidationErrors::single("type", format!("unknown type {type_name:?}")))?;
    match scope {
        Some(s) if !rn.types.is_a(type_name, s) => Err(ValidationErrors::single(
            "type",
            format!("type {type_name:?} is not a {s} and cannot be created here"),
        )),
        _ => Ok(t),
    }
}

/// Refuses server-owned fields that a client sent with another value than `current` holds
/// (any value, for a new item), and drops those it sent unchanged.
fn refuse_managed(
    t: &TypeDef,
    given: &mut Map<String, Value>,
    current: Option<&Map<String, Value>>,
    errors: &mut ValidationErrors,
) {
    for field in t.fields.iter().filter(|f| f.managed) {
        let Some(value) = given.remove(&field.name) else {
            continue;
        };
        let held = current.and_then(|c| c.get(&field.name));
        let unchanged = match held {
            Some(h) => *h == value,
            None => value.is_null(),
        };
        if !unchanged {
            errors.add(&field.name, "is set by the server and cannot be written");
        }
    }
}

/// Keeps the server-owned fields of `current` in a replacement.
fn keep_managed(t: &TypeDef, current: &Map<String, Value>, next: &mut Map<String, Value>) {
    for field in t.fields.iter().filter(|f| f.managed) {
        match current.get(&field.name) {
            Some(v) => next.insert(field.name.clone(), v.clone()),
            None => next.remove(&field.name),
        };
    }
}

/// Checks that every `ref`/`file` attribute that is new or changed since `before` names an
/// item of the right type that the caller may read. Items of other orgs, and items the caller
/// may not read, are reported exactly like missing ones. Unchanged references are not checked again, so an item whose
/// target was deleted can still be edited.
async fn check_references(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    t: &TypeDef,
    attributes: &Map<String, Value>,
    before: Option<&Map<String, Value>>,
    errors: &mut ValidationErrors,
) -> Result<(), StoreError> {
    // Server-owned references were set by the server, which needs no reader's rights.
    for field in t
        .fields
        .iter()
        .filter(|f| f.kind.is_reference() && !f.managed)
    {
        let value = attributes.get(&field.name);
        if before.is_some_and(|b| b.get(&field.name) == value) {
            continue;
        }
        let Some(id) = value
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            continue;
        };
        let target = field.target.as_deref().unwrap_or("Item");
        match readable(rn, rules, p, id).await? {
            Some(item) if rn.types.is_a(&item.type_name, target) => {}
            _ => errors.add(&field.name, format!("no {target} item with id {id}")),
        }
    }
    Ok(())
}

async fn check_parent(
    rn: &Realnet,
    rules: &AccessRules,
    principal: &Principal,
    parent: Option<Uuid>,
    errors: &mut ValidationErrors,
) -> Result<(), StoreError> {
    if let Some(p) = parent
        && readable(rn, rules, principal, p).await?.is_none()
    {
        errors.add("parent", format!("no item with id {p}"));
    }
    Ok(())
}

/// Writes prepared changes all together, or none of them.
pub async fn commit(rn: &Realnet, p: &Principal, batch: Vec<Prepared>) -> Result<(), ItemError> {
    commit_with(rn, p, batch, Vec::new()).await
}

/// [`commit`], with `extra` writes in the same transaction (a job's outcome record).
pub async fn commit_with(
    rn: &Realnet,
    p: &Principal,
    batch: Vec<Prepared>,
    extra: Vec<Write>,
) -> Result<(), ItemError> {
    let mut writes: Vec<Write> = batch.iter().flat_map(|b| b.writes.clone()).collect();
    writes.extend(extra);
    let mut types: Vec<&String> = batch.iter().flat_map(|b| &b.types).collect();
    types.sort();
    types.dedup();
    let _forget = ForgetOnDrop::new(|| {
        for t in &types {
            rn.behaviours.of(t).after_write(rn, &p.org);
        }
    });
    rn.store.apply(&p.org, &writes).await.map_err(|e| match e {
        // A parent was deleted between the check and the insert.
        StoreError::NotFound(parent)
            if batch
                .iter()
                .any(|b| b.item.as_ref().is_some_and(|i| i.parent == Some(parent))) =>
        {
            ValidationErrors::single("parent", format!("no item with id {parent}")).into()
        }
        e => ItemError::from(e),
    })?;
    Ok(())
}

/// Creates an item for a client; returns it and, for an API key, its token (shown only this
/// once).
pub async fn create(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<(Item, Option<String>), ItemError> {
    create_as(rn, principal, input, scope, Origin::Client).await
}

/// [`create`], as the server on the principal's behalf: server-owned fields may be set.
pub async fn create_by_server(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<(Item, Option<String>), ItemError> {
    create_as(rn, principal, input, scope, Origin::Server).await
}

async fn create_as(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
    origin: Origin,
) -> Result<(Item, Option<String>), ItemError> {
    let mut prepared = prepare_create(rn, principal, input, scope, origin).await?;
    let item = prepared.item.clone().expect("a created item");
    let secret = prepared.secret.take();
    commit(rn, principal, vec![prepared]).await?;
    Ok((item, secret))
}

/// Checks a new item: the caller's right to create it, its name, attributes, references,
/// parent and what its type's behaviour checks.
pub async fn prepare_create(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
    origin: Origin,
) -> Result<Prepared, ItemError> {
    let t = type_in_scope(rn, &input.type_name, scope)?;
    if origin == Origin::Client
        && let Some(why) = rn.behaviours.of(&t.name).made_by_server()
    {
        return Err(ValidationErrors::single("type", why).into());
    }
    prepare_new(rn, principal, input, scope, origin).await
}

/// [`prepare_create`] for a type whose items clients may not put in the store: a
/// module-bound type's, which its extension then stores (see [`crate::extensions::source`]).
pub(crate) async fn prepare_new(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
    origin: Origin,
) -> Result<Prepared, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let t = type_in_scope(rn, &input.type_name, scope)?;
    let behaviour = rn.behaviours.of(&t.name);
    let p = principal;
    if !rn
        .may(
            &rules,
            p,
            Permission::Create,
            &t.name,
            p.account,
            input.parent,
        )
        .await?
    {
        return Err(denied(p, format!("create {} items here", t.name)));
    }
    let mut errors = ValidationErrors::default();
    if let Err(e) = validate_name(&input.name) {
        errors.0.extend(e.0);
    }
    let mut given = input.attributes;
    let write_only = behaviour.take_write_only(&mut given);
    if origin == Origin::Client {
        refuse_managed(t, &mut given, None, &mut errors);
    }
    let attributes = match validate_new(t, &given) {
        Ok(a) => a,
        Err(e) => {
            errors.0.extend(e.0);
            given.clone()
        }
    };
    let at = now();
    let mut item = Item {
        id: Uuid::now_v7(),
        type_name: t.name.clone(),
        name: input.name,
        parent: input.parent,
        org: p.org.clone(),
        owner: p.account,
        attributes,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    behaviour.stamp(p, None, &mut item);
    check_references(rn, &rules, p, t, &item.attributes, None, &mut errors).await?;
    check_parent(rn, &rules, p, item.parent, &mut errors).await?;
    super::depth::check(rn, &p.org, item.parent, None, &mut errors).await?;
    let pending = Pending {
        rn,
        rules: &rules,
        principal: p,
        origin,
        before: None,
        item: &item,
        write_only: &write_only,
    };
    behaviour.check(&pending, &mut errors).await?;
    errors.into_result(())?;
    let effects = behaviour.effects(&pending).await?;
    let mut writes = vec![Write::Create(item.clone())];
    writes.extend(effects.writes);
    Ok(Prepared {
        writes,
        types: vec![item.type_name.clone()],
        item: Some(item),
        secret: effects.secret,
    })
}

/// The item, if it exists in the caller's org, the caller may read it and (with `scope`) it
/// is of that type.
pub async fn get(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    get_with(rn, &rules, principal, id, scope).await
}

/// [`get`], with the org's rules already at hand.
async fn get_with(
    rn: &Realnet,
    rules: &AccessRules,
    principal: &Principal,
    id: Uuid,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    match readable(rn, rules, principal, id).await? {
        Some(item) if scope.is_none_or(|s| rn.types.is_a(&item.type_name, s)) => Ok(item),
        _ => Err(ItemError::NotFound(id)),
    }
}

/// The item, readable as [`get`] says, if the caller may also do `wanted` to it.
async fn get_for(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    id: Uuid,
    scope: Option<&str>,
    wanted: Permission,
) -> Result<Item, ItemError> {
    let item = get_with(rn, rules, p, id, scope).await?;
    if !rn
        .may(rules, p, wanted, &item.type_name, item.owner, Some(id))
        .await?
    {
        return Err(denied(p, format!("{} item {id}", wanted.as_str())));
    }
    Ok(item)
}

/// Applies a client's `change`. With `if_match`, the item must still be at that version (else
/// `VersionConflict`); without, the change is retried on concurrent writes.
pub async fn update(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    change: Change,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    update_as(rn, principal, id, change, if_match, scope, Origin::Client).await
}

/// [`update`], as the server on the principal's behalf: server-owned fields may be set.
pub async fn update_by_server(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    change: Change,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    update_as(rn, principal, id, change, if_match, scope, Origin::Server).await
}

async fn update_as(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    change: Change,
    if_match: Option<i64>,
    scope: Option<&str>,
    origin: Origin,
) -> Result<Item, ItemError> {
    let mut attempts = 0;
    loop {
        let prepared = prepare_update(rn, principal, id, &change, if_match, scope, origin).await?;
        let next = prepared.item.clone().expect("an updated item");
        attempts += 1;
        match commit(rn, principal, vec![prepared]).await {
            Ok(()) => return Ok(next),
            // Without If-Match the caller asked for no particular version: read again.
            Err(ItemError::Store(StoreError::VersionConflict { .. }))
                if if_match.is_none() && attempts < UPDATE_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
}

/// Checks a change: the caller's rights, the version, and the item as it will be.
pub async fn prepare_update(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    change: &Change,
    if_match: Option<i64>,
    scope: Option<&str>,
    origin: Origin,
) -> Result<Prepared, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let current = get_for(rn, &rules, principal, id, scope, Permission::Update).await?;
    let (next, write_only) =
        next_version(rn, &rules, principal, &current, change, if_match, origin).await?;
    let pending = Pending {
        rn,
        rules: &rules,
        principal,
        origin,
        before: Some(&current),
        item: &next,
        write_only: &write_only,
    };
    let effects = rn.behaviours.of(&next.type_name).effects(&pending).await?;
    let mut writes = vec![Write::Update {
        item: next.clone(),
        expected_version: current.version,
    }];
    writes.extend(effects.writes);
    Ok(Prepared {
        writes,
        types: vec![next.type_name.clone()],
        item: Some(next),
        secret: effects.secret,
    })
}

/// Refuses, as [`update`] would, a caller that may read `item` but not change it.
pub async fn check_update(rn: &Realnet, p: &Principal, item: &Item) -> Result<(), ItemError> {
    let rules = rn.access_rules(&p.org).await?;
    let wanted = Permission::Update;
    if !rn
        .may(
            &rules,
            p,
            wanted,
            &item.type_name,
            item.owner,
            Some(item.id),
        )
        .await?
    {
        return Err(denied(p, format!("update item {}", item.id)));
    }
    Ok(())
}

/// The item `current` becomes by `change`, fully checked, if it is still at `if_match` (when
/// given); and the write-only attributes sent. The caller's right to change `current` is
/// checked before.
pub(crate) async fn next_version(
    rn: &Realnet,
    rules: &AccessRules,
    principal: &Principal,
    current: &Item,
    change: &Change,
    if_match: Option<i64>,
    origin: Origin,
) -> Result<(Item, Map<String, Value>), ItemError> {
    check_version(current, if_match)?;
    changed(rn, rules, principal, current, change, origin).await
}

/// Refuses a change based on another version than the current one.
pub(crate) fn check_version(current: &Item, if_match: Option<i64>) -> Result<(), StoreError> {
    match if_match {
        Some(v) if v != current.version => Err(StoreError::VersionConflict {
            id: current.id,
            expected: v,
            actual: current.version,
        }),
        _ => Ok(()),
    }
}

/// The item as it will be after `change`, fully checked, and the write-only attributes sent.
async fn changed(
    rn: &Realnet,
    rules: &AccessRules,
    principal: &Principal,
    current: &Item,
    change: &Change,
    origin: Origin,
) -> Result<(Item, Map<String, Value>), ItemError> {
    let t = rn.types.get(&current.type_name).ok_or_else(|| {
        ItemError::Store(StoreError::Backend(format!(
            "stored item {} has unknown type {}",
            current.id, current.type_name
        )))
    })?;
    let behaviour = rn.behaviours.of(&t.name);
    let mut errors = ValidationErrors::default();
    let mut write_only = Map::new();
    let client = origin == Origin::Client;
    let (name, parent, attributes) = match change {
        Change::Patch {
            name,
            parent,
            attributes,
        } => (
            name.clone().unwrap_or_else(|| current.name.clone()),
            parent.unwrap_or(current.parent),
            match attributes {
                Some(patch) => {
                    let mut patch = patch.clone();
                    write_only = behaviour.take_write_only(&mut patch);
                    if client {
                        refuse_managed(t, &mut patch, Some(&current.attributes), &mut errors);
                    }
                    validate_merge(t, &current.attributes, &patch)
                }
                None => Ok(current.attributes.clone()),
            },
        ),
        Change::Replace {
            name,
            parent,
            attributes,
        } => {
            let mut attributes = attributes.clone();
            write_only = behaviour.take_write_only(&mut attributes);
            if client {
                refuse_managed(t, &mut attributes, Some(&current.attributes), &mut errors);
                keep_managed(t, &current.attributes, &mut attributes);
            }
            (name.clone(), *parent, validate_new(t, &attributes))
        }
    };
    if let Err(e) = validate_name(&name) {
        errors.0.extend(e.0);
    }
    let attributes = match attributes {
        Ok(a) => a,
        Err(e) => {
            errors.0.extend(e.0);
            current.attributes.clone()
        }
    };
    let before = Some(&current.attributes);
    check_references(rn, rules, principal, t, &attributes, before, &mut errors).await?;
    let moved = parent != current.parent;
    if moved {
        check_parent(rn, rules, principal, parent, &mut errors).await?;
        super::depth::check(rn, &principal.org, parent, Some(current.id), &mut errors).await?;
    }
    let mut next = Item {
        name,
        parent,
        attributes,
        version: current.version + 1,
        updated_at: now().max(current.updated_at),
        ..current.clone()
    };
    behaviour.stamp(principal, Some(current), &mut next);
    let pending = Pending {
        rn,
        rules,
        principal,
        origin,
        before: Some(current),
        item: &next,
        write_only: &write_only,
    };
    behaviour.check(&pending, &mut errors).await?;
    errors.into_result(())?;
    if moved {
        check_move(rn, rules, principal, current, parent).await?;
    }
    Ok((next, write_only))
}

/// A move needs `create` where the item goes, and may not put it under itself.
async fn check_move(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    current: &Item,
    parent: Option<Uuid>,
) -> Result<(), ItemError> {
    if !rn
        .may(
            rules,
            p,
            Permission::Create,
            &current.type_name,
            current.owner,
            parent,
        )
        .await?
    {
        let place = parent.map_or("the root".to_string(), |id| format!("item {id}"));
        return Err(denied(
            p,
            format!(
                "move item {} under {place}: that needs create there",
                current.id
            ),
        ));
    }
    if let Some(to) = parent
        && (to == current.id
            || rn
                .store
                .ancestors(&p.org, to, rn.config.max_depth)
                .await?
                .contains(&current.id))
    {
        return Err(ItemError::Cycle(format!(
            "cannot move item {} under {to}: that is the item itself or one of its descendants",
            current.id
        )));
    }
    Ok(())
}

pub async fn delete(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    recursive: bool,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<(), ItemError> {
    let prepared = prepare_delete(rn, principal, id, recursive, if_match, scope).await?;
    commit(rn, principal, vec![prepared]).await
}

/// Checks a delete: the caller's rights and the version. A recursive delete checks `delete`
/// on every item it would remove (and what each item's behaviour asks more) and removes all
/// of them or none; each removed item's behaviour adds what goes with it (an account's tokens
/// and password).
pub async fn prepare_delete(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    recursive: bool,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<Prepared, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let current = get_for(rn, &rules, principal, id, scope, Permission::Delete).await?;
    check_version(&current, if_match)?;
    let doomed = if recursive {
        subtree(rn, &current).await?
    } else {
        vec![current]
    };
    // The walk knows each item's lineage below the root; only the root's ancestors are read,
    // and only if a rule on an item could grant the delete.
    let wanted = Permission::Delete;
    let above_root = if doomed.len() > 1 && rules.needs_lineage(principal, wanted) {
        rn.store
            .ancestors(&principal.org, id, rn.config.max_depth)
            .await?
    } else {
        Vec::new()
    };
    let parents: std::collections::HashMap<Uuid, Uuid> = doomed
        .iter()
        .skip(1)
        .filter_map(|i| Some((i.id, i.parent?)))
        .collect();
    for item in doomed.iter().skip(1) {
        let mut lineage = vec![item.id];
        while let Some(parent) = lineage.last().and_then(|l| parents.get(l)) {
            lineage.push(*parent);
        }
        lineage.extend(&above_root);
        let types = (&rn.types, &rn.behaviours);
        if !rules.allows(
            principal,
            wanted,
            types,
            &item.type_name,
            item.owner,
            &lineage,
        ) {
            return Err(denied(
                principal,
                format!(
                    "delete item {} (under {id}), so nothing was deleted",
                    item.id
                ),
            ));
        }
    }
    for item in &doomed {
        rn.behaviours
            .of(&item.type_name)
            .check_delete(principal, &rules, item)?;
    }
    // Deepest first, each on its own: an item added meanwhile makes the delete refused, never
    // removed unchecked.
    let mut writes = Vec::new();
    let mut types = Vec::new();
    for item in doomed.iter().rev() {
        writes.extend(rn.behaviours.of(&item.type_name).on_delete(item));
        writes.push(Write::Delete {
            id: item.id,
            expected_version: item.version,
        });
        types.push(item.type_name.clone());
    }
    Ok(Prepared {
        writes,
        types,
        item: None,
        secret: None,
    })
}

/// `root` and all its descendants, parents before their children.
async fn subtree(rn: &Realnet, root: &Item) -> Result<Vec<Item>, ItemError> {
    let mut all = vec![root.clone()];
    let mut next = 0;
    while next < all.len() {
        let parent = all[next].id;
        next += 1;
        let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query parses");
        query.parent = Some(ParentFilter::Id(parent));
        query.readable = Readable::All;
        query.limit = crate::query::MAX_LIMIT;
        loop {
            let page = rn.store.query(&root.org, &query).await?;
            // The rights are checked against where each item is now: a child moved out a
            // moment ago is not deleted with what it has left.
            all.extend(crate::store::current(&*rn.store, &root.org, &query, page.items).await?);
            if all.len() > MAX_DELETE {
                return Err(ItemError::Store(StoreError::TooLarge(format!(
                    "item {} has more than {MAX_DELETE} descendants: delete some of its children first",
                    root.id
                ))));
            }
            match page.next {
                Some(p) => query.after = Some(p),
                None => break,
            }
        }
    }
    Ok(all)
}

/// One page of the items in the caller's org that match `query` and that the caller may read;
/// the store applies the access filter inside the query, so pages stay full.
pub async fn query(
    rn: &Realnet,
    principal: &Principal,
    query: &ItemQuery,
) -> Result<Page, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let mut query = query.clone();
    query.readable = rules.readable(principal, &rn.types);
    Ok(rn.store.query(&principal.org, &query).await?)
}
