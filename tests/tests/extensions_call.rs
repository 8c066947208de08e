//! Calling linked extension handlers, on every store: synchronously over HTTP, with
//! `?async=true` as a job, through `POST /api/jobs` and on a schedule, one code path with the
//! caller's rights applied to everything the handler does. The CRM extension's pipeline
//! summary counts only what the caller may read; its CSV importer checks every line before
//! anything is written. Refusals: no call permission, the public, another org's or
//! portfolio's path, unknown extensions and handlers, payloads off the input schema, and a
//! handler that panics (a `500` naming the request id; nothing it began is saved).

use axum::http::{Method, StatusCode};
use realnet::extensions::{Extension, Handler, HandlerError};
use realnet::item::ops::NewItem;
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};

const SUMMARY: &str = "/_schd/default/default/call/crm/pipeline_summary";
const IMPORT: &str = "/_schd/default/default/call/crm/import_contacts";

async fn call(app: &TestApp, token: &str, uri: &str, payload: Value) -> realnet_tests::Answer {
    app.call_with(token, Method::POST, uri, Some(payload)).await
}

/// Checks `result` against the output schema `GET /api/extensions` shows for the handler.
async fn assert_output(app: &TestApp, extension: &str, handler: &str, result: &Value) {
    let listed = app.get("/api/extensions").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let schema = listed.body["extensions"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == extension))
        .and_then(|e| e["handlers"].as_array())
        .and_then(|h| h.iter().find(|h| h["name"] == handler))
        .map(|h| h["output"].clone())
        .expect("the handler is listed with an output schema");
    let validator = jsonschema::validator_for(&schema).expect("a JSON Schema");
    let problems: Vec<String> = validator
        .iter_errors(result)
        .map(|e| e.to_string())
        .collect();
    assert!(
        problems.is_empty(),
        "{result} is off its schema: {problems:?}"
    );
}

async fn company(app: &TestApp, name: &str) -> String {
    id_of(&app.create(json!({"type": "Company", "name": name})).await)
}

async fn deal(app: &TestApp, token: &str, company: &str, stage: &str, amount: f64) {
    let a = app
        .call_with(
            token,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Deal", "name": format!("{stage} {amount}"),
                "attributes": {"company": company, "stage": stage, "amount": amount}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

async fn contacts(app: &TestApp) -> Vec<Value> {
    let a = app.get("/api/contacts?limit=200").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["items"].as_array().cloned().unwrap_or_default()
}

/// A member with the call right who may read only the deals they own: the org's default
/// rule letting members read every resource is removed first.
async fn owner_only_member(app: &TestApp) -> String {
    let rules = app.get("/api/items?type=Acl&limit=200").await;
    for rule in rules.body["items"].as_array().into_iter().flatten() {
        if rule["name"] == "members read and create resources" {
            let uri = format!("/api/items/{}", id_of(rule));
            let a = app.call(Method::DELETE, &uri, None, &[]).await;
            assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
        }
    }
    app.acl(json!({"principal": "members", "permissions": ["create"], "target_type": "Resource"}))
        .await;
    app.acl(json!({"principal": "members", "permissions": ["read"], "target_type": "Company"}))
        .await;
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    app.account("default", "mia", false).await.1
}

async fn the_summary_counts_what_the_caller_may_read(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let acme = company(&app, "Acme").await;
    let globex = company(&app, "Globex").await;
    deal(&app, &admin, &acme, "lead", 100.0).await;
    deal(&app, &admin, &acme, "won", 250.5).await;
    deal(&app, &admin, &globex, "won", 1000.0).await;
    let mia = owner_only_member(&app).await;
    deal(&app, &mia, &globex, "proposal", 40.0).await;

    let all = call(&app, &admin, SUMMARY, json!({})).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["total"], json!({"deals": 4, "amount": 1390.5}));
    assert_eq!(
        all.body["stages"],
        json!([{"stage": "lead", "deals": 1, "amount": 100.0},
            {"stage": "proposal", "deals": 1, "amount": 40.0},
            {"stage": "won", "deals": 2, "amount": 1250.5}])
    );
    let by_company = all.body["companies"].as_array().expect("companies");
    let acme_row = by_company
        .iter()
        .find(|c| c["id"] == acme.as_str())
        .expect("Acme");
    assert_eq!(acme_row["name"], "Acme");
    assert_eq!(acme_row["deals"], 2);
    assert_eq!(
        acme_row["stages"]["won"],
        json!({"deals": 1, "amount": 250.5})
    );
    assert_output(&app, "crm", "pipeline_summary", &all.body).await;

    // The member reads only their own deal.
    let mine = call(&app, &mia, SUMMARY, json!({})).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.body["total"], json!({"deals": 1, "amount": 40.0}));
    assert_eq!(mine.body["companies"][0]["name"], "Globex");

    // Only some stages.
    let won = call(&app, &admin, SUMMARY, json!({"stages": ["won"]})).await;
    assert_eq!(
        won.body["total"],
        json!({"deals": 2, "amount": 1250.5}),
        "{}",
        won.text
    );

    // Another org's admin sees none of it, through their own org's path.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let theirs = call(
        &app,
        &other,
        &format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/crm/pipeline_summary"),
        json!({}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    assert_eq!(theirs.body["total"], json!({"deals": 0, "amount": 0.0}));
}

async fn calls_are_refused_at_the_edge(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let (_, member) = app.account("default", "max", false).await;
    let before = app.snapshot().await;
    let refused = |a: &realnet_tests::Answer, status: StatusCode, code: &str| {
        assert_eq!(a.status, status, "{}", a.text);
        assert_eq!(a.code(), code, "{}", a.text);
    };
    // Default deny: a member without a rule granting `call`.
    let a = call(&app, &member, SUMMARY, json!({})).await;
    refused(&a, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("call permission")
    );
    // The public.
    let a = app
        .call_as(None, Method::POST, SUMMARY, Some(json!({})), &[])
        .await;
    refused(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    // Another org's path, or a portfolio that is not the org's.
    for uri in [
        format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/crm/pipeline_summary"),
        "/_schd/default/other-org/call/crm/pipeline_summary".to_string(),
        "/_schd/elsewhere/default/call/crm/pipeline_summary".to_string(),
    ] {
        refused(
            &call(&app, &admin, &uri, json!({})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    // Unknown extension or handler.
    for uri in [
        "/_schd/default/default/call/nope/pipeline_summary",
        "/_schd/default/default/call/crm/nope",
    ] {
        refused(
            &call(&app, &admin, uri, json!({})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    // Off the input schema: a stage that does not exist, a field the handler does not take,
    // not an object.
    for payload in [
        json!({"stages": ["nope"]}),
        json!({"extra": 1}),
        json!([1, 2]),
    ] {
        let a = call(&app, &admin, SUMMARY, payload.clone()).await;
        refused(&a, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let fields = a.body["error"]["details"]["fields"]
            .as_object()
            .expect("fields");
        assert!(
            fields.keys().all(|k| k.starts_with("payload")),
            "{payload}: {}",
            a.text
        );
    }
    // A bad query string, a body that is not JSON.
    let a = call(&app, &admin, &format!("{SUMMARY}?async=maybe"), json!({})).await;
    refused(&a, StatusCode::BAD_REQUEST, "bad_request");
    let a = app
        .call(
            Method::POST,
            SUMMARY,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(app.snapshot().await, before, "no refusal changed anything");
}

async fn the_importer_writes_every_contact_or_none(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let acme = company(&app, "Acme").await;
    let bad = "name,email,company\nAda,ada@example.com,Acme\nBob,not-an-email,Acme\nCy,cy@example.com,Initech\n,dee@example.com,\n";
    let before = app.snapshot().await;
    let a = call(&app, &admin, IMPORT, json!({"csv": bad})).await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let lines = &a.body["error"]["details"]["lines"];
    assert!(lines.get("2").is_none(), "line 2 is good: {}", a.text);
    assert!(lines["3"]["email"].is_string(), "{}", a.text);
    assert!(
        lines["4"]["company"]
            .as_str()
            .unwrap_or_default()
            .contains("Initech"),
        "{}",
        a.text
    );
    assert!(lines["5"]["name"].is_string(), "{}", a.text);

    for csv in [
        "nickname,email\nAda,ada@example.com\n",
        "name\nAda\n",
        "name,email\n",
    ] {
        let a = call(&app, &admin, IMPORT, json!({"csv": csv})).await;
        app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }

    let good = "name,email,phone,company\nAda,ada@example.com,+44 20 7946 0000,acme\n\"Lovelace, Bob\",bob@example.com,,\n";
    let a = call(&app, &admin, IMPORT, json!({"csv": good})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["created"], 2);
    assert_output(&app, "crm", "import_contacts", &a.body).await;
    let made = contacts(&app).await;
    assert_eq!(made.len(), 2);
    let ada = made.iter().find(|c| c["name"] == "Ada").expect("Ada");
    assert_eq!(ada["attributes"]["company"], acme.as_str());
    assert!(made.iter().any(|c| c["name"] == "Lovelace, Bob"));

    // A member imports as themselves: the contacts are theirs.
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    let (mia, token) = app.account("default", "mia", false).await;
    let a = call(
        &app,
        &token,
        IMPORT,
        json!({"csv": "name,email\nEve,eve@example.com\n"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let eve = contacts(&app)
        .await
        .into_iter()
        .find(|c| c["name"] == "Eve")
        .expect("Eve");
    assert_eq!(eve["owner"], mia.to_string());
}

async fn calls_run_as_jobs_too(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let acme = company(&app, "Acme").await;
    deal(&app, &admin, &acme, "won", 10.0).await;
    // `?async=true`: a job, signed like every envelope Realnet sends.
    let a = call(&app, &admin, &format!("{SUMMARY}?async=true"), json!({})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["kind"], "extension.call");
    let job = app.finished_job(&admin, &id_of(&a.body)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["total"], json!({"deals": 1, "amount": 10.0}));

    // An async call is checked before it is queued.
    let a = call(
        &app,
        &admin,
        &format!("{SUMMARY}?async=true"),
        json!({"extra": 1}),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);

    // `POST /api/jobs` with an extension.call job; the importer's writes commit with the
    // job's record.
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "extension.call", "payload": {"extension": "crm",
                "handler": "import_contacts", "payload": {"csv": "name,email\nAda,ada@example.com\n"}}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let job = app.finished_job(&admin, &id_of(&a.body)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(contacts(&app).await.len(), 1);

    // A job whose handler refuses fails for good with the handler's message.
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "extension.call", "payload": {"extension": "crm",
                "handler": "import_contacts", "payload": {"csv": "name,email\nBob,nope\n"}}}),
        )
        .await;
    let job = app.finished_job(&admin, &id_of(&a.body)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was imported"),
        "{job}"
    );
    assert_eq!(contacts(&app).await.len(), 1);
}

async fn schedules_call_handlers(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let job = |handler: &str| {
        json!({"kind": "extension.call", "payload": {"extension": "crm", "handler": handler,
            "payload": {"csv": "name,email\nAda,ada@example.com\n"}}})
    };
    // Setting a schedule rehearses its job: an unknown handler is refused.
    let a = app
        .post(
            "/api/items",
            json!({"type": "Schedule", "name": "import", "attributes": {"cron": "* * * * *", "job": job("nope")}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert!(
        a.body["error"]["details"]["fields"]["job"].is_string(),
        "{}",
        a.text
    );
    // A member who may set schedules but not call may not schedule a call either.
    app.acl(json!({"principal": "members", "permissions": ["create"], "target_type": "Schedule"}))
        .await;
    let (_, member) = app.account("default", "max", false).await;
    let a = app
        .call_with(
            &member,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Schedule", "name": "import", "attributes": {"cron": "* * * * *", "job": job("import_contacts")}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);

    let created = app
        .post(
            "/api/items",
            json!({"type": "Schedule", "name": "import", "attributes": {"cron": "* * * * *", "job": job("import_contacts")}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let at = created.body["updated_at"]
        .as_str()
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .expect("updated_at")
        + chrono::Duration::minutes(1);
    let report = realnet::schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!(report.sent, 1, "{report:?}");
    for _ in 0..100 {
        if !contacts(&app).await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let made = contacts(&app).await;
    assert_eq!(made.len(), 1, "the scheduled import ran once");
}

/// A test extension whose handler stages a write and then panics.
fn faulty() -> Extension {
    Extension::new("faulty", "Panics").handler(Handler::new(
        "boom",
        "Creates a folder, then panics",
        |call, _| async move {
            call.create(NewItem {
                type_name: "Folder".into(),
                name: "Half done".into(),
                parent: None,
                attributes: Default::default(),
            })
            .await?;
            panic!("the handler's bug");
        },
    ))
}

async fn a_panicking_handler_fails_the_call_not_the_server(kind: StoreKind) {
    let app = TestApp::with_extensions(kind, vec![faulty()]).await;
    let before = app.snapshot().await;
    let a = app
        .call(
            Method::POST,
            "/_schd/default/default/call/faulty/boom",
            Some(json!({})),
            &[("x-request-id", "req-42")],
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::INTERNAL_SERVER_ERROR)
        .await;
    assert_eq!(a.code(), "internal");
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("req-42") && message.contains("faulty/boom"),
        "{message}"
    );
    // The server lives on.
    let again = app.post(SUMMARY, json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
}

/// A test extension that reads a file and writes another, as the caller.
fn files() -> Extension {
    Extension::new("files", "Reads and writes files")
        .handler(Handler::new(
            "shout",
            "Writes an upper-case copy of a file",
            |call, input: Value| async move {
                let id = input["file"].as_str().and_then(|s| s.parse().ok());
                let id = id.ok_or_else(|| HandlerError::invalid("file: an id", None))?;
                let (file, bytes) = call.read_file(id).await?;
                let loud = String::from_utf8_lossy(&bytes).to_uppercase();
                let copy = call
                    .write_file(
                        &format!("loud-{}", file.name),
                        None,
                        "text/plain",
                        loud.into(),
                    )
                    .await?;
                Ok(json!({"id": copy.id}))
            },
        ))
        .handler(Handler::new(
            "half",
            "Writes a file, then refuses",
            |call, _| async move {
                call.write_file("half.txt", None, "text/plain", "half".into())
                    .await?;
                Err(HandlerError::refused(409, "changed my mind"))
            },
        ))
}

async fn handlers_read_and_write_files_as_the_caller(kind: StoreKind) {
    let app = TestApp::with_extensions(kind, vec![files()]).await;
    let form = "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"quiet.txt\"\r\nContent-Type: text/plain\r\n\r\nhello there\r\n--XX--\r\n";
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/files")
        .header("content-type", "multipart/form-data; boundary=XX")
        .body(axum::body::Body::from(form))
        .expect("request");
    let sent = app.send(request).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let file = sent.body["item"]["id"].as_str().expect("id").to_string();
    let a = app
        .post(
            "/_schd/default/default/call/files/shout",
            json!({"file": file}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let copy = a.body["id"].as_str().expect("id");
    let content = app.get(&format!("/api/files/{copy}/content")).await;
    assert_eq!(content.text, "HELLO THERE");
    let item = app.get(&format!("/api/items/{copy}")).await;
    assert_eq!(item.body["attributes"]["status"], "ready", "{}", item.text);
    assert_eq!(item.body["name"], "loud-quiet.txt");

    // Another org's admin reads no file of this org; a refusal after a write saves nothing.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    let path = format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/files/shout");
    let a = call(&app, &other, &path, json!({"file": file})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let before = app.snapshot().await;
    let a = app
        .post("/_schd/default/default/call/files/half", json!({}))
        .await;
    app.assert_refused(&before, &a, StatusCode::CONFLICT).await;
    assert_eq!(a.body["error"]["message"], "changed my mind");
}

async fn the_registry_lists_handlers_with_their_schemas(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let a = app.get("/api/extensions").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let crm = a.body["extensions"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "crm"))
        .expect("crm is listed");
    assert_eq!(crm["kind"], "linked");
    let names: Vec<&str> = crm["handlers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["pipeline_summary", "import_contacts"]);
    assert_eq!(crm["handlers"][1]["input"]["required"], json!(["csv"]));
    let public = app
        .call_as(None, Method::GET, "/api/extensions", None, &[])
        .await;
    assert_eq!(public.status, StatusCode::UNAUTHORIZED, "{}", public.text);
    // The OpenAPI document has each linked handler's route with its schemas.
    let doc = app.get("/api/openapi.json").await;
    let op = &doc.body["paths"]["/_schd/{portfolio}/{org}/call/crm/import_contacts"]["post"];
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["csv"])
    );
    assert!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["ids"]
            .is_object()
    );
}

on_every_store!(
    the_summary_counts_what_the_caller_may_read,
    calls_are_refused_at_the_edge,
    the_importer_writes_every_contact_or_none,
    calls_run_as_jobs_too,
    schedules_call_handlers,
    a_panicking_handler_fails_the_call_not_the_server,
    handlers_read_and_write_files_as_the_caller,
    the_registry_lists_handlers_with_their_schemas,
);
