//! The Realnet HTTP API as an AWS Lambda function (API Gateway REST v1, HTTP v2, function
//! URLs). It builds the context once per container and hands the shared router to
//! `lambda_http`; the only thing added here is using API Gateway's request id as the
//! response's `x-request-id`.

use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::tower::ServiceBuilder;
use lambda_http::{Error, Request, RequestExt};
use realnet::config::Config;
use realnet::{Realnet, api};

#[tokio::main]
async fn main() -> Result<(), Error> {
    realnet::telemetry::init(true);
    let rn = match Config::from_env()
        .map_err(realnet::StartError::from)
        .and_then(Realnet::from_config)
    {
        Ok(rn) => rn,
        Err(e) => {
            // The full list (e.g. every type definition error) goes to the function's log.
            eprintln!("realnet api cannot start: {e}");
            std::process::exit(1);
        }
    };
    let app = ServiceBuilder::new()
        .map_request(gateway_request_id)
        .service(api::router(Arc::new(rn)));
    lambda_http::run(app).await
}

/// Replaces any client-sent `x-request-id` with the id API Gateway assigned.
fn gateway_request_id(mut req: Request) -> Request {
    let id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    if let Some(value) = id.and_then(|id| lambda_http::http::HeaderValue::from_str(&id).ok()) {
        req.headers_mut().insert(api::REQUEST_ID, value);
    }
    req
}
