//! `/api/auth`: log in (`POST`), who am I (`GET`), log out (`DELETE`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::caller::Authenticated;
use super::extract::JsonBody;
use crate::auth::login;
use crate::auth::{ClientAddr, Credential};
use crate::config::AuthMode;
use crate::config::check_org_name;
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::item::attributes::ValidationErrors;

/// `POST /api/auth` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
    /// Default: the installation's default org.
    org: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountRef {
    id: Uuid,
    username: String,
    org: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResult {
    /// The bearer token; it is shown only here.
    token: String,
    expires: DateTime<Utc>,
    account: AccountRef,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    account: Option<AccountRef>,
    org: String,
    admin: bool,
    groups: Vec<Uuid>,
    /// token, api_key or authorizer.
    credential: &'static str,
}

#[utoipa::path(post, path = "/api/auth", operation_id = "login", tag = "auth", request_body = Login,
    security(()),
    responses((status = 200, description = "Logged in", body = LoginResult),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 404, description = "Logins are off (REALNET_AUTH_MODE=authorizer)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field cannot be a username, password or org", body = ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many logins at once; see Retry-After", body = ErrorBody)))]
pub async fn login(
    State(rn): State<Arc<Realnet>>,
    client: Option<ClientAddr>,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<LoginResult>, ApiError> {
    if rn.config.auth.mode == AuthMode::Authorizer {
        return Err(ApiError::not_found(
            "logins are off: this installation uses an API Gateway authorizer (REALNET_AUTH_MODE=authorizer)",
        ));
    }
    let org = body.org.unwrap_or_else(|| rn.config.default_org.clone());
    let mut errors = ValidationErrors::default();
    if let Err(m) = check_org_name(&org) {
        errors.add("org", m);
    }
    if body.username.is_empty() || body.username.len() > 64 || body.username.contains('\0') {
        errors.add("username", "must be 1 to 64 characters");
    }
    if body.password.is_empty() || body.password.len() > 1024 {
        errors.add("password", "must be 1 to 1024 bytes");
    }
    errors.into_result(())?;
    let session = login::login(&rn, &org, &body.username, body.password, client).await?;
    Ok(Json(LoginResult {
        token: session.token,
        expires: session.expires,
        account: AccountRef {
            id: session.account,
            username: session.username,
            org: session.org,
        },
    }))
}

#[utoipa::path(get, path = "/api/auth", operation_id = "whoami", tag = "auth",
    responses((status = 200, description = "The calling principal", body = Me)))]
pub async fn me(Authenticated(p): Authenticated) -> Json<Me> {
    let credential = match p.credential {
        Credential::ApiKey { .. } => "api_key",
        Credential::Authorizer => "authorizer",
        _ => "token",
    };
    Json(Me {
        account: p.account.map(|id| AccountRef {
            id,
            username: p.username.clone().unwrap_or_default(),
            org: p.org.clone(),
        }),
        org: p.org,
        admin: p.admin,
        groups: p.groups,
        credential,
    })
}

#[utoipa::path(delete, path = "/api/auth", operation_id = "logout", tag = "auth",
    responses((status = 204, description = "The calling token is revoked"),
        (status = 400, description = "The caller did not log in with a login token", body = ErrorBody)))]
pub async fn logout(
    State(rn): State<Arc<Realnet>>,
    Authenticated(p): Authenticated,
) -> Result<StatusCode, ApiError> {
    match &p.credential {
        Credential::LoginToken { hash } => {
            login::logout(&rn, &p.org, hash).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Credential::ApiKey { id } => Err(ApiError::bad_request(format!(
            "this is an API key: an org admin revokes it with DELETE /api/items/{id}"
        ))),
        _ => Err(ApiError::bad_request(
            "there is no Realnet token to revoke: this request was authorized by API Gateway",
        )),
    }
}
