//! The built-in maintenance task: deletes expired tokens, job records and failed-login
//! windows (on DynamoDB, the table's TTL does this), and abandoned uploads: `File` items still
//! pending a day after they were created (and after their upload URL expired), with whatever
//! bytes reached storage: the upload, and content a confirmation moved but never committed
//! ([`BlobStore::delete`](crate::blob::BlobStore::delete) removes both).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Principal;
use crate::blob::BlobKey;
use crate::context::Realnet;
use crate::item::ItemError;
use crate::item::ops;
use crate::query::{ItemQuery, Readable};
use crate::store::Purged;

/// A `File` pending for longer than this (or than its upload URL's lifetime) is abandoned.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Abandoned uploads deleted per org in one run; the next run takes the rest.
const MAX_UPLOADS_PER_RUN: usize = 1000;

/// What maintenance did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaintenanceReport {
    /// `null` when the store expires records itself (DynamoDB's TTL).
    pub expired: Option<Purged>,
    pub abandoned_uploads: usize,
}

pub async fn run(rn: &Realnet, now: DateTime<Utc>) -> Result<MaintenanceReport, ItemError> {
    let window = chrono::Duration::from_std(rn.config.auth.login_window).unwrap_or_default();
    let expired = rn.store.purge_expired(now, now - window).await?;
    let after = ABANDONED_AFTER.max(rn.config.file_url_ttl);
    let cutoff = now - chrono::Duration::from_std(after).unwrap_or_default();
    let mut abandoned_uploads = 0;
    for org in rn.store.orgs().await? {
        abandoned_uploads += abandoned(rn, &org, cutoff).await?;
    }
    Ok(MaintenanceReport {
        expired,
        abandoned_uploads,
    })
}

/// Deletes the org's files pending since before `cutoff`: each item first, alone (one with
/// items under it is kept) and only at the version the page read (the store checks it as it
/// deletes: a file confirmed or changed since, which a lagging page may still list as
/// pending, is kept, bytes and all), then its bytes. Bytes that cannot be deleted, or that an
/// upload still under way writes after the item is gone, are left in storage (and the first
/// logged): never a confirmed file's.
async fn abandoned(rn: &Realnet, org: &str, cutoff: DateTime<Utc>) -> Result<usize, ItemError> {
    let params = [
        ("type".to_string(), "File".to_string()),
        ("attr.status".to_string(), "pending".to_string()),
    ];
    let mut query = ItemQuery::parse(&rn.types, &params, None).expect("a fixed query parses");
    query.readable = Readable::All;
    query.limit = 100;
    let installation = Principal::org_admin(org);
    let mut deleted = 0;
    loop {
        let page = rn.store.query(org, &query).await?;
        for file in page.items.iter().filter(|f| f.created_at < cutoff) {
            if deleted == MAX_UPLOADS_PER_RUN {
                return Ok(deleted);
            }
            let key = BlobKey::new(org, file.id)
                .map_err(|m| ItemError::Store(crate::store::StoreError::Backend(m)))?;
            // Not recursive: what was put under a pending file is not the upload's to take.
            if let Err(e) =
                ops::delete(rn, &installation, file.id, false, Some(file.version), None).await
            {
                // Confirmed or changed meanwhile: no longer abandoned.
                tracing::info!(org, id = %file.id, error = %e, "upload kept");
                continue;
            }
            deleted += 1;
            if let Err(e) = rn.blobs.delete(&key).await {
                tracing::warn!(org, id = %file.id, error = %e, "an abandoned upload's item is deleted, its bytes are left in storage");
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(deleted),
        }
    }
}
