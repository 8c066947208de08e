//! Pages that cost reads in proportion to the page: a cursor belongs to its query and org; on
//! DynamoDB a page ends at its read budget (short, with `next_cursor` set, and clients that
//! loop get every item once), and a sort no index serves over more than a page may read is a
//! `400` that says what to do.

use axum::http::{Method, StatusCode};
use realnet::config::DbConfig;
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, id_of, on_every_store};
use serde_json::{Value, json};

/// A DynamoDB app whose pages read at most `records` records.
async fn budgeted(records: usize) -> TestApp {
    TestApp::with_config(StoreKind::Dynamodb, |c| {
        if let DbConfig::Dynamodb { page_reads, .. } = &mut c.db {
            *page_reads = records;
        }
    })
    .await
}

/// Every page of `uri` (which has a query string), looping on `next_cursor`; answers the
/// items and how many pages were short of `limit` with a next page.
async fn every_page(app: &TestApp, uri: &str, limit: usize) -> (Vec<Value>, usize) {
    let (mut items, mut short) = (Vec::new(), 0);
    let mut next = uri.to_string();
    loop {
        let page = app.get(&next).await;
        assert_eq!(page.status, StatusCode::OK, "{next}: {}", page.text);
        let got = page.body["items"].as_array().cloned().unwrap_or_default();
        match page.body["next_cursor"].as_str() {
            Some(c) => {
                if got.len() < limit {
                    short += 1;
                }
                next = format!("{uri}&cursor={c}");
            }
            None => {
                items.extend(got);
                return (items, short);
            }
        }
        items.extend(got);
    }
}

async fn a_cursor_from_another_query_or_org_is_refused(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    for n in 0..3 {
        app.create(json!({"type": "Folder", "name": format!("f{n}")}))
            .await;
        app.create(json!({"type": "Company", "name": format!("c{n}")}))
            .await;
    }
    let first = app.get("/api/items?type=Folder&limit=1").await;
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let before = app.snapshot().await;
    for uri in [
        format!("/api/items?type=Company&limit=1&cursor={cursor}"),
        format!("/api/items?type=Folder&name=f*&limit=1&cursor={cursor}"),
    ] {
        let refused = app.get(&uri).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            refused.text
        );
        assert_eq!(refused.code(), "bad_request");
        assert!(
            refused.text.contains("another query or org"),
            "{}",
            refused.text
        );
    }
    let theirs = app.rn.token_for(OTHER_ORG, "admin").await;
    let refused = app
        .call_as(
            Some(&theirs),
            Method::GET,
            &format!("/api/items?type=Folder&limit=1&cursor={cursor}"),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(
        refused.text.contains("another query or org"),
        "{}",
        refused.text
    );
    // The same query with another limit goes on.
    let next = app
        .get(&format!("/api/items?type=Folder&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    assert_eq!(next.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.snapshot().await, before, "nothing changed");
}

on_every_store!(a_cursor_from_another_query_or_org_is_refused);

/// A filter that skips most of what a page reads: pages end at the budget, short, with their
/// cursor set, and looping gets every match once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_ends_at_its_read_budget_and_clients_loop() {
    let app = budgeted(10).await;
    let mut matches = Vec::new();
    for n in 0..40 {
        let name = if n % 13 == 5 { "match" } else { "other" };
        let f = app
            .create(json!({"type": "Folder", "name": format!("{name} {n}")}))
            .await;
        if name == "match" {
            matches.push(id_of(&f));
        }
    }
    let (items, short) = every_page(&app, "/api/items?type=Folder&name=match*&limit=50", 50).await;
    let got: Vec<String> = items.iter().map(id_of).collect();
    assert_eq!(got, matches, "every match once, in creation order");
    assert!(
        short >= 3,
        "40 folders read 10 at a time: {short} short pages"
    );
    // A filter that matches nothing is short pages too, each of bounded work, then the end.
    let (items, _) = every_page(&app, "/api/items?type=Folder&name=none*&limit=50", 50).await;
    assert!(items.is_empty());
}

/// Sorted by something no index serves, a set larger than the budget is refused with what to
/// do; a set that fits is sorted in memory; name order and indexed fields are served by their
/// indexes at any size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_no_index_serves_over_a_large_set_is_refused() {
    let app = budgeted(10).await;
    let parent = app.create(json!({"type": "Folder", "name": "small"})).await;
    let parent_id = id_of(&parent);
    for n in 0..15 {
        app.create(json!({"type": "Folder", "name": format!("f{:02}", 14 - n)}))
            .await;
    }
    for n in 0..3 {
        app.create(json!({"type": "Folder", "name": format!("c{}", 3 - n), "parent": parent_id}))
            .await;
    }
    for n in 0..15 {
        let industry = ["software", "retail", "finance"][n % 3];
        app.create(json!({"type": "Company", "name": format!("co {n}"),
            "attributes": {"employees": n, "industry": industry}}))
            .await;
    }
    let before = app.snapshot().await;
    let unindexed = app
        .get("/api/items?type=Company&sort=-attr.employees")
        .await;
    assert_eq!(
        unindexed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unindexed.text
    );
    let message = unindexed.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("\"employees\"") && message.contains("\"indexed\": true"),
        "names the field to index: {}",
        unindexed.text
    );

    // Served by indexes, however many items: name order, an indexed field.
    let (by_name, _) =
        every_page(&app, "/api/items?type=Folder&sort=name&name=f*&limit=4", 4).await;
    let names: Vec<&str> = by_name.iter().filter_map(|i| i["name"].as_str()).collect();
    let want: Vec<String> = (0..15).map(|n| format!("f{n:02}")).collect();
    assert_eq!(names, want);
    let (software, _) = every_page(
        &app,
        "/api/items?type=Company&sort=-attr.industry&attr.industry=software&limit=2",
        2,
    )
    .await;
    assert_eq!(software.len(), 5);
    assert!(
        software
            .iter()
            .all(|c| c["attributes"]["industry"] == "software")
    );
    let refused = app.get("/api/items?type=Folder&sort=updated").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.code(), "bad_request");
    assert!(refused.text.contains("sort=updated"), "{}", refused.text);
    assert!(refused.text.contains("index"), "{}", refused.text);
    assert_eq!(app.snapshot().await, before, "nothing changed");

    let small = app
        .get(&format!("/api/items?parent={parent_id}&sort=-updated"))
        .await;
    assert_eq!(small.status, StatusCode::OK, "{}", small.text);
    let names: Vec<&str> = small.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["c1", "c2", "c3"]);
}
