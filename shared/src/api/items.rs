//! `/api/items` and the type endpoints (`/api/{endpoint}`, e.g. `/api/files`): the same
//! handlers serve both, an endpoint restricting them to its type and subtypes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{JsonBody, QueryPairs, etag, if_match, item_id, none_match, recursive_flag};
use super::state::ApiState;
use crate::auth::Principal;
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::extensions::source;
use crate::item::Item;
use crate::item::ops::{self, Change, NewItem};
use crate::query::{ItemQuery, ParentFilter, QueryError};

/// The type a route is restricted to: `None` on `/api/items`, the endpoint's type on
/// `/api/{endpoint}`.
pub struct Scope(Option<String>);

/// A route's scope and the item id in its path.
pub struct Target {
    scope: Option<String>,
    id: Uuid,
}

async fn path_params(
    parts: &mut Parts,
    rn: &Arc<Realnet>,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, rn)
        .await
        .map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn scope_of(rn: &Realnet, params: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match params.get("endpoint") {
        None => Ok(None),
        Some(ep) => rn
            .types
            .by_endpoint(ep)
            .map(|t| Some(t.name.clone()))
            .ok_or_else(|| ApiError::not_found(format!("no route /api/{ep}"))),
    }
}

impl FromRequestParts<ApiState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let rn = &state.rn;
        let params = path_params(parts, rn).await?;
        Ok(Scope(scope_of(rn, &params)?))
    }
}

impl FromRequestParts<ApiState> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let rn = &state.rn;
        let params = path_params(parts, rn).await?;
        let scope = scope_of(rn, &params)?;
        let id = item_id(params.get("id").map(String::as_str).unwrap_or_default())?;
        Ok(Target { scope, id })
    }
}

/// `POST` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    /// Required on `/api/items`; on a type endpoint it defaults to the endpoint's type.
    #[serde(rename = "type")]
    type_name: Option<String>,
    name: String,
    parent: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: Map<String, Value>,
}

/// `PATCH` body: only what is given changes; an attribute set to `null` is removed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchItem {
    name: Option<String>,
    /// An item id, or `null` to move the item to the root.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    parent: Option<Option<Uuid>>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
}

/// `PUT` body: the item's new name, parent and attributes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceItem {
    name: String,
    parent: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: Map<String, Value>,
}

/// Tells a `null` that was sent (`Some(None)`) from a field that was left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ItemPage {
    pub(super) items: Vec<Item>,
    /// Pass as `cursor` to get the next page; `null` on the last page. A page may hold fewer
    /// than `limit` items, even none, while this is set (a store reading within a budget
    /// ended it early): read on until it is `null`.
    pub(super) next_cursor: Option<String>,
}

/// A new API key item and its token.
#[derive(Serialize)]
struct WithKey<'a> {
    #[serde(flatten)]
    item: &'a Item,
    key: String,
}

fn with_etag(mut response: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

pub(super) async fn page(
    api: &ApiState,
    principal: &Principal,
    mut query: ItemQuery,
) -> Result<Json<ItemPage>, ApiError> {
    let codec = api.cursor_codec().await?;
    codec.decode(&principal.org, &mut query)?;
    let page = match source::query(&api.rn, principal, &query).await? {
        Some(page) => page,
        None => ops::query(&api.rn, principal, &query).await?,
    };
    Ok(Json(ItemPage {
        next_cursor: page.next.map(|p| codec.encode(&principal.org, &query, &p)),
        items: page.items,
    }))
}

#[utoipa::path(get, path = "/api/items", operation_id = "list_items", tag = "items",
    params(
        ("type" = Option<String>, Query, description = "A type; matches its subtypes too"),
        ("parent" = Option<String>, Query, description = "An item id, or root"),
        ("name" = Option<String>, Query, description = "Exact name, or a prefix ending in *"),
        ("q" = Option<String>, Query, description = "Words to find in the name and string attributes"),
        ("sort" = Option<String>, Query, description = "name, created, updated or attr.<field>; - for descending"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "A page of items", body = ItemPage),
        (status = 400, description = "Unknown parameter, field, operator or sort key", body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    principal: Principal,
    Scope(scope): Scope,
    QueryPairs(params): QueryPairs,
) -> Result<Json<ItemPage>, ApiError> {
    let query = ItemQuery::parse(&api.rn.types, &params, scope.as_deref())?;
    page(&api, &principal, query).await
}

#[utoipa::path(get, path = "/api/items/{id}/children", operation_id = "list_children", tag = "items",
    params(("id" = Uuid, Path, description = "Item id")),
    responses((status = 200, description = "A page of the item's children", body = ItemPage),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody)))]
pub async fn children(
    State(api): State<ApiState>,
    principal: Principal,
    target: Target,
    QueryPairs(params): QueryPairs,
) -> Result<Json<ItemPage>, ApiError> {
    if params.iter().any(|(k, _)| k == "parent") {
        return Err(
            QueryError::new("parent", "children are always of the item in the path").into(),
        );
    }
    ops::get(&api.rn, &principal, target.id, target.scope.as_deref()).await?;
    let mut query = ItemQuery::parse(&api.rn.types, &params, None)?;
    query.parent = Some(ParentFilter::Id(target.id));
    page(&api, &principal, query).await
}

#[utoipa::path(post, path = "/api/items", operation_id = "create_item", tag = "items", request_body = CreateItem,
    responses((status = 201, description = "Created; Location and ETag headers", body = Item),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 409, description = "A username or identity link is taken", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid item; details name each field", body = ErrorBody)))]
pub async fn create(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    Scope(scope): Scope,
    JsonBody(body): JsonBody<CreateItem>,
) -> Result<Response, ApiError> {
    let type_name = match (body.type_name, scope.as_deref()) {
        (Some(t), _) => t,
        (None, Some(s)) => s.to_string(),
        (None, None) => {
            return Err(
                crate::item::attributes::ValidationErrors::single("type", "is required").into(),
            );
        }
    };
    let input = NewItem {
        type_name,
        name: body.name,
        parent: body.parent,
        attributes: body.attributes,
    };
    let (item, key) = if source::is_bound(&rn, &input.type_name) {
        (
            source::create(&rn, &principal, input, scope.as_deref()).await?,
            None,
        )
    } else {
        ops::create(&rn, &principal, input, scope.as_deref()).await?
    };
    // An API key's token is shown once, beside the item; it is not an attribute.
    let body = match key {
        None => Json(&item).into_response(),
        Some(key) => Json(WithKey { item: &item, key }).into_response(),
    };
    let mut response = with_etag((StatusCode::CREATED, body).into_response(), item.version);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/items/{}", item.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The module-bound type whose endpoint the route is, if it is one: its items are not in
/// the store, so only that endpoint reaches them by id.
fn bound<'a>(rn: &Realnet, target: &'a Target) -> Option<&'a str> {
    target.scope.as_deref().filter(|t| source::is_bound(rn, t))
}

#[utoipa::path(get, path = "/api/items/{id}", operation_id = "get_item", tag = "items",
    params(("id" = Uuid, Path, description = "Item id")),
    responses((status = 200, description = "The item, with its ETag", body = Item),
        (status = 304, description = "If-None-Match names the current version"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody)))]
pub async fn get(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let item = match bound(&rn, &target) {
        Some(t) => source::get(&rn, &principal, t, target.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no item with id {}", target.id)))?,
        None => ops::get(&rn, &principal, target.id, target.scope.as_deref()).await?,
    };
    let response = if none_match(&headers, item.version) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, Json(&item)).into_response()
    };
    Ok(with_etag(response, item.version))
}

#[utoipa::path(patch, path = "/api/items/{id}", operation_id = "patch_item", tag = "items", request_body = PatchItem,
    params(("id" = Uuid, Path, description = "Item id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on")),
    responses((status = 200, description = "The changed item", body = Item),
        (status = 400, description = "Malformed id, body or If-Match", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 409, description = "The move would make a cycle", body = ErrorBody),
        (status = 412, description = "The item changed since that ETag", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid change", body = ErrorBody)))]
pub async fn patch(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    target: Target,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchItem>,
) -> Result<Response, ApiError> {
    let change = Change::Patch {
        name: body.name,
        parent: body.parent,
        attributes: body.attributes,
    };
    update(&rn, &principal, target, &headers, change).await
}

#[utoipa::path(put, path = "/api/items/{id}", operation_id = "put_item", tag = "items", request_body = ReplaceItem,
    params(("id" = Uuid, Path, description = "Item id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on")),
    responses((status = 200, description = "The replaced item", body = Item),
        (status = 400, description = "Malformed id, body or If-Match", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 409, description = "The move would make a cycle", body = ErrorBody),
        (status = 412, description = "The item changed since that ETag", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid item", body = ErrorBody)))]
pub async fn put(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    target: Target,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ReplaceItem>,
) -> Result<Response, ApiError> {
    let change = Change::Replace {
        name: body.name,
        parent: body.parent,
        attributes: body.attributes,
    };
    update(&rn, &principal, target, &headers, change).await
}

/// `PATCH` and `PUT`: the change, conditional on `If-Match` when given.
async fn update(
    rn: &Arc<Realnet>,
    principal: &Principal,
    target: Target,
    headers: &HeaderMap,
    change: Change,
) -> Result<Response, ApiError> {
    let expected = if_match(headers)?;
    let scope = target.scope.as_deref();
    let item = match bound(rn, &target) {
        Some(t) => source::update(rn, principal, t, target.id, change, expected).await?,
        None => ops::update(rn, principal, target.id, change, expected, scope).await?,
    };
    Ok(with_etag(
        (StatusCode::OK, Json(&item)).into_response(),
        item.version,
    ))
}

#[utoipa::path(delete, path = "/api/items/{id}", operation_id = "delete_item", tag = "items",
    params(("id" = Uuid, Path, description = "Item id"),
        ("recursive" = Option<bool>, Query, description = "Also delete its descendants")),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id, parameter or If-Match", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 409, description = "The item has children", body = ErrorBody),
        (status = 412, description = "The item changed since that ETag", body = ErrorBody)))]
pub async fn delete(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    target: Target,
    headers: HeaderMap,
    QueryPairs(params): QueryPairs,
) -> Result<StatusCode, ApiError> {
    let recursive = recursive_flag(&params)?;
    let expected = if_match(&headers)?;
    if let Some(t) = bound(&rn, &target) {
        source::delete(&rn, &principal, t, target.id, expected).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    ops::delete(
        &rn,
        &principal,
        target.id,
        recursive,
        expected,
        target.scope.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
