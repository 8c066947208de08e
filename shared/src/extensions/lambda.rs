//! Calling a Lambda extension through the Lambda Invoke API (`RequestResponse`): the same
//! JSON a webhook gets, and the function's JSON back. The client comes from the shared SDK
//! configuration, so `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`) points it at an
//! emulator such as `cargo lambda watch`.

use std::time::Duration;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::remote::{Failure, parse_answer};

async fn client() -> &'static Client {
    static CLIENT: OnceCell<Client> = OnceCell::const_new();
    CLIENT
        .get_or_init(|| async { Client::new(&crate::aws::sdk_config().await) })
        .await
}

/// Invokes `function` with `body`; its JSON answer, or why there is none.
pub async fn invoke(
    function: &str,
    body: Vec<u8>,
    timeout: Duration,
    limit: usize,
) -> Result<Value, Failure> {
    let call = client()
        .await
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(body))
        .send();
    let out = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| {
            Failure::Failed(format!(
                "function {function} did not answer within {} ms",
                timeout.as_millis()
            ))
        })?
        .map_err(|e| {
            Failure::Failed(format!(
                "invoking function {function} failed: {}",
                crate::aws::ErrorChain(&e)
            ))
        })?;
    let payload = out.payload().map(Blob::as_ref).unwrap_or_default();
    if payload.len() > limit {
        return Err(Failure::Failed(format!(
            "function {function} answered more than {limit} bytes"
        )));
    }
    if let Some(kind) = out.function_error() {
        let message = serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "it gave no message".to_string());
        return Err(Failure::Failed(format!(
            "function {function} failed ({kind}): {message}"
        )));
    }
    parse_answer(payload)
}
