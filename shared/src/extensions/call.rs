//! What a handler may do through its [`Call`]: the item and file operations of the HTTP
//! API, as the caller, with the same checks; jobs; and, for org admins, the dead letters.
//! Reads see the store as it is (not the call's own staged writes); writes are checked now
//! and committed together once the handler has answered, and a redrive or drop of dead
//! letters is performed then too.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use uuid::Uuid;

use super::{Call, HandlerError};
use crate::blob::finalize::{self, FILE};
use crate::blob::{BlobError, BlobKey};
use crate::item::Item;
use crate::item::ops::{self, Change, NewItem, Origin};
use crate::item::prepared::Prepared;
use crate::jobs::envelope::Submission;
use crate::query::{ItemQuery, MAX_LIMIT};
use crate::queue::QueueError;
use crate::queue::dead::{DeadLetter, DeadLetters, Held};
use crate::store::Page;

/// At most this many items in one call's [`Call::query_all`].
pub const MAX_READ: usize = 10_000;

/// At most this many bytes of a file are read into memory by [`Call::read_file`].
pub const MAX_FILE_READ: u64 = 16 * 1024 * 1024;

impl Call {
    /// The item, if the caller may read it (else [`crate::item::ItemError::NotFound`]).
    pub async fn get(&self, id: Uuid) -> Result<Item, HandlerError> {
        Ok(ops::get(&self.rn, &self.principal, id, None).await?)
    }

    /// One page of the items matching `query` that the caller may read.
    pub async fn query(&self, query: &ItemQuery) -> Result<Page, HandlerError> {
        Ok(ops::query(&self.rn, &self.principal, query).await?)
    }

    /// Every item matching `query` that the caller may read, page by page; refused past
    /// [`MAX_READ`] items.
    pub async fn query_all(&self, query: &ItemQuery) -> Result<Vec<Item>, HandlerError> {
        let mut query = query.clone();
        query.limit = MAX_LIMIT;
        let mut all = Vec::new();
        loop {
            let page = self.query(&query).await?;
            all.extend(page.items);
            if all.len() > MAX_READ {
                return Err(HandlerError::refused(
                    413,
                    format!("more than {MAX_READ} items match: narrow the query"),
                ));
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Checks a new item as `POST /api/items` does and stages it; returns it as it will be.
    pub async fn create(&self, item: NewItem) -> Result<Item, HandlerError> {
        let prepared =
            ops::prepare_create(&self.rn, &self.principal, item, None, Origin::Client).await?;
        let item = prepared.item.clone().expect("a created item");
        self.stage(prepared);
        Ok(item)
    }

    /// Checks a change as `PATCH` / `PUT` do (with `if_match`, the version it is based on)
    /// and stages it; returns the item as it will be.
    pub async fn update(
        &self,
        id: Uuid,
        change: Change,
        if_match: Option<i64>,
    ) -> Result<Item, HandlerError> {
        let prepared = ops::prepare_update(
            &self.rn,
            &self.principal,
            id,
            &change,
            if_match,
            None,
            Origin::Client,
        )
        .await?;
        let item = prepared.item.clone().expect("an updated item");
        self.stage(prepared);
        Ok(item)
    }

    /// Checks a delete as `DELETE /api/items/{id}` does and stages it.
    pub async fn delete(&self, id: Uuid, recursive: bool) -> Result<(), HandlerError> {
        let prepared =
            ops::prepare_delete(&self.rn, &self.principal, id, recursive, None, None).await?;
        self.stage(prepared);
        Ok(())
    }

    /// A ready file the caller may read, and its bytes (at most [`MAX_FILE_READ`]).
    pub async fn read_file(&self, id: Uuid) -> Result<(Item, Bytes), HandlerError> {
        let item = ops::get(&self.rn, &self.principal, id, Some(FILE)).await?;
        if !finalize::is_ready(&item) {
            return Err(HandlerError::refused(
                409,
                format!("file {id} is not confirmed yet"),
            ));
        }
        let key = BlobKey::new(&item.org, item.id)
            .map_err(|m| HandlerError::Unavailable(format!("file {id}: {m}")))?;
        let bytes = self
            .rn
            .blobs
            .read(&key, MAX_FILE_READ)
            .await
            .map_err(|e| match e {
                e @ BlobError::OverRead { .. } => HandlerError::refused(413, e.to_string()),
                e => HandlerError::Unavailable(e.to_string()),
            })?;
        Ok((item, bytes))
    }

    /// Checks a new file as `POST /api/files` does and stages it with the call's writes; its
    /// bytes are stored once they committed. Returns the file as it will be made (pending
    /// until then).
    pub async fn write_file(
        &self,
        name: &str,
        parent: Option<Uuid>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Item, HandlerError> {
        let size = bytes.len() as u64;
        if size > self.rn.config.file_max_size {
            return Err(HandlerError::invalid(
                format!(
                    "{size} bytes is over the limit of {} (REALNET_FILE_MAX_SIZE)",
                    self.rn.config.file_max_size
                ),
                None,
            ));
        }
        let mut attributes = serde_json::Map::new();
        attributes.insert("content_type".into(), content_type.into());
        attributes.insert("size".into(), size.into());
        attributes.insert("status".into(), "pending".into());
        let input = NewItem {
            type_name: FILE.into(),
            name: name.to_string(),
            parent,
            attributes,
        };
        // The server declares the content type and size, as the caller, whose right to
        // create the file applies (as `POST /api/files` does).
        let prepared =
            ops::prepare_create(&self.rn, &self.principal, input, Some(FILE), Origin::Server)
                .await?;
        let item = prepared.item.clone().expect("a created file");
        let mut staged = self.staged.lock().expect("the staged writes' lock");
        staged.writes.push(prepared);
        staged.files.push((item.clone(), bytes));
        Ok(item)
    }

    /// Sends a job as the caller once the call's writes committed (like `POST /api/jobs`).
    pub fn submit(&self, kind: &str, payload: Value) -> Result<(), HandlerError> {
        if let Err(m) = crate::jobs::check(kind, &payload) {
            return Err(HandlerError::invalid(m, None));
        }
        // As `POST /api/jobs`: no secret rests in the `Job` item or the queue body.
        if let Some(m) = crate::jobs::job_items::secret_in(&self.rn, kind, &payload) {
            return Err(HandlerError::invalid(m, None));
        }
        self.staged
            .lock()
            .expect("the staged writes' lock")
            .jobs
            .push(Submission {
                kind: kind.to_string(),
                payload,
                idempotency_key: None,
                run: None,
                request_id: self.request_id.clone(),
            });
        Ok(())
    }

    fn stage(&self, prepared: Prepared) {
        self.staged
            .lock()
            .expect("the staged writes' lock")
            .writes
            .push(prepared);
    }
}

/// A job of the caller's org that failed for good (see [`crate::queue::dead`]).
#[derive(Debug, Clone)]
pub struct OrgDeadLetter {
    pub id: Uuid,
    pub kind: String,
    /// The account it acted as.
    pub actor: String,
    pub payload: Value,
    pub receives: u32,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Call {
    /// The dead-letter queue, for org admins.
    fn dead_letter_queue(&self) -> Result<&Arc<dyn DeadLetters>, HandlerError> {
        if !self.principal.admin {
            return Err(HandlerError::forbidden(
                "the jobs that failed for good are for org admins",
            ));
        }
        self.rn.dead_letters().ok_or_else(|| {
            HandlerError::Unavailable(
                "no dead-letter queue is configured (REALNET_DEAD_LETTER_QUEUE_URL)".into(),
            )
        })
    }

    /// The jobs of the caller's org that failed for good; org admins only. A message that
    /// is not a job envelope, or whose proof (signature or API key) is not of this org, is
    /// not shown: its body only names an org.
    pub async fn dead_letters(&self) -> Result<Vec<OrgDeadLetter>, HandlerError> {
        let letters = self.dead_letter_queue()?.list().await?;
        let mut own = Vec::new();
        for l in letters {
            own.extend(self.own_letter(&l).await?);
        }
        Ok(own)
    }

    /// Stages sending the caller's org's dead letters with `ids` (all of them with `None`)
    /// to the job queue again, as they were sent, once the handler has answered (not if it
    /// fails); answers those it will redrive, hidden from every other caller meanwhile. Org
    /// admins only.
    pub async fn redrive_dead_letters(
        &self,
        ids: Option<&[Uuid]>,
    ) -> Result<Vec<Uuid>, HandlerError> {
        self.hold_dead_letters(ids, DeadAction::Redrive).await
    }

    /// Stages removing the caller's org's dead letters with `ids` once the handler has
    /// answered (not if it fails); answers those it will remove. Org admins only.
    pub async fn drop_dead_letters(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, HandlerError> {
        self.hold_dead_letters(Some(ids), DeadAction::Remove).await
    }

    /// Receives the dead letters in one pass, holds those of `ids` (all with `None`) whose
    /// proof is of the caller's org, releases the others, and stages `action` on them.
    async fn hold_dead_letters(
        &self,
        ids: Option<&[Uuid]>,
        action: DeadAction,
    ) -> Result<Vec<Uuid>, HandlerError> {
        let queue = self.dead_letter_queue()?.clone();
        let held = Held::receive(queue, |l| async move {
            if ids.is_some_and(|ids| !ids.contains(&l.id)) {
                return Ok::<_, HandlerError>(None);
            }
            Ok(self.own_letter(&l).await?.map(|_| l))
        })
        .await?;
        let ids = held.ids();
        self.staged
            .lock()
            .expect("the staged writes' lock")
            .dead_letters
            .push((action, held));
        Ok(ids)
    }

    /// The dead letter as the caller's org's, if it is a job whose proof (signature or API
    /// key) is of that org.
    async fn own_letter(&self, l: &DeadLetter) -> Result<Option<OrgDeadLetter>, HandlerError> {
        let Ok(job) = crate::jobs::decode(&l.body) else {
            return Ok(None);
        };
        let proven = crate::jobs::trust::proven_org(&self.rn, &job, &l.body, &l.credentials)
            .await
            .map_err(crate::item::ItemError::from)?;
        Ok(
            (proven.as_deref() == Some(self.principal.org.as_str())).then_some(OrgDeadLetter {
                id: l.id,
                kind: job.kind,
                actor: job.actor,
                payload: job.payload,
                receives: l.receives,
                sent_at: l.sent_at,
            }),
        )
    }
}

/// What a handler staged for dead letters it holds.
pub(super) enum DeadAction {
    Redrive,
    Remove,
}

impl From<QueueError> for HandlerError {
    fn from(e: QueueError) -> Self {
        HandlerError::Unavailable(e.to_string())
    }
}
