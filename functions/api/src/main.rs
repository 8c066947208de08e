//! The Realnet HTTP API as an AWS Lambda function (API Gateway REST v1, HTTP v2, function
//! URLs, Application Load Balancer target groups). It builds the context once per container
//! and hands the shared router to `lambda_http`. The only things added here translate the
//! front door's specifics: its request id (the Lambda invocation's for a load balancer, which
//! sends none) becomes the `x-request-id`; the stage that `lambda_http` puts in front of REST API paths is
//! taken off again, so routes match the same paths as under `realnet serve`; the claims a JWT
//! (or Cognito, or Lambda) authorizer verified and the client's source IP are handed to the
//! router as request extensions, which no header a client sends can forge (behind a load
//! balancer the client's address is the last `x-forwarded-for` entry, the one it appended).

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::http::{HeaderValue, Uri};
use lambda_http::request::RequestContext;
use lambda_http::tower::ServiceBuilder;
use lambda_http::{Error, Request, RequestExt};
use realnet::auth::{AuthorizerClaims, ClientAddr};
use realnet::{Realnet, api};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rn = Realnet::start_function("api", realnet_extensions::linked());
    let app = ServiceBuilder::new()
        .map_request(from_gateway)
        .service(api::router(Arc::new(rn)));
    lambda_http::run(app).await
}

/// Uses API Gateway's request id (replacing any the client sent) and removes the stage
/// prefix `lambda_http` adds to paths of named stages (unless
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` already told it not to).
fn from_gateway(mut req: Request) -> Request {
    let (id, stage, claims, source_ip) = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => (
            c.request_id.clone(),
            c.stage.clone(),
            // Cognito user pool authorizers put the token's claims under `claims`; Lambda
            // authorizers put their context fields at the top.
            Some(match c.authorizer.fields.get("claims") {
                Some(Value::Object(claims)) => strings(claims.iter()),
                _ => strings(c.authorizer.fields.iter()),
            })
            .filter(|c| !c.is_empty()),
            c.identity.source_ip.clone(),
        ),
        Some(RequestContext::ApiGatewayV2(c)) => (
            c.request_id.clone(),
            c.stage.clone(),
            c.authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| jwt.claims.clone()),
            c.http.source_ip.clone(),
        ),
        Some(RequestContext::Alb(_)) => (
            req.lambda_context_ref().map(|c| c.request_id.clone()),
            None,
            None,
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(|ip| ip.trim().to_string()),
        ),
        _ => (None, None, None, None),
    };
    if let Some(claims) = claims {
        req.extensions_mut().insert(AuthorizerClaims(claims));
    }
    if let Some(ip) = source_ip.and_then(|ip| ip.parse().ok()) {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        req.headers_mut().insert(api::REQUEST_ID, value);
    }
    let added = std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_none();
    if let Some(stage) = stage.filter(|s| added && s != "$default") {
        let prefix = format!("/{stage}");
        let uri = req.uri();
        if let Some(rest) = uri
            .path()
            .strip_prefix(&prefix)
            .filter(|r| r.starts_with('/'))
        {
            let path_and_query = match uri.query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_string(),
            };
            let mut parts = uri.clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    req
}

/// The string-valued entries of an authorizer's fields.
fn strings<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>) -> HashMap<String, String> {
    fields
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}
