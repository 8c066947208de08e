//! Deployed identity: the claims an API Gateway authorizer verified (which the Lambda runner
//! puts on the request) act as the account an org admin linked to the identity provider's
//! issuer and subject, in that account's org, as `REALNET_AUTH_MODE` says. No claim a user can
//! pick (a username) chooses the account, and an org claim must agree with the link.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::auth::AuthorizerClaims;
use realnet::config::AuthMode;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_POOL";

/// `method uri` with these claims on the request (as the Lambda runner puts them), and
/// optionally a bearer token.
async fn with_claims(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
    claims: &[(&str, &str)],
    token: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let mut request = request.body(body).expect("request");
    if !claims.is_empty() {
        let map = claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        request.extensions_mut().insert(AuthorizerClaims(map));
    }
    app.dispatch(request).await
}

/// `GET /api/auth` with these claims.
async fn who(app: &TestApp, claims: &[(&str, &str)]) -> Answer {
    with_claims(app, Method::GET, "/api/auth", None, claims, None).await
}

/// Links the account `username` of `org` to `subject` of `issuer`, as that org's admin, over
/// HTTP (`PATCH /api/items/{id}`).
async fn link(app: &TestApp, org: &str, username: &str, issuer: &str, subject: &str) -> Answer {
    let admin = app.rn.token_for(org, "admin").await;
    let account = realnet::auth::identity::find_account(&app.rn, org, username)
        .await
        .expect("query")
        .expect("the account");
    app.call_as(
        Some(&admin),
        Method::PATCH,
        &format!("/api/items/{}", account.id),
        Some(json!({"attributes": {"idp_issuer": issuer, "idp_subject": subject}})),
        &[],
    )
    .await
}

/// Links as [`link`] does, through the library as the installation (in authorizer mode, where
/// Realnet tokens are off: as `realnet account link` does).
async fn link_as_installation(app: &TestApp, org: &str, username: &str, subject: &str) {
    let account = realnet::auth::identity::find_account(&app.rn, org, username)
        .await
        .expect("query")
        .expect("the account");
    let change = realnet::item::ops::Change::Patch {
        name: None,
        parent: None,
        attributes: json!({"idp_issuer": ISSUER, "idp_subject": subject})
            .as_object()
            .cloned(),
    };
    realnet::item::ops::update(
        &app.rn,
        &realnet::auth::Principal::org_admin(org),
        account.id,
        change,
        None,
        None,
    )
    .await
    .expect("link");
}

fn assert_refused(a: &Answer, case: &str) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{case}: {}", a.text);
    assert_eq!(a.code(), "unauthorized", "{case}: {}", a.text);
}

/// The claims of a linked account act as it, in its org (not the default org), whatever
/// other claims say; every other identity is refused with `401` and writes nothing.
async fn authorizer_mode_acts_as_the_linked_account(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.mode = AuthMode::Authorizer).await;
    let (_, _) = app.account(OTHER_ORG, "dana", false).await;
    link_as_installation(&app, OTHER_ORG, "dana", "sub-dana").await;

    let dana = [
        ("iss", ISSUER),
        ("sub", "sub-dana"),
        // A claim the user could pick names another account: it counts for nothing.
        ("username", "admin"),
    ];
    let me = who(&app, &dana).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["account"]["username"], "dana");
    assert_eq!(me.body["org"], OTHER_ORG);
    assert_eq!(me.body["admin"], false);
    assert_eq!(me.body["credential"], "authorizer");

    let before = app.snapshot().await;
    for (case, claims) in [
        (
            "an unlinked subject",
            vec![("iss", ISSUER), ("sub", "sub-eve")],
        ),
        (
            "the same subject from another issuer",
            vec![("iss", "https://evil.example.com"), ("sub", "sub-dana")],
        ),
        ("a username claim alone", vec![("username", "admin")]),
        (
            "usernames and an issuer, no subject",
            vec![
                ("iss", ISSUER),
                ("username", "dana"),
                ("cognito:username", "admin"),
            ],
        ),
        ("a subject without an issuer", vec![("sub", "sub-dana")]),
        ("an empty subject", vec![("iss", ISSUER), ("sub", "")]),
    ] {
        assert_refused(&who(&app, &claims).await, case);
        let write = with_claims(
            &app,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Company", "name": format!("made by {case}")})),
            &claims,
            None,
        )
        .await;
        assert_refused(&write, case);
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");

    // A disabled account's link grants nothing.
    link_as_installation(&app, "default", "admin", "sub-admin").await;
    let admin = [("iss", ISSUER), ("sub", "sub-admin")];
    let id = me.body["account"]["id"].as_str().expect("id").to_string();
    let disabled = with_claims(
        &app,
        Method::PATCH,
        &format!("/api/items/{id}"),
        Some(json!({"attributes": {"disabled": true}})),
        &admin,
        None,
    )
    .await;
    // The default org's admin (through its own link) cannot reach another org's account.
    assert_eq!(disabled.status, StatusCode::NOT_FOUND, "{}", disabled.text);
    let dana_account = realnet::auth::identity::find_account(&app.rn, OTHER_ORG, "dana")
        .await
        .expect("query")
        .expect("dana");
    realnet::item::ops::update(
        &app.rn,
        &realnet::auth::Principal::org_admin(OTHER_ORG),
        dana_account.id,
        realnet::item::ops::Change::Patch {
            name: None,
            parent: None,
            attributes: json!({"disabled": true}).as_object().cloned(),
        },
        None,
        None,
    )
    .await
    .expect("disable");
    assert_refused(&who(&app, &dana).await, "a disabled account");

    // Realnet's own tokens and logins are off in this mode.
    let a = with_claims(
        &app,
        Method::GET,
        "/api/auth",
        None,
        &[],
        Some(&app.admin_token),
    )
    .await;
    assert_refused(&a, "a Realnet token");
    let login = app
        .call_as(
            None,
            Method::POST,
            "/api/auth",
            Some(json!({"username": "admin", "password": realnet_tests::ADMIN_PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::NOT_FOUND, "{}", login.text);
}

/// An org claim, where one is configured, is checked like an org name and must agree with the
/// org of the linked account.
async fn an_org_claim_must_agree_with_the_link(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| {
        c.auth.mode = AuthMode::Authorizer;
        c.auth.org_claim = Some("custom:org".into());
    })
    .await;
    let (_, _) = app.account(OTHER_ORG, "dana", false).await;
    link_as_installation(&app, OTHER_ORG, "dana", "sub-dana").await;
    let ok = who(
        &app,
        &[
            ("iss", ISSUER),
            ("sub", "sub-dana"),
            ("custom:org", OTHER_ORG),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["org"], OTHER_ORG);

    let before = app.snapshot().await;
    for (case, org) in [
        ("an org that disagrees", Some("default")),
        ("an org that does not exist", Some("nope")),
        ("not an org name", Some("Other Org!")),
        ("no org claim", None),
    ] {
        let mut claims = vec![("iss", ISSUER), ("sub", "sub-dana")];
        if let Some(o) = org {
            claims.push(("custom:org", o));
        }
        assert_refused(&who(&app, &claims).await, case);
        let write = with_claims(
            &app,
            Method::POST,
            "/api/items",
            Some(json!({"type": "Company", "name": "made in the wrong org"})),
            &claims,
            None,
        )
        .await;
        assert_refused(&write, case);
    }
    assert_eq!(app.snapshot().await, before, "nothing changed");
}

/// A subject is linked to one account in the whole installation: another org's admin cannot
/// take it (`409`, nothing changes); half a link is a `422`; a member cannot link anything;
/// changing or deleting the account frees it.
async fn links_are_unique_across_the_installation(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.mode = AuthMode::Both).await;
    let (erin_id, erin_token) = app.account("default", "erin", false).await;
    let (_, _) = app.account(OTHER_ORG, "dana", false).await;
    let first = link(&app, "default", "erin", ISSUER, "sub-x").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);

    let before = app.snapshot().await;
    let taken = link(&app, OTHER_ORG, "dana", ISSUER, "sub-x").await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert_eq!(taken.code(), "conflict");
    assert!(
        !taken.text.contains("default"),
        "it names no org: {}",
        taken.text
    );
    let half = app
        .call(
            Method::PATCH,
            &format!("/api/items/{erin_id}"),
            Some(json!({"attributes": {"idp_issuer": null}})),
            &[],
        )
        .await;
    assert_eq!(
        half.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        half.text
    );
    assert!(
        half.body["error"]["details"]["fields"]["idp_subject"].is_string(),
        "{}",
        half.text
    );
    // A member cannot link even their own account (to an identity they do not own).
    let own = app
        .call_as(
            Some(&erin_token),
            Method::PATCH,
            &format!("/api/items/{erin_id}"),
            Some(json!({"attributes": {"idp_subject": "sub-admin"}})),
            &[],
        )
        .await;
    assert!(
        matches!(own.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}",
        own.text
    );
    assert_eq!(app.snapshot().await, before, "nothing changed");
    let erin = [("iss", ISSUER), ("sub", "sub-x")];
    assert_eq!(who(&app, &erin).await.body["account"]["username"], "erin");

    // Moving erin's link to another subject frees the first one.
    let moved = link(&app, "default", "erin", ISSUER, "sub-y").await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let dana = link(&app, OTHER_ORG, "dana", ISSUER, "sub-x").await;
    assert_eq!(dana.status, StatusCode::OK, "{}", dana.text);
    let now_dana = who(&app, &erin).await;
    assert_eq!(
        now_dana.body["account"]["username"], "dana",
        "{}",
        now_dana.text
    );
    assert_eq!(now_dana.body["org"], OTHER_ORG);
    let y = [("iss", ISSUER), ("sub", "sub-y")];
    assert_eq!(who(&app, &y).await.body["account"]["username"], "erin");

    // Deleting the account removes its link.
    let deleted = app
        .call(Method::DELETE, &format!("/api/items/{erin_id}"), None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_refused(&who(&app, &y).await, "a deleted account");
    assert_eq!(
        app.rn
            .store
            .identity_link(ISSUER, "sub-y")
            .await
            .expect("read"),
        None
    );
}

/// In `both` mode, claims count first (as their linked account), bearer tokens otherwise.
async fn both_mode_takes_claims_first_then_tokens(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.mode = AuthMode::Both).await;
    let (_, frank) = app.account("default", "frank", false).await;
    let linked = link(&app, "default", "admin", ISSUER, "sub-admin").await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    let as_admin = [("iss", ISSUER), ("sub", "sub-admin")];
    let a = with_claims(
        &app,
        Method::GET,
        "/api/auth",
        None,
        &as_admin,
        Some(&frank),
    )
    .await;
    assert_eq!(a.body["account"]["username"], "admin", "{}", a.text);
    let b = with_claims(&app, Method::GET, "/api/auth", None, &[], Some(&frank)).await;
    assert_eq!(b.body["account"]["username"], "frank", "{}", b.text);
    let c = with_claims(&app, Method::GET, "/api/auth", None, &[], Some("rn_forged")).await;
    assert_refused(&c, "a forged token");
    // Unlinked claims are refused, not passed over for the token.
    let d = with_claims(
        &app,
        Method::GET,
        "/api/auth",
        None,
        &[
            ("iss", ISSUER),
            ("sub", "sub-nobody"),
            ("username", "frank"),
        ],
        Some(&frank),
    )
    .await;
    assert_refused(&d, "unlinked claims beside a token");
}

/// In token mode (the default) claims are ignored: only a Realnet token counts.
async fn token_mode_ignores_claims(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let linked = link(&app, "default", "admin", ISSUER, "sub-admin").await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    let a = who(&app, &[("iss", ISSUER), ("sub", "sub-admin")]).await;
    assert_refused(&a, "claims in token mode");
}

on_every_store!(
    authorizer_mode_acts_as_the_linked_account,
    an_org_claim_must_agree_with_the_link,
    links_are_unique_across_the_installation,
    both_mode_takes_claims_first_then_tokens,
    token_mode_ignores_claims,
);
