//! The `realnet` command as a user runs it: checking definitions, initialising, creating and
//! reading items, serving over real TCP, and refusing to start on bad configuration.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn realnet(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realnet"));
    cmd.args(args)
        .env("REALNET_DATA_DIR", data)
        .env_remove("REALNET_INIT_DIR")
        .env_remove("REALNET_DB_TYPE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run realnet")
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
        ("REALNET_SERVER_HOST", "0.0.0.0"),
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
    assert!(
        stdout(&first).contains("5 seed items created"),
        "{}",
        stdout(&first)
    );
    let again = realnet(data.path(), &["init"], &[]);
    assert!(
        stdout(&again).contains("0 seed items created, 5 already present"),
        "{}",
        stdout(&again)
    );

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

#[tokio::test]
async fn serve_answers_over_tcp() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
        .to_string();
    let mut server = Command::new(env!("CARGO_BIN_EXE_realnet"))
        .arg("serve")
        .env("REALNET_DATA_DIR", data.path())
        .env("REALNET_SERVER_PORT", &port)
        .env_remove("REALNET_INIT_DIR")
        .env_remove("REALNET_DB_TYPE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start realnet serve");
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
    let seeded: serde_json::Value = client
        .get(format!("{base}/api/items?type=App&sort=name"))
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
    server.kill().ok();
    server.wait().ok();
}
