//! The `api` binary under a Lambda Runtime API: it answers the sample events in `events/api/`
//! (API Gateway HTTP API v2 and REST API v1, a function URL, an Application Load Balancer
//! target group) as `cargo lambda invoke api --data-file ...`
//! would show, and refuses to start on an invalid initialization folder. The create and query
//! events carry the claims of an API Gateway authorizer (issuer and subject) that the account
//! `admin` is linked to, so the function runs with `REALNET_AUTH_MODE=both` on a store that
//! `realnet init` set up and `realnet account link` linked.

use std::path::PathBuf;
use std::time::Duration;

use realnet_tests::lambda_runtime::RuntimeApi;
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/api")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("sample events are JSON")
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

/// Links `admin` to the issuer and subject the sample events' claims carry, as `realnet
/// account link` does.
async fn link_the_sample_identity(rn: &realnet::Realnet) {
    let claims = &event("create-item.json")["requestContext"]["authorizer"]["jwt"]["claims"];
    let org = rn.config.default_org.clone();
    let admin = realnet::auth::identity::find_account(rn, &org, "admin")
        .await
        .expect("query")
        .expect("the first admin");
    let change = realnet::item::ops::Change::Patch {
        name: None,
        parent: None,
        attributes: serde_json::json!({"idp_issuer": claims["iss"], "idp_subject": claims["sub"]})
            .as_object()
            .cloned(),
    };
    realnet::item::ops::update(
        rn,
        &realnet::auth::Principal::org_admin(&org),
        admin.id,
        change,
        None,
        None,
    )
    .await
    .expect("link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_sample_events() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let config = realnet::config::Config::from_lookup(|k| {
        (k == "REALNET_DATA_DIR").then(|| dir.to_string())
    })
    .expect("config");
    let rn = realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("store");
    rn.init().await.expect("init");
    link_the_sample_identity(&rn).await;
    let runtime = RuntimeApi::start().await;
    let mut function = runtime.spawn_function(
        std::path::Path::new(env!("CARGO_BIN_EXE_api")),
        &[("REALNET_DATA_DIR", dir), ("REALNET_AUTH_MODE", "both")],
    );

    let ping = runtime
        .invoke(event("ping.json"))
        .await
        .expect("ping answered");
    assert_eq!(ping["statusCode"], 200, "{ping}");
    assert_eq!(ping["body"], "pong");
    assert_eq!(
        ping["headers"]["x-request-id"], "evt-ping-0001",
        "API Gateway's request id"
    );

    let created = runtime
        .invoke(event("create-item.json"))
        .await
        .expect("create answered");
    assert_eq!(created["statusCode"], 201, "{created}");
    assert_eq!(body(&created)["name"], "Acme");
    assert_eq!(body(&created)["attributes"]["employees"], 12);

    let listed = runtime
        .invoke(event("query-items.json"))
        .await
        .expect("query answered");
    assert_eq!(listed["statusCode"], 200, "{listed}");
    let names: Vec<Value> = body(&listed)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names, vec![Value::from("Acme")]);

    // Without the authorizer's claims, the same bearer header is not a Realnet token.
    let mut forged = event("query-items.json");
    forged["requestContext"]
        .as_object_mut()
        .expect("context")
        .remove("authorizer");
    let refused = runtime.invoke(forged).await.expect("answered");
    assert_eq!(refused["statusCode"], 401, "{refused}");

    let bad = runtime
        .invoke(event("bad-request.json"))
        .await
        .expect("bad request answered");
    assert_eq!(bad["statusCode"], 400, "{bad}");
    assert_eq!(body(&bad)["error"]["code"], "invalid_json");

    // A function URL sends the HTTP API's v2 shape from another domain; a Realnet token
    // authenticates the caller (no authorizer stands in front of a URL).
    let ping = runtime
        .invoke(event("function-url-ping.json"))
        .await
        .expect("URL ping answered");
    assert_eq!(ping["statusCode"], 200, "{ping}");
    assert_eq!(ping["body"], "pong");
    assert_eq!(ping["headers"]["x-request-id"], "evt-url-ping-0001");
    let org = rn.config.default_org.clone();
    let admin = realnet::auth::identity::find_account(&rn, &org, "admin")
        .await
        .expect("query")
        .expect("the first admin");
    let session = realnet::auth::login::issue(&rn, &admin)
        .await
        .expect("token");
    let mut create = event("function-url-create-item.json");
    create["headers"]["authorization"] = format!("Bearer {}", session.token).into();
    let created = runtime.invoke(create).await.expect("URL create answered");
    assert_eq!(created["statusCode"], 201, "{created}");
    assert_eq!(body(&created)["name"], "Via URL");

    // An Application Load Balancer's target group event, answered in its own shape (a
    // status description beside the code), with the Lambda invocation's request id.
    let ping = runtime
        .invoke(event("alb-ping.json"))
        .await
        .expect("ALB ping answered");
    assert_eq!(ping["statusCode"], 200, "{ping}");
    assert_eq!(ping["statusDescription"], "200 OK", "{ping}");
    assert_eq!(ping["body"], "pong");
    assert!(
        ping["headers"]["x-request-id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{ping}"
    );
    let anonymous = runtime
        .invoke(event("alb-list-anonymous.json"))
        .await
        .expect("ALB list answered");
    assert_eq!(anonymous["statusCode"], 401, "{anonymous}");
    assert_eq!(
        body(&anonymous)["error"]["code"],
        "unauthorized",
        "{anonymous}"
    );

    function.kill().ok();
    function.wait().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_initialization_folder_stops_start_up_with_every_error() {
    let init = realnet_tests::broken_init_dir();
    let runtime = RuntimeApi::start().await;
    let function = runtime.spawn_function(
        std::path::Path::new(env!("CARGO_BIN_EXE_api")),
        &[(
            "REALNET_INIT_DIR",
            init.path().to_str().expect("utf-8 path"),
        )],
    );
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || function.wait_with_output()),
    )
    .await
    .expect("the function exits")
    .expect("join")
    .expect("output");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for e in realnet_tests::BROKEN_INIT_ERRORS {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
}
