//! The remote-extension benchmark (`cargo bench -p realnet-tests --bench webhook`): a webhook
//! call through `POST /_schd/{portfolio}/{org}/call/{extension}/{handler}` on a Realnet
//! server (the router over loopback HTTP, SQLite as under `realnet serve`, the caller an org
//! admin with a login token) to a local echo server, beside a plain HTTP round trip to the
//! same echo server with a body of the same size; one after another (latency) and with
//! several callers at once (throughput). It prints figures and ratios; it asserts nothing
//! about speed. Needs no service.
//!
//! Tunables: REALNET_BENCH_CALLS (default 2000, per phase), REALNET_BENCH_CONNECTIONS
//! (default 8).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Json;
use axum::routing::post;
use realnet::auth::Principal;
use realnet::config::DbConfig;
use realnet::item::ops::{self, NewItem};
use realnet_tests::TestTokens;
use serde_json::{Value, json};

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// One way of calling: a URL, a body and headers.
#[derive(Clone)]
struct Target {
    url: String,
    body: String,
    token: Option<String>,
}

async fn once(client: &reqwest::Client, t: &Target) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut request = client
        .post(&t.url)
        .header("content-type", "application/json")
        .body(t.body.clone());
    if let Some(token) = &t.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "{} answered {status}: {}",
            t.url,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(started.elapsed())
}

struct Figures {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn measure(t: &Target, calls: usize, connections: usize) -> anyhow::Result<Figures> {
    let client = reqwest::Client::new();
    for _ in 0..calls / 10 {
        once(&client, t).await?;
    }
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        latencies.push(once(&client, t).await?);
    }
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / calls as u32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, t) = (reqwest::Client::new(), t.clone());
        let share = calls / connections;
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                once(&client, &t).await?;
            }
            anyhow::Ok(share)
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    Ok(Figures {
        mean,
        p50: latencies[calls / 2],
        p99: latencies[calls * 99 / 100],
        per_second: done as f64 / started.elapsed().as_secs_f64(),
    })
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("a benchmark server stopped: {e}");
    }
}

/// The echo server and a Realnet server with the webhook extension `bench` pointing at it:
/// the two targets.
async fn setup(work: &std::path::Path) -> anyhow::Result<(Target, Target)> {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let echo_addr = echo.local_addr()?;
    let app = axum::Router::new().route(
        "/echo",
        post(|Json(call): Json<Value>| async move { Json(json!({"echo": call["payload"]})) }),
    );
    tokio::spawn(serve(echo, app));

    let mut config = realnet_tests::config(DbConfig::Sqlite {
        path: work.join("realnet.db"),
    });
    config.storage = realnet::config::StorageConfig::Local {
        root: work.to_path_buf(),
    };
    config.extension_allow_loopback = true;
    let store = Arc::new(realnet::store::SqliteStore::open(&work.join("realnet.db"))?);
    let rn = Arc::new(realnet_tests::realnet(
        config,
        realnet_tests::registry(),
        store,
    ));
    rn.init_org("default", Some(realnet_tests::ADMIN_PASSWORD.into()))
        .await?;
    let admin = Principal::org_admin("default");
    let url = format!("http://{echo_addr}/echo");
    let attributes = json!({"kind": "webhook", "url": url,
        "handlers": [{"name": "echo", "input": {"type": "object"}}]});
    ops::create(
        &rn,
        &admin,
        NewItem {
            type_name: "Extension".into(),
            name: "bench".into(),
            parent: None,
            attributes: attributes.as_object().cloned().unwrap_or_default(),
        },
        None,
    )
    .await?;
    let token = rn.token_for("default", "admin").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let realnet_addr = listener.local_addr()?;
    tokio::spawn(serve(listener, realnet::api::router(rn.clone())));

    let payload = json!({"text": "hello", "n": 42});
    // What Realnet sends the webhook, so both round trips carry the same bytes.
    let forwarded = json!({"extension": "bench", "handler": "echo", "org": "default",
        "caller": {"account": uuid::Uuid::now_v7(), "username": "admin"},
        "request_id": uuid::Uuid::now_v7().to_string(), "payload": payload});
    let plain = Target {
        url,
        body: forwarded.to_string(),
        token: None,
    };
    let through = Target {
        url: format!("http://{realnet_addr}/_schd/default/default/call/bench/echo"),
        body: payload.to_string(),
        token: Some(token),
    };
    Ok((plain, through))
}

fn main() -> anyhow::Result<()> {
    // Only a `cargo bench` run (which passes --bench) does the work; `cargo test` builds it.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let calls = env_num("REALNET_BENCH_CALLS", 2000)?.max(100);
    let connections = env_num("REALNET_BENCH_CONNECTIONS", 8)?.max(1);
    let work = tempfile::tempdir()?;
    // The servers run on a runtime of their own; the driver on another.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (plain, through) = servers.block_on(setup(work.path()))?;
    let driver = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let base = driver.block_on(measure(&plain, calls, connections))?;
    let call = driver.block_on(measure(&through, calls, connections))?;
    println!("remote webhook extension, {calls} calls each, then {connections} callers at once:");
    for (name, f) in [
        ("plain HTTP round trip to the echo server", &base),
        ("POST /_schd/.../call/bench/echo (webhook)", &call),
    ] {
        println!(
            "  {name:<44} mean {:>7.3} ms  p50 {:>7.3} ms  p99 {:>7.3} ms  {:>8.0} calls/s",
            f.mean.as_secs_f64() * 1e3,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.per_second
        );
    }
    println!(
        "  ratio (webhook call / plain round trip): mean {:.2}x  p50 {:.2}x  throughput {:.2}x",
        call.mean.as_secs_f64() / base.mean.as_secs_f64(),
        call.p50.as_secs_f64() / base.p50.as_secs_f64(),
        base.per_second / call.per_second
    );
    Ok(())
}
