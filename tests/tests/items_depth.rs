//! Hierarchies are bounded (`REALNET_MAX_DEPTH`): creating or moving an item below the last
//! level is a `422` on `parent` that changes nothing, however the item gets there (a create, a
//! move of an item with descendants, a job).

use axum::http::{Method, StatusCode};
use realnet_tests::{Answer, StoreKind, TestApp, on_every_store};
use serde_json::{Value, json};

const MAX: usize = 4;

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Checks a refusal: a 422 on `parent` that names the bound.
fn too_deep(a: &Answer) {
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let message = a.body["error"]["details"]["fields"]["parent"]
        .as_str()
        .unwrap_or_else(|| panic!("an error on parent: {}", a.text));
    assert!(message.contains("REALNET_MAX_DEPTH"), "{message}");
}

async fn move_to(app: &TestApp, item: &str, parent: &str) -> Answer {
    app.call(
        Method::PATCH,
        &format!("/api/items/{item}"),
        Some(json!({"parent": parent})),
        &[],
    )
    .await
}

async fn items_nest_no_deeper_than_the_bound(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.max_depth = MAX).await;
    // A chain down to the last level.
    let mut chain = vec![id(&app
        .create(json!({"type": "Folder", "name": "level 1"}))
        .await)];
    for level in 2..=MAX {
        let parent = chain.last().expect("a parent").clone();
        let f = json!({"type": "Folder", "name": format!("level {level}"), "parent": parent});
        chain.push(id(&app.create(f).await));
    }
    let last = chain[MAX - 1].clone();
    // A folder with a child, at the root.
    let pair = id(&app.create(json!({"type": "Folder", "name": "pair"})).await);
    let child = app
        .create(json!({"type": "Folder", "name": "pair child", "parent": pair}))
        .await;
    let child = id(&child);
    let before = app.snapshot().await;

    let created = app
        .post(
            "/api/items",
            json!({"type": "Folder", "name": "too deep", "parent": last}),
        )
        .await;
    too_deep(&created);
    assert!(
        created.text.contains(&format!("at level {}", MAX + 1)),
        "{}",
        created.text
    );
    // A file is an item like any other.
    let file = app
        .post(
            "/api/files",
            json!({"name": "deep.txt", "content_type": "text/plain", "size": 1, "parent": last}),
        )
        .await;
    too_deep(&file);
    // A leaf moved below the last level, and an item whose child would land there.
    too_deep(&move_to(&app, &child, &last).await);
    let moved = move_to(&app, &pair, &chain[MAX - 2]).await;
    too_deep(&moved);
    assert!(moved.text.contains("deepest descendant"), "{}", moved.text);
    // Replacing the item (PUT) is a move too.
    let replaced = app
        .call(
            Method::PUT,
            &format!("/api/items/{pair}"),
            Some(json!({"name": "pair", "parent": chain[MAX - 2], "attributes": {}})),
            &[],
        )
        .await;
    too_deep(&replaced);
    // Through the queue, the same.
    let job = app
        .post(
            "/api/jobs",
            json!({"kind": "items.create", "payload": {"items": [{"type": "Folder", "name": "queued", "parent": last}]}}),
        )
        .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.text);
    let token = app.admin_token.clone();
    let done = app.finished_job(&token, &id(&job.body)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done.to_string().contains("REALNET_MAX_DEPTH"), "{done}");
    let after: Vec<_> = app
        .snapshot()
        .await
        .into_iter()
        .filter(|i| i.type_name != "Job")
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|i| i.type_name != "Job")
        .collect();
    assert_eq!(after, before, "nothing changed");

    // A move under its own descendant is refused as a cycle, not for its depth.
    let cycle = move_to(&app, &chain[0], &last).await;
    assert_eq!(cycle.status, StatusCode::CONFLICT, "{}", cycle.text);
    // Within the bound, both moves are fine: the pair fills the last two levels.
    let ok = move_to(&app, &pair, &chain[MAX - 3]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let ok = move_to(&app, &child, &chain[MAX - 2]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

/// The default bound is 64 levels.
async fn the_default_bound_is_64_levels(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    assert_eq!(app.rn.config.max_depth, 64);
    let mut parent: Option<String> = None;
    for level in 1..=64 {
        let mut f = json!({"type": "Folder", "name": format!("level {level}")});
        if let Some(p) = &parent {
            f["parent"] = json!(p);
        }
        parent = Some(id(&app.create(f).await));
    }
    let before = app.snapshot().await;
    let refused = app
        .post(
            "/api/items",
            json!({"type": "Folder", "name": "level 65", "parent": parent}),
        )
        .await;
    too_deep(&refused);
    assert_eq!(app.snapshot().await, before, "nothing created");
}

on_every_store!(
    items_nest_no_deeper_than_the_bound,
    the_default_bound_is_64_levels
);
