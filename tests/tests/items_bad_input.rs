//! Every kind of bad input gets the documented 4xx with a JSON error body, and leaves the store
//! exactly as it was.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::store::Write;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

/// Sends one request and checks the refusal and that nothing changed.
async fn refused(
    app: &TestApp,
    case: &str,
    status: StatusCode,
    code: &str,
    request: Request<Body>,
) -> Answer {
    let before = app.snapshot().await;
    let answer = app.send(request).await;
    assert_eq!(answer.status, status, "{case}: {}", answer.text);
    assert_eq!(answer.code(), code, "{case}: {}", answer.text);
    assert!(
        !answer.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{case}: the error says what is wrong"
    );
    assert!(
        !answer.header("x-request-id").is_empty(),
        "{case}: request id"
    );
    assert_eq!(app.snapshot().await, before, "{case}: the store changed");
    answer
}

fn json_request(method: Method, uri: &str, body: Value, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::from(body.to_string())).expect("request")
}

fn get(uri: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

/// The field a validation error names.
fn fields(a: &Answer) -> Vec<String> {
    a.body["error"]["details"]["fields"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// An item of another org, written straight to the store (no API can reach another org).
async fn foreign_company(app: &TestApp) -> String {
    let mut item = realnet_tests::contract::item("Company", "Initech", None, json!({}));
    item.org = OTHER_ORG.into();
    app.rn
        .store
        .apply(OTHER_ORG, &[Write::Create(item.clone())])
        .await
        .expect("foreign item");
    item.id.to_string()
}

async fn malformed_bodies(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    app.create(json!({"type": "Folder", "name": "keep"})).await;
    let raw = |ct: &str, body: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/items")
            .header("content-type", ct)
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    refused(
        &app,
        "malformed JSON",
        StatusCode::BAD_REQUEST,
        "invalid_json",
        raw("application/json", "{\"type\": \"Folder\","),
    )
    .await;
    refused(
        &app,
        "wrong content type",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        raw("text/plain", "{\"type\": \"Folder\", \"name\": \"x\"}"),
    )
    .await;
    let big = json!({"type": "Folder", "name": "big", "attributes": {"description": "x".repeat(70 * 1024)}});
    refused(
        &app,
        "body over the limit",
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        raw("application/json", &big.to_string()),
    )
    .await;
    refused(
        &app,
        "unknown JSON field",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::POST,
            "/api/items",
            json!({"type": "Folder", "name": "x", "colour": "red"}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "name of the wrong JSON type",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::POST,
            "/api/items",
            json!({"type": "Folder", "name": 5}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "malformed parent id",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::POST,
            "/api/items",
            json!({"type": "Folder", "name": "x", "parent": "12"}),
            &[],
        ),
    )
    .await;
}

async fn invalid_items(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let company = app.create(json!({"type": "Company", "name": "Acme"})).await;
    let contact = app
        .create(json!({"type": "Contact", "name": "Ann", "attributes": {"email": "ann@acme.com"}}))
        .await;
    let foreign = foreign_company(&app).await;
    let cid = company["id"].as_str().expect("id").to_string();
    let missing = uuid::Uuid::now_v7().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown type",
            json!({"type": "Compnay", "name": "x"}),
            "type",
        ),
        ("no type", json!({"name": "x"}), "type"),
        (
            "misspelled attribute",
            json!({"type": "Contact", "name": "x", "attributes": {"email": "a@b.c", "phnoe": "1"}}),
            "phnoe",
        ),
        (
            "wrong kind",
            json!({"type": "Company", "name": "x", "attributes": {"employees": "many"}}),
            "employees",
        ),
        (
            "fraction for an integer",
            json!({"type": "Company", "name": "x", "attributes": {"employees": 1.5}}),
            "employees",
        ),
        (
            "below the minimum",
            json!({"type": "Company", "name": "x", "attributes": {"employees": -1}}),
            "employees",
        ),
        (
            "missing required field",
            json!({"type": "Contact", "name": "x"}),
            "email",
        ),
        (
            "enum value not allowed",
            json!({"type": "Deal", "name": "x", "attributes": {"company": cid, "stage": "closed"}}),
            "stage",
        ),
        (
            "pattern mismatch",
            json!({"type": "Contact", "name": "x", "attributes": {"email": "not-an-email"}}),
            "email",
        ),
        (
            "bad datetime",
            json!({"type": "Deal", "name": "x", "attributes": {"company": cid, "close_date": "tomorrow"}}),
            "close_date",
        ),
        (
            "ref that does not exist",
            json!({"type": "Deal", "name": "x", "attributes": {"company": missing}}),
            "company",
        ),
        (
            "ref of the wrong type",
            json!({"type": "Deal", "name": "x", "attributes": {"company": contact["id"]}}),
            "company",
        ),
        (
            "ref in another org",
            json!({"type": "Deal", "name": "x", "attributes": {"company": foreign}}),
            "company",
        ),
        (
            "ref that is not an id",
            json!({"type": "Deal", "name": "x", "attributes": {"company": "Acme"}}),
            "company",
        ),
        (
            "parent that does not exist",
            json!({"type": "Folder", "name": "x", "parent": missing}),
            "parent",
        ),
        (
            "parent in another org",
            json!({"type": "Folder", "name": "x", "parent": foreign}),
            "parent",
        ),
        (
            "empty name",
            json!({"type": "Folder", "name": "  "}),
            "name",
        ),
    ];
    for (case, body, field) in cases {
        let a = refused(
            &app,
            case,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            json_request(Method::POST, "/api/items", body, &[]),
        )
        .await;
        assert!(
            fields(&a).contains(&field.to_string()),
            "{case}: {}",
            a.text
        );
    }
    // The same refusal for another org's item and a missing one: nothing leaks.
    let a = app
        .post(
            "/api/items",
            json!({"type": "Deal", "name": "x", "attributes": {"company": foreign}}),
        )
        .await;
    let b = app
        .post(
            "/api/items",
            json!({"type": "Deal", "name": "x", "attributes": {"company": missing}}),
        )
        .await;
    assert_eq!(
        a.body["error"]["details"]["fields"]["company"]
            .as_str()
            .map(|m| m.replace(&foreign, "ID")),
        b.body["error"]["details"]["fields"]["company"]
            .as_str()
            .map(|m| m.replace(&missing, "ID")),
    );
    // Through a type endpoint, only its type may be created.
    refused(
        &app,
        "wrong type on an endpoint",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        json_request(
            Method::POST,
            "/api/companies",
            json!({"type": "Contact", "name": "x", "attributes": {"email": "a@b.c"}}),
            &[],
        ),
    )
    .await;
}

async fn invalid_changes(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let a = app.create(json!({"type": "Folder", "name": "a"})).await;
    let b = app
        .create(json!({"type": "Folder", "name": "b", "parent": a["id"]}))
        .await;
    let c = app
        .create(json!({"type": "Folder", "name": "c", "parent": b["id"]}))
        .await;
    let contact = app
        .create(json!({"type": "Contact", "name": "Ann", "attributes": {"email": "ann@acme.com"}}))
        .await;
    let foreign = foreign_company(&app).await;
    let uri = |v: &Value| format!("/api/items/{}", v["id"].as_str().expect("id"));

    refused(
        &app,
        "move under a descendant",
        StatusCode::CONFLICT,
        "conflict",
        json_request(Method::PATCH, &uri(&a), json!({"parent": c["id"]}), &[]),
    )
    .await;
    refused(
        &app,
        "move under itself",
        StatusCode::CONFLICT,
        "conflict",
        json_request(Method::PATCH, &uri(&a), json!({"parent": a["id"]}), &[]),
    )
    .await;
    refused(
        &app,
        "move with PUT under a descendant",
        StatusCode::CONFLICT,
        "conflict",
        json_request(
            Method::PUT,
            &uri(&a),
            json!({"name": "a", "parent": b["id"]}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "move into another org",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        json_request(Method::PATCH, &uri(&c), json!({"parent": foreign}), &[]),
    )
    .await;
    refused(
        &app,
        "stale If-Match",
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        json_request(
            Method::PATCH,
            &uri(&c),
            json!({"name": "c2"}),
            &[("if-match", "\"7\"")],
        ),
    )
    .await;
    refused(
        &app,
        "stale If-Match on PUT",
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        json_request(
            Method::PUT,
            &uri(&c),
            json!({"name": "c2"}),
            &[("if-match", "\"0\"")],
        ),
    )
    .await;
    refused(
        &app,
        "malformed If-Match",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::PATCH,
            &uri(&c),
            json!({"name": "c2"}),
            &[("if-match", "version one")],
        ),
    )
    .await;
    // A bare version is told to quote it, not to send some other version.
    let bare = refused(
        &app,
        "unquoted If-Match",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::PATCH,
            &uri(&c),
            json!({"name": "c2"}),
            &[("if-match", "4")],
        ),
    )
    .await;
    assert!(
        bare.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("If-Match: \"4\"")),
        "{}",
        bare.text
    );
    refused(
        &app,
        "invalid attribute in a patch",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        json_request(
            Method::PATCH,
            &uri(&contact),
            json!({"attributes": {"email": "nope"}}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "removing a required attribute",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        json_request(
            Method::PATCH,
            &uri(&contact),
            json!({"attributes": {"email": null}}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "PUT without a required attribute",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        json_request(Method::PUT, &uri(&contact), json!({"name": "Ann"}), &[]),
    )
    .await;
    refused(
        &app,
        "changing the type",
        StatusCode::BAD_REQUEST,
        "bad_request",
        json_request(
            Method::PATCH,
            &uri(&contact),
            json!({"type": "Company"}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "delete with children",
        StatusCode::CONFLICT,
        "conflict",
        Request::builder()
            .method(Method::DELETE)
            .uri(uri(&a))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    refused(
        &app,
        "delete with a stale If-Match",
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        Request::builder()
            .method(Method::DELETE)
            .uri(uri(&c))
            .header("if-match", "\"9\"")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    refused(
        &app,
        "delete with an unknown parameter",
        StatusCode::BAD_REQUEST,
        "bad_request",
        Request::builder()
            .method(Method::DELETE)
            .uri(format!("{}?force=1", uri(&c)))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    refused(
        &app,
        "another org's item",
        StatusCode::NOT_FOUND,
        "not_found",
        json_request(
            Method::PATCH,
            &format!("/api/items/{foreign}"),
            json!({"name": "mine"}),
            &[],
        ),
    )
    .await;
    refused(
        &app,
        "deleting another org's item",
        StatusCode::NOT_FOUND,
        "not_found",
        Request::builder()
            .method(Method::DELETE)
            .uri(format!("/api/items/{foreign}?recursive=true"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    refused(
        &app,
        "an item outside the endpoint's type",
        StatusCode::NOT_FOUND,
        "not_found",
        json_request(
            Method::PATCH,
            &format!("/api/companies/{}", contact["id"].as_str().expect("id")),
            json!({"name": "x"}),
            &[],
        ),
    )
    .await;
}

async fn bad_ids_and_queries(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    for i in 0..3 {
        app.create(
            json!({"type": "Company", "name": format!("c{i}"), "attributes": {"employees": i}}),
        )
        .await;
    }
    let foreign = foreign_company(&app).await;
    refused(
        &app,
        "malformed id",
        StatusCode::BAD_REQUEST,
        "bad_request",
        get("/api/items/not-a-uuid"),
    )
    .await;
    refused(
        &app,
        "id that does not exist",
        StatusCode::NOT_FOUND,
        "not_found",
        get(&format!("/api/items/{}", uuid::Uuid::now_v7())),
    )
    .await;
    refused(
        &app,
        "another org's id",
        StatusCode::NOT_FOUND,
        "not_found",
        get(&format!("/api/items/{foreign}")),
    )
    .await;
    refused(
        &app,
        "children of another org's item",
        StatusCode::NOT_FOUND,
        "not_found",
        get(&format!("/api/items/{foreign}/children")),
    )
    .await;

    let page = app.get("/api/items?type=Company&limit=1").await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (case, uri, parameter) in [
        (
            "tampered cursor",
            format!("/api/items?type=Company&limit=1&cursor={tampered}"),
            "cursor",
        ),
        (
            "garbage cursor",
            "/api/items?cursor=abc".to_string(),
            "cursor",
        ),
        (
            "cursor of another sort",
            format!("/api/items?type=Company&limit=1&sort=name&cursor={cursor}"),
            "cursor",
        ),
        (
            "unknown filter field",
            "/api/items?type=Company&attr.employes=3".to_string(),
            "attr.employes",
        ),
        (
            "unknown operator",
            "/api/items?type=Company&attr.employees.like=3".to_string(),
            "attr.employees.like",
        ),
        (
            "filter without a type",
            "/api/items?attr.employees=3".to_string(),
            "attr.employees",
        ),
        (
            "unknown sort key",
            "/api/items?sort=size".to_string(),
            "sort",
        ),
        (
            "unknown sort field",
            "/api/items?type=Company&sort=-attr.size".to_string(),
            "sort",
        ),
        (
            "unknown parameter",
            "/api/items?colour=red".to_string(),
            "colour",
        ),
        (
            "unknown type",
            "/api/items?type=Compnay".to_string(),
            "type",
        ),
        ("limit=0", "/api/items?limit=0".to_string(), "limit"),
        (
            "limit=100000",
            "/api/items?limit=100000".to_string(),
            "limit",
        ),
        ("limit=-1", "/api/items?limit=-1".to_string(), "limit"),
        (
            "SQL in a number filter",
            "/api/items?type=Company&attr.employees.gt=1;DROP%20TABLE%20items".to_string(),
            "attr.employees.gt",
        ),
        (
            "SQL in an enum filter",
            "/api/items?type=Company&attr.industry=retail'%20OR%20'1'='1".to_string(),
            "attr.industry",
        ),
        (
            "SQL as a field name",
            "/api/items?type=Company&attr.employees)%20OR%201%3D1--=1".to_string(),
            "attr.employees) OR 1=1--",
        ),
        (
            "repeated parameter",
            "/api/items?type=Company&type=Deal".to_string(),
            "type",
        ),
        (
            "parent on children",
            format!(
                "/api/items/{}/children?parent=root",
                page.body["items"][0]["id"].as_str().expect("id")
            ),
            "parent",
        ),
    ] {
        let a = refused(
            &app,
            case,
            StatusCode::BAD_REQUEST,
            "bad_request",
            get(&uri),
        )
        .await;
        assert_eq!(
            a.body["error"]["details"]["parameter"],
            json!(parameter),
            "{case}: {}",
            a.text
        );
    }
    // SQL-looking values for text fields are just text: nothing matches, nothing breaks.
    for uri in [
        "/api/items?type=Company&name=x'%20OR%20'1'='1",
        "/api/items?type=Company&name=%25*",
        "/api/items?q=%27%3B%20DROP%20TABLE%20items%3B%20--",
        "/api/items?type=Company&attr.domain.in=a','b",
    ] {
        let before = app.snapshot().await;
        let a = app.get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text);
        assert_eq!(a.body["items"], json!([]), "{uri}");
        assert_eq!(app.snapshot().await, before);
    }
}

async fn unknown_routes_and_methods(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    refused(
        &app,
        "unknown route",
        StatusCode::NOT_FOUND,
        "not_found",
        get("/api/nothing-here"),
    )
    .await;
    refused(
        &app,
        "unknown type endpoint item",
        StatusCode::NOT_FOUND,
        "not_found",
        get(&format!("/api/widgets/{}", uuid::Uuid::now_v7())),
    )
    .await;
    refused(
        &app,
        "wrong method",
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        Request::builder()
            .method(Method::DELETE)
            .uri("/api/types")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    refused(
        &app,
        "unknown type name",
        StatusCode::NOT_FOUND,
        "not_found",
        get("/api/types/Nope"),
    )
    .await;
}

on_every_store!(
    malformed_bodies,
    invalid_items,
    invalid_changes,
    bad_ids_and_queries,
    unknown_routes_and_methods,
);
