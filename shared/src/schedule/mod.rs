//! Scheduled work. A `Schedule` item names a cron expression (five fields: minute, hour, day of
//! month, month, day of week), the time zone it is read in, the job to send (`kind` and
//! `payload`, as `POST /api/jobs` takes them) and whether it is enabled. The minute [`tick`]
//! sends each due run once, as the account that last set the schedule's job, with that
//! account's rights;
//! the built-in maintenance tasks are in [`maintenance`]. `functions/scheduler` runs both from
//! EventBridge events ([`handle`]); `realnet serve` runs them in-process ([`run_local`]).

pub mod maintenance;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use async_trait::async_trait;

use crate::auth::Principal;
use crate::auth::identity;
use crate::context::Realnet;
use crate::item::Item;
use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::item::behaviour::{Pending, TypeBehaviour};
use crate::jobs::envelope::Submission;
use crate::jobs::submit::{SubmitError, submit};
use crate::query::{ItemQuery, Readable};
use crate::store::{JobClaim, StoreError, Write};

pub const SCHEDULE: &str = "Schedule";

/// How far back a tick looks for runs not sent yet, so that a late or missed tick (up to this
/// long) still sends them. Runs due before a schedule's last change are not sent.
pub const LOOKBACK: Duration = Duration::from_secs(5 * 60);

/// How long a tick holds a run it is sending before another tick may try it.
const SEND_LEASE: Duration = Duration::from_secs(60);

/// A schedule's timing: when its runs are due.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: Cron,
    zone: Tz,
}

/// Which field of a five-field cron expression is at fault (each is tried alone, the others
/// `*`), as text like `": the hour field \"25\" is wrong"`; empty when the fields
/// are not five or each is fine alone.
fn faulty_field(cron: &str) -> String {
    const NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != 5 {
        return if cron.trim_start().starts_with('@') {
            String::new()
        } else {
            format!(": it has {} fields", fields.len())
        };
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    (0..5)
        .find(|&i| {
            let alone: Vec<&str> = (0..5)
                .map(|j| if j == i { fields[i] } else { "*" })
                .collect();
            parser.parse(&alone.join(" ")).is_err()
        })
        .map(|i| format!(": the {} field {:?} is wrong", NAMES[i], fields[i]))
        .unwrap_or_default()
}

impl Timing {
    /// Parses a five-field cron expression (or `@hourly`, `@daily`, ...) read in the IANA time
    /// zone `zone`.
    pub fn parse(cron: &str, zone: &str) -> Result<Timing, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(cron);
        let cron = parsed
            .map_err(|e| {
                errors.add(
                    "cron",
                    format!(
                        "{cron:?} is not a valid cron expression{} (five fields: minute hour day-of-month month day-of-week): {e}",
                        faulty_field(cron)
                    ),
                )
            })
            .ok();
        let zone = zone
            .parse::<Tz>()
            .map_err(|_| {
                errors.add(
                    "timezone",
                    format!("{zone:?} is not an IANA time zone (such as UTC or Europe/Paris)"),
                )
            })
            .ok();
        match (cron, zone) {
            (Some(cron), Some(zone)) => Ok(Timing { cron, zone }),
            _ => Err(errors),
        }
    }

    /// The runs due after `after`, up to and including `until`, oldest first.
    pub fn due(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.cron
            .iter_after(after.with_timezone(&self.zone))
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= until)
            .collect()
    }
}

/// The job a schedule sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduledJob {
    kind: String,
    payload: Value,
}

fn text<'a>(attributes: &'a Map<String, Value>, name: &str, default: &'a str) -> &'a str {
    attributes
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or(default)
}

fn timing(attributes: &Map<String, Value>) -> Result<Timing, ValidationErrors> {
    Timing::parse(
        text(attributes, "cron", ""),
        text(attributes, "timezone", "UTC"),
    )
}

fn job(attributes: &Map<String, Value>) -> Result<ScheduledJob, String> {
    let job: ScheduledJob =
        serde_json::from_value(attributes.get("job").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("must be {{\"kind\": ..., \"payload\": ...}}: {e}"))?;
    crate::jobs::check(&job.kind, &job.payload)?;
    Ok(job)
}

/// The server-owned attribute naming the account a schedule's runs act as: whoever last set
/// its job.
pub const RUN_AS: &str = "run_as";

/// The behaviour of `Schedule` items: the cron expression, time zone and job are checked as
/// they will be stored, and whoever sets the job must hold the rights it needs; the runs act
/// as that account ([`RUN_AS`]).
pub struct ScheduleItems;

fn job_set(before: Option<&Item>, item: &Item) -> bool {
    before.is_none_or(|b| b.attributes.get("job") != item.attributes.get("job"))
}

#[async_trait]
impl TypeBehaviour for ScheduleItems {
    fn stamp(&self, principal: &Principal, before: Option<&Item>, item: &mut Item) {
        if job_set(before, item) {
            match principal.account {
                Some(a) => item.attributes.insert(RUN_AS.into(), json!(a)),
                // The installation (the CLI) sets it: the runs act as the schedule's owner.
                None => item.attributes.remove(RUN_AS),
            };
        }
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        let attributes = &w.item.attributes;
        if let Err(e) = timing(attributes) {
            errors.0.extend(e.0);
        }
        let job = match job(attributes) {
            Ok(job) => job,
            Err(m) => {
                errors.add("job", m);
                return Ok(());
            }
        };
        if job_set(w.before, w.item) {
            // The runs act as whoever set the job; the public is no one (without this, the
            // runs would fall back to the schedule's owner).
            if w.principal.is_public() {
                return Err(ItemError::Unauthenticated(
                    "log in to set a schedule's job (POST /api/auth): its runs act as whoever set it"
                        .into(),
                ));
            }
            match crate::jobs::rehearse(w.rn, w.principal, &job.kind, &job.payload).await {
                Ok(()) => {}
                Err(ItemError::Invalid(e)) => errors.0.extend(e.0),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What a tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Enabled schedules looked at.
    pub schedules: usize,
    /// Runs sent to the queue.
    pub sent: usize,
    /// Due runs another tick had sent (or is sending).
    pub already_sent: usize,
    /// Runs that could not be sent: retried by the next tick if the cause may pass, otherwise
    /// (no owner, a job that no longer checks) recorded and dropped. Each is logged.
    pub failed: usize,
}

/// Sends the runs of every enabled schedule, in every org, that fell due in the
/// [`LOOKBACK`] before `now` and have not been sent: each exactly once, however many ticks
/// overlap (a run is claimed in the store before it is sent).
pub async fn tick(rn: &Realnet, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    for org in rn.store.orgs().await? {
        let mut query = ItemQuery::parse(&rn.types, &[("type".into(), SCHEDULE.into())], None)
            .expect("a fixed query parses");
        query.readable = Readable::All;
        query.limit = 100;
        loop {
            let page = rn.store.query(&org, &query).await?;
            // A schedule disabled, changed or deleted a moment ago runs as it is now.
            let schedules = crate::store::current(&*rn.store, &org, &query, page.items).await?;
            for schedule in &schedules {
                if schedule.attributes.get("enabled") == Some(&Value::Bool(false)) {
                    continue;
                }
                report.schedules += 1;
                send_due(rn, schedule, now, &mut report).await;
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    Ok(report)
}

/// Why a run was not sent.
enum NotSent {
    /// The next tick may succeed.
    Retry(String),
    /// It never will.
    Never(String),
}

async fn send_due(rn: &Realnet, schedule: &Item, now: DateTime<Utc>, report: &mut TickReport) {
    let span = tracing::info_span!("schedule", org = %schedule.org, id = %schedule.id);
    send_due_in_span(rn, schedule, now, report)
        .instrument(span)
        .await
}

async fn send_due_in_span(
    rn: &Realnet,
    schedule: &Item,
    now: DateTime<Utc>,
    report: &mut TickReport,
) {
    let timing = match timing(&schedule.attributes) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "the schedule's timing does not parse");
            report.failed += 1;
            return;
        }
    };
    let since = now - chrono::Duration::from_std(LOOKBACK).unwrap_or_default();
    let org = schedule.org.as_str();
    for at in timing.due(since.max(schedule.updated_at), now) {
        let run = format!(
            "schedule:{}:{}",
            schedule.id,
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let claim = format!("send:{run}");
        let lease = now + chrono::Duration::from_std(SEND_LEASE).unwrap_or_default();
        let expires =
            now + chrono::Duration::from_std(rn.config.job_record_ttl).unwrap_or_default();
        match rn.store.begin_job(org, &claim, now, lease, expires).await {
            Ok(JobClaim::Started) => {}
            Ok(JobClaim::Done(_) | JobClaim::Busy) => {
                report.already_sent += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim the run");
                report.failed += 1;
                continue;
            }
        }
        let outcome = match send(rn, schedule, &run).await {
            Ok(job) => {
                tracing::info!(run = %run, job = %job, "scheduled run sent");
                report.sent += 1;
                json!({"job": job})
            }
            Err(NotSent::Never(m)) => {
                tracing::error!(run = %run, error = %m, "scheduled run dropped");
                report.failed += 1;
                json!({"error": m})
            }
            Err(NotSent::Retry(m)) => {
                tracing::warn!(run = %run, error = %m, "scheduled run not sent; the next tick retries");
                report.failed += 1;
                if let Err(e) = rn.store.abandon_job(org, &claim).await {
                    tracing::warn!(error = %e, "cannot let go of the run");
                }
                continue;
            }
        };
        let finished = Write::FinishJob {
            key: claim,
            outcome,
        };
        if let Err(e) = rn.store.apply(org, &[finished]).await {
            // The claim's lease runs out and a later tick sends the run again; the job's
            // idempotency key keeps its effects to one.
            tracing::warn!(error = %e, "cannot record the sent run");
        }
    }
}

/// Sends one run of `schedule` as its owner; answers the `Job` item's id.
async fn send(rn: &Realnet, schedule: &Item, run: &str) -> Result<uuid::Uuid, NotSent> {
    let org = schedule.org.as_str();
    let job = job(&schedule.attributes).map_err(NotSent::Never)?;
    let run_as = schedule
        .attributes
        .get(RUN_AS)
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .or(schedule.owner);
    let owner = match run_as {
        Some(id) => rn
            .store
            .get(org, id)
            .await
            .map_err(|e| NotSent::Retry(e.to_string()))?,
        None => None,
    };
    let account = owner
        .filter(|a| rn.types.is_a(&a.type_name, "Account") && !identity::is_disabled(a))
        .ok_or_else(|| {
            NotSent::Never(
                "the account that set the schedule's job is not an enabled account: the runs act as it".into(),
            )
        })?;
    let principal = rn
        .principal_of(&account, crate::auth::Credential::Job)
        .await
        .map_err(|e| NotSent::Retry(e.to_string()))?;
    let actor = principal.username.clone().unwrap_or_default();
    let submission = Submission {
        kind: job.kind,
        payload: job.payload,
        idempotency_key: None,
        run: Some(run.to_string()),
        request_id: Some(format!("schedule:{}", schedule.id)),
    };
    match submit(rn, &principal, &actor, submission).await {
        Ok(item) => Ok(item.id),
        Err(e @ SubmitError::Item(_)) => Err(NotSent::Never(e.to_string())),
        Err(e) => Err(NotSent::Retry(e.to_string())),
    }
}

/// The event `functions/scheduler` takes: an EventBridge scheduled event whose `detail` names
/// the task (the rule's input in `infra/`). A plain rule or a SAM `Schedule` event sends an
/// empty `detail`: that is the minute tick. Other fields of the event are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub detail: TaskDetail,
    /// When EventBridge fired the rule; the tick counts from here, so a delayed invocation
    /// still sends what was due at that minute.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDetail {
    /// `tick` (also when absent) or `maintenance`.
    #[serde(default)]
    pub task: Option<String>,
}

/// Why a scheduled task did not run.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("unknown scheduled task {0:?}: use \"tick\" or \"maintenance\"")]
    UnknownTask(String),
    #[error("the {task} task failed: {message}")]
    Failed { task: &'static str, message: String },
}

impl TaskError {
    /// A name for the kind of failure (the Lambda error type).
    pub fn kind(&self) -> &'static str {
        match self {
            TaskError::UnknownTask(_) => "UnknownTask",
            TaskError::Failed { .. } => "TaskFailed",
        }
    }
}

/// Runs the task an event names and answers what it did.
pub async fn handle(rn: &Realnet, event: ScheduledEvent) -> Result<Value, TaskError> {
    let now = Utc::now();
    match event.detail.task.as_deref().unwrap_or("tick") {
        "tick" => {
            // A late invocation counts from the time the rule fired, never from the future.
            let at = event.time.map_or(now, |t| t.min(now));
            let report = tick(rn, at).await.map_err(|e| TaskError::Failed {
                task: "tick",
                message: e.to_string(),
            })?;
            crate::metrics::scheduler_run("tick", Some((report.sent, report.failed)));
            Ok(json!({"task": "tick", "report": report}))
        }
        "maintenance" => {
            let report = maintenance::run(rn, now)
                .await
                .map_err(|e| TaskError::Failed {
                    task: "maintenance",
                    message: e.to_string(),
                })?;
            crate::metrics::scheduler_run("maintenance", None);
            Ok(json!({"task": "maintenance", "report": report}))
        }
        other => Err(TaskError::UnknownTask(other.to_string())),
    }
}

/// `realnet serve`'s scheduler: the tick at the start of every minute and maintenance every
/// hour, until the process ends.
pub async fn run_local(rn: Arc<Realnet>) {
    let mut last_maintenance: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        if let Err(e) = tick(&rn, now).await {
            tracing::warn!(error = %e, "scheduler tick failed");
        }
        if last_maintenance.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
            match maintenance::run(&rn, now).await {
                Ok(report) => tracing::info!(
                    abandoned_uploads = report.abandoned_uploads,
                    expired = %json!(report.expired),
                    "maintenance done"
                ),
                Err(e) => tracing::warn!(error = %e, "maintenance failed"),
            }
            last_maintenance = Some(now);
        }
        let into_minute = u64::from(chrono::Timelike::second(&Utc::now()));
        tokio::time::sleep(Duration::from_secs(60 - into_minute.min(59))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn due_runs_are_read_in_the_time_zone() {
        let t = Timing::parse("30 9 * * *", "Europe/Paris").expect("valid");
        // 09:30 in Paris is 08:30 UTC in winter, 07:30 UTC in summer.
        assert_eq!(
            t.due(at("2026-01-10T00:00:00Z"), at("2026-01-11T00:00:00Z")),
            vec![at("2026-01-10T08:30:00Z")]
        );
        assert_eq!(
            t.due(at("2026-07-10T00:00:00Z"), at("2026-07-11T00:00:00Z")),
            vec![at("2026-07-10T07:30:00Z")]
        );
    }

    #[test]
    fn due_is_after_the_start_and_up_to_the_end() {
        let t = Timing::parse("*/15 * * * *", "UTC").expect("valid");
        assert_eq!(
            t.due(at("2026-01-10T10:00:00Z"), at("2026-01-10T10:30:00Z")),
            vec![at("2026-01-10T10:15:00Z"), at("2026-01-10T10:30:00Z")]
        );
    }

    #[test]
    fn bad_timings_say_what_is_wrong() {
        for (cron, zone, field) in [
            ("61 * * * *", "UTC", "cron"),
            ("* * * *", "UTC", "cron"),
            ("0 * * * * *", "UTC", "cron"),
            ("not cron", "UTC", "cron"),
            ("", "UTC", "cron"),
            ("* * * * *", "Mars/Olympus", "timezone"),
            ("* * * * *", "", "timezone"),
        ] {
            let e = Timing::parse(cron, zone).expect_err(cron);
            assert_eq!(e.0.len(), 1, "{cron} {zone}: {e:?}");
            assert_eq!(e.0[0].0, field, "{cron} {zone}");
        }
    }

    #[test]
    fn a_bad_cron_expression_names_its_field() {
        for (cron, named) in [
            ("61 * * * *", "the minute field \"61\""),
            ("0 25 * * *", "the hour field \"25\""),
            ("0 9 32 * *", "the day-of-month field \"32\""),
            ("0 9 * 13 *", "the month field \"13\""),
            ("0 9 * * funday", "the day-of-week field \"funday\""),
            ("* * * *", "it has 4 fields"),
        ] {
            let e = Timing::parse(cron, "UTC").expect_err(cron);
            assert!(e.0[0].1.contains(named), "{cron}: {:?}", e.0[0].1);
        }
    }
}
