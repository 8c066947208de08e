//! Finalizing an upload: once its bytes are in storage, move them to the confirmed content
//! (written once, see [`BlobStore::confirm`](super::BlobStore::confirm)), check that they are
//! the declared size and record their SHA-256, making the `File` ready. A ready file is never
//! finalized again, so its bytes stay the ones its checksum describes.
//! `POST /api/files/{id}/confirm` and the `files.finalize` job both do it, as the caller, who
//! must be allowed to update the file.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{BlobError, BlobKey};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::attributes::ValidationErrors;
use crate::item::ops::{self, Change, Origin};
use crate::item::prepared::Prepared;
use crate::item::{Item, ItemError};

pub const FILE: &str = "File";

#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("nothing has been uploaded for file {0} yet")]
    NotUploaded(Uuid),
    #[error("file {0} is confirmed already; its content cannot change (create a new file)")]
    Confirmed(Uuid),
    #[error(transparent)]
    Item(#[from] ItemError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Stores `bytes` as the content of the pending file `item` and confirms it (files sent
/// inline, files a handler writes); if that fails, the file is deleted again, so that
/// nothing is half-written.
pub async fn store_inline(
    rn: &Realnet,
    principal: &Principal,
    item: &Item,
    bytes: Bytes,
) -> Result<Item, FinalizeError> {
    let key = BlobKey::new(&item.org, item.id)
        .map_err(|m| BlobError::Backend(format!("file {}: {m}", item.id)))?;
    let stored = async {
        let size = bytes.len() as u64;
        rn.blobs.put_upload(&key, &mut Some(bytes), size).await?;
        let prepared = finalize(rn, principal, item.id).await?;
        let ready = prepared.item.clone().expect("a finalized file");
        ops::commit(rn, principal, vec![prepared]).await?;
        Ok::<Item, FinalizeError>(ready)
    }
    .await;
    if stored.is_err() {
        let installation = Principal::org_admin(&item.org);
        rn.blobs.delete(&key).await.ok();
        ops::delete(rn, &installation, item.id, false, None, Some(FILE))
            .await
            .ok();
    }
    stored
}

/// The change that makes file `id` ready, checked (the caller's rights, the uploaded size)
/// and ready to commit.
pub async fn finalize(
    rn: &Realnet,
    principal: &Principal,
    id: Uuid,
) -> Result<Prepared, FinalizeError> {
    let item = ops::get(rn, principal, id, Some(FILE)).await?;
    ops::check_update(rn, principal, &item).await?;
    if is_ready(&item) {
        return Err(FinalizeError::Confirmed(id));
    }
    let key = BlobKey::new(&item.org, item.id)
        .map_err(|m| BlobError::Backend(format!("file {id}: {m}")))?;
    if !rn.blobs.confirm(&key).await? {
        return Err(FinalizeError::NotUploaded(id));
    }
    let info = rn
        .blobs
        .info(&key)
        .await?
        .ok_or(FinalizeError::NotUploaded(id))?;
    let declared = item
        .attributes
        .get("size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if info.size != declared {
        // Dropped, so that the file can be uploaded again.
        rn.blobs.delete(&key).await?;
        let e = ValidationErrors::single(
            "size",
            format!(
                "{} bytes were uploaded, {declared} declared: upload the file again",
                info.size
            ),
        );
        return Err(ItemError::from(e).into());
    }
    let checksum = rn.blobs.sha256(&key).await?;
    let mut attributes = Map::new();
    attributes.insert("checksum".into(), json!(checksum));
    attributes.insert("status".into(), json!("ready"));
    let change = Change::Patch {
        name: None,
        parent: None,
        attributes: Some(attributes),
    };
    // Based on the version read, so that a change meanwhile is not overwritten.
    // The server sets the status and checksum; the caller's right to update the file applies.
    let version = Some(item.version);
    Ok(ops::prepare_update(
        rn,
        principal,
        id,
        &change,
        version,
        Some(FILE),
        Origin::Server,
    )
    .await?)
}

/// Whether the file is confirmed.
pub fn is_ready(item: &crate::item::Item) -> bool {
    item.attributes.get("status").and_then(Value::as_str) == Some("ready")
}
