//! `GET /api/openapi.json`: the routes that exist, as OpenAPI 3, including one copy of the item
//! routes per type endpoint. Built on first request, not at cold start.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use crate::context::Realnet;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Realnet",
        description = "A configuration-driven backend: types, items and their API."
    ),
    paths(
        super::health::ping,
        super::health::time,
        super::types::list,
        super::types::get,
        super::items::list,
        super::items::create,
        super::items::get,
        super::items::patch,
        super::items::put,
        super::items::delete,
        super::items::children,
        document,
    ),
    components(schemas(crate::item::Item, crate::types::TypeDef, crate::error::ErrorBody))
)]
struct ApiDoc;

fn build(rn: &Realnet) -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let collection = doc.paths.paths.get("/api/items").cloned();
    let single = doc.paths.paths.get("/api/items/{id}").cloned();
    for t in rn.types.all() {
        let Some(ep) = &t.endpoint else { continue };
        for (path, item) in [
            (format!("/api/{ep}"), &collection),
            (format!("/api/{ep}/{{id}}"), &single),
        ] {
            let Some(mut item) = item.clone() else {
                continue;
            };
            // Operation ids are unique in a document: `list_items` becomes `list_items_files`.
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}_{ep}"));
                op.tags = Some(vec![t.name.clone()]);
            }
            doc.paths.paths.insert(path, item);
        }
    }
    doc.to_json().unwrap_or_else(|_| "{}".to_string())
}

#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn document(State(rn): State<Arc<Realnet>>) -> impl IntoResponse {
    let text = rn.openapi.get_or_init(|| build(&rn)).clone();
    ([(header::CONTENT_TYPE, "application/json")], text)
}
