//! Finalizing an upload: once its bytes are in storage, check that they are the declared size
//! and record their SHA-256, making the `File` ready. `POST /api/files/{id}/confirm` and the
//! `files.finalize` job both do it, as the caller, who must be allowed to update the file.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{BlobError, BlobKey};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::attributes::ValidationErrors;
use crate::item::ops::{self, Change, ItemError, Origin, Prepared};

pub const FILE: &str = "File";

#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("nothing has been uploaded for file {0} yet")]
    NotUploaded(Uuid),
    #[error(transparent)]
    Item(#[from] ItemError),
    #[error(transparent)]
    Blob(#[from] BlobError),
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
    let key = BlobKey::new(&item.org, item.id)
        .map_err(|m| BlobError::Backend(format!("file {id}: {m}")))?;
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
        let e = ValidationErrors::single(
            "size",
            format!("{} bytes were uploaded, {declared} declared", info.size),
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
