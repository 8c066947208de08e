//! The extension benchmark: a synchronous call to a linked handler that answers its input
//! (`POST /_schd/{portfolio}/{org}/call/bench/echo`, as a member with the `call` right)
//! beside `GET /ping` (no auth, no store) and `GET /time` (the same bearer-token check, no
//! handler) on the same server: the router on SQLite, driven over loopback by `wrk`. It
//! prints each route's throughput and the server's CPU time per request (what the process
//! spent, every thread, user and system, over the requests it answered: `wrk` runs on the
//! same two cores, so throughput alone also counts the client's share), and the ratios of
//! both; it asserts nothing about speed.
//!
//! Needs `wrk` on the PATH. Tunables: REALNET_BENCH_CONNECTIONS (default 16),
//! REALNET_BENCH_SECONDS (a route's run, default 5), REALNET_BENCH_ROUNDS (default 5).

use std::sync::Arc;

use anyhow::Context;
use realnet::Realnet;
use realnet::auth::{Principal, login};
use realnet::config::DbConfig;
use realnet::extensions::{Extension, Extensions, Handler};
use realnet::item::ops::{self, NewItem};
use realnet::store::SqliteStore;
use realnet_tests::wrk::{self, WrkResult};
use serde_json::json;

/// The allocator `realnet serve` runs with (see the CLI's `main`), so the router measured here
/// allocates as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The echo handler's route, as the default org's member calls it.
const ECHO: &str = "/_schd/default/default/call/bench/echo";

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    // Only a `cargo bench` run (which passes --bench) does the work; `cargo test` builds it.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let connections = env_num("REALNET_BENCH_CONNECTIONS", 16)?;
    let seconds = env_num("REALNET_BENCH_SECONDS", 5)?;
    let rounds = env_num("REALNET_BENCH_ROUNDS", 5)?.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let work = tempfile::tempdir()?;
    let (addr, token) = runtime.block_on(serve(work.path()))?;
    let auth = [format!("Authorization: Bearer {token}")];
    let script = work.path().join("echo.lua");
    std::fs::write(
        &script,
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message": "hello", "n": 42}'
"#,
    )?;
    let run = |path: &str, script: Option<&std::path::Path>, headers: &[String]| {
        let before = wrk::process_cpu()?;
        let r = wrk::run(
            connections,
            seconds,
            &format!("http://{addr}{path}"),
            script,
            headers,
        )?;
        let cpu = wrk::process_cpu()? - before;
        anyhow::Ok((cpu.as_secs_f64() * 1e6 / r.requests.max(1) as f64, r))
    };
    // A second of each route first, unmeasured, so that none is measured cold.
    for (path, script, headers) in [
        ("/ping", None, &[][..]),
        ("/time", None, &auth[..]),
        (ECHO, Some(script.as_path()), &auth[..]),
    ] {
        wrk::run(
            connections,
            1,
            &format!("http://{addr}{path}"),
            script,
            headers,
        )?;
    }
    println!(
        "extension handlers: {connections} connections, {rounds} rounds of {seconds} s a route, SQLite"
    );
    println!(
        "{:<6} {:<28} {:>10} {:>12} {:>9} {:>9} {:>8}",
        "round", "route", "req/s", "CPU/request", "p50", "p99", "errors"
    );
    let row = |round: usize, name: &str, (cpu, r): &(f64, WrkResult)| {
        println!(
            "{round:<6} {name:<28} {:>10.0} {:>10.1}us {:>9} {:>9} {:>8}",
            r.rps, cpu, r.p50, r.p99, r.failures
        )
    };
    // The routes alternate, round after round, so that the machine's drift reaches each.
    let (mut by_cpu, mut by_rps, mut to_time) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let ping = run("/ping", None, &[])?;
        let time = run("/time", None, &auth)?;
        let echo = run(ECHO, Some(&script), &auth)?;
        row(round, "GET /ping", &ping);
        row(round, "GET /time (bearer token)", &time);
        row(round, "POST /_schd/.../bench/echo", &echo);
        by_cpu.push(echo.0 / ping.0);
        by_rps.push(ping.1.rps / echo.1.rps);
        to_time.push(echo.0 / time.0);
    }
    println!(
        "echo handler / ping, median of {rounds} rounds: {:.2}x the server's CPU time per request \
         (target: within 1.5x; rounds {}), {:.2}x by throughput (rounds {}); / time: {:.2}x CPU",
        median(&mut by_cpu),
        list(&by_cpu),
        median(&mut by_rps),
        list(&by_rps),
        median(&mut to_time),
    );
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

fn list(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .iter()
        .map(|v| format!("{v:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The router on a fresh SQLite store with the linked extensions and `bench/echo`, a member
/// `bench` with the call right; answers the address and the member's token.
async fn serve(dir: &std::path::Path) -> anyhow::Result<(std::net::SocketAddr, String)> {
    let path = dir.join("bench.db");
    let store = Arc::new(SqliteStore::open(&path)?);
    let config = realnet_tests::config(DbConfig::Sqlite { path });
    let echo = Extension::new("bench", "Benchmark handlers").handler(
        Handler::new(
            "echo",
            "Answers its input",
            |_, input| async move { Ok(input) },
        )
        .input(json!({"type": "object"})),
    );
    let mut linked = realnet_extensions::linked();
    linked.push(echo);
    let extensions = Extensions::new(linked)?;
    let types = realnet::types::TypeRegistry::load(None, &extensions.type_files())?;
    let rn = Arc::new(Realnet::build(config, types, extensions, store)?);
    rn.init().await?;
    let admin = Principal::org_admin("default");
    let new = |type_name: &str, name: &str, a: serde_json::Value| NewItem {
        type_name: type_name.into(),
        name: name.into(),
        parent: None,
        attributes: a.as_object().cloned().unwrap_or_default(),
    };
    ops::create(
        &rn,
        &admin,
        new(
            "Acl",
            "members call",
            json!({"principal": "members", "permissions": ["call"], "target_type": "Extension"}),
        ),
        None,
    )
    .await?;
    let (member, _) = ops::create(
        &rn,
        &admin,
        new("Account", "bench", json!({"username": "bench"})),
        None,
    )
    .await?;
    let token = login::issue(&rn, &member).await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = realnet::api::router(rn);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, token))
}
