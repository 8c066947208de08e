//! Files in an S3 bucket (`aws-sdk-s3`). Uploads and downloads go straight between the client
//! and S3 through presigned URLs that expire; Realnet only signs them and checks the result.
//! A presigned `PUT` writes `uploads/<org>/<id>`; confirming copies that object to
//! `files/<org>/<id>` (only if that does not exist yet) and deletes the upload, so a `PUT`
//! to a URL that has not expired yet changes nothing once a file is confirmed. The presigned
//! `GET` serves the confirmed content type, as an attachment.
//! The client is made on first use from the shared SDK configuration; an explicit endpoint
//! (for an emulator) switches to path-style addressing.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{
    BlobError, BlobInfo, BlobKey, BlobStore, Chunks, Download, Exactly, UploadTarget, hex,
};

pub struct S3BlobStore {
    bucket: String,
    endpoint: Option<String>,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3BlobStore({})", self.bucket)
    }
}

fn sdk<E: std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> BlobError {
    use aws_sdk_s3::error::SdkError;
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            BlobError::Unavailable(format!("S3: {}", crate::aws::ErrorChain(&e)))
        }
        _ => BlobError::Backend(format!("S3: {}", crate::aws::ErrorChain(&e))),
    }
}

/// S3's answer to a conditional write whose condition does not hold (`412`).
fn precondition_failed<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(ttl).map_err(|e| BlobError::Backend(e.to_string()))
}

impl S3BlobStore {
    pub fn new(bucket: &str, endpoint: Option<&str>) -> Self {
        S3BlobStore {
            bucket: bucket.to_string(),
            endpoint: endpoint.map(str::to_string),
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let shared = crate::aws::sdk_config().await;
                let mut config = aws_sdk_s3::config::Builder::from(&shared);
                if let Some(url) = &self.endpoint {
                    config = config.endpoint_url(url).force_path_style(true);
                }
                Client::from_conf(config.build())
            })
            .await
    }

    /// The size of the object at `object`, if there is one.
    async fn head(&self, object: &str) -> Result<Option<BlobInfo>, BlobError> {
        match self
            .client()
            .await
            .head_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
        {
            Ok(head) => Ok(Some(BlobInfo {
                size: head.content_length.unwrap_or(0).max(0) as u64,
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk(e)),
        }
    }

    /// Creates the bucket if it does not exist (deployments create it with the template; this
    /// serves tests against an emulator).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        let client = self.client().await;
        if client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn upload_target(
        &self,
        key: &BlobKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> Result<UploadTarget, BlobError> {
        // The signature covers the content type and length, so S3 refuses an upload of
        // another type or size.
        let request = self
            .client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key.upload_str())
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(presigning(ttl)?)
            .await
            .map_err(sdk)?;
        Ok(UploadTarget {
            url: request.uri().to_string(),
            method: request.method().to_string(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_lowercase(), v.to_string()))
                .collect(),
            expires: chrono::Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        })
    }

    /// Clients upload to the presigned URL; this serves files sent inline, whose whole request
    /// is within the body limit, so the bytes are gathered (at most `size`) and sent at once.
    async fn put_upload(
        &self,
        key: &BlobKey,
        body: &mut dyn Chunks,
        size: u64,
    ) -> Result<(), BlobError> {
        let mut bytes = Vec::new();
        let mut body = Exactly::new(body, size);
        while let Some(chunk) = body.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key.upload_str())
            .body(Bytes::from(bytes).into())
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn confirm(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let client = self.client().await;
        if self.head(&key.as_str()).await?.is_none() {
            if self.head(&key.upload_str()).await?.is_none() {
                return Ok(false);
            }
            // Only if there is no confirmed content yet: it is written once.
            let copied = client
                .copy_object()
                .bucket(&self.bucket)
                .copy_source(format!("{}/{}", self.bucket, key.upload_str()))
                .key(key.as_str())
                .if_none_match("*")
                .send()
                .await;
            match copied {
                Ok(_) => {}
                Err(e) if precondition_failed(&e) => {}
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchKey") => {
                    // Another confirmation moved the upload meanwhile.
                    return Ok(self.head(&key.as_str()).await?.is_some());
                }
                Err(e) => return Err(sdk(e)),
            }
        }
        client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.upload_str())
            .send()
            .await
            .map_err(sdk)?;
        Ok(true)
    }

    async fn info(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError> {
        self.head(&key.as_str()).await
    }

    async fn sha256(&self, key: &BlobKey) -> Result<String, BlobError> {
        let object = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(sdk)?;
        let mut body = object.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| BlobError::Unavailable(format!("S3 read: {e}")))?
        {
            hasher.update(&chunk);
        }
        Ok(hex(&hasher.finalize()))
    }

    async fn read(&self, key: &BlobKey, max: u64) -> Result<Bytes, BlobError> {
        let object = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(sdk)?;
        let size = object.content_length.unwrap_or_default().max(0) as u64;
        if size > max {
            return Err(BlobError::OverRead { size, max });
        }
        let mut body = object.body;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| BlobError::Unavailable(format!("S3 read: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(BlobError::OverRead {
                    size: bytes.len() as u64,
                    max,
                });
            }
        }
        Ok(Bytes::from(bytes))
    }

    async fn download(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<Download, BlobError> {
        let request = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_type(content_type)
            .response_content_disposition("attachment")
            .presigned(presigning(ttl)?)
            .await
            .map_err(sdk)?;
        Ok(Download::Redirect(request.uri().to_string()))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        for object in [key.upload_str(), key.as_str()] {
            self.client()
                .await
                .delete_object()
                .bucket(&self.bucket)
                .key(object)
                .send()
                .await
                .map_err(sdk)?;
        }
        Ok(())
    }
}
