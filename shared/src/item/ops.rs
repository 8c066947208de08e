//! The item operations behind the API and the CLI: they check input against the type registry
//! and the store (references, parents, cycles, versions) and then write through
//! [`ItemStore::apply`](crate::store::ItemStore::apply). Every operation runs as a
//! [`Principal`], stays inside its org and is checked against the org's access rules: an item
//! the caller may not read is reported exactly like a missing one (`404`), a write the caller
//! may not make is `403`, and a caller without credentials is told to log in (`401`).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::attributes::{ValidationErrors, validate_merge, validate_name, validate_new};
use super::{Item, now};
use crate::access::{AccessRules, Permission};
use crate::auth::{Principal, identity};
use crate::context::Realnet;
use crate::query::ItemQuery;
use crate::store::{Page, StoreError, Write};
use crate::types::TypeDef;

/// Attempts at a read-modify-write without `If-Match` before giving up on a busy item.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("no item with id {0}")]
    NotFound(Uuid),
    #[error("{0}")]
    Cycle(String),
    /// The caller has no credentials and the public may not do this.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(StoreError),
}

/// The refusal of `action` to `p`: log in first, or not allowed.
fn denied(p: &Principal, action: String) -> ItemError {
    if p.is_public() {
        ItemError::Unauthenticated(format!("log in to {action} (POST /api/auth)"))
    } else {
        ItemError::Forbidden(format!("you may not {action}"))
    }
}

/// Whether `p` may do `wanted` on an item of `type_name` owned by `owner`; `at` is the item
/// (or for a new item, its parent), whose ancestors are looked up only if a rule on an item
/// could apply.
async fn can(
    rn: &Realnet,
    rules: &AccessRules,
    p: &Principal,
    wanted: Permission,
    type_name: &str,
    owner: Option<Uuid>,
    at: Option<Uuid>,
) -> Result<bool, StoreError> {
    if rules.allows(p, wanted, &rn.types, type_name, owner, &[]) {
        return Ok(true);
    }
    match at {
        Some(id) if rules.needs_lineage(p, wanted) => {
            let mut lineage = rn.store.ancestors(&p.org, id, rn.config.max_depth).await?;
            lineage.push(id);
            Ok(rules.allows(p, wanted, &rn.types, type_name, owner, &lineage))
        }
        _ => Ok(false),
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
            if can(
                rn,
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

impl From<StoreError> for ItemError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ItemError::NotFound(id),
            e => ItemError::Store(e),
        }
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

/// A file's name is shown to whoever downloads it: it may not hide paths or unicode tricks.
fn check_file_name(rn: &Realnet, type_name: &str, name: &str, errors: &mut ValidationErrors) {
    if rn.types.is_a(type_name, "File")
        && let Err(m) = crate::blob::check_file_name(name)
    {
        errors.add("name", m);
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
    for field in t.fields.iter().filter(|f| f.kind.is_reference()) {
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

/// Creates an item; returns it and, for an API key, its token (shown only this once).
/// A checked change, ready to be written with others in one transaction by [`commit`].
#[derive(Debug)]
pub struct Prepared {
    writes: Vec<Write>,
    /// The item as it will be (none for a delete).
    pub item: Option<Item>,
    /// The item's type, to forget cached identities after the write.
    type_name: String,
    /// An API key's token, to show once.
    secret: Option<String>,
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
    for b in &batch {
        identity::after_write(rn, &b.type_name, &p.org);
    }
    Ok(())
}

/// Creates an item; returns it and, for an API key, its token (shown only this once).
pub async fn create(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<(Item, Option<String>), ItemError> {
    let mut prepared = prepare_create(rn, principal, input, scope).await?;
    let item = prepared.item.clone().expect("a created item");
    let secret = prepared.secret.take();
    commit(rn, principal, vec![prepared]).await?;
    Ok((item, secret))
}

/// Checks a new item: the caller's right to create it, its name, attributes, references and
/// parent.
pub async fn prepare_create(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<Prepared, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let t = type_in_scope(rn, &input.type_name, scope)?;
    let p = principal;
    if !can(
        rn,
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
    check_file_name(rn, &t.name, &input.name, &mut errors);
    let mut given = input.attributes;
    let password = identity::take_password(&t.name, &mut given);
    let attributes = match validate_new(t, &given) {
        Ok(a) => {
            crate::schedule::check(rn, &t.name, &a, &mut errors);
            a
        }
        Err(e) => {
            errors.0.extend(e.0);
            given.clone()
        }
    };
    check_references(rn, &rules, p, t, &attributes, None, &mut errors).await?;
    check_parent(rn, &rules, p, input.parent, &mut errors).await?;
    super::depth::check(rn, &p.org, input.parent, None, &mut errors).await?;
    identity::check(
        rn,
        &p.org,
        &t.name,
        &attributes,
        password.as_ref(),
        &mut errors,
    )
    .await?;
    errors.into_result(())?;

    let at = now();
    let item = Item {
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
    let extra = identity::on_create(&item, password).await;
    let mut writes = vec![Write::Create(item.clone())];
    writes.extend(extra.writes);
    Ok(Prepared {
        writes,
        type_name: item.type_name.clone(),
        item: Some(item),
        secret: extra.secret,
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
    if !can(rn, rules, p, wanted, &item.type_name, item.owner, Some(id)).await? {
        return Err(denied(p, format!("{} item {id}", wanted.as_str())));
    }
    Ok(item)
}

/// Applies `change`. With `if_match`, the item must still be at that version (else
/// `VersionConflict`); without, the change is retried on concurrent writes.
pub async fn update(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    change: Change,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    let mut attempts = 0;
    loop {
        let prepared = prepare_update(rn, principal, id, &change, if_match, scope).await?;
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
) -> Result<Prepared, ItemError> {
    let rules = rn.access_rules(&principal.org).await?;
    let current = get_for(rn, &rules, principal, id, scope, Permission::Update).await?;
    check_version(&current, if_match)?;
    let (next, password) = changed(rn, &rules, principal, &current, change).await?;
    let mut writes = vec![Write::Update {
        item: next.clone(),
        expected_version: current.version,
    }];
    writes.extend(identity::on_update(&current, &next, password).await);
    Ok(Prepared {
        writes,
        type_name: next.type_name.clone(),
        item: Some(next),
        secret: None,
    })
}

/// Refuses, as [`update`] would, a caller that may read `item` but not change it.
pub async fn check_update(rn: &Realnet, p: &Principal, item: &Item) -> Result<(), ItemError> {
    let rules = rn.access_rules(&p.org).await?;
    let wanted = Permission::Update;
    if !can(
        rn,
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

/// Refuses a change based on another version than the current one.
fn check_version(current: &Item, if_match: Option<i64>) -> Result<(), StoreError> {
    match if_match {
        Some(v) if v != current.version => Err(StoreError::VersionConflict {
            id: current.id,
            expected: v,
            actual: current.version,
        }),
        _ => Ok(()),
    }
}

/// The item as it will be after `change`, fully checked, and the new password of an account.
async fn changed(
    rn: &Realnet,
    rules: &AccessRules,
    principal: &Principal,
    current: &Item,
    change: &Change,
) -> Result<(Item, Option<Value>), ItemError> {
    let t = rn.types.get(&current.type_name).ok_or_else(|| {
        ItemError::Store(StoreError::Backend(format!(
            "stored item {} has unknown type {}",
            current.id, current.type_name
        )))
    })?;
    let mut password = None;
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
                    password = identity::take_password(&t.name, &mut patch);
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
            password = identity::take_password(&t.name, &mut attributes);
            (name.clone(), *parent, validate_new(t, &attributes))
        }
    };
    let mut errors = ValidationErrors::default();
    if let Err(e) = validate_name(&name) {
        errors.0.extend(e.0);
    }
    check_file_name(rn, &t.name, &name, &mut errors);
    let attributes = match attributes {
        Ok(a) => {
            crate::schedule::check(rn, &t.name, &a, &mut errors);
            a
        }
        Err(e) => {
            errors.0.extend(e.0);
            current.attributes.clone()
        }
    };
    let before = Some(&current.attributes);
    check_references(rn, rules, principal, t, &attributes, before, &mut errors).await?;
    if parent != current.parent {
        check_parent(rn, rules, principal, parent, &mut errors).await?;
        super::depth::check(rn, &principal.org, parent, Some(current.id), &mut errors).await?;
    }
    let org = &principal.org;
    identity::check(
        rn,
        org,
        &t.name,
        &attributes,
        password.as_ref(),
        &mut errors,
    )
    .await?;
    errors.into_result(())?;
    if parent != current.parent
        && let Some(p) = parent
        && (p == current.id
            || rn
                .store
                .ancestors(&principal.org, p, rn.config.max_depth)
                .await?
                .contains(&current.id))
    {
        return Err(ItemError::Cycle(format!(
            "cannot move item {} under {p}: that is the item itself or one of its descendants",
            current.id
        )));
    }
    let next = Item {
        name,
        parent,
        attributes,
        version: current.version + 1,
        updated_at: now().max(current.updated_at),
        ..current.clone()
    };
    Ok((next, password))
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

/// Checks a delete: the caller's rights and the version.
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
    let mut writes = vec![Write::Delete { id, recursive }];
    writes.extend(identity::on_delete(&current));
    Ok(Prepared {
        writes,
        type_name: current.type_name,
        item: None,
        secret: None,
    })
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
