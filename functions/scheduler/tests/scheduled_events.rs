//! The `scheduler` binary under a Lambda Runtime API, as `cargo lambda invoke scheduler
//! --data-file events/scheduler/...` would run it, with SQS in moto as its queue: the sample
//! tick sends the run of a stored schedule that fell due at the event's time, once; the
//! maintenance sample reports what it deleted; a plain rule's event (`"detail": {}`) is the
//! tick; an unknown task fails with the reason.

use std::path::PathBuf;

use realnet::item::ops::NewItem;
use realnet_tests::lambda_runtime::RuntimeApi;
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/scheduler")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("sample events are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_sample_events() {
    let endpoint = realnet_tests::aws_endpoint();
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("scheduled-{}", uuid::Uuid::now_v7().simple()))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let env = [
        ("REALNET_DATA_DIR", dir),
        ("REALNET_QUEUE_URL", queue_url.as_str()),
    ];
    let config = realnet::config::Config::from_lookup(|k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
    .expect("config");
    let rn = realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("store");
    rn.init().await.expect("init");
    // A schedule the admin made the day before the sample tick (09:00 UTC), every 5 minutes.
    let tick = event("tick.json");
    let fired: chrono::DateTime<chrono::Utc> = tick["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("time");
    let admin = realnet::auth::identity::find_account(&rn, "default", "admin")
        .await
        .expect("query")
        .expect("admin");
    let principal = rn
        .principal_of(&admin, realnet::auth::Credential::Job)
        .await
        .expect("principal");
    let attributes = json!({"cron": "*/5 * * * *", "job": {"kind": "items.create",
        "payload": {"items": [{"type": "Folder", "name": "Every five minutes"}]}}});
    let (schedule, _) = realnet::item::ops::create(
        &rn,
        &principal,
        NewItem {
            type_name: "Schedule".into(),
            name: "five".into(),
            parent: None,
            attributes: attributes.as_object().cloned().expect("object"),
        },
        None,
    )
    .await
    .expect("schedule");
    let mut earlier = schedule.clone();
    earlier.updated_at = fired - chrono::Duration::days(1);
    earlier.version = 2;
    rn.store
        .apply(
            "default",
            &[realnet::store::Write::Update {
                item: earlier,
                expected_version: 1,
            }],
        )
        .await
        .expect("backdate the schedule");

    let runtime = RuntimeApi::start().await;
    let mut function = runtime.spawn_function(
        std::path::Path::new(env!("CARGO_BIN_EXE_scheduler")),
        &[env[0], env[1], ("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    let first = runtime.invoke(tick.clone()).await.expect("tick answered");
    assert_eq!(first["task"], "tick");
    assert_eq!(first["report"]["sent"], 1, "{first}");
    let again = runtime.invoke(tick).await.expect("tick answered");
    assert_eq!(again["report"]["sent"], 0, "{again}");
    assert_eq!(again["report"]["already_sent"], 1, "{again}");
    // A plain rule (or SAM's `Schedule` event) sends `"detail": {}`: the same minute tick.
    let plain = runtime
        .invoke(event("plain-rule.json"))
        .await
        .expect("plain rule answered");
    assert_eq!(plain["task"], "tick", "{plain}");
    assert_eq!(plain["report"]["already_sent"], 1, "{plain}");
    let maintenance = runtime
        .invoke(event("maintenance.json"))
        .await
        .expect("maintenance answered");
    assert_eq!(maintenance["task"], "maintenance");
    assert_eq!(
        maintenance["report"]["abandoned_uploads"], 0,
        "{maintenance}"
    );
    assert!(
        maintenance["report"]["expired"]["tokens"].is_u64(),
        "{maintenance}"
    );
    let unknown = runtime
        .invoke(event("unknown-task.json"))
        .await
        .expect_err("an unknown task fails");
    assert_eq!(unknown["errorType"], "UnknownTask", "{unknown}");
    assert_eq!(
        unknown["errorMessage"],
        "unknown scheduled task \"reindex\": use \"tick\" or \"maintenance\""
    );
    function.kill().ok();
    function.wait().ok();

    // One message, for the run due at 09:00 in the sample, acting as the owner.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let envelope: Value =
        serde_json::from_str(messages[0].body.as_deref().unwrap_or_default()).expect("JSON");
    assert_eq!(envelope["actor"], "admin");
    assert_eq!(envelope["kind"], "items.create");
    // The run's key is signed into the envelope, where no client key can reach it.
    assert_eq!(
        envelope["run"],
        format!("schedule:{}:2026-11-25T09:00:00Z", schedule.id).as_str()
    );
    assert_eq!(envelope["idempotency_key"], Value::Null);
}
