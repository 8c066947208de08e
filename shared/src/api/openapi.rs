//! `GET /api/openapi.json`: the routes that exist, as OpenAPI 3, including one copy of the item
//! routes per type endpoint. Built on first request, not at cold start.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::state::ApiState;
use crate::context::Realnet;
use crate::types::{Field, FieldKind, TypeDef};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Realnet",
        description = "A configuration-driven backend: types, items and their API."
    ),
    paths(
        super::health::ping,
        super::health::time,
        super::auth::login,
        super::auth::me,
        super::auth::logout,
        super::types::list,
        super::types::get,
        super::items::list,
        super::items::create,
        super::items::get,
        super::items::patch,
        super::items::put,
        super::items::delete,
        super::items::children,
        super::files::list,
        super::files::create,
        super::files::upload,
        super::files::confirm,
        super::files::content,
        super::apps::list,
        super::apps::view,
        super::jobs::create,
        super::jobs::get,
        super::extensions::list,
        super::extensions::call,
        super::extensions::rotate_secret,
        document,
    ),
    components(schemas(crate::item::Item, crate::types::TypeDef, crate::error::ErrorBody))
)]
struct ApiDoc;

fn build(rn: &Realnet) -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    add_auth_responses(&mut doc);
    add_limit_responses(&mut doc);
    add_handlers(rn, &mut doc);
    let paths = doc["paths"].clone();
    for t in rn.types.all() {
        let Some(ep) = &t.endpoint else { continue };
        let bodies = RequestBodies::new(rn, t);
        for (template, path) in [
            ("/api/items", format!("/api/{ep}")),
            ("/api/items/{id}", format!("/api/{ep}/{{id}}")),
        ] {
            // `/api/files` has its own list and create (with the upload target).
            if paths.get(&path).is_some() {
                continue;
            }
            let mut item = paths[template].clone();
            for (method, op) in item.as_object_mut().into_iter().flatten() {
                // Operation ids are unique in a document: `list_items` becomes `list_items_files`.
                if let Some(id) = op["operationId"].as_str() {
                    op["operationId"] = json!(format!("{id}_{ep}"));
                }
                op["tags"] = json!([t.name]);
                if method != "get" && crate::extensions::source::is_bound(rn, &t.name) {
                    op["responses"]["422"] = json!({"description":
                        "Invalid item, or the extension serving this type (its module) does not write its items",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
                }
                let body = match method.as_str() {
                    "post" => &bodies.create,
                    "put" => &bodies.replace,
                    "patch" => &bodies.patch,
                    _ => continue,
                };
                op["requestBody"]["content"]["application/json"]["schema"] = body.clone();
            }
            doc["paths"][path] = item;
        }
    }
    doc.to_string()
}

/// One copy of the call route per linked handler, with the handler's input and output
/// schemas, so that clients (and the fuzzer in `tests/run`) know what each takes.
fn add_handlers(rn: &Realnet, doc: &mut Value) {
    const CALL: &str = "/_schd/{portfolio}/{org}/call/{extension}/{handler}";
    let template = doc["paths"][CALL].clone();
    for e in rn.extensions.linked() {
        for h in e.handlers() {
            let mut item = template.clone();
            let op = &mut item["post"];
            op["operationId"] = json!(format!("call_{}_{}", e.name.replace('-', "_"), h.name));
            op["summary"] = json!(h.description);
            if let Some(params) = op["parameters"].as_array_mut() {
                params.retain(|p| p["name"] != "extension" && p["name"] != "handler");
            }
            if let Some(input) = h.input_schema() {
                op["requestBody"]["content"]["application/json"]["schema"] = input.clone();
            }
            if let Some(output) = h.output_schema() {
                op["responses"]["200"]["content"]["application/json"]["schema"] = output.clone();
            }
            let path = format!("/_schd/{{portfolio}}/{{org}}/call/{}/{}", e.name, h.name);
            doc["paths"][path] = item;
        }
    }
}

/// Bearer authentication, and the `401` every route but `/ping`, this document and login can
/// answer, the `403` of every item write and the `503` of those that may hash a password.
fn add_auth_responses(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer",
        "description": "A login token (POST /api/auth) or an API key"}});
    doc["security"] = json!([{"bearer": []}]);
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            let open = path == "/ping"
                || path == "/api/openapi.json"
                || (path == "/api/auth" && method == "post");
            if open {
                op["security"] = json!([]);
                continue;
            }
            op["responses"]["401"] = json!({"description":
                "No valid credential (a missing, malformed, expired or revoked token)",
                "content": error});
            if (path.starts_with("/api/items") || path.starts_with("/api/files")) && method != "get"
            {
                op["responses"]["403"] = json!({"description":
                    "The caller may read the item but not do this", "content": error});
                if method != "delete" {
                    op["responses"]["503"] = json!({"description":
                        "Every password hash of this process is running or waiting (an account's password): retry after Retry-After",
                        "content": error});
                }
            }
        }
    }
}

/// The router's own `503`s ([`super::limits`]), which any route can answer: `overloaded`
/// beyond `REALNET_MAX_CONCURRENT_REQUESTS` in flight, and `timeout` past
/// `REALNET_REQUEST_TIMEOUT` (not on file contents, which stream past it), both with
/// `Retry-After`. A route that already has a `503` of its own keeps it, with these added.
fn add_limit_responses(doc: &mut Value) {
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let retry = json!({"Retry-After": {"description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0}}});
    for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
        let timed = path != "/api/files/{id}/content";
        for (_, op) in item.as_object_mut().into_iter().flatten() {
            let limits = if timed {
                "the server is answering as many requests as it allows (`overloaded`, REALNET_MAX_CONCURRENT_REQUESTS), or the request ran past REALNET_REQUEST_TIMEOUT and was stopped (`timeout`): retry after Retry-After"
            } else {
                "the server is answering as many requests as it allows (`overloaded`, REALNET_MAX_CONCURRENT_REQUESTS): retry after Retry-After"
            };
            let response = &mut op["responses"]["503"];
            let description = match response["description"].as_str() {
                Some(own) => format!("{own}; or {limits}"),
                None => capitalised(limits),
            };
            *response = json!({"description": description, "headers": retry, "content": error});
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The request bodies of a type endpoint, with the type's own attribute schema, so that
/// generated clients (and the fuzzer in `tests/run`) know each field.
struct RequestBodies {
    create: Value,
    replace: Value,
    patch: Value,
}

impl RequestBodies {
    fn new(rn: &Realnet, t: &TypeDef) -> Self {
        let subtypes = rn.types.subtypes(&t.name);
        let mut properties = Map::new();
        let mut nullable = Map::new();
        let mut required = Vec::new();
        // Server-owned fields are not the client's to send.
        for f in t.fields.iter().filter(|f| !f.managed) {
            let schema = field_schema(f);
            nullable.insert(f.name.clone(), json!({"anyOf": [schema, {"type": "null"}]}));
            properties.insert(f.name.clone(), schema);
            if f.required && f.default.is_none() {
                required.push(f.name.clone());
            }
        }
        // A subtype's own fields are accepted too.
        let open = t.extra_attributes || subtypes.len() > 1;
        let attributes = json!({"type": "object", "properties": properties,
            "required": required, "additionalProperties": open});
        let name = json!({"type": "string", "minLength": 1, "maxLength": 255});
        let parent = json!({"type": ["string", "null"], "format": "uuid"});
        RequestBodies {
            create: json!({"type": "object", "additionalProperties": false, "required": ["name"],
                "properties": {"type": {"type": "string", "enum": subtypes}, "name": name,
                    "parent": parent, "attributes": attributes}}),
            replace: json!({"type": "object", "additionalProperties": false, "required": ["name"],
                "properties": {"name": name, "parent": parent, "attributes": attributes}}),
            patch: json!({"type": "object", "additionalProperties": false,
                "properties": {"name": name, "parent": parent, "attributes": {"type": "object",
                    "properties": nullable, "additionalProperties": open}}}),
        }
    }
}

/// A field as JSON Schema. Patterns are written as the loader's regular expressions, which
/// agree with JSON Schema's for the common constructs.
fn field_schema(f: &Field) -> Value {
    let mut schema = match f.kind {
        FieldKind::String | FieldKind::Text => json!({"type": "string"}),
        FieldKind::Integer => json!({"type": "integer", "format": "int64"}),
        FieldKind::Number => json!({"type": "number"}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldKind::Json => json!({}),
        FieldKind::Enum => json!({"type": "string", "enum": f.values}),
        FieldKind::Ref | FieldKind::File => json!({"type": "string", "format": "uuid"}),
    };
    match f.kind {
        FieldKind::String | FieldKind::Text => {
            if let Some(min) = f.min {
                schema["minLength"] = json!(min.ceil() as u64);
            }
            if let Some(max) = f.max {
                schema["maxLength"] = json!(max.floor() as u64);
            }
            if let Some(p) = &f.pattern {
                schema["pattern"] = json!(p);
            }
        }
        FieldKind::Integer | FieldKind::Number => {
            if let Some(min) = f.min {
                schema["minimum"] = json!(min);
            }
            if let Some(max) = f.max {
                schema["maximum"] = json!(max);
            }
        }
        _ => {}
    }
    schema
}

#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn document(State(api): State<ApiState>) -> impl IntoResponse {
    let text = api.openapi(build).to_string();
    ([(header::CONTENT_TYPE, "application/json")], text)
}
