//! Every route that acts for someone, driven with each kind of bad or insufficient credential:
//! none, malformed, expired, revoked, of a disabled account, of another org, and of a member
//! lacking the permission. Each answers as `API.md` says (401, 403 or 404) with the JSON error
//! body, and nothing changes in either org.

use axum::http::{Method, StatusCode};
use realnet::auth::token;
use realnet::store::Write;
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};

/// A route, with `{id}` standing for the item it acts on.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
}

fn route(method: Method, path: &'static str, body: Option<Value>) -> Route {
    Route { method, path, body }
}

/// Every route except the open ones (`/ping`, `/api/openapi.json`, `POST /api/auth`).
fn routes() -> Vec<Route> {
    let company = json!({"type": "Company", "name": "Initech"});
    let named = json!({"name": "Renamed"});
    vec![
        route(Method::GET, "/time", None),
        route(Method::GET, "/api/auth", None),
        route(Method::DELETE, "/api/auth", None),
        route(Method::GET, "/api/types", None),
        route(Method::GET, "/api/types/Company", None),
        route(Method::GET, "/api/items", None),
        route(Method::POST, "/api/items", Some(company.clone())),
        route(Method::GET, "/api/items/{id}", None),
        route(Method::PATCH, "/api/items/{id}", Some(named.clone())),
        route(Method::PUT, "/api/items/{id}", Some(named.clone())),
        route(Method::DELETE, "/api/items/{id}", None),
        route(Method::GET, "/api/items/{id}/children", None),
        route(Method::GET, "/api/companies", None),
        route(
            Method::POST,
            "/api/companies",
            Some(json!({"name": "Initech"})),
        ),
        route(Method::GET, "/api/companies/{id}", None),
        route(Method::PATCH, "/api/companies/{id}", Some(named.clone())),
        route(Method::PUT, "/api/companies/{id}", Some(named)),
        route(Method::DELETE, "/api/companies/{id}", None),
        route(Method::GET, "/api/files", None),
        route(
            Method::POST,
            "/api/files",
            Some(json!({"name": "a.txt", "content_type": "text/plain", "size": 1})),
        ),
        route(Method::PUT, "/api/files/{id}/content", Some(json!("x"))),
        route(Method::POST, "/api/files/{id}/confirm", None),
        route(Method::GET, "/api/files/{id}/content", None),
        route(
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": "items.delete", "payload": {"ids": [uuid::Uuid::now_v7()]}})),
        ),
        route(Method::GET, "/api/jobs/{id}", None),
        route(Method::GET, "/api/apps", None),
        route(Method::GET, "/api/apps/{id}/views/companies", None),
    ]
}

/// A stored login token of `account` that expired an hour ago.
async fn expired_token(app: &TestApp, account: uuid::Uuid) -> String {
    let (token, hash) = token::generate(token::LOGIN_PREFIX);
    let expired = Write::PutToken {
        hash,
        account,
        api_key: None,
        expires: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
    };
    let org = app.rn.config.default_org.clone();
    app.rn
        .store
        .apply(&org, &[expired])
        .await
        .expect("store token");
    token
}

async fn refused(
    app: &TestApp,
    case: &str,
    token: Option<&str>,
    r: &Route,
    id: &str,
    status: StatusCode,
) {
    let uri = r.path.replace("{id}", id);
    let before = app.snapshot().await;
    let answer = app
        .call_as(token, r.method.clone(), &uri, r.body.clone(), &[])
        .await;
    let what = format!("{case}: {} {uri}", r.method);
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        _ => "not_found",
    };
    assert_eq!(answer.code(), code, "{what}: {}", answer.text);
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(answer.header("www-authenticate"), "Bearer", "{what}");
    }
    assert_eq!(app.snapshot().await, before, "{what}: something changed");
}

async fn bad_credentials_are_401_on_every_route(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let id = company["id"].as_str().expect("id").to_string();

    let (_, revoked) = app.account("default", "revoked", false).await;
    let gone = app
        .call_as(Some(&revoked), Method::DELETE, "/api/auth", None, &[])
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    let (disabled_id, disabled) = app.account("default", "disabled", false).await;
    let off = app
        .call(
            Method::PATCH,
            &format!("/api/items/{disabled_id}"),
            Some(json!({"attributes": {"disabled": true}})),
            &[],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    let (member_id, _) = app.account("default", "expiring", false).await;
    let expired = expired_token(&app, member_id).await;
    let malformed = "rn_not-a-real-token".to_string();
    let unknown = token::generate(token::LOGIN_PREFIX).0;

    let cases: [(&str, Option<&str>); 6] = [
        ("no token", None),
        ("malformed token", Some(&malformed)),
        ("unknown token", Some(&unknown)),
        ("expired token", Some(&expired)),
        ("revoked token", Some(&revoked)),
        ("disabled account", Some(&disabled)),
    ];
    for (case, token) in cases {
        for r in routes() {
            refused(&app, case, token, &r, &id, StatusCode::UNAUTHORIZED).await;
        }
    }
    // Not a bearer token at all.
    let basic = app
        .call_as(
            None,
            Method::GET,
            "/api/items",
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED, "{}", basic.text);
}

/// Another org's admin sees none of this org's items: every id route is a 404, lists leave
/// them out, and what it creates lands in its own org.
async fn another_orgs_token_finds_nothing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let id = company["id"].as_str().expect("id").to_string();
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    for r in routes() {
        // A job sent here would run in the background, in its own org, while later refusals
        // check that nothing changes; sending jobs is covered in jobs_api.rs.
        if r.path == "/api/jobs" && r.method == Method::POST {
            continue;
        }
        let uri = r.path.replace("{id}", &id);
        if r.path.contains("{id}") {
            refused(
                &app,
                "other org",
                Some(&other),
                &r,
                &id,
                StatusCode::NOT_FOUND,
            )
            .await;
        } else if r.method == Method::GET {
            let answer = app
                .call_as(Some(&other), Method::GET, &uri, None, &[])
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text);
            assert!(!answer.text.contains(&id), "{uri} shows another org's item");
        } else if r.method == Method::POST {
            let answer = app
                .call_as(Some(&other), Method::POST, &uri, r.body.clone(), &[])
                .await;
            assert!(
                [StatusCode::CREATED, StatusCode::ACCEPTED].contains(&answer.status),
                "{uri}: {}",
                answer.text
            );
            // What it makes lands in its own org (a file answers with its item beside the
            // upload; a job's status names no org).
            let org = answer.body.get("org").or(answer.body["item"].get("org"));
            assert!(org.is_none_or(|o| o == OTHER_ORG), "{uri}: {}", answer.text);
        }
    }
}

/// A member may read resources and create them, but not change what others own, and may not
/// see or touch the identity items (access rules here).
async fn a_member_lacking_the_permission_is_refused(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let company_id = company["id"].as_str().expect("id").to_string();
    let acl = app.get("/api/items?type=Acl&limit=1").await.body["items"][0]["id"]
        .as_str()
        .expect("a default rule")
        .to_string();
    let (_, member) = app.account("default", "member", false).await;
    // Items and type endpoints; files and jobs refuse another kind of item as a missing one.
    for r in routes() {
        if !r.path.contains("{id}")
            || r.path.starts_with("/api/files")
            || r.path.starts_with("/api/jobs")
        {
            continue;
        }
        // What the member cannot read does not exist for it.
        refused(
            &app,
            "member, an Acl",
            Some(&member),
            &r,
            &acl,
            StatusCode::NOT_FOUND,
        )
        .await;
        // What it can read but does not own, it may not change.
        if r.method != Method::GET {
            let case = "member, another's company";
            refused(
                &app,
                case,
                Some(&member),
                &r,
                &company_id,
                StatusCode::FORBIDDEN,
            )
            .await;
        }
    }
    let grant = route(
        Method::POST,
        "/api/items",
        Some(json!({"type": "Acl", "name": "let me in", "attributes": {
            "principal": "members", "permissions": ["admin"], "target_type": "Item"}})),
    );
    refused(
        &app,
        "member, an access rule",
        Some(&member),
        &grant,
        "",
        StatusCode::FORBIDDEN,
    )
    .await;
    let account = route(
        Method::POST,
        "/api/items",
        Some(json!({"type": "Account", "name": "sock", "attributes": {
            "username": "sock", "admin": true, "password": "a long password"}})),
    );
    refused(
        &app,
        "member, an account",
        Some(&member),
        &account,
        "",
        StatusCode::FORBIDDEN,
    )
    .await;
    let listed = app
        .call_as(
            Some(&member),
            Method::GET,
            "/api/items?limit=200",
            None,
            &[],
        )
        .await;
    let types: Vec<&str> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        !types.iter().any(|t| ["Acl", "Account", "Org"].contains(t)),
        "{types:?}"
    );
    assert!(types.contains(&"Company"), "{types:?}");
}

on_every_store!(
    bad_credentials_are_401_on_every_route,
    another_orgs_token_finds_nothing,
    a_member_lacking_the_permission_is_refused,
);
