//! Where jobs go: a [`Queue`] takes signed job envelopes for the worker, the signature beside
//! the body as the `realnet-signature` message attribute. SQS on AWS (standard or FIFO: on
//! FIFO queues, jobs of one org keep their order and the job's key, with its org and account,
//! makes SQS's deduplication id); in-process for `realnet serve`, where a task of the server
//! runs them through the same worker code, signature check included.

pub mod bridge;
pub mod dead;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell, mpsc};

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::jobs::envelope::{JobEnvelope, SIGNATURE, SignedJob};
use dead::{DeadLetter, DeadLetters, LocalDeadLetters};

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

    async fn send(&self, job: &SignedJob) -> Result<(), QueueError>;
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

    async fn send(&self, job: &SignedJob) -> Result<(), QueueError> {
        let signature = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&job.signature)
            .build()
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let mut send = self
            .client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(&job.body)
            .message_attributes(SIGNATURE, signature);
        // On Lambda, the X-Ray trace of the invocation that sends the job (the runtime sets it
        // per invocation): SQS hands it to the worker as the record's AWSTraceHeader.
        if let Ok(trace) = std::env::var("_X_AMZN_TRACE_ID")
            && !trace.is_empty()
        {
            let header = aws_sdk_sqs::types::MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .map_err(|e| QueueError::Unavailable(e.to_string()))?;
            send = send.message_system_attributes(
                aws_sdk_sqs::types::MessageSystemAttributeNameForSends::AwsTraceHeader,
                header,
            );
        }
        if self.url.ends_with(".fifo") {
            send = send
                .message_group_id(&job.envelope.org)
                .message_deduplication_id(dedup_id(&job.envelope));
        }
        send.send()
            .await
            .map_err(|e| QueueError::Unavailable(format!("SQS: {}", crate::aws::ErrorChain(&e))))?;
        Ok(())
    }
}

/// A FIFO message's deduplication id: of the job's org, actor and key (its scheduled run,
/// idempotency key or `Job` item), so that one account's key never drops another's message.
/// SQS takes at most 128 characters of a restricted set: a SHA-256 fits.
fn dedup_id(job: &JobEnvelope) -> String {
    use sha2::{Digest, Sha256};
    let key = match (&job.run, &job.idempotency_key, job.job) {
        (Some(run), _, _) => format!("run:{run}"),
        (None, Some(key), _) => format!("key:{key}"),
        (None, None, Some(item)) => format!("job:{item}"),
        (None, None, None) => format!("message:{}", uuid::Uuid::now_v7()),
    };
    let source = serde_json::json!([job.org, job.actor, key]).to_string();
    crate::blob::hex(&Sha256::digest(source.as_bytes()))
}

/// Jobs handed to a task of the same process (`realnet serve`), and those its runner gave
/// up on.
#[derive(Debug)]
pub struct LocalQueue {
    sender: mpsc::UnboundedSender<SignedJob>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<SignedJob>>>,
    pub dead: LocalDeadLetters,
}

impl Default for LocalQueue {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        LocalQueue {
            sender,
            receiver: Mutex::new(Some(receiver)),
            dead: LocalDeadLetters::default(),
        }
    }
}

impl LocalQueue {
    /// The jobs sent, for the one task that runs them.
    pub async fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<SignedJob>> {
        self.receiver.lock().await.take()
    }
}

#[async_trait]
impl Queue for LocalQueue {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn send(&self, job: &SignedJob) -> Result<(), QueueError> {
        self.sender
            .send(job.clone())
            .map_err(|_| QueueError::Unavailable("the local job runner has stopped".into()))
    }
}

#[async_trait]
impl DeadLetters for LocalQueue {
    async fn list(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.dead.all())
    }

    async fn receive(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.dead.hold())
    }

    async fn release(&self, letters: &[DeadLetter]) -> Result<(), QueueError> {
        self.dead.release(letters);
        Ok(())
    }

    async fn redrive(&self, letters: &[DeadLetter]) -> Result<Vec<uuid::Uuid>, QueueError> {
        let mut done = Vec::new();
        for letter in self.dead.take(letters) {
            // Only what this installation signed reaches the local queue.
            let (Ok(envelope), Some(signature)) = (
                serde_json::from_str::<JobEnvelope>(&letter.body),
                letter.credentials.signature.clone(),
            ) else {
                continue;
            };
            self.send(&SignedJob {
                envelope,
                body: letter.body,
                signature,
            })
            .await?;
            done.push(letter.id);
        }
        Ok(done)
    }

    async fn remove(&self, letters: &[DeadLetter]) -> Result<Vec<uuid::Uuid>, QueueError> {
        Ok(self.dead.take(letters).into_iter().map(|l| l.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(org: &str, actor: &str, key: &str) -> JobEnvelope {
        JobEnvelope {
            kind: "items.create".into(),
            org: org.into(),
            actor: actor.into(),
            payload: serde_json::json!({}),
            idempotency_key: Some(key.into()),
            request_id: None,
            job: None,
            run: None,
        }
    }

    #[test]
    fn deduplication_ids_are_per_org_and_account() {
        let mine = dedup_id(&envelope("a", "ann", "k"));
        assert_eq!(mine, dedup_id(&envelope("a", "ann", "k")));
        assert_ne!(mine, dedup_id(&envelope("a", "bob", "k")));
        assert_ne!(mine, dedup_id(&envelope("b", "ann", "k")));
        let mut run = envelope("a", "ann", "k");
        (run.idempotency_key, run.run) = (None, Some("k".into()));
        assert_ne!(mine, dedup_id(&run));
        assert!(mine.len() <= 128);
    }
}
