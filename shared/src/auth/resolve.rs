//! Resolving a credential to the [`Principal`] it proves: the account behind a bearer token (a
//! login token or an API key), the account linked to the identity-provider subject an API
//! Gateway authorizer vouched for, or a job's actor. A credential that is present but bad is
//! refused (a `401` at the edge), never a silent fall-back to the public. Resolved principals
//! are cached per container for `REALNET_AUTH_CACHE_TTL`.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{AuthError, AuthorizerClaims, Credential, Principal, identity, token, unauthorized};
use crate::cache::Read;
use crate::config::check_org_name;
use crate::context::Realnet;
use crate::item::Item;
use crate::store::StoreError;

impl Principal {
    /// The principal of an account item (which must not be disabled), with every group its
    /// `groups` attribute names: see [`Realnet::principal_of`], which keeps only those that
    /// exist.
    pub(crate) fn of_account(account: &Item, credential: Credential) -> Principal {
        let a = &account.attributes;
        Principal {
            org: account.org.clone(),
            account: Some(account.id),
            username: a
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_string),
            admin: a.get("admin").and_then(Value::as_bool).unwrap_or(false),
            groups: identity::groups_of(account),
            credential,
        }
    }
}

impl Realnet {
    /// The principal a bearer token stands for.
    pub async fn principal_for_token(&self, token: &str) -> Result<Principal, AuthError> {
        if !token::well_formed(token) {
            return Err(unauthorized("the bearer token is malformed"));
        }
        let hash = token::hash(token);
        if let Some(p) = self.cached_principal(&hash) {
            return Ok(p);
        }
        let read = self.auth.principals.begin();
        let stored = self
            .store
            .token(&hash)
            .await?
            .ok_or_else(|| unauthorized("the bearer token is unknown or revoked"))?;
        let now = Utc::now();
        if stored.expires.is_some_and(|e| e <= now) {
            return Err(unauthorized("the bearer token has expired; log in again"));
        }
        let (account_id, expires, credential) = match stored.api_key {
            None => (
                stored.account,
                stored.expires,
                Credential::LoginToken { hash: hash.clone() },
            ),
            Some(key) => {
                let item = self
                    .store
                    .get(&stored.org, key)
                    .await?
                    .ok_or_else(|| unauthorized("the API key is revoked"))?;
                // The sooner of the key's expiry and its token's (fixed when it was made).
                let expires = [identity::api_key_expiry(&item), stored.expires]
                    .into_iter()
                    .flatten()
                    .min();
                if expires.is_some_and(|e| e <= now) {
                    return Err(unauthorized("the API key has expired"));
                }
                let account = identity::api_key_account(&item)
                    .ok_or_else(|| unauthorized("the API key is revoked"))?;
                (account, expires, Credential::ApiKey { id: key })
            }
        };
        let account = self
            .store
            .get(&stored.org, account_id)
            .await?
            .ok_or_else(|| unauthorized("the account of this token no longer exists"))?;
        if identity::is_disabled(&account) {
            return Err(unauthorized("the account is disabled"));
        }
        let principal = self.principal_of(&account, credential).await?;
        self.cache_principal(read, hash, &principal, expires);
        Ok(principal)
    }

    /// The principal an API Gateway authorizer vouched for: the enabled account linked to the
    /// identity provider's issuer and subject (the configured claims), in that account's org.
    /// An org claim, where one is configured, is checked like an org name and must agree.
    /// No claim a user may pick (a username, an email) chooses the account.
    pub async fn principal_for_claims(
        &self,
        claims: &AuthorizerClaims,
    ) -> Result<Principal, AuthError> {
        let auth = &self.config.auth;
        let claim = |name: &str, var: &str| {
            claims.0.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                unauthorized(format!("the authorizer's claims have no {name:?} ({var})"))
            })
        };
        let issuer = claim(&auth.issuer_claim, "REALNET_AUTH_ISSUER_CLAIM")?;
        let subject = claim(&auth.subject_claim, "REALNET_AUTH_SUBJECT_CLAIM")?;
        let org = match &auth.org_claim {
            Some(c) => {
                let org = claim(c, "REALNET_AUTH_ORG_CLAIM")?;
                check_org_name(org)
                    .map_err(|m| unauthorized(format!("the authorizer's org claim {c:?}: {m}")))?;
                Some(org.as_str())
            }
            None => None,
        };
        let key = format!(
            "authorizer\n{issuer}\n{subject}\n{}",
            org.unwrap_or_default()
        );
        if let Some(p) = self.cached_principal(&key) {
            return Ok(p);
        }
        let read = self.auth.principals.begin();
        let unlinked = || {
            unauthorized(format!(
                "no enabled account is linked to subject {subject:?} of issuer {issuer:?}: an org admin sets idp_issuer and idp_subject on the Account"
            ))
        };
        let link = self
            .store
            .identity_link(issuer, subject)
            .await?
            .ok_or_else(unlinked)?;
        if org.is_some_and(|o| o != link.org) {
            return Err(unlinked());
        }
        let account = self
            .store
            .get(&link.org, link.account)
            .await?
            // The link is written with the account's attributes; both must still say it.
            .filter(|a| identity::idp_link(a) == Some((issuer.as_str(), subject.as_str())))
            .filter(|a| !identity::is_disabled(a))
            .ok_or_else(unlinked)?;
        let principal = self.principal_of(&account, Credential::Authorizer).await?;
        self.cache_principal(read, key, &principal, None);
        Ok(principal)
    }

    /// The principal a job acts as: `username`, an enabled account of `org`; cached like
    /// the principals of tokens.
    pub async fn job_principal(
        &self,
        org: &str,
        username: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let key = format!("job\n{org}\n{username}");
        if let Some(p) = self.cached_principal(&key) {
            return Ok(Some(p));
        }
        let read = self.auth.principals.begin();
        let Some(account) = identity::find_account(self, org, username)
            .await?
            .filter(|a| !identity::is_disabled(a))
        else {
            return Ok(None);
        };
        let principal = self.principal_of(&account, Credential::Job).await?;
        self.cache_principal(read, key, &principal, None);
        Ok(Some(principal))
    }

    /// The principal of an enabled account: its groups are those of its `groups` that exist,
    /// so that a deleted group grants nothing.
    pub async fn principal_of(
        &self,
        account: &Item,
        credential: Credential,
    ) -> Result<Principal, StoreError> {
        let mut principal = Principal::of_account(account, credential);
        let mut groups = Vec::with_capacity(principal.groups.len());
        for g in principal.groups {
            if let Some(group) = self.store.get(&account.org, g).await?
                && self.types.is_a(&group.type_name, "Group")
            {
                groups.push(g);
            }
        }
        principal.groups = groups;
        Ok(principal)
    }

    fn cached_principal(&self, key: &str) -> Option<Principal> {
        self.auth.principals.get(key).map(|p| (*p).clone())
    }

    /// Keeps what `read` resolved for the cache's TTL, or until its credential `expires` if
    /// that is sooner.
    fn cache_principal(
        &self,
        read: Read,
        key: String,
        p: &Principal,
        expires: Option<DateTime<Utc>>,
    ) {
        let until = expires.map(SystemTime::from);
        self.auth
            .principals
            .keep_until(read, key, Arc::new(p.clone()), until);
    }

    /// Forgets every cached principal of this container, after a change to accounts or
    /// credentials made here.
    pub(crate) fn forget_principals(&self) {
        self.auth.principals.forget_all();
    }
}
