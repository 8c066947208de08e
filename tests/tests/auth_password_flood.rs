//! A flood of logins against the bounded password hashing: at most one hash per core runs at
//! once and a short queue waits; the rest are refused at once with `503` and `Retry-After`
//! (nothing is queued without bound, nothing is created by a refused request), and the server
//! logs in normally once the flood is over.
//!
//! The hashing pool belongs to the process, not to a store, so this runs on SQLite alone (the
//! fastest store, which lets requests reach the pool fastest), in a test binary of its own so
//! that no other test shares the pool while it is flooded.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::auth::{ClientAddr, identity, password};
use realnet_tests::{ADMIN_PASSWORD, Answer, StoreKind, TestApp};
use serde_json::json;

fn request(app: &TestApp, n: u32, uri: &str, body: serde_json::Value) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", app.admin_token))
        .body(Body::from(body.to_string()))
        .expect("request");
    // Every login from its own address, for its own username: no throttle applies.
    let ip = Ipv4Addr::from(0x0a00_0000 + n);
    request.extensions_mut().insert(ClientAddr(IpAddr::V4(ip)));
    request
}

fn assert_busy(a: &Answer) {
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert_eq!(a.code(), "unavailable", "{}", a.text);
    assert_eq!(a.header("retry-after"), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_is_refused_fast_with_bounded_hashing() {
    let app = Arc::new(TestApp::new(StoreKind::Sqlite).await);
    let capacity = password::threads() * (1 + password::WAITING_PER_THREAD);
    let logins = (4 * capacity).max(200) as u32;
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..logins {
        let app = app.clone();
        flood.spawn(async move {
            let body = json!({"username": format!("nobody{n}"), "password": "a wrong guess"});
            (
                "login",
                n,
                app.dispatch(request(&app, n, "/api/auth", body)).await,
            )
        });
    }
    // Accounts with passwords, made through the item API during the flood.
    for n in 0..20 {
        let app = app.clone();
        flood.spawn(async move {
            let body = json!({"type": "Account", "name": format!("flood{n}"),
                "attributes": {"username": format!("flood{n}"), "password": "a password of the flood"}});
            ("create", n, app.dispatch(request(&app, n, "/api/items", body)).await)
        });
    }
    let (mut refused, mut busy) = (0, 0);
    while let Some(done) = flood.join_next().await {
        let (what, n, a) = done.expect("a request task");
        match (what, a.status) {
            ("login", StatusCode::UNAUTHORIZED) => refused += 1,
            ("create", StatusCode::CREATED) => {}
            (_, StatusCode::SERVICE_UNAVAILABLE) => {
                assert_busy(&a);
                busy += 1;
                if what == "create" {
                    let made = identity::find_account(&app.rn, "default", &format!("flood{n}"))
                        .await
                        .expect("query");
                    assert!(made.is_none(), "a refused create made nothing");
                }
            }
            _ => panic!("{what} {n}: {} {}", a.status, a.text),
        }
    }
    assert!(busy > 0, "{logins} logins at once, none refused");
    assert!(refused > 0, "some were checked");
    assert!(
        password::most_at_once() <= password::threads(),
        "{} hashes ran at once, on {} threads",
        password::most_at_once(),
        password::threads()
    );
    // Once the flood is over, logins work again.
    let after = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
}
