//! Org A can never see, query, reference (as parent or `ref`) or modify org B's items, even as
//! org A's admin and even knowing their ids; every attempt looks exactly like a missing id.

use axum::http::{Method, StatusCode};
use realnet_tests::{OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::json;

async fn org_a_cannot_reach_org_b(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let b = app.rn.token_for(OTHER_ORG, "admin").await;
    let b_company = app
        .call_as(
            Some(&b),
            Method::POST,
            "/api/companies",
            Some(json!({"name": "Globex", "attributes": {"domain": "globex.com"}})),
            &[],
        )
        .await;
    assert_eq!(b_company.status, StatusCode::CREATED, "{}", b_company.text);
    let id = b_company.body["id"].as_str().expect("id").to_string();
    let missing = uuid::Uuid::now_v7().to_string();
    let before = app.snapshot().await;

    for target in [&id, &missing] {
        let refusals = [
            (Method::GET, format!("/api/items/{target}"), None),
            (Method::GET, format!("/api/companies/{target}"), None),
            (Method::GET, format!("/api/items/{target}/children"), None),
            (
                Method::PATCH,
                format!("/api/items/{target}"),
                Some(json!({"name": "Mine"})),
            ),
            (
                Method::PUT,
                format!("/api/companies/{target}"),
                Some(json!({"name": "Mine"})),
            ),
            (
                Method::DELETE,
                format!("/api/items/{target}?recursive=true"),
                None,
            ),
        ];
        for (method, uri, body) in refusals {
            let a = app.call(method.clone(), &uri, body, &[]).await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{method} {uri}: {}",
                a.text
            );
            let expected = format!("no item with id {target}");
            assert_eq!(
                a.body["error"]["message"],
                expected.as_str(),
                "same as missing"
            );
        }
        // As a parent or a reference, another org's item does not exist either.
        let child = app
            .post(
                "/api/items",
                json!({"type": "Folder", "name": "inside", "parent": target}),
            )
            .await;
        assert_eq!(
            child.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            child.text
        );
        assert_eq!(
            child.body["error"]["details"]["fields"]["parent"],
            format!("no item with id {target}").as_str()
        );
        let deal = app
            .post(
                "/api/deals",
                json!({"name": "Steal", "attributes": {"company": target, "amount": 1}}),
            )
            .await;
        assert_eq!(
            deal.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            deal.text
        );
        assert!(
            deal.body["error"]["details"]["fields"]["company"].is_string(),
            "{}",
            deal.text
        );
    }
    // Moving one's own item under it.
    let mine = app.create(json!({"type": "Folder", "name": "mine"})).await;
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", mine["id"].as_str().expect("id")),
            Some(json!({"parent": id})),
            &[],
        )
        .await;
    assert_eq!(
        moved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        moved.text
    );

    // Queries, by every route and filter that could find it.
    for uri in [
        "/api/items?limit=200".to_string(),
        "/api/items?type=Company".to_string(),
        "/api/companies?name=Globex".to_string(),
        "/api/items?q=globex".to_string(),
        "/api/companies?attr.domain=globex.com".to_string(),
        format!("/api/items?parent={id}"),
    ] {
        let a = app.get(&uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text);
        assert!(!a.text.contains(&id) && !a.text.contains("Globex"), "{uri}");
    }
    let after: Vec<_> = app
        .snapshot()
        .await
        .into_iter()
        .filter(|i| i.name != "mine")
        .collect();
    assert_eq!(after, before, "org B's items are untouched");
}

on_every_store!(org_a_cannot_reach_org_b);
