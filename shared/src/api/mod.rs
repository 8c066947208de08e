//! The HTTP API: one `axum::Router`, served by `functions/api` on Lambda and by
//! `realnet serve` locally, so a request behaves the same in both places. Routes are grouped by
//! resource; extractors parse and refuse bad input, so handlers read like `API.md`.

mod apps;
mod auth;
mod caller;
mod extensions;
mod extract;
mod files;
mod health;
mod items;
mod jobs;
mod limits;
mod openapi;
pub mod state;
mod types;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::context::Realnet;
use crate::error::ApiError;
use state::ApiState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API over `rn`.
pub fn router(rn: Arc<Realnet>) -> Router {
    let body_limit = rn.config.body_limit;
    let routes = Router::new()
        .route("/ping", get(health::ping))
        .route("/time", get(health::time))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/auth",
            get(auth::me).post(auth::login).delete(auth::logout),
        )
        .route("/api/types", get(types::list))
        .route("/api/types/{name}", get(types::get))
        .route("/api/items", get(items::list).post(items::create))
        .route(
            "/api/items/{id}",
            get(items::get)
                .patch(items::patch)
                .put(items::put)
                .delete(items::delete),
        )
        .route("/api/items/{id}/children", get(items::children))
        .route("/api/files", get(files::list).post(files::create))
        .route(
            "/api/files/{id}/confirm",
            axum::routing::post(files::confirm),
        )
        .route("/api/extensions", get(extensions::list))
        .route(
            "/api/extensions/{name}/rotate_secret",
            axum::routing::post(extensions::rotate_secret),
        )
        .route(
            "/_schd/{portfolio}/{org}/call/{extension}/{handler}",
            axum::routing::post(extensions::call),
        )
        .route("/api/apps", get(apps::list))
        .route("/api/apps/{id}/views/{view}", get(apps::view))
        .route("/api/jobs", axum::routing::post(jobs::create))
        .route("/api/jobs/{id}", get(jobs::get))
        // Type endpoints; the static routes above take precedence and the loader refuses
        // endpoints that would shadow them.
        .route("/api/{endpoint}", get(items::list).post(items::create))
        .route(
            "/api/{endpoint}/{id}",
            get(items::get)
                .patch(items::patch)
                .put(items::put)
                .delete(items::delete),
        );
    // File contents stream for as long as their size takes, past the request timeout.
    let routes = limits::with_timeout(routes, rn.config.request_timeout)
        .route(
            "/api/files/{id}/content",
            // Uploads are streamed and bounded by their declared size, not by the body limit.
            get(files::content).put(files::upload),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(crate::metrics::record_request));
    limits::guarded(routes, &rn.config)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            // The path only: query strings may carry what should not be logged.
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        .on_response(
                            DefaultOnResponse::new()
                                .level(tracing::Level::INFO)
                                .latency_unit(LatencyUnit::Micros),
                        ),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(ApiState::new(rn))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
