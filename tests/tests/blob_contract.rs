//! The `BlobStore` contract (`realnet_tests::blob_contract`) on the local folder and on S3 (in
//! the moto emulator that `tests/run` starts).

use realnet::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use realnet_tests::blob_contract;

async fn s3() -> S3BlobStore {
    let endpoint = realnet_tests::aws_endpoint();
    let bucket = format!("realnet-test-{}", uuid::Uuid::now_v7().simple());
    let store = S3BlobStore::new(&bucket, Some(&endpoint));
    store
        .ensure_bucket()
        .await
        .expect("create the bucket in moto");
    store
}

macro_rules! blob_contract_tests {
    ($($name:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test]
               async fn $name() {
                   let dir = tempfile::tempdir().expect("temp dir");
                   let store = super::LocalBlobStore::new(dir.path().to_path_buf());
                   super::blob_contract::$name(&store as &dyn super::BlobStore).await
               } )*
        }
        mod s3 {
            $( #[tokio::test]
               async fn $name() {
                   let store = super::s3().await;
                   super::blob_contract::$name(&store as &dyn super::BlobStore).await
               } )*
        }
    };
}

blob_contract_tests!(
    contents_round_trip,
    confirmed_content_is_written_once,
    uploads_of_another_size_leave_nothing,
    keys_of_two_orgs_never_meet,
    upload_targets_say_how_to_upload,
);

/// moto does not check signatures, so what a presigned URL promises is checked here, on the
/// URL itself: it expires after the configured time, and its signature covers the content
/// type and length (another size gets another signature, so S3 refuses a tampered upload).
#[tokio::test]
async fn presigned_urls_expire_and_bind_type_and_size() {
    use std::time::Duration;
    let store = s3().await;
    let key = realnet::blob::BlobKey::new("acme", uuid::Uuid::now_v7()).expect("key");
    let query = |url: &str| -> std::collections::HashMap<String, String> {
        let (_, q) = url.split_once('?').expect("a presigned URL has a query");
        serde_urlencoded::from_str(q).expect("query")
    };
    let ttl = Duration::from_secs(300);
    let a = store
        .upload_target(&key, "text/plain", 10, ttl)
        .await
        .expect("target");
    let b = store
        .upload_target(&key, "text/plain", 11, ttl)
        .await
        .expect("target");
    let c = store
        .upload_target(&key, "text/html", 10, ttl)
        .await
        .expect("target");
    let (qa, qb, qc) = (query(&a.url), query(&b.url), query(&c.url));
    assert_eq!(qa["X-Amz-Expires"], "300");
    let signed = &qa["X-Amz-SignedHeaders"];
    assert!(
        signed.contains("content-length") && signed.contains("content-type"),
        "{signed}"
    );
    assert_eq!(qa["X-Amz-Signature"].len(), 64);
    assert_ne!(
        qa["X-Amz-Signature"], qb["X-Amz-Signature"],
        "the size is signed"
    );
    assert_ne!(
        qa["X-Amz-Signature"], qc["X-Amz-Signature"],
        "the type is signed"
    );
    assert_eq!(
        a.headers.get("content-length").map(String::as_str),
        Some("10")
    );

    assert!(a.url.contains(&key.upload_str()), "{}", a.url);

    let download = store
        .download(&key, "text/plain", Duration::from_secs(60))
        .await
        .expect("download");
    let realnet::blob::Download::Redirect(url) = download else {
        panic!("S3 downloads are redirects");
    };
    let q = query(&url);
    assert_eq!(q["X-Amz-Expires"], "60");
    assert_eq!(q["response-content-type"], "text/plain");
    assert_eq!(q["response-content-disposition"], "attachment");
}

/// The presigned `GET` answers with the content type it was signed for (the file's confirmed
/// one, whatever the upload said) and as an attachment, as local downloads do; and a `PUT` to
/// the presigned upload URL after confirming changes nothing.
#[tokio::test]
async fn presigned_urls_serve_the_confirmed_content_as_an_attachment() {
    use std::time::Duration;
    let store = s3().await;
    let key = realnet::blob::BlobKey::new("acme", uuid::Uuid::now_v7()).expect("key");
    let target = store
        .upload_target(&key, "text/plain", 5, Duration::from_secs(300))
        .await
        .expect("target");
    let client = reqwest::Client::new();
    let put = |body: &'static str, content_type: &'static str| {
        client
            .put(&target.url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let sent = put("hello", "text/plain").await.expect("upload");
    assert!(sent.status().is_success(), "{}", sent.status());
    assert!(store.confirm(&key).await.expect("confirm"));
    let late = put("HTML!", "text/html").await.expect("late upload");
    assert!(late.status().is_success(), "S3 takes it, {}", late.status());
    assert!(store.confirm(&key).await.expect("confirm again"));

    let realnet::blob::Download::Redirect(url) = store
        .download(&key, "text/plain", Duration::from_secs(60))
        .await
        .expect("download")
    else {
        panic!("S3 downloads are redirects");
    };
    let got = reqwest::get(&url).await.expect("download");
    assert!(got.status().is_success(), "{}", got.status());
    let header = |name: &str| {
        got.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/plain");
    assert_eq!(header("content-disposition"), "attachment");
    assert_eq!(got.text().await.expect("body"), "hello");
    assert_eq!(
        store.sha256(&key).await.expect("sha256"),
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}
