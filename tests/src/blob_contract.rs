//! The `BlobStore` contract: what the local folder and S3 (in moto) must both do, checked the
//! same way on each (see `tests/tests/blob_contract.rs`).

use std::time::Duration;

use bytes::Bytes;
use realnet::blob::{BlobKey, BlobStore, Download};
use uuid::Uuid;

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

pub async fn contents_round_trip(blobs: &dyn BlobStore) {
    let k = key("acme");
    assert_eq!(blobs.info(&k).await.expect("info"), None);
    blobs
        .put(&k, Bytes::from_static(b"hello files"))
        .await
        .expect("put");
    assert_eq!(
        blobs.info(&k).await.expect("info").map(|i| i.size),
        Some(11)
    );
    assert_eq!(
        blobs.sha256(&k).await.expect("sha256"),
        "6e5bc8df28cfac06658769974f895070db24676563ebc1ae17fb961f5da4d5e9"
    );
    let download = blobs
        .download(&k, "text/plain", Duration::from_secs(60))
        .await
        .expect("download");
    assert_eq!(fetch(download).await, Bytes::from_static(b"hello files"));
    blobs.delete(&k).await.expect("delete");
    assert_eq!(blobs.info(&k).await.expect("info"), None);
    blobs.delete(&k).await.expect("deleting twice is fine");
}

pub async fn keys_of_two_orgs_never_meet(blobs: &dyn BlobStore) {
    let id = Uuid::now_v7();
    let a = BlobKey::new("acme", id).expect("key");
    let b = BlobKey::new("globex", id).expect("key");
    blobs.put(&a, Bytes::from_static(b"a")).await.expect("put");
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
}
