//! A remote extension that is another Lambda function, called through the Lambda Invoke API:
//! this test starts `cargo lambda watch` (which serves that API) at `AWS_ENDPOINT_URL_LAMBDA`
//! (tests/run sets it to a free loopback port; the SDK reads it) and stops it at the end; the
//! function is the `echo-extension` binary of this crate. A function error is a `502` with
//! its message; a call through the queue runs in the worker. SQLite only: the store plays no
//! part in how a function is called.

use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp, id_of};
use serde_json::json;

/// `cargo lambda watch`, stopped (with the function it runs) when dropped.
struct Watch {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The loopback port `AWS_ENDPOINT_URL_LAMBDA` names.
fn lambda_port() -> u16 {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_LAMBDA").unwrap_or_default();
    endpoint
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "AWS_ENDPOINT_URL_LAMBDA is {endpoint:?}: set it to http://127.0.0.1:<free port> (tests/run does); this test starts cargo lambda watch there"
            )
        })
}

async fn start_watch() -> Watch {
    let port = lambda_port();
    let version = Command::new("cargo").args(["lambda", "--version"]).output();
    if !version.is_ok_and(|o| o.status.success()) {
        panic!("cargo-lambda is missing: tests/cargo-lambda.sh installs it (tests/run sources it)");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let log = std::env::temp_dir().join(format!("realnet-lambda-watch-{port}.log"));
    let file = std::fs::File::create(&log).expect("the watch log");
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--quiet",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .current_dir(root)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start cargo lambda watch");
    let watch = Watch { child, log };
    let invocations =
        format!("http://127.0.0.1:{port}/2015-03-31/functions/echo-extension/invocations");
    // The first invocation starts the function (cargo run: built already with the tests).
    let client = reqwest::Client::new();
    for _ in 0..600 {
        let warm = client
            .post(&invocations)
            .body(r#"{"payload": {}}"#)
            .timeout(Duration::from_secs(300))
            .send()
            .await;
        match warm {
            Ok(r) if r.status().is_success() => return watch,
            Ok(r) => panic!(
                "cargo lambda watch answered {} to the echo function:\n{}",
                r.status(),
                watch.log()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cargo lambda watch did not start:\n{}", watch.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_extension_is_invoked() {
    let watch = start_watch().await;
    let app = TestApp::new(StoreKind::Sqlite).await;
    let a = app
        .post(
            "/api/items",
            json!({"type": "Extension", "name": "functions", "attributes": {
                "kind": "lambda", "function": "echo-extension", "timeout_ms": 30000,
                "handlers": [{"name": "echo", "input": {"type": "object"}}]}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(
        a.body.get("key").is_none(),
        "a Lambda extension has no signing secret"
    );

    let listed = app.get("/api/extensions").await;
    let functions = listed.body["extensions"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "functions"))
        .cloned()
        .expect("listed");
    assert_eq!(functions["kind"], "lambda");

    let admin = app.admin_token.clone();
    let uri = "/_schd/default/default/call/functions/echo";
    let a = app
        .call_with(&admin, Method::POST, uri, Some(json!({"text": "hi"})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}\n{}", a.text, watch.log());
    assert_eq!(a.body["echo"], json!({"text": "hi"}));
    assert_eq!(a.body["extension"], "functions");
    assert_eq!(a.body["handler"], "echo");
    assert_eq!(a.body["caller"]["username"], "admin");

    // A function error: a 502 with the function's message, and nothing changed.
    let before = app.snapshot().await;
    let a = app
        .call_with(
            &admin,
            Method::POST,
            uri,
            Some(json!({"fail": "the ledger is locked"})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::BAD_GATEWAY)
        .await;
    assert!(a.text.contains("the ledger is locked"), "{}", a.text);
    // Off the input schema: refused before the function is invoked.
    let a = app
        .call_with(&admin, Method::POST, uri, Some(json!([1])))
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;

    // Through the queue, in the worker.
    let a = app
        .call_with(
            &admin,
            Method::POST,
            &format!("{uri}?async=true"),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let job = app.finished_job(&admin, &id_of(&a.body)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["echo"], json!({"n": 1}));

    // A function that does not exist: a 502 saying the invocation failed.
    let a = app
        .post(
            "/api/items",
            json!({"type": "Extension", "name": "missing", "attributes": {
                "kind": "lambda", "function": "no-such-function", "timeout_ms": 5000,
                "handlers": [{"name": "echo"}]}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let before = app.snapshot().await;
    let a = app
        .call_with(
            &admin,
            Method::POST,
            "/_schd/default/default/call/missing/echo",
            Some(json!({})),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::BAD_GATEWAY)
        .await;
    let _ = std::io::stderr().flush();
    drop(watch);
}
