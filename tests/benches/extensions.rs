//! The extension benchmark: a synchronous call to a linked handler that answers its input
//! (`POST /_schd/{portfolio}/{org}/call/bench/echo`, as a member with the `call` right)
//! beside `GET /ping` (no auth, no store) and `GET /time` (the same bearer-token check, no
//! handler) on the same server: the router on SQLite, driven over loopback by `wrk`. It
//! prints figures and ratios; it asserts nothing about speed.
//!
//! Needs `wrk` on the PATH. Tunables: REALNET_BENCH_CONNECTIONS (default 16),
//! REALNET_BENCH_SECONDS (default 10).

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
    let seconds = env_num("REALNET_BENCH_SECONDS", 10)?;
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
        wrk::run(
            connections,
            seconds,
            &format!("http://{addr}{path}"),
            script,
            headers,
        )
    };
    let ping = run("/ping", None, &[])?;
    let time = run("/time", None, &auth)?;
    let echo = run(
        "/_schd/default/default/call/bench/echo",
        Some(&script),
        &auth,
    )?;
    println!("extension handlers: {connections} connections, {seconds} s each, SQLite");
    println!(
        "{:<34} {:>10} {:>9} {:>9} {:>8}",
        "route", "req/s", "p50", "p99", "errors"
    );
    let row = |name: &str, r: &WrkResult| {
        println!(
            "{name:<34} {:>10.0} {:>9} {:>9} {:>8}",
            r.rps, r.p50, r.p99, r.failures
        )
    };
    row("GET /ping", &ping);
    row("GET /time (bearer token)", &time);
    row("POST /_schd/.../bench/echo", &echo);
    println!(
        "echo handler / ping: {:.2}x the time per request (target: within 1.5x); / time: {:.2}x",
        ping.rps / echo.rps,
        time.rps / echo.rps
    );
    Ok(())
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
