//! The item API as a client uses it: create, read with ETags, change, move, list, page, delete,
//! type endpoints, and the service routes around them.

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

async fn crud_with_etags(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let created = app
        .post("/api/items", json!({"type": "Company", "name": "Acme", "attributes": {"domain": "acme.com", "employees": 12}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let item = created.body.clone();
    assert_eq!(
        created.header("location"),
        format!("/api/items/{}", id(&item))
    );
    assert_eq!(created.header("etag"), "\"1\"");
    assert_eq!(item["org"], "default");
    assert_eq!(item["version"], 1);
    assert_eq!(
        uuid::Uuid::parse_str(id(&item))
            .expect("uuid")
            .get_version_num(),
        7
    );

    let uri = format!("/api/items/{}", id(&item));
    let got = app.get(&uri).await;
    assert_eq!((got.status, got.header("etag")), (StatusCode::OK, "\"1\""));
    assert_eq!(got.body, item);
    let cached = app
        .call(Method::GET, &uri, None, &[("if-none-match", "\"1\"")])
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.text, "");

    let patched = app
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"attributes": {"employees": 13, "domain": null}})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.header("etag"), "\"2\"");
    assert_eq!(patched.body["attributes"], json!({"employees": 13}));
    assert_eq!(patched.body["name"], "Acme");
    let fresh = app
        .call(Method::GET, &uri, None, &[("if-none-match", "\"1\"")])
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::OK,
        "a stale ETag gets the new version"
    );

    let put = app
        .call(
            Method::PUT,
            &uri,
            Some(json!({"name": "Acme Inc", "attributes": {"industry": "retail"}})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["version"], 3);
    assert_eq!(put.body["attributes"], json!({"industry": "retail"}));
    assert_eq!(put.body["created_at"], item["created_at"]);

    let deleted = app
        .call(Method::DELETE, &uri, None, &[("if-match", "\"3\"")])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&uri).await.status, StatusCode::NOT_FOUND);
}

async fn defaults_references_and_search(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let acme = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let deal = app
        .create(json!({"type": "Deal", "name": "Renewal", "attributes": {"company": id(&acme), "amount": 1200.5, "close_date": "2026-12-01T10:00:00+01:00"}}))
        .await;
    assert_eq!(deal["attributes"]["stage"], "lead", "default applied");
    assert_eq!(
        deal["attributes"]["close_date"], "2026-12-01T09:00:00.000000Z",
        "normalised to UTC"
    );
    app.create(json!({"type": "Contact", "name": "Ann Lee", "attributes": {"email": "ann@acme.com", "notes": "Renewal champion"}})).await;

    let found = app.get("/api/items?q=renewal").await;
    let names: Vec<&str> = found.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["Renewal", "Ann Lee"]);
    let deals = app
        .get(&format!(
            "/api/items?type=Deal&attr.company={}&attr.amount.gt=1000",
            id(&acme)
        ))
        .await;
    assert_eq!(
        deals.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        deals.text
    );

    // Once the company is gone, the deal can still be edited; a new reference is checked.
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}", id(&acme)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let deal_uri = format!("/api/items/{}", id(&deal));
    let renamed = app
        .call(
            Method::PATCH,
            &deal_uri,
            Some(json!({"name": "Renewal 2027"})),
            &[],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let repointed = app
        .call(
            Method::PATCH,
            &deal_uri,
            Some(json!({"attributes": {"company": uuid::Uuid::now_v7().to_string()}})),
            &[],
        )
        .await;
    assert_eq!(
        repointed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        repointed.text
    );
}

async fn hierarchy_children_and_recursive_delete(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let root = app.create(json!({"type": "Folder", "name": "root"})).await;
    let a = app
        .create(json!({"type": "Folder", "name": "a", "parent": id(&root)}))
        .await;
    let b = app
        .post(
            "/api/files",
            json!({"name": "b.txt", "parent": id(&root), "content_type": "text/plain", "size": 3}),
        )
        .await
        .body["item"]
        .clone();
    let deep = app
        .create(json!({"type": "Folder", "name": "deep", "parent": id(&a)}))
        .await;

    let children = app.get(&format!("/api/items/{}/children", id(&root))).await;
    let names: Vec<&str> = children.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["a", "b.txt"]);
    let files = app
        .get(&format!("/api/items/{}/children?type=File", id(&root)))
        .await;
    assert_eq!(files.body["items"][0]["id"], b["id"]);

    // Move deep to the root level, then under b.
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id(&deep)),
            Some(json!({"parent": null})),
            &[],
        )
        .await;
    assert_eq!(moved.body["parent"], Value::Null, "{}", moved.text);
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id(&deep)),
            Some(json!({"parent": id(&b)})),
            &[],
        )
        .await;
    assert_eq!(moved.body["parent"], b["id"], "{}", moved.text);

    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/items/{}?recursive=true", id(&root)),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    for item in [&root, &a, &b, &deep] {
        assert_eq!(
            app.get(&format!("/api/items/{}", id(item))).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

async fn pages_through_cursors(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    for i in 0..7 {
        app.create(json!({"type": "Company", "name": format!("co {}", 7 - i), "attributes": {"employees": i % 3}})).await;
    }
    for sort in ["name", "-attr.employees", "-created"] {
        let mut uri = format!("/api/items?type=Company&limit=3&sort={sort}");
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = app.get(&uri).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            pages += 1;
            for item in page.body["items"].as_array().expect("items") {
                seen.push(item["name"].as_str().expect("name").to_string());
            }
            match page.body["next_cursor"].as_str() {
                Some(c) => uri = format!("/api/items?type=Company&limit=3&sort={sort}&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(pages, 3, "sort={sort}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 7, "sort={sort}: {seen:?}");
        if sort == "name" {
            assert_eq!(seen, (1..=7).map(|i| format!("co {i}")).collect::<Vec<_>>());
        }
    }
}

async fn type_endpoints(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.post("/api/companies", json!({"name": "Acme"})).await;
    assert_eq!(company.status, StatusCode::CREATED, "{}", company.text);
    assert_eq!(company.body["type"], "Company");
    app.create(json!({"type": "Folder", "name": "not a company"}))
        .await;
    let list = app.get("/api/companies").await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    let one = app
        .get(&format!("/api/companies/{}", id(&company.body)))
        .await;
    assert_eq!(one.status, StatusCode::OK);
    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/companies/{}", id(&company.body)),
            Some(json!({"name": "Acme 2"})),
            &[],
        )
        .await;
    assert_eq!(patched.body["name"], "Acme 2");
    let contact = app
        .post(
            "/api/contacts",
            json!({"name": "Ann", "attributes": {"email": "ann@example.com"}}),
        )
        .await;
    assert_eq!(contact.body["type"], "Contact", "{}", contact.text);
}

async fn service_routes(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let ping = app.get("/ping").await;
    assert_eq!((ping.status, ping.text.as_str()), (StatusCode::OK, "pong"));
    assert!(ping.header("content-type").starts_with("text/plain"));
    assert!(!ping.header("x-request-id").is_empty());
    let echoed = app
        .call(Method::GET, "/ping", None, &[("x-request-id", "abc-123")])
        .await;
    assert_eq!(echoed.header("x-request-id"), "abc-123");

    let time = app.get("/time").await;
    let t = time.body["time"].as_str().expect("time");
    assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");

    let types = app.get("/api/types").await;
    let names: Vec<&str> = types.body["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default())
        .collect();
    for n in [
        "Item", "File", "Account", "Acl", "Company", "Deal", "CrmApp",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let deal = app.get("/api/types/Deal").await;
    assert_eq!(deal.body["base"], "Resource");
    assert_eq!(deal.body["layer"], "resource");
    let company_ref = deal.body["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "company")
        .cloned();
    assert_eq!(
        company_ref.map(|f| (f["kind"].clone(), f["ref"].clone())),
        Some((json!("ref"), json!("Company")))
    );
    let app_type = app.get("/api/types/CrmApp").await;
    assert!(
        app_type.body["views"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );

    let doc = app.get("/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    for path in [
        "/ping",
        "/time",
        "/api/types",
        "/api/types/{name}",
        "/api/items",
        "/api/items/{id}",
        "/api/items/{id}/children",
        "/api/files",
        "/api/files/{id}",
        "/api/companies/{id}",
        "/api/apps",
        "/api/apps/{id}/views/{view}",
    ] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let mut ids: Vec<&str> = doc.body["paths"]
        .as_object()
        .expect("paths")
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.values().filter_map(|op| op["operationId"].as_str()))
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");
    // A type endpoint documents the type's own attributes.
    let deal = &doc.body["paths"]["/api/deals"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["attributes"];
    assert_eq!(deal["required"], json!(["company"]), "{deal}");
    assert_eq!(
        deal["properties"]["stage"]["enum"],
        json!(["lead", "qualified", "proposal", "won", "lost"])
    );
    assert_eq!(deal["properties"]["close_date"]["format"], "date-time");
}

on_every_store!(
    crud_with_etags,
    defaults_references_and_search,
    hierarchy_children_and_recursive_delete,
    pages_through_cursors,
    type_endpoints,
    service_routes,
);
