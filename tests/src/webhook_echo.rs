//! A webhook receiver for the remote-extension tests: an axum handler that checks each
//! request's `Realnet-Signature` itself (HMAC-SHA256 of `"<t>.<body>"` with the secret the
//! test was shown, a timestamp within five minutes), as a real receiver must, and echoes the
//! payload of the requests that pass.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// What the echo server saw.
#[derive(Default)]
pub struct Seen {
    /// The signing secret the test was shown.
    pub secret: Mutex<String>,
    /// Every request that reached the server, on any route.
    pub requests: AtomicUsize,
    /// The last body whose signature checked out.
    pub last: Mutex<Option<Value>>,
}

impl Seen {
    /// Accepts only requests signed with `secret` from now on.
    pub fn expect_secret(&self, secret: &str) {
        *self.secret.lock().expect("the echo server's state") = secret.to_string();
    }
}

/// Checks `Realnet-Signature: t=<unix>,v1=<hex>` against HMAC-SHA256 of `"<t>.<body>"`,
/// computed here, and a timestamp within five minutes.
pub fn signed(seen: &Seen, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers
        .get("realnet-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let secret = seen.secret.lock().expect("the echo server's state").clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

/// Echoes the payload of a correctly signed request; refuses any other with `401`.
pub async fn echo(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    if !signed(&seen, &headers, &body) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "bad signature"}})),
        )
            .into_response();
    }
    let call: Value = serde_json::from_slice(&body).expect("Realnet sends JSON");
    *seen.last.lock().expect("the echo server's state") = Some(call.clone());
    axum::Json(json!({"echo": call["payload"]})).into_response()
}

/// Counts a request that reached the server.
pub async fn counted(seen: &Seen) {
    seen.requests.fetch_add(1, Ordering::SeqCst);
}
