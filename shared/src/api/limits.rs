//! What the router does before any route runs: answer browsers of the configured origins
//! (`REALNET_CORS_ORIGINS`), refuse a request at once when `REALNET_MAX_CONCURRENT_REQUESTS`
//! are already in flight rather than queue it behind a slow store, and stop a request that
//! runs longer than `REALNET_REQUEST_TIMEOUT`. Both refusals are `503` JSON errors with
//! `Retry-After`, so a client backs off instead of piling on. A request whose code panics (a
//! linked extension's item source, say) is a `500` JSON error naming its request id, and the
//! process serves on. The same layers run under `realnet serve`, function URLs, load
//! balancers and API Gateway.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use futures_util::FutureExt;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{Config, CorsOrigins};
use crate::error::ApiError;

/// The headers a browser may send and read across origins.
const ALLOWED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
];
const EXPOSED: [HeaderName; 3] = [
    header::ETAG,
    header::LOCATION,
    HeaderName::from_static("x-request-id"),
];

/// The CORS answers for `origins`; none when no origin is configured.
pub fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(ALLOWED)
            .expose_headers(EXPOSED)
            .max_age(Duration::from_secs(3600)),
    )
}

/// `routes` stopped when they run longer than `limit`: apply before adding the routes that
/// stream bodies of any length (file contents), which the limit must not cut off.
pub fn with_timeout<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    limit: Duration,
) -> Router<S> {
    routes.route_layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(refused))
            .timeout(limit),
    )
}

/// `router` with the concurrency limit (one for the whole router, not one per route), panics
/// caught, and the CORS answers of `config`. The request id must be set outside it.
pub fn guarded<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    let router = router
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(refused))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(
                    config.max_concurrent_requests,
                )),
        )
        .layer(axum::middleware::from_fn(caught));
    match cors(&config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The request's answer, or a `500` naming its request id if its code panicked: the panic ends
/// the request, not the process. Item writes commit only once a request's checks and its
/// extension's work are done, so what a panicking request staged is not saved.
async fn caught(req: Request, next: Next) -> Response {
    // A header value clones by reference count: read only if the request panics.
    let id = req.headers().get(super::REQUEST_ID).cloned();
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            let request_id = id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::error!(request_id, "the request panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!(
                    "the server failed unexpectedly on this request (request id {request_id}); nothing it staged was saved"
                ),
            )
            .into_response()
        }
    }
}

async fn refused(e: BoxError) -> ApiError {
    let mut error = if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took longer than the server allows (REALNET_REQUEST_TIMEOUT) and was stopped: read what it would have changed before sending a write again",
        )
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is answering as many requests as it allows (REALNET_MAX_CONCURRENT_REQUESTS): retry in a moment",
        )
    } else {
        tracing::error!(error = %e, "a request failed in the router's layers");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
    };
    error
        .headers
        .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
    error
}
