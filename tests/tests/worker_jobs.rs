//! The SQS worker's batch handling of signed envelopes: each record on its own, exactly-once
//! effects, permanent failures not retried, retryable ones reported as batch item failures
//! (and on a FIFO queue, with every later record), all-or-nothing bulk jobs; against real SQS
//! queues in moto with a dead-letter queue (where an unproven message ends too); and the
//! documented envelope schema agreeing with the decoder. Refusals of unproven senders are in
//! `worker_trust.rs`.

use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use realnet::config::Secret;
use realnet::jobs::envelope::Credentials;
use realnet::jobs::{JobFailure, decode, worker};
use realnet::store::JobClaim;
use realnet_tests::sqs::{Message, SAMPLE_EVENTS_KEY, event, ids};
use realnet_tests::{StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

fn repo_file(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// A signed SQS event of these bodies, as `POST /api/jobs` would have sent them.
async fn signed(app: &TestApp, bodies: &[Value], fifo: bool) -> SqsEvent {
    let mut messages = Vec::new();
    for b in bodies {
        messages.push(app.signed(b).await);
    }
    event(&messages, fifo)
}

/// The key of the record of a job of `username` in the default org with `key`.
async fn record(app: &TestApp, username: &str, key: &str) -> String {
    format!(
        "account:{}:{key}",
        app.account_id("default", username).await
    )
}

async fn count(app: &TestApp, uri: &str) -> usize {
    let a = app.get(uri).await;
    a.body["items"].as_array().map_or(0, Vec::len)
}

fn create(key: &str, names: &[&str]) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "Company", "name": n}))
        .collect();
    json!({"kind": "items.create", "org": "default", "actor": "admin",
        "idempotency_key": key, "payload": {"items": items}})
}

/// The sample batch, signed with the samples' key: a job, its duplicate, a malformed body and
/// an unknown kind, and a forged envelope (no signature). The job runs once; the two bad
/// records are failed for good, not sent back; the forged one is refused, for the dead-letter
/// queue. The duplicate, handled at the same time as the original, may find it still running
/// and come back for another delivery.
async fn the_sample_batch_runs_each_record_once(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| {
        c.job_signing_key = Some(Secret(SAMPLE_EVENTS_KEY.into()))
    })
    .await;
    let sample: SqsEvent = serde_json::from_value(repo_file("events/worker/batch.json"))
        .expect("the sample is an SQS event");
    let sample_ids = ids(&sample);
    let (pair, forged) = (sample_ids[..2].to_vec(), sample_ids[4].clone());
    let failed = app.handle(sample).await;
    assert!(failed.contains(&forged), "{failed:?}");
    assert!(
        failed.len() <= 2 && failed.iter().all(|f| pair.contains(f) || *f == forged),
        "{failed:?}"
    );
    assert_eq!(count(&app, "/api/companies?name=Initech").await, 1);
    assert_eq!(count(&app, "/api/companies?name=Globex").await, 1);
    // Delivered again, it does nothing more.
    let again: SqsEvent =
        serde_json::from_value(repo_file("events/worker/batch.json")).expect("event");
    assert_eq!(app.handle(again).await, vec![forged]);
    assert_eq!(count(&app, "/api/companies?name=Initech").await, 1);
    let claim = app
        .rn
        .store
        .begin_job(
            "default",
            &record(&app, "admin", "import-2026-11-25-0001").await,
            chrono::Utc::now(),
            chrono::Utc::now(),
            chrono::Utc::now(),
        )
        .await
        .expect("claim");
    assert!(
        matches!(claim, JobClaim::Done(ref v) if v["result"]["count"] == 2),
        "{claim:?}"
    );
}

/// A record whose key another run holds is retried; on a standard queue alone, on a FIFO queue
/// with every record after it, which must not run first.
async fn retryable_records_are_reported_and_fifo_keeps_order(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let now = chrono::Utc::now();
    let held = now + chrono::Duration::minutes(5);
    app.rn
        .store
        .begin_job(
            "default",
            &record(&app, "admin", "held").await,
            now,
            held,
            held,
        )
        .await
        .expect("hold a key");
    let standard = signed(
        &app,
        &[create("held", &["Held"]), create("s1", &["S1"])],
        false,
    )
    .await;
    let standard_ids = ids(&standard);
    assert_eq!(app.handle(standard).await, vec![standard_ids[0].clone()]);
    assert_eq!(count(&app, "/api/companies?name=S1").await, 1);
    assert_eq!(count(&app, "/api/companies?name=Held").await, 0);

    let fifo = signed(
        &app,
        &[
            create("f1", &["F1"]),
            create("held", &["Held"]),
            create("f3", &["F3"]),
        ],
        true,
    )
    .await;
    let fifo_ids = ids(&fifo);
    assert_eq!(app.handle(fifo).await, fifo_ids[1..].to_vec());
    assert_eq!(count(&app, "/api/companies?name=F1").await, 1);
    assert_eq!(
        count(&app, "/api/companies?name=F3").await,
        0,
        "not run out of order"
    );
}

/// Bad jobs fail for good, with the reason recorded, and a bulk job writes all or nothing.
async fn bad_jobs_fail_for_good_and_write_nothing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let (_, _) = app.account("default", "member", false).await;
    let too_many: Vec<String> = (0..26).map(|i| format!("c{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let cases = [
        (
            "half valid",
            json!({"kind": "items.create", "org": "default", "actor": "admin",
            "idempotency_key": "half", "payload": {"items": [{"type": "Company", "name": "Fine"},
            {"type": "Company", "name": "Bad", "attributes": {"employees": -1}}]}}),
            "employees",
        ),
        (
            "wrong shape",
            json!({"kind": "items.create", "org": "default", "actor": "admin",
            "idempotency_key": "shape", "payload": {"things": []}}),
            "payload",
        ),
        ("too many", create("many", &too_many), "1 to 25"),
        (
            "no rights",
            json!({"kind": "items.create", "org": "default", "actor": "member",
            "idempotency_key": "rights", "payload": {"items": [{"type": "Acl", "name": "x",
            "attributes": {"principal": "members", "permissions": ["admin"], "target_type": "Item"}}]}}),
            "may not",
        ),
        (
            "an unknown handler",
            json!({"kind": "extension.call", "org": "default", "actor": "admin",
            "idempotency_key": "ext", "payload": {"extension": "crm", "handler": "sync"}}),
            "has no handler \"sync\"",
        ),
    ];
    let before = app.snapshot().await;
    for (case, body, reason) in cases {
        let key = body["idempotency_key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let actor = body["actor"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            app.handle(signed(&app, &[body], false).await).await,
            Vec::<String>::new(),
            "{case}"
        );
        let now = chrono::Utc::now();
        let claim = app
            .rn
            .store
            .begin_job("default", &record(&app, &actor, &key).await, now, now, now)
            .await
            .expect("claim");
        match claim {
            JobClaim::Done(v) => assert!(
                v["error"].as_str().is_some_and(|e| e.contains(reason)),
                "{case}: {v}"
            ),
            other => panic!("{case}: {other:?}"),
        }
    }
    // A signed job whose actor is no enabled account fails for good too (with nothing to
    // record it under).
    let nobody = json!({"kind": "items.delete", "org": "default", "actor": "nobody",
        "idempotency_key": "actor", "payload": {"ids": [uuid::Uuid::now_v7()]}});
    let outcome = worker::run_body(
        &app.rn,
        "m-nobody",
        &nobody.to_string(),
        &app.signed(&nobody).await.credentials(),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        matches!(&outcome, worker::RecordOutcome::Failed(m) if m.contains("nobody")),
        "{outcome:?}"
    );
    assert_eq!(app.snapshot().await, before, "nothing was written");
}

on_every_store!(
    the_sample_batch_runs_each_record_once,
    retryable_records_are_reported_and_fifo_keeps_order,
    bad_jobs_fail_for_good_and_write_nothing,
);

/// The JSON Schema in `schemas/` says what the decoder accepts: every required property is
/// required, and no other property is accepted.
#[test]
fn the_envelope_schema_agrees_with_the_decoder() {
    let schema = repo_file("schemas/job-envelope.schema.json");
    let valid = create("k", &["A"]);
    assert!(decode(&valid.to_string()).is_ok());
    for required in schema["required"].as_array().expect("required") {
        let mut v = valid.clone();
        v.as_object_mut()
            .expect("object")
            .remove(required.as_str().expect("name"));
        assert!(decode(&v.to_string()).is_err(), "{required} is required");
    }
    let properties = schema["properties"].as_object().expect("properties");
    let mut v = valid.clone();
    for p in properties.keys() {
        if v.get(p).is_none() {
            v[p] = if p == "job" {
                json!(uuid::Uuid::now_v7())
            } else {
                json!("x")
            };
        }
    }
    assert!(
        decode(&v.to_string()).is_ok(),
        "every documented property is accepted: {v}"
    );
    v["priority"] = json!(1);
    assert!(matches!(
        decode(&v.to_string()),
        Err(JobFailure::Permanent(_))
    ));
    let kinds = schema["properties"]["kind"]["enum"]
        .as_array()
        .expect("kinds");
    assert_eq!(kinds.len(), 5);
}

/// Real SQS in moto, as the event source mapping would drive it: messages sent by a producer
/// with the SDK, received, handed to the worker, and deleted unless reported as failed; a
/// record that keeps failing moves to the dead-letter queue after the receive count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_queue_with_a_dead_letter_queue() {
    realnet_tests::aws_endpoint();
    let app = TestApp::new(StoreKind::Sqlite).await;
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let name = format!("jobs-{}", uuid::Uuid::now_v7().simple());
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("dlq");
    let dlq_url = dlq.queue_url.expect("url");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("arn");
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "0",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string(),
        )
        .send()
        .await
        .expect("queue");
    let url = queue.queue_url.expect("url");
    let now = chrono::Utc::now();
    let held = now + chrono::Duration::minutes(5);
    app.rn
        .store
        .begin_job(
            "default",
            &record(&app, "admin", "stuck").await,
            now,
            held,
            held,
        )
        .await
        .expect("hold");
    let forged = Message::unproven(create("forged", &["Forged"]));
    for message in [
        app.signed(create("sqs-1", &["From SQS"])).await,
        app.signed(create("stuck", &["Stuck"])).await,
        forged,
    ] {
        let mut send = sqs
            .send_message()
            .queue_url(&url)
            .message_body(message.body);
        if let Some(signature) = message.signature {
            send = send.message_attributes(
                realnet::jobs::envelope::SIGNATURE,
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(signature)
                    .build()
                    .expect("an attribute"),
            );
        }
        send.send().await.expect("send");
    }
    for _ in 0..6 {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), json!({"stringValue": v.string_value, "dataType": "String"})))
                    .collect();
                json!({"messageId": m.message_id, "receiptHandle": m.receipt_handle,
                "body": m.body, "attributes": {}, "messageAttributes": attributes, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1"})
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({"Records": records})).expect("event");
        let failed = app.handle(event).await;
        for m in &messages {
            if !failed.contains(m.message_id.as_ref().expect("id")) {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle.as_deref().expect("handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    assert_eq!(count(&app, "/api/companies?name=From%20SQS").await, 1);
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive the dead letters")
        .messages
        .unwrap_or_default();
    let mut dead: Vec<String> = dead.into_iter().filter_map(|m| m.body).collect();
    dead.sort();
    assert_eq!(
        dead.len(),
        2,
        "the stuck job and the forged one went to the dead-letter queue: {dead:?}"
    );
    assert!(dead.iter().any(|b| b.contains("\"stuck\"")), "{dead:?}");
    assert!(dead.iter().any(|b| b.contains("\"forged\"")), "{dead:?}");
    assert_eq!(count(&app, "/api/companies?name=Forged").await, 0);
}

/// A job's log span covers the job only: while a job waits (here on SQLite's blocking pool),
/// another task on the same thread is not inside it. (A span entered across an await leaks
/// into every task the thread polls; in a warm container the leaked parents pile up until the
/// stack overflows.)
#[test]
fn a_jobs_span_does_not_leak_into_other_tasks() {
    let _logs = tracing::subscriber::set_default(tracing_subscriber::registry());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = TestApp::new(StoreKind::Sqlite).await;
        let (done, mut finished) = tokio::sync::oneshot::channel();
        let rn = app.rn.clone();
        let body = create("span-1", &["Spanned"]).to_string();
        let credentials = Credentials {
            signature: Some(app.sign(&body).await),
            api_key: None,
        };
        tokio::spawn(async move {
            worker::run_body(&rn, "m-1", &body, &credentials, Duration::from_secs(30)).await;
            done.send(()).ok();
        });
        let mut leaked = false;
        while finished.try_recv().is_err() {
            leaked |= !tracing::Span::current().is_none();
            tokio::task::yield_now().await;
        }
        assert!(!leaked, "another task ran inside the job's span");
        assert_eq!(count(&app, "/api/companies?name=Spanned").await, 1);
    });
}
