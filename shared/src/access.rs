//! Access rules: who (an account, a group, every member of the org, any authenticated caller,
//! the owner of an item, or the public) may do what (read, create, update, delete, admin) on a
//! type and its subtypes or on an item and its descendants. Rules are `Acl` items of the org;
//! there are no deny rules, so anything no rule grants is refused. Org admins may do
//! everything in their org. Writing the identity types (those whose behaviour guards identity:
//! `Org`, `Account`, `Group`, `ApiKey`, `Acl`) needs an org admin or an `admin` rule whose
//! target is such a type itself: never a rule on an item subtree, an owner rule or a rule on a
//! base type like `Item`, so that no member can make themself an admin.

use uuid::Uuid;

use crate::auth::Principal;
use crate::item::Item;
use crate::query::Readable;
use crate::types::TypeRegistry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Create,
    Update,
    Delete,
    /// Calling an extension's handlers (rules on the `Extension` type).
    Call,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Create,
        Permission::Update,
        Permission::Delete,
        Permission::Call,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Create => "create",
            Permission::Update => "update",
            Permission::Delete => "delete",
            Permission::Call => "call",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    Public,
    Authenticated,
    Members,
    /// The owner of the item at hand.
    Owner,
    Account(Uuid),
    Group(Uuid),
}

impl Grantee {
    /// Parses an `Acl` item's `principal` attribute.
    pub fn parse(s: &str) -> Option<Grantee> {
        Some(match s {
            "public" => Grantee::Public,
            "authenticated" => Grantee::Authenticated,
            "members" => Grantee::Members,
            "owner" => Grantee::Owner,
            _ => match s.split_once(':')? {
                ("account", id) => Grantee::Account(Uuid::parse_str(id).ok()?),
                ("group", id) => Grantee::Group(Uuid::parse_str(id).ok()?),
                _ => return None,
            },
        })
    }

    /// Whether the rule is for `p` without looking at an item (owners need the item).
    fn includes(&self, p: &Principal) -> bool {
        match self {
            Grantee::Public => true,
            // Callers act only in their own org, so any authenticated caller of this org's
            // rules is a member of it.
            Grantee::Authenticated | Grantee::Members => p.account.is_some(),
            Grantee::Owner => false,
            Grantee::Account(a) => p.account == Some(*a),
            Grantee::Group(g) => p.groups.contains(g),
        }
    }
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A type and its subtypes.
    Type(String),
    /// An item and its descendants.
    Item(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub grantee: Grantee,
    pub permissions: Vec<Permission>,
    pub target: Target,
}

impl AccessRule {
    /// The rule an `Acl` item states. Its attributes were checked when it was written (see
    /// [`check_acl`]); an item that does not state a rule grants nothing.
    pub fn from_item(item: &Item) -> Option<AccessRule> {
        let a = &item.attributes;
        let grantee = Grantee::parse(a.get("principal")?.as_str()?)?;
        let permissions = a
            .get("permissions")?
            .as_array()?
            .iter()
            .map(|p| p.as_str().and_then(Permission::parse))
            .collect::<Option<Vec<_>>>()?;
        let target = match (a.get("target_type"), a.get("target_item")) {
            (Some(t), None) => Target::Type(t.as_str()?.to_string()),
            (None, Some(i)) => Target::Item(Uuid::parse_str(i.as_str()?).ok()?),
            _ => return None,
        };
        Some(AccessRule {
            grantee,
            permissions,
            target,
        })
    }

    fn grants(&self, wanted: Permission) -> bool {
        self.permissions
            .iter()
            .any(|p| *p == wanted || *p == Permission::Admin)
    }
}

/// What is wrong with an `Acl` item's attributes, if anything; checked on every write so that
/// every stored `Acl` item states a rule.
pub fn check_acl(
    registry: &TypeRegistry,
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    match attributes.get("permissions").and_then(|p| p.as_array()) {
        Some(list)
            if !list.is_empty()
                && list
                    .iter()
                    .all(|p| p.as_str().and_then(Permission::parse).is_some()) => {}
        _ => errors.push((
            "permissions",
            "must be a non-empty list of read, create, update, delete, admin".to_string(),
        )),
    }
    match (attributes.get("target_type"), attributes.get("target_item")) {
        (Some(t), None) => {
            if let Some(name) = t.as_str()
                && registry.get(name).is_none()
            {
                errors.push(("target_type", format!("unknown type {name:?}")));
            }
        }
        (None, Some(_)) => {}
        _ => errors.push((
            "target_type",
            "give exactly one of target_type and target_item".to_string(),
        )),
    }
    errors
}

/// The rules of one org.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: Vec<AccessRule>,
}

/// What the rules need to know of types: inheritance, and which types hold identities (whose
/// writes need org-wide admin rights). The type behaviours answer the second.
pub trait TypeFacts: Copy {
    fn is_a(&self, type_name: &str, base: &str) -> bool;
    fn guards_identity(&self, type_name: &str) -> bool;
}

impl AccessRules {
    pub fn new(rules: Vec<AccessRule>) -> Self {
        AccessRules { rules }
    }

    fn for_principal<'a>(
        &'a self,
        p: &'a Principal,
        wanted: Permission,
    ) -> impl Iterator<Item = &'a AccessRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.grants(wanted) && r.grantee.includes(p))
    }

    /// Which items `p` may read, as a filter the store applies inside its query.
    pub fn readable(&self, p: &Principal, registry: &TypeRegistry) -> Readable {
        if p.admin {
            return Readable::All;
        }
        let mut types: Vec<String> = Vec::new();
        let mut subtrees = Vec::new();
        for rule in self.for_principal(p, Permission::Read) {
            match &rule.target {
                Target::Type(t) => {
                    for sub in registry.subtypes(t) {
                        if !types.contains(sub) {
                            types.push(sub.clone());
                        }
                    }
                }
                Target::Item(id) => subtrees.push(*id),
            }
        }
        let mut owned_types: Vec<String> = Vec::new();
        if p.account.is_some() {
            for rule in self
                .rules
                .iter()
                .filter(|r| r.grantee == Grantee::Owner && r.grants(Permission::Read))
            {
                if let Target::Type(t) = &rule.target {
                    for sub in registry.subtypes(t) {
                        if !owned_types.contains(sub) {
                            owned_types.push(sub.clone());
                        }
                    }
                }
            }
        }
        Readable::Only {
            types,
            owner: p.account.filter(|_| !owned_types.is_empty()),
            owned_types,
            subtrees,
        }
    }

    /// Whether `p` may do `wanted` on an item of `type_name` owned by `owner`. `lineage` is
    /// the item and its ancestors (for a new item: its parent and the parent's ancestors);
    /// it is needed only when [`AccessRules::needs_lineage`] says so.
    pub fn allows(
        &self,
        p: &Principal,
        wanted: Permission,
        types: impl TypeFacts,
        type_name: &str,
        owner: Option<Uuid>,
        lineage: &[Uuid],
    ) -> bool {
        if p.admin {
            return true;
        }
        let writes = !matches!(wanted, Permission::Read | Permission::Call);
        if writes && types.guards_identity(type_name) {
            // Org-wide: only an admin rule on an identity type itself.
            return self.rules.iter().any(|r| {
                r.grants(Permission::Admin)
                    && r.grantee.includes(p)
                    && matches!(&r.target, Target::Type(t)
                        if types.is_a(type_name, t) && types.guards_identity(t))
            });
        }
        let is_owner = owner.is_some() && owner == p.account;
        self.rules.iter().any(|r| {
            r.grants(wanted)
                && (r.grantee.includes(p) || (r.grantee == Grantee::Owner && is_owner))
                && match &r.target {
                    Target::Type(t) => types.is_a(type_name, t),
                    Target::Item(id) => lineage.contains(id),
                }
        })
    }

    /// The rules, for checking that a new rule grants no more than its author holds.
    pub fn rules(&self) -> &[AccessRule] {
        &self.rules
    }

    /// Whether any rule grants the public anything.
    pub fn grants_public(&self) -> bool {
        self.rules.iter().any(|r| r.grantee == Grantee::Public)
    }

    /// Whether an item-targeted rule could grant `p` the permission, so that the item's
    /// ancestors must be looked up.
    pub fn needs_lineage(&self, p: &Principal, wanted: Permission) -> bool {
        !p.admin
            && self.rules.iter().any(|r| {
                matches!(r.target, Target::Item(_))
                    && r.grants(wanted)
                    && (r.grantee.includes(p) || r.grantee == Grantee::Owner)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(account: Uuid, groups: Vec<Uuid>) -> Principal {
        Principal {
            account: Some(account),
            groups,
            ..Principal::public("default")
        }
    }

    fn rule(grantee: Grantee, permissions: &[Permission], target: Target) -> AccessRule {
        AccessRule {
            grantee,
            permissions: permissions.to_vec(),
            target,
        }
    }

    #[test]
    fn default_deny_and_grants_by_type_group_owner_and_item() {
        let registry = TypeRegistry::with_crm();
        let (alice, bob, group, folder) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let rules = AccessRules::new(vec![
            rule(
                Grantee::Members,
                &[Permission::Read],
                Target::Type("Resource".into()),
            ),
            rule(
                Grantee::Owner,
                &[Permission::Update],
                Target::Type("Item".into()),
            ),
            rule(
                Grantee::Group(group),
                &[Permission::Delete],
                Target::Item(folder),
            ),
            rule(
                Grantee::Members,
                &[Permission::Create],
                Target::Type("Item".into()),
            ),
        ]);
        let a = member(alice, vec![group]);
        let b = member(bob, vec![]);
        let public = Principal::public("default");
        let behaviours = crate::start::core_behaviours(&registry);
        let allows = |p: &Principal, perm, t: &str, owner, lineage: &[Uuid]| {
            rules.allows(p, perm, (&registry, &behaviours), t, owner, lineage)
        };

        assert!(allows(&a, Permission::Read, "Company", None, &[]));
        assert!(!allows(&public, Permission::Read, "Company", None, &[]));
        assert!(!allows(&a, Permission::Read, "Account", None, &[]));
        assert!(allows(&a, Permission::Update, "Company", Some(alice), &[]));
        assert!(!allows(&b, Permission::Update, "Company", Some(alice), &[]));
        assert!(allows(&a, Permission::Delete, "Folder", None, &[folder]));
        assert!(!allows(&b, Permission::Delete, "Folder", None, &[folder]));
        assert!(!allows(&a, Permission::Delete, "Folder", None, &[]));
        // A rule on Item does not let a member write identity types.
        assert!(allows(&a, Permission::Create, "Company", None, &[]));
        assert!(!allows(&a, Permission::Create, "Acl", None, &[]));
        assert!(!allows(&a, Permission::Update, "Account", Some(alice), &[]));
        assert!(rules.needs_lineage(&a, Permission::Delete));
        assert!(!rules.needs_lineage(&b, Permission::Read));
    }

    #[test]
    fn admin_over_identity_types_is_org_wide() {
        let registry = TypeRegistry::with_crm();
        let behaviours = crate::start::core_behaviours(&registry);
        let (alice, folder) = (Uuid::now_v7(), Uuid::now_v7());
        let a = member(alice, vec![]);
        let everything_but_identity = AccessRules::new(vec![
            rule(
                Grantee::Owner,
                &[Permission::Admin],
                Target::Type("Item".into()),
            ),
            rule(
                Grantee::Members,
                &[Permission::Admin],
                Target::Type("Item".into()),
            ),
            rule(
                Grantee::Account(alice),
                &[Permission::Admin],
                Target::Item(folder),
            ),
        ]);
        let on_accounts = AccessRules::new(vec![rule(
            Grantee::Account(alice),
            &[Permission::Admin],
            Target::Type("Account".into()),
        )]);
        for t in ["Account", "Acl", "Group", "ApiKey", "Org"] {
            for perm in [Permission::Create, Permission::Update, Permission::Delete] {
                assert!(
                    !everything_but_identity.allows(
                        &a,
                        perm,
                        (&registry, &behaviours),
                        t,
                        Some(alice),
                        &[folder]
                    ),
                    "{t} {perm:?}"
                );
            }
        }
        assert!(everything_but_identity.allows(
            &a,
            Permission::Delete,
            (&registry, &behaviours),
            "Company",
            None,
            &[]
        ));
        assert!(on_accounts.allows(
            &a,
            Permission::Create,
            (&registry, &behaviours),
            "Account",
            None,
            &[]
        ));
        assert!(!on_accounts.allows(
            &a,
            Permission::Create,
            (&registry, &behaviours),
            "Acl",
            None,
            &[]
        ));
    }

    #[test]
    fn readable_is_a_filter_of_types_owner_and_subtrees() {
        let registry = TypeRegistry::with_crm();
        let alice = Uuid::now_v7();
        let root = Uuid::now_v7();
        let rules = AccessRules::new(vec![
            rule(
                Grantee::Members,
                &[Permission::Read],
                Target::Type("Company".into()),
            ),
            rule(
                Grantee::Owner,
                &[Permission::Admin],
                Target::Type("Item".into()),
            ),
            rule(
                Grantee::Account(alice),
                &[Permission::Read],
                Target::Item(root),
            ),
        ]);
        match rules.readable(&member(alice, vec![]), &registry) {
            Readable::Only {
                types,
                owner,
                owned_types,
                subtrees,
            } => {
                assert_eq!(types, vec!["Company".to_string()]);
                assert_eq!(owner, Some(alice));
                assert!(owned_types.contains(&"Deal".to_string()));
                assert_eq!(subtrees, vec![root]);
            }
            Readable::All => panic!("a member does not read everything"),
        }
        assert_eq!(
            rules.readable(&Principal::public("default"), &registry),
            Readable::Only {
                types: vec![],
                owner: None,
                owned_types: vec![],
                subtrees: vec![]
            }
        );
    }

    #[test]
    fn acl_attributes_are_checked() {
        let registry = TypeRegistry::with_crm();
        let check = |v: serde_json::Value| {
            check_acl(&registry, v.as_object().expect("object"))
                .into_iter()
                .map(|(f, _)| f)
                .collect::<Vec<_>>()
        };
        assert!(
            check(serde_json::json!({"permissions": ["read"], "target_type": "Item"})).is_empty()
        );
        assert_eq!(
            check(serde_json::json!({"permissions": ["fly"], "target_type": "Item"})),
            vec!["permissions"]
        );
        assert_eq!(
            check(serde_json::json!({"permissions": ["read"], "target_type": "Nope"})),
            vec!["target_type"]
        );
        assert_eq!(
            check(serde_json::json!({"permissions": ["read"]})),
            vec!["target_type"]
        );
    }
}
