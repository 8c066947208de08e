//! `/api/jobs`: send a job to the worker and follow it. A job is recorded as a `Job` item the
//! caller owns (status queued → running → succeeded | failed, attempts, result or error) and
//! sent to the queue (SQS, or the server's own runner under `realnet serve`) as an envelope
//! acting as the caller's account.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::REQUEST_ID;
use super::extract::{JsonBody, item_id};
use crate::auth::Authenticated;
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::item::Item;
use crate::item::attributes::ValidationErrors;
use crate::item::ops::{self, NewItem};
use crate::jobs::{self, JobEnvelope};
use crate::query::{AttrFilter, ItemQuery, Op, Scalar};
use crate::queue::QueueError;
use crate::types::FieldKind;

const JOB: &str = "Job";

/// `POST /api/jobs` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// `items.create`, `items.update`, `items.delete` or `extension.call`.
    kind: String,
    #[schema(value_type = Object)]
    payload: Value,
    /// Sending the same key again answers with the job it started, and runs nothing more.
    idempotency_key: Option<String>,
}

/// A job's status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    id: Uuid,
    kind: String,
    /// queued, running, succeeded or failed.
    status: String,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    attempts: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Item> for JobStatus {
    fn from(item: &Item) -> Self {
        let a = &item.attributes;
        let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        JobStatus {
            id: item.id,
            kind: text("kind").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            result: a.get("result").cloned(),
            error: text("error"),
            attempts: a.get("attempts").and_then(Value::as_i64).unwrap_or(0),
            created_at: item.created_at,
            updated_at: item.updated_at,
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            QueueError::Unavailable(m) => {
                tracing::error!(error = %m, "queue unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the job queue is unavailable; try again shortly",
                )
            }
        }
    }
}

#[utoipa::path(post, path = "/api/jobs", operation_id = "create_job", tag = "jobs", request_body = NewJob,
    responses((status = 202, description = "Queued (or, for a repeated idempotency key, the job it started)", body = JobStatus),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "The caller is not an account", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown kind, or a payload of the wrong shape", body = ErrorBody),
        (status = 503, description = "No queue is configured, or it is unavailable", body = ErrorBody)))]
pub async fn create(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewJob>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let Some(actor) = principal.username.clone() else {
        return Err(ApiError::forbidden("jobs act as an account; log in as one"));
    };
    let mut errors = ValidationErrors::default();
    if let Err(m) = jobs::check(&body.kind, &body.payload) {
        errors.add("payload", m);
    }
    if let Some(k) = &body.idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        errors.add("idempotency_key", "must be 1 to 200 characters");
    }
    errors.into_result(())?;
    let Some(queue) = rn.queue() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no job queue is configured (REALNET_QUEUE_URL)",
        ));
    };
    if let Some(key) = &body.idempotency_key
        && let Some(existing) = job_with_key(&rn, &principal, key).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(JobStatus::from(&existing))));
    }
    let mut attributes = Map::new();
    attributes.insert("kind".into(), json!(body.kind));
    attributes.insert("status".into(), json!("queued"));
    attributes.insert("payload".into(), body.payload.clone());
    if let Some(k) = &body.idempotency_key {
        attributes.insert("idempotency_key".into(), json!(k));
    }
    // The caller owns its job item (and so may read it); writing it is the system's doing, so
    // it is written with the org admin's rights.
    let mut recorder = principal.clone();
    recorder.admin = true;
    let input = NewItem {
        type_name: JOB.into(),
        name: body.kind.clone(),
        parent: None,
        attributes,
    };
    let (item, _) = ops::create(&rn, &recorder, input, None).await?;
    let envelope = JobEnvelope {
        kind: body.kind,
        org: principal.org.clone(),
        actor,
        payload: body.payload,
        idempotency_key: Some(
            body.idempotency_key
                .unwrap_or_else(|| format!("job:{}", item.id)),
        ),
        request_id: headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        job: Some(item.id),
    };
    if let Err(e) = queue.send(&envelope).await {
        // Nothing was queued: the record says so rather than staying queued forever.
        let failed = crate::item::ops::Change::Patch {
            name: None,
            parent: None,
            attributes: Some(Map::from_iter([
                ("status".to_string(), json!("failed")),
                ("error".to_string(), json!(e.to_string())),
            ])),
        };
        ops::update(&rn, &recorder, item.id, failed, None, Some(JOB))
            .await
            .ok();
        return Err(e.into());
    }
    Ok((StatusCode::ACCEPTED, Json(JobStatus::from(&item))))
}

/// The caller's job sent with this idempotency key, if any.
async fn job_with_key(
    rn: &Realnet,
    principal: &crate::auth::Principal,
    key: &str,
) -> Result<Option<Item>, ApiError> {
    let mut query = ItemQuery::parse(&rn.types, &[("type".into(), JOB.into())], None)?;
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

#[utoipa::path(get, path = "/api/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job's status", body = JobStatus),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let id = item_id(&id)?;
    let item = ops::get(&rn, &principal, id, Some(JOB)).await?;
    Ok(Json(JobStatus::from(&item)))
}
