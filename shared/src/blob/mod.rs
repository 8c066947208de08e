//! File contents. Items of type `File` hold the metadata; a [`BlobStore`] holds the bytes,
//! under a key made only of the org and the item's id ([`BlobKey`]), so no file name can ever
//! reach a path or an object key. Clients upload straight to storage (a presigned S3 `PUT`, or
//! `PUT /api/files/{id}/content` locally), then confirm; the confirmation checks the size and
//! records the SHA-256. The local folder serves `realnet serve`; S3 the deployed functions.
//!
//! An upload and the confirmed content are two objects: uploads land under `uploads/`, and
//! confirming moves the upload to `files/`, where it is written once and never again. A late
//! or repeated upload (a presigned URL is valid until it expires) therefore never changes the
//! bytes a confirmed file's checksum describes.

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
    /// An upload went past its declared size; nothing of it was kept.
    #[error("more than the {declared} bytes declared were sent")]
    TooLarge { declared: u64 },
    /// An upload ended before its declared size; nothing of it was kept.
    #[error("{sent} bytes sent, {declared} declared")]
    TooSmall { sent: u64, declared: u64 },
    /// Content read in memory would be larger than allowed.
    #[error("the file is {size} bytes; at most {max} are read at once")]
    OverRead { size: u64, max: u64 },
    /// The client's body could not be read (the connection broke); nothing of it was kept.
    #[error("the upload could not be read: {0}")]
    Body(String),
}

/// An upload's bytes as they arrive, a chunk at a time, so that no more than a chunk is held
/// in memory.
#[async_trait]
pub trait Chunks: Send {
    /// The next chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BlobError>;
}

/// Bytes already in memory, as one chunk.
#[async_trait]
impl Chunks for Option<Bytes> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BlobError> {
        Ok(self.take())
    }
}

/// Reads `body` through, refusing it ([`BlobError::TooLarge`]) as soon as it goes past `size`
/// bytes, and at its end if it is shorter ([`BlobError::TooSmall`]).
pub(crate) struct Exactly<'a> {
    body: &'a mut dyn Chunks,
    size: u64,
    seen: u64,
}

impl<'a> Exactly<'a> {
    pub(crate) fn new(body: &'a mut dyn Chunks, size: u64) -> Self {
        Exactly {
            body,
            size,
            seen: 0,
        }
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, BlobError> {
        match self.body.next_chunk().await? {
            Some(chunk) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.size {
                    return Err(BlobError::TooLarge {
                        declared: self.size,
                    });
                }
                Ok(Some(chunk))
            }
            None if self.seen < self.size => Err(BlobError::TooSmall {
                sent: self.seen,
                declared: self.size,
            }),
            None => Ok(None),
        }
    }
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
        crate::config::check_org_name(org)?;
        Ok(BlobKey {
            org: org.to_string(),
            id,
        })
    }

    /// Where the confirmed content lives.
    pub fn as_str(&self) -> String {
        format!("files/{}/{}", self.org, self.id)
    }

    /// Where uploads go, until a confirmation moves one to [`BlobKey::as_str`].
    pub fn upload_str(&self) -> String {
        format!("uploads/{}/{}", self.org, self.id)
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

    /// Where to upload `size` bytes of `content_type` for `key`, valid for `ttl`: the upload
    /// location, never the confirmed content.
    async fn upload_target(
        &self,
        key: &BlobKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> Result<UploadTarget, BlobError>;

    /// Stores an upload of exactly `size` bytes as they arrive (the local upload route, and
    /// files sent inline), replacing an earlier upload; a body of another size is refused
    /// and leaves nothing behind.
    async fn put_upload(
        &self,
        key: &BlobKey,
        body: &mut dyn Chunks,
        size: u64,
    ) -> Result<(), BlobError>;

    /// Moves the upload to the confirmed content, unless there is confirmed content already
    /// (it is written once: a later upload is dropped). `false` if there is neither.
    async fn confirm(&self, key: &BlobKey) -> Result<bool, BlobError>;

    /// The confirmed content's size.
    async fn info(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError>;

    /// The SHA-256 of the confirmed content, lowercase hex (read in full: the cost grows with
    /// the size).
    async fn sha256(&self, key: &BlobKey) -> Result<String, BlobError>;

    /// The confirmed content's bytes, if it holds at most `max` (for extension handlers,
    /// which read files in memory); [`BlobError::OverRead`] past that.
    async fn read(&self, key: &BlobKey, max: u64) -> Result<Bytes, BlobError>;

    /// The confirmed content, served as `content_type` and as an attachment.
    async fn download(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<Download, BlobError>;

    /// Deletes the upload and the confirmed content.
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

/// Lowercase hex of a digest (on every request's token: one allocation, not one a byte).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body in several chunks.
    struct Parts(Vec<&'static [u8]>);

    #[async_trait]
    impl Chunks for Parts {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, BlobError> {
            Ok((!self.0.is_empty()).then(|| Bytes::from_static(self.0.remove(0))))
        }
    }

    async fn read(parts: Vec<&'static [u8]>, size: u64) -> Result<Vec<u8>, BlobError> {
        let mut body = Parts(parts);
        let mut exactly = Exactly::new(&mut body, size);
        let mut out = Vec::new();
        while let Some(chunk) = exactly.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn bodies_are_refused_at_the_first_byte_past_their_size() {
        assert_eq!(read(vec![b"ab", b"cd"], 4).await.expect("exact"), b"abcd");
        assert!(matches!(
            read(vec![b"ab", b"cd", b"e"], 4).await,
            Err(BlobError::TooLarge { declared: 4 })
        ));
        // Refused on the chunk that goes past, before any later one is read.
        let mut body = Parts(vec![b"abc", b"de", b"never read"]);
        let mut exactly = Exactly::new(&mut body, 4);
        assert!(exactly.next_chunk().await.is_ok());
        assert!(exactly.next_chunk().await.is_err());
        assert_eq!(body.0, vec![b"never read" as &[u8]]);
        assert!(matches!(
            read(vec![b"ab"], 4).await,
            Err(BlobError::TooSmall {
                sent: 2,
                declared: 4
            })
        ));
        assert_eq!(read(vec![], 0).await.expect("empty"), b"");
    }

    #[test]
    fn keys_are_made_of_org_and_id_only() {
        let id = Uuid::now_v7();
        assert_eq!(
            BlobKey::new("acme", id).expect("key").as_str(),
            format!("files/acme/{id}")
        );
        assert_eq!(
            BlobKey::new("acme", id).expect("key").upload_str(),
            format!("uploads/acme/{id}")
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
