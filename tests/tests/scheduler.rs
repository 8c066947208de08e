//! The scheduler against stored schedules, on every store: the tick sends each due run once
//! (also when ticks overlap), as the schedule's owner; disabled schedules and runs due before
//! a schedule's last change are not sent; bad schedules are refused with the field at fault;
//! maintenance deletes what expired and abandoned uploads; no client key pre-empts a run.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use realnet::schedule::{self, LOOKBACK, maintenance};
use realnet_tests::{Answer, StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

fn folder_job(name: &str) -> Value {
    json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": name}]}})
}

async fn new_schedule(app: &TestApp, token: &str, attributes: Value) -> Answer {
    app.call_as(
        Some(token),
        Method::POST,
        "/api/items",
        Some(json!({"type": "Schedule", "name": "nightly", "attributes": attributes})),
        &[],
    )
    .await
}

fn updated_at(schedule: &Value) -> DateTime<Utc> {
    schedule["updated_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("updated_at")
}

async fn folders(app: &TestApp, name: &str) -> Vec<Value> {
    let a = app
        .get(&format!(
            "/api/items?type=Folder&name={}",
            name.replace(' ', "%20")
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["items"].as_array().cloned().unwrap_or_default()
}

/// Waits for the in-process worker to have made `count` folders named `name`.
async fn await_folders(app: &TestApp, name: &str, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found = folders(app, name).await;
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{count} folders named {name} were not made");
}

async fn due_runs_are_sent_once_as_the_owner(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (owner, token) = app.account("default", "planner", true).await;
    let created = new_schedule(
        &app,
        &token,
        json!({"cron": "* * * * *", "job": folder_job("From schedule")}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["attributes"]["timezone"], "UTC");
    assert_eq!(created.body["attributes"]["enabled"], true);
    // Two minutes later two runs are due; two overlapping ticks send each once.
    let at = updated_at(&created.body) + chrono::Duration::minutes(2);
    let (a, b) = tokio::join!(schedule::tick(&app.rn, at), schedule::tick(&app.rn, at));
    let (a, b) = (a.expect("tick"), b.expect("tick"));
    assert_eq!(a.sent + b.sent, 2, "{a:?} {b:?}");
    assert_eq!(a.already_sent + b.already_sent, 2, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed, 0, "{a:?} {b:?}");
    let made = await_folders(&app, "From schedule", 2).await;
    for folder in &made {
        assert_eq!(
            folder["owner"],
            owner.to_string().as_str(),
            "runs as its owner"
        );
    }
    // A later tick over the same minutes sends nothing more.
    let again = schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!((again.sent, again.already_sent), (0, 2), "{again:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(folders(&app, "From schedule").await.len(), 2);
    // Each run is a job its owner can follow.
    let jobs = app
        .call_as(Some(&token), Method::GET, "/api/items?type=Job", None, &[])
        .await;
    let keys: Vec<&str> = jobs.body["items"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["attributes"]["idempotency_key"].as_str())
        .collect();
    assert_eq!(keys.len(), 2, "{}", jobs.text);
    let id = created.body["id"].as_str().expect("id");
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("schedule:{id}:"))),
        "{keys:?}"
    );
}

/// A scheduled run's key is no client's to take: `POST /api/jobs` refuses it (from a member
/// and from the schedule's own account), and a producer's envelope with it is that account's
/// own key, which leaves the run to run.
async fn no_client_pre_empts_a_scheduled_run(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (planner, planner_token) = app.account("default", "planner", true).await;
    let (member, member_token) = app.account("default", "member", false).await;
    let created = new_schedule(
        &app,
        &planner_token,
        json!({"cron": "* * * * *", "job": folder_job("Scheduled run")}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id");
    let at = updated_at(&created.body) + chrono::Duration::minutes(1);
    let due = schedule::Timing::parse("* * * * *", "UTC")
        .expect("timing")
        .due(updated_at(&created.body), at);
    assert_eq!(due.len(), 1);
    let run = format!(
        "schedule:{id}:{}",
        due[0].to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let before = app.snapshot().await;
    for token in [&member_token, &planner_token] {
        let taken = app
            .call_as(
                Some(token),
                Method::POST,
                "/api/jobs",
                Some(json!({"kind": "items.create", "idempotency_key": run,
                    "payload": {"items": [{"type": "Folder", "name": "Pre-empted"}]}})),
                &[],
            )
            .await;
        assert_eq!(
            taken.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            taken.text
        );
        assert!(taken.text.contains("idempotency_key"), "{}", taken.text);
    }
    assert_eq!(app.snapshot().await, before, "nothing was queued");
    // Producers of both accounts send envelopes with the run's key: their own keys.
    for (account, username) in [(member, "member"), (planner, "planner")] {
        let key = app
            .post(
                "/api/items",
                json!({"type": "ApiKey", "name": username, "attributes": {"account": account}}),
            )
            .await;
        let key = key.body["key"].as_str().expect("key");
        let body = json!({"kind": "items.create", "org": "default", "actor": username,
            "idempotency_key": run, "payload": {"items": [{"type": "Folder", "name": "Pre-empted"}]}});
        let batch =
            realnet_tests::sqs::event(&[realnet_tests::sqs::Message::with_key(&body, key)], false);
        assert_eq!(app.handle(batch).await, Vec::<String>::new());
    }
    assert_eq!(folders(&app, "Pre-empted").await.len(), 2);
    let report = schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!(report.sent, 1, "{report:?}");
    let made = await_folders(&app, "Scheduled run", 1).await;
    assert_eq!(made[0]["owner"], planner.to_string().as_str());
}

async fn only_recent_runs_of_enabled_schedules_are_sent(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let token = app.admin_token.clone();
    let every = new_schedule(
        &app,
        &token,
        json!({"cron": "* * * * *", "job": folder_job("Recent")}),
    )
    .await;
    let off = new_schedule(
        &app,
        &token,
        json!({"cron": "* * * * *", "enabled": false, "job": folder_job("Never")}),
    )
    .await;
    assert_eq!(off.status, StatusCode::CREATED, "{}", off.text);
    // An hour later, only the runs of the look-back window are sent.
    let at = updated_at(&every.body) + chrono::Duration::hours(1);
    let report = schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!(report.schedules, 1, "the disabled schedule is skipped");
    assert_eq!(report.sent as u64, LOOKBACK.as_secs() / 60, "{report:?}");
    await_folders(&app, "Recent", report.sent).await;
    assert!(folders(&app, "Never").await.is_empty());
}

async fn a_run_whose_owner_is_gone_is_dropped(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (owner, token) = app.account("default", "leaver", true).await;
    let created = new_schedule(
        &app,
        &token,
        json!({"cron": "* * * * *", "job": folder_job("Orphan")}),
    )
    .await;
    let disabled = app
        .call(
            Method::PATCH,
            &format!("/api/items/{owner}"),
            Some(json!({"attributes": {"disabled": true}})),
            &[],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let at = updated_at(&created.body) + chrono::Duration::minutes(1);
    let first = schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!((first.sent, first.failed), (0, 1), "{first:?}");
    // Dropped for good: the next tick does not try it again.
    let second = schedule::tick(&app.rn, at).await.expect("tick");
    assert_eq!((second.failed, second.already_sent), (0, 1), "{second:?}");
    assert!(folders(&app, "Orphan").await.is_empty());
}

async fn bad_schedules_are_refused(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let token = app.admin_token.clone();
    let good = new_schedule(
        &app,
        &token,
        json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "job": folder_job("Weekdays")}),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.text);
    let before = app.snapshot().await;
    for (attributes, field) in [
        (
            json!({"cron": "61 * * * *", "job": folder_job("x")}),
            "cron",
        ),
        (json!({"cron": "* * * *", "job": folder_job("x")}), "cron"),
        (
            json!({"cron": "0 0 * * * *", "job": folder_job("x")}),
            "cron",
        ),
        (json!({"cron": "every day", "job": folder_job("x")}), "cron"),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus", "job": folder_job("x")}),
            "timezone",
        ),
        (
            json!({"cron": "* * * * *", "job": {"kind": "items.purge", "payload": {}}}),
            "job",
        ),
        (
            json!({"cron": "* * * * *", "job": {"kind": "items.create", "payload": {"items": []}}}),
            "job",
        ),
        (json!({"cron": "* * * * *", "job": "items.create"}), "job"),
    ] {
        let refused = new_schedule(&app, &token, attributes.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{attributes}: {}",
            refused.text
        );
        assert!(
            refused.text.contains(field),
            "{attributes}: {}",
            refused.text
        );
        let id = good.body["id"].as_str().expect("id");
        let patched = app
            .call(
                Method::PATCH,
                &format!("/api/items/{id}"),
                Some(json!({ "attributes": attributes })),
                &[],
            )
            .await;
        assert_eq!(
            patched.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{attributes}: {}",
            patched.text
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");
    // Without a rule, a member may not make schedules, and another org's admin cannot see or
    // change this one.
    let (_, member) = app.account("default", "member", false).await;
    let refused = new_schedule(
        &app,
        &member,
        json!({"cron": "* * * * *", "job": folder_job("x")}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let (_, stranger) = app
        .account(realnet_tests::OTHER_ORG, "stranger", true)
        .await;
    let id = good.body["id"].as_str().expect("id");
    for (method, body) in [
        (Method::GET, None),
        (
            Method::PATCH,
            Some(json!({"attributes": {"enabled": false}})),
        ),
    ] {
        let hidden = app
            .call_as(
                Some(&stranger),
                method,
                &format!("/api/items/{id}"),
                body,
                &[],
            )
            .await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);
    }
    let unchanged = app.get(&format!("/api/items/{id}")).await;
    assert_eq!(unchanged.body["attributes"]["enabled"], true);
}

async fn maintenance_deletes_what_expired_and_abandoned_uploads(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    // Its bytes arrived, but it was never confirmed.
    let pending_id = app.pending_file("never-sent.txt", true).await;
    let folder = app
        .post("/api/items", json!({"type": "Folder", "name": "Kept"}))
        .await;
    let now = Utc::now();
    let store = &app.rn.store;
    let soon = now + chrono::Duration::minutes(1);
    store
        .begin_job("default", "old-job", now, soon, soon)
        .await
        .expect("job record");

    // Nothing has expired yet: nothing is deleted.
    let early = maintenance::run(&app.rn, now).await.expect("maintenance");
    assert_eq!(early.abandoned_uploads, 0);
    if let Some(purged) = early.expired {
        assert_eq!(purged.tokens + purged.job_records, 0, "{purged:?}");
    }
    // Two days later the login tokens, the job record and the pending file have expired.
    let later = now + chrono::Duration::days(2);
    let report = maintenance::run(&app.rn, later).await.expect("maintenance");
    assert_eq!(report.abandoned_uploads, 1, "{report:?}");
    match (kind, report.expired) {
        (StoreKind::Dynamodb, None) => {} // the table's TTL deletes them
        (_, Some(purged)) => {
            assert!(purged.tokens >= 1, "{purged:?}");
            assert_eq!(purged.job_records, 1, "{purged:?}");
        }
        (_, None) => panic!("a SQL store purges what expired"),
    }
    let gone = app
        .rn
        .store
        .get("default", pending_id.parse().expect("uuid"))
        .await
        .expect("get");
    assert!(gone.is_none(), "the abandoned upload's item is deleted");
    let key =
        realnet::blob::BlobKey::new("default", pending_id.parse().expect("uuid")).expect("key");
    assert!(
        !app.rn.blobs.confirm(&key).await.expect("storage"),
        "and its bytes: there is nothing left to confirm"
    );
    let kept = folder.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert!(store.get("default", kept).await.expect("get").is_some());
}

on_every_store!(
    due_runs_are_sent_once_as_the_owner,
    no_client_pre_empts_a_scheduled_run,
    only_recent_runs_of_enabled_schedules_are_sent,
    a_run_whose_owner_is_gone_is_dropped,
    bad_schedules_are_refused,
    maintenance_deletes_what_expired_and_abandoned_uploads,
);
