//! Background jobs: the envelope every producer sends (documented for external producers as
//! `schemas/job-envelope.schema.json`), who may send one ([`trust`]), the job kinds, and
//! running one job exactly once.
//!
//! A job runs as its proven sender's account (see [`trust`]), with that account's rights, and
//! either does all of its work or none of it: bulk item changes are checked first and written
//! in one transaction. Delivery is at least once; effects are exactly once, because a job's
//! effects are written in one transaction with the record of its key ([`record_key`]: the
//! scheduled run, else the sending account's `idempotency_key`, else the `Job` item, else the
//! message id), and that record refuses a second one while it lives
//! (`REALNET_JOB_RECORD_TTL`): a redelivery or a duplicate writes nothing. Keys belong to
//! (org, account): one account's key never suppresses another's job, and no client key can
//! take a scheduled run's.
//! A failure is either permanent (bad input, no rights: retrying cannot help, so the job is
//! recorded as failed and not retried) or retryable (the store unavailable, a version race).

pub mod envelope;
pub mod job_items;
pub mod submit;
pub mod trust;
pub mod worker;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::Principal;
use crate::blob::finalize::{FinalizeError, finalize};
use crate::config::check_org_name;
use crate::context::Realnet;
use crate::extensions::HandlerError;
use crate::extensions::invoke::{self, CallError, Target};
use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::item::ops::{self, Change, NewItem, Origin};
use crate::item::prepared::Prepared;
use crate::store::{StoreError, Write};

pub use envelope::JobEnvelope;

/// At most this many items in one bulk job (DynamoDB writes 100 records per transaction).
pub const MAX_BULK: usize = 25;

/// The key a job's record is kept under, in its org: its scheduled run; else the sending
/// account's idempotency key; else its `Job` item; else the message. The namespaces are
/// apart, so no client key names a scheduled run and no account's key another's.
pub fn record_key(job: &JobEnvelope, principal: &Principal, message_id: &str) -> String {
    let account = principal.account.map(|a| a.to_string()).unwrap_or_default();
    match (&job.run, &job.idempotency_key, job.job) {
        (Some(run), _, _) => format!("run:{run}"),
        (None, Some(key), _) => format!("account:{account}:{key}"),
        (None, None, Some(item)) => format!("job:{item}"),
        (None, None, None) => format!("message:{message_id}"),
    }
}

/// Why a job did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobFailure {
    /// Retrying cannot help: malformed, unknown kind, wrong payload, no such actor, no rights,
    /// invalid items.
    #[error("{0}")]
    Permanent(String),
    /// Worth another delivery: the store was unavailable or a version changed meanwhile.
    #[error("{0}")]
    Retry(String),
    /// The job's record exists: another delivery ran it, and its effects were not written
    /// again.
    #[error("the job has already run")]
    AlreadyRan,
}

impl From<ItemError> for JobFailure {
    fn from(e: ItemError) -> Self {
        match e {
            ItemError::Store(StoreError::Unavailable(m)) => JobFailure::Retry(m),
            ItemError::Store(e @ StoreError::VersionConflict { .. }) => {
                JobFailure::Retry(e.to_string())
            }
            ItemError::Store(StoreError::Backend(m)) => JobFailure::Retry(m),
            ItemError::Store(StoreError::JobRecorded(_)) => JobFailure::AlreadyRan,
            ItemError::Busy(b) => JobFailure::Retry(b.to_string()),
            other => JobFailure::Permanent(other.to_string()),
        }
    }
}

impl From<FinalizeError> for JobFailure {
    fn from(e: FinalizeError) -> Self {
        match e {
            FinalizeError::Item(e) => e.into(),
            e @ FinalizeError::Confirmed(_) => JobFailure::Permanent(e.to_string()),
            // The upload may still be under way, or storage unavailable: worth another try
            // (the queue's receive count bounds them).
            e @ (FinalizeError::NotUploaded(_) | FinalizeError::Blob(_)) => {
                JobFailure::Retry(e.to_string())
            }
        }
    }
}

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        ItemError::from(e).into()
    }
}

/// Decodes and checks an envelope; every refusal is permanent and says what is wrong.
pub fn decode(body: &str) -> Result<JobEnvelope, JobFailure> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let envelope: JobEnvelope = serde_path_to_error::deserialize(de)
        .map_err(|e| JobFailure::Permanent(format!("malformed job envelope: {e}")))?;
    check_org_name(&envelope.org).map_err(JobFailure::Permanent)?;
    for (field, value) in [
        ("idempotency_key", &envelope.idempotency_key),
        ("run", &envelope.run),
    ] {
        if let Some(k) = value
            && (k.is_empty() || k.len() > 200)
        {
            return Err(JobFailure::Permanent(format!(
                "{field} must be 1 to 200 characters"
            )));
        }
    }
    Ok(envelope)
}

fn payload<T: serde::de::DeserializeOwned>(kind: &str, v: &Value) -> Result<T, JobFailure> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| JobFailure::Permanent(format!("{kind} payload: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateItems {
    items: Vec<CreateItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateItem {
    #[serde(rename = "type")]
    type_name: String,
    name: String,
    #[serde(default)]
    parent: Option<Uuid>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateItems {
    items: Vec<UpdateItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateItem {
    id: Uuid,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
    /// The version the change is based on, like `If-Match`.
    #[serde(default)]
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteItems {
    ids: Vec<Uuid>,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinalizeFile {
    file: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallExtension {
    extension: String,
    handler: String,
    #[serde(default)]
    payload: Value,
}

impl CallExtension {
    fn target(&self) -> Target<'_> {
        Target {
            extension: &self.extension,
            handler: &self.handler,
        }
    }
}

impl From<CallError> for JobFailure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Item(e) => e.into(),
            // A remote extension that failed may answer next time.
            CallError::Handler(HandlerError::Remote(m) | HandlerError::Unavailable(m)) => {
                JobFailure::Retry(m)
            }
            e => JobFailure::Permanent(e.to_string()),
        }
    }
}

fn bulk<T>(kind: &str, list: &[T]) -> Result<(), JobFailure> {
    if list.is_empty() || list.len() > MAX_BULK {
        return Err(JobFailure::Permanent(format!(
            "{kind} takes 1 to {MAX_BULK} items, not {}",
            list.len()
        )));
    }
    Ok(())
}

/// The principal a signed job acts as: its actor, an enabled account of its org.
pub async fn actor(rn: &Realnet, job: &JobEnvelope) -> Result<Principal, JobFailure> {
    rn.job_principal(&job.org, &job.actor)
        .await?
        .ok_or_else(|| {
            JobFailure::Permanent(format!(
                "the actor {} is not an enabled account of org {:?}",
                job.actor, job.org
            ))
        })
}

enum Work {
    Create(CreateItems),
    Update(UpdateItems),
    Delete(DeleteItems),
    Finalize(FinalizeFile),
    Call(CallExtension),
}

/// The kinds of job the worker runs.
pub const KINDS: [&str; 5] = [
    "items.create",
    "items.update",
    "items.delete",
    "files.finalize",
    "extension.call",
];

/// What to say of a job whose kind is none of [`KINDS`].
pub fn unknown_kind(kind: &str) -> String {
    format!("unknown job kind {kind:?}: use {}", KINDS.join(", "))
}

/// The work a job of `kind` asks for, if its payload has the right shape.
fn work(kind: &str, payload_value: &Value) -> Result<Work, JobFailure> {
    let work = match kind {
        "items.create" => Work::Create(payload(kind, payload_value)?),
        "items.update" => Work::Update(payload(kind, payload_value)?),
        "items.delete" => Work::Delete(payload(kind, payload_value)?),
        "files.finalize" => Work::Finalize(payload(kind, payload_value)?),
        "extension.call" => Work::Call(payload(kind, payload_value)?),
        other => return Err(JobFailure::Permanent(unknown_kind(other))),
    };
    match &work {
        Work::Create(c) => bulk(kind, &c.items)?,
        Work::Update(u) => bulk(kind, &u.items)?,
        Work::Delete(d) => bulk(kind, &d.ids)?,
        Work::Finalize(_) | Work::Call(_) => {}
    }
    Ok(work)
}

/// The record that the job under `key` ran, with its outcome, kept for
/// `REALNET_JOB_RECORD_TTL`.
pub fn record(rn: &Realnet, key: &str, outcome: Value) -> Write {
    let now = chrono::Utc::now();
    Write::RecordJob {
        key: key.to_string(),
        outcome,
        now,
        expires: now + chrono::Duration::from_std(rn.config.job_record_ttl).unwrap_or_default(),
    }
}

/// Whether a job of `kind` with `payload` could run: what a producer can know before sending.
pub fn check(kind: &str, payload: &Value) -> Result<(), String> {
    work(kind, payload).map(drop).map_err(|e| e.to_string())
}

/// What [`invoke::check`] says of an `extension.call` job as `p` (the call right, the
/// handler, its input schema), so that `POST /api/jobs` refuses one before it is queued, as
/// `?async=true` does; other kinds are checked when they run.
pub async fn check_call(
    rn: &Realnet,
    p: &Principal,
    kind: &str,
    payload: &Value,
) -> Result<(), CallError> {
    if let Ok(Work::Call(c)) = work(kind, payload) {
        invoke::check(rn, p, c.target(), &c.payload).await?;
    }
    Ok(())
}

/// The checked changes of a job's work, as `p`: nothing is written.
async fn prepare(rn: &Realnet, p: &Principal, work: Work) -> Result<Vec<Prepared>, JobFailure> {
    let mut batch = Vec::new();
    match work {
        Work::Create(c) => {
            for i in c.items {
                let input = NewItem {
                    type_name: i.type_name,
                    name: i.name,
                    parent: i.parent,
                    attributes: i.attributes,
                };
                batch.push(ops::prepare_create(rn, p, input, None, Origin::Client).await?);
            }
        }
        Work::Update(u) => {
            for i in u.items {
                let change = Change::Patch {
                    name: i.name,
                    parent: None,
                    attributes: i.attributes,
                };
                batch.push(
                    ops::prepare_update(rn, p, i.id, &change, i.version, None, Origin::Client)
                        .await?,
                );
            }
        }
        Work::Delete(d) => {
            for id in d.ids {
                batch.push(ops::prepare_delete(rn, p, id, d.recursive, None, None).await?);
            }
        }
        Work::Finalize(f) => batch.push(finalize(rn, p, f.file).await?),
        // A handler's writes are known only once it ran: checked, not prepared.
        Work::Call(c) => invoke::check(rn, p, c.target(), &c.payload).await?,
    }
    Ok(batch)
}

/// The work of a job of `kind` with `payload`, checked as far as it can be without the store:
/// its shape, and that it carries no secret.
fn checked_work(rn: &Realnet, kind: &str, payload: &Value) -> Result<Work, JobFailure> {
    let work = work(kind, payload)?;
    if let Some(m) = job_items::secret_in(rn, kind, payload) {
        return Err(JobFailure::Permanent(m));
    }
    Ok(work)
}

/// Whether `p` could run a job of `kind` with `payload` now (a schedule's job is checked so
/// when it is set): its items checked and the rights it needs held. A file not uploaded yet
/// does not count against it.
pub async fn rehearse(
    rn: &Realnet,
    p: &Principal,
    kind: &str,
    payload: &Value,
) -> Result<(), ItemError> {
    let mut work = match checked_work(rn, kind, payload) {
        Ok(w) => w,
        Err(e) => return Err(ValidationErrors::single("job", e.to_string()).into()),
    };
    // Rights do not depend on versions, and a version that is not current yet would stop the
    // rehearsal at its item (a retry) before the items after it are checked.
    if let Work::Update(u) = &mut work {
        for i in &mut u.items {
            i.version = None;
        }
    }
    match prepare(rn, p, work).await {
        Ok(_) | Err(JobFailure::Retry(_)) | Err(JobFailure::AlreadyRan) => Ok(()),
        Err(JobFailure::Permanent(m)) => Err(ValidationErrors::single("job", m).into()),
    }
}

/// Runs one job as `p`, its proven sender's account, under `key` (see [`worker`]): all of its
/// effects, and the record that it ran, in one transaction; or none of them. If the key's
/// record exists, nothing is written ([`JobFailure::AlreadyRan`]).
pub async fn run(
    rn: &Arc<Realnet>,
    p: &Principal,
    job: &JobEnvelope,
    key: &str,
) -> Result<Value, JobFailure> {
    let work = checked_work(rn, &job.kind, &job.payload)?;
    if let Work::Call(mut c) = work {
        let payload = std::mem::take(&mut c.payload);
        let outcome = invoke::run(rn, p, c.target(), payload, job.request_id.clone()).await?;
        let result = outcome.result.clone();
        let record = record(rn, key, json!({ "result": result }));
        return Ok(outcome.commit(rn, p, vec![record]).await?);
    }
    let batch = prepare(rn, p, work).await?;
    let items: Vec<Value> = batch
        .iter()
        .filter_map(|b| b.item.as_ref())
        .map(|i| json!({"id": i.id, "version": i.version}))
        .collect();
    let result = json!({"count": batch.len(), "items": items});
    ops::commit_with(
        rn,
        p,
        batch,
        vec![record(rn, key, json!({ "result": result }))],
    )
    .await?;
    Ok(result)
}
