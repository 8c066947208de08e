//! What only DynamoDB limits: one transaction takes at most 100 records, so a recursive delete
//! of a larger subtree is refused as a conflict that says what to do, and deletes nothing.

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtree_too_large_for_one_transaction_is_refused_whole() {
    let app = TestApp::new(StoreKind::Dynamodb).await;
    let root = app.create(json!({"type": "Folder", "name": "big"})).await;
    let root_id = root["id"].as_str().expect("id").to_string();
    for n in 0..100 {
        app.create(json!({"type": "Folder", "name": format!("child {n}"), "parent": root_id}))
            .await;
    }
    let before = app.snapshot().await;
    let refused = app
        .call(
            Method::DELETE,
            &format!("/api/items/{root_id}?recursive=true"),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(refused.text.contains("in parts"), "{}", refused.text);
    assert_eq!(app.snapshot().await, before, "nothing was deleted");
}
