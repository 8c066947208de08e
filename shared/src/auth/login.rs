//! Logging in: a username and password become a login token. An unknown org, an unknown user,
//! a disabled account and a wrong password all get the same answer after the same Argon2 work.
//! Failed attempts are counted in the store (so every container sees them) per username and
//! per client address; past the limit, attempts are refused with `429` until the window that
//! counted them is over, without checking the password.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ClientAddr, identity, password, token};
use crate::context::Realnet;
use crate::item::Item;
use crate::store::{StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Refused,
    #[error("too many failed logins; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires: DateTime<Utc>,
    pub account: Uuid,
    pub username: String,
    pub org: String,
}

/// Logs `username` in to `org`.
pub async fn login(
    rn: &Realnet,
    org: &str,
    username: &str,
    password: String,
    client: Option<ClientAddr>,
) -> Result<Session, LoginError> {
    let auth = &rn.config.auth;
    let now = Utc::now();
    let window = chrono::Duration::from_std(auth.login_window).unwrap_or(chrono::Duration::MAX);
    let window_start = now - window;
    let mut keys = vec![(
        format!("user\n{org}\n{username}"),
        auth.max_failures_per_username,
    )];
    if let Some(ClientAddr(ip)) = client {
        keys.push((format!("addr\n{ip}"), auth.max_failures_per_address));
    }
    for (key, max) in &keys {
        if let Some((count, since)) = rn.store.failures(key, window_start).await?
            && count >= *max
        {
            let retry_after = (since + window - now).num_seconds().max(1) as u64;
            return Err(LoginError::Throttled { retry_after });
        }
    }

    let account = identity::find_account(rn, org, username)
        .await?
        .filter(|a| !identity::is_disabled(a));
    let stored = match &account {
        Some(a) => rn.store.password(org, a.id).await?,
        None => None,
    };
    if !password::verify(password, stored).await {
        for (key, _) in &keys {
            rn.store.add_failure(key, now, window_start).await?;
        }
        return Err(LoginError::Refused);
    }
    let account = account.expect("a password verified only against an account's hash");
    rn.store.clear_failures(&keys[0].0).await?;
    Ok(issue(rn, &account).await?)
}

/// A new login token for `account` (an `Account` item), valid for `REALNET_TOKEN_TTL`.
pub async fn issue(rn: &Realnet, account: &Item) -> Result<Session, StoreError> {
    let (token, hash) = token::generate(token::LOGIN_PREFIX);
    let ttl = chrono::Duration::from_std(rn.config.auth.token_ttl).unwrap_or(chrono::Duration::MAX);
    let expires = Utc::now() + ttl;
    rn.store
        .apply(
            &account.org,
            &[Write::PutToken {
                hash,
                account: account.id,
                api_key: None,
                expires: Some(expires),
            }],
        )
        .await?;
    Ok(Session {
        token,
        expires,
        account: account.id,
        username: account
            .attributes
            .get("username")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string(),
        org: account.org.clone(),
    })
}

/// Revokes a login token.
pub async fn logout(rn: &Realnet, org: &str, hash: &str) -> Result<(), StoreError> {
    rn.store
        .apply(
            org,
            &[Write::DeleteToken {
                hash: hash.to_string(),
            }],
        )
        .await?;
    rn.forget_principals();
    Ok(())
}
