//! Access rules as `Acl` items: the defaults a new org gets, grants to groups, to an item and
//! its descendants, and to the public; list pages that hold only readable items and stay full;
//! and how long another container keeps a revoked token (the principal cache).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet_tests::{Answer, StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

async fn as_member(
    app: &TestApp,
    token: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> Answer {
    app.call_as(Some(token), method, uri, body, &[]).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn acl(app: &TestApp, name: &str, attributes: Value) -> Value {
    app.create(json!({"type": "Acl", "name": name, "attributes": attributes}))
        .await
}

/// Members read and create resources and change what they own; nothing else by default.
async fn the_defaults_of_a_new_org(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, alice) = app.account("default", "alice", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    let mine = as_member(
        &app,
        &alice,
        Method::POST,
        "/api/companies",
        Some(json!({"name": "A"})),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);
    let uri = format!("/api/companies/{}", id(&mine.body));
    let read = as_member(&app, &bob, Method::GET, &uri, None).await;
    assert_eq!(read.status, StatusCode::OK, "members read resources");
    let edit = as_member(&app, &bob, Method::PATCH, &uri, Some(json!({"name": "B"}))).await;
    assert_eq!(edit.status, StatusCode::FORBIDDEN, "{}", edit.text);
    let own = as_member(
        &app,
        &alice,
        Method::PATCH,
        &uri,
        Some(json!({"name": "A2"})),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "owners update: {}", own.text);
    let job = as_member(
        &app,
        &alice,
        Method::POST,
        "/api/items",
        Some(json!({"type": "Schedule", "name": "s", "attributes": {"cron": "* * * * *", "job": {}}})),
    )
    .await;
    assert_eq!(
        job.status,
        StatusCode::FORBIDDEN,
        "only resources: {}",
        job.text
    );
    let gone = as_member(&app, &bob, Method::DELETE, &uri, None).await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN);
    let deleted = as_member(&app, &alice, Method::DELETE, &uri, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "owners delete");
}

/// A rule for a group reaches its members once they join; a rule on an item reaches its
/// descendants and nothing else.
async fn groups_and_item_subtrees(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (alice_id, alice) = app.account("default", "alice", false).await;
    let group = app
        .create(json!({"type": "Group", "name": "editors"}))
        .await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let uri = format!("/api/companies/{}", id(&company));
    acl(
        &app,
        "editors edit companies",
        json!({"principal": format!("group:{}", id(&group)), "permissions": ["update"],
               "target_type": "Company"}),
    )
    .await;
    let before = as_member(
        &app,
        &alice,
        Method::PATCH,
        &uri,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(before.status, StatusCode::FORBIDDEN, "not a member yet");
    let joined = app
        .call(
            Method::PATCH,
            &format!("/api/items/{alice_id}"),
            Some(json!({"attributes": {"groups": [id(&group)]}})),
            &[],
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    let after = as_member(
        &app,
        &alice,
        Method::PATCH,
        &uri,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    let bad_group = app
        .call(
            Method::PATCH,
            &format!("/api/items/{alice_id}"),
            Some(json!({"attributes": {"groups": [id(&company)]}})),
            &[],
        )
        .await;
    assert_eq!(
        bad_group.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_group.text
    );

    let projects = app
        .create(json!({"type": "Folder", "name": "projects"}))
        .await;
    let inside = app
        .create(json!({"type": "Folder", "name": "inside", "parent": id(&projects)}))
        .await;
    let deep = app
        .create(json!({"type": "Folder", "name": "deep", "parent": id(&inside)}))
        .await;
    let outside = app
        .create(json!({"type": "Folder", "name": "outside"}))
        .await;
    acl(
        &app,
        "alice cleans up projects",
        json!({"principal": format!("account:{alice_id}"), "permissions": ["delete"],
               "target_item": id(&projects)}),
    )
    .await;
    let no = as_member(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/items/{}", id(&outside)),
        None,
    )
    .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let yes = as_member(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/items/{}", id(&deep)),
        None,
    )
    .await;
    assert_eq!(yes.status, StatusCode::NO_CONTENT, "{}", yes.text);

    let bad_rule = app
        .post(
            "/api/items",
            json!({"type": "Acl", "name": "bad", "attributes": {"principal": "members",
                "permissions": ["fly"], "target_type": "Company"}}),
        )
        .await;
    assert_eq!(
        bad_rule.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_rule.text
    );
}

/// With only some types readable, every page holds only readable items, pages before the last
/// are full, and following the cursor yields each readable item exactly once.
async fn pages_hold_only_readable_items(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let rules = app.get("/api/items?type=Acl&limit=200").await;
    for rule in rules.body["items"].as_array().expect("rules") {
        let gone = app
            .call(
                Method::DELETE,
                &format!("/api/items/{}", id(rule)),
                None,
                &[],
            )
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
    }
    acl(
        &app,
        "members read companies",
        json!({"principal": "members",
        "permissions": ["read"], "target_type": "Company"}),
    )
    .await;
    let mut readable = HashSet::new();
    for n in 0..24 {
        let company = app
            .create(json!({"type": "Company", "name": format!("co{n:02}")}))
            .await;
        readable.insert(id(&company));
        app.create(json!({"type": "Contact", "name": format!("ct{n:02}"),
            "attributes": {"email": "x@example.com"}}))
            .await;
    }
    let (_, member) = app.account("default", "reader", false).await;
    let mut seen = HashSet::new();
    let mut uri = "/api/items?limit=5&sort=-name".to_string();
    loop {
        let page = as_member(&app, &member, Method::GET, &uri, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.body["items"].as_array().expect("items");
        for item in items {
            assert_eq!(item["type"], "Company", "{item}");
            assert!(seen.insert(id(item)), "repeated");
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), 5, "a page before the last is full");
                uri = format!("/api/items?limit=5&sort=-name&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, readable);
    let contacts = as_member(&app, &member, Method::GET, "/api/contacts", None).await;
    assert_eq!(contacts.body["items"], json!([]));
}

async fn public(app: &TestApp, uri: &str) -> Answer {
    app.call_as(None, Method::GET, uri, None, &[]).await
}

/// A rule for the public opens exactly what it names to callers without a token.
async fn the_public_gets_only_what_a_rule_grants(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let contact = app
        .create(json!({"type": "Contact", "name": "Ann", "attributes": {"email": "a@acme.com"}}))
        .await;
    assert_eq!(
        public(&app, "/api/companies").await.status,
        StatusCode::UNAUTHORIZED
    );
    acl(
        &app,
        "companies are public",
        json!({"principal": "public",
        "permissions": ["read"], "target_type": "Company"}),
    )
    .await;
    let list = public(&app, "/api/companies").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"][0]["name"], "Acme");
    let one = public(&app, &format!("/api/items/{}", id(&company))).await;
    assert_eq!(one.status, StatusCode::OK);
    let hidden = public(&app, &format!("/api/items/{}", id(&contact))).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let write = app
        .call_as(
            None,
            Method::POST,
            "/api/companies",
            Some(json!({"name": "Spam"})),
            &[],
        )
        .await;
    assert_eq!(write.status, StatusCode::UNAUTHORIZED, "{}", write.text);
    assert_eq!(public(&app, "/time").await.status, StatusCode::UNAUTHORIZED);
}

/// A container keeps a resolved principal for `REALNET_AUTH_CACHE_TTL`: a token revoked
/// through another container still works here until then, and not after.
async fn revocation_elsewhere_takes_effect_within_the_cache_ttl(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.cache_ttl = Duration::from_secs(1)).await;
    let (_, token) = app.account("default", "carol", false).await;
    let other = realnet::api::router(Arc::new(realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::registry(),
        app.rn.store.clone(),
    )));
    let me = app
        .call_as(Some(&token), Method::GET, "/api/auth", None, &[])
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let logout = tower::ServiceExt::oneshot(
        other,
        axum::http::Request::delete("/api/auth")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("answer");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let cached = app
        .call_as(Some(&token), Method::GET, "/api/auth", None, &[])
        .await;
    assert_eq!(
        cached.status,
        StatusCode::OK,
        "still cached in this container"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = app
        .call_as(Some(&token), Method::GET, "/api/auth", None, &[])
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "after the TTL");
}

on_every_store!(
    the_defaults_of_a_new_org,
    groups_and_item_subtrees,
    pages_hold_only_readable_items,
    the_public_gets_only_what_a_rule_grants,
    revocation_elsewhere_takes_effect_within_the_cache_ttl,
);
