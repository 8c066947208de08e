//! Files in a local folder (`<REALNET_DATA_DIR>/files/<org>/<id>`), for `realnet serve`.
//! Uploads go to this API (`PUT /api/files/{id}/content`) and downloads come from it.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{BlobError, BlobInfo, BlobKey, BlobStore, Download, UploadTarget, hex};

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: PathBuf) -> Self {
        LocalBlobStore { root }
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn upload_target(
        &self,
        key: &BlobKey,
        content_type: &str,
        _size: u64,
        ttl: Duration,
    ) -> Result<UploadTarget, BlobError> {
        Ok(UploadTarget {
            url: format!("/api/files/{}/content", key.id),
            method: "PUT".into(),
            headers: [("content-type".to_string(), content_type.to_string())].into(),
            expires: chrono::Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        })
    }

    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // Written aside and renamed, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, &bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)
    }

    async fn info(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) => Ok(Some(BlobInfo { size: m.len() })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn sha256(&self, key: &BlobKey) -> Result<String, BlobError> {
        let bytes = tokio::fs::read(self.path(key)).await.map_err(io)?;
        Ok(hex(&Sha256::digest(&bytes)))
    }

    async fn download(
        &self,
        key: &BlobKey,
        _content_type: &str,
        _ttl: Duration,
    ) -> Result<Download, BlobError> {
        let bytes = tokio::fs::read(self.path(key)).await.map_err(io)?;
        Ok(Download::Bytes(Bytes::from(bytes)))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}
