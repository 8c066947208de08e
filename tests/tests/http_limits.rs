//! The router's limits and cross-origin answers, as a client over TCP sees them: a request
//! that runs longer than `REALNET_REQUEST_TIMEOUT` (here, one whose body never finishes) is
//! answered `503 timeout` and changes nothing; beyond `REALNET_MAX_CONCURRENT_REQUESTS` in
//! flight a request is answered `503 overloaded` at once, and served again once the others
//! end; browsers of the `REALNET_CORS_ORIGINS` origins get CORS answers, others none.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::config::CorsOrigins;
use realnet_tests::{StoreKind, TestApp, on_every_store};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves the app's router on a loopback port, as `realnet serve` does.
async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let service =
        realnet::api::router(app.rn.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

/// Sends a `POST /api/items` whose body stops short of its `content-length`: the server is
/// left waiting for the rest.
async fn unfinished(addr: SocketAddr, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/items HTTP/1.1\r\nhost: realnet\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"type\": \"Company\", \"name\": \"Slow"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

/// A request over its own connection.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: realnet\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    answer(&mut stream).await
}

/// The status, head and JSON body of the answer on `stream`.
async fn answer(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut bytes = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.trim().parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s");
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

async fn a_request_over_its_time_is_stopped_and_changes_nothing(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| {
        c.request_timeout = Duration::from_millis(300);
    })
    .await;
    let addr = serve(&app).await;
    let before = app.snapshot().await;
    let started = std::time::Instant::now();
    let mut slow = unfinished(addr, &app.admin_token).await;
    let (status, head, body) = answer(&mut slow).await;
    assert_eq!(status, 503, "{head}{body}");
    assert_eq!(body["error"]["code"], "timeout", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("REALNET_REQUEST_TIMEOUT")),
        "{body}"
    );
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(head.contains("x-request-id: "), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.snapshot().await, before, "nothing changed");
    // Requests within the time are served as before.
    assert_eq!(get(addr, "/ping").await.0, 200);
}

async fn requests_beyond_the_limit_are_refused_at_once_then_served_again(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| {
        c.max_concurrent_requests = 1;
        c.request_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = serve(&app).await;
    let slow = unfinished(addr, &app.admin_token).await;
    // The slow request holds the only place once the server has read its head (a request
    // arriving before that would take the place, and the slow one be refused).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = None;
    for _ in 0..100 {
        let (status, head, body) = get(addr, "/ping").await;
        if status == 503 {
            refused = Some((head, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some((head, body)) = refused else {
        let mut slow = slow;
        let (status, head, body) = answer(&mut slow).await;
        panic!("a request beyond the limit is refused; the slow one got {status} {head} {body}");
    };
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    // The slow client goes away: its place is free again.
    drop(slow);
    let mut served = false;
    for _ in 0..100 {
        if get(addr, "/ping").await.0 == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "served again once the slow request ended");
}

on_every_store!(
    a_request_over_its_time_is_stopped_and_changes_nothing,
    requests_beyond_the_limit_are_refused_at_once_then_served_again,
);

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/items")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .body(Body::empty())
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_of_the_configured_origins_get_cors_answers() {
    let app = TestApp::with_config(StoreKind::Sqlite, |c| {
        c.cors_origins = CorsOrigins::List(vec!["https://app.example".into()]);
    })
    .await;
    let ok = app.dispatch(preflight("https://app.example")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        "https://app.example"
    );
    let methods = ok.header("access-control-allow-methods").to_lowercase();
    assert!(
        methods.contains("post") && methods.contains("patch"),
        "{methods}"
    );
    let headers = ok.header("access-control-allow-headers").to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("if-match"),
        "{headers}"
    );

    let mut get = Request::builder()
        .uri("/api/types")
        .header("origin", "https://app.example")
        .body(Body::empty())
        .expect("request");
    get.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.admin_token)
            .parse()
            .expect("header"),
    );
    let read = app.dispatch(get).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        read.header("access-control-allow-origin"),
        "https://app.example"
    );
    assert!(
        read.header("access-control-expose-headers")
            .contains("etag")
    );

    let other = app.dispatch(preflight("https://elsewhere.example")).await;
    assert_eq!(
        other.header("access-control-allow-origin"),
        "",
        "another origin gets no CORS"
    );

    // Without REALNET_CORS_ORIGINS, no origin gets CORS answers.
    let plain = TestApp::new(StoreKind::Sqlite).await;
    let none = plain.dispatch(preflight("https://app.example")).await;
    assert_eq!(none.header("access-control-allow-origin"), "");
}

/// The OpenAPI document lists the router's `503`s on every operation (clients and the fuzzer
/// in `tests/run` take undocumented statuses for bugs): `overloaded` everywhere, `timeout`
/// everywhere but file contents, each with `Retry-After`, beside a route's own `503`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_limits_answers_on_every_route() {
    let app = TestApp::new(StoreKind::Sqlite).await;
    let doc = app.get("/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item") {
            let refused = &op["responses"]["503"];
            let description = refused["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("`overloaded`"),
                "{method} {path}: {refused}"
            );
            assert_eq!(
                description.contains("`timeout`"),
                path != "/api/files/{id}/content",
                "{method} {path}: {refused}"
            );
            assert!(
                refused["headers"]["Retry-After"].is_object(),
                "{method} {path}: {refused}"
            );
            assert_eq!(
                refused["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
            operations += 1;
        }
    }
    assert!(operations > 30, "{operations} operations");
    // A route's own 503 is kept beside the router's.
    let jobs = doc.body["paths"]["/api/jobs"]["post"]["responses"]["503"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        jobs.starts_with("No queue is configured") && jobs.contains("`overloaded`"),
        "{jobs}"
    );
}
