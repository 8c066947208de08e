//! Files in a local folder, for `realnet serve`: uploads in `<REALNET_DATA_DIR>/uploads/<org>/
//! <id>`, confirmed content in `<REALNET_DATA_DIR>/files/<org>/<id>`. Uploads go to this API
//! (`PUT /api/files/{id}/content`), which streams them to disk, and downloads come from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    BlobError, BlobInfo, BlobKey, BlobStore, Chunks, Download, Exactly, UploadTarget, hex,
};

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

    fn upload_path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.upload_str())
    }

    /// Writes `body` to `partial`, all of it or (on any error) nothing.
    async fn write_partial(
        partial: &Path,
        body: &mut dyn Chunks,
        size: u64,
    ) -> Result<(), BlobError> {
        let mut file = tokio::fs::File::create(partial).await.map_err(io)?;
        let mut body = Exactly::new(body, size);
        while let Some(chunk) = body.next_chunk().await? {
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)
    }
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

async fn remove(path: &Path) -> Result<(), BlobError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
        _ => Ok(()),
    }
}

async fn parent_dir(path: &Path) -> Result<(), BlobError> {
    match path.parent() {
        Some(dir) => tokio::fs::create_dir_all(dir).await.map_err(io),
        None => Ok(()),
    }
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

    async fn put_upload(
        &self,
        key: &BlobKey,
        body: &mut dyn Chunks,
        size: u64,
    ) -> Result<(), BlobError> {
        let path = self.upload_path(key);
        parent_dir(&path).await?;
        // Written aside under a name of its own and renamed, so that neither a reader nor a
        // concurrent upload ever sees half a file.
        let partial = path.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
        let written = Self::write_partial(&partial, body, size).await;
        if let Err(e) = written {
            remove(&partial).await.ok();
            return Err(e);
        }
        if let Err(e) = tokio::fs::rename(&partial, &path).await {
            remove(&partial).await.ok();
            return Err(io(e));
        }
        Ok(())
    }

    async fn confirm(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let (upload, path) = (self.upload_path(key), self.path(key));
        parent_dir(&path).await?;
        // A hard link makes the confirmed content only if there is none: it is written once.
        match tokio::fs::hard_link(&upload, &path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return tokio::fs::try_exists(&path).await.map_err(io);
            }
            Err(e) => return Err(io(e)),
        }
        remove(&upload).await?;
        Ok(true)
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

    async fn read(&self, key: &BlobKey, max: u64) -> Result<Bytes, BlobError> {
        let size = tokio::fs::metadata(self.path(key)).await.map_err(io)?.len();
        if size > max {
            return Err(BlobError::OverRead { size, max });
        }
        let bytes = tokio::fs::read(self.path(key)).await.map_err(io)?;
        Ok(Bytes::from(bytes))
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
        remove(&self.upload_path(key)).await?;
        remove(&self.path(key)).await
    }
}
