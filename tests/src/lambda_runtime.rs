//! A minimal Lambda Runtime API: the `/2018-06-01/runtime/...` endpoints a function polls. It
//! lets tests and the cold-start benchmark run the real `api` binary the way Lambda does
//! (start the process, hand it one event at a time, collect each answer) with no AWS account.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The X-Ray trace header every invocation carries (`Lambda-Runtime-Trace-Id`).
pub const TRACE_ID: &str =
    "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1";

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>>;

#[derive(Clone)]
struct Shared {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    pending: Pending,
}

/// A running Runtime API on a loopback port.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<(String, Value)>,
    shared: Shared,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (queue, events) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(tokio::sync::Mutex::new(events)),
            pending: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the runtime API");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            addr,
            queue,
            shared,
        }
    }

    /// Starts `binary` as a Lambda function polling this Runtime API, with `env` added; what
    /// it writes to standard output (its log lines, its metrics) is kept for the caller
    /// (`child.stdout`).
    pub fn spawn_logged_function(&self, binary: &std::path::Path, env: &[(&str, &str)]) -> Child {
        self.function_command(binary, env)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the function binary")
    }

    /// Starts `binary` as a Lambda function polling this Runtime API, with `env` added.
    pub fn spawn_function(&self, binary: &std::path::Path, env: &[(&str, &str)]) -> Child {
        self.function_command(binary, env)
            .spawn()
            .expect("start the function binary")
    }

    fn function_command(&self, binary: &std::path::Path, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Queues `event` for the function's next poll; the receiver yields its answer:
    /// `Ok(response)` or `Err(error report)`.
    pub fn queue(&self, event: Value) -> oneshot::Receiver<Result<Value, Value>> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), tx);
        self.queue.send((id, event)).expect("queue the event");
        rx
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Value) -> Result<Value, Value> {
        tokio::time::timeout(Duration::from_secs(30), self.queue(event))
            .await
            .expect("the function answered within 30 s")
            .expect("the answer arrived")
    }
}

async fn next(State(s): State<Shared>) -> Result<(HeaderMap, String), StatusCode> {
    // None: the RuntimeApi was dropped while a (killed) function still polled.
    let (id, event) = s.events.lock().await.recv().await.ok_or(StatusCode::GONE)?;
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        headers.insert(k, HeaderValue::from_str(&v).expect("header value"));
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:api".to_string(),
    );
    set("lambda-runtime-trace-id", TRACE_ID.to_string());
    Ok((headers, event.to_string()))
}

fn settle(s: &Shared, id: &str, outcome: Result<Value, Value>) -> StatusCode {
    match s.pending.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: String) -> StatusCode {
    settle(
        &s,
        &id,
        Ok(serde_json::from_str(&body).unwrap_or(Value::String(body))),
    )
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: String) -> StatusCode {
    settle(
        &s,
        &id,
        Err(serde_json::from_str(&body).unwrap_or(Value::String(body))),
    )
}
