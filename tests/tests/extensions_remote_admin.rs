//! What an org admin does to a remote extension's `Extension` item, and how soon calls see
//! it, on every store: rotating a webhook's signing secret (`POST
//! /api/extensions/{name}/rotate_secret`: the new secret shown once, the old one signing
//! nothing from the next call on; refused to members, other orgs, the public, a `PATCH` and a
//! Lambda extension, each changing nothing); names unique even when created at once (the
//! store keeps them so: one `201`, the rest `409`); and the per-container cache of the item
//! and its secret (a write made here is seen at once, one made elsewhere once the entry
//! expires, and a warm call reads nothing from the store).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::post;
use realnet::item::Item;
use realnet::store::{StoreError, Write};
use realnet_tests::webhook_echo::{Seen, echo};
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Starts an echo server that checks signatures; answers its `/echo` URL.
async fn echo_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/echo", post(echo))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{}/echo", addr.port()), seen)
}

/// A test app that may call loopback webhooks, with `REALNET_AUTH_CACHE_TTL` at `ttl`.
async fn app(kind: StoreKind, ttl: Duration) -> TestApp {
    TestApp::with_config(kind, |c| {
        c.extension_allow_loopback = true;
        c.auth.cache_ttl = ttl;
    })
    .await
}

/// The default cache TTL (30 s): longer than any test, so what is seen at once is the
/// cache's forgetting, not its expiry.
const TTL: Duration = Duration::from_secs(30);

fn webhook(name: &str, url: &str) -> Value {
    json!({"type": "Extension", "name": name, "attributes": {
        "kind": "webhook", "url": url, "handlers": [{"name": "echo"}]}})
}

/// Creates the webhook extension `name`; answers its item and the secret shown once.
async fn create_webhook(app: &TestApp, name: &str, url: &str) -> (Value, String) {
    let a = app.post("/api/items", webhook(name, url)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let secret = a.body["key"].as_str().expect("the secret").to_string();
    (a.body, secret)
}

async fn call(app: &TestApp, token: &str, name: &str) -> Answer {
    let uri = format!("/_schd/default/default/call/{name}/echo");
    app.call_with(token, Method::POST, &uri, Some(json!({"text": "hi"})))
        .await
}

async fn rotate(app: &TestApp, token: Option<&str>, name: &str) -> Answer {
    let uri = format!("/api/extensions/{name}/rotate_secret");
    app.call_as(token, Method::POST, &uri, None, &[]).await
}

/// The stored signing secret of the extension item `id` of the default org.
async fn stored_secret(app: &TestApp, id: &str) -> String {
    app.rn
        .store
        .setting(&format!("extension_secret/default/{id}"), "")
        .await
        .expect("the store answers")
}

async fn an_admin_rotates_a_webhook_secret(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let (url, seen) = echo_server().await;
    let (item, old) = create_webhook(&app, "hooks", &url).await;
    let id = id_of(&item);
    seen.expect_secret(&old);
    let admin = app.admin_token.clone();
    // A first call: the extension and its secret are now remembered.
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    // A member, even one whose rules let it update Extension items; another org's admin; the
    // public; a PATCH that asks for it; an unknown name: refused, and nothing changed.
    let (_, member) = app.account("default", "mia", false).await;
    app.acl(json!({"principal": "members", "permissions": ["read", "create", "update", "delete", "call"], "target_type": "Extension"}))
        .await;
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let before = app.snapshot().await;
    for (token, status) in [
        (Some(member.as_str()), StatusCode::FORBIDDEN),
        (Some(other.as_str()), StatusCode::NOT_FOUND),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let a = rotate(&app, token, "hooks").await;
        app.assert_refused(&before, &a, status).await;
        assert!(!a.text.contains("rnwhsec_"), "{}", a.text);
    }
    let a = rotate(&app, Some(&admin), "nohooks").await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    assert_eq!(a.code(), "not_found");
    let uri = format!("/api/items/{id}");
    let patch = json!({"attributes": {"rotate_secret": true}});
    let a = app
        .call_with(&admin, Method::PATCH, &uri, Some(patch))
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(
        a.body["error"]["details"]["fields"]["rotate_secret"]
            .as_str()
            .is_some_and(|m| m.contains("/api/extensions/hooks/rotate_secret")),
        "{}",
        a.text
    );
    assert_eq!(
        stored_secret(&app, &id).await,
        old,
        "the secret is unchanged"
    );
    let a = call(&app, &member, "hooks").await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "the old secret still signs: {}",
        a.text
    );

    // The admin rotates: the new secret is shown once, the item's version moves.
    let a = rotate(&app, Some(&admin), "hooks").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let new = a.body["key"].as_str().expect("the new secret").to_string();
    assert!(new.starts_with("rnwhsec_") && new != old, "{new}");
    assert_eq!(a.body["id"], item["id"]);
    assert_eq!(
        a.body["version"],
        item["version"].as_i64().expect("a version") + 1
    );
    assert!(
        a.body["attributes"].get("rotate_secret").is_none(),
        "{}",
        a.text
    );
    assert_eq!(stored_secret(&app, &id).await, new);
    for uri in [uri.as_str(), "/api/items?type=Extension", "/api/extensions"] {
        let a = app.get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text);
        assert!(!a.text.contains(&new), "{uri} shows the secret");
    }

    // The next call is signed with the new secret, and no longer with the old one, though
    // the extension was remembered from before.
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "a receiver that knows only the old secret refuses it: {}",
        a.text
    );
    seen.expect_secret(&new);
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body, json!({"echo": {"text": "hi"}}));

    // The route is in the OpenAPI document (schemathesis fuzzes it), with the secret as `key`.
    let doc = app.get("/api/openapi.json").await.body;
    let op = &doc["paths"]["/api/extensions/{name}/rotate_secret"]["post"];
    assert_eq!(op["operationId"], "rotate_extension_secret", "{op}");
    for status in ["200", "401", "403", "404", "409"] {
        assert!(op["responses"][status].is_object(), "{status} in {op}");
    }
    let rotated = doc["components"]["schemas"]["RotatedSecret"].to_string();
    assert!(
        rotated.contains("\"key\"") && rotated.contains("Item"),
        "{rotated}"
    );

    // A Lambda extension has no secret to rotate.
    app.create(json!({"type": "Extension", "name": "fn", "attributes": {
        "kind": "lambda", "function": "echo-extension", "handlers": [{"name": "echo"}]}}))
        .await;
    let before = app.snapshot().await;
    let a = rotate(&app, Some(&admin), "fn").await;
    app.assert_refused(&before, &a, StatusCode::CONFLICT).await;
    assert!(a.text.contains("Lambda"), "{}", a.text);
}

/// Sends `POST /api/items` with `body` as the default org's admin, through its own router
/// (so that several run at once).
async fn create_at_once(router: Router, token: String, body: Value) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/items")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("read body");
    Answer {
        status,
        headers: Default::default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The `Extension` items of the default org named `name`.
async fn named(app: &TestApp, name: &str) -> Vec<Item> {
    app.snapshot()
        .await
        .into_iter()
        .filter(|i| i.type_name == "Extension" && i.name == name && i.org == "default")
        .collect()
}

fn extension_item(name: &str) -> Item {
    let at = chrono::Utc::now();
    Item {
        id: uuid::Uuid::now_v7(),
        type_name: "Extension".into(),
        name: name.into(),
        parent: None,
        org: "default".into(),
        owner: None,
        attributes: json!({"kind": "lambda", "function": "f", "handlers": [{"name": "echo"}]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

async fn names_stay_unique_when_created_at_once(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let router = realnet::api::router(app.rn.clone());
    let body = webhook("race", "https://hooks.example.com/");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(create_at_once(
                router.clone(),
                app.admin_token.clone(),
                body.clone(),
            ))
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let a = task.await.expect("the request ran");
        match a.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(a.code(), "conflict", "{}", a.text);
                let message = a.body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("\"race\" exists already"), "{}", a.text);
            }
            other => panic!("a create answered {other}: {}", a.text),
        }
    }
    assert_eq!(created, 1, "exactly one create of the name wins");
    let items = named(&app, "race").await;
    assert_eq!(items.len(), 1, "{items:?}");

    // The store itself refuses a second item of the name, a rename onto it, and frees a
    // name when its item is deleted or renamed.
    let org = "default";
    let twin = extension_item("race");
    let refused = app
        .rn
        .store
        .apply(org, &[Write::Create(twin.clone())])
        .await;
    assert!(matches!(refused, Err(StoreError::Taken(_))), "{refused:?}");
    let other = extension_item("other");
    app.rn
        .store
        .apply(org, &[Write::Create(other.clone())])
        .await
        .expect("a free name");
    let renamed = |name: &str, version: i64| Write::Update {
        item: Item {
            name: name.into(),
            version: version + 1,
            ..other.clone()
        },
        expected_version: version,
    };
    let refused = app.rn.store.apply(org, &[renamed("race", 1)]).await;
    assert!(matches!(refused, Err(StoreError::Taken(_))), "{refused:?}");
    app.rn
        .store
        .apply(org, &[renamed("third", 1)])
        .await
        .expect("a free name");
    // "other" is free again; another org may use any name.
    app.rn
        .store
        .apply(org, &[Write::Create(extension_item("other"))])
        .await
        .expect("the old name of a renamed item is free");
    let elsewhere = Item {
        org: OTHER_ORG.into(),
        ..extension_item("race")
    };
    app.rn
        .store
        .apply(OTHER_ORG, &[Write::Create(elsewhere)])
        .await
        .expect("names are unique within an org only");
    let uri = format!("/api/items/{}", items[0].id);
    let a = app.call(Method::DELETE, &uri, None, &[]).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    app.rn
        .store
        .apply(org, &[Write::Create(twin)])
        .await
        .expect("a deleted item's name is free");
}

async fn writes_made_here_are_seen_at_once(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let (url, seen) = echo_server().await;
    let (item, secret) = create_webhook(&app, "hooks", &url).await;
    seen.expect_secret(&secret);
    let admin = app.admin_token.clone();
    let uri = format!("/api/items/{}", id_of(&item));
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);

    // A handler taken away is gone from the next call.
    let change = json!({"attributes": {"handlers": [{"name": "other"}]}});
    let a = app.call(Method::PATCH, &uri, Some(change), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert!(a.text.contains("no handler"), "{}", a.text);
    let change = json!({"attributes": {"handlers": [{"name": "echo"}]}});
    let a = app.call(Method::PATCH, &uri, Some(change), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);

    // A deleted extension is not called again.
    let a = app.call(Method::DELETE, &uri, None, &[]).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let sent = seen.requests.load(std::sync::atomic::Ordering::SeqCst);
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(
        seen.requests.load(std::sync::atomic::Ordering::SeqCst),
        sent,
        "nothing was sent"
    );
}

/// Deletes the extension item and its secret straight in the store, as another container
/// would: this container's cache is not told.
async fn delete_elsewhere(app: &TestApp, item: &Value) {
    let id: uuid::Uuid = id_of(item).parse().expect("an id");
    app.rn
        .store
        .apply(
            "default",
            &[
                Write::Delete {
                    id,
                    expected_version: item["version"].as_i64().expect("a version"),
                },
                Write::SetSetting {
                    key: format!("extension_secret/default/{id}"),
                    value: None,
                },
            ],
        )
        .await
        .expect("the store answers");
}

async fn writes_made_elsewhere_are_seen_once_the_entry_expires(kind: StoreKind) {
    let ttl = Duration::from_millis(1500);
    let app = app(kind, ttl).await;
    let (url, seen) = echo_server().await;
    let (item, secret) = create_webhook(&app, "hooks", &url).await;
    seen.expect_secret(&secret);
    let admin = app.admin_token.clone();
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);
    delete_elsewhere(&app, &item).await;
    // Warm: the call reads neither the item nor its secret, so it still goes out.
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "served from the cache: {}",
        a.text
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);

    // With no cache (`REALNET_AUTH_CACHE_TTL=0`) every call reads the store.
    let app = self::app(kind, Duration::ZERO).await;
    let (item, secret) = create_webhook(&app, "hooks", &url).await;
    seen.expect_secret(&secret);
    let admin = app.admin_token.clone();
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);
    delete_elsewhere(&app, &item).await;
    let a = call(&app, &admin, "hooks").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
}

/// Names no extension can have (too long for a store key, not URL-safe, a linked
/// extension's): a rotation and a call answer `404` with a JSON error, on every store,
/// and change nothing.
async fn odd_names_are_not_found(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let admin = app.admin_token.clone();
    let before = app.snapshot().await;
    let long = "a".repeat(2000);
    for name in [
        long.as_str(),
        "UPPER",
        "a%2Fb",
        "%C3%A9t%C3%A9",
        "a.b",
        "-x",
        "ops",
    ] {
        let a = rotate(&app, Some(&admin), name).await;
        app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
        assert_eq!(a.code(), "not_found", "{name}: {}", a.text);
        let a = call(&app, &admin, name).await;
        app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    }
}

/// A webhook that cannot be reached is a `502` saying why, without its URL: a caller may
/// `call` an extension whose item they may not read, and a URL can carry a token.
async fn a_failed_call_does_not_show_the_url(kind: StoreKind) {
    let app = app(kind, TTL).await;
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let url = "http://127.0.0.1:1/hook?token=tok-in-the-url";
    create_webhook(&app, "closed", url).await;
    let (_, member) = app.account("default", "cal", false).await;
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    let before = app.snapshot().await;
    for token in [member.as_str(), app.admin_token.as_str()] {
        let a = call(&app, token, "closed").await;
        app.assert_refused(&before, &a, StatusCode::BAD_GATEWAY)
            .await;
        assert!(a.text.contains("no answer"), "{}", a.text);
        assert!(
            !a.text.contains("tok-in-the-url") && !a.text.contains("127.0.0.1:1"),
            "{}",
            a.text
        );
    }
}

/// An `Extension` deleted with its parent (a recursive delete) goes as one deleted by
/// itself: its secret is removed, calls no longer reach it (though it was remembered), and
/// its name is free again (DynamoDB's claim record too).
async fn a_recursive_delete_frees_the_extensions_under_it(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let (url, seen) = echo_server().await;
    let folder = app.create(json!({"type": "Folder", "name": "exts"})).await;
    let mut body = webhook("inner", &url);
    body["parent"] = folder["id"].clone();
    let a = app.post("/api/items", body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = id_of(&a.body);
    seen.expect_secret(a.body["key"].as_str().expect("the secret"));
    let admin = app.admin_token.clone();
    assert_eq!(call(&app, &admin, "inner").await.status, StatusCode::OK);

    let uri = format!("/api/items/{}?recursive=true", id_of(&folder));
    let a = app.call(Method::DELETE, &uri, None, &[]).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    assert_eq!(
        stored_secret(&app, &id).await,
        "",
        "the secret went with it"
    );
    let a = call(&app, &admin, "inner").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let a = app.post("/api/items", webhook("inner", &url)).await;
    assert_eq!(
        a.status,
        StatusCode::CREATED,
        "the name is free: {}",
        a.text
    );
}

/// Two orgs' extensions of the same name are two entries of the cache: each org's calls go
/// to its own URL signed with its own secret, however warm the other's entry is, and a
/// rotation in one org leaves the other's secret as it was.
async fn one_name_in_two_orgs_is_two_extensions(kind: StoreKind) {
    let app = app(kind, TTL).await;
    let (ours_url, ours) = echo_server().await;
    let (theirs_url, theirs) = echo_server().await;
    let (_, our_secret) = create_webhook(&app, "hooks", &ours_url).await;
    ours.expect_secret(&our_secret);
    let admin = app.admin_token.clone();
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);

    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let a = app
        .call_with(
            &other,
            Method::POST,
            "/api/items",
            Some(webhook("hooks", &theirs_url)),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let their_secret = a.body["key"].as_str().expect("the secret").to_string();
    theirs.expect_secret(&their_secret);
    let their_call = format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/hooks/echo");
    let body = || Some(json!({"text": "theirs"}));
    for _ in 0..2 {
        let a = app
            .call_with(&other, Method::POST, &their_call, body())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body, json!({"echo": {"text": "theirs"}}));
        assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);
    }
    assert_eq!(ours.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(theirs.requests.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Their rotation is theirs: ours still signs with the secret we were shown.
    let a = rotate(&app, Some(&other), "hooks").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(call(&app, &admin, "hooks").await.status, StatusCode::OK);
    theirs.expect_secret(a.body["key"].as_str().expect("the new secret"));
    let a = app
        .call_with(&other, Method::POST, &their_call, body())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

on_every_store!(
    one_name_in_two_orgs_is_two_extensions,
    a_recursive_delete_frees_the_extensions_under_it,
    a_failed_call_does_not_show_the_url,
    odd_names_are_not_found,
    an_admin_rotates_a_webhook_secret,
    names_stay_unique_when_created_at_once,
    writes_made_here_are_seen_at_once,
    writes_made_elsewhere_are_seen_once_the_entry_expires,
);
