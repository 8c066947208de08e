//! Where jobs go: a [`Queue`] takes job envelopes for the worker. SQS on AWS (standard or
//! FIFO: on FIFO queues, jobs of one org keep their order and an idempotency key doubles as
//! SQS's deduplication id); in-process for `realnet serve`, where a task of the server runs
//! them through the same worker code.

pub mod bridge;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell, mpsc};

use crate::jobs::JobEnvelope;

/// SQS refuses larger messages.
pub const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the job is {0} bytes; a queue message takes at most 262144")]
    TooLarge(usize),
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// `local` or `sqs`.
    fn kind(&self) -> &'static str;

    async fn send(&self, job: &JobEnvelope) -> Result<(), QueueError>;
}

fn body(job: &JobEnvelope) -> Result<String, QueueError> {
    let body = serde_json::to_string(job).map_err(|e| QueueError::Unavailable(e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(QueueError::TooLarge(body.len()));
    }
    Ok(body)
}

/// An SQS queue, by URL; FIFO when the URL ends in `.fifo`.
pub struct SqsQueue {
    url: String,
    client: OnceCell<aws_sdk_sqs::Client>,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqsQueue({})", self.url)
    }
}

impl SqsQueue {
    pub fn new(url: &str) -> Self {
        SqsQueue {
            url: url.to_string(),
            client: OnceCell::new(),
        }
    }

    pub async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async { aws_sdk_sqs::Client::new(&crate::aws::sdk_config().await) })
            .await
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn kind(&self) -> &'static str {
        "sqs"
    }

    async fn send(&self, job: &JobEnvelope) -> Result<(), QueueError> {
        let mut send = self
            .client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(body(job)?);
        if self.url.ends_with(".fifo") {
            let dedup = job
                .idempotency_key
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            send = send
                .message_group_id(&job.org)
                .message_deduplication_id(dedup_id(&dedup));
        }
        send.send().await.map_err(|e| {
            QueueError::Unavailable(format!(
                "SQS: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok(())
    }
}

/// SQS deduplication ids are at most 128 characters of a restricted set: a SHA-256 fits.
fn dedup_id(key: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::blob::hex(&Sha256::digest(key.as_bytes()))
}

/// Jobs handed to a task of the same process (`realnet serve`).
#[derive(Debug)]
pub struct LocalQueue {
    sender: mpsc::UnboundedSender<JobEnvelope>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<JobEnvelope>>>,
}

impl Default for LocalQueue {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        LocalQueue {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

impl LocalQueue {
    /// The jobs sent, for the one task that runs them.
    pub async fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<JobEnvelope>> {
        self.receiver.lock().await.take()
    }
}

#[async_trait]
impl Queue for LocalQueue {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn send(&self, job: &JobEnvelope) -> Result<(), QueueError> {
        body(job)?;
        self.sender
            .send(job.clone())
            .map_err(|_| QueueError::Unavailable("the local job runner has stopped".into()))
    }
}
