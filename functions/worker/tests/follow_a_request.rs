//! One request followed from `POST /api/jobs` on the `api` function to the `worker` function's
//! log, both binaries under a Lambda Runtime API with SQS in moto between them, as CloudWatch
//! would show it: every line of both is JSON with its level, the function's name and version
//! and its spans; the API request's id is in the job's envelope and on the worker's line for
//! that job, and the invocation's X-Ray trace header travels as the message's
//! `AWSTraceHeader`; both write CloudWatch embedded metrics (the request by route and status
//! with its latency, the job by kind and outcome with its time in the queue).
//! The `api` binary is the one `cargo test --workspace` builds beside this package's.

use std::io::Read;
use std::path::{Path, PathBuf};

use realnet_tests::lambda_runtime::{RuntimeApi, TRACE_ID};
use serde_json::{Value, json};

const SIGNING_KEY: &str = "a signing key of this test, not a secret";

fn api_binary() -> PathBuf {
    let api = Path::new(env!("CARGO_BIN_EXE_worker")).with_file_name("api");
    assert!(
        api.exists(),
        "{} is missing: build it with `cargo build -p api` (cargo test --workspace does)",
        api.display()
    );
    api
}

/// The JSON lines a function wrote to standard output.
fn lines(mut child: std::process::Child) -> Vec<Value> {
    child.kill().ok();
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).ok();
    }
    child.wait().ok();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn in_span(line: &Value, span: &str, field: &str) -> Option<String> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == span)
        .and_then(|s| s[field].as_str())
        .map(str::to_string)
}

fn metric<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| {
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["Name"] == name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_followed_from_the_api_to_the_workers_log() {
    let endpoint = realnet_tests::aws_endpoint();
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!(
            "follow-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("time")
                .as_nanos()
        ))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let env = [
        ("REALNET_DATA_DIR", dir),
        ("REALNET_QUEUE_URL", queue_url.as_str()),
        ("REALNET_JOB_SIGNING_KEY", SIGNING_KEY),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
    ];
    let config = realnet::config::Config::from_lookup(|k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
    .expect("config");
    let rn = realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("store");
    rn.init().await.expect("init");
    let admin = realnet::auth::identity::find_account(&rn, "default", "admin")
        .await
        .expect("query")
        .expect("admin");
    let token = realnet::auth::login::issue(&rn, &admin)
        .await
        .expect("token")
        .token;

    // The API: POST /api/jobs through an HTTP API event whose request id is known.
    let runtime = RuntimeApi::start().await;
    let api = runtime.spawn_logged_function(
        &api_binary(),
        &[&env[..], &[("AWS_LAMBDA_FUNCTION_NAME", "api")]].concat(),
    );
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/jobs", "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": format!("Bearer {token}")},
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef1234", "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/api/jobs", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10", "userAgent": "test"},
            "requestId": "evt-follow-0001", "routeKey": "$default", "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600800000u64},
        "body": json!({"kind": "items.create", "payload": {"items": [{"type": "Company", "name": "Followed"}]}}).to_string(),
        "isBase64Encoded": false
    });
    let accepted = runtime.invoke(event).await.expect("answered");
    assert_eq!(accepted["statusCode"], 202, "{accepted}");

    // What the api function sent: the request id in the envelope, the trace as AWSTraceHeader.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    let message = received
        .messages
        .unwrap_or_default()
        .pop()
        .expect("a message");
    let body = message.body.clone().unwrap_or_default();
    let envelope: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(envelope["request_id"], "evt-follow-0001", "{envelope}");
    let attributes: serde_json::Map<String, Value> = message
        .attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), Value::from(v)))
        .collect();
    assert_eq!(attributes["AWSTraceHeader"], TRACE_ID, "{attributes:?}");
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                json!({"stringValue": v.string_value, "dataType": v.data_type}),
            )
        })
        .collect();

    // The worker, handed that message as the event source mapping would.
    let worker_runtime = RuntimeApi::start().await;
    let worker = worker_runtime.spawn_logged_function(
        Path::new(env!("CARGO_BIN_EXE_worker")),
        &[&env[..], &[("AWS_LAMBDA_FUNCTION_NAME", "worker")]].concat(),
    );
    let batch = json!({"Records": [{
        "messageId": message.message_id, "receiptHandle": message.receipt_handle, "body": body,
        "attributes": attributes, "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:follow", "awsRegion": "us-east-1"
    }]});
    let answer = worker_runtime.invoke(batch).await.expect("worker answered");
    assert_eq!(answer, json!({"batchItemFailures": []}));

    let api_lines = lines(api);
    let worker_lines = lines(worker);
    for (function, lines) in [("api", &api_lines), ("worker", &worker_lines)] {
        let logs: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_none()).collect();
        assert!(!logs.is_empty(), "{function} logged nothing");
        for l in &logs {
            assert_eq!(l["function"], function, "{l}");
            assert_eq!(l["version"], "7", "{l}");
            assert!(l["level"].is_string(), "{l}");
        }
    }
    // The api's line for the request: the invocation's id and trace, the request's id.
    let request_line = api_lines
        .iter()
        .find(|l| in_span(l, "request", "request_id").as_deref() == Some("evt-follow-0001"))
        .unwrap_or_else(|| panic!("no api line of the request: {api_lines:#?}"));
    assert!(
        in_span(request_line, "Lambda runtime invoke", "requestId")
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(
        in_span(request_line, "Lambda runtime invoke", "xrayTraceId").as_deref(),
        Some(TRACE_ID)
    );
    // The worker's line for the job: the same request id, the trace the message carried.
    let job_line = worker_lines
        .iter()
        .find(|l| l["message"] == "job done")
        .unwrap_or_else(|| panic!("no worker line of the job: {worker_lines:#?}"));
    assert_eq!(
        in_span(job_line, "job", "request_id").as_deref(),
        Some("evt-follow-0001"),
        "{job_line}"
    );
    assert_eq!(
        in_span(job_line, "record", "trace").as_deref(),
        Some(TRACE_ID),
        "{job_line}"
    );
    assert_eq!(job_line["outcome"], "succeeded", "{job_line}");

    // The metrics, in CloudWatch's embedded format.
    let requests = metric(&api_lines, "Requests");
    let jobs_request = requests
        .iter()
        .find(|m| m["Route"] == "/api/jobs")
        .unwrap_or_else(|| panic!("no request metric: {api_lines:#?}"));
    assert_eq!(jobs_request["Status"], "202");
    assert_eq!(jobs_request["Requests"], 1.0);
    assert!(jobs_request["Latency"].as_f64().is_some_and(|l| l > 0.0));
    assert_eq!(
        jobs_request["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Realnet"
    );
    let jobs = metric(&worker_lines, "Jobs");
    assert_eq!(jobs.len(), 1, "{worker_lines:#?}");
    assert_eq!(jobs[0]["Kind"], "items.create");
    assert_eq!(jobs[0]["Outcome"], "succeeded");
    assert!(
        jobs[0]["QueueAge"].as_f64().is_some_and(|a| a >= 0.0),
        "{}",
        jobs[0]
    );
}
