//! The `realnet` command as a user runs it: checking definitions, initialising, creating and
//! reading items, managing orgs, accounts, groups, tokens and API keys, serving over real TCP
//! (first run included), and refusing to start on bad configuration.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn command(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realnet"));
    cmd.args(args)
        .env("REALNET_DATA_DIR", data)
        .env_remove("REALNET_INIT_DIR")
        .env_remove("REALNET_DB_TYPE")
        .env_remove("REALNET_ADMIN_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn realnet(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(data, args, env).output().expect("run realnet")
}

/// Runs `realnet` with `input` on its standard input.
fn realnet_with_input(data: &Path, args: &[&str], input: &str) -> Output {
    let mut child = command(data, args, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run realnet");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("output")
}

/// A `realnet serve` that is stopped when the test ends, even when it fails.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn types_check_accepts_the_shipped_folder_and_lists_every_error_of_a_broken_one() {
    let data = tempfile::tempdir().expect("temp dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../initialization");
    let ok = realnet(
        data.path(),
        &["types", "check", shipped.to_str().expect("path")],
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("ok"), "{}", stdout(&ok));

    let broken = realnet_tests::broken_init_dir();
    let bad = realnet(
        data.path(),
        &["types", "check", broken.path().to_str().expect("path")],
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    for e in realnet_tests::BROKEN_INIT_ERRORS {
        assert!(
            stderr(&bad).contains(e),
            "missing {e:?} in {}",
            stderr(&bad)
        );
    }
}

#[test]
fn serve_and_init_refuse_an_invalid_initialization_folder() {
    let data = tempfile::tempdir().expect("temp dir");
    let broken = realnet_tests::broken_init_dir();
    let dir = broken.path().to_str().expect("path");
    for command in ["serve", "init"] {
        let out = realnet(
            data.path(),
            &[command],
            &[("REALNET_INIT_DIR", dir), ("REALNET_SERVER_PORT", "1")],
        );
        assert_eq!(out.status.code(), Some(1), "{command}");
        for e in realnet_tests::BROKEN_INIT_ERRORS {
            assert!(
                stderr(&out).contains(e),
                "{command}: missing {e:?} in {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn bad_configuration_names_the_variable() {
    let data = tempfile::tempdir().expect("temp dir");
    for (var, value) in [
        ("REALNET_SERVER_PORT", "eighty"),
        ("REALNET_DB_TYPE", "mysql"),
        ("REALNET_AUTH_MODE", "jwt"),
        ("REALNET_ADMIN_PASSWORD", "short"),
    ] {
        let out = realnet(data.path(), &["serve"], &[(var, value)]);
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        assert!(stderr(&out).contains(var), "{var}: {}", stderr(&out));
    }
}

#[test]
fn init_create_get_and_info() {
    let data = tempfile::tempdir().expect("temp dir");
    let first = realnet(data.path(), &["init"], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // The org, 7 seed items (4 of them access rules) and the first admin.
    assert!(
        stdout(&first).contains("9 seed items created"),
        "{}",
        stdout(&first)
    );
    assert!(stdout(&first).contains("password: "), "{}", stdout(&first));
    let again = realnet(data.path(), &["init"], &[]);
    assert!(
        stdout(&again).contains("0 seed items created, 8 already present"),
        "{}",
        stdout(&again)
    );
    assert!(!stdout(&again).contains("password"), "{}", stdout(&again));

    let created = realnet(
        data.path(),
        &[
            "create",
            "Company",
            "--name",
            "Acme",
            "--attr",
            "employees=12",
            "--attr",
            "domain=acme.com",
        ],
        &[],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let item: serde_json::Value = serde_json::from_slice(&created.stdout).expect("JSON item");
    assert_eq!(item["attributes"]["employees"], 12);
    let id = item["id"].as_str().expect("id");

    let one = realnet(data.path(), &["get", "Company", id], &[]);
    let got: serde_json::Value = serde_json::from_slice(&one.stdout).expect("JSON item");
    assert_eq!(got, item);
    let list = realnet(data.path(), &["get", "Company"], &[]);
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON list");
    assert_eq!(items.as_array().map(Vec::len), Some(1));

    let invalid = realnet(
        data.path(),
        &["create", "Company", "--name", "X", "--attr", "employees=-3"],
        &[],
    );
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        stderr(&invalid).contains("employees: must be at least 0"),
        "{}",
        stderr(&invalid)
    );

    let info = realnet(data.path(), &["info"], &[]);
    let text = stdout(&info);
    assert!(text.contains("store: sqlite"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("default / Company") && l.contains(" 1 ")),
        "{text}"
    );
}

fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
        .to_string()
}

/// The first run of `realnet serve` on an empty data folder creates the admin, prints its
/// generated password once, and that password logs in over TCP.
#[tokio::test]
async fn first_serve_prints_the_admin_password_which_logs_in() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = command(data.path(), &["serve"], &[("REALNET_SERVER_PORT", &port)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start realnet serve");
    let out = child.stdout.take().expect("stdout");
    let _server = Server(child);
    let mut password = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("read stdout");
        if let Some(p) = line.trim().strip_prefix("password: ") {
            password = Some(p.to_string());
        }
        if line.contains("listening on") {
            break;
        }
    }
    let password = password.expect("the first run prints the admin password");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let login = |password: String| {
        client
            .post(format!("{base}/api/auth"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(
        login("wrong password".into())
            .await
            .expect("login")
            .status(),
        401
    );
    let answer = login(password).await.expect("login");
    assert_eq!(answer.status(), 200);
    let session: serde_json::Value = answer.json().await.expect("JSON");
    let token = session["token"].as_str().expect("token");

    let public = client
        .get(format!("{base}/api/items"))
        .send()
        .await
        .expect("list");
    assert_eq!(public.status(), 401);
    let seeded: serde_json::Value = client
        .get(format!("{base}/api/items?type=App&sort=name"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = seeded["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, vec!["CRM", "Files"], "seed items from apps.json");
}

#[tokio::test]
async fn serve_answers_over_tcp() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = Server(
        command(
            data.path(),
            &["serve"],
            &[
                ("REALNET_SERVER_PORT", &port),
                ("REALNET_ADMIN_PASSWORD", "a password from the environment"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start realnet serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let ping = loop {
        match client.get(format!("{base}/ping")).send().await {
            Ok(r) => break r,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("realnet serve did not answer: {e}"),
        }
    };
    assert_eq!(ping.text().await.expect("body"), "pong");
    let login = client
        .post(format!("{base}/api/auth"))
        .json(&serde_json::json!({"username": "admin", "password": "a password from the environment"}))
        .send()
        .await
        .expect("login");
    assert_eq!(
        login.status(),
        200,
        "REALNET_ADMIN_PASSWORD is the admin's password"
    );
}

/// The identity commands, checked through what a client sees: tokens that work or do not.
#[tokio::test]
async fn org_account_group_token_and_apikey_commands() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let ok = |o: &Output| assert!(o.status.success(), "{}{}", stdout(o), stderr(o));

    let org = realnet(dir, &["org", "create", "acme"], &[]);
    ok(&org);
    assert!(
        stdout(&org).contains("admin account of org \"acme\""),
        "{}",
        stdout(&org)
    );
    let bad = realnet(dir, &["org", "create", "Not An Org"], &[]);
    assert_eq!(bad.status.code(), Some(1));

    ok(&realnet_with_input(
        dir,
        &[
            "account",
            "create",
            "carol",
            "--org",
            "acme",
            "--password-stdin",
        ],
        "carol's long password\n",
    ));
    let taken = realnet_with_input(
        dir,
        &[
            "account",
            "create",
            "carol",
            "--org",
            "acme",
            "--password-stdin",
        ],
        "another long password\n",
    );
    assert_eq!(taken.status.code(), Some(1));
    assert!(stderr(&taken).contains("taken"), "{}", stderr(&taken));
    let weak = realnet_with_input(
        dir,
        &["account", "create", "dave", "--password-stdin"],
        "pw\n",
    );
    assert!(stderr(&weak).contains("password"), "{}", stderr(&weak));

    let group = realnet(
        dir,
        &["group", "add", "sales", "carol", "--org", "acme"],
        &[],
    );
    ok(&group);
    let token = realnet(dir, &["token", "create", "carol", "--org", "acme"], &[]);
    ok(&token);
    let token = stdout(&token).trim().to_string();
    let key = realnet(
        dir,
        &[
            "apikey",
            "create",
            "crm-sync",
            "--account",
            "carol",
            "--org",
            "acme",
        ],
        &[],
    );
    ok(&key);
    let key = stdout(&key).trim().to_string();
    assert!(
        key.starts_with("rnk_") && token.starts_with("rn_"),
        "{key} {token}"
    );

    let config = realnet::config::Config::from_lookup(|k| {
        (k == "REALNET_DATA_DIR").then(|| dir.to_str().expect("utf-8").to_string())
    })
    .expect("config");
    let open = || realnet::Realnet::from_config(config.clone()).expect("open");
    let rn = open();
    let carol = rn
        .principal_for_token(&token)
        .await
        .expect("carol's token works");
    assert_eq!(carol.org, "acme");
    assert_eq!(carol.groups.len(), 1, "member of sales");
    let via_key = rn
        .principal_for_token(&key)
        .await
        .expect("the API key works");
    assert_eq!(via_key.account, carol.account);

    ok(&realnet(
        dir,
        &["token", "revoke", "carol", "--org", "acme"],
        &[],
    ));
    assert!(open().principal_for_token(&token).await.is_err(), "revoked");
    assert!(
        open().principal_for_token(&key).await.is_ok(),
        "API keys stay"
    );

    let key_id = realnet::auth::token::hash(&key);
    let stored = open()
        .store
        .token(&key_id)
        .await
        .expect("read")
        .expect("stored");
    let id = stored.api_key.expect("an API key").to_string();
    ok(&realnet(
        dir,
        &["apikey", "revoke", &id, "--org", "acme"],
        &[],
    ));
    assert!(
        open().principal_for_token(&key).await.is_err(),
        "key revoked"
    );

    let token = stdout(&realnet(
        dir,
        &["token", "create", "carol", "--org", "acme"],
        &[],
    ))
    .trim()
    .to_string();
    ok(&realnet(
        dir,
        &["account", "disable", "carol", "--org", "acme"],
        &[],
    ));
    assert!(
        open().principal_for_token(&token).await.is_err(),
        "disabled"
    );
    let refused = realnet(dir, &["token", "create", "carol", "--org", "acme"], &[]);
    assert_eq!(refused.status.code(), Some(1));
}

/// With every log line on (`RUST_LOG=trace`), no password, login token or API key reaches the
/// log, whether a login fails or succeeds, a token is used or revoked, or a key is created.
#[tokio::test]
async fn secrets_never_reach_the_log() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let password = "the admin's log-test password";
    let mut child = command(
        data.path(),
        &["serve"],
        &[
            ("REALNET_SERVER_PORT", &port),
            ("REALNET_ADMIN_PASSWORD", password),
            ("RUST_LOG", "trace"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start realnet serve");
    let (out, err) = (
        child.stdout.take().expect("out"),
        child.stderr.take().expect("err"),
    );
    let server = Server(child);
    let collect = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut BufReader::new(r), &mut text).ok();
            text
        })
    };
    let (out, err) = (collect(Box::new(out)), collect(Box::new(err)));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/ping")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login = |password: &str| {
        client
            .post(format!("{base}/api/auth"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
    };
    let wrong = "a wrong password to log";
    assert_eq!(login(wrong).await.expect("login").status(), 401);
    let session: serde_json::Value = login(password)
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let token = session["token"].as_str().expect("token").to_string();
    let me = client
        .get(format!("{base}/api/auth"))
        .bearer_auth(&token)
        .send()
        .await;
    assert_eq!(me.expect("me").status(), 200);
    let account: serde_json::Value = client
        .post(format!("{base}/api/items"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"type": "Account", "name": "svc",
            "attributes": {"username": "svc", "password": "the service's password"}}))
        .send()
        .await
        .expect("account")
        .json()
        .await
        .expect("JSON");
    let key: serde_json::Value = client
        .post(format!("{base}/api/items"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"type": "ApiKey", "name": "k",
            "attributes": {"account": account["id"]}}))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("JSON");
    let key = key["key"].as_str().expect("key").to_string();
    let used = client
        .get(format!("{base}/api/items"))
        .bearer_auth(&key)
        .send()
        .await;
    assert_eq!(used.expect("list").status(), 200);
    let bye = client
        .delete(format!("{base}/api/auth"))
        .bearer_auth(&token)
        .send()
        .await;
    assert_eq!(bye.expect("logout").status(), 204);
    drop(server);
    let log = format!(
        "{}{}",
        out.join().expect("stdout"),
        err.join().expect("stderr")
    );
    assert!(
        log.contains("/api/auth"),
        "the requests were logged:\n{log}"
    );
    for secret in [
        password,
        wrong,
        "the service's password",
        &token,
        &key,
        &token[3..],
        &key[4..],
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}

/// `realnet queue bridge` does what an SQS event source mapping would: messages a producer
/// sent (in moto) are handed to the worker, in process or through a Lambda Invoke API, and
/// deleted unless reported as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bridge_feeds_the_worker() {
    realnet_tests::aws_endpoint();
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let init = realnet(
        dir,
        &["init"],
        &[("REALNET_ADMIN_PASSWORD", "an admin password")],
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let sqs = aws_sdk_sqs::Client::new(&realnet::aws::sdk_config().await);
    let name = format!("bridge-{}", uuid::Uuid::now_v7().simple());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let job = |company: &str| {
        serde_json::json!({"kind": "items.create", "org": "default", "actor": "admin",
            "payload": {"items": [{"type": "Company", "name": company}]}})
        .to_string()
    };
    for body in [job("Bridged"), "not json".to_string()] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let out = realnet(
        dir,
        &["queue", "bridge", "--queue-url", &url, "--once"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("received 2, failed 0"),
        "{}",
        stdout(&out)
    );
    let listed = realnet(dir, &["get", "Company"], &[]);
    assert!(stdout(&listed).contains("Bridged"), "{}", stdout(&listed));
    let left = sqs
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .expect("receive");
    assert!(left.messages.unwrap_or_default().is_empty(), "all deleted");

    // Through a Lambda Invoke API (what `cargo lambda watch` serves): here a stand-in that
    // runs the worker on the same data folder and answers as the function would.
    let config = realnet::config::Config::from_lookup(|k| {
        (k == "REALNET_DATA_DIR").then(|| dir.to_str().expect("utf-8").to_string())
    })
    .expect("config");
    let rn = std::sync::Arc::new(realnet::Realnet::from_config(config).expect("open"));
    let app = axum::Router::new().route(
        "/2015-03-31/functions/worker/invocations",
        axum::routing::post(
            move |axum::Json(event): axum::Json<aws_lambda_events::event::sqs::SqsEvent>| {
                let rn = rn.clone();
                async move {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    axum::Json(realnet::jobs::worker::handle(rn, event, deadline).await)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    sqs.send_message()
        .queue_url(&url)
        .message_body(job("Invoked"))
        .send()
        .await
        .expect("send");
    let invoke = format!("http://{addr}/2015-03-31/functions/worker/invocations");
    let out = tokio::task::spawn_blocking({
        let (dir, url) = (dir.to_path_buf(), url.clone());
        move || {
            realnet(
                &dir,
                &[
                    "queue",
                    "bridge",
                    "--queue-url",
                    &url,
                    "--invoke",
                    &invoke,
                    "--once",
                ],
                &[],
            )
        }
    })
    .await
    .expect("join");
    assert!(
        stdout(&out).contains("received 1, failed 0"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let listed = realnet(dir, &["get", "Company"], &[]);
    assert!(stdout(&listed).contains("Invoked"), "{}", stdout(&listed));
}
