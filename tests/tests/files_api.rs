//! `/api/files`: create a file, upload its bytes where told, confirm, read them back; on local
//! storage (every item store) and on S3 (moto) through presigned URLs. Every bad input is
//! refused with a clear error and leaves nothing half-written.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use realnet::config::StorageConfig;
use realnet_tests::{Answer, OTHER_ORG, StoreKind, TestApp, TestTokens, on_every_store};
use serde_json::{Value, json};

async fn new_file(app: &TestApp, name: &str, content_type: &str, size: u64) -> Answer {
    app.post(
        "/api/files",
        json!({"name": name, "content_type": content_type, "size": size}),
    )
    .await
}

/// Uploads through this API (local storage).
async fn put_content(app: &TestApp, id: &str, content_type: &str, bytes: &'static [u8]) -> Answer {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/files/{id}/content"))
        .header("content-type", content_type)
        .body(Body::from(bytes))
        .expect("request");
    app.send(request).await
}

fn id(v: &Value) -> String {
    v["item"]["id"].as_str().expect("id").to_string()
}

async fn a_file_round_trips_on_local_storage(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let created = new_file(&app, "hello.txt", "text/plain", 11).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["item"]["attributes"]["status"], "pending");
    let file = id(&created.body);
    assert_eq!(
        created.body["upload"]["url"],
        format!("/api/files/{file}/content").as_str()
    );
    assert_eq!(created.body["upload"]["method"], "PUT");

    let early = app.get(&format!("/api/files/{file}/content")).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    let confirm_early = app
        .call(
            Method::POST,
            &format!("/api/files/{file}/confirm"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        confirm_early.status,
        StatusCode::CONFLICT,
        "{}",
        confirm_early.text
    );

    for (content_type, bytes, status) in [
        (
            "text/html",
            &b"hello files"[..],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "text/plain",
            &b"hello files, and more"[..],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "text/plain",
            &b"hello"[..],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let refused = put_content(&app, &file, content_type, bytes).await;
        assert_eq!(
            refused.status, status,
            "{content_type} {bytes:?}: {}",
            refused.text
        );
    }
    let stored = put_content(&app, &file, "text/plain", b"hello files").await;
    assert_eq!(stored.status, StatusCode::NO_CONTENT, "{}", stored.text);
    let confirmed = app
        .call(
            Method::POST,
            &format!("/api/files/{file}/confirm"),
            None,
            &[],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.body["attributes"]["status"], "ready");
    assert_eq!(
        confirmed.body["attributes"]["checksum"],
        "6e5bc8df28cfac06658769974f895070db24676563ebc1ae17fb961f5da4d5e9"
    );
    let content = app.get(&format!("/api/files/{file}/content")).await;
    assert_eq!(content.status, StatusCode::OK);
    assert_eq!(content.text, "hello files");
    assert_eq!(content.header("content-type"), "text/plain");
    assert_eq!(content.header("x-content-type-options"), "nosniff");

    // Another org cannot see it, nor its content.
    let other = app.rn.token_for(OTHER_ORG, "admin").await;
    let hidden = app
        .call_as(
            Some(&other),
            Method::GET,
            &format!("/api/files/{file}/content"),
            None,
            &[],
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let listed = app.get("/api/files").await;
    assert_eq!(listed.body["items"][0]["id"], file.as_str());
}

async fn bad_files_are_refused_and_nothing_is_written(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let before = app.snapshot().await;
    for (body, status, field) in [
        (
            json!({"name": "..", "content_type": "text/plain", "size": 1}),
            422,
            "name",
        ),
        (
            json!({"name": "../../etc/passwd", "content_type": "text/plain", "size": 1}),
            422,
            "name",
        ),
        (
            json!({"name": "a/b.txt", "content_type": "text/plain", "size": 1}),
            422,
            "name",
        ),
        (
            json!({"name": "nul\u{0}.txt", "content_type": "text/plain", "size": 1}),
            422,
            "name",
        ),
        (
            json!({"name": "invoice\u{202E}fdp.exe", "content_type": "text/plain", "size": 1}),
            422,
            "name",
        ),
        (
            json!({"name": "a.txt", "content_type": "not a type", "size": 1}),
            422,
            "content_type",
        ),
        (
            json!({"name": "a.txt", "content_type": "text/plain", "size": 1u64 << 40}),
            422,
            "size",
        ),
        (
            json!({"name": "a.txt", "content_type": "text/plain", "size": -1}),
            400,
            "",
        ),
        (
            json!({"name": "a.txt", "content_type": "text/plain"}),
            400,
            "",
        ),
        (
            json!({"name": "a.txt", "content_type": "text/plain", "size": 1, "path": "/etc"}),
            400,
            "",
        ),
    ] {
        let a = app.post("/api/files", body.clone()).await;
        assert_eq!(a.status.as_u16(), status, "{body}: {}", a.text);
        if !field.is_empty() {
            assert!(
                a.body["error"]["details"]["fields"][field].is_string(),
                "{body}: {}",
                a.text
            );
        }
    }
    assert_eq!(app.snapshot().await, before, "nothing was created");
    let bad_id = app.get("/api/files/not-an-id/content").await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
}

async fn confirm(app: &TestApp, id: &str) -> Answer {
    app.call(Method::POST, &format!("/api/files/{id}/confirm"), None, &[])
        .await
}

/// A confirmed file's bytes stay the ones its checksum describes: uploading again is a `409`,
/// and so is confirming again, through the API or a job.
async fn a_confirmed_file_cannot_be_replaced(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let file = id(&new_file(&app, "hello.txt", "text/plain", 11).await.body);
    let stored = put_content(&app, &file, "text/plain", b"hello files").await;
    assert_eq!(stored.status, StatusCode::NO_CONTENT, "{}", stored.text);
    let confirmed = confirm(&app, &file).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let before = app.snapshot().await;

    let replaced = put_content(&app, &file, "text/plain", b"HELLO FILES").await;
    assert_eq!(replaced.status, StatusCode::CONFLICT, "{}", replaced.text);
    assert_eq!(replaced.code(), "conflict");
    assert!(
        replaced.text.contains("cannot be replaced"),
        "{}",
        replaced.text
    );
    let again = confirm(&app, &file).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(again.text.contains("confirmed already"), "{}", again.text);
    let token = app.admin_token.clone();
    let job = run_job(&app, &token, "files.finalize", json!({"file": file})).await;
    assert_eq!(job["status"], "failed", "{job}");

    let content = app.get(&format!("/api/files/{file}/content")).await;
    assert_eq!(content.text, "hello files");
    let after: Vec<_> = app
        .snapshot()
        .await
        .into_iter()
        .filter(|i| i.type_name != "Job")
        .collect();
    assert_eq!(after, before, "nothing changed");
}

/// `PUT .../content` is read as it arrives and refused at the first byte past the declared
/// size (or at once, when its length says so): nothing is kept, not even an earlier upload
/// is disturbed.
async fn an_upload_of_another_size_leaves_nothing(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let file = id(&new_file(&app, "five.txt", "text/plain", 5).await.body);
    let before = app.snapshot().await;
    let send = |bytes: &'static [u8], length: Option<&'static str>| {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(format!("/api/files/{file}/content"))
            .header("content-type", "text/plain");
        if let Some(l) = length {
            request = request.header("content-length", l);
        }
        app.send(request.body(Body::from(bytes)).expect("request"))
    };
    for (bytes, length, status) in [
        (&b"hello files"[..], None, StatusCode::PAYLOAD_TOO_LARGE),
        // A length that lies is caught while reading.
        (
            &b"hello files"[..],
            Some("5"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            &b"hello files"[..],
            Some("11"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (&b"hi"[..], None, StatusCode::UNPROCESSABLE_ENTITY),
        (&b"hello"[..], Some("2"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let refused = send(bytes, length).await;
        assert_eq!(
            refused.status, status,
            "{bytes:?} {length:?}: {}",
            refused.text
        );
        assert!(!refused.code().is_empty(), "a JSON error: {}", refused.text);
        let nothing = confirm(&app, &file).await;
        assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.text);
        assert!(
            nothing.text.contains("nothing has been uploaded"),
            "{}",
            nothing.text
        );
    }
    let refused = send(b"hi", None).await;
    assert_eq!(
        refused.body["error"]["details"]["fields"]["size"],
        "2 bytes sent, 5 declared"
    );
    assert_eq!(app.snapshot().await, before, "nothing changed");
    // A good upload, then a bad one: the good one stays.
    assert_eq!(send(b"hello", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(b"hello files", None).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let confirmed = confirm(&app, &file).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(
        confirmed.body["attributes"]["checksum"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}

/// On S3 the client uploads to the presigned URL itself, and reads through a redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_round_trips_on_s3() {
    let endpoint = realnet_tests::aws_endpoint();
    let bucket = format!("realnet-files-{}", uuid::Uuid::now_v7().simple());
    let storage = StorageConfig::S3 {
        bucket: bucket.clone(),
        endpoint: Some(endpoint.clone()),
    };
    let app = TestApp::with_config(StoreKind::Sqlite, |c| c.storage = storage).await;
    realnet::blob::S3BlobStore::new(&bucket, Some(&endpoint))
        .ensure_bucket()
        .await
        .expect("bucket");
    let created = new_file(&app, "report.csv", "text/csv", 8).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let file = id(&created.body);
    let upload = &created.body["upload"];
    let url = upload["url"].as_str().expect("url");
    assert!(url.starts_with(&endpoint), "{url}");
    let direct = put_content(&app, &file, "text/csv", b"a,b\n1,2\n").await;
    assert_eq!(
        direct.status,
        StatusCode::BAD_REQUEST,
        "S3 uploads go to S3"
    );

    let client = reqwest::Client::new();
    let mut put = client.put(url).body("a,b\n1,2\n");
    for (k, v) in upload["headers"].as_object().expect("headers") {
        put = put.header(k, v.as_str().expect("header value"));
    }
    let uploaded = put.send().await.expect("upload to S3");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());

    let confirmed = app
        .call(
            Method::POST,
            &format!("/api/files/{file}/confirm"),
            None,
            &[],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let checksum = confirmed.body["attributes"]["checksum"].clone();
    let download = || async {
        let redirect = app.get(&format!("/api/files/{file}/content")).await;
        assert_eq!(redirect.status, StatusCode::FOUND, "{}", redirect.text);
        let location = redirect.header("location").to_string();
        reqwest::get(&location).await.expect("download")
    };
    let got = download().await;
    let header = |name: &str| {
        got.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/csv");
    assert_eq!(header("content-disposition"), "attachment");
    assert_eq!(got.text().await.expect("text"), "a,b\n1,2\n");

    // The presigned URL is still valid, and S3 takes a late upload to it: it changes nothing,
    // and confirming again is refused.
    let before = app.snapshot().await;
    let mut late = client.put(url).body("<script>");
    for (k, v) in upload["headers"].as_object().expect("headers") {
        late = late.header(k, v.as_str().expect("header value"));
    }
    let late = late.send().await.expect("late upload");
    assert!(late.status().is_success(), "{}", late.status());
    let again = confirm(&app, &file).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(download().await.text().await.expect("text"), "a,b\n1,2\n");
    let item = app.get(&format!("/api/files/{file}")).await;
    assert_eq!(item.body["attributes"]["checksum"], checksum);
    assert_eq!(app.snapshot().await, before, "nothing changed");

    // A wrong-size upload is not confirmed.
    let second = new_file(&app, "short.csv", "text/csv", 100).await;
    let short = id(&second.body);
    let target = second.body["upload"]["url"].as_str().expect("url");
    client
        .put(target)
        .body("short")
        .send()
        .await
        .expect("upload");
    let refused = app
        .call(
            Method::POST,
            &format!("/api/files/{short}/confirm"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
}

/// Sends a job and waits for it to end.
async fn run_job(app: &TestApp, token: &str, kind: &str, payload: Value) -> Value {
    let sent = app
        .call_as(
            Some(token),
            Method::POST,
            "/api/jobs",
            Some(json!({"kind": kind, "payload": payload})),
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let id = sent.body["id"].as_str().expect("id").to_string();
    app.finished_job(token, &id).await
}

/// `files.finalize` through the queue does what `POST /api/files/{id}/confirm` does, with the
/// same refusals.
async fn a_job_finalizes_an_upload(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let token = app.admin_token.clone();
    let file = id(&new_file(&app, "queued.txt", "text/plain", 5).await.body);
    let put = put_content(&app, &file, "text/plain", b"hello").await;
    assert_eq!(put.status, StatusCode::NO_CONTENT, "{}", put.text);
    let done = run_job(&app, &token, "files.finalize", json!({"file": file})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let ready = app.get(&format!("/api/items/{file}")).await;
    assert_eq!(ready.body["attributes"]["status"], "ready");
    assert_eq!(
        ready.body["attributes"]["checksum"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );

    // Bytes of the wrong size (written straight to storage: the upload routes refuse them)
    // fail the job for good, with the reason, and leave the file pending.
    let short = id(&new_file(&app, "short.txt", "text/plain", 9).await.body);
    let key = realnet::blob::BlobKey::new("default", short.parse().expect("uuid")).expect("key");
    app.rn
        .blobs
        .put_upload(&key, &mut Some(bytes::Bytes::from_static(b"hello")), 5)
        .await
        .expect("put");
    let failed = run_job(&app, &token, "files.finalize", json!({"file": short})).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("5 bytes were uploaded, 9 declared")),
        "{failed}"
    );
    let pending = app.get(&format!("/api/items/{short}")).await;
    assert_eq!(pending.body["attributes"]["status"], "pending");
    // Another org's file is not found; a payload of the wrong shape is refused before queueing.
    let (_, other) = app.account(OTHER_ORG, "stranger", true).await;
    let hidden = run_job(&app, &other, "files.finalize", json!({"file": file})).await;
    assert_eq!(hidden["status"], "failed", "{hidden}");
    assert!(
        hidden["error"]
            .as_str()
            .is_some_and(|e| e.contains("no item with id")),
        "{hidden}"
    );
    let bad = app
        .post(
            "/api/jobs",
            json!({"kind": "files.finalize", "payload": {"file": "x"}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
}

/// A form part: name, file name, content type, bytes.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body of `parts`.
fn form(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "realnet-test-boundary";
    let mut body = Vec::new();
    for (name, file_name, content_type, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = file_name {
            body.extend(format!("; filename=\"{f}\"").bytes());
        }
        body.extend(b"\r\n");
        if let Some(t) = content_type {
            body.extend(format!("Content-Type: {t}\r\n").bytes());
        }
        body.extend(b"\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(app: &TestApp, parts: &[Part<'_>]) -> Answer {
    let (content_type, body) = form(parts);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/files")
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    app.send(request).await
}

/// A small file sent inline is stored and confirmed at once; bad forms are refused and leave
/// nothing behind.
async fn a_small_file_is_sent_inline(kind: StoreKind) {
    let app = TestApp::new(kind).await;
    let sent = post_form(
        &app,
        &[("file", Some("notes.txt"), Some("text/plain"), b"hello")],
    )
    .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    assert!(sent.body.get("upload").is_none(), "{}", sent.text);
    let item = &sent.body["item"];
    assert_eq!(item["name"], "notes.txt");
    assert_eq!(item["attributes"]["status"], "ready");
    assert_eq!(item["attributes"]["size"], 5);
    assert_eq!(
        item["attributes"]["checksum"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let id = item["id"].as_str().expect("id");
    let content = app.get(&format!("/api/files/{id}/content")).await;
    assert_eq!(content.status, StatusCode::OK);
    assert_eq!(content.text, "hello");
    let folder = app
        .post("/api/items", json!({"type": "Folder", "name": "Inbox"}))
        .await;
    let folder_id = folder.body["id"].as_str().expect("id").to_string();
    let named = post_form(
        &app,
        &[
            ("name", None, None, b"renamed.csv"),
            ("parent", None, None, folder_id.as_bytes()),
            ("file", Some("x.csv"), Some("text/csv"), b"a,b\n1,2\n"),
        ],
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.text);
    assert_eq!(named.body["item"]["name"], "renamed.csv");
    assert_eq!(named.body["item"]["parent"], folder_id.as_str());

    let before = app.snapshot().await;
    let big = vec![b'x'; app.rn.config.body_limit + 1];
    for (parts, status) in [
        (
            vec![("name", None, None, &b"no file"[..])],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("file", Some("a.txt"), Some("text/plain"), &b"a"[..]),
                ("extra", None, None, &b"x"[..]),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("file", Some("a.txt"), Some("text/plain"), &b"a"[..]),
                ("file", Some("b.txt"), Some("text/plain"), &b"b"[..]),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("file", Some("a.txt"), None, &b"a"[..])],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![("file", Some("a.txt"), Some("not a type"), &b"a"[..])],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![(
                "file",
                Some("../../etc/passwd"),
                Some("text/plain"),
                &b"a"[..],
            )],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![("file", None, Some("text/plain"), &b"a"[..])],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![
                ("parent", None, None, &b"nope"[..]),
                ("file", Some("a.txt"), Some("text/plain"), &b"a"[..]),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![(
                "file",
                Some("big.bin"),
                Some("application/octet-stream"),
                &big[..],
            )],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let refused = post_form(&app, &parts).await;
        assert_eq!(refused.status, status, "{}", refused.text);
        assert!(!refused.code().is_empty(), "a JSON error: {}", refused.text);
    }
    // A broken form (no closing boundary) is a 400 too.
    let broken = Request::builder()
        .method(Method::POST)
        .uri("/api/files")
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body(Body::from(
            "--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
        ))
        .expect("request");
    assert_eq!(app.send(broken).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.snapshot().await, before, "nothing written");
}

on_every_store!(
    a_small_file_is_sent_inline,
    a_confirmed_file_cannot_be_replaced,
    an_upload_of_another_size_leaves_nothing,
    a_file_round_trips_on_local_storage,
    bad_files_are_refused_and_nothing_is_written,
    a_job_finalizes_an_upload,
);
