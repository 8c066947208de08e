//! N `api` processes side by side under one Lambda Runtime API, against one PostgreSQL, as N
//! warm Lambda containers (each serving one request at a time) would run: for N = 1, 4, 16 and
//! 64, reads of one item by id with as many requests in flight as containers, and the
//! connections the database holds for them meanwhile (`pg_stat_activity`, sampled). It shows
//! what `DbPoolSize` and the functions' concurrency cost the database (see the README's
//! PostgreSQL on AWS); it prints figures and asserts nothing.
//!
//! Needs: REALNET_TEST_PG_URL (and REALNET_TEST_PG_CA for TLS), a server whose
//! max_connections exceeds the largest N times the pool, and REALNET_BENCH_API_BIN (a release
//! `api` binary). Tunables: REALNET_BENCH_SECONDS (default 5 a run), REALNET_BENCH_POOL (the
//! REALNET_DB_POOL_SIZE of each process, default 2, the template's), REALNET_BENCH_PROCESSES
//! (default "1,4,16,64").
//! Run: `REALNET_BENCH_API_BIN=target/release/api cargo bench -p realnet-tests --bench connections`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use realnet::item::ops::NewItem;
use realnet_tests::lambda_runtime::RuntimeApi;
use realnet_tests::{pg_ca, pg_client, pg_config};
use serde_json::{Value, json};

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// An HTTP API event: `GET path` with a bearer token.
fn get(path: &str, token: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}")},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600800000u64},
        "isBase64Encoded": false
    })
}

async fn run() -> anyhow::Result<()> {
    let api = std::env::var("REALNET_BENCH_API_BIN")
        .context("REALNET_BENCH_API_BIN is not set (a release build of the api binary)")?;
    let seconds: u64 = env_or("REALNET_BENCH_SECONDS", "5").parse()?;
    let pool = env_or("REALNET_BENCH_POOL", "2");
    let counts: Vec<usize> = env_or("REALNET_BENCH_PROCESSES", "1,4,16,64")
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;

    // A database of its own, so that its connections are the processes'.
    let admin = pg_client(&pg_config()).await;
    let db = format!("realnet_conns_{}", uuid::Uuid::now_v7().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let url = env_or("REALNET_TEST_PG_URL", "").replace("dbname=postgres", &format!("dbname={db}"));
    let ca = pg_ca().map(|p| p.display().to_string()).unwrap_or_default();
    let lookup = |k: &str| match k {
        "REALNET_DB_TYPE" => Some("postgresql".to_string()),
        "REALNET_DB_URL" => Some(url.clone()),
        "REALNET_DB_CA_FILE" => Some(ca.clone()).filter(|c| !c.is_empty()),
        "REALNET_DB_POOL_SIZE" => Some("2".to_string()),
        _ => None,
    };
    let rn = realnet::Realnet::from_config(
        realnet::config::Config::from_lookup(lookup)?,
        realnet_extensions::linked(),
    )?;
    rn.init().await?;
    let account = realnet::auth::identity::find_account(&rn, "default", "admin")
        .await?
        .context("the first admin")?;
    let principal = rn
        .principal_of(&account, realnet::auth::Credential::Installation)
        .await?;
    let (item, _) = realnet::item::ops::create(
        &rn,
        &principal,
        NewItem {
            type_name: "Company".into(),
            name: "Benchmark Co".into(),
            parent: None,
            attributes: serde_json::Map::new(),
        },
        None,
    )
    .await?;
    let token = realnet::auth::login::issue(&rn, &account).await?.token;
    let event = get(&format!("/api/items/{}", item.id), &token);
    drop(rn);

    println!(
        "\n{} api processes against one PostgreSQL (REALNET_DB_POOL_SIZE={pool}), reads by id, {seconds} s a run",
        counts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:>10} {:>10} {:>12} {:>14} {:>16}",
        "processes", "req/s", "ratio to 1", "connections", "per process"
    );
    let mut single = None;
    for n in counts {
        let runtime = Arc::new(RuntimeApi::start().await);
        let env = [
            ("REALNET_DB_TYPE", "postgresql"),
            ("REALNET_DB_URL", url.as_str()),
            ("REALNET_DB_CA_FILE", ca.as_str()),
            ("REALNET_DB_POOL_SIZE", pool.as_str()),
            ("RUST_LOG", "warn"),
        ];
        let env: Vec<(&str, &str)> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let mut children: Vec<_> = (0..n)
            .map(|_| runtime.spawn_function(std::path::Path::new(&api), &env))
            .collect();
        // Warm every container: n requests at once reach n different processes.
        let warm: Vec<_> = (0..n)
            .map(|_| {
                let (runtime, event) = (runtime.clone(), event.clone());
                tokio::spawn(async move { runtime.invoke(event).await })
            })
            .collect();
        for w in warm {
            let answer = w.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(answer["statusCode"] == 200, "{answer}");
        }
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..n)
            .map(|_| {
                let (runtime, event, done, stop) =
                    (runtime.clone(), event.clone(), done.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if runtime.invoke(event.clone()).await.is_ok() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let mut peak = 0i64;
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&db],
                )
                .await?;
            peak = peak.max(row.get(0));
        }
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        for c in clients {
            c.await.ok();
        }
        let rate = done.load(Ordering::Relaxed) as f64 / elapsed;
        let base = *single.get_or_insert(rate);
        println!(
            "{n:>10} {rate:>10.0} {:>12.2} {peak:>14} {:>16.2}",
            rate / base,
            peak as f64 / n as f64
        );
        for c in &mut children {
            c.kill().ok();
            c.wait().ok();
        }
    }
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .ok();
    Ok(())
}
