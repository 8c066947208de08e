//! A webhook extension's signing secret: generated when its `Extension` item is created and
//! when an org admin rotates it (`POST /api/extensions/{name}/rotate_secret`), shown once in
//! that answer, kept as a store setting written in the item's transaction (never an
//! attribute, never logged) and removed with the item. A rotation is a change of the item,
//! checked as every change is (an org admin, or an `admin` rule on the type), so the item's
//! version moves and the old secret stops signing when it commits.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{EXTENSION, find};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::behaviour::Origin;
use crate::item::ops::{self, Change};
use crate::item::{Item, ItemError};
use crate::store::{StoreError, Write};

/// What a webhook's signing secret starts with, so a leaked one is recognised.
const SECRET_PREFIX: &str = "rnwhsec_";

/// The write-only attribute by which [`rotate`] asks the `Extension` behaviour for a new
/// secret. Only the server sends it: a client's `PATCH` with it is refused, since a secret
/// made there could not be shown.
pub(super) const ROTATE: &str = "rotate_secret";

/// How often a rotation is tried again when another change of the item came first.
const ROTATE_ATTEMPTS: usize = 3;

/// A signing secret in memory. It prints as `SigningSecret(..)`, so that no `Debug` of what
/// holds it (a cached extension) shows it.
#[derive(Clone)]
pub struct SigningSecret(Arc<str>);

impl SigningSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// The setting that holds the signing secret of the `Extension` item `id` of `org`.
fn setting_key(org: &str, id: Uuid) -> String {
    format!("extension_secret/{org}/{id}")
}

/// A new secret for the item, and the write that stores it (in the item's transaction).
pub(super) fn generate(item: &Item) -> (String, Write) {
    let secret = format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let write = Write::SetSetting {
        key: setting_key(&item.org, item.id),
        value: Some(secret.clone()),
    };
    (secret, write)
}

/// The write that removes the item's secret (with the item).
pub(super) fn remove(item: &Item) -> Write {
    Write::SetSetting {
        key: setting_key(&item.org, item.id),
        value: None,
    }
}

/// The stored secret of the `Extension` item `id` of `org`, if it has one.
pub(super) async fn read(
    rn: &Realnet,
    org: &str,
    id: Uuid,
) -> Result<Option<SigningSecret>, StoreError> {
    let secret = rn.store.setting(&setting_key(org, id), "").await?;
    Ok((!secret.is_empty()).then(|| SigningSecret(secret.into())))
}

/// Why a secret was not rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// No `Extension` of that name that the caller may read, in the caller's org (`404`).
    #[error("no extension named {0:?} (GET /api/extensions lists them)")]
    NotFound(String),
    /// A Lambda extension signs nothing (`409`).
    #[error(
        "extension {0:?} calls a Lambda function, which Realnet invokes through the AWS API with its own role: it has no signing secret to rotate"
    )]
    NotWebhook(String),
    /// The caller may not change the item (`403`), or the store failed.
    #[error(transparent)]
    Item(#[from] ItemError),
}

/// Gives the webhook extension `name` of `p`'s org a new signing secret, as a change of its
/// item by `p`: answers the item as it now is and the secret, to show once. The old secret
/// signs nothing once this returns (in this container; see [`super::cache`] for others).
pub async fn rotate(
    rn: &Realnet,
    p: &Principal,
    name: &str,
) -> Result<(Item, String), RotateError> {
    let not_found = || RotateError::NotFound(name.to_string());
    let found = find(rn, &p.org, name).await.map_err(ItemError::from)?;
    let Some(found) = found else {
        return Err(not_found());
    };
    // One the caller may not read is answered as one that does not exist.
    match ops::get(rn, p, found.id, Some(EXTENSION)).await {
        Ok(_) => {}
        Err(ItemError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    let change = Change::Patch {
        name: None,
        parent: None,
        attributes: Some(Map::from_iter([(ROTATE.to_string(), Value::Bool(true))])),
    };
    let mut attempts = 0;
    loop {
        let mut prepared = ops::prepare_update(
            rn,
            p,
            found.id,
            &change,
            None,
            Some(EXTENSION),
            Origin::Server,
        )
        .await
        .map_err(|e| match e {
            ItemError::NotFound(_) => not_found(),
            e => e.into(),
        })?;
        let Some(secret) = prepared.secret.take() else {
            return Err(RotateError::NotWebhook(name.to_string()));
        };
        let item = prepared.item.clone().expect("an updated item");
        attempts += 1;
        match ops::commit(rn, p, vec![prepared]).await {
            Ok(()) => return Ok((item, secret)),
            // Another change came first: rotate what it left.
            Err(ItemError::Store(StoreError::VersionConflict { .. }))
                if attempts < ROTATE_ATTEMPTS => {}
            Err(ItemError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
    }
}
