//! Files in an S3 bucket (`aws-sdk-s3`). Uploads and downloads go straight between the client
//! and S3 through presigned URLs that expire; Realnet only signs them and checks the result.
//! The client is made on first use from the shared SDK configuration; an explicit endpoint
//! (for an emulator) switches to path-style addressing.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{BlobError, BlobInfo, BlobKey, BlobStore, Download, UploadTarget, hex};

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

fn sdk<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> BlobError {
    use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            BlobError::Unavailable(format!("S3: {}", DisplayErrorContext(&e)))
        }
        _ => BlobError::Backend(format!("S3: {}", DisplayErrorContext(&e))),
    }
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
            .key(key.as_str())
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

    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(bytes.into())
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn info(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError> {
        match self
            .client()
            .await
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
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
            .presigned(presigning(ttl)?)
            .await
            .map_err(sdk)?;
        Ok(Download::Redirect(request.uri().to_string()))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }
}
