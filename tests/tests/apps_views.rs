//! Apps and their views: `GET /api/apps` lists the app items the caller may read with their
//! type's views, and `GET /api/apps/{id}/views/{view}` runs a view's query with the caller's
//! rights, a page at a time; what a caller may add narrows a view and never widens it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::types::TypeRegistry;
use realnet_tests::{
    Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store, query,
};
use serde_json::{Value, json};
use tower::ServiceExt;

fn names(page: &Answer) -> Vec<String> {
    page.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {}", page.text))
        .iter()
        .map(|i| i["name"].as_str().expect("a name").to_string())
        .collect()
}

/// The id of the seeded app named `name`, as the admin lists it.
async fn app_id(app: &TestApp, name: &str) -> String {
    let apps = app.get("/api/apps").await;
    assert_eq!(apps.status, StatusCode::OK, "{}", apps.text);
    let found = apps.body["items"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name}: {}", apps.text));
    id_of(found)
}

async fn deal(app: &TestApp, name: &str, company: &Value, stage: &str, amount: u32) -> Value {
    app.create(json!({"type": "Deal", "name": name, "attributes": {
        "company": id_of(company), "stage": stage, "amount": amount}}))
        .await
}

fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.code(), code, "{}", a.text);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
}

/// The seeded CRM and Files apps, sorted by name, each with its type's views (name, title and
/// query); the CRM's open deals are the deals in an open stage, largest first.
async fn an_admin_sees_the_seeded_apps_and_their_views(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let apps = app.get("/api/apps").await;
    assert_eq!(apps.status, StatusCode::OK, "{}", apps.text);
    assert_eq!(names(&apps), ["CRM", "Files"]);
    assert_eq!(apps.body["next_cursor"], Value::Null);
    let crm = &apps.body["items"][0];
    assert_eq!(crm["type"], "CrmApp");
    assert_eq!(
        crm["attributes"]["description"],
        "Companies, contacts and deals"
    );
    let views: Vec<&str> = crm["views"]
        .as_array()
        .expect("views")
        .iter()
        .map(|v| v["name"].as_str().expect("a view name"))
        .collect();
    assert_eq!(views, ["companies", "contacts", "open-deals", "won-deals"]);
    assert_eq!(
        crm["views"][2],
        json!({"name": "open-deals", "title": "Open deals", "query": {"type": "Deal",
            "attr.stage.in": "lead,qualified,proposal", "sort": "-attr.amount"}})
    );
    assert_eq!(apps.body["items"][1]["views"][0]["name"], "folders");

    let acme = app.create(json!({"type": "Company", "name": "Acme"})).await;
    deal(&app, "small", &acme, "lead", 10).await;
    deal(&app, "big", &acme, "proposal", 900).await;
    deal(&app, "done", &acme, "won", 500).await;
    deal(&app, "gone", &acme, "lost", 700).await;
    let crm = id_of(crm);
    let open = app.get(&format!("/api/apps/{crm}/views/open-deals")).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.text);
    assert_eq!(names(&open), ["big", "small"]);
    assert_eq!(open.body["next_cursor"], Value::Null);
    let won = app.get(&format!("/api/apps/{crm}/views/won-deals")).await;
    assert_eq!(names(&won), ["done"]);
    let companies = app.get(&format!("/api/apps/{crm}/views/companies")).await;
    assert_eq!(names(&companies), ["Acme"]);
    // Narrowed by the caller: only deals in the view that also match.
    let narrowed = app
        .get(&format!("/api/apps/{crm}/views/open-deals?q=small"))
        .await;
    assert_eq!(names(&narrowed), ["small"]);
    let resorted = app
        .get(&format!("/api/apps/{crm}/views/open-deals?sort=name"))
        .await;
    assert_eq!(names(&resorted), ["big", "small"]);
    let none = app
        .get(&format!("/api/apps/{crm}/views/open-deals?attr.stage=won"))
        .await;
    assert_eq!(names(&none), Vec::<String>::new(), "{}", none.text);
}

/// A member sees only the apps a rule lets them read, and a view holds only the items they may
/// read: deals under a folder they were given and the deals they own, not the others.
async fn a_member_sees_only_what_rules_let_them_read(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let crm = app_id(&app, "CRM").await;
    let files = app_id(&app, "Files").await;
    let rules = app.get("/api/items?type=Acl&limit=200").await;
    for rule in rules.body["items"].as_array().expect("rules") {
        if rule["attributes"]["principal"] == "members" {
            let gone = app
                .call(
                    Method::DELETE,
                    &format!("/api/items/{}", id_of(rule)),
                    None,
                    &[],
                )
                .await;
            assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
        }
    }
    let shared = app
        .create(json!({"type": "Folder", "name": "shared deals"}))
        .await;
    app.acl(json!({"principal": "members", "permissions": ["read"], "target_item": crm}))
        .await;
    app.acl(json!({"principal": "members", "permissions": ["read"],
        "target_item": id_of(&shared)}))
        .await;
    app.acl(json!({"principal": "members", "permissions": ["create"], "target_type": "Deal"}))
        .await;
    // In the shared folder, so that the member may name it in a deal of their own.
    let acme = app
        .create(json!({"type": "Company", "name": "Acme", "parent": id_of(&shared)}))
        .await;
    for (name, stage, amount, parent) in [
        ("shared lead", "lead", 30, Some(id_of(&shared))),
        ("shared win", "won", 40, Some(id_of(&shared))),
        ("hidden lead", "lead", 50, None),
        ("hidden proposal", "proposal", 60, None),
    ] {
        app.create(
            json!({"type": "Deal", "name": name, "parent": parent, "attributes": {
            "company": id_of(&acme), "stage": stage, "amount": amount}}),
        )
        .await;
    }
    let (_, member) = app.account("default", "mia", false).await;
    let own = app
        .call_with(
            &member,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Deal", "name": "my lead", "attributes": {
                "company": id_of(&acme), "stage": "qualified", "amount": 20}})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);

    let apps = app.call_with(&member, Method::GET, "/api/apps", None).await;
    assert_eq!(apps.status, StatusCode::OK, "{}", apps.text);
    assert_eq!(names(&apps), ["CRM"]);
    let open = format!("/api/apps/{crm}/views/open-deals");
    let mine = app.call_with(&member, Method::GET, &open, None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(names(&mine), ["shared lead", "my lead"]);
    let probe = app
        .call_with(&member, Method::GET, &format!("{open}?q=hidden"), None)
        .await;
    assert_eq!(
        names(&probe),
        Vec::<String>::new(),
        "filters narrow, never reveal"
    );
    let all = app.get(&open).await;
    assert_eq!(
        names(&all),
        ["hidden proposal", "hidden lead", "shared lead", "my lead"]
    );
    let won = app
        .call_with(
            &member,
            Method::GET,
            &format!("/api/apps/{crm}/views/won-deals"),
            None,
        )
        .await;
    assert_eq!(names(&won), ["shared win"]);
    // The Files app exists, but this member may not read it: the same 404 as a missing app.
    let unreadable = app
        .call_with(
            &member,
            Method::GET,
            &format!("/api/apps/{files}/views/folders"),
            None,
        )
        .await;
    assert_error(&unreadable, StatusCode::NOT_FOUND, "not_found");
    let missing = app
        .call_with(
            &member,
            Method::GET,
            &format!("/api/apps/{}/views/folders", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
}

/// Following `next_cursor` through a view with a small `limit` yields each item once, in the
/// view's order.
async fn paging_through_a_view_returns_each_item_once(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let crm = app_id(&app, "CRM").await;
    let mut made = Vec::new();
    for n in (0..7).rev() {
        let c = app
            .create(json!({"type": "Company", "name": format!("co{n}")}))
            .await;
        made.push(c["name"].as_str().expect("name").to_string());
    }
    made.sort();
    let base = format!("/api/apps/{crm}/views/companies?limit=3");
    let mut uri = base.clone();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = app.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        pages += 1;
        seen.extend(names(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => uri = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, made, "each company once, by name");
    assert!(pages >= 3, "{pages} pages of at most 3");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        7,
        "no company twice"
    );
    // The app list pages the same way.
    let first = app.get("/api/apps?limit=1").await;
    assert_eq!(names(&first), ["CRM"]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app.get(&format!("/api/apps?limit=1&cursor={cursor}")).await;
    assert_eq!(names(&second), ["Files"]);
}

/// Bad input is a JSON error that changes nothing: a malformed id or parameter is a `400`, a
/// parameter that would replace one of the view's filters too; an unknown app, an item that
/// is no app, an unknown view and another org's app are `404`.
async fn bad_requests_are_refused(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let crm = app_id(&app, "CRM").await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let mut other = query(&[("type", "App")]);
    other.limit = 1;
    let theirs = app.rn.store.query(OTHER_ORG, &other).await.expect("query");
    let theirs = theirs.items.first().expect("the other org has apps").id;
    let before = app.snapshot().await;
    for (uri, status, parameter) in [
        (
            "/api/apps/not-an-id/views/companies".to_string(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            format!("/api/apps/{crm}/views/companies?limit=0"),
            StatusCode::BAD_REQUEST,
            Some("limit"),
        ),
        (
            format!("/api/apps/{crm}/views/companies?cursor=forged"),
            StatusCode::BAD_REQUEST,
            Some("cursor"),
        ),
        (
            format!("/api/apps/{crm}/views/companies?colour=red"),
            StatusCode::BAD_REQUEST,
            Some("colour"),
        ),
        (
            format!("/api/apps/{crm}/views/companies?type=Contact"),
            StatusCode::BAD_REQUEST,
            Some("type"),
        ),
        (
            format!("/api/apps/{crm}/views/open-deals?attr.stage.in=won"),
            StatusCode::BAD_REQUEST,
            Some("attr.stage.in"),
        ),
        (
            format!("/api/apps/{crm}/views/open-deals?attr.colour=red"),
            StatusCode::BAD_REQUEST,
            Some("attr.colour"),
        ),
        (
            "/api/apps?type=Deal".to_string(),
            StatusCode::BAD_REQUEST,
            Some("type"),
        ),
        (
            "/api/apps?limit=201".to_string(),
            StatusCode::BAD_REQUEST,
            Some("limit"),
        ),
        (
            format!("/api/apps/{crm}/views/no-such-view"),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            format!("/api/apps/{}/views/companies", uuid::Uuid::now_v7()),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            format!("/api/apps/{}/views/companies", id_of(&company)),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            format!("/api/apps/{theirs}/views/companies"),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let a = app.get(&uri).await;
        app.assert_refused(&before, &a, status).await;
        if let Some(p) = parameter {
            assert_eq!(
                a.body["error"]["details"]["parameter"], p,
                "{uri}: {}",
                a.text
            );
        }
    }
    let unknown = app
        .get(&format!("/api/apps/{crm}/views/no-such-view"))
        .await;
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("open-deals")),
        "the error names the views there are: {}",
        unknown.text
    );
    // Each org's admin lists its own apps only.
    let mine: Vec<String> = app.get("/api/apps").await.body["items"]
        .as_array()
        .expect("apps")
        .iter()
        .map(id_of)
        .collect();
    let their_admin = app.rn.token_for(OTHER_ORG, "admin").await;
    let listed = app
        .call_with(&their_admin, Method::GET, "/api/apps", None)
        .await;
    assert_eq!(names(&listed), ["CRM", "Files"]);
    for a in listed.body["items"].as_array().expect("apps") {
        assert_eq!(a["org"], OTHER_ORG, "{a}");
        assert!(!mine.contains(&id_of(a)), "{a}");
    }
}

/// Without a token, both routes are `401` with the JSON error body.
async fn the_public_gets_401(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let crm = app_id(&app, "CRM").await;
    for uri in [
        "/api/apps".to_string(),
        format!("/api/apps/{crm}/views/companies"),
    ] {
        let a = app.call_as(None, Method::GET, &uri, None, &[]).await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

/// An app item outlives a change of definitions that removes its type: the app list leaves it
/// out and its views are a `404` that says why, not a `500`.
async fn an_app_whose_type_was_removed_has_no_views(kind: StoreKind) {
    let dir = realnet_tests::init_dir_with(json!([
        {"name": "PipelineApp", "base": "App", "views": [
            {"name": "all", "query": {"type": "Folder"}}]}
    ]));
    let types = realnet_tests::types_in(dir.path());
    let app = TestApp::with_types(kind, types, |_| {}).await;
    let pipeline = app
        .create(json!({"type": "PipelineApp", "name": "Pipeline"}))
        .await;
    let uri = format!("/api/apps/{}/views/all", id_of(&pipeline));
    let before = app.get(&uri).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);

    // The same store, started again with the shipped definitions only.
    let shipped = Arc::new(realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::registry(),
        app.rn.store.clone(),
    ));
    let router = realnet::api::router(shipped);
    let send = |uri: String| {
        let router = router.clone();
        let token = app.admin_token.clone();
        async move {
            let request = Request::get(uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .expect("a request");
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, apps) = send("/api/apps".to_string()).await;
    assert_eq!(status, StatusCode::OK, "{apps}");
    let listed: Vec<&Value> = apps["items"].as_array().expect("apps").iter().collect();
    assert!(listed.iter().all(|a| a["name"] != "Pipeline"), "{apps}");
    assert_eq!(listed.len(), 2, "{apps}");
    let (status, gone) = send(uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["error"]["code"], "not_found");
    let message = gone["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("PipelineApp") && message.contains("no longer defines"),
        "{message}"
    );
}

/// A view whose query names a type the definitions no longer have is refused when the types
/// load, naming the file and the view, so no server runs with a view that cannot run.
#[test]
fn a_view_on_a_removed_type_stops_the_loader() {
    let dir = realnet_tests::init_dir_with(json!([
        {"name": "PipelineApp", "base": "App", "views": [
            {"name": "leads", "query": {"type": "Lead"}}]}
    ]));
    let err = TypeRegistry::from_dir(dir.path()).expect_err("the view names no type");
    let text = err.to_string();
    assert!(
        text.contains("extra.json /types/0/views/0/query/type: unknown type \"Lead\""),
        "{text}"
    );
}

on_every_store!(
    an_admin_sees_the_seeded_apps_and_their_views,
    a_member_sees_only_what_rules_let_them_read,
    paging_through_a_view_returns_each_item_once,
    bad_requests_are_refused,
    the_public_gets_401,
    an_app_whose_type_was_removed_has_no_views,
);
