//! What a container caches is never served past what it stands for (a review of the caches as
//! an attacker would use them): a credential past its expiry is refused, and a change made in
//! this container to what an entry says is seen at once.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use realnet_tests::{StoreKind, TestApp, id_of, on_every_store};
use serde_json::json;

async fn cached_app(kind: StoreKind) -> TestApp {
    TestApp::with_config(kind, |c| c.auth.cache_ttl = Duration::from_secs(60)).await
}

/// An API key's token keeps the expiry it was made with: moving the key item's `expires`
/// later does not keep the key alive past it, not even from the cache.
async fn an_api_key_is_refused_once_its_token_expires_though_its_item_expires_later(
    kind: StoreKind,
) {
    let app = cached_app(kind).await;
    let (service, _) = app.account("default", "svc", false).await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(3);
    let created = app
        .call(
            Method::POST,
            "/api/items",
            Some(json!({"type": "ApiKey", "name": "short",
                "attributes": {"account": service, "expires": expires.to_rfc3339()}})),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().expect("the key").to_string();
    let id = created.body["id"].as_str().expect("id").to_string();
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/items/{id}"),
            Some(json!({"attributes": {"expires": later.to_rfc3339()}})),
            &[],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let me = app
        .call_as(Some(&key), Method::GET, "/api/auth", None, &[])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(500)).await;
    let late = app
        .call_as(Some(&key), Method::GET, "/api/auth", None, &[])
        .await;
    assert_eq!(
        late.status,
        StatusCode::UNAUTHORIZED,
        "the token row expired; the cache must not outlive it: {}",
        late.text
    );
}

/// Changing the org's `Org` item (its `portfolio`) in this container forgets the cached
/// portfolio.
async fn a_portfolio_change_is_seen_at_once_in_this_container(kind: StoreKind) {
    let app = cached_app(kind).await;
    let before = app.rn.org_portfolio("default").await.expect("read");
    assert_eq!(before.as_deref(), Some("default"));
    let org_item = app.get("/api/items?type=Org").await.body["items"][0].clone();
    let changed = app
        .call(
            Method::PATCH,
            &format!("/api/items/{}", id_of(&org_item)),
            Some(json!({"attributes": {"portfolio": "moved"}})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let after = app.rn.org_portfolio("default").await.expect("read");
    assert_eq!(
        after.as_deref(),
        Some("moved"),
        "the cached portfolio was not forgotten"
    );
}

on_every_store!(
    an_api_key_is_refused_once_its_token_expires_though_its_item_expires_later,
    a_portfolio_change_is_seen_at_once_in_this_container,
);
