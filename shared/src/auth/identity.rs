//! The behaviours of the identity types. Orgs, accounts, groups, API keys and access rules
//! are ordinary items, but writing them needs org-wide admin rights (see [`crate::access`]),
//! and nobody grants what they do not hold: a principal that is not an org admin may make no
//! admin, put no account in a group it is not in, change or delete no account with rights it
//! lacks, take no username another account (of any account type) holds, make
//! API keys only for itself and write only rules whose permissions it holds. An account's
//! password is write-only (hashed into the store, never an attribute), an API key's token is
//! shown once when it is created, disabling an account or changing its password revokes its
//! login tokens, an account's identity-provider issuer and subject (`idp_issuer`,
//! `idp_subject`) are linked to it in the store, unique across the installation, for
//! authorizer mode, and deleting an account or an API key revokes what it held: each lands in
//! the same transaction as the item. `Org` items are made only by setting an org up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Principal, password, token};
use crate::access::{AccessRule, AccessRules, Grantee, Target, check_acl};
use crate::context::Realnet;
use crate::item::Item;
use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::item::behaviour::{Effects, Pending, TypeBehaviour};
use crate::query::{AttrFilter, ItemQuery, Op, Scalar};
use crate::store::{StoreError, Write};
use crate::types::FieldKind;

/// The write-only attribute of `Account` items.
pub const PASSWORD: &str = "password";

pub fn is_disabled(account: &Item) -> bool {
    account
        .attributes
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The attributes that link an account to a subject of an identity provider (authorizer
/// mode): unique across the installation, kept in the store beside the account.
pub const IDP_ISSUER: &str = "idp_issuer";
pub const IDP_SUBJECT: &str = "idp_subject";

/// The identity provider's issuer and subject an account is linked to, when it names both.
pub fn idp_link(account: &Item) -> Option<(&str, &str)> {
    let a = &account.attributes;
    match (
        a.get(IDP_ISSUER).and_then(Value::as_str),
        a.get(IDP_SUBJECT).and_then(Value::as_str),
    ) {
        (Some(issuer), Some(subject)) => Some((issuer, subject)),
        _ => None,
    }
}

fn link_write(account: &Item) -> Option<Write> {
    idp_link(account).map(|(issuer, subject)| Write::LinkIdentity {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        account: account.id,
    })
}

fn unlink_write(account: &Item) -> Option<Write> {
    idp_link(account).map(|(issuer, subject)| Write::UnlinkIdentity {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        account: account.id,
    })
}

/// The groups an account is a member of (its `groups` attribute).
pub fn groups_of(account: &Item) -> Vec<Uuid> {
    account
        .attributes
        .get("groups")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn api_key_account(key: &Item) -> Option<Uuid> {
    key.attributes
        .get("account")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

pub fn api_key_expiry(key: &Item) -> Option<DateTime<Utc>> {
    key.attributes
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The account of `org` with this username (an `Account` or an item of a subtype of it); none
/// in an org that was never set up, whatever the store holds there (logins, authorizer
/// identities and job actors go through here).
pub async fn find_account(
    rn: &Realnet,
    org: &str,
    username: &str,
) -> Result<Option<Item>, StoreError> {
    if !rn.org_exists(org).await? {
        return Ok(None);
    }
    account_of_any_type(rn, org, username).await
}

/// The account of `org`, of `Account` or any of its subtypes, with this username.
async fn account_of_any_type(
    rn: &Realnet,
    org: &str,
    username: &str,
) -> Result<Option<Item>, StoreError> {
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = rn.types.subtypes("Account").to_vec();
    query.attrs = vec![AttrFilter {
        field: "username".to_string(),
        kind: FieldKind::String,
        op: Op::Eq,
        values: vec![Scalar::Text(username.to_string())],
    }];
    query.limit = 1;
    let found = crate::store::first_item(&*rn.store, org, &query).await?;
    Ok(
        crate::store::current(&*rn.store, org, &query, found.into_iter().collect())
            .await?
            .pop(),
    )
}

fn is_admin(account: &Item) -> bool {
    account.attributes.get("admin") == Some(&Value::Bool(true))
}

fn forbidden(message: String) -> ItemError {
    ItemError::Forbidden(message)
}

/// `Org` items: one per org, made when the org is set up.
pub struct OrgItems;

#[async_trait]
impl TypeBehaviour for OrgItems {
    fn made_by_server(&self) -> Option<&'static str> {
        Some("orgs are set up with `realnet org create`, not as items")
    }

    fn guards_identity(&self) -> bool {
        true
    }

    /// The `Org` item is what makes the org exist; without it nobody could log in to the org
    /// again, and the item API cannot make another.
    fn check_delete(&self, _: &Principal, _: &AccessRules, item: &Item) -> Result<(), ItemError> {
        Err(forbidden(format!(
            "item {} is the Org item of org {:?}: it cannot be deleted",
            item.id, item.org
        )))
    }

    /// The org's portfolio may have changed.
    fn after_write(&self, rn: &Realnet, org: &str) {
        rn.forget_org(org);
    }
}

/// `Account` items.
pub struct AccountItems;

impl AccountItems {
    /// Refuses a principal that is not an org admin an account with rights it does not hold.
    fn within_rights(p: &Principal, rules: &[AccessRule], account: &Item) -> Result<(), ItemError> {
        if p.admin {
            return Ok(());
        }
        let id = account.id;
        if is_admin(account) {
            return Err(forbidden(format!(
                "only an org admin may make or change an admin account ({id})"
            )));
        }
        if let Some(g) = groups_of(account).iter().find(|g| !p.groups.contains(g)) {
            return Err(forbidden(format!(
                "you may not give account {id} the rights of group {g}: you are not in it"
            )));
        }
        if Some(id) != p.account && rules.iter().any(|r| r.grantee == Grantee::Account(id)) {
            return Err(forbidden(format!(
                "account {id} has access rules of its own: only an org admin may change it"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl TypeBehaviour for AccountItems {
    fn guards_identity(&self) -> bool {
        true
    }

    fn write_only(&self) -> &'static [&'static str] {
        &[PASSWORD]
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        match w.write_only.get(PASSWORD) {
            None => {}
            Some(Value::String(p)) => {
                if let Err(m) = password::check_strength(p) {
                    errors.add(PASSWORD, m);
                }
            }
            Some(_) => errors.add(PASSWORD, "must be a string"),
        }
        let named = |f: &str| w.item.attributes.get(f).is_some_and(|v| !v.is_null());
        for (field, other) in [(IDP_ISSUER, IDP_SUBJECT), (IDP_SUBJECT, IDP_ISSUER)] {
            if named(field) && !named(other) {
                errors.add(
                    field,
                    format!("needs {other} too: an account is linked by issuer and subject"),
                );
            }
        }
        if let Some(groups) = w.changed("groups") {
            match groups.as_array() {
                Some(ids) if ids.len() <= 100 => {
                    for id in ids {
                        let group = match id.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                            Some(g) => w.rn.store.get(&w.principal.org, g).await?,
                            None => None,
                        };
                        if !group.is_some_and(|g| w.rn.types.is_a(&g.type_name, "Group")) {
                            errors.add("groups", format!("{id} is not a group of this org"));
                        }
                    }
                }
                _ => errors.add("groups", "must be a list of at most 100 group ids"),
            }
        }
        // Usernames are unique among the accounts of every account type (the store keeps
        // them unique among `Account` items only, and a job's actor is a username).
        if let Some(username) = w.changed("username").and_then(Value::as_str)
            && let Some(holder) = account_of_any_type(w.rn, &w.item.org, username).await?
            && holder.id != w.item.id
        {
            return Err(ItemError::Store(StoreError::Taken(format!(
                "the username {username:?} is taken in org {:?}",
                w.item.org
            ))));
        }
        if let Some(before) = w.before {
            AccountItems::within_rights(w.principal, w.rules.rules(), before)?;
            // Whoever sets another account's password or identity link can act as it.
            let takeover =
                w.write_only.contains_key(PASSWORD) || idp_link(before) != idp_link(w.item);
            if takeover && !w.principal.admin && w.principal.account != Some(before.id) {
                return Err(forbidden(format!(
                    "only an org admin may set another account's password or identity link ({})",
                    before.id
                )));
            }
        }
        AccountItems::within_rights(w.principal, w.rules.rules(), w.item)
    }

    async fn effects(&self, w: &Pending<'_>) -> Result<Effects, ItemError> {
        let mut effects = Effects::default();
        let new_password = match w.write_only.get(PASSWORD) {
            Some(Value::String(p)) => Some(Write::SetPassword {
                account: w.item.id,
                hash: Some(password::hash(p.clone()).await?),
            }),
            _ => None,
        };
        if let Some(before) = w.before
            && (new_password.is_some() || (is_disabled(w.item) && !is_disabled(before)))
        {
            effects.writes.push(Write::DeleteTokensOf {
                account: w.item.id,
                api_keys: false,
            });
        }
        effects.writes.extend(new_password);
        match w.before {
            None => effects.writes.extend(link_write(w.item)),
            Some(before) if idp_link(before) != idp_link(w.item) => {
                effects.writes.extend(unlink_write(before));
                effects.writes.extend(link_write(w.item));
            }
            Some(_) => {}
        }
        Ok(effects)
    }

    fn check_delete(
        &self,
        principal: &Principal,
        rules: &AccessRules,
        item: &Item,
    ) -> Result<(), ItemError> {
        AccountItems::within_rights(principal, rules.rules(), item)
    }

    fn on_delete(&self, item: &Item) -> Vec<Write> {
        vec![
            Write::DeleteTokensOf {
                account: item.id,
                api_keys: true,
            },
            Write::SetPassword {
                account: item.id,
                hash: None,
            },
        ]
        .into_iter()
        .chain(unlink_write(item))
        .collect()
    }

    fn after_write(&self, rn: &Realnet, _org: &str) {
        rn.forget_principals();
    }
}

/// `Group` items: a group's rules apply to its members while it exists.
pub struct GroupItems;

#[async_trait]
impl TypeBehaviour for GroupItems {
    fn guards_identity(&self) -> bool {
        true
    }

    fn after_write(&self, rn: &Realnet, _org: &str) {
        rn.forget_principals();
    }
}

/// `ApiKey` items: a key acts as its account, so only an org admin makes one for another
/// account, and its account never changes.
pub struct ApiKeyItems;

#[async_trait]
impl TypeBehaviour for ApiKeyItems {
    fn guards_identity(&self) -> bool {
        true
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        let account = api_key_account(w.item);
        if let Some(before) = w.before
            && api_key_account(before) != account
        {
            errors.add(
                "account",
                "an API key's account cannot change: make a new key",
            );
        }
        if !w.principal.admin && account.is_some() && account != w.principal.account {
            return Err(forbidden(
                "only an org admin may make an API key for another account".into(),
            ));
        }
        Ok(())
    }

    async fn effects(&self, w: &Pending<'_>) -> Result<Effects, ItemError> {
        let mut effects = Effects::default();
        if w.before.is_none()
            && let Some(account) = api_key_account(w.item)
        {
            let (secret, hash) = token::generate(token::API_KEY_PREFIX);
            effects.writes.push(Write::PutToken {
                hash,
                account,
                api_key: Some(w.item.id),
                expires: api_key_expiry(w.item),
            });
            effects.secret = Some(secret);
        }
        Ok(effects)
    }

    fn on_delete(&self, item: &Item) -> Vec<Write> {
        vec![Write::DeleteApiKeyToken { api_key: item.id }]
    }

    fn after_write(&self, rn: &Realnet, _org: &str) {
        rn.forget_principals();
    }
}

/// `Acl` items: every stored one states a rule, and a principal that is not an org admin
/// writes only rules whose permissions it holds itself on the rule's target.
pub struct AclItems;

#[async_trait]
impl TypeBehaviour for AclItems {
    fn guards_identity(&self) -> bool {
        true
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        for (field, message) in check_acl(&w.rn.types, &w.item.attributes) {
            errors.add(field, message);
        }
        if w.principal.admin || !errors.0.is_empty() {
            return Ok(());
        }
        let Some(rule) = AccessRule::from_item(w.item) else {
            return Ok(());
        };
        for wanted in &rule.permissions {
            let holds = match &rule.target {
                Target::Type(t) => w.holds(*wanted, t, None, None).await?,
                // A rule on an item covers everything below it, whoever owns it and of
                // whatever type: only a right on the item through an item rule (on it or
                // above it) or a rule on `Item` covers as much.
                Target::Item(id) => match w.rn.store.get(&w.principal.org, *id).await? {
                    Some(_) => w.holds(*wanted, "Item", None, Some(*id)).await?,
                    None => false,
                },
            };
            if !holds {
                return Err(forbidden(format!(
                    "you may not grant {} there: you do not hold it yourself",
                    wanted.as_str()
                )));
            }
        }
        Ok(())
    }

    fn after_write(&self, rn: &Realnet, org: &str) {
        rn.forget_rules(org);
    }
}
