//! Deployed identity: the claims an API Gateway authorizer verified (which the Lambda runner
//! puts on the request) map to an account, by username and optionally org, as
//! `REALNET_AUTH_MODE` says.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::auth::AuthorizerClaims;
use realnet::config::AuthMode;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, on_every_store};
use serde_json::json;

/// `GET /api/auth` with these claims on the request, and optionally a bearer token.
async fn who(app: &TestApp, claims: Option<&[(&str, &str)]>, token: Option<&str>) -> Answer {
    let mut request = Request::builder().method(Method::GET).uri("/api/auth");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let mut request = request.body(Body::empty()).expect("request");
    if let Some(claims) = claims {
        let map = claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        request.extensions_mut().insert(AuthorizerClaims(map));
    }
    app.dispatch(request).await
}

async fn authorizer_mode_maps_claims_to_accounts(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| {
        c.auth.mode = AuthMode::Authorizer;
        c.auth.username_claim = "cognito:username".into();
        c.auth.org_claim = Some("custom:org".into());
    })
    .await;
    let (_, _) = app.account(OTHER_ORG, "dana", false).await;
    let dana = [("cognito:username", "dana"), ("custom:org", OTHER_ORG)];
    let me = who(&app, Some(&dana), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["account"]["username"], "dana");
    assert_eq!(me.body["org"], OTHER_ORG);
    assert_eq!(me.body["credential"], "authorizer");

    for (case, claims) in [
        (
            "unknown user",
            vec![("cognito:username", "eve"), ("custom:org", OTHER_ORG)],
        ),
        (
            "wrong org",
            vec![("cognito:username", "dana"), ("custom:org", "default")],
        ),
        (
            "no username claim",
            vec![("sub", "dana"), ("custom:org", OTHER_ORG)],
        ),
        ("no org claim", vec![("cognito:username", "dana")]),
    ] {
        let a = who(&app, Some(&claims), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{case}: {}", a.text);
    }
    // Realnet's own tokens and logins are off in this mode.
    let a = who(&app, None, Some(&app.admin_token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
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

async fn both_mode_takes_claims_first_then_tokens(kind: StoreKind) {
    let app = TestApp::with_config(kind, |c| c.auth.mode = AuthMode::Both).await;
    let (_, frank) = app.account("default", "frank", false).await;
    let as_admin = [("username", "admin")];
    let a = who(&app, Some(&as_admin), Some(&frank)).await;
    assert_eq!(a.body["account"]["username"], "admin", "{}", a.text);
    let b = who(&app, None, Some(&frank)).await;
    assert_eq!(b.body["account"]["username"], "frank", "{}", b.text);
    let c = who(&app, None, Some("rn_forged")).await;
    assert_eq!(c.status, StatusCode::UNAUTHORIZED);
}

/// In token mode (the default) claims are ignored: only a Realnet token counts.
async fn token_mode_ignores_claims(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let a = who(&app, Some(&[("username", "admin")]), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
}

on_every_store!(
    authorizer_mode_maps_claims_to_accounts,
    both_mode_takes_claims_first_then_tokens,
    token_mode_ignores_claims,
);
