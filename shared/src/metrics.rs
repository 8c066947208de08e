//! Metrics in CloudWatch Embedded Metric Format (EMF): on Lambda each measurement is one JSON
//! line on standard output, which CloudWatch Logs turns into metrics of the namespace
//! `Realnet`, with no agent and no API call on the request path. Requests are counted by route
//! (the route's template, never the ids in the path) and status with their latency; jobs by
//! kind and outcome with their age in the queue; scheduler runs by task with what they sent.
//! Outside Lambda (`realnet serve`, the tests' router) nothing is written.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

/// The namespace every metric is published under.
pub const NAMESPACE: &str = "Realnet";

/// Whether this process runs as a Lambda function (the runtime sets the function's name).
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some())
}

/// A value measured, in a CloudWatch unit.
pub enum Measure {
    Count(f64),
    Milliseconds(f64),
}

/// Writes one EMF line: `dimensions` (name, value) and `measures` (name, value).
pub fn emit(dimensions: &[(&str, &str)], measures: &[(&str, Measure)]) {
    if !enabled() {
        return;
    }
    let mut line = Map::new();
    let mut metrics = Vec::new();
    for (name, value) in dimensions {
        line.insert((*name).to_string(), Value::from(*value));
    }
    for (name, measure) in measures {
        let (unit, value) = match measure {
            Measure::Count(v) => ("Count", *v),
            Measure::Milliseconds(v) => ("Milliseconds", *v),
        };
        metrics.push(json!({"Name": name, "Unit": unit}));
        line.insert((*name).to_string(), Value::from(value));
    }
    let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": metrics,
            }],
        }),
    );
    // A metric lost to a closed output is not worth failing a request over.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", Value::Object(line)).ok();
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Router middleware: one `Requests` count and its `Latency` per request, by route and status.
pub async fn record_request(req: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    emit(
        &[("Route", &route), ("Method", &method), ("Status", &status)],
        &[
            ("Requests", Measure::Count(1.0)),
            ("Latency", Measure::Milliseconds(millis(started.elapsed()))),
        ],
    );
    response
}

/// One job's end: its kind, how it ended, and how long it waited in the queue.
pub fn job(kind: &str, outcome: &str, queue_age: Option<Duration>) {
    let mut measures = vec![("Jobs", Measure::Count(1.0))];
    if let Some(age) = queue_age {
        measures.push(("QueueAge", Measure::Milliseconds(millis(age))));
    }
    emit(&[("Kind", kind), ("Outcome", outcome)], &measures);
}

/// One scheduler run of `task`; for the tick, the runs it sent and those that failed.
pub fn scheduler_run(task: &str, sent_and_failed: Option<(usize, usize)>) {
    let mut measures = vec![("SchedulerRuns", Measure::Count(1.0))];
    if let Some((sent, failed)) = sent_and_failed {
        measures.push(("RunsSent", Measure::Count(sent as f64)));
        measures.push(("RunsFailed", Measure::Count(failed as f64)));
    }
    emit(&[("Task", task)], &measures);
}
