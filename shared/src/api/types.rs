//! `/api/types`: the loaded type definitions, read-only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::caller::Authenticated;
use super::extract::PathParams;
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::types::TypeDef;

#[derive(Serialize, utoipa::ToSchema)]
pub struct TypeList<'a> {
    types: &'a [TypeDef],
}

#[utoipa::path(get, path = "/api/types", operation_id = "list_types", tag = "types",
    responses((status = 200, description = "Every type, in load order", body = TypeList)))]
pub async fn list(State(rn): State<Arc<Realnet>>, _: Authenticated) -> axum::response::Response {
    use axum::response::IntoResponse;
    Json(TypeList {
        types: rn.types.all(),
    })
    .into_response()
}

#[utoipa::path(get, path = "/api/types/{name}", operation_id = "get_type", tag = "types",
    params(("name" = String, Path, description = "Type name")),
    responses((status = 200, description = "The type", body = TypeDef),
        (status = 404, description = "No such type", body = ErrorBody)))]
pub async fn get(
    State(rn): State<Arc<Realnet>>,
    _: Authenticated,
    PathParams(name): PathParams<String>,
) -> Result<Json<TypeDef>, ApiError> {
    rn.types
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no type named {name:?}")))
}
