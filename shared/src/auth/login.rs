//! Logging in: a username and password become a login token. An unknown org, an unknown user,
//! a disabled account and a wrong password all get the same answer after the same Argon2 work.
//!
//! Every attempt is counted in the store before its password is checked, each count one atomic
//! step that refuses past its limit, so that concurrent guesses cannot all be checked and every
//! container sees them. Three counts: the username from one client address (the tight one),
//! the address across usernames (against trying many accounts), and the username across
//! addresses, with a higher ceiling (against guessing from many addresses). Past a limit, an
//! attempt is refused with `429` until the window that counted it is over, without checking
//! the password. A success clears its username-and-address count and takes back its own
//! attempt from the other two, so they count failures (and attempts under way): failures from
//! one address never lock the account for another, short of the username's ceiling.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ClientAddr, identity, password, token};
use crate::config::AuthConfig;
use crate::context::Realnet;
use crate::item::Item;
use crate::store::{Attempt, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Refused,
    #[error("too many failed logins; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Busy(#[from] password::Busy),
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

/// One count of attempts: its key in the store and how many a window may hold.
struct Counter {
    key: String,
    limit: i64,
}

/// The address attempts are counted under: an IPv6 address by its /64, which one client
/// usually holds whole.
fn address_key(client: Option<ClientAddr>) -> String {
    match client.map(|ClientAddr(ip)| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_string(),
    }
}

/// The counts of an attempt, the tightest first: the username from this address, the
/// address, the username.
fn counters(
    auth: &AuthConfig,
    org: &str,
    username: &str,
    client: Option<ClientAddr>,
) -> [Counter; 3] {
    let address = address_key(client);
    [
        Counter {
            key: format!("user-addr\n{org}\n{username}\n{address}"),
            limit: auth.max_failures,
        },
        Counter {
            key: format!("addr\n{address}"),
            limit: auth.max_failures_per_address,
        },
        Counter {
            key: format!("user\n{org}\n{username}"),
            limit: auth.max_failures_per_username,
        },
    ]
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
    let now = crate::item::now();
    let window = chrono::Duration::from_std(auth.login_window).unwrap_or(chrono::Duration::MAX);
    let counters = counters(auth, org, username, client);
    let mut counted: Vec<(&Counter, DateTime<Utc>)> = Vec::with_capacity(counters.len());
    for c in &counters {
        match rn
            .store
            .count_attempt(&c.key, c.limit, now, now - window)
            .await
        {
            Ok(Attempt::Counted { since }) => counted.push((c, since)),
            Ok(Attempt::Refused { since }) => {
                give_back(rn, &counted).await;
                let retry_after = (since + window - now).num_seconds().max(1) as u64;
                return Err(LoginError::Throttled { retry_after });
            }
            Err(e) => {
                give_back(rn, &counted).await;
                return Err(e.into());
            }
        }
    }
    match check(rn, org, username, password).await {
        Ok(account) => {
            rn.store.clear_attempts(&counters[0].key).await?;
            give_back(rn, &counted[1..]).await;
            Ok(issue(rn, &account).await?)
        }
        // A failure stays counted.
        Err(LoginError::Refused) => Err(LoginError::Refused),
        // The password was not checked: the attempt does not count.
        Err(e) => {
            give_back(rn, &counted).await;
            Err(e)
        }
    }
}

/// The enabled account `username` of `org`, if `password` is its password.
async fn check(
    rn: &Realnet,
    org: &str,
    username: &str,
    password: String,
) -> Result<Item, LoginError> {
    let account = identity::find_account(rn, org, username)
        .await?
        .filter(|a| !identity::is_disabled(a));
    let stored = match &account {
        Some(a) => rn.store.password(org, a.id).await?,
        None => None,
    };
    // Without an account (or a password) a decoy hash is checked: the same work either way.
    let verified = password::verify(password, stored).await?;
    match account {
        Some(a) if verified => Ok(a),
        _ => Err(LoginError::Refused),
    }
}

/// Takes back attempts that turned out not to be failures.
async fn give_back(rn: &Realnet, counted: &[(&Counter, DateTime<Utc>)]) {
    for (c, since) in counted {
        if let Err(e) = rn.store.uncount_attempt(&c.key, *since).await {
            tracing::warn!(error = %e, "a login attempt could not be taken back");
        }
    }
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
    // Forgotten whatever the outcome (see `TypeBehaviour::after_write`).
    let _forget = crate::cache::ForgetOnDrop::new(|| rn.forget_principals());
    rn.store
        .apply(
            org,
            &[Write::DeleteToken {
                hash: hash.to_string(),
            }],
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_by_ipv4_address_or_ipv6_prefix() {
        let key = |ip: &str| address_key(Some(ClientAddr(ip.parse().expect("an address"))));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3"), key("2001:db8:1:2::9"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(address_key(None), "unknown");
    }
}
