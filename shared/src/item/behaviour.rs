//! Type behaviours: what is special about a type, in one place per type. The item operations
//! ([`super::ops`]) name no type; they ask the behaviours of the item's type, found by `is_a`,
//! so that a subtype defined in an initialization folder gets the behaviour of every base type
//! it has and cannot escape it. A behaviour says whether clients may create the type's items,
//! whether writing them needs org-wide admin rights, which attributes are write-only, what to
//! check beyond the type's schema, what a delete needs beyond the `delete` right, which writes
//! go with a change (in the same transaction), and what to forget once it committed. The core behaviours are registered in
//! `start::core_behaviours`; extensions add theirs beside them.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Item;
use super::ItemError;
use super::attributes::ValidationErrors;
use crate::access::{AccessRules, Permission, TypeFacts};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::store::{StoreError, Write};
use crate::types::TypeRegistry;

/// Who is writing. Both run as a principal whose rights are checked; only the server may set
/// server-owned (`managed`) fields and create the items the server alone makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client: an HTTP request, a job, a batch.
    Client,
    /// Realnet itself, on the principal's behalf: recording a job, confirming a file.
    Server,
}

/// A create or change being checked: the item as it will be, and what it was.
pub struct Pending<'a> {
    pub rn: &'a Realnet,
    pub rules: &'a AccessRules,
    pub principal: &'a Principal,
    pub origin: Origin,
    /// `None` for a new item.
    pub before: Option<&'a Item>,
    pub item: &'a Item,
    /// The write-only attributes sent with the write (taken out of `item`).
    pub write_only: &'a Map<String, Value>,
}

impl Pending<'_> {
    /// Whether the principal may do `wanted` on an item of `type_name` owned by `owner` at
    /// `at` (an item, or a new item's parent): the test of "nobody grants what they do not
    /// hold".
    pub async fn holds(
        &self,
        wanted: Permission,
        type_name: &str,
        owner: Option<Uuid>,
        at: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        self.rn
            .may(self.rules, self.principal, wanted, type_name, owner, at)
            .await
    }

    /// The attribute's value as it will be, if it changes (or is new).
    pub fn changed(&self, name: &str) -> Option<&Value> {
        let after = self.item.attributes.get(name);
        let before = self.before.and_then(|b| b.attributes.get(name));
        if after == before { None } else { after }
    }
}

/// What a write brings along: more writes for the same transaction, and a secret to show the
/// caller once (an API key's token).
#[derive(Debug, Default)]
pub struct Effects {
    pub writes: Vec<Write>,
    pub secret: Option<String>,
}

/// What is special about a type. Every method has the behaviour of an ordinary type as its
/// default.
#[async_trait]
pub trait TypeBehaviour: Send + Sync + 'static {
    /// Why clients may not create items of this type, if they may not (the server makes them).
    fn made_by_server(&self) -> Option<&'static str> {
        None
    }

    /// Whether creating, changing or deleting items of this type needs an org admin, or an
    /// `admin` rule on the type itself (never a rule on an item, an owner or a base type).
    fn guards_identity(&self) -> bool {
        false
    }

    /// Attributes a client sends but that are never stored as attributes (a password).
    fn write_only(&self) -> &'static [&'static str] {
        &[]
    }

    /// Sets server-owned attributes of the item as it will be.
    fn stamp(&self, _principal: &Principal, _before: Option<&Item>, _item: &mut Item) {}

    /// Checks what the type's schema cannot: problems with the input go to `errors` (a
    /// `422`), a right the principal lacks is an [`ItemError::Forbidden`].
    async fn check(
        &self,
        _pending: &Pending<'_>,
        _errors: &mut ValidationErrors,
    ) -> Result<(), ItemError> {
        Ok(())
    }

    /// The writes that go with creating or changing the item.
    async fn effects(&self, _pending: &Pending<'_>) -> Result<Effects, ItemError> {
        Ok(Effects::default())
    }

    /// Refuses a principal the deletion of the item, with [`ItemError::Forbidden`], where the
    /// type asks more than the `delete` right (an account with rights the deleter lacks).
    fn check_delete(
        &self,
        _principal: &Principal,
        _rules: &AccessRules,
        _item: &Item,
    ) -> Result<(), ItemError> {
        Ok(())
    }

    /// The writes that go with deleting the item.
    fn on_delete(&self, _item: &Item) -> Vec<Write> {
        Vec::new()
    }

    /// What to forget after a write to an item of this type (cached rules, principals):
    /// whatever its outcome, since a write reported failed, or left unanswered, may have
    /// committed, and forgetting too much is safe.
    fn after_write(&self, _rn: &Realnet, _org: &str) {}
}

/// The behaviours of one type: its own and its base types', in the order registered.
#[derive(Clone, Default)]
pub struct Chain(Vec<Arc<dyn TypeBehaviour>>);

impl Chain {
    pub fn made_by_server(&self) -> Option<&'static str> {
        self.0.iter().find_map(|b| b.made_by_server())
    }

    pub fn guards_identity(&self) -> bool {
        self.0.iter().any(|b| b.guards_identity())
    }

    /// Takes the write-only attributes out of `attributes`.
    pub fn take_write_only(&self, attributes: &mut Map<String, Value>) -> Map<String, Value> {
        let mut taken = Map::new();
        for name in self.0.iter().flat_map(|b| b.write_only()) {
            if let Some(v) = attributes.remove(*name) {
                taken.insert((*name).to_string(), v);
            }
        }
        taken
    }

    pub fn is_write_only(&self, name: &str) -> bool {
        self.0.iter().any(|b| b.write_only().contains(&name))
    }

    pub fn stamp(&self, principal: &Principal, before: Option<&Item>, item: &mut Item) {
        for b in &self.0 {
            b.stamp(principal, before, item);
        }
    }

    pub async fn check(
        &self,
        pending: &Pending<'_>,
        errors: &mut ValidationErrors,
    ) -> Result<(), ItemError> {
        for b in &self.0 {
            b.check(pending, errors).await?;
        }
        Ok(())
    }

    pub async fn effects(&self, pending: &Pending<'_>) -> Result<Effects, ItemError> {
        let mut all = Effects::default();
        for b in &self.0 {
            let e = b.effects(pending).await?;
            all.writes.extend(e.writes);
            all.secret = all.secret.or(e.secret);
        }
        Ok(all)
    }

    pub fn check_delete(
        &self,
        principal: &Principal,
        rules: &AccessRules,
        item: &Item,
    ) -> Result<(), ItemError> {
        self.0
            .iter()
            .try_for_each(|b| b.check_delete(principal, rules, item))
    }

    pub fn on_delete(&self, item: &Item) -> Vec<Write> {
        self.0.iter().flat_map(|b| b.on_delete(item)).collect()
    }

    pub fn after_write(&self, rn: &Realnet, org: &str) {
        for b in &self.0 {
            b.after_write(rn, org);
        }
    }
}

/// The behaviours of every loaded type.
#[derive(Clone, Default)]
pub struct Behaviours {
    by_type: HashMap<String, Chain>,
    plain: Chain,
}

impl std::fmt::Debug for Behaviours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviours").finish_non_exhaustive()
    }
}

impl Behaviours {
    /// Resolves `registered` (a behaviour per type name) for every type in `types`: a type
    /// gets the behaviour of itself and of each of its bases.
    pub fn new(types: &TypeRegistry, registered: Vec<(&str, Arc<dyn TypeBehaviour>)>) -> Self {
        let mut by_type = HashMap::new();
        for t in types.all() {
            let chain: Vec<_> = registered
                .iter()
                .filter(|(name, _)| types.is_a(&t.name, name))
                .map(|(_, b)| b.clone())
                .collect();
            if !chain.is_empty() {
                by_type.insert(t.name.clone(), Chain(chain));
            }
        }
        Behaviours {
            by_type,
            plain: Chain::default(),
        }
    }

    /// The behaviours of `type_name` (none for an ordinary type).
    pub fn of(&self, type_name: &str) -> &Chain {
        self.by_type.get(type_name).unwrap_or(&self.plain)
    }

    /// Whether `name` is write-only in any type (a job payload that names no type must not
    /// carry it).
    pub fn write_only_anywhere(&self, name: &str) -> bool {
        self.by_type.values().any(|c| c.is_write_only(name))
    }
}

impl TypeFacts for (&TypeRegistry, &Behaviours) {
    fn is_a(&self, type_name: &str, base: &str) -> bool {
        self.0.is_a(type_name, base)
    }

    fn guards_identity(&self, type_name: &str) -> bool {
        self.1.of(type_name).guards_identity()
    }
}
