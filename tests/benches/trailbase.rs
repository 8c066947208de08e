//! Realnet on SQLite beside TrailBase over HTTP: creates per second (`POST`) and reads by id per
//! second, each driven by `wrk -t2 -c16` over loopback, the two servers alternating, in the same
//! run on the same machine. Realnet's router runs in this process on a SQLite file, as
//! `realnet serve` runs it, with a member account's token; TrailBase is not built or started
//! here: give the address of one that runs. It prints figures and ratios; it asserts nothing
//! about speed.
//!
//! TrailBase (optional): TRAILBASE_URL (e.g. `http://127.0.0.1:4000`), TRAILBASE_API (the record
//! API, default `bench_companies`, on a table of `name TEXT, domain TEXT, employees INTEGER`
//! whose create and read access allow the caller) and TRAILBASE_TOKEN (an auth token sent as
//! `Authorization: Bearer`, if the API needs one). Without TRAILBASE_URL, Realnet alone is
//! measured and the output says TrailBase was not given.
//!
//! Needs: `wrk` on the PATH. Tunables: REALNET_BENCH_ROUNDS (default 3),
//! REALNET_BENCH_SECONDS (default 10), REALNET_BENCH_CONNECTIONS (default 16),
//! REALNET_BENCH_IDS (records created first for the reads, default 1000).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use realnet::auth::{Principal, login};
use realnet::config::DbConfig;
use realnet::item::ops::{self, NewItem};
use realnet::store::{ItemStore, SqliteStore};
use serde_json::{Value, json};

/// The allocator `realnet serve` runs with (see the CLI's `main`), so the router measured here
/// allocates as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORG: &str = "bench";
const MEMBER_PASSWORD: &str = "the benchmark member password";

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

/// One server under load: where to send creates and reads, and how.
struct Target {
    name: &'static str,
    create_url: String,
    /// The URL of a record, without its id.
    read_url: String,
    body: Value,
    headers: Vec<String>,
    ids_file: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    // The server gets a runtime of its own (as under `realnet serve`); the driver blocks on
    // wrk on another.
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    driver.block_on(run(server.handle()))
}

async fn run(server: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let rounds = env_num("REALNET_BENCH_ROUNDS", 3)?;
    let seconds = env_num("REALNET_BENCH_SECONDS", 10)?;
    let connections = env_num("REALNET_BENCH_CONNECTIONS", 16)?;
    let seed = env_num("REALNET_BENCH_IDS", 1000)?;
    let work = tempfile::tempdir()?;
    let client = reqwest::Client::new();

    let db = work.path().join("realnet.db");
    let (addr, token) = server.spawn(serve_realnet(db)).await??;
    let realnet = Target {
        name: "realnet",
        create_url: format!("http://{addr}/api/items"),
        read_url: format!("http://{addr}/api/items/"),
        body: json!({"type": "Company", "name": "Bench Co",
            "attributes": {"domain": "bench.example.com", "employees": 10}}),
        headers: vec![format!("Authorization: Bearer {token}")],
        ids_file: work.path().join("realnet-ids.txt"),
    };
    let mut targets = vec![realnet];
    match std::env::var("TRAILBASE_URL") {
        Ok(url) => {
            let api = std::env::var("TRAILBASE_API").unwrap_or_else(|_| "bench_companies".into());
            let url = url.trim_end_matches('/');
            let headers = std::env::var("TRAILBASE_TOKEN")
                .map(|t| vec![format!("Authorization: Bearer {t}")])
                .unwrap_or_default();
            targets.push(Target {
                name: "trailbase",
                create_url: format!("{url}/api/records/v1/{api}"),
                read_url: format!("{url}/api/records/v1/{api}/"),
                body: json!({"name": "Bench Co", "domain": "bench.example.com", "employees": 10}),
                headers,
                ids_file: work.path().join("trailbase-ids.txt"),
            });
        }
        Err(_) => println!("TRAILBASE_URL not given: TrailBase was not measured, Realnet alone."),
    }
    for t in &targets {
        let ids = seed_ids(&client, t, seed).await?;
        std::fs::write(&t.ids_file, ids.join("\n") + "\n")?;
    }

    println!(
        "HTTP on loopback, wrk -t2 -c{connections}, {seconds} s a run, {rounds} rounds alternating; SQLite"
    );
    let mut figures: Vec<(Vec<f64>, Vec<f64>)> =
        targets.iter().map(|_| Default::default()).collect();
    for round in 0..rounds {
        // Alternate who goes first, so that neither always meets a warmer machine.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let t = &targets[i];
            let creates = wrk(t, connections, seconds, &create_script(work.path(), t)?)?;
            let reads = wrk(t, connections, seconds, &read_script(work.path(), t)?)?;
            println!(
                "  round {} {:<10} creates {:>9.0}/s (p99 {:>8})   reads by id {:>9.0}/s (p99 {:>8})",
                round + 1,
                t.name,
                creates.rps,
                creates.p99,
                reads.rps,
                reads.p99
            );
            figures[i].0.push(creates.rps);
            figures[i].1.push(reads.rps);
        }
    }
    println!();
    for (t, (c, r)) in targets.iter().zip(&figures) {
        println!(
            "  {:<10} creates/s {:>9.0} (median; {:>6.0}-{:<6.0})   reads/s {:>9.0} (median; {:>6.0}-{:<6.0})",
            t.name,
            median(c),
            min(c),
            max(c),
            median(r),
            min(r),
            max(r)
        );
    }
    if let [(rc, rr), (tc, tr)] = figures.as_slice() {
        println!(
            "  realnet / trailbase: creates {:.2}x (round by round {}), reads {:.2}x (round by round {})",
            median(rc) / median(tc),
            ratios(rc, tc),
            median(rr) / median(tr),
            ratios(rr, tr)
        );
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn ratios(a: &[f64], b: &[f64]) -> String {
    a.iter()
        .zip(b)
        .map(|(a, b)| format!("{:.2}", a / b))
        .collect::<Vec<_>>()
        .join(", ")
}

fn wrk(
    t: &Target,
    connections: usize,
    seconds: usize,
    script: &Path,
) -> anyhow::Result<realnet_tests::wrk::WrkResult> {
    // The URL gives the server; a read script sets each request's path.
    let r = realnet_tests::wrk::run(
        connections,
        seconds,
        &t.create_url,
        Some(script),
        &t.headers,
    )
    .with_context(|| format!("wrk against {}", t.name))?;
    anyhow::ensure!(
        r.failures == 0,
        "{}: {} responses were not 2xx",
        t.name,
        r.failures
    );
    Ok(r)
}

fn create_script(dir: &Path, t: &Target) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{}-create.lua", t.name));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{}'\n",
            t.body
        ),
    )?;
    Ok(path)
}

fn read_script(dir: &Path, t: &Target) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{}-read.lua", t.name));
    let prefix = reqwest::Url::parse(&t.read_url)?.path().to_string();
    std::fs::write(
        &path,
        format!(
            r#"local ids = {{}}
for line in io.lines("{}") do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", "{prefix}" .. ids[math.random(#ids)]) end
"#,
            t.ids_file.display()
        ),
    )?;
    Ok(path)
}

/// Creates `count` records through the API, as the load will; answers their ids.
async fn seed_ids(
    client: &reqwest::Client,
    t: &Target,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let mut request = client.post(&t.create_url).json(&t.body);
        for h in &t.headers {
            if let Some((name, value)) = h.split_once(": ") {
                request = request.header(name, value);
            }
        }
        let answer = request
            .send()
            .await
            .with_context(|| format!("create on {}", t.name))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "create on {}: {status} {body}", t.name);
        // Realnet answers the item; TrailBase `{"ids": [...]}`.
        let id = body["id"]
            .as_str()
            .or_else(|| body["ids"][0].as_str())
            .with_context(|| format!("no id in {body}"))?;
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Serves Realnet's router on a SQLite file at a free loopback port, with the org set up as
/// `realnet init` does and a member account; answers the address and the member's token.
async fn serve_realnet(db: std::path::PathBuf) -> anyhow::Result<(std::net::SocketAddr, String)> {
    let store = Arc::new(SqliteStore::open(&db)?);
    store.migrate().await?;
    let mut config = realnet_tests::config(DbConfig::Sqlite { path: db });
    config.default_org = ORG.to_string();
    let rn = Arc::new(realnet_tests::realnet(
        config,
        realnet_tests::registry(),
        store,
    ));
    rn.init_org(ORG, Some(MEMBER_PASSWORD.to_string())).await?;
    let (member, _) = ops::create(
        &rn,
        &Principal::org_admin(ORG),
        NewItem {
            type_name: "Account".into(),
            name: "bench".into(),
            parent: None,
            attributes: json!({"username": "bench", "password": MEMBER_PASSWORD})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
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
