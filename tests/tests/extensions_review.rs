//! The extension system read as an attacker would, on every store: a member without the
//! call right, another org's admin, the public, odd paths and bodies, a handler relaying what
//! it was sent into a job, and payloads past the queue's limit. Each attempt is refused with
//! a JSON error body and changes nothing.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet::extensions::{Call, Extension, Handler, HandlerError};
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};

const SUMMARY: &str = "/_schd/default/default/call/crm/pipeline_summary";
const IMPORT: &str = "/_schd/default/default/call/crm/import_contacts";
const RELAY: &str = "/_schd/default/default/call/relay/submit";

/// A test extension whose handler sends the job it is given (`{"kind", "payload"}`) as the
/// caller: what a handler forwarding user input into a job does.
fn relay() -> Extension {
    Extension::new("relay", "Sends a job").handler(Handler::new(
        "submit",
        "Sends the job it is given",
        |call: Call, input: Value| async move {
            let kind = input["kind"].as_str().unwrap_or_default().to_string();
            call.submit(&kind, input["payload"].clone())?;
            Ok::<Value, HandlerError>(json!({"sent": kind}))
        },
    ))
}

fn assert_json_error(a: &realnet_tests::Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.text);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
    assert!(a.body["error"]["code"].is_string(), "{}", a.text);
}

/// Paths that are not the caller's route, or not text at all, and bodies that are not a
/// payload: a JSON 4xx each, never a 500.
async fn odd_paths_and_bodies_are_json_refusals(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let before = app.snapshot().await;
    let post = |uri: String, body: Option<Value>| {
        let app = &app;
        let admin = admin.clone();
        async move { app.call_with(&admin, Method::POST, &uri, body).await }
    };
    // Not this caller's route: a case change, an org that does not exist, unicode, an
    // encoded slash, an empty segment.
    for uri in [
        "/_schd/Default/default/call/crm/pipeline_summary",
        "/_schd/default/Default/call/crm/pipeline_summary",
        "/_schd/nowhere/nowhere/call/crm/pipeline_summary",
        "/_schd/default/d%C3%A9fault/call/crm/pipeline_summary",
        "/_schd/default/default/call/cr%E2%80%8Bm/pipeline_summary",
        "/_schd/default/default/call/crm/pipeline%2Fsummary",
        "/_schd/default%2Fdefault/default/call/crm/pipeline_summary",
        "/_schd/default/default/call/crm/%F0%9F%92%A5",
    ] {
        let a = post(uri.to_string(), Some(json!({}))).await;
        assert_json_error(&a, StatusCode::NOT_FOUND);
    }
    // A segment that is not UTF-8.
    for uri in [
        "/_schd/default/default/call/crm/%FF",
        "/_schd/%C0%AF/default/call/crm/pipeline_summary",
    ] {
        let a = post(uri.to_string(), Some(json!({}))).await;
        assert_json_error(&a, StatusCode::BAD_REQUEST);
    }
    // The routes around calls, with segments that are not UTF-8 or not ids.
    for uri in [
        "/api/deadletters/%FF",
        "/api/deadletters/not-an-id",
        "/api/apps/%FF/views/pipeline",
        "/api/jobs/%FF",
        "/api/jobs/not-an-id",
        "/api/types/%FF",
        "/api/files/%FF/content",
    ] {
        let a = app.call_with(&admin, Method::GET, uri, None).await;
        assert_json_error(&a, StatusCode::BAD_REQUEST);
    }
    for (method, uri) in [
        (Method::PUT, "/api/files/%FF/content"),
        (Method::POST, "/api/files/%FF/confirm"),
    ] {
        let a = app.call_with(&admin, method, uri, None).await;
        assert_json_error(&a, StatusCode::BAD_REQUEST);
    }
    let a = app
        .call_with(
            &admin,
            Method::GET,
            "/api/apps/01a23173-ff26-7138-ae43-443a7b01ad83/views/%FF",
            None,
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.text);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
    // Bodies: deeply nested, not an object, over the size limit; sync and async.
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!("{{\"csv\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    for uri in [IMPORT.to_string(), format!("{IMPORT}?async=true")] {
        for (body, status) in [
            (deep.clone(), StatusCode::BAD_REQUEST),
            ("{\"csv\": ".to_string(), StatusCode::BAD_REQUEST),
            (
                "\"just a string\"".to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ("null".to_string(), StatusCode::UNPROCESSABLE_ENTITY),
            (huge.clone(), StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri(&uri)
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .expect("request");
            let a = app.send(request).await;
            assert_json_error(&a, status);
        }
    }
    // A query parameter the route does not take.
    let a = post(format!("{SUMMARY}?org=other-org"), Some(json!({}))).await;
    assert_json_error(&a, StatusCode::BAD_REQUEST);
    assert_eq!(app.snapshot().await, before, "no refusal changed anything");
}

/// An async call (or a job) whose envelope would be over the queue's message limit is
/// refused before anything is recorded: no `Job` item is left behind.
async fn a_job_over_the_queue_limit_leaves_nothing_behind(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let before = app.snapshot().await;
    for size in [300 * 1024, 900 * 1024] {
        let csv = format!("name,email\n{}", "a".repeat(size));
        let a = app
            .post(&format!("{IMPORT}?async=true"), json!({"csv": csv}))
            .await;
        app.assert_refused(&before, &a, StatusCode::PAYLOAD_TOO_LARGE)
            .await;
        let a = app
            .post(
                "/api/jobs",
                json!({"kind": "extension.call", "payload": {"extension": "crm",
                    "handler": "import_contacts", "payload": {"csv": csv}}}),
            )
            .await;
        app.assert_refused(&before, &a, StatusCode::PAYLOAD_TOO_LARGE)
            .await;
    }
}

/// `POST /api/jobs` checks an `extension.call` as `?async=true` does, before anything is
/// queued: the call right, the handler, and its input schema.
async fn a_queued_call_is_checked_before_it_is_sent(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, member) = app.account("default", "max", false).await;
    let before = app.snapshot().await;
    let job = |handler: &str, payload: Value| {
        json!({"kind": "extension.call", "payload": {"extension": "crm", "handler": handler,
            "payload": payload}})
    };
    let csv = json!({"csv": "name,email\nAda,ada@example.com\n"});
    let a = app
        .call_with(
            &member,
            Method::POST,
            "/api/jobs",
            Some(job("import_contacts", csv.clone())),
        )
        .await;
    app.assert_refused(&before, &a, StatusCode::FORBIDDEN).await;
    let a = app
        .post("/api/jobs", job("import_contacts", json!({"csv": 1})))
        .await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let a = app.post("/api/jobs", job("nope", csv.clone())).await;
    app.assert_refused(&before, &a, StatusCode::NOT_FOUND).await;
    // With the right, the same job is sent.
    let a = app.post("/api/jobs", job("import_contacts", csv)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
}

/// A handler that relays its input into a job: the job acts as the caller (a member cannot
/// make themself an admin through it) and carries no secret (refused before any `Job` item
/// or queue body holds it).
async fn a_handlers_job_is_the_callers_and_carries_no_secret(kind: StoreKind) {
    let app = TestApp::with_extensions(kind, vec![relay()]).await;
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    let (max, member) = app.account("default", "max", false).await;
    let before = app.snapshot().await;
    // A password in the job's payload.
    let secret = json!({"kind": "items.create", "payload": {"items": [{"type": "Account",
        "name": "mallory", "attributes": {"password": "a password nobody should keep"}}]}});
    let a = app.post(RELAY, secret).await;
    app.assert_refused(&before, &a, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert!(!a.text.contains("a password nobody"), "{}", a.text);

    // A member's relayed job runs as the member: a rule making them admin is refused.
    let grant = json!({"kind": "items.create", "payload": {"items": [{"type": "Acl",
        "name": "mine", "attributes": {"principal": format!("account:{max}"),
            "permissions": ["admin"], "target_type": "Item"}}]}});
    let a = app
        .call_with(&member, Method::POST, RELAY, Some(grant))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let jobs = app
        .call_with(&member, Method::GET, "/api/items?type=Job", None)
        .await;
    let job = jobs.body["items"][0].clone();
    assert_eq!(job["owner"], json!(max.to_string()), "{}", jobs.text);
    let done = app.finished_job(&member, &id_of(&job)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let rules = app.get("/api/items?type=Acl&name=mine").await;
    assert_eq!(rules.body["items"], json!([]), "{}", rules.text);
}

/// A declared file never uploaded: its `files.finalize` job dies after three attempts.
async fn dead_letter(app: &TestApp) -> String {
    let a = app
        .post(
            "/api/files",
            json!({"name": "never.txt", "content_type": "text/plain", "size": 5}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let file = a.body["item"]["id"].as_str().expect("id").to_string();
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "files.finalize", "payload": {"file": file}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    for _ in 0..100 {
        let a = app.get("/api/deadletters").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        if let Some(letter) = a.body["items"].as_array().and_then(|l| l.first()) {
            return id_of(letter);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no dead letter");
}

/// Another org's admin can neither drop nor redrive (one or all) this org's dead letters;
/// the public must log in; nobody writes them.
async fn dead_letters_stay_in_their_org(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let id = dead_letter(&app).await;
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let theirs = |handler: &str| format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/ops/{handler}");
    let a = app
        .call_with(
            &other,
            Method::POST,
            &theirs("drop"),
            Some(json!({"id": id})),
        )
        .await;
    assert_json_error(&a, StatusCode::NOT_FOUND);
    let a = app
        .call_with(
            &other,
            Method::POST,
            &theirs("redrive_all"),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["redriven"], json!([]));
    // This org's path with the other org's token is not their route.
    let a = app
        .call_with(
            &other,
            Method::POST,
            "/_schd/default/default/call/ops/drop",
            Some(json!({"id": id})),
        )
        .await;
    assert_json_error(&a, StatusCode::NOT_FOUND);
    // The public.
    for uri in [
        "/api/deadletters".to_string(),
        format!("/api/deadletters/{id}"),
    ] {
        let a = app.call_as(None, Method::GET, &uri, None, &[]).await;
        assert_json_error(&a, StatusCode::UNAUTHORIZED);
    }
    // Nobody writes them, not even an admin.
    let uri = format!("/api/deadletters/{id}");
    let a = app
        .call(Method::PATCH, &uri, Some(json!({"name": "x"})), &[])
        .await;
    assert!(a.status.is_client_error(), "{}", a.text);
    let a = app.call(Method::DELETE, &uri, None, &[]).await;
    assert!(a.status.is_client_error(), "{}", a.text);
    let a = app.get("/api/deadletters").await;
    assert_eq!(
        a.body["items"][0]["id"],
        json!(id),
        "still there: {}",
        a.text
    );
}

/// On SQS a dead letter belongs to the org its proof names, not the one its body claims: a
/// message with no proof, a forged signature, or another org's API key is not this org's to
/// see, redrive or drop (a body only names an org; it proves nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_the_org_its_proof_names() {
    use aws_sdk_sqs::types::MessageAttributeValue;
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let name = format!("realnet-review-{}", uuid::Uuid::now_v7().simple());
    let mut urls = Vec::new();
    for queue in [name.clone(), format!("{name}-dead")] {
        let out = sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .expect("create a queue (moto: AWS_ENDPOINT_URL)");
        urls.push(out.queue_url.expect("a queue URL"));
    }
    let (jobs, dead) = (urls[0].clone(), urls[1].clone());
    let app = TestApp::with_config(StoreKind::Sqlite, move |c| {
        c.queue_url = Some(jobs);
        c.dead_letter_queue_url = Some(dead);
    })
    .await;
    let dead = urls[1].clone();
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let other_admin = app.account_id(OTHER_ORG, "admin").await;
    let key = app
        .call_with(
            &other,
            Method::POST,
            "/api/items",
            Some(json!({"type": "ApiKey", "name": "producer", "attributes": {"account": other_admin}})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let key = key.body["key"].as_str().expect("the key").to_string();
    let body = |name: &str| {
        json!({"kind": "items.create", "org": "default", "actor": "admin",
            "payload": {"items": [{"type": "Folder", "name": name}]}})
        .to_string()
    };
    let forged_for = json!({"kind": "items.create", "org": OTHER_ORG, "actor": "admin",
        "payload": {"items": [{"type": "Folder", "name": "forged"}]}})
    .to_string();
    let forged_signature = app.sign(&forged_for).await;
    // (body, signature, api key): one proven, three only claiming the default org.
    let messages = [
        (body("proven"), Some(app.sign(&body("proven")).await), None),
        (body("unproven"), None, None),
        (body("forged"), Some(forged_signature), None),
        (body("their key"), None, Some(key)),
    ];
    let mut ids = Vec::new();
    for (body, signature, api_key) in messages {
        let mut send = sqs.send_message().queue_url(&dead).message_body(&body);
        for (name, value) in [
            (realnet::jobs::envelope::SIGNATURE, signature),
            (realnet::jobs::envelope::API_KEY, api_key),
        ] {
            if let Some(v) = value {
                let attribute = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .expect("attribute");
                send = send.message_attributes(name, attribute);
            }
        }
        ids.push(send.send().await.expect("send").message_id.expect("id"));
    }
    let listed = app.get("/api/deadletters").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let shown: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(shown, [ids[0].as_str()], "{}", listed.text);
    for id in &ids[1..] {
        let a = app.get(&format!("/api/deadletters/{id}")).await;
        assert_json_error(&a, StatusCode::NOT_FOUND);
        let a = app
            .post("/_schd/default/default/call/ops/drop", json!({ "id": id }))
            .await;
        assert_json_error(&a, StatusCode::NOT_FOUND);
    }
    let a = app
        .post("/_schd/default/default/call/ops/redrive_all", json!({}))
        .await;
    assert_eq!(a.body["redriven"], json!([ids[0]]), "{}", a.text);
    // The API key's message is its org's.
    let theirs = app
        .call_with(&other, Method::GET, "/api/deadletters", None)
        .await;
    assert_eq!(
        theirs.body["items"][0]["id"],
        json!(ids[3]),
        "{}",
        theirs.text
    );
}

on_every_store!(
    odd_paths_and_bodies_are_json_refusals,
    a_job_over_the_queue_limit_leaves_nothing_behind,
    a_queued_call_is_checked_before_it_is_sent,
    a_handlers_job_is_the_callers_and_carries_no_secret,
    dead_letters_stay_in_their_org,
);
