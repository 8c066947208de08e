//! The `ops` extension: the jobs that failed for good as read-only `DeadLetter` items (a
//! module-bound type: its items come from the extension, not the store), redriven or dropped
//! by org admins; on the local queue (every store) and on SQS's dead-letter queue (moto).
//! Another org's admin sees none of them, a member may neither list nor redrive, and the
//! items cannot be written. A redrive or drop is staged with the handler's other writes: a
//! handler that fails after asking for one leaves the dead letter where it was.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet::extensions::{Call, Extension, Handler, HandlerError};
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};
use uuid::Uuid;

const REDRIVE: &str = "/_schd/default/default/call/ops/redrive";
const REDRIVE_ALL: &str = "/_schd/default/default/call/ops/redrive_all";
const DROP: &str = "/_schd/default/default/call/ops/drop";

/// A file declared but never uploaded: a `files.finalize` job for it is retried until the
/// runner gives up (three attempts, a second apart), and becomes a dead letter.
async fn pending_file(app: &TestApp, name: &str) -> String {
    let a = app
        .post(
            "/api/files",
            json!({"name": name, "content_type": "text/plain", "size": 5}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.body["item"]["id"].as_str().expect("id").to_string()
}

async fn finalize(app: &TestApp, file: &str) {
    let a = app
        .post(
            "/api/jobs",
            json!({"kind": "files.finalize", "payload": {"file": file}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
}

async fn dead_letters(app: &TestApp, token: &str) -> realnet_tests::Answer {
    app.call_with(token, Method::GET, "/api/deadletters", None)
        .await
}

/// Waits until the org has `count` dead letters.
async fn await_dead(app: &TestApp, count: usize) -> Vec<Value> {
    let token = app.admin_token.clone();
    for _ in 0..100 {
        let a = dead_letters(app, &token).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let items = a.body["items"].as_array().cloned().unwrap_or_default();
        if items.len() == count {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the org did not get {count} dead letters");
}

async fn upload(app: &TestApp, file: &str) {
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/files/{file}/content"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("hello"))
        .expect("request");
    let a = app.send(request).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
}

async fn file_status(app: &TestApp, file: &str) -> String {
    let a = app.get(&format!("/api/items/{file}")).await;
    a.body["attributes"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn dead_jobs_are_listed_redriven_and_dropped(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let admin = app.admin_token.clone();
    let file = pending_file(&app, "later.txt").await;
    finalize(&app, &file).await;
    let dead = await_dead(&app, 1).await;
    let letter = &dead[0];
    assert_eq!(letter["type"], "DeadLetter");
    assert_eq!(letter["attributes"]["kind"], "files.finalize");
    assert_eq!(letter["attributes"]["actor"], "admin");
    assert_eq!(letter["attributes"]["payload"], json!({"file": file}));
    assert_eq!(letter["attributes"]["receives"], 3);
    let id = letter["id"].as_str().expect("id").to_string();
    // By id through the type's endpoint, and through the usual query parameters.
    let one = app.get(&format!("/api/deadletters/{id}")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body["id"], id.as_str());
    let filtered = app
        .get("/api/items?type=DeadLetter&attr.kind=items.create")
        .await;
    assert_eq!(filtered.body["items"], json!([]), "{}", filtered.text);

    // Read-only, admins only, and no other org's.
    let create = app
        .post(
            "/api/deadletters",
            json!({"name": "forged", "attributes": {}}),
        )
        .await;
    assert_eq!(
        create.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        create.text
    );
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let theirs = dead_letters(&app, &other).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    assert_eq!(theirs.body["items"], json!([]));
    let hidden = app
        .call_with(&other, Method::GET, &format!("/api/deadletters/{id}"), None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);
    let path = format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/ops/redrive");
    let a = app
        .call_with(&other, Method::POST, &path, Some(json!({"id": id})))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    app.acl(json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}))
        .await;
    let (_, member) = app.account("default", "max", false).await;
    assert_eq!(
        dead_letters(&app, &member).await.status,
        StatusCode::FORBIDDEN
    );
    let a = app
        .call_with(&member, Method::POST, REDRIVE, Some(json!({"id": id})))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(await_dead(&app, 1).await.len(), 1, "nothing was redriven");

    // Once the bytes are there, the redriven job finishes the file.
    upload(&app, &file).await;
    let a = app
        .call_with(&admin, Method::POST, REDRIVE, Some(json!({"id": id})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["redriven"], json!([id]));
    await_dead(&app, 0).await;
    for _ in 0..100 {
        if file_status(&app, &file).await == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(file_status(&app, &file).await, "ready");
    let again = app
        .call_with(&admin, Method::POST, REDRIVE, Some(json!({"id": id})))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);

    // Dropped for good.
    let never = pending_file(&app, "never.txt").await;
    finalize(&app, &never).await;
    let dead = await_dead(&app, 1).await;
    let id = dead[0]["id"].as_str().expect("id").to_string();
    let a = app
        .call_with(&admin, Method::POST, DROP, Some(json!({"id": id})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    await_dead(&app, 0).await;
    let a = app
        .call_with(&admin, Method::POST, DROP, Some(json!({"id": id})))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let a = app
        .call_with(&admin, Method::POST, DROP, Some(json!({"id": "not-an-id"})))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
}

/// A test extension whose handlers ask for a redrive or a drop and then fail.
fn undo() -> Extension {
    fn id(input: &Value) -> Result<Uuid, HandlerError> {
        input["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HandlerError::invalid("id: a dead letter's id", None))
    }
    Extension::new("undo", "Changes its mind")
        .handler(Handler::new(
            "redrive_then_refuse",
            "Redrives a dead letter, then refuses",
            |call: Call, input: Value| async move {
                let redriven = call.redrive_dead_letters(Some(&[id(&input)?])).await?;
                assert_eq!(redriven.len(), 1, "the letter is the caller's");
                Err(HandlerError::refused(409, "changed my mind"))
            },
        ))
        .handler(Handler::new(
            "drop_then_panic",
            "Drops a dead letter, then panics",
            |call: Call, input: Value| async move {
                call.drop_dead_letters(&[id(&input)?]).await?;
                panic!("the handler's bug");
            },
        ))
}

const REDRIVE_THEN_REFUSE: &str = "/_schd/default/default/call/undo/redrive_then_refuse";
const DROP_THEN_PANIC: &str = "/_schd/default/default/call/undo/drop_then_panic";

async fn a_failing_handler_neither_redrives_nor_drops(kind: StoreKind) {
    let app = TestApp::with_extensions(kind, vec![undo()]).await;
    let file = pending_file(&app, "later.txt").await;
    finalize(&app, &file).await;
    let id = await_dead(&app, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    upload(&app, &file).await;

    let a = app.post(REDRIVE_THEN_REFUSE, json!({"id": id})).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.body["error"]["message"], "changed my mind");
    let a = app.post(DROP_THEN_PANIC, json!({"id": id})).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    // Still there, at once (given back, not hidden), and the job did not run again.
    let listed = dead_letters(&app, &app.admin_token).await;
    assert_eq!(
        listed.body["items"][0]["id"],
        id.as_str(),
        "{}",
        listed.text
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(file_status(&app, &file).await, "pending");

    // Another org's admin neither sees it nor redrives, drops or redrives all of it.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let theirs = dead_letters(&app, &other).await;
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.text);
    let call = |handler: &str| format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/ops/{handler}");
    for handler in ["redrive", "drop"] {
        let a = app
            .call_with(
                &other,
                Method::POST,
                &call(handler),
                Some(json!({"id": id})),
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{handler}: {}", a.text);
    }
    let a = app
        .call_with(&other, Method::POST, &call("redrive_all"), Some(json!({})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["redriven"], json!([]));
    assert_eq!(await_dead(&app, 1).await[0]["id"], id.as_str());

    // The letter was given back whole: its own org's admin redrives it.
    let a = app.post(REDRIVE, json!({"id": id})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    await_dead(&app, 0).await;
    for _ in 0..100 {
        if file_status(&app, &file).await == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(file_status(&app, &file).await, "ready");
}

on_every_store!(
    dead_jobs_are_listed_redriven_and_dropped,
    a_failing_handler_neither_redrives_nor_drops
);

/// On SQS, the dead letters are the dead-letter queue's messages (moto): listing leaves them
/// there, a redrive moves one to the job queue with the proofs it carried, and a drop
/// deletes it. Another org's message is not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqs_dead_letter_queue_is_listed_and_redriven() {
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let name = format!("realnet-ops-{}", uuid::Uuid::now_v7().simple());
    let url = |out: aws_sdk_sqs::operation::create_queue::CreateQueueOutput| {
        out.queue_url.expect("a queue URL")
    };
    let jobs = url(sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create the job queue (moto: AWS_ENDPOINT_URL)"));
    let dead = url(sqs
        .create_queue()
        .queue_name(format!("{name}-dead"))
        .send()
        .await
        .expect("create the dead-letter queue"));
    let (jobs_url, dead_url) = (jobs.clone(), dead.clone());
    let app = TestApp::with_extensions_config(StoreKind::Sqlite, vec![undo()], move |c| {
        c.queue_url = Some(jobs_url);
        c.dead_letter_queue_url = Some(dead_url);
    })
    .await;
    // Two dead jobs of this org and one of another, as the redrive policy leaves them.
    let mut sent = Vec::new();
    for (org, name) in [("default", "a"), ("default", "b"), (OTHER_ORG, "c")] {
        let body = json!({"kind": "items.create", "org": org, "actor": "admin",
            "payload": {"items": [{"type": "Folder", "name": name}]}})
        .to_string();
        let message = app.signed(&body).await;
        let signature = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(message.signature.clone().expect("signed"))
            .build()
            .expect("attribute");
        let out = sqs
            .send_message()
            .queue_url(&dead)
            .message_body(&body)
            .message_attributes(realnet::jobs::envelope::SIGNATURE, signature)
            .send()
            .await
            .expect("send");
        sent.push((out.message_id.expect("id"), message));
    }
    let listed = app.get("/api/deadletters").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let items = listed.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{}", listed.text);
    // Listing leaves them in place, visible.
    assert_eq!(
        app.get("/api/deadletters").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let (a_id, a_message) = &sent[0];
    // A handler that fails after asking for a redrive gives the message back at once.
    let a = app.post(REDRIVE_THEN_REFUSE, json!({"id": a_id})).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    let a = app.post(DROP_THEN_PANIC, json!({"id": a_id})).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    let listed = app.get("/api/deadletters").await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(2),
        "{}",
        listed.text
    );
    // Another org's admin can neither redrive nor drop it.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    for handler in ["redrive", "drop"] {
        let path = format!("/_schd/{OTHER_ORG}/{OTHER_ORG}/call/ops/{handler}");
        let a = app
            .call_with(&other, Method::POST, &path, Some(json!({"id": a_id})))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{handler}: {}", a.text);
    }
    let a = app.post(REDRIVE, json!({"id": a_id})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let received = sqs
        .receive_message()
        .queue_url(&jobs)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.as_deref(), Some(a_message.body.as_str()));
    let signature = received[0]
        .message_attributes
        .as_ref()
        .and_then(|m| m.get(realnet::jobs::envelope::SIGNATURE))
        .and_then(|v| v.string_value.clone());
    assert_eq!(signature, a_message.signature, "the proof travels with it");

    let (b_id, _) = &sent[1];
    let a = app.post(DROP, json!({"id": b_id})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(app.get("/api/deadletters").await.body["items"], json!([]));
    // The other org's message is still there, untouched by this org's redrive_all.
    let a = app.post(REDRIVE_ALL, json!({})).await;
    assert_eq!(a.body["redriven"], json!([]), "{}", a.text);
    let theirs = dead_letters(&app, &other).await;
    assert_eq!(
        theirs.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        theirs.text
    );
}
