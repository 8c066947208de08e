//! What the HTTP API keeps beside the core: the cursor signer and the OpenAPI document, built
//! on first use. Handlers that need only the core take `State<Arc<Realnet>>`.

use std::sync::{Arc, OnceLock};

use axum::extract::FromRef;
use base64::Engine;
use tokio::sync::OnceCell;

use crate::context::Realnet;
use crate::query::cursor::CursorCodec;
use crate::store::StoreError;

#[derive(Clone)]
pub struct ApiState {
    pub rn: Arc<Realnet>,
    http: Arc<HttpState>,
}

#[derive(Default)]
struct HttpState {
    cursor: OnceCell<CursorCodec>,
    openapi: OnceLock<String>,
}

impl ApiState {
    pub fn new(rn: Arc<Realnet>) -> ApiState {
        ApiState {
            rn,
            http: Arc::default(),
        }
    }

    /// The cursor signer, keyed by a secret generated once per installation and kept in the
    /// store, so every process of a deployment accepts the others' cursors.
    pub async fn cursor_codec(&self) -> Result<&CursorCodec, StoreError> {
        self.http
            .cursor
            .get_or_try_init(|| async {
                let fresh: [u8; 32] = rand::random();
                let initial = base64::engine::general_purpose::STANDARD.encode(fresh);
                let key = self.rn.store.setting("cursor_key", &initial).await?;
                Ok(CursorCodec::new(key.as_bytes()))
            })
            .await
    }

    /// The OpenAPI document, built once.
    pub fn openapi(&self, build: impl FnOnce(&Realnet) -> String) -> &str {
        self.http.openapi.get_or_init(|| build(&self.rn))
    }
}

impl FromRef<ApiState> for Arc<Realnet> {
    fn from_ref(state: &ApiState) -> Arc<Realnet> {
        state.rn.clone()
    }
}
