//! Sending a job on behalf of an account: the `Job` item that reports it, then the envelope on
//! the queue. `POST /api/jobs` and the scheduler's tick both send jobs this way.

use serde_json::{Map, Value, json};

use super::JobEnvelope;
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::Item;
use crate::item::ops::{self, Change, ItemError, NewItem};
use crate::query::{AttrFilter, ItemQuery, Op, Scalar};
use crate::queue::QueueError;
use crate::types::FieldKind;

pub const JOB: &str = "Job";

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("no job queue is configured (REALNET_QUEUE_URL)")]
    NoQueue,
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Item(#[from] ItemError),
}

/// A job to send as `principal` (an account).
#[derive(Debug)]
pub struct Submission {
    pub kind: String,
    pub payload: Value,
    pub idempotency_key: Option<String>,
    pub request_id: Option<String>,
}

/// Records a `Job` item that `principal` owns and sends the job; with an idempotency key the
/// account already sent, answers with that job and sends nothing. The caller has checked the
/// kind and payload ([`super::check`]).
pub async fn submit(
    rn: &Realnet,
    principal: &Principal,
    actor: &str,
    job: Submission,
) -> Result<Item, SubmitError> {
    let queue = rn.queue().ok_or(SubmitError::NoQueue)?;
    if let Some(key) = &job.idempotency_key
        && let Some(existing) = job_with_key(rn, principal, key).await?
    {
        return Ok(existing);
    }
    let mut attributes = Map::new();
    attributes.insert("kind".into(), json!(job.kind));
    attributes.insert("status".into(), json!("queued"));
    attributes.insert("payload".into(), job.payload.clone());
    if let Some(k) = &job.idempotency_key {
        attributes.insert("idempotency_key".into(), json!(k));
    }
    // The account owns its job item (and so may read it); writing it is the system's doing,
    // so it is written with the org admin's rights.
    let mut recorder = principal.clone();
    recorder.admin = true;
    let input = NewItem {
        type_name: JOB.into(),
        name: job.kind.clone(),
        parent: None,
        attributes,
    };
    let (item, _) = ops::create_by_server(rn, &recorder, input, None).await?;
    let envelope = JobEnvelope {
        kind: job.kind,
        org: principal.org.clone(),
        actor: actor.to_string(),
        payload: job.payload,
        idempotency_key: Some(
            job.idempotency_key
                .unwrap_or_else(|| format!("job:{}", item.id)),
        ),
        request_id: job.request_id,
        job: Some(item.id),
    };
    if let Err(e) = queue.send(&envelope).await {
        // Nothing was queued: the record says so rather than staying queued forever.
        let failed = Change::Patch {
            name: None,
            parent: None,
            attributes: Some(Map::from_iter([
                ("status".to_string(), json!("failed")),
                ("error".to_string(), json!(e.to_string())),
            ])),
        };
        ops::update_by_server(rn, &recorder, item.id, failed, None, Some(JOB))
            .await
            .ok();
        return Err(e.into());
    }
    Ok(item)
}

/// The account's job sent with this idempotency key, if any.
async fn job_with_key(
    rn: &Realnet,
    principal: &Principal,
    key: &str,
) -> Result<Option<Item>, ItemError> {
    let mut query = ItemQuery::parse(&rn.types, &[("type".into(), JOB.into())], None)
        .expect("a fixed query parses");
    query.attrs = vec![AttrFilter {
        field: "idempotency_key".into(),
        kind: FieldKind::String,
        op: Op::Eq,
        values: vec![Scalar::Text(key.to_string())],
    }];
    query.limit = 1;
    Ok(ops::query(rn, principal, &query)
        .await?
        .items
        .into_iter()
        .next())
}
