//! The `realnet` command as a user runs it: checking definitions, initialising, creating and
//! reading items, managing orgs, accounts, groups, tokens and API keys, serving over real TCP
//! (first run included), and refusing to start on bad configuration.

use std::io::{BufReader, Write};
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

/// The first admin's generated password, from the file a run whose output was not a terminal
/// wrote it to, after checking that only its owner can read that file.
fn password_file(file: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{} is private", file.display());
    let text = std::fs::read_to_string(file).expect("read the password file");
    let password = text.trim_end().to_string();
    assert!(password.len() >= 10, "a password: {text:?}");
    password
}

/// The context the commands work on in `dir`, opened by the test.
fn open(dir: &Path) -> realnet::Realnet {
    let config = realnet::config::Config::from_lookup(|k| {
        (k == "REALNET_DATA_DIR").then(|| dir.to_str().expect("utf-8").to_string())
    })
    .expect("config");
    realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("open")
}

/// Whether `password` is the password of `username` in `org`.
async fn logs_in(dir: &Path, org: &str, username: &str, password: &str) -> bool {
    let rn = open(dir);
    let account = realnet::auth::identity::find_account(&rn, org, username)
        .await
        .expect("query")
        .expect("the account");
    let stored = rn.store.password(org, account.id).await.expect("read");
    realnet::auth::password::verify(password.to_string(), stored)
        .await
        .expect("a password check, not a busy pool")
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
        ("REALNET_CORS_ORIGINS", "app.example.com/"),
        ("REALNET_REQUEST_TIMEOUT", "forever"),
        ("REALNET_MAX_CONCURRENT_REQUESTS", "0"),
    ] {
        let out = realnet(data.path(), &["serve"], &[(var, value)]);
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        assert!(stderr(&out).contains(var), "{var}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn init_create_get_and_info() {
    let data = tempfile::tempdir().expect("temp dir");
    let first = realnet(data.path(), &["init"], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // 7 seed items (4 of them access rules), as `types check` counts them; the org's item
    // and its first admin are not seeds.
    assert!(
        stdout(&first).contains("7 seed items created, 0 already present"),
        "{}",
        stdout(&first)
    );
    // Not on a terminal: the password goes to a private file, and only its path is shown.
    let file = data.path().join("initial-admin-password");
    let password = password_file(&file);
    assert!(
        stdout(&first).contains(&format!("password: in {}", file.display())),
        "{}",
        stdout(&first)
    );
    for text in [stdout(&first), stderr(&first)] {
        assert!(!text.contains(&password), "the password is shown: {text}");
    }
    assert!(logs_in(data.path(), "default", "admin", &password).await);
    // `types check` counts the same seed items as `init` makes.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../initialization");
    let check = realnet(
        data.path(),
        &["types", "check", shipped.to_str().expect("path")],
        &[],
    );
    assert!(
        stdout(&check).contains(": 20 types, 7 seed items (with the linked extensions'): ok"),
        "{}",
        stdout(&check)
    );
    let again = realnet(data.path(), &["init"], &[]);
    assert!(
        stdout(&again).contains("0 seed items created, 7 already present"),
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

/// Collects what a child writes to `stream`, until it closes.
fn collect(stream: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stream), &mut text).ok();
        text
    })
}

async fn wait_for_ping(base: &str) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/ping")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first run of `realnet serve` on an empty data folder, its output going to a log,
/// creates the admin and writes its generated password to a private file in the data folder
/// (never to the log), and that password logs in over TCP.
#[tokio::test]
async fn first_serve_keeps_the_admin_password_out_of_the_log_and_it_logs_in() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = command(data.path(), &["serve"], &[("REALNET_SERVER_PORT", &port)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start realnet serve");
    let (out, err) = (
        collect(child.stdout.take().expect("stdout")),
        collect(child.stderr.take().expect("stderr")),
    );
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_ping(&base).await;
    let password = password_file(&data.path().join("initial-admin-password"));
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
    let answer = login(password.clone()).await.expect("login");
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
    drop(server);
    let log = format!(
        "{}{}",
        out.join().expect("stdout"),
        err.join().expect("stderr")
    );
    assert!(log.contains("initial-admin-password"), "{log}");
    assert!(
        !log.contains(&password),
        "the password is in the log:\n{log}"
    );
}

/// On a terminal, `realnet init` shows the generated password and writes no file.
#[test]
fn init_on_a_terminal_shows_the_password() {
    let data = tempfile::tempdir().expect("temp dir");
    let binary = env!("CARGO_BIN_EXE_realnet");
    // `script` runs the command on a pseudo-terminal and copies what it shows.
    let shown = Command::new("script")
        .args(["-qefc", &format!("'{binary}' init"), "/dev/null"])
        .env("REALNET_DATA_DIR", data.path())
        .env_remove("REALNET_INIT_DIR")
        .env_remove("REALNET_DB_TYPE")
        .env_remove("REALNET_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run realnet init under script (util-linux)");
    assert!(
        shown.status.success(),
        "{}{}",
        stdout(&shown),
        stderr(&shown)
    );
    let text = stdout(&shown);
    let password = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password shown: {text}"));
    assert!(text.contains("shown only now"), "{text}");
    assert!(!data.path().join("initial-admin-password").exists());
    assert!(password.len() >= 10, "{password:?}");
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
    let acme_admin = password_file(&dir.join("initial-admin-password-acme"));
    assert!(!stdout(&org).contains(&acme_admin), "{}", stdout(&org));
    assert!(logs_in(dir, "acme", "admin", &acme_admin).await);
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
        &[
            "account",
            "create",
            "dave",
            "--org",
            "acme",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert_eq!(weak.status.code(), Some(1));
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

    let open = || open(dir);
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

    let revoked = realnet(dir, &["token", "revoke", "carol", "--org", "acme"], &[]);
    ok(&revoked);
    // It says when servers already running see the revocation.
    assert!(
        stdout(&revoked).contains("within 30s (REALNET_AUTH_CACHE_TTL)"),
        "{}",
        stdout(&revoked)
    );
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

/// Every item of every org the store in `dir` holds.
async fn everything(dir: &Path) -> Vec<realnet::item::Item> {
    let rn = open(dir);
    let mut all = Vec::new();
    for org in ["default", "nope", "acme"] {
        let mut query = realnet_tests::query(&[("limit", "200")]);
        loop {
            let page = rn.store.query(org, &query).await.expect("query");
            all.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    all
}

/// Every command that names an org refuses one that was never set up, saying how to set it
/// up, and writes nothing: `account create eve --admin --org nope` makes no tenant.
#[tokio::test]
async fn a_misspelled_org_is_refused_and_nothing_is_written() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let env = [("REALNET_ADMIN_PASSWORD", "the admin's own password")];
    // Before `realnet init`, even the default org is refused.
    let early = realnet_with_input(
        dir,
        &["account", "create", "eve", "--admin", "--password-stdin"],
        "eve's long password\n",
    );
    assert_eq!(early.status.code(), Some(1));
    assert!(
        stderr(&early).contains("realnet init"),
        "{}",
        stderr(&early)
    );
    assert!(everything(dir).await.is_empty());

    assert!(realnet(dir, &["init"], &env).status.success());
    let before = everything(dir).await;
    let id = uuid::Uuid::now_v7().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["account", "create", "eve", "--admin", "--org", "nope"],
        vec!["account", "disable", "admin", "--org", "nope"],
        vec!["group", "add", "sales", "admin", "--org", "nope"],
        vec!["token", "create", "admin", "--org", "nope"],
        vec!["token", "revoke", "admin", "--org", "nope"],
        vec![
            "apikey",
            "create",
            "sync",
            "--account",
            "admin",
            "--org",
            "nope",
        ],
        vec!["apikey", "revoke", &id, "--org", "nope"],
        vec!["create", "Company", "--name", "Acme", "--org", "nope"],
        vec!["get", "Company", "--org", "nope"],
    ];
    for args in &commands {
        let out = realnet(dir, args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let message = stderr(&out);
        assert!(
            message.contains("no org \"nope\"")
                && message.contains("realnet org create nope")
                && message.contains("default"),
            "{args:?}: {message}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
    let with_password = realnet_with_input(
        dir,
        &[
            "account",
            "create",
            "eve",
            "--admin",
            "--org",
            "nope",
            "--password-stdin",
        ],
        "eve's long password\n",
    );
    assert_eq!(with_password.status.code(), Some(1));
    let bad_name = realnet(dir, &["token", "create", "admin", "--org", "No Pe"], &env);
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(
        stderr(&bad_name).contains("not an org name"),
        "{}",
        stderr(&bad_name)
    );
    let nobody = realnet(dir, &["group", "add", "sales", "nobody"], &env);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(
        stderr(&nobody).contains("realnet account create nobody"),
        "{}",
        stderr(&nobody)
    );
    assert_eq!(everything(dir).await, before, "nothing written");
    assert_eq!(
        open(dir).store.orgs().await.expect("orgs"),
        vec!["default".to_string()]
    );
    assert!(!dir.join("initial-admin-password-nope").exists());

    // Set up with `realnet org create`, the org takes accounts.
    assert!(
        realnet(dir, &["org", "create", "nope"], &env)
            .status
            .success()
    );
    let eve = realnet_with_input(
        dir,
        &[
            "account",
            "create",
            "eve",
            "--org",
            "nope",
            "--password-stdin",
        ],
        "eve's long password\n",
    );
    assert!(eve.status.success(), "{}", stderr(&eve));
    assert!(logs_in(dir, "nope", "eve", "eve's long password").await);
}

/// `realnet create` acts as an account of the org, which owns the item: the org's first admin
/// by default, or `--as USERNAME` with that account's rights. A `Schedule` made so runs.
#[tokio::test]
async fn create_acts_as_an_account_that_owns_the_item() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let env = [("REALNET_ADMIN_PASSWORD", "the admin's own password")];
    assert!(realnet(dir, &["init"], &env).status.success());
    let carol = realnet_with_input(
        dir,
        &["account", "create", "carol", "--password-stdin"],
        "carol's long password\n",
    );
    assert!(carol.status.success(), "{}", stderr(&carol));
    let rn = open(dir);
    let id_of = |username: &'static str| {
        let rn = &rn;
        async move {
            realnet::auth::identity::find_account(rn, "default", username)
                .await
                .expect("query")
                .expect("account")
                .id
                .to_string()
        }
    };
    let (admin, carol) = (id_of("admin").await, id_of("carol").await);
    let created = |args: &[&str]| {
        let out = realnet(dir, args, &env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON item")
    };
    let by_admin = created(&["create", "Company", "--name", "Acme"]);
    assert_eq!(by_admin["owner"], admin.as_str());
    let by_carol = created(&["create", "Company", "--name", "Beta", "--as", "carol"]);
    assert_eq!(by_carol["owner"], carol.as_str());

    let before = everything(dir).await;
    for (args, says) in [
        (
            vec!["create", "Company", "--name", "X", "--as", "nobody"],
            "no enabled account \"nobody\"",
        ),
        // Carol's rights: members may not create access rules.
        (
            vec![
                "create",
                "Acl",
                "--name",
                "mine",
                "--as",
                "carol",
                "--attr",
                "principal=members",
                "--attr",
                "permissions=[\"read\"]",
                "--attr",
                "target_type=Item",
            ],
            "may not create Acl",
        ),
        (
            vec!["create", "Org", "--name", "sneaky"],
            "realnet org create",
        ),
        (vec!["create", "Job", "--name", "stuck"], "POST /api/jobs"),
    ] {
        let out = realnet(dir, &args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(everything(dir).await, before, "nothing written");

    let job = r#"{"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "Nightly"}]}}"#;
    let schedule = created(&[
        "create",
        "Schedule",
        "--name",
        "nightly",
        "--attr",
        "cron=* * * * *",
        "--attr",
        &format!("job={job}"),
    ]);
    assert_eq!(schedule["owner"], admin.as_str());
    let rn = std::sync::Arc::new(open(dir));
    let local = rn.use_local_queue().expect("an in-process queue");
    let _jobs = local.take_receiver().await;
    let at = schedule["updated_at"]
        .as_str()
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .expect("updated_at")
        + chrono::Duration::minutes(1);
    let report = realnet::schedule::tick(&rn, at).await.expect("tick");
    assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");
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
/// A queue that does not exist is named as SQS names it, in one line: not the SDK's debug
/// text of the whole HTTP response.
#[test]
fn queue_bridge_says_in_one_line_that_the_queue_does_not_exist() {
    let endpoint = realnet_tests::aws_endpoint();
    let data = tempfile::tempdir().expect("temp dir");
    let init = realnet(
        data.path(),
        &["init"],
        &[("REALNET_ADMIN_PASSWORD", "an admin password")],
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let url = format!("{endpoint}/123456789012/no-such-queue");
    let out = realnet(
        data.path(),
        &["queue", "bridge", "--queue-url", &url, "--once"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("QueueDoesNotExist") || message.contains("NonExistentQueue"),
        "{message}"
    );
    for debug in ["ServiceError {", "raw: Response", "SdkBody"] {
        assert!(!message.contains(debug), "{debug:?} in {message}");
    }
}

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
    // The producer proves who it is with an API key of the account it acts as.
    let key = realnet(
        dir,
        &["apikey", "create", "producer", "--account", "admin"],
        &[],
    );
    assert!(key.status.success(), "{}", stderr(&key));
    let key = stdout(&key).trim().to_string();
    let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(&key)
        .build()
        .expect("attribute");
    let send = |body: String| {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .message_attributes(realnet::jobs::envelope::API_KEY, attribute.clone())
            .send()
    };
    for body in [job("Bridged"), "not json".to_string()] {
        send(body).await.expect("send");
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
    let rn = std::sync::Arc::new(
        realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("open"),
    );
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
    send(job("Invoked")).await.expect("send");
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

/// `realnet serve --port` listens there; SIGTERM (what `docker stop` and systemd send) stops
/// it cleanly, with a line saying so; its log, not a terminal, holds no colour codes.
#[tokio::test]
async fn serve_stops_on_sigterm_and_logs_plain_text() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = command(
        data.path(),
        &["serve", "--port", &port],
        &[("REALNET_ADMIN_PASSWORD", "a password from the environment")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start realnet serve");
    let out = collect(child.stdout.take().expect("stdout"));
    let err = collect(child.stderr.take().expect("stderr"));
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_ping(&base).await;
    let pid = server.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut server = server;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let log = format!(
        "{}{}",
        out.join().expect("stdout"),
        err.join().expect("stderr")
    );
    assert!(log.contains("server stopped"), "{log}");
    assert!(
        log.contains("signal=\"terminate\"") || log.contains("signal=terminate"),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

/// `realnet info | head -1`: the reader goes away; realnet exits quietly, not with a panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let data = tempfile::tempdir().expect("temp dir");
    assert!(realnet(data.path(), &["init"], &[]).status.success());
    let mut child = command(data.path(), &["info"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run realnet info");
    // Close the reading end at once, as `head` does once it has its lines.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("output");
    let err = stderr(&output);
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.status.success(), "{:?}: {err}", output.status);
}

/// A command that reads or changes data, run where there is no store, says so and names
/// REALNET_DATA_DIR, instead of quietly making a new, empty one.
#[test]
fn a_command_without_a_store_names_the_data_folder() {
    let data = tempfile::tempdir().expect("temp dir");
    for args in [
        &["info"][..],
        &["get", "Company"],
        &["token", "create", "admin"],
    ] {
        let out = realnet(data.path(), args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("REALNET_DATA_DIR") && stderr(&out).contains("realnet init"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(
        std::fs::read_dir(data.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing was made"
    );
}
