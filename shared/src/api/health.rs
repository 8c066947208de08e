//! `/ping` and `/time`.

use axum::Json;
use serde::Serialize;

use super::caller::Authenticated;

/// Liveness: no auth, no store.
#[utoipa::path(get, path = "/ping", operation_id = "ping", tag = "health",
    responses((status = 200, description = "The service is up", body = String, content_type = "text/plain")))]
pub async fn ping() -> &'static str {
    "pong"
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Time {
    /// The server's current time, RFC 3339 UTC.
    time: String,
}

#[utoipa::path(get, path = "/time", operation_id = "get_time", tag = "health",
    responses((status = 200, description = "The server time", body = Time)))]
pub async fn time(_: Authenticated) -> Json<Time> {
    Json(Time {
        time: crate::types::value::format_datetime(chrono::Utc::now()),
    })
}
