//! The identity commands: accounts, groups, login tokens and API keys, each a call into the
//! library as the installation (the admin of the org named, or the default org).

use std::io::BufRead;

use anyhow::{Context, bail};
use realnet::Realnet;
use realnet::auth::{Principal, identity, login, password};
use realnet::item::Item;
use realnet::item::ops::{self, Change, NewItem};
use realnet::query::{ItemQuery, NameFilter};
use realnet::store::Write;
use serde_json::{Map, Value, json};

use crate::{AccountCommand, ApikeyCommand, TokenCommand, org_named};

async fn account_named(rn: &Realnet, org: &str, username: &str) -> anyhow::Result<Item> {
    identity::find_account(rn, org, username)
        .await?
        .with_context(|| {
            format!(
                "no account {username:?} in org {org:?}: check the username, or create it with `realnet account create {username} --org {org}`"
            )
        })
}

fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub async fn account(rn: &Realnet, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            username,
            org,
            email,
            admin,
            password_stdin,
        } => {
            let org = org_named(rn, org).await?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (password::generate(), true)
            };
            let mut attrs = attributes(json!({"username": username, "admin": admin}));
            if let Some(email) = email {
                attrs.insert("email".into(), Value::String(email));
            }
            attrs.insert(identity::PASSWORD.into(), Value::String(password.clone()));
            let input = NewItem {
                type_name: "Account".into(),
                name: username.clone(),
                parent: None,
                attributes: attrs,
            };
            let (item, _) = ops::create(rn, &Principal::org_admin(&org), input, None).await?;
            out!("created account {username} ({}) in org {org}", item.id)?;
            if generated {
                out!("password: {password}")?;
                out!("This password is shown only now.")?;
            }
            Ok(())
        }
        AccountCommand::Disable { username, org } => {
            let org = org_named(rn, org).await?;
            let account = account_named(rn, &org, &username).await?;
            let change = Change::Patch {
                name: None,
                parent: None,
                attributes: Some(attributes(json!({"disabled": true}))),
            };
            ops::update(
                rn,
                &Principal::org_admin(&org),
                account.id,
                change,
                None,
                None,
            )
            .await?;
            out!(
                "disabled account {username} in org {org}; its login tokens are revoked{}",
                elsewhere(rn)
            )?;
            Ok(())
        }
        AccountCommand::Link {
            username,
            org,
            issuer,
            subject,
        } => {
            let org = org_named(rn, org).await?;
            let account = account_named(rn, &org, &username).await?;
            let change = Change::Patch {
                name: None,
                parent: None,
                attributes: Some(attributes(json!({
                    identity::IDP_ISSUER: issuer,
                    identity::IDP_SUBJECT: subject,
                }))),
            };
            let admin = Principal::org_admin(&org);
            ops::update(rn, &admin, account.id, change, None, None).await?;
            out!(
                "linked account {username} in org {org} to subject {subject:?} of issuer {issuer:?}"
            )?;
            Ok(())
        }
    }
}

pub async fn group_add(rn: &Realnet, org: &str, group: &str, username: &str) -> anyhow::Result<()> {
    let admin = Principal::org_admin(org);
    let account = account_named(rn, org, username).await?;
    let mut query = ItemQuery::parse(&rn.types, &[("type".into(), "Group".into())], None)?;
    query.name = Some(NameFilter::Exact(group.to_string()));
    // The installation reads everything: the store answers directly, past short pages.
    let group_item = match realnet::store::first_item(&*rn.store, org, &query).await? {
        Some(g) => g,
        None => {
            let input = NewItem {
                type_name: "Group".into(),
                name: group.to_string(),
                parent: None,
                attributes: Map::new(),
            };
            ops::create(rn, &admin, input, None).await?.0
        }
    };
    let mut groups = identity::groups_of(&account);
    if !groups.contains(&group_item.id) {
        groups.push(group_item.id);
    }
    let change = Change::Patch {
        name: None,
        parent: None,
        attributes: Some(attributes(json!({ "groups": groups }))),
    };
    ops::update(rn, &admin, account.id, change, None, None).await?;
    out!(
        "{username} is a member of group {group} ({}) in org {org}{}",
        group_item.id,
        elsewhere(rn)
    )?;
    Ok(())
}

pub async fn token(rn: &Realnet, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { username, org } => {
            let org = org_named(rn, org).await?;
            let account = account_named(rn, &org, &username).await?;
            if identity::is_disabled(&account) {
                bail!("account {username:?} is disabled: it cannot log in");
            }
            let session = login::issue(rn, &account).await?;
            out!("{}", session.token)?;
            eprintln!("expires {}", session.expires.to_rfc3339());
            Ok(())
        }
        TokenCommand::Revoke { username, org } => {
            let org = org_named(rn, org).await?;
            let account = account_named(rn, &org, &username).await?;
            let revoke = Write::DeleteTokensOf {
                account: account.id,
                api_keys: false,
            };
            rn.store.apply(&org, &[revoke]).await?;
            out!(
                "revoked every login token of {username} in org {org}{}",
                elsewhere(rn)
            )?;
            Ok(())
        }
    }
}

pub async fn apikey(rn: &Realnet, command: ApikeyCommand) -> anyhow::Result<()> {
    match command {
        ApikeyCommand::Create {
            name,
            account,
            expires,
            org,
        } => {
            let org = org_named(rn, org).await?;
            let owner = account_named(rn, &org, &account).await?;
            let mut attrs = attributes(json!({"account": owner.id.to_string()}));
            if let Some(e) = expires {
                attrs.insert("expires".into(), Value::String(e));
            }
            let input = NewItem {
                type_name: "ApiKey".into(),
                name,
                parent: None,
                attributes: attrs,
            };
            let (item, key) = ops::create(rn, &Principal::org_admin(&org), input, None).await?;
            out!("{}", key.context("an API key item always has a key")?)?;
            eprintln!(
                "API key {} for {account} in org {org}; the key is shown only now",
                item.id
            );
            Ok(())
        }
        ApikeyCommand::Revoke { id, org } => {
            let org = org_named(rn, org).await?;
            let id = uuid::Uuid::parse_str(&id)
                .with_context(|| format!("{id:?} is not an id: give the API key's item id"))?;
            ops::delete(
                rn,
                &Principal::org_admin(&org),
                id,
                false,
                None,
                Some("ApiKey"),
            )
            .await?;
            out!("revoked API key {id} in org {org}{}", elsewhere(rn))?;
            Ok(())
        }
    }
}

/// When servers and Lambda containers already running see a change of rights: each keeps
/// what it resolved for `REALNET_AUTH_CACHE_TTL`.
fn elsewhere(rn: &Realnet) -> String {
    let ttl = rn.config.auth.cache_ttl;
    if ttl.is_zero() {
        "; every running server sees it at once".to_string()
    } else {
        format!(
            "; servers and Lambda containers already running see it within {} (REALNET_AUTH_CACHE_TTL)",
            humantime::format_duration(ttl)
        )
    }
}
