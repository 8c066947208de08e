//! The `worker` binary under a Lambda Runtime API, as `cargo lambda invoke worker --data-file
//! events/worker/...` would run it (with the samples' signing key): it answers the sample SQS
//! batches in the partial batch failure shape, runs the job they carry once, and refuses the
//! forged record (reported, for the dead-letter queue) without running it.

use std::path::PathBuf;

use realnet_tests::lambda_runtime::RuntimeApi;
use realnet_tests::sqs::SAMPLE_EVENTS_KEY;
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/worker")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("sample events are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_sample_batches() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path");
    let config = realnet::config::Config::from_lookup(|k| {
        (k == "REALNET_DATA_DIR").then(|| dir.to_string())
    })
    .expect("config");
    let rn = realnet::Realnet::from_config(config, realnet_extensions::linked()).expect("store");
    rn.init().await.expect("init");
    let runtime = RuntimeApi::start().await;
    let mut function = runtime.spawn_function(
        std::path::Path::new(env!("CARGO_BIN_EXE_worker")),
        &[
            ("REALNET_DATA_DIR", dir),
            ("REALNET_JOB_SIGNING_KEY", SAMPLE_EVENTS_KEY),
        ],
    );

    let answer = runtime.invoke(event("batch.json")).await.expect("answered");
    let failures: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .expect("the partial batch failure shape")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    let forged = "0f6d8a52-0001-4000-8000-000000000005";
    assert!(failures.contains(&forged), "{answer}");
    // Besides the forged record, at most the duplicate (found still running) comes back.
    assert!(
        failures.len() <= 2
            && failures.iter().all(|f| *f == forged
                || f.ends_with("000000000002")
                || f.ends_with("000000000001")),
        "{answer}"
    );
    let fifo = runtime
        .invoke(event("fifo-batch.json"))
        .await
        .expect("answered");
    assert_eq!(fifo["batchItemFailures"], serde_json::json!([]), "{fifo}");
    function.kill().ok();
    function.wait().ok();

    let mut query = realnet::query::ItemQuery::parse(
        &rn.types,
        &[("type".to_string(), "Company".to_string())],
        None,
    )
    .expect("query");
    query.name = Some(realnet::query::NameFilter::Exact("Initech".into()));
    let found = rn.store.query("default", &query).await.expect("query");
    assert_eq!(found.items.len(), 1, "the job ran once");
    let eve = realnet::auth::identity::find_account(&rn, "default", "eve")
        .await
        .expect("query");
    assert!(eve.is_none(), "the forged record made nothing");
}
