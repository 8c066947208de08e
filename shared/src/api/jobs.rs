//! `/api/jobs`: send a job to the worker and follow it. A job is recorded as a `Job` item the
//! caller owns (status queued → running → succeeded | failed, attempts, result or error) and
//! sent to the queue (SQS, or the server's own runner under `realnet serve`) as an envelope
//! acting as the caller's account.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::caller::Authenticated;
use super::extract::{JsonBody, PathParams, RequestIdOf, item_id};
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::item::Item;
use crate::item::attributes::ValidationErrors;
use crate::item::ops;
use crate::jobs;
use crate::jobs::envelope::Submission;
use crate::jobs::submit::{JOB, check_key, submit};

/// `POST /api/jobs` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// `items.create`, `items.update`, `items.delete`, `files.finalize` or `extension.call`.
    kind: String,
    #[schema(value_type = Object)]
    payload: Value,
    /// Sending the same key again answers with the job it started, and runs nothing more.
    /// Keys are the sending account's own (another account's same key is another job); keys
    /// starting with `schedule:` are the scheduler's.
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

#[utoipa::path(post, path = "/api/jobs", operation_id = "create_job", tag = "jobs", request_body = NewJob,
    responses((status = 202, description = "Queued (or, for a repeated idempotency key, the job it started)", body = JobStatus),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "The caller is not an account, or may not call the extension.call job's handler", body = ErrorBody),
        (status = 404, description = "An extension.call job names no such extension or handler", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown kind, or a payload of the wrong shape (an extension.call's off its handler's input schema)", body = ErrorBody),
        (status = 503, description = "No queue is configured, or it is unavailable", body = ErrorBody)))]
pub async fn create(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    RequestIdOf(request_id): RequestIdOf,
    JsonBody(body): JsonBody<NewJob>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let Some(actor) = principal.username.clone() else {
        return Err(ApiError::forbidden("jobs act as an account; log in as one"));
    };
    let mut errors = ValidationErrors::default();
    if !jobs::KINDS.contains(&body.kind.as_str()) {
        errors.add("kind", jobs::unknown_kind(&body.kind));
    } else if let Err(m) = jobs::check(&body.kind, &body.payload) {
        errors.add("payload", m);
    } else if let Some(m) = jobs::job_items::secret_in(&rn, &body.kind, &body.payload) {
        errors.add("payload", m);
    }
    if let Some(k) = &body.idempotency_key
        && let Err(m) = check_key(k)
    {
        errors.add("idempotency_key", m);
    }
    errors.into_result(())?;
    jobs::check_call(&rn, &principal, &body.kind, &body.payload).await?;
    let job = Submission {
        kind: body.kind,
        payload: body.payload,
        idempotency_key: body.idempotency_key,
        run: None,
        request_id,
    };
    let item = submit(&rn, &principal, &actor, job).await?;
    Ok((StatusCode::ACCEPTED, Json(JobStatus::from(&item))))
}

#[utoipa::path(get, path = "/api/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job's status", body = JobStatus),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    PathParams(id): PathParams<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let id = item_id(&id)?;
    let item = ops::get(&rn, &principal, id, Some(JOB)).await?;
    Ok(Json(JobStatus::from(&item)))
}
