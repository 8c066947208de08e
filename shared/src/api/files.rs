//! `/api/files`: `File` items and their contents. Creating a file returns where to upload its
//! bytes (a presigned S3 `PUT`, or this API's `PUT /api/files/{id}/content` on local
//! storage); confirming checks what arrived and records its size and SHA-256; reading the
//! content redirects to a presigned S3 `GET` or streams the bytes.

use std::sync::Arc;

use axum::Json;
use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::extract::{JsonBody, PathParams, QueryPairs, item_id};
use super::items::{ItemPage, page};
use super::state::ApiState;
use crate::auth::Principal;
use crate::blob::finalize::{self, FILE, FinalizeError, finalize, is_ready};
use crate::blob::{BlobError, BlobKey, Chunks, Download, UploadTarget};
use crate::context::Realnet;
use crate::error::{ApiError, ErrorBody};
use crate::item::Item;
use crate::item::attributes::ValidationErrors;
use crate::item::ops::{self, NewItem};
use crate::query::ItemQuery;

/// A request's body, read a chunk at a time as it arrives.
struct RequestBody(Body);

#[async_trait::async_trait]
impl Chunks for RequestBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BlobError> {
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.0).poll_frame(cx)).await;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(BlobError::Body(e.to_string())),
                Some(Ok(frame)) => {
                    // Trailers carry no bytes.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// `POST /api/files` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    name: String,
    parent: Option<Uuid>,
    /// A MIME type, e.g. `application/pdf`.
    content_type: String,
    /// The exact size of the upload, in bytes.
    size: u64,
}

/// `POST /api/files` as a `multipart/form-data` form: a small file sent inline (the whole
/// request within `REALNET_BODY_LIMIT`), stored and confirmed at once.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documents the form for OpenAPI; the parts are read by `NewFileBody`.
pub struct InlineFile {
    /// The bytes, with their content type (and a file name, used when `name` is absent).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    name: Option<String>,
    parent: Option<Uuid>,
}

/// A file as `POST /api/files` takes it.
pub enum NewFileBody {
    Declared(NewFile),
    Inline { file: NewFile, bytes: Bytes },
}

impl FromRequest<ApiState> for NewFileBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, rn: &ApiState) -> Result<Self, ApiError> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        if !multipart {
            let JsonBody(file) = JsonBody::<NewFile>::from_request(req, rn).await?;
            return Ok(NewFileBody::Declared(file));
        }
        let form = Multipart::from_request(req, rn)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the form: {e}")))?;
        inline(form).await
    }
}

fn form_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the form is larger than the inline limit (REALNET_BODY_LIMIT); upload larger files with a declared size",
        )
    } else {
        ApiError::bad_request(format!("cannot read the form: {}", e.body_text()))
    }
}

/// Reads the form's parts: `file` (required), `name` and `parent`.
async fn inline(mut form: Multipart) -> Result<NewFileBody, ApiError> {
    let (mut file, mut name, mut parent) = (None, None, None);
    while let Some(part) = form.next_field().await.map_err(form_error)? {
        let field = part.name().unwrap_or_default().to_string();
        match field.as_str() {
            "file" if file.is_none() => {
                let content_type = part.content_type().map(str::to_string);
                let file_name = part.file_name().map(str::to_string);
                let bytes = part.bytes().await.map_err(form_error)?;
                file = Some((content_type, file_name, bytes));
            }
            "name" if name.is_none() => name = Some(part.text().await.map_err(form_error)?),
            "parent" if parent.is_none() => parent = Some(part.text().await.map_err(form_error)?),
            "file" | "name" | "parent" => {
                return Err(ApiError::bad_request(format!(
                    "the form has more than one {field:?} part"
                )));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form part {other:?}: send file, and optionally name and parent"
                )));
            }
        }
    }
    let Some((content_type, file_name, bytes)) = file else {
        return Err(ApiError::bad_request(
            "the form has no file part (the bytes, with their Content-Type)",
        ));
    };
    let mut errors = ValidationErrors::default();
    let parent = match parent.as_deref() {
        None | Some("") => None,
        Some(p) => match p.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("parent", format!("{p:?} is not an item id"));
                None
            }
        },
    };
    let content_type = content_type.unwrap_or_default();
    if content_type.is_empty() {
        errors.add("content_type", "the file part has no Content-Type");
    }
    let name = name
        .filter(|n| !n.is_empty())
        .or(file_name)
        .unwrap_or_default();
    errors.into_result(())?;
    let file = NewFile {
        name,
        parent,
        content_type,
        size: bytes.len() as u64,
    };
    Ok(NewFileBody::Inline { file, bytes })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedFile {
    item: Item,
    /// Where to upload the bytes; absent when they were sent inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    upload: Option<UploadTarget>,
}

fn key(item: &Item) -> Result<BlobKey, ApiError> {
    BlobKey::new(&item.org, item.id).map_err(|_| ApiError::internal())
}

fn attr<'a>(item: &'a Item, name: &str) -> Option<&'a Value> {
    item.attributes.get(name)
}

#[utoipa::path(get, path = "/api/files", operation_id = "list_files", tag = "files",
    params(
        ("type" = Option<String>, Query, description = "File or a subtype"),
        ("parent" = Option<String>, Query, description = "An item id, or root"),
        ("name" = Option<String>, Query, description = "Exact name, or a prefix ending in *"),
        ("q" = Option<String>, Query, description = "Words to find in the name and string attributes"),
        ("sort" = Option<String>, Query, description = "name, created, updated or attr.<field>; - for descending"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "A page of files", body = ItemPage),
        (status = 400, description = "Unknown parameter, field, operator or sort key", body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    principal: Principal,
    QueryPairs(params): QueryPairs,
) -> Result<Json<ItemPage>, ApiError> {
    let query = ItemQuery::parse(&api.rn.types, &params, Some(FILE))?;
    page(&api, &principal, query).await
}

#[utoipa::path(post, path = "/api/files", operation_id = "create_file", tag = "files", request_body(content((NewFile = "application/json"), (InlineFile = "multipart/form-data")), description = "A file to upload afterwards (JSON), or a small file sent inline (a multipart form)"),
    responses((status = 201, description = "The file item and where to upload its bytes (pending); or, sent inline, the file stored and ready", body = CreatedFile),
        (status = 400, description = "Malformed body or form", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a multipart form", body = ErrorBody),
        (status = 422, description = "Invalid name, content type, size or parent", body = ErrorBody),
        (status = 503, description = "File storage is unavailable", body = ErrorBody)))]
pub async fn create(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    body: NewFileBody,
) -> Result<Response, ApiError> {
    let (body, inline) = match body {
        NewFileBody::Declared(file) => (file, None),
        NewFileBody::Inline { file, bytes } => (file, Some(bytes)),
    };
    if body.size > rn.config.file_max_size {
        return Err(ValidationErrors::single(
            "size",
            format!(
                "{} bytes is over the limit of {} (REALNET_FILE_MAX_SIZE)",
                body.size, rn.config.file_max_size
            ),
        )
        .into());
    }
    let mut attributes = Map::new();
    attributes.insert("content_type".into(), json!(body.content_type));
    attributes.insert("size".into(), json!(body.size));
    attributes.insert("status".into(), json!("pending"));
    let input = NewItem {
        type_name: FILE.into(),
        name: body.name,
        parent: body.parent,
        attributes,
    };
    // The server declares the content type and size (server-owned), as the caller, whose
    // right to create the file applies.
    let (item, _) = ops::create_by_server(&rn, &principal, input, Some(FILE)).await?;
    let (item, upload) = match inline {
        Some(bytes) => (store_inline(&rn, &principal, &item, bytes).await?, None),
        None => {
            let upload = rn
                .blobs
                .upload_target(
                    &key(&item)?,
                    &body.content_type,
                    body.size,
                    rn.config.file_url_ttl,
                )
                .await?;
            (item, Some(upload))
        }
    };
    let location = format!("/api/files/{}", item.id);
    let mut response = (StatusCode::CREATED, Json(CreatedFile { item, upload })).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Stores the bytes of a file sent inline and confirms it (or deletes the file again).
async fn store_inline(
    rn: &Realnet,
    principal: &Principal,
    item: &Item,
    bytes: Bytes,
) -> Result<Item, ApiError> {
    finalize::store_inline(rn, principal, item, bytes)
        .await
        .map_err(|e| match e {
            // Stored just now: not finding it is the server's fault.
            FinalizeError::NotUploaded(_) => ApiError::internal(),
            e => ApiError::from(e),
        })
}

#[utoipa::path(put, path = "/api/files/{id}/content", operation_id = "upload_file_content", tag = "files",
    params(("id" = Uuid, Path, description = "File id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The bytes, with the declared content type"),
    responses((status = 204, description = "Stored; confirm next"),
        (status = 400, description = "Malformed id, storage is not local, or the body broke off", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The file is confirmed: its content cannot be replaced", body = ErrorBody),
        (status = 413, description = "More bytes than declared (nothing is kept)", body = ErrorBody),
        (status = 415, description = "Not the declared content type", body = ErrorBody),
        (status = 422, description = "Fewer bytes than declared (nothing is kept)", body = ErrorBody)))]
/// The body is written to storage as it arrives and refused at the first byte past the
/// declared size, so an upload costs no more memory than a chunk, whatever its size.
pub async fn upload(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let id = item_id(&id)?;
    if rn.blobs.kind() != "local" {
        return Err(ApiError::bad_request(
            "upload to the URL that POST /api/files returned: contents do not pass through this API",
        ));
    }
    let item = writable(&rn, &principal, id).await?;
    if is_ready(&item) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("file {id} is confirmed; its content cannot be replaced (create a new file)"),
        ));
    }
    let declared_type = attr(&item, "content_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sent_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sent_type != declared_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the file was declared as {declared_type:?}; send that Content-Type"),
        ));
    }
    let declared = attr(&item, "size").and_then(Value::as_u64).unwrap_or(0);
    // A length given up front is checked before a byte is read.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(sent) if sent > declared => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("{sent} bytes sent, {declared} declared"),
            ));
        }
        Some(sent) if sent < declared => {
            return Err(BlobError::TooSmall { sent, declared }.into());
        }
        _ => {}
    }
    rn.blobs
        .put_upload(&key(&item)?, &mut RequestBody(body), declared)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The file, if the caller may change it.
async fn writable(rn: &Realnet, principal: &Principal, id: Uuid) -> Result<Item, ApiError> {
    let item = ops::get(rn, principal, id, Some(FILE)).await?;
    ops::check_update(rn, principal, &item).await?;
    Ok(item)
}

#[utoipa::path(post, path = "/api/files/{id}/confirm", operation_id = "confirm_file", tag = "files",
    params(("id" = Uuid, Path, description = "File id")),
    responses((status = 200, description = "The file, ready, with its size and SHA-256", body = Item),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "Nothing has been uploaded yet, or the file is confirmed already", body = ErrorBody),
        (status = 422, description = "The upload is not the declared size", body = ErrorBody)))]
pub async fn confirm(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Item>, ApiError> {
    let id = item_id(&id)?;
    let prepared = finalize(&rn, &principal, id).await?;
    let item = prepared.item.clone().expect("a finalized file");
    ops::commit(&rn, &principal, vec![prepared]).await?;
    Ok(Json(item))
}

#[utoipa::path(get, path = "/api/files/{id}/content", operation_id = "get_file_content", tag = "files",
    params(("id" = Uuid, Path, description = "File id")),
    responses((status = 200, description = "The bytes (local storage)", content_type = "application/octet-stream"),
        (status = 302, description = "A short-lived presigned URL (S3)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The upload is not confirmed yet", body = ErrorBody)))]
pub async fn content(
    State(rn): State<Arc<Realnet>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let id = item_id(&id)?;
    let item = ops::get(&rn, &principal, id, Some(FILE)).await?;
    if attr(&item, "status").and_then(Value::as_str) != Some("ready") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the file's upload is not confirmed yet (POST /api/files/{id}/confirm)",
        ));
    }
    let content_type = attr(&item, "content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_string();
    let key = key(&item)?;
    if rn.blobs.info(&key).await?.is_none() {
        return Err(ApiError::not_found(format!("file {id} has no content")));
    }
    match rn
        .blobs
        .download(&key, &content_type, rn.config.file_url_ttl)
        .await?
    {
        Download::Redirect(url) => {
            let location = HeaderValue::from_str(&url).map_err(|_| ApiError::internal())?;
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        Download::Bytes(bytes) => {
            let content_type =
                HeaderValue::from_str(&content_type).map_err(|_| ApiError::internal())?;
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment"),
                    ),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
    }
}
