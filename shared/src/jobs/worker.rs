//! The SQS worker's batch handling, for `functions/worker` (and anything else that hands it
//! SQS batches). Each record is checked, decoded and run on its own, so one malformed body
//! never fails its neighbours; records run concurrently (at most [`CONCURRENCY`]) on a
//! standard queue and in order on a FIFO queue, each with a timeout that leaves the invocation
//! time to answer. A record whose sender is not proven ([`super::trust`]: no valid signature,
//! no live API key, or a key used for another org or actor) runs nothing and writes nothing:
//! it is logged with the reason and reported as a batch item failure on every delivery, so
//! the queue's redrive policy (`MaxJobReceives` in `infra/`) moves it to the dead-letter
//! queue. Otherwise the answer lists only the records worth another delivery (partial batch
//! failures); on a FIFO queue the first such record and every later one, since later messages
//! of a group must not overtake it (a refused record holds nothing up: it never runs). A job
//! that can never succeed is recorded as failed and not retried; a panic in a job is a failed
//! record, not a crashed invocation. The in-process queue of `realnet serve` goes through the
//! same checks ([`run_local`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::envelope::{Credentials, SignedJob};
use super::trust::{self, Sender, Untrusted};
use super::{JobEnvelope, JobFailure, actor, decode, record as record_of, record_key, run};
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::ops::{self, Change};
use crate::queue::dead::DeadLetter;
use crate::store::StoreError;

/// Records of one batch run at once on a standard queue.
pub const CONCURRENCY: usize = 8;

/// Time kept back from the invocation's deadline to report the batch.
const MARGIN: Duration = Duration::from_millis(500);

/// How one record ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    Succeeded(Value),
    /// Recorded as failed; the message is done with.
    Failed(String),
    /// Reported as a batch item failure, for another delivery.
    Retry(String),
    /// Its sender is not proven: nothing ran; reported as a batch item failure on every
    /// delivery, so that the queue moves it to the dead-letter queue.
    Refused(String),
}

impl RecordOutcome {
    /// How it ended, in a word (the `Outcome` of the jobs metric).
    pub fn name(&self) -> &'static str {
        match self {
            RecordOutcome::Succeeded(_) => "succeeded",
            RecordOutcome::Failed(_) => "failed",
            RecordOutcome::Retry(_) => "retry",
            RecordOutcome::Refused(_) => "refused",
        }
    }
}

/// Runs one record's job.
pub async fn process(rn: &Arc<Realnet>, message: &SqsMessage, timeout: Duration) -> RecordOutcome {
    let id = message.message_id.clone().unwrap_or_default();
    let credentials = Credentials::from_sqs(&message.message_attributes);
    let body = message.body.as_deref().unwrap_or_default();
    // The X-Ray trace header SQS carried from the sender (the api function's request).
    let span = tracing::info_span!(
        "record",
        trace = message
            .attributes
            .get("AWSTraceHeader")
            .map_or("", String::as_str)
    );
    let outcome = run_body(rn, &id, body, &credentials, timeout)
        .instrument(span)
        .await;
    let queue_age = message
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|sent| u64::try_from(chrono::Utc::now().timestamp_millis() - sent).ok())
        .map(Duration::from_millis);
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Option<&'a str>,
    }
    let kind = serde_json::from_str::<Kind>(body)
        .ok()
        .and_then(|k| k.kind)
        .unwrap_or("unknown");
    crate::metrics::job(kind, outcome.name(), queue_age);
    outcome
}

/// Sets attributes of the job's `Job` item, if it has one (jobs sent through the API).
async fn report(rn: &Realnet, job: &JobEnvelope, attributes: Value) {
    let Some(id) = job.job else { return };
    let Value::Object(mut attributes) = attributes else {
        return;
    };
    if attributes.get("status") == Some(&json!("running")) {
        let attempts = match rn.store.get(&job.org, id).await {
            Ok(Some(item)) => item.attributes.get("attempts").and_then(Value::as_i64),
            _ => None,
        };
        attributes.insert("attempts".into(), json!(attempts.unwrap_or(0) + 1));
    }
    let change = Change::Patch {
        name: None,
        parent: None,
        attributes: Some(attributes),
    };
    let installation = Principal::org_admin(&job.org);
    if let Err(e) = ops::update_by_server(rn, &installation, id, change, None, Some("Job")).await {
        tracing::warn!(error = %e, "cannot record the job's status");
    }
}

/// What an earlier run of the job's key recorded, as this delivery's outcome: `None` when
/// no finished run is on record.
async fn earlier_run(rn: &Realnet, job: &JobEnvelope, key: &str) -> Option<RecordOutcome> {
    match rn
        .store
        .job_outcome(&job.org, key, chrono::Utc::now())
        .await
    {
        Ok(Some(outcome)) => {
            tracing::info!("duplicate delivery: the job already ran");
            Some(RecordOutcome::Succeeded(outcome))
        }
        Ok(None) => None,
        Err(e) => Some(RecordOutcome::Retry(e.to_string())),
    }
}

/// The status a finished job's record reports.
fn reported(outcome: &Value) -> Value {
    match outcome.get("error") {
        Some(error) => json!({"status": "failed", "error": error}),
        None => json!({"status": "succeeded", "result": outcome.get("result")}),
    }
}

/// Runs the job in a message body, if its sender is proven by `credentials` (the message's
/// attributes), exactly once per record key: its effects and its record in one transaction,
/// which the record of an earlier run refuses.
pub async fn run_body(
    rn: &Arc<Realnet>,
    id: &str,
    body: &str,
    credentials: &Credentials,
    timeout: Duration,
) -> RecordOutcome {
    let span = tracing::info_span!("job", message_id = %id, kind = tracing::field::Empty,
        org = tracing::field::Empty, request_id = tracing::field::Empty);
    // Instrumented, not entered: a span entered across an await would leak into whatever the
    // thread polls next, and the leaked parents pile up.
    async {
        let outcome = receive(rn, id, body, credentials, timeout).await;
        // One line per delivery, in the job's span: what a request id is followed by.
        tracing::info!(outcome = outcome.name(), "job done");
        outcome
    }
    .instrument(span)
    .await
}

async fn receive(
    rn: &Arc<Realnet>,
    id: &str,
    body: &str,
    credentials: &Credentials,
    timeout: Duration,
) -> RecordOutcome {
    let refuse = |e: Untrusted| match e {
        Untrusted::Refused(m) => {
            tracing::error!(reason = %m, "job refused: its sender is not proven; nothing ran");
            RecordOutcome::Refused(m)
        }
        Untrusted::Store(e) => {
            tracing::warn!(error = %e, "cannot check the job's sender; it will be retried");
            RecordOutcome::Retry(e.to_string())
        }
    };
    let sender = match trust::sender(rn, body, credentials).await {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    let job = match decode(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "job refused");
            return RecordOutcome::Failed(e.to_string());
        }
    };
    // Nothing, not even the record that it failed, is written in an org never set up.
    match rn.org_exists(&job.org).await {
        Ok(true) => {}
        Ok(false) => {
            let refused = format!("there is no org {:?}", job.org);
            tracing::error!(error = %refused, "job refused");
            return RecordOutcome::Failed(refused);
        }
        Err(e) => return RecordOutcome::Retry(e.to_string()),
    }
    let span = tracing::Span::current();
    span.record("kind", job.kind.as_str());
    span.record("org", job.org.as_str());
    span.record("request_id", job.request_id.as_deref().unwrap_or_default());
    let principal = match sender {
        Sender::Producer(p) => match trust::check_producer(&p, &job) {
            Ok(()) => p,
            Err(e) => return refuse(e),
        },
        Sender::Installation => match actor(rn, &job).await {
            Ok(p) => p,
            Err(failure) => return unrun(rn, &job, failure).await,
        },
    };
    let key = record_key(&job, &principal, id);
    run_job(rn, principal, job, key, timeout).await
}

/// The outcome of a signed job whose actor cannot be had (no record: it has no account to
/// be kept under).
async fn unrun(rn: &Realnet, job: &JobEnvelope, failure: JobFailure) -> RecordOutcome {
    match failure {
        JobFailure::Permanent(m) => {
            tracing::error!(error = %m, "job failed");
            report(rn, job, json!({"status": "failed", "error": m})).await;
            RecordOutcome::Failed(m)
        }
        other => {
            tracing::warn!(error = %other, "job will be retried");
            RecordOutcome::Retry(other.to_string())
        }
    }
}

async fn run_job(
    rn: &Arc<Realnet>,
    principal: Principal,
    job: JobEnvelope,
    key: String,
    timeout: Duration,
) -> RecordOutcome {
    if job.job.is_some() {
        // A job that reports its status is looked up first, so that a redelivery of a
        // finished one does not report it running again.
        if let Some(earlier) = earlier_run(rn, &job, &key).await {
            return earlier;
        }
        report(rn, &job, json!({"status": "running"})).await;
    }
    // Its own task, so that a panic in the job is caught here as a failed record.
    let (task_rn, task_job, task_key) = (rn.clone(), job.clone(), key.clone());
    let task = tokio::spawn(
        async move { run(&task_rn, &principal, &task_job, &task_key).await }.in_current_span(),
    );
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => Err(JobFailure::Retry("the job panicked".into())),
        Ok(Err(join)) => Err(JobFailure::Retry(join.to_string())),
        Err(_) => Err(JobFailure::Retry(format!(
            "the job did not finish within {} ms",
            timeout.as_millis()
        ))),
    };
    // A success was recorded with its effects, in the same transaction; a permanent failure
    // is recorded here.
    let (outcome, record) = match result {
        Ok(value) => (RecordOutcome::Succeeded(value), None),
        Err(JobFailure::AlreadyRan) => match earlier_run(rn, &job, &key).await {
            Some(RecordOutcome::Succeeded(outcome)) => {
                report(rn, &job, reported(&outcome)).await;
                return RecordOutcome::Succeeded(outcome);
            }
            Some(other) => (other, None),
            None => (
                RecordOutcome::Retry("the job is running elsewhere".into()),
                None,
            ),
        },
        // What the job asked for was refused (bad input, no right): the sender's to fix, so
        // a warning; the server's own failures are errors.
        Err(JobFailure::Permanent(m)) => {
            tracing::warn!(error = %m, "job failed");
            (RecordOutcome::Failed(m.clone()), Some(json!({"error": m})))
        }
        Err(JobFailure::Retry(m)) => {
            tracing::warn!(error = %m, "job will be retried");
            (RecordOutcome::Retry(m), None)
        }
    };
    report(
        rn,
        &job,
        match &outcome {
            RecordOutcome::Succeeded(v) => json!({"status": "succeeded", "result": v}),
            RecordOutcome::Failed(m) => json!({"status": "failed", "error": m}),
            RecordOutcome::Retry(_) | RecordOutcome::Refused(_) => json!({"status": "queued"}),
        },
    )
    .await;
    if let Some(r) = record {
        match rn.store.apply(&job.org, &[record_of(rn, &key, r)]).await {
            // Recorded by an earlier delivery.
            Ok(()) | Err(StoreError::JobRecorded(_)) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot record the job's outcome");
                return RecordOutcome::Retry(e.to_string());
            }
        }
    }
    outcome
}

/// Handles one SQS batch, given the invocation's deadline.
pub async fn handle(rn: Arc<Realnet>, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let timeout = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(MARGIN)
        .max(Duration::from_millis(100));
    let fifo = event
        .records
        .first()
        .and_then(|r| r.event_source_arn.as_deref())
        .is_some_and(|arn| arn.ends_with(".fifo"));
    let ids: Vec<String> = event
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap_or_default())
        .collect();
    let mut retry = Vec::new();
    if fifo {
        for (i, message) in event.records.iter().enumerate() {
            match process(&rn, message, timeout).await {
                RecordOutcome::Retry(_) => {
                    retry.extend(ids[i..].iter().cloned());
                    break;
                }
                // It never runs, so the records after it overtake nothing.
                RecordOutcome::Refused(_) => retry.push(ids[i].clone()),
                _ => {}
            }
        }
    } else {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, message) in event.records.into_iter().enumerate() {
            let (rn, permits) = (rn.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (i, process(&rn, &message, timeout).await)
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((i, RecordOutcome::Retry(_) | RecordOutcome::Refused(_))) => {
                    retry.push(ids[i].clone())
                }
                Ok(_) => {}
                // `process` itself does not panic; if it did, its record cannot be named, so
                // the whole batch goes back rather than losing a message.
                Err(_) => return failures(ids),
            }
        }
    }
    failures(retry)
}

/// Runs the jobs of an in-process queue (`realnet serve`) until it closes: each like an SQS
/// record (its signature checked the same way), retried up to three times, a second apart,
/// when worth another try.
pub async fn run_local(
    rn: Arc<Realnet>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<SignedJob>,
) {
    const ATTEMPTS: u32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(60);
    while let Some(job) = jobs.recv().await {
        let rn = rn.clone();
        tokio::spawn(async move {
            let id = format!("local:{}", uuid::Uuid::now_v7());
            let credentials = job.credentials();
            let sent_at = crate::item::now();
            for attempt in 1..=ATTEMPTS {
                match run_body(&rn, &id, &job.body, &credentials, TIMEOUT).await {
                    RecordOutcome::Retry(_) if attempt < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_secs(1)).await
                    }
                    // What SQS's redrive policy would move to the dead-letter queue.
                    RecordOutcome::Retry(_) | RecordOutcome::Refused(_) => {
                        if let Some(local) = rn.local_queue() {
                            local.dead.keep(DeadLetter {
                                id: uuid::Uuid::now_v7(),
                                body: job.body.clone(),
                                credentials: credentials.clone(),
                                receives: attempt,
                                sent_at: Some(sent_at),
                                receipt: None,
                                group: None,
                            });
                        }
                        break;
                    }
                    _ => break,
                }
            }
        });
    }
}

fn failures(ids: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}
