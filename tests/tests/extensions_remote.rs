//! Remote webhook extensions, configured as `Extension` items and called through the one
//! invoke path, against a local echo server (axum on 127.0.0.1, spawned here) that checks
//! each request's signature itself ([`realnet_tests::webhook_echo`]). On every store: the
//! secret is shown once and is in no item, `GET` or list; only org admins write them; the
//! call right on the type or the item; handlers and URLs checked when written; a call
//! through the queue. On SQLite (the store plays no part): a slow, oversized, non-JSON,
//! off-schema, redirecting or refusing webhook, and the addresses Realnet never calls. Every
//! refusal changes nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::post;
use realnet_tests::webhook_echo::{Seen, counted, echo};
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};

/// Starts the echo server; answers its base URL (`http://127.0.0.1:<port>`).
async fn echo_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/echo", post(echo))
        .route(
            "/slow",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                axum::Json(json!({"late": true}))
            }),
        )
        .route(
            "/big",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                axum::Json(json!({"blob": "x".repeat(3 * 1024 * 1024)}))
            }),
        )
        .route(
            "/text",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                "plain words, not JSON"
            }),
        )
        .route(
            "/list",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                axum::Json(json!([1, 2, 3]))
            }),
        )
        .route(
            "/redirect",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                (StatusCode::FOUND, [("location", "/echo")], "")
            }),
        )
        .route(
            "/refuse",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                (
                    StatusCode::CONFLICT,
                    axum::Json(json!({"error": {"message": "that order is closed"}})),
                )
            }),
        )
        .route(
            "/broken",
            post(|State(s): State<Arc<Seen>>| async move {
                counted(&s).await;
                (StatusCode::NOT_FOUND, "no such page")
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the store answers");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{}", addr.port()), seen)
}

/// A test app that may call loopback webhooks (`REALNET_EXTENSION_ALLOW_LOOPBACK`).
async fn app(kind: StoreKind) -> TestApp {
    TestApp::with_config(kind, |c| c.extension_allow_loopback = true).await
}

fn webhook(name: &str, url: &str) -> Value {
    json!({"type": "Extension", "name": name, "attributes": {
        "kind": "webhook", "url": url, "description": "echoes what it gets",
        "handlers": [{"name": "echo", "description": "answers the payload",
            "input": {"type": "object", "required": ["text"],
                "properties": {"text": {"type": "string"}}},
            "output": {"type": "object"}}]}})
}

/// Creates a webhook extension; answers the item and the secret shown with it.
async fn create_webhook(app: &TestApp, name: &str, url: &str, seen: &Seen) -> (Value, String) {
    let a = app.post("/api/items", webhook(name, url)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let secret = a.body["key"]
        .as_str()
        .expect("the secret, shown once")
        .to_string();
    assert!(secret.starts_with("rnwhsec_"), "{secret}");
    *seen.secret.lock().expect("the echo server's state") = secret.clone();
    let mut item = a.body.clone();
    item.as_object_mut()
        .expect("an item is an object")
        .remove("key");
    (item, secret)
}

async fn call(
    app: &TestApp,
    token: &str,
    org: &str,
    path: &str,
    payload: Value,
) -> realnet_tests::Answer {
    let uri = format!("/_schd/{org}/{org}/call/{path}");
    app.call_with(token, Method::POST, &uri, Some(payload))
        .await
}

async fn a_webhook_is_called_signed_and_its_secret_shown_once(kind: StoreKind) {
    let app = app(kind).await;
    let (base, seen) = echo_server().await;
    let (item, secret) = create_webhook(&app, "hooks", &format!("{base}/echo"), &seen).await;
    assert!(item["attributes"].get("key").is_none());

    // The secret is in no item, GET or list.
    let id = id_of(&item);
    for uri in [
        format!("/api/items/{id}"),
        "/api/items?type=Extension".to_string(),
        "/api/items?limit=200".to_string(),
        "/api/extensions".to_string(),
    ] {
        let a = app.get(&uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text);
        assert!(!a.text.contains(&secret), "{uri} shows the secret");
    }
    let stored = serde_json::to_string(
        &app.snapshot()
            .await
            .iter()
            .map(|i| &i.attributes)
            .collect::<Vec<_>>(),
    )
    .expect("attributes serialize");
    assert!(!stored.contains(&secret), "no item holds the secret");

    // GET /api/extensions lists it as a webhook with its schemas.
    let listed = app.get("/api/extensions").await;
    let hooks = listed.body["extensions"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "hooks"))
        .cloned()
        .expect("the remote extension is listed");
    assert_eq!(hooks["kind"], "webhook");
    assert_eq!(hooks["description"], "echoes what it gets");
    assert_eq!(hooks["handlers"][0]["name"], "echo");
    assert_eq!(hooks["handlers"][0]["input"]["required"], json!(["text"]));

    // A call: signed (checked by the server), the caller named, the payload echoed.
    let admin = app.admin_token.clone();
    let a = call(&app, &admin, "default", "hooks/echo", json!({"text": "hi"})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body, json!({"echo": {"text": "hi"}}));
    let sent = seen
        .last
        .lock()
        .expect("the echo server's state")
        .clone()
        .expect("a signed request arrived");
    assert_eq!(sent["extension"], "hooks");
    assert_eq!(sent["handler"], "echo");
    assert_eq!(sent["org"], "default");
    assert_eq!(sent["caller"]["username"], "admin");
    assert!(sent["caller"]["account"].is_string(), "{sent}");
    assert_eq!(sent["payload"], json!({"text": "hi"}));

    // Off the input schema, or an undeclared handler: refused before anything is sent.
    let before = app.snapshot().await;
    let sent_before = seen.requests.load(Ordering::SeqCst);
    let a = call(&app, &admin, "default", "hooks/echo", json!({"text": 5})).await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        a.body["error"]["details"]["fields"]["payload/text"].is_string(),
        "{}",
        a.text
    );
    let a = call(&app, &admin, "default", "hooks/nope", json!({"text": "x"})).await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    let a = call(
        &app,
        &admin,
        "default",
        "nohooks/echo",
        json!({"text": "x"}),
    )
    .await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        sent_before,
        "nothing was sent"
    );

    // Through the queue: `?async=true` is checked first, then runs in the worker.
    let a = call(&app, &admin, "default", "hooks/echo?async=true", json!({})).await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let a = call(
        &app,
        &admin,
        "default",
        "hooks/echo?async=true",
        json!({"text": "later"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let job = app.finished_job(&admin, &id_of(&a.body)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"echo": {"text": "later"}}));
    assert!(!job.to_string().contains(&secret));

    // Deleting the item deletes its secret; a new item of the name gets a new one.
    let a = app
        .call(Method::DELETE, &format!("/api/items/{id}"), None, &[])
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let kept = app
        .rn
        .store
        .setting(&format!("extension_secret/default/{id}"), "")
        .await
        .expect("the store answers");
    assert_eq!(kept, "", "the secret went with its item");
    let a = call(&app, &admin, "default", "hooks/echo", json!({"text": "x"})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let (_, rotated) = create_webhook(&app, "hooks", &format!("{base}/echo"), &seen).await;
    assert_ne!(rotated, secret);
    let a = call(
        &app,
        &admin,
        "default",
        "hooks/echo",
        json!({"text": "again"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

async fn only_org_admins_write_and_see_their_own(kind: StoreKind) {
    let app = app(kind).await;
    let (base, seen) = echo_server().await;
    let url = format!("{base}/echo");
    let (item, _) = create_webhook(&app, "hooks", &url, &seen).await;
    let id = id_of(&item);
    let (_, member) = app.account("default", "mia", false).await;
    // Even a rule letting members create and update Extension items does not make them admins.
    app.acl(json!({"principal": "members", "permissions": ["read", "create", "update", "delete"], "target_type": "Extension"}))
        .await;
    let before = app.snapshot().await;
    let a = app
        .call_with(
            &member,
            Method::POST,
            "/api/items",
            Some(webhook("mine", &url)),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let uri = format!("/api/items/{id}");
    let change = json!({"attributes": {"url": "https://example.com/other"}});
    let a = app
        .call_with(&member, Method::PATCH, &uri, Some(change.clone()))
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let a = app.call_with(&member, Method::DELETE, &uri, None).await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;

    // Another org's admin neither sees, changes nor calls it.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(change)),
        (Method::DELETE, None),
    ] {
        let a = app.call_with(&other, method, &uri, body).await;
        app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    }
    let a = app
        .call_with(&other, Method::GET, "/api/extensions", None)
        .await;
    assert!(!a.text.contains("hooks"), "{}", a.text);
    let a = call(&app, &other, OTHER_ORG, "hooks/echo", json!({"text": "x"})).await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    let a = call(&app, &other, "default", "hooks/echo", json!({"text": "x"})).await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0, "nothing was sent");

    // The org's admin may change it.
    let a = app
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"timeout_ms": 2000}})),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

async fn calling_needs_the_call_right(kind: StoreKind) {
    let app = app(kind).await;
    let (base, seen) = echo_server().await;
    let (item, _) = create_webhook(&app, "hooks", &format!("{base}/echo"), &seen).await;
    let (_, member) = app.account("default", "mia", false).await;
    let before = app.snapshot().await;
    let a = call(&app, &member, "default", "hooks/echo", json!({"text": "x"})).await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let public = app
        .call_as(
            None,
            Method::POST,
            "/_schd/default/default/call/hooks/echo",
            Some(json!({"text": "x"})),
            &[],
        )
        .await;
    assert_eq!(public.status, StatusCode::UNAUTHORIZED, "{}", public.text);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0, "nothing was sent");

    // A rule on the item lets members call it.
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_item": id_of(&item)}))
        .await;
    let a = call(&app, &member, "default", "hooks/echo", json!({"text": "x"})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        seen.last
            .lock()
            .expect("the echo server's state")
            .as_ref()
            .expect("a signed request arrived")["caller"]["username"],
        "mia"
    );
}

async fn bad_extension_items_are_refused_naming_the_field(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let before = app.snapshot().await;
    let h = json!([{"name": "echo"}]);
    for (attributes, name, field) in [
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": "echo"}),
            "a",
            "handlers",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": [{"name": "Bad Name"}]}),
            "a",
            "handlers[0].name",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": [{"name": "x", "what": 1}]}),
            "a",
            "handlers[0]",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": [{"name": "x", "input": {"type": 12}}]}),
            "a",
            "handlers[0].input",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": [{"name": "x"}, {"name": "x"}]}),
            "a",
            "handlers[1].name",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": []}),
            "a",
            "handlers",
        ),
        (
            json!({"kind": "webhook", "url": "https://10.0.0.1/hook", "handlers": h}),
            "a",
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "https://169.254.169.254/latest/meta-data", "handlers": h}),
            "a",
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "https://[fd00:ec2::254]/", "handlers": h}),
            "a",
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "https://127.0.0.1:9/", "handlers": h}),
            "a",
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "http://hooks.example.com/", "handlers": h}),
            "a",
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "https://u:p@hooks.example.com/", "handlers": h}),
            "a",
            "url",
        ),
        (json!({"kind": "webhook", "handlers": h}), "a", "url"),
        (json!({"kind": "lambda", "handlers": h}), "a", "function"),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "timeout_ms": 600000, "handlers": h}),
            "a",
            "timeout_ms",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": h}),
            "crm",
            "name",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/", "handlers": h}),
            "Not A Name",
            "name",
        ),
    ] {
        let body = json!({"type": "Extension", "name": name, "attributes": attributes});
        let a = app.post("/api/items", body.clone()).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let fields = &a.body["error"]["details"]["fields"];
        assert!(
            fields
                .as_object()
                .is_some_and(|f| f.keys().any(|k| k.starts_with(field))),
            "{body}: {field} is named in {}",
            a.text
        );
    }
    // Two of one name, and a kind that changes.
    let ok = json!({"type": "Extension", "name": "hooks", "attributes": {"kind": "webhook", "url": "https://hooks.example.com/", "handlers": h}});
    let item = app.create(ok.clone()).await;
    let before = app.snapshot().await;
    // A name taken is a conflict, as a username taken is (the store keeps it so).
    let a = app.post("/api/items", ok).await;
    app.assert_refused(&before, &a, StatusCode::CONFLICT).await;
    assert_eq!(a.code(), "conflict", "{}", a.text);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"hooks\" exists already")),
        "{}",
        a.text
    );
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id_of(&item)),
            Some(json!({"attributes": {"kind": "lambda", "url": null, "function": "f"}})),
            &[],
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        a.body["error"]["details"]["fields"]["kind"].is_string(),
        "{}",
        a.text
    );
}

/// A webhook at `route` of a fresh echo server, called once: its answer and the server.
async fn call_route(
    app: &TestApp,
    name: &str,
    route: &str,
    timeout_ms: u64,
) -> (realnet_tests::Answer, Arc<Seen>, Duration) {
    let (base, seen) = echo_server().await;
    let mut body = webhook(name, &format!("{base}{route}"));
    body["attributes"]["timeout_ms"] = json!(timeout_ms);
    let a = app.post("/api/items", body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    *seen.secret.lock().expect("the echo server's state") =
        a.body["key"].as_str().expect("the secret").to_string();
    let before = app.snapshot().await;
    let admin = app.admin_token.clone();
    let started = Instant::now();
    let answer = call(
        app,
        &admin,
        "default",
        &format!("{name}/echo"),
        json!({"text": "x"}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(app.snapshot().await, before, "a call changes nothing");
    (answer, seen, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_webhooks_are_a_502() {
    let app = app(StoreKind::Sqlite).await;
    let (a, _, took) = call_route(&app, "slow", "/slow", 500).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_GATEWAY, "bad_gateway"),
        "{}",
        a.text
    );
    assert!(a.text.contains("within 500 ms"), "{}", a.text);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    let (a, _, _) = call_route(&app, "big", "/big", 5000).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert!(a.text.contains("more than"), "{}", a.text);

    let (a, _, _) = call_route(&app, "text", "/text", 5000).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert!(a.text.contains("did not answer JSON"), "{}", a.text);

    let (a, seen, _) = call_route(&app, "moved", "/redirect", 5000).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert!(a.text.contains("redirects are not followed"), "{}", a.text);
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        1,
        "the redirect was not followed"
    );
    assert!(seen.last.lock().expect("the echo server's state").is_none());

    let (a, _, _) = call_route(&app, "broken", "/broken", 5000).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert!(a.text.contains("404"), "{}", a.text);

    // JSON, but off the handler's declared output schema (an object).
    let (a, _, _) = call_route(&app, "offschema", "/list", 5000).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_GATEWAY, "bad_gateway"),
        "{}",
        a.text
    );
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("answered \"echo\" off its output schema")
            && message.contains("is not of type \"object\""),
        "{}",
        a.text
    );

    // A refusal in the documented shape is passed on.
    let (a, _, _) = call_route(&app, "closed", "/refuse", 5000).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.body["error"]["message"], "that order is closed");

    // Nothing listens: a 502 saying so.
    let a = app
        .post("/api/items", webhook("gone", "http://127.0.0.1:9/echo"))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let admin = app.admin_token.clone();
    let a = call(&app, &admin, "default", "gone/echo", json!({"text": "x"})).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert!(a.text.contains("no answer"), "{}", a.text);
    assert!(!a.text.contains("rnwhsec_"), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_inside_the_network_are_never_called() {
    let app = TestApp::new(StoreKind::Sqlite).await;
    let (base, seen) = echo_server().await;
    let port = base.rsplit(':').next().expect("a port").to_string();
    let before = app.snapshot().await;
    for url in [
        format!("{base}/echo"),
        format!("https://127.0.0.1:{port}/echo"),
        "https://10.0.0.1/echo".to_string(),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://[fd00:ec2::254]/".to_string(),
        "https://[::1]/".to_string(),
        "https://100.64.0.1/".to_string(),
    ] {
        let a = app.post("/api/items", webhook("inside", &url)).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(
            a.body["error"]["details"]["fields"]["url"].is_string(),
            "{url}: {}",
            a.text
        );
    }
    // A name is checked when it is resolved: localhost is a loopback address.
    let (item, _) = create_webhook(
        &app,
        "named",
        &format!("https://localhost:{port}/echo"),
        &seen,
    )
    .await;
    let admin = app.admin_token.clone();
    let before = app.snapshot().await;
    let a = call(&app, &admin, "default", "named/echo", json!({"text": "x"})).await;
    app.assert_refused(&before, &a, StatusCode::BAD_GATEWAY)
        .await;
    assert!(a.text.contains("loopback"), "{}", a.text);
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        0,
        "no request was sent"
    );
    assert!(item["id"].is_string());
}

on_every_store!(
    a_webhook_is_called_signed_and_its_secret_shown_once,
    only_org_admins_write_and_see_their_own,
    calling_needs_the_call_right,
    bad_extension_items_are_refused_naming_the_field,
);
