//! Extension handlers over HTTP: `POST /_schd/{portfolio}/{org}/call/{extension}/{handler}`
//! calls one (synchronously, or with `?async=true` as an `extension.call` job), and
//! `GET /api/extensions` lists what is registered (linked, and the remote `Extension` items
//! the caller may read) with each handler's schemas, and
//! `POST /api/extensions/{name}/rotate_secret` gives a webhook extension a new signing secret.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::caller::Authenticated;
use super::extract::{JsonBody, PathParams, QueryPairs, RequestIdOf};
use super::jobs::JobStatus;
use crate::auth::Principal;
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::extensions::invoke::{self, Target};
use crate::extensions::remote::RemoteExtension;
use crate::extensions::remote::secret;
use crate::item::Item;
use crate::item::ops;
use crate::jobs::envelope::Submission;
use crate::jobs::submit::submit;
use crate::query::ItemQuery;

#[derive(Deserialize)]
pub struct CallPath {
    portfolio: String,
    org: String,
    extension: String,
    handler: String,
}

/// `?async=true` or `?async=false` (the default), and nothing else.
fn run_async(params: &[(String, String)]) -> Result<bool, ApiError> {
    let mut run_async = false;
    for (k, v) in params {
        match (k.as_str(), v.as_str()) {
            ("async", "true") => run_async = true,
            ("async", "false") => run_async = false,
            ("async", _) => return Err(ApiError::bad_request("async must be true or false")),
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: a call takes only async"
                )));
            }
        }
    }
    Ok(run_async)
}

#[utoipa::path(post, path = "/_schd/{portfolio}/{org}/call/{extension}/{handler}",
    operation_id = "call_handler", tag = "extensions",
    params(
        ("portfolio" = String, Path, description = "The caller's org's portfolio (its `portfolio` attribute, else the org's name)"),
        ("org" = String, Path, description = "The caller's org"),
        ("extension" = String, Path, description = "Extension name"),
        ("handler" = String, Path, description = "Handler name"),
        ("async" = Option<bool>, Query, description = "true: queue the call as an extension.call job and answer 202 with the job"),
    ),
    request_body(content = Object, description = "The handler's payload (see GET /api/extensions for its schema)"),
    responses((status = 200, description = "The handler's result", body = Object),
        (status = 202, description = "Queued as a job", body = JobStatus),
        (status = 400, description = "Malformed body or query", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "No call permission, or refused by the handler", body = ErrorBody),
        (status = 404, description = "No such extension, handler, org or portfolio", body = ErrorBody),
        (status = 409, description = "Refused by the handler", body = ErrorBody),
        (status = 413, description = "Payload too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The payload does not match the handler's input schema, or the handler refused it", body = ErrorBody),
        (status = 502, description = "A remote extension failed", body = ErrorBody),
        (status = 503, description = "Unavailable; try again", body = ErrorBody)))]
pub async fn call(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    RequestIdOf(request_id): RequestIdOf,
    PathParams(path): PathParams<CallPath>,
    QueryPairs(params): QueryPairs,
    JsonBody(payload): JsonBody<Value>,
) -> Result<Response, ApiError> {
    // A segment that is not UTF-8 is a JSON 400 like every refusal, not axum's plain text.
    let run_async = run_async(&params)?;
    // Another org, or a portfolio that is not the caller's org's, is a route that does not
    // exist for this caller.
    let portfolio = rn.org_portfolio(&principal.org).await?;
    if path.org != principal.org || portfolio.as_deref() != Some(path.portfolio.as_str()) {
        return Err(ApiError::not_found(format!(
            "no org {:?} in portfolio {:?} for this caller",
            path.org, path.portfolio
        )));
    }
    let target = Target {
        extension: &path.extension,
        handler: &path.handler,
    };
    if !run_async {
        let result = invoke::call(&rn, &principal, target, payload, request_id).await?;
        return Ok(Json(result).into_response());
    }
    invoke::check(&rn, &principal, target, &payload).await?;
    let Some(actor) = principal.username.clone() else {
        return Err(ApiError::forbidden("jobs act as an account; log in as one"));
    };
    let job = Submission {
        kind: "extension.call".into(),
        payload: json!({"extension": path.extension, "handler": path.handler, "payload": payload}),
        idempotency_key: None,
        run: None,
        request_id,
    };
    // Boxed: a queued call's future (kilobytes) is not carried by every synchronous one.
    let item = Box::pin(submit(&rn, &principal, &actor, job)).await?;
    Ok((StatusCode::ACCEPTED, Json(JobStatus::from(&item))).into_response())
}

#[derive(Deserialize)]
pub struct ExtensionPath {
    name: String,
}

/// A webhook extension's item after a rotation, with its new signing secret (shown only
/// this once, as at create).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    #[serde(flatten)]
    item: Item,
    /// The new signing secret (`rnwhsec_...`); the old one signs nothing from now on.
    key: String,
}

#[utoipa::path(post, path = "/api/extensions/{name}/rotate_secret",
    operation_id = "rotate_extension_secret", tag = "extensions",
    params(("name" = String, Path, description = "A webhook extension's name (its `Extension` item's)")),
    responses((status = 200, description = "The item, at its new version, and the new secret as `key`, shown once", body = RotatedSecret),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an org admin (nor an admin rule on Extension)", body = ErrorBody),
        (status = 404, description = "No such extension in the caller's org", body = ErrorBody),
        (status = 409, description = "A Lambda extension, which has no signing secret", body = ErrorBody),
        (status = 503, description = "Unavailable; try again", body = ErrorBody)))]
pub async fn rotate_secret(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
    PathParams(path): PathParams<ExtensionPath>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let (item, key) = secret::rotate(&rn, &principal, &path.name).await?;
    Ok(Json(RotatedSecret { item, key }))
}

/// What `GET /api/extensions` lists.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExtensionList {
    extensions: Vec<ExtensionInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExtensionInfo {
    name: String,
    description: String,
    /// `linked` (a crate of this deployment), or a remote one configured as an `Extension`
    /// item: `webhook` or `lambda`.
    #[schema(example = "webhook")]
    kind: &'static str,
    handlers: Vec<HandlerInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HandlerInfo {
    name: String,
    description: String,
    /// The JSON Schema a payload must match, if the handler declares one.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    /// The JSON Schema of the handler's result, if it declares one.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
}

#[utoipa::path(get, path = "/api/extensions", operation_id = "list_extensions", tag = "extensions",
    responses((status = 200, description = "The linked extensions, and the remote ones the caller may read, with their handlers", body = ExtensionList),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 503, description = "Unavailable; try again", body = ErrorBody)))]
pub async fn list(
    State(rn): State<Arc<Realnet>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<ExtensionList>, ApiError> {
    let mut extensions: Vec<ExtensionInfo> = rn
        .extensions
        .linked()
        .iter()
        .map(|e| ExtensionInfo {
            name: e.name.to_string(),
            description: e.description.to_string(),
            kind: "linked",
            handlers: e
                .handlers()
                .iter()
                .map(|h| HandlerInfo {
                    name: h.name.to_string(),
                    description: h.description.to_string(),
                    input: h.input_schema().cloned(),
                    output: h.output_schema().cloned(),
                })
                .collect(),
        })
        .collect();
    extensions.extend(remote_extensions(&rn, &principal).await?);
    Ok(Json(ExtensionList { extensions }))
}

/// The remote extensions the caller may read (one whose item no longer reads as an
/// extension is left out, and logged).
async fn remote_extensions(
    rn: &Realnet,
    principal: &Principal,
) -> Result<Vec<ExtensionInfo>, ApiError> {
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = rn.types.subtypes(invoke::EXTENSION).to_vec();
    query.limit = crate::query::MAX_LIMIT;
    let mut infos = Vec::new();
    loop {
        let page = ops::query(rn, principal, &query).await?;
        for item in &page.items {
            match RemoteExtension::from_item(item, rn.config.extension_allow_loopback) {
                Ok(e) => infos.push(ExtensionInfo {
                    kind: e.endpoint.kind(),
                    name: e.name,
                    description: e.description,
                    handlers: e
                        .handlers
                        .into_iter()
                        .map(|h| HandlerInfo {
                            name: h.name,
                            description: h.description,
                            input: h.input,
                            output: h.output,
                        })
                        .collect(),
                }),
                Err(_) => tracing::warn!(
                    extension = %item.id,
                    "an Extension item is misconfigured and not listed"
                ),
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(infos),
        }
    }
}
