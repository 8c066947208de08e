//! What writing an identity item also does. Accounts, groups, API keys and access rules are
//! ordinary items, but an account's password is write-only (hashed into the store, never an
//! attribute), an API key's token is shown once when it is created, disabling an account or
//! changing its password revokes its login tokens, and deleting an account or an API key
//! revokes what it held. The item operations call in here so that each of these lands in the
//! same transaction as the item.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{password, token};
use crate::access::check_acl;
use crate::context::Realnet;
use crate::item::Item;
use crate::item::attributes::ValidationErrors;
use crate::query::{AttrFilter, ItemQuery, Op, Scalar};
use crate::store::{StoreError, Write};
use crate::types::FieldKind;

/// The write-only attribute of `Account` items.
pub const PASSWORD: &str = "password";

/// What an item write brings along: more writes for the same transaction, and a secret to
/// show the caller once.
#[derive(Debug, Default)]
pub struct Extra {
    pub writes: Vec<Write>,
    pub secret: Option<String>,
}

pub fn is_disabled(account: &Item) -> bool {
    account
        .attributes
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
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

/// The account of `org` with this username; none in an org that was never set up, whatever
/// the store holds there (logins, authorizer identities and job actors go through here).
pub async fn find_account(
    rn: &Realnet,
    org: &str,
    username: &str,
) -> Result<Option<Item>, StoreError> {
    if !rn.org_exists(org).await? {
        return Ok(None);
    }
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = vec!["Account".to_string()];
    query.attrs = vec![AttrFilter {
        field: "username".to_string(),
        kind: FieldKind::String,
        op: Op::Eq,
        values: vec![Scalar::Text(username.to_string())],
    }];
    query.limit = 1;
    Ok(rn.store.query(org, &query).await?.items.into_iter().next())
}

/// Takes the write-only password out of an `Account`'s attributes.
pub fn take_password(type_name: &str, attributes: &mut Map<String, Value>) -> Option<Value> {
    if type_name == "Account" {
        attributes.remove(PASSWORD)
    } else {
        None
    }
}

/// Checks what the type registry cannot: a password's strength, that an account's groups are
/// groups of its org, and that an `Acl` item states a rule.
pub async fn check(
    rn: &Realnet,
    org: &str,
    type_name: &str,
    attributes: &Map<String, Value>,
    password: Option<&Value>,
    errors: &mut ValidationErrors,
) -> Result<(), StoreError> {
    match password {
        None => {}
        Some(Value::String(p)) => {
            if let Err(m) = password::check_strength(p) {
                errors.add(PASSWORD, m);
            }
        }
        Some(_) => errors.add(PASSWORD, "must be a string"),
    }
    if type_name == "Account"
        && let Some(groups) = attributes.get("groups")
    {
        match groups.as_array() {
            Some(ids) if ids.len() <= 100 => {
                for id in ids {
                    let group = match id.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                        Some(g) => rn.store.get(org, g).await?,
                        None => None,
                    };
                    if !group.is_some_and(|g| rn.types.is_a(&g.type_name, "Group")) {
                        errors.add("groups", format!("{id} is not a group of this org"));
                    }
                }
            }
            _ => errors.add("groups", "must be a list of at most 100 group ids"),
        }
    }
    if type_name == "Acl" {
        for (field, message) in check_acl(&rn.types, attributes) {
            errors.add(field, message);
        }
    }
    Ok(())
}

async fn password_write(account: Uuid, password: Option<Value>) -> Option<Write> {
    let Some(Value::String(p)) = password else {
        return None;
    };
    Some(Write::SetPassword {
        account,
        hash: Some(password::hash(p).await),
    })
}

/// The writes that go with creating `item`.
pub async fn on_create(item: &Item, password: Option<Value>) -> Extra {
    let mut extra = Extra::default();
    match item.type_name.as_str() {
        "Account" => extra.writes.extend(password_write(item.id, password).await),
        "ApiKey" => {
            if let Some(account) = api_key_account(item) {
                let (secret, hash) = token::generate(token::API_KEY_PREFIX);
                extra.writes.push(Write::PutToken {
                    hash,
                    account,
                    api_key: Some(item.id),
                    expires: api_key_expiry(item),
                });
                extra.secret = Some(secret);
            }
        }
        _ => {}
    }
    extra
}

/// The writes that go with changing `before` into `after`.
pub async fn on_update(before: &Item, after: &Item, password: Option<Value>) -> Vec<Write> {
    let mut writes = Vec::new();
    if after.type_name == "Account" {
        let new_password = password_write(after.id, password).await;
        if new_password.is_some() || (is_disabled(after) && !is_disabled(before)) {
            writes.push(Write::DeleteTokensOf {
                account: after.id,
                api_keys: false,
            });
        }
        writes.extend(new_password);
    }
    writes
}

/// The writes that go with deleting `item`.
pub fn on_delete(item: &Item) -> Vec<Write> {
    match item.type_name.as_str() {
        "Account" => vec![
            Write::DeleteTokensOf {
                account: item.id,
                api_keys: true,
            },
            Write::SetPassword {
                account: item.id,
                hash: None,
            },
        ],
        "ApiKey" => vec![Write::DeleteApiKeyToken { api_key: item.id }],
        _ => Vec::new(),
    }
}

/// Forgets what this container cached about identities after a write to one of them.
pub fn after_write(rn: &Realnet, type_name: &str, org: &str) {
    match type_name {
        "Acl" => rn.forget_rules(org),
        "Account" | "ApiKey" | "Group" => rn.forget_principals(),
        _ => {}
    }
}
