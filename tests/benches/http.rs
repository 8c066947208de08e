//! The HTTP benchmark (`tests/bench`): the router on PostgreSQL with 100,000 seeded items,
//! driven over loopback by `wrk`, beside `pgbench` on the same server at the same concurrency;
//! authenticated reads beside public ones (both checked against access rules), logins and the
//! Argon2 cost of one; and the cold start of the release bootstraps under a Lambda Runtime
//! API, beside a bare `lambda_http` function. It prints figures and ratios; it asserts nothing
//! about speed.
//!
//! Needs: REALNET_TEST_PG_URL (a PostgreSQL superuser connection), `wrk` and `pgbench` on the
//! PATH or in PGBIN, and REALNET_BENCH_{API,WORKER,SCHEDULER,BARE}_BIN (release bootstraps).
//! Tunables: REALNET_BENCH_CONNECTIONS (default 8), REALNET_BENCH_SECONDS (default 10),
//! REALNET_BENCH_ITEMS (default 100000), REALNET_BENCH_COLD_RUNS (default 20).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use realnet::Realnet;
use realnet::auth::{Principal, login, password};
use realnet::config::DbConfig;
use realnet::item::ops::{self, NewItem};
use realnet::item::{Item, now};
use realnet::store::{ItemStore, PostgresStore, Write};
use realnet_tests::lambda_runtime::RuntimeApi;
use realnet_tests::wrk::WrkResult;
use serde_json::{Value, json};
use uuid::Uuid;

const SMALL: usize = 1_000;
const STAGES: [&str; 5] = ["lead", "qualified", "proposal", "won", "lost"];
const QUERY: &str = "/api/items?type=Deal&attr.stage=won&sort=-created&limit=50";
/// The password of the member account the benchmark acts as.
const MEMBER_PASSWORD: &str = "the benchmark member password";

fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

struct Settings {
    connections: usize,
    seconds: usize,
    items: usize,
    cold_runs: usize,
    pg: tokio_postgres::Config,
    pgbench: PathBuf,
    work: tempfile::TempDir,
}

fn main() -> anyhow::Result<()> {
    // Only a `cargo bench` run (which passes --bench) does the work; `cargo test` builds it.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let pg_url = std::env::var("REALNET_TEST_PG_URL")
        .context("REALNET_TEST_PG_URL is not set: run the benchmark with tests/bench")?;
    let pgbench = match std::env::var_os("PGBIN") {
        Some(dir) => PathBuf::from(dir).join("pgbench"),
        None => PathBuf::from("pgbench"),
    };
    let settings = Settings {
        connections: env_num("REALNET_BENCH_CONNECTIONS", 8)?,
        seconds: env_num("REALNET_BENCH_SECONDS", 10)?,
        items: env_num("REALNET_BENCH_ITEMS", 100_000)?,
        cold_runs: env_num("REALNET_BENCH_COLD_RUNS", 20)?,
        pg: pg_url.parse()?,
        pgbench,
        work: tempfile::tempdir()?,
    };
    // The servers get a runtime of their own (as under `realnet serve`); the driver blocks on
    // wrk and pgbench on another, so it never takes a server thread.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    driver.block_on(run(settings, servers.handle()))
}

async fn run(s: Settings, servers: &tokio::runtime::Handle) -> anyhow::Result<()> {
    println!(
        "Realnet benchmark: PostgreSQL on loopback, {} items, {} connections, {} s per run, 2 cores shared by all\n",
        s.items, s.connections, s.seconds
    );
    let db = fresh_database(&s.pg, "realnet_bench").await?;
    let seeder = PostgresStore::new(db.clone(), 2, None)?;
    seeder.migrate().await?;
    let ids = seed(&seeder, "big", s.items).await?;
    seed(&seeder, "small", SMALL).await?;
    analyze(&db).await?;
    let ids_file = s.work.path().join("ids.txt");
    std::fs::write(
        &ids_file,
        ids.iter()
            .step_by(10)
            .map(|id| format!("{id}\n"))
            .collect::<String>(),
    )?;

    // The servers' store lives on the servers' runtime, where its connections run.
    let store = Arc::new(PostgresStore::new(db.clone(), s.connections, None)?);
    let (big, token, big_rn) = servers
        .spawn(serve(store.clone(), db.clone(), s.connections, "big"))
        .await??;
    let (small, small_token, _) = servers
        .spawn(serve(store, db.clone(), s.connections, "small"))
        .await??;
    let member = [format!("Authorization: Bearer {token}")];
    let small_member = [format!("Authorization: Bearer {small_token}")];
    let bare = servers
        .spawn(serve_bare(db.clone(), s.connections))
        .await??;

    let get_script = s.work.path().join("get.lua");
    std::fs::write(
        &get_script,
        format!(
            r#"local ids = {{}}
for line in io.lines("{}") do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", "/api/items/" .. ids[math.random(#ids)]) end
"#,
            ids_file.display()
        ),
    )?;
    let create_script = s.work.path().join("create.lua");
    std::fs::write(
        &create_script,
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type": "Company", "name": "Bench Co", "attributes": {"domain": "bench.example.com", "employees": 10}}'
"#,
    )?;

    let login_script = s.work.path().join("login.lua");
    std::fs::write(
        &login_script,
        format!(
            r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"username": "bench", "password": "{MEMBER_PASSWORD}", "org": "big"}}'
"#
        ),
    )?;

    // Queries first: the creates add items to the big org.
    let query_big = wrk(&s, &format!("http://{big}{QUERY}"), None, &member)?;
    let query_small = wrk(&s, &format!("http://{small}{QUERY}"), None, &small_member)?;
    let get_public = wrk(
        &s,
        &format!("http://{big}/api/items"),
        Some(&get_script),
        &[],
    )?;
    let get = wrk(
        &s,
        &format!("http://{big}/api/items"),
        Some(&get_script),
        &member,
    )?;
    let create = wrk(
        &s,
        &format!("http://{big}/api/items"),
        Some(&create_script),
        &member,
    )?;
    let logins = wrk(
        &s,
        &format!("http://{big}/api/auth"),
        Some(&login_script),
        &[],
    )?;
    let get_bare = wrk(
        &s,
        &format!("http://{bare}/api/items"),
        Some(&get_script),
        &[],
    )?;
    let create_bare = wrk(
        &s,
        &format!("http://{bare}/api/items"),
        Some(&create_script),
        &[],
    )?;

    let pgbench_db = fresh_database(&s.pg, "realnet_pgbench").await?;
    let pg_args = pg_args(&pgbench_db);
    run_checked(Command::new(&s.pgbench).args(&pg_args).args([
        "-i",
        "-s",
        &(s.items / 100_000).max(1).to_string(),
        "-q",
    ]))?;
    let insert_script = s.work.path().join("insert.sql");
    std::fs::write(
        &insert_script,
        "\\set aid random(1, 100000)\nINSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, 0, CURRENT_TIMESTAMP);\n",
    )?;
    let select = pgbench(&s, &pg_args, &["-S"])?;
    let insert = pgbench(
        &s,
        &pg_args,
        &["-f", insert_script.to_str().unwrap_or_default()],
    )?;

    println!(
        "{:<34}{:>12}{:>10}{:>10}   {:<26}{:>10}{:>8}",
        "realnet (wrk)", "req/s", "p50", "p99", "baseline (pgbench)", "tps", "ratio"
    );
    let line = |name: &str, r: &WrkResult, base: &str, tps: Option<f64>| {
        let (tps_s, ratio) = match tps {
            Some(t) => (format!("{t:.0}"), format!("{:.2}", r.rps / t)),
            None => (String::new(), String::new()),
        };
        println!(
            "{name:<34}{:>12.0}{:>10}{:>10}   {base:<26}{tps_s:>10}{ratio:>8}",
            r.rps, r.p50, r.p99
        );
    };
    line(
        "get by id, member token",
        &get,
        "select-only (-S)",
        Some(select),
    );
    line(
        "get by id, public (no token)",
        &get_public,
        "select-only (-S)",
        Some(select),
    );
    line(
        "get by id, bare axum + tokio-postgres",
        &get_bare,
        "select-only (-S)",
        Some(select),
    );
    line(
        "create, member token",
        &create,
        "one-row insert",
        Some(insert),
    );
    line(
        "create, bare axum + tokio-postgres",
        &create_bare,
        "one-row insert",
        Some(insert),
    );
    line(
        &format!("query page of 50 at {}", s.items),
        &query_big,
        "",
        None,
    );
    line(
        &format!("query page of 50 at {SMALL}"),
        &query_small,
        "",
        None,
    );
    line("login (Argon2id verify)", &logins, "", None);
    println!(
        "\nget by id with a member token / without a token (both checked against the rules): {:.2}",
        get.rps / get_public.rps
    );
    let mut costs = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        password::hash(MEMBER_PASSWORD.to_string())
            .await
            .expect("one hash at a time is never refused");
        costs.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    costs.sort_by(f64::total_cmp);
    println!(
        "Argon2id (m={} KiB, t={}, p={}) per login: {:.1} ms median of 20 on one core",
        password::MEMORY_KIB,
        password::PASSES,
        password::LANES,
        costs[10]
    );
    let failed = |username: &'static str| {
        let rn = big_rn.clone();
        async move {
            let mut times = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                let refused =
                    login::login(&rn, "big", username, "not the password".into(), None).await;
                anyhow::ensure!(refused.is_err(), "a wrong password was accepted");
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            Ok(times[10])
        }
    };
    let (unknown, wrong) = (failed("nobody").await?, failed("bench").await?);
    println!(
        "failed login, median of 20: unknown user {unknown:.1} ms, wrong password {wrong:.1} ms (ratio {:.2})",
        unknown / wrong
    );
    println!(
        "\nquery page time at {} items / at {SMALL} items: {:.2} (throughput {:.0} vs {:.0} req/s)",
        s.items,
        query_small.rps / query_big.rps,
        query_big.rps,
        query_small.rps
    );
    for r in [
        &get,
        &get_public,
        &logins,
        &get_bare,
        &create,
        &create_bare,
        &query_big,
        &query_small,
    ] {
        if r.failures > 0 {
            println!(
                "WARNING: {} non-2xx responses in a run; the figures above are not valid",
                r.failures
            );
        }
    }
    cold_start(&s, &db, &big_rn).await
}

/// Creates (or recreates) database `name` and returns a config pointing at it.
async fn fresh_database(
    pg: &tokio_postgres::Config,
    name: &str,
) -> anyhow::Result<tokio_postgres::Config> {
    let (client, conn) = pg
        .connect(tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let mut config = pg.clone();
    config.dbname(name);
    Ok(config)
}

/// Refreshes the planner's statistics after the bulk load, as autovacuum would shortly (and
/// as `pgbench -i` does for its tables).
async fn analyze(db: &tokio_postgres::Config) -> anyhow::Result<()> {
    let (client, conn) = db.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute("VACUUM ANALYZE items").await?;
    Ok(())
}

/// Seeds `count` deals (and their company) into `org`, 1,000 per transaction; returns the ids.
async fn seed(store: &dyn ItemStore, org: &str, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let started = Instant::now();
    let item = |type_name: &str, name: String, attributes: Value| {
        let at = now();
        Item {
            id: Uuid::now_v7(),
            type_name: type_name.to_string(),
            name,
            parent: None,
            org: org.to_string(),
            owner: None,
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            version: 1,
            created_at: at,
            updated_at: at,
        }
    };
    let company = item("Company", "Acme".into(), json!({"domain": "acme.com"}));
    store.apply(org, &[Write::Create(company.clone())]).await?;
    let mut ids = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(1000) {
        let writes: Vec<Write> = (chunk * 1000..((chunk + 1) * 1000).min(count))
            .map(|i| {
                let deal = item(
                    "Deal",
                    format!("deal {i}"),
                    json!({"company": company.id.to_string(), "amount": (i % 997) as f64 * 10.0, "stage": STAGES[i % 5]}),
                );
                ids.push(deal.id);
                Write::Create(deal)
            })
            .collect();
        store.apply(org, &writes).await?;
    }
    println!(
        "seeded {count} items into org {org} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ids)
}

/// Serves the router for `org` on a free loopback port, with the org set up as `realnet init`
/// does, a rule letting the public read deals, and a member account `bench`; returns the
/// address, a login token of the member and the context.
async fn serve(
    store: Arc<PostgresStore>,
    db: tokio_postgres::Config,
    pool: usize,
    org: &'static str,
) -> anyhow::Result<(std::net::SocketAddr, String, Arc<Realnet>)> {
    let mut config = realnet_tests::config(DbConfig::Postgres {
        config: Box::new(db),
        pool_size: pool,
        ca_file: None,
    });
    config.default_org = org.to_string();
    // Many logins from one address, and failed ones timed below, are the point here.
    config.auth.max_failures_per_address = 10_000;
    config.auth.max_failures_per_username = 10_000;
    config.auth.max_failures = 10_000;
    let rn = Arc::new(realnet_tests::realnet(
        config,
        realnet_tests::registry(),
        store,
    ));
    rn.init_org(org, Some(MEMBER_PASSWORD.to_string())).await?;
    let admin = Principal::org_admin(org);
    let attributes = |v: Value| v.as_object().cloned().unwrap_or_default();
    let new = |type_name: &str, name: &str, a: Value| NewItem {
        type_name: type_name.into(),
        name: name.into(),
        parent: None,
        attributes: attributes(a),
    };
    ops::create(
        &rn,
        &admin,
        new(
            "Acl",
            "the public reads deals",
            json!({"principal": "public", "permissions": ["read"], "target_type": "Deal"}),
        ),
        None,
    )
    .await?;
    let (member, _) = ops::create(
        &rn,
        &admin,
        new(
            "Account",
            "bench",
            json!({"username": "bench", "password": MEMBER_PASSWORD}),
        ),
        None,
    )
    .await?;
    let token = login::issue(&rn, &member).await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = realnet::api::router(rn.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, token, rn))
}

/// The floor under `get by id` and `create`: axum routes running the same `SELECT` and
/// `INSERT` through the same pool, with no Realnet in between.
async fn serve_bare(
    db: tokio_postgres::Config,
    pool: usize,
) -> anyhow::Result<std::net::SocketAddr> {
    use axum::extract::{Path as UrlPath, State};
    let manager = deadpool_postgres::Manager::new(db, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(pool)
        .build()?;
    async fn get(
        State(pool): State<deadpool_postgres::Pool>,
        UrlPath(id): UrlPath<Uuid>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let Ok(client) = pool.get().await else {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let Ok(stmt) = client
            .prepare_cached(
                "SELECT id, name, attributes, version FROM items WHERE org = 'big' AND id = $1",
            )
            .await
        else {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        match client.query_opt(&stmt, &[&id]).await {
            Ok(Some(row)) => axum::Json(json!({
                "id": row.get::<_, Uuid>(0), "name": row.get::<_, String>(1),
                "attributes": row.get::<_, Value>(2), "version": row.get::<_, i64>(3)}))
            .into_response(),
            _ => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    /// The same insert Realnet makes for a create, without validation or the item model.
    async fn create(
        State(pool): State<deadpool_postgres::Pool>,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let Ok(client) = pool.get().await else {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let Ok(stmt) = client
            .prepare_cached("INSERT INTO items (id, org, type, name, parent, owner, attributes, search, version, created_at, updated_at) VALUES ($1, 'big', 'Company', $2, NULL, NULL, $3, $4, 1, now(), now())")
            .await
        else {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let id = Uuid::now_v7();
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let search = name.to_lowercase();
        match client
            .execute(&stmt, &[&id, &name, &body["attributes"], &search])
            .await
        {
            Ok(_) => (
                axum::http::StatusCode::CREATED,
                axum::Json(json!({"id": id, "name": name, "attributes": body["attributes"]})),
            )
                .into_response(),
            Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/api/items/{id}", axum::routing::get(get))
        .route("/api/items", axum::routing::post(create))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn wrk(
    s: &Settings,
    url: &str,
    script: Option<&Path>,
    headers: &[String],
) -> anyhow::Result<WrkResult> {
    realnet_tests::wrk::run(s.connections, s.seconds, url, script, headers)
}

fn pg_args(db: &tokio_postgres::Config) -> Vec<String> {
    let host = match db.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    vec![
        "-h".into(),
        host,
        "-p".into(),
        db.get_ports().first().copied().unwrap_or(5432).to_string(),
        "-U".into(),
        db.get_user().unwrap_or("postgres").to_string(),
        db.get_dbname().unwrap_or("postgres").to_string(),
    ]
}

fn pgbench(s: &Settings, pg_args: &[String], script: &[&str]) -> anyhow::Result<f64> {
    let out = run_checked(
        Command::new(&s.pgbench)
            .args(script)
            .args([
                "-n",
                "-M",
                "prepared",
                "-c",
                &s.connections.to_string(),
                "-j",
                "2",
                "-T",
                &s.seconds.to_string(),
            ])
            .args(pg_args),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next())
        .context("pgbench printed no tps")?
        .parse()
        .context("pgbench tps")
}

fn run_checked(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Time from process start to the first answered event, and peak resident memory then.
async fn cold_start(
    s: &Settings,
    db: &tokio_postgres::Config,
    big: &Realnet,
) -> anyhow::Result<()> {
    let api = PathBuf::from(
        std::env::var("REALNET_BENCH_API_BIN")
            .context("REALNET_BENCH_API_BIN is not set: run tests/bench")?,
    );
    let bin = |var: &str| -> anyhow::Result<PathBuf> {
        Ok(PathBuf::from(std::env::var(var).with_context(|| {
            format!("{var} is not set: run tests/bench")
        })?))
    };
    let (bare, worker, scheduler) = (
        bin("REALNET_BENCH_BARE_BIN")?,
        bin("REALNET_BENCH_WORKER_BIN")?,
        bin("REALNET_BENCH_SCHEDULER_BIN")?,
    );
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let event = |path: &str| -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            events.join(path),
        )?)?)
    };
    let ping = event("api/ping.json")?;
    let query = event("api/query-items.json")?;
    // The query event carries an identity provider's claims: link them to `admin` of `big`.
    let claims = &query["requestContext"]["authorizer"]["claims"];
    let admin = realnet::auth::identity::find_account(big, "big", "admin")
        .await?
        .context("the big org's admin")?;
    let link = ops::Change::Patch {
        name: None,
        parent: None,
        attributes: Some(
            json!({"idp_issuer": claims["iss"], "idp_subject": claims["sub"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    };
    ops::update(
        big,
        &Principal::org_admin("big"),
        admin.id,
        link,
        None,
        None,
    )
    .await?;
    let batch = event("worker/fifo-batch.json")?;
    let tick = event("scheduler/tick.json")?;
    let url = format!(
        "host={} port={} user={} dbname={}",
        pg_args(db)[1],
        pg_args(db)[3],
        db.get_user().unwrap_or("postgres"),
        db.get_dbname().unwrap_or("postgres")
    );
    let env = [
        ("REALNET_DB_TYPE", "postgresql"),
        ("REALNET_DB_URL", url.as_str()),
        ("REALNET_DEFAULT_ORG", "big"),
        ("REALNET_AUTH_MODE", "both"),
    ];
    let mut rows: Vec<(&str, Vec<f64>, u64)> = vec![
        ("bare lambda_http (baseline), ping", Vec::new(), 0),
        ("api, ping", Vec::new(), 0),
        ("api, first query (connects to PostgreSQL)", Vec::new(), 0),
        ("worker, first batch (2 jobs, PostgreSQL)", Vec::new(), 0),
        ("scheduler, first tick (PostgreSQL)", Vec::new(), 0),
    ];
    for _ in 0..s.cold_runs {
        for (row, (binary, event, env)) in [
            (&bare, &ping, &env[..0]),
            (&api, &ping, &env[..]),
            (&api, &query, &env[..]),
            (&worker, &batch, &env[..]),
            (&scheduler, &tick, &env[..]),
        ]
        .into_iter()
        .enumerate()
        {
            // A Runtime API per process: a killed function's pending poll would take the next
            // process's event.
            let runtime = RuntimeApi::start().await;
            let answer = runtime.queue(event.clone());
            let started = Instant::now();
            let mut child = runtime.spawn_function(binary, env);
            let response = tokio::time::timeout(Duration::from_secs(30), answer).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            let peak = peak_rss_kib(child.id()).unwrap_or(0);
            child.kill().ok();
            child.wait().ok();
            let response = response.context("no answer within 30 s")??;
            let answer = response.map_err(|e| anyhow::anyhow!("function error: {e}"))?;
            let answered = answer["statusCode"] == json!(200)
                || answer["batchItemFailures"].is_array()
                || answer["task"] == json!("tick");
            if !answered {
                bail!("cold start event answered {answer}");
            }
            rows[row].1.push(elapsed);
            rows[row].2 = rows[row].2.max(peak);
        }
    }
    println!(
        "\ncold start: process start to first answered event, {} runs each",
        s.cold_runs
    );
    println!("{:<46}{:>10}{:>10}{:>16}", "", "median", "p90", "peak RSS");
    for (name, mut times, peak) in rows {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{name:<46}{:>8.1}ms{:>8.1}ms{:>13.1}MiB",
            at(0.5),
            at(0.9),
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
