//! The jobs that failed for good: SQS's dead-letter queue (`REALNET_DEAD_LETTER_QUEUE_URL`,
//! where the queue's redrive policy moves a message the worker kept failing), or the local
//! queue's own list under `realnet serve`. A dead letter is redriven exactly as it was sent
//! (its body and its proofs: the signature or the producer's key), so it runs as the
//! principal it proved, never as the one redriving it.
//!
//! SQS has no way to list a queue: messages are received with a visibility timeout (hidden
//! meanwhile), the ones asked for are moved or deleted, and the others are released at once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{QueueError, SqsQueue};
use crate::jobs::envelope::{API_KEY, Credentials, SIGNATURE};

/// At most this many dead letters are looked at.
pub const MAX_DEAD: usize = 1000;

/// A message the worker gave up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message id (SQS's, or the local queue's).
    pub id: Uuid,
    pub body: String,
    pub credentials: Credentials,
    /// How often it was received before it was given up on.
    pub receives: u32,
    pub sent_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Every dead letter (at most [`MAX_DEAD`]).
    async fn list(&self) -> Result<Vec<DeadLetter>, QueueError>;

    /// Sends the dead letters with these ids to the job queue again and removes them here;
    /// answers those it found.
    async fn redrive(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, QueueError>;

    /// Removes the dead letters with these ids; answers those it found.
    async fn remove(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, QueueError>;
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("SQS: {e}"))
}

/// The dead-letter queue of an SQS job queue.
pub struct SqsDeadLetters {
    dead: SqsQueue,
    jobs: String,
}

impl SqsDeadLetters {
    pub fn new(dead_letter_url: &str, jobs_url: &str) -> Self {
        SqsDeadLetters {
            dead: SqsQueue::new(dead_letter_url),
            jobs: jobs_url.to_string(),
        }
    }

    /// Receives up to [`MAX_DEAD`] messages, hiding them for a minute.
    async fn receive(&self) -> Result<Vec<Message>, QueueError> {
        let client = self.dead.client().await;
        let mut all: Vec<Message> = Vec::new();
        while all.len() < MAX_DEAD {
            let batch = client
                .receive_message()
                .queue_url(self.dead.url())
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
            let messages = batch.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            all.extend(messages);
        }
        Ok(all)
    }

    /// Makes `messages` visible again at once.
    async fn release(&self, messages: &[&Message]) -> Result<(), QueueError> {
        let client = self.dead.client().await;
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle.clone())
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            client
                .change_message_visibility_batch()
                .queue_url(self.dead.url())
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
        }
        Ok(())
    }

    async fn delete(&self, m: &Message) -> Result<(), QueueError> {
        self.dead
            .client()
            .await
            .delete_message()
            .queue_url(self.dead.url())
            .set_receipt_handle(m.receipt_handle.clone())
            .send()
            .await
            .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
        Ok(())
    }

    /// Sends `m` to the job queue with the proofs it carried.
    async fn resend(&self, m: &Message) -> Result<(), QueueError> {
        let mut send = self
            .dead
            .client()
            .await
            .send_message()
            .queue_url(&self.jobs)
            .set_message_body(m.body.clone());
        for name in [SIGNATURE, API_KEY] {
            if let Some(value) = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(|a| a.string_value.clone())
            {
                let attribute = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(unavailable)?;
                send = send.message_attributes(name, attribute);
            }
        }
        if self.jobs.ends_with(".fifo") {
            let group = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_else(|| "redriven".into());
            send = send
                .message_group_id(group)
                .set_message_deduplication_id(m.message_id.clone());
        }
        send.send()
            .await
            .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
        Ok(())
    }

    /// Receives everything, does `act` to the messages with `ids`, releases the others.
    async fn with_ids(&self, ids: &[Uuid], redrive: bool) -> Result<Vec<Uuid>, QueueError> {
        let messages = self.receive().await?;
        let (chosen, others): (Vec<&Message>, Vec<&Message>) = messages
            .iter()
            .partition(|m| id_of(m).is_some_and(|id| ids.contains(&id)));
        let mut done = Vec::new();
        let mut outcome = Ok(());
        for m in &chosen {
            let step = async {
                if redrive {
                    self.resend(m).await?;
                }
                self.delete(m).await
            };
            match step.await {
                Ok(()) => done.extend(id_of(m)),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let undone: Vec<&Message> = chosen
            .iter()
            .filter(|m| !id_of(m).is_some_and(|id| done.contains(&id)))
            .copied()
            .chain(others)
            .collect();
        self.release(&undone).await?;
        outcome.map(|()| done)
    }
}

/// An SQS message id as the dead letter's id (SQS message ids are UUIDs).
fn id_of(m: &Message) -> Option<Uuid> {
    m.message_id.as_deref().and_then(|id| id.parse().ok())
}

fn dead_letter(m: &Message) -> Option<DeadLetter> {
    let system = |name: MessageSystemAttributeName| {
        m.attributes.as_ref().and_then(|a| a.get(&name)).cloned()
    };
    let attributes: HashMap<String, String> = m
        .message_attributes
        .iter()
        .flatten()
        .filter_map(|(k, v)| v.string_value.clone().map(|s| (k.clone(), s)))
        .collect();
    Some(DeadLetter {
        id: id_of(m)?,
        body: m.body.clone().unwrap_or_default(),
        credentials: Credentials {
            signature: attributes.get(SIGNATURE).cloned(),
            api_key: attributes.get(API_KEY).cloned(),
        },
        receives: system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        sent_at: system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis),
    })
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn list(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let messages = self.receive().await?;
        self.release(&messages.iter().collect::<Vec<_>>()).await?;
        Ok(messages.iter().filter_map(dead_letter).collect())
    }

    async fn redrive(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, QueueError> {
        self.with_ids(ids, true).await
    }

    async fn remove(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, QueueError> {
        self.with_ids(ids, false).await
    }
}

/// The local queue's dead letters: jobs its runner gave up on.
#[derive(Debug, Default)]
pub struct LocalDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

impl LocalDeadLetters {
    /// Keeps a job the runner gave up on (the oldest are dropped past [`MAX_DEAD`]).
    pub fn keep(&self, letter: DeadLetter) {
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        if letters.len() >= MAX_DEAD {
            letters.remove(0);
        }
        letters.push(letter);
    }

    /// Takes the dead letters with `ids` out of the list.
    pub fn take(&self, ids: &[Uuid]) -> Vec<DeadLetter> {
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        let (taken, kept) = letters.drain(..).partition(|l| ids.contains(&l.id));
        *letters = kept;
        taken
    }

    pub fn all(&self) -> Vec<DeadLetter> {
        self.letters.lock().expect("the dead letters' lock").clone()
    }
}
