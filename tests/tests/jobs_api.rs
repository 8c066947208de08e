//! `/api/jobs`: a job sent over HTTP runs as the caller (here through the in-process queue of
//! `realnet serve`), and its status is followed until it succeeds or fails; bad jobs are
//! refused before anything is queued.

use axum::http::{Method, StatusCode};
use realnet_tests::{Answer, StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

async fn send(app: &TestApp, token: &str, body: Value) -> Answer {
    app.call_as(Some(token), Method::POST, "/api/jobs", Some(body), &[])
        .await
}

async fn a_job_runs_as_its_sender_and_reports_its_status(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, member) = app.account("default", "member", false).await;
    let body = json!({"kind": "items.create", "idempotency_key": "batch-1",
        "payload": {"items": [{"type": "Company", "name": "Queued Co"}, {"type": "Folder", "name": "Queued folder"}]}});
    let queued = send(&app, &member, body.clone()).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    assert_eq!(queued.body["status"], "queued");
    let id = queued.body["id"].as_str().expect("id").to_string();
    let done = app.finished_job(&member, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["count"], 2);
    assert_eq!(done["attempts"], 1);
    let me = app
        .call_as(Some(&member), Method::GET, "/api/auth", None, &[])
        .await;
    let made = app
        .call_as(
            Some(&member),
            Method::GET,
            "/api/companies?name=Queued%20Co",
            None,
            &[],
        )
        .await;
    assert_eq!(
        made.body["items"][0]["owner"], me.body["account"]["id"],
        "made as the sender"
    );
    // The same key again answers with the same job and runs nothing more.
    let again = send(&app, &member, body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["id"], id.as_str());
    let companies = app.get("/api/companies?name=Queued%20Co").await;
    assert_eq!(companies.body["items"].as_array().map(Vec::len), Some(1));

    // A job the sender may not do fails, with the reason.
    let forbidden = send(&app, &member, json!({"kind": "items.create", "payload": {"items": [
        {"type": "Acl", "name": "x", "attributes": {"principal": "members", "permissions": ["admin"], "target_type": "Item"}}]}})).await;
    let id = forbidden.body["id"].as_str().expect("id").to_string();
    let failed = app.finished_job(&member, &id).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("may not")),
        "{failed}"
    );
    // Another account cannot see it.
    let (_, other) = app.account("default", "other", false).await;
    let hidden = app
        .call_as(
            Some(&other),
            Method::GET,
            &format!("/api/jobs/{id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

async fn bad_jobs_are_refused_before_queueing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let before = app.snapshot().await;
    let token = app.admin_token.clone();
    for (body, status) in [
        (
            json!({"kind": "items.purge", "payload": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "items.create", "payload": {"things": []}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "items.create", "payload": {"items": []}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "items.delete", "payload": {"ids": ["nope"]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"kind": "items.create"}), StatusCode::BAD_REQUEST),
        (
            json!({"kind": "items.create", "payload": {}, "priority": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kind": "items.create", "payload": {"items": [{"type": "Company", "name": "x"}]},
            "idempotency_key": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // A scheduled run's key is the scheduler's, never a client's.
        (
            json!({"kind": "items.create", "payload": {"items": [{"type": "Company", "name": "x"}]},
            "idempotency_key": format!("schedule:{}:2026-01-01T00:00:00Z", uuid::Uuid::now_v7())}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let a = send(&app, &token, body.clone()).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
    }
    // An unknown kind is said of `kind`, not of the payload it makes no sense of.
    let unknown = send(&app, &token, json!({"kind": "nope", "payload": {}})).await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
    let fields = &unknown.body["error"]["details"]["fields"];
    assert!(
        fields["kind"]
            .as_str()
            .is_some_and(|m| m.contains("\"nope\"") && m.contains("items.create")),
        "{}",
        unknown.text
    );
    assert!(fields.get("payload").is_none(), "{}", unknown.text);
    // A known kind with a payload of the wrong shape is still said of `payload`.
    let shapeless = send(
        &app,
        &token,
        json!({"kind": "items.create", "payload": {"things": []}}),
    )
    .await;
    let fields = &shapeless.body["error"]["details"]["fields"];
    assert!(
        fields["payload"].is_string() && fields.get("kind").is_none(),
        "{}",
        shapeless.text
    );
    let public = app
        .call_as(
            None,
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": "items.create", "payload": {}})),
            &[],
        )
        .await;
    assert_eq!(public.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .get(&format!("/api/jobs/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.snapshot().await,
        before,
        "nothing was recorded or queued"
    );
}

/// An idempotency key belongs to the account that sends it: two members, and an admin (who
/// may read every job), sending the same key each get their own job, and each runs.
async fn idempotency_keys_are_each_accounts_own(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, ann) = app.account("default", "ann", false).await;
    let (_, bob) = app.account("default", "bob", false).await;
    let admin = app.admin_token.clone();
    let mut ids = Vec::new();
    for (token, name) in [(&ann, "Ann Co"), (&bob, "Bob Co"), (&admin, "Admin Co")] {
        let body = json!({"kind": "items.create", "idempotency_key": "nightly-import",
            "payload": {"items": [{"type": "Company", "name": name}]}});
        let queued = send(&app, token, body).await;
        assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
        let id = queued.body["id"].as_str().expect("id").to_string();
        assert!(
            !ids.contains(&id),
            "{name}: answered with another account's job"
        );
        let done = app.finished_job(token, &id).await;
        assert_eq!(done["status"], "succeeded", "{name}: {done}");
        ids.push(id);
    }
    for name in ["Ann%20Co", "Bob%20Co", "Admin%20Co"] {
        let made = app.get(&format!("/api/companies?name={name}")).await;
        assert_eq!(
            made.body["items"].as_array().map(Vec::len),
            Some(1),
            "{name}"
        );
    }
    // Each account's own key still answers with its own job.
    let again = send(
        &app,
        &bob,
        json!({"kind": "items.create", "idempotency_key": "nightly-import",
        "payload": {"items": [{"type": "Company", "name": "Bob Co"}]}}),
    )
    .await;
    assert_eq!(again.body["id"], ids[1].as_str(), "{}", again.text);
}

on_every_store!(
    a_job_runs_as_its_sender_and_reports_its_status,
    bad_jobs_are_refused_before_queueing,
    idempotency_keys_are_each_accounts_own,
);

/// Where no queue is configured (the api function without `REALNET_QUEUE_URL`), a job is
/// refused with 503, never accepted and left to wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_queue_jobs_are_refused() {
    let app = TestApp::new(StoreKind::Sqlite).await;
    let bare = realnet::api::router(std::sync::Arc::new(realnet_tests::realnet(
        app.rn.config.clone(),
        realnet_tests::registry(),
        app.rn.store.clone(),
    )));
    let request = axum::http::Request::post("/api/jobs")
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"kind": "items.create", "payload": {"items": [{"type": "Company", "name": "x"}]}})
                .to_string(),
        ))
        .expect("request");
    let before = app.snapshot().await;
    let answer = tower::ServiceExt::oneshot(bare, request)
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.snapshot().await, before, "no job was recorded");
}
