//! The item operations behind the API and the CLI: they check input against the type registry
//! and the store (references, parents, cycles, versions) and then write through
//! [`ItemStore::apply`](crate::store::ItemStore::apply). Every operation runs as a
//! [`Principal`] and stays inside its org.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::attributes::{ValidationErrors, validate_merge, validate_name, validate_new};
use super::{Item, now};
use crate::auth::Principal;
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
    #[error(transparent)]
    Store(StoreError),
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

/// Checks that every `ref`/`file` attribute that is new or changed since `before` names an
/// existing item of the right type in the caller's org. Items of other orgs are reported
/// exactly like missing ones. Unchanged references are not checked again, so an item whose
/// target was deleted can still be edited.
async fn check_references(
    rn: &Realnet,
    org: &str,
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
        match rn.store.get(org, id).await? {
            Some(item) if rn.types.is_a(&item.type_name, target) => {}
            _ => errors.add(&field.name, format!("no {target} item with id {id}")),
        }
    }
    Ok(())
}

async fn check_parent(
    rn: &Realnet,
    org: &str,
    parent: Option<Uuid>,
    errors: &mut ValidationErrors,
) -> Result<(), StoreError> {
    if let Some(p) = parent
        && rn.store.get(org, p).await?.is_none()
    {
        errors.add("parent", format!("no item with id {p}"));
    }
    Ok(())
}

pub async fn create(
    rn: &Realnet,
    principal: &Principal,
    input: NewItem,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    let t = type_in_scope(rn, &input.type_name, scope)?;
    let mut errors = ValidationErrors::default();
    if let Err(e) = validate_name(&input.name) {
        errors.0.extend(e.0);
    }
    let attributes = match validate_new(t, &input.attributes) {
        Ok(a) => a,
        Err(e) => {
            errors.0.extend(e.0);
            input.attributes.clone()
        }
    };
    check_references(rn, &principal.org, t, &attributes, None, &mut errors).await?;
    check_parent(rn, &principal.org, input.parent, &mut errors).await?;
    errors.into_result(())?;

    let at = now();
    let item = Item {
        id: Uuid::now_v7(),
        type_name: t.name.clone(),
        name: input.name,
        parent: input.parent,
        org: principal.org.clone(),
        owner: principal.account,
        attributes,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    rn.store
        .apply(&principal.org, &[Write::Create(item.clone())])
        .await
        .map_err(|e| match e {
            // The parent was deleted between the check and the insert.
            StoreError::NotFound(p) if Some(p) == item.parent => {
                ValidationErrors::single("parent", format!("no item with id {p}")).into()
            }
            e => ItemError::from(e),
        })?;
    Ok(item)
}

/// The item, if it exists in the caller's org and (with `scope`) is of that type.
pub async fn get(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    scope: Option<&str>,
) -> Result<Item, ItemError> {
    match rn.store.get(&principal.org, id).await? {
        Some(item) if scope.is_none_or(|s| rn.types.is_a(&item.type_name, s)) => Ok(item),
        _ => Err(ItemError::NotFound(id)),
    }
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
        let current = get(rn, principal, id, scope).await?;
        check_version(&current, if_match)?;
        let next = changed(rn, principal, &current, &change).await?;
        let write = Write::Update {
            item: next.clone(),
            expected_version: current.version,
        };
        attempts += 1;
        match rn.store.apply(&principal.org, &[write]).await {
            Ok(()) => return Ok(next),
            // Without If-Match the caller asked for no particular version: read again.
            Err(StoreError::VersionConflict { .. })
                if if_match.is_none() && attempts < UPDATE_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
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

/// The item as it will be after `change`, fully checked.
async fn changed(
    rn: &Realnet,
    principal: &Principal,
    current: &Item,
    change: &Change,
) -> Result<Item, ItemError> {
    let t = rn.types.get(&current.type_name).ok_or_else(|| {
        ItemError::Store(StoreError::Backend(format!(
            "stored item {} has unknown type {}",
            current.id, current.type_name
        )))
    })?;
    let (name, parent, attributes) = match change {
        Change::Patch {
            name,
            parent,
            attributes,
        } => (
            name.clone().unwrap_or_else(|| current.name.clone()),
            parent.unwrap_or(current.parent),
            match attributes {
                Some(patch) => validate_merge(t, &current.attributes, patch),
                None => Ok(current.attributes.clone()),
            },
        ),
        Change::Replace {
            name,
            parent,
            attributes,
        } => (name.clone(), *parent, validate_new(t, attributes)),
    };
    let mut errors = ValidationErrors::default();
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
    check_references(rn, &principal.org, t, &attributes, before, &mut errors).await?;
    if parent != current.parent {
        check_parent(rn, &principal.org, parent, &mut errors).await?;
    }
    errors.into_result(())?;
    if parent != current.parent
        && let Some(p) = parent
        && (p == current.id
            || rn
                .store
                .ancestors(&principal.org, p)
                .await?
                .contains(&current.id))
    {
        return Err(ItemError::Cycle(format!(
            "cannot move item {} under {p}: that is the item itself or one of its descendants",
            current.id
        )));
    }
    Ok(Item {
        name,
        parent,
        attributes,
        version: current.version + 1,
        updated_at: now().max(current.updated_at),
        ..current.clone()
    })
}

pub async fn delete(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
    recursive: bool,
    if_match: Option<i64>,
    scope: Option<&str>,
) -> Result<(), ItemError> {
    let current = get(rn, principal, id, scope).await?;
    check_version(&current, if_match)?;
    rn.store
        .apply(&principal.org, &[Write::Delete { id, recursive }])
        .await?;
    Ok(())
}

/// One page of items in the caller's org.
pub async fn query(
    rn: &Realnet,
    principal: &Principal,
    query: &ItemQuery,
) -> Result<Page, ItemError> {
    Ok(rn.store.query(&principal.org, query).await?)
}
