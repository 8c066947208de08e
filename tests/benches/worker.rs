//! The worker benchmark (`tests/bench`): SQS batches of 10 single-item create jobs handed to
//! the worker's batch handler, on PostgreSQL (beside pgbench's one-row insert on the same
//! server, at the same concurrency) and on DynamoDB in moto (whose own speed, a Python server,
//! bounds that figure: it measures the worker's overhead there, not DynamoDB). It prints
//! figures and ratios; it asserts nothing about speed.
//!
//! Needs: REALNET_TEST_PG_URL, pgbench (PGBIN), AWS_ENDPOINT_URL (moto). Tunables:
//! REALNET_BENCH_BATCHES (default 1000; DynamoDB runs a fiftieth of them), REALNET_BENCH_SECONDS
//! (pgbench, default 10).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use realnet::Realnet;
use realnet::config::DbConfig;
use realnet::jobs::envelope::{JobSigner, SIGNATURE};
use realnet::store::{DynamoStore, ItemStore, PostgresStore};
use serde_json::{Value, json};

const CONNECTIONS: usize = 8;

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Warnings say why a record would be retried.
    realnet::telemetry::init(false, false);
    runtime.block_on(run())
}

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

/// A batch of 10 jobs, each creating one company, signed by the installation, as SQS would
/// deliver it.
fn batch(signer: &JobSigner, n: usize) -> anyhow::Result<SqsEvent> {
    let records: Vec<Value> = (0..10)
        .map(|i| {
            let body = json!({"kind": "items.create", "org": "default", "actor": "admin",
                "payload": {"items": [{"type": "Company", "name": format!("co {n}-{i}"),
                    "attributes": {"employees": i}}]}})
            .to_string();
            let signature = json!({"stringValue": signer.sign(&body), "dataType": "String"});
            json!({"messageId": format!("{n}-{i}-{}", uuid::Uuid::now_v7()), "receiptHandle": "r",
                "body": body, "attributes": {}, "messageAttributes": {SIGNATURE: signature},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
                "awsRegion": "us-east-1"})
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

/// Messages per second through the worker over `batches` batches, `at_once` batches at a
/// time (as that many concurrent Lambda invocations would), after one round of warm-up (the
/// pool's connections, the caches of a warm container), and the records reported for
/// redelivery.
async fn throughput(
    rn: Arc<Realnet>,
    batches: usize,
    at_once: usize,
) -> anyhow::Result<(f64, usize)> {
    let signer = rn.job_signer().await?.clone();
    for n in 0..at_once {
        let deadline = Instant::now() + Duration::from_secs(60);
        realnet::jobs::worker::handle(rn.clone(), batch(&signer, batches + n)?, deadline).await;
    }
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    let mut failures = 0;
    for n in 0..batches {
        if running.len() >= at_once
            && let Some(done) = running.join_next().await
        {
            failures += done?;
        }
        let (rn, event) = (rn.clone(), batch(&signer, n)?);
        running.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            realnet::jobs::worker::handle(rn, event, deadline)
                .await
                .batch_item_failures
                .len()
        });
    }
    while let Some(done) = running.join_next().await {
        failures += done?;
    }
    Ok((
        (batches * 10 - failures) as f64 / started.elapsed().as_secs_f64(),
        failures,
    ))
}

async fn context(db: DbConfig, store: Arc<dyn ItemStore>) -> anyhow::Result<Arc<Realnet>> {
    let rn = Arc::new(realnet_tests::realnet(
        realnet_tests::config(db),
        realnet_tests::registry(),
        store,
    ));
    rn.init_org("default", Some("the benchmark admin password".into()))
        .await?;
    Ok(rn)
}

async fn run() -> anyhow::Result<()> {
    let batches = env_num("REALNET_BENCH_BATCHES", 1000)?;
    let seconds = env_num("REALNET_BENCH_SECONDS", 10)?;
    println!(
        "Worker benchmark: {batches} SQS batches of 10 single-item create jobs, {CONNECTIONS} batches at a time\n"
    );
    let pg: tokio_postgres::Config = std::env::var("REALNET_TEST_PG_URL")
        .context("REALNET_TEST_PG_URL is not set: run tests/bench")?
        .parse()?;
    // Over TLS where the server offers it (the test clusters accept TLS only).
    let client = realnet_tests::pg_client(&pg).await;
    client
        .batch_execute("DROP DATABASE IF EXISTS realnet_worker_bench")
        .await?;
    client
        .batch_execute("CREATE DATABASE realnet_worker_bench")
        .await?;
    let mut db = pg.clone();
    db.dbname("realnet_worker_bench");
    let ca = realnet_tests::pg_ca();
    let store = Arc::new(PostgresStore::new(db.clone(), CONNECTIONS, ca.as_deref())?);
    store.migrate().await?;
    let config = DbConfig::Postgres {
        config: Box::new(db.clone()),
        pool_size: CONNECTIONS,
        ca_file: ca,
    };
    let (on_pg, failed) = throughput(context(config, store).await?, batches, CONNECTIONS).await?;
    if failed > 0 {
        bail!("{failed} records failed on PostgreSQL; the figure would not be valid");
    }

    let pgbench = match std::env::var_os("PGBIN") {
        Some(dir) => PathBuf::from(dir).join("pgbench"),
        None => PathBuf::from("pgbench"),
    };
    let host = match db.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let args = [
        "-h".to_string(),
        host,
        "-p".into(),
        db.get_ports().first().copied().unwrap_or(5432).to_string(),
        "-U".into(),
        db.get_user().unwrap_or("postgres").to_string(),
    ];
    let run = |extra: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(&pgbench)
            .args(extra)
            .args(&args)
            .arg("realnet_worker_bench")
            .output()
            .context("run pgbench")?;
        if !out.status.success() {
            bail!("pgbench: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    run(&["-i", "-q"])?;
    // Transactions a second of a pgbench script, at the worker's concurrency.
    let script_tps = |name: &str, script: &str| -> anyhow::Result<f64> {
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, script)?;
        let out = run(&[
            "-n",
            "-M",
            "prepared",
            "-c",
            &CONNECTIONS.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
            path.to_str().unwrap_or_default(),
        ])?;
        Ok(out
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|v| v.split_whitespace().next())
            .context("pgbench printed no tps")?
            .parse()?)
    };
    let insert = script_tps(
        "realnet-worker-insert.sql",
        "\\set aid random(1, 100000)\nINSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, 0, CURRENT_TIMESTAMP);\n",
    )?;
    // The same SQL a job writes, by pgbench: its item (into Realnet's items table and its
    // indexes) and its record, in one transaction.
    let job_sql = script_tps(
        "realnet-worker-job-sql.sql",
        "\\set n random(1, 1000000000)\n\
         BEGIN;\n\
         INSERT INTO items (id, org, type, name, parent, owner, attributes, search, version, created_at, updated_at) VALUES (gen_random_uuid(), 'default', 'Company', 'pgbench ' || :n, NULL, NULL, '{\"employees\": 1}', 'pgbench ' || :n, 1, now(), now());\n\
         INSERT INTO job_runs (org, key, state, outcome, lease_until, expires_at) VALUES ('default', 'pgbench:' || :client_id || ':' || :n, 'done', '{\"result\": {\"count\": 1}}', now(), now() + interval '4 days') ON CONFLICT DO NOTHING;\n\
         COMMIT;\n",
    )?;

    realnet_tests::aws_endpoint();
    let table = format!("realnet-bench-{}", uuid::Uuid::now_v7().simple());
    let dynamo = Arc::new(DynamoStore::new(&table));
    dynamo.migrate().await?;
    // One batch at a time: moto's server is not safe under concurrent transactions (it
    // answers some with a 500, "dictionary changed size during iteration").
    let (on_dynamo, retried) = throughput(
        context(
            DbConfig::Dynamodb {
                table,
                page_reads: realnet::store::DEFAULT_PAGE_READS,
            },
            dynamo,
        )
        .await?,
        (batches / 50).max(1),
        1,
    )
    .await?;

    println!(
        "{:<52}{:>12}{:>12}{:>8}",
        "", "msgs/s", "pgbench tps", "ratio"
    );
    println!(
        "{:<52}{on_pg:>12.0}{insert:>12.0}{:>8.2}",
        "worker on PostgreSQL (one-row insert baseline)",
        on_pg / insert
    );
    println!(
        "{:<52}{on_pg:>12.0}{job_sql:>12.0}{:>8.2}",
        "worker on PostgreSQL (a job's own SQL as baseline)",
        on_pg / job_sql
    );
    println!(
        "{:<52}{on_dynamo:>12.0}",
        "worker on DynamoDB in moto (bounded by moto)"
    );
    if retried > 0 {
        println!(
            "  ({retried} records reported for redelivery after moto answered 500; not counted)"
        );
    }
    Ok(())
}
