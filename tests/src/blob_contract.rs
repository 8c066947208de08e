//! The `BlobStore` contract: what the local folder and S3 (in moto) must both do, checked the
//! same way on each (see `tests/tests/blob_contract.rs`).

use std::time::Duration;

use bytes::Bytes;
use realnet::blob::{BlobError, BlobKey, BlobStore, Download};
use uuid::Uuid;

const HELLO_SHA256: &str = "6e5bc8df28cfac06658769974f895070db24676563ebc1ae17fb961f5da4d5e9";

fn key(org: &str) -> BlobKey {
    BlobKey::new(org, Uuid::now_v7()).expect("a valid key")
}

/// The bytes behind a download: served directly, or fetched from the presigned URL.
pub async fn fetch(download: Download) -> Bytes {
    match download {
        Download::Bytes(b) => b,
        Download::Redirect(url) => {
            let answer = reqwest::get(&url).await.expect("fetch the presigned URL");
            assert!(answer.status().is_success(), "{url}: {}", answer.status());
            answer.bytes().await.expect("body")
        }
    }
}

/// Uploads `bytes` (their own size declared).
async fn upload(blobs: &dyn BlobStore, k: &BlobKey, bytes: &'static [u8]) {
    blobs
        .put_upload(k, &mut Some(Bytes::from_static(bytes)), bytes.len() as u64)
        .await
        .expect("upload");
}

async fn content(blobs: &dyn BlobStore, k: &BlobKey) -> Bytes {
    let download = blobs
        .download(k, "text/plain", Duration::from_secs(60))
        .await
        .expect("download");
    fetch(download).await
}

pub async fn contents_round_trip(blobs: &dyn BlobStore) {
    let k = key("acme");
    assert_eq!(blobs.info(&k).await.expect("info"), None);
    assert!(
        !blobs.confirm(&k).await.expect("confirm"),
        "nothing to confirm"
    );
    upload(blobs, &k, b"hello files").await;
    assert_eq!(
        blobs.info(&k).await.expect("info"),
        None,
        "an upload is not content until confirmed"
    );
    assert!(blobs.confirm(&k).await.expect("confirm"));
    assert_eq!(
        blobs.read(&k, 11).await.expect("read"),
        Bytes::from_static(b"hello files")
    );
    assert!(matches!(
        blobs.read(&k, 10).await,
        Err(realnet::blob::BlobError::OverRead { size: 11, max: 10 })
    ));
    assert_eq!(
        blobs.info(&k).await.expect("info").map(|i| i.size),
        Some(11)
    );
    assert_eq!(blobs.sha256(&k).await.expect("sha256"), HELLO_SHA256);
    assert_eq!(content(blobs, &k).await, Bytes::from_static(b"hello files"));
    blobs.delete(&k).await.expect("delete");
    assert_eq!(blobs.info(&k).await.expect("info"), None);
    blobs.delete(&k).await.expect("deleting twice is fine");
}

/// Once confirmed, content is never written again: a later upload, confirmed or not, changes
/// neither the bytes nor their checksum.
pub async fn confirmed_content_is_written_once(blobs: &dyn BlobStore) {
    let k = key("acme");
    upload(blobs, &k, b"hello files").await;
    assert!(blobs.confirm(&k).await.expect("confirm"));
    upload(blobs, &k, b"HELLO FILES").await;
    assert_eq!(content(blobs, &k).await, Bytes::from_static(b"hello files"));
    assert!(blobs.confirm(&k).await.expect("confirm again"));
    assert_eq!(content(blobs, &k).await, Bytes::from_static(b"hello files"));
    assert_eq!(blobs.sha256(&k).await.expect("sha256"), HELLO_SHA256);
    // Deleting removes the content and any upload.
    upload(blobs, &k, b"late").await;
    blobs.delete(&k).await.expect("delete");
    assert_eq!(blobs.info(&k).await.expect("info"), None);
    assert!(!blobs.confirm(&k).await.expect("confirm"), "no upload left");
}

/// An upload of another size than declared is refused, and leaves nothing: not even an earlier
/// upload is disturbed.
pub async fn uploads_of_another_size_leave_nothing(blobs: &dyn BlobStore) {
    let k = key("acme");
    let long = blobs
        .put_upload(&k, &mut Some(Bytes::from_static(b"hello files")), 5)
        .await;
    assert!(
        matches!(long, Err(BlobError::TooLarge { declared: 5 })),
        "{long:?}"
    );
    let short = blobs
        .put_upload(&k, &mut Some(Bytes::from_static(b"hi")), 5)
        .await;
    assert!(
        matches!(
            short,
            Err(BlobError::TooSmall {
                sent: 2,
                declared: 5
            })
        ),
        "{short:?}"
    );
    assert!(
        !blobs.confirm(&k).await.expect("confirm"),
        "nothing was kept"
    );
    upload(blobs, &k, b"hello").await;
    let again = blobs
        .put_upload(&k, &mut Some(Bytes::from_static(b"hello there")), 5)
        .await;
    assert!(again.is_err());
    assert!(blobs.confirm(&k).await.expect("confirm"));
    assert_eq!(content(blobs, &k).await, Bytes::from_static(b"hello"));
}

pub async fn keys_of_two_orgs_never_meet(blobs: &dyn BlobStore) {
    let id = Uuid::now_v7();
    let a = BlobKey::new("acme", id).expect("key");
    let b = BlobKey::new("globex", id).expect("key");
    upload(blobs, &a, b"a").await;
    assert!(!blobs.confirm(&b).await.expect("confirm"));
    assert!(blobs.confirm(&a).await.expect("confirm"));
    assert_eq!(blobs.info(&b).await.expect("info"), None);
}

pub async fn upload_targets_say_how_to_upload(blobs: &dyn BlobStore) {
    let id = Uuid::now_v7();
    let k = BlobKey::new("acme", id).expect("key");
    let ttl = Duration::from_secs(300);
    let target = blobs
        .upload_target(&k, "application/pdf", 1234, ttl)
        .await
        .expect("target");
    assert_eq!(target.method, "PUT");
    assert_eq!(
        target.headers.get("content-type").map(String::as_str),
        Some("application/pdf")
    );
    let left = target.expires - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(290) && left <= chrono::Duration::seconds(300));
    assert!(target.url.contains(&id.to_string()), "{}", target.url);
    assert!(
        !target.url.contains(&k.as_str()),
        "uploads never go to the confirmed content: {}",
        target.url
    );
}
