//! The SQLite write benchmark: creates per second through `ItemStore::apply` with 16 requests
//! at a time (what `realnet serve` sees under `wrk -c16`), item reads by id and pages of 50
//! beside them, and in the same run a bare rusqlite program inserting the same rows into the
//! same schema one transaction each (the floor of a store that commits every create alone).
//! Built at two commits and run alternately, it compares the store before and after group
//! commit. It prints figures and ratios; it asserts nothing about speed.
//!
//! Tunables: REALNET_BENCH_CREATES (default 4000), REALNET_BENCH_READS (default 20000).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use realnet::store::{ItemStore, SqliteStore, Write};
use serde_json::json;
use tokio::task::JoinSet;

const AT_ONCE: usize = 16;
const ORG: &str = "bench";

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

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

/// Runs `total` calls of `call` with `AT_ONCE` in flight; answers calls per second.
async fn at_once<F, Fut>(total: usize, call: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in 0..AT_ONCE {
        let call = call.clone();
        tasks.spawn(async move {
            let mut n = worker;
            while n < total {
                call(n).await?;
                n += AT_ONCE;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn run() -> anyhow::Result<()> {
    let creates = env_num("REALNET_BENCH_CREATES", 4000)?;
    let reads = env_num("REALNET_BENCH_READS", 20000)?;
    let dir = tempfile::tempdir()?;

    // The bare program: the same rows into the same schema, one transaction each.
    let bare_path = dir.path().join("bare.db");
    drop(SqliteStore::open(&bare_path)?);
    let bare = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let conn = rusqlite::Connection::open(&bare_path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        let started = Instant::now();
        for n in 0..creates {
            let item = realnet_tests::contract::item("Company", &format!("co {n}"), None, json!({"employees": n}));
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO items (id, org, type, name, parent, owner, attributes, search, version, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, ?6, 1, ?7, ?7)",
                rusqlite::params![
                    item.id.to_string(),
                    ORG,
                    item.type_name,
                    item.name,
                    serde_json::Value::Object(item.attributes.clone()).to_string(),
                    item.search_text(),
                    realnet::types::value::format_datetime(item.created_at),
                ],
            )?;
            tx.commit()?;
        }
        Ok(creates as f64 / started.elapsed().as_secs_f64())
    })
    .await??;

    let store = Arc::new(SqliteStore::open(&dir.path().join("realnet.db"))?);
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(creates)));
    let (s, i) = (store.clone(), ids.clone());
    let created = at_once(creates, move |n| {
        let (s, i) = (s.clone(), i.clone());
        async move {
            let item = realnet_tests::contract::item(
                "Company",
                &format!("co {n}"),
                None,
                json!({"employees": n}),
            );
            let id = item.id;
            s.apply(ORG, &[Write::Create(item)])
                .await
                .context("create")?;
            i.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(id);
            Ok(())
        }
    })
    .await?;
    let ids: Arc<Vec<uuid::Uuid>> = Arc::new(std::mem::take(
        &mut *ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?,
    ));
    let (s, i) = (store.clone(), ids.clone());
    let got = at_once(reads, move |n| {
        let (s, i) = (s.clone(), i.clone());
        async move {
            s.get(ORG, i[n % i.len()])
                .await
                .context("get")?
                .context("an item")?;
            Ok(())
        }
    })
    .await?;
    let s = store.clone();
    let paged = at_once(reads / 10, move |_| {
        let s = s.clone();
        async move {
            let q = realnet_tests::query(&[("type", "Company"), ("limit", "50")]);
            s.query(ORG, &q).await.context("query")?;
            Ok(())
        }
    })
    .await?;
    println!(
        "SQLite, {AT_ONCE} requests at a time ({creates} creates, {reads} reads by id, {} pages)",
        reads / 10
    );
    println!("  bare rusqlite, one transaction per insert   {bare:>9.0} /s");
    println!(
        "  realnet creates (ItemStore::apply)          {created:>9.0} /s   {:.2} of bare",
        created / bare
    );
    println!("  realnet get by id                           {got:>9.0} /s");
    println!("  realnet page of 50 by type                  {paged:>9.0} /s");
    Ok(())
}
