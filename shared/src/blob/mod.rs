//! File contents. Items of type `File` hold the metadata; a [`BlobStore`] holds the bytes,
//! under a key made only of the org and the item's id ([`BlobKey`]), so no file name can ever
//! reach a path or an object key. Clients upload straight to storage (a presigned S3 `PUT`, or
//! `PUT /api/files/{id}/content` locally), then confirm; the confirmation checks the size and
//! records the SHA-256. The local folder serves `realnet serve`; S3 the deployed functions.

pub mod file_items;
pub mod finalize;
mod local;
mod s3;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Backend(String),
}

/// Where a file's bytes live: `files/<org>/<item id>`. Org names and ids are checked before
/// they get here, so a key never leaves its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey {
    org: String,
    id: Uuid,
}

impl BlobKey {
    pub fn new(org: &str, id: Uuid) -> Result<Self, String> {
        crate::context::check_org_name(org)?;
        Ok(BlobKey {
            org: org.to_string(),
            id,
        })
    }

    pub fn as_str(&self) -> String {
        format!("files/{}/{}", self.org, self.id)
    }
}

/// Where and how to upload a file's bytes.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UploadTarget {
    /// An absolute URL (S3), or a path of this API (local storage).
    pub url: String,
    pub method: String,
    /// Headers the upload must carry.
    pub headers: BTreeMap<String, String>,
    pub expires: DateTime<Utc>,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
}

/// How a client gets a file's bytes.
#[derive(Debug)]
pub enum Download {
    /// A short-lived presigned URL to redirect to.
    Redirect(String),
    Bytes(Bytes),
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `local` or `s3`.
    fn kind(&self) -> &'static str;

    /// Where to upload `size` bytes of `content_type` for `key`, valid for `ttl`.
    async fn upload_target(
        &self,
        key: &BlobKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> Result<UploadTarget, BlobError>;

    /// Stores bytes (the local upload route; S3 clients upload to the presigned URL).
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError>;

    async fn info(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError>;

    /// The SHA-256 of the object, lowercase hex (read in full: the cost grows with the size).
    async fn sha256(&self, key: &BlobKey) -> Result<String, BlobError>;

    async fn download(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<Download, BlobError>;

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}

/// Why `name` cannot name a file, if it cannot: path separators, `.` and `..`, control
/// characters and the invisible or direction-changing characters that make a name display
/// as something it is not.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a file name"));
    }
    for c in name.chars() {
        let tricky = c.is_control()
            || matches!(c, '/' | '\\')
            // Bidirectional overrides and isolates, zero-width characters, BOM.
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if tricky {
            return Err(format!(
                "a file name may not contain {:?} (path separators, control, invisible or direction-changing characters)",
                c
            ));
        }
    }
    Ok(())
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_of_org_and_id_only() {
        let id = Uuid::now_v7();
        assert_eq!(
            BlobKey::new("acme", id).expect("key").as_str(),
            format!("files/acme/{id}")
        );
        assert!(BlobKey::new("../etc", id).is_err());
        assert!(BlobKey::new("a/b", id).is_err());
    }

    #[test]
    fn file_names_refuse_paths_and_unicode_tricks() {
        for ok in ["report.pdf", "Été 2026.txt", "..hidden", "a..b"] {
            assert!(check_file_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "..",
            ".",
            "../../etc/passwd",
            "a/b",
            "a\\b",
            "nul\0byte",
            "evil\u{202E}fdp.exe",
            "zero\u{200B}width",
            "line\nbreak",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
