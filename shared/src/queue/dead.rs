//! The jobs that failed for good: SQS's dead-letter queue (`REALNET_DEAD_LETTER_QUEUE_URL`,
//! where the queue's redrive policy moves a message the worker kept failing), or the local
//! queue's own list under `realnet serve`. A dead letter is redriven exactly as it was sent
//! (its body and its proofs: the signature or the producer's key), so it runs as the
//! principal it proved, never as the one redriving it.
//!
//! SQS has no way to list a queue: messages are received with a visibility timeout (hidden
//! meanwhile), and each is then redriven, deleted or released. A caller acting on some
//! dead letters receives them all in one pass, keeps those it acts on ([`Held`], hidden from
//! every other caller until it settles them) and releases the others at once; the local
//! queue holds its letters aside in the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// How long, in seconds, SQS hides a received dead letter: a caller that never settles what
/// it held (its process ended) gives it back after this.
const HOLD_SECONDS: i32 = 60;

/// How long a holder may still act on what it received from SQS: well inside
/// [`HOLD_SECONDS`], since past it SQS may have given the letters to another caller (a redrive
/// then would send them twice) and acting on many letters takes a while.
const ACT_WITHIN: Duration = Duration::from_secs(40);

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
    /// SQS's handle of this receipt of the message (`None` on the local queue).
    pub receipt: Option<String>,
    /// The message group of a FIFO queue's message.
    pub group: Option<String>,
}

#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Every dead letter (at most [`MAX_DEAD`]), left in place.
    async fn list(&self) -> Result<Vec<DeadLetter>, QueueError>;

    /// Every dead letter (at most [`MAX_DEAD`]), each hidden from other callers until it is
    /// redriven, removed or released (on SQS, for a minute at most).
    async fn receive(&self) -> Result<Vec<DeadLetter>, QueueError>;

    /// Makes received dead letters visible again.
    async fn release(&self, letters: &[DeadLetter]) -> Result<(), QueueError>;

    /// Sends received dead letters to the job queue again, as they were sent, and removes
    /// them here; answers those it did.
    async fn redrive(&self, letters: &[DeadLetter]) -> Result<Vec<Uuid>, QueueError>;

    /// Removes received dead letters; answers those it removed.
    async fn remove(&self, letters: &[DeadLetter]) -> Result<Vec<Uuid>, QueueError>;
}

/// Dead letters one caller received to act on, hidden from everyone else until it settles
/// them ([`Held::redrive`], [`Held::remove`], [`Held::release`]). Dropped unsettled (the
/// call failed or was abandoned), they are released.
pub struct Held {
    queue: Arc<dyn DeadLetters>,
    letters: Vec<DeadLetter>,
    /// When they were received.
    received: Instant,
}

impl Held {
    /// Receives every dead letter in one pass, holds those `keep` chooses and releases the
    /// others at once.
    pub async fn receive<F, Fut, E>(queue: Arc<dyn DeadLetters>, mut keep: F) -> Result<Held, E>
    where
        F: FnMut(DeadLetter) -> Fut,
        Fut: std::future::Future<Output = Result<Option<DeadLetter>, E>>,
        E: From<QueueError>,
    {
        let received = queue.receive().await?;
        let mut held = Held {
            queue: queue.clone(),
            letters: Vec::new(),
            received: Instant::now(),
        };
        let mut others = Vec::new();
        let mut failed = None;
        for letter in received {
            if failed.is_some() {
                others.push(letter);
                continue;
            }
            let copy = letter.clone();
            match keep(letter).await {
                Ok(Some(kept)) => held.letters.push(kept),
                Ok(None) => others.push(copy),
                Err(e) => {
                    others.push(copy);
                    failed = Some(e);
                }
            }
        }
        queue.release(&others).await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(held),
        }
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.letters.iter().map(|l| l.id).collect()
    }

    /// Sends them to the job queue again; answers those redriven.
    pub async fn redrive(mut self) -> Result<Vec<Uuid>, QueueError> {
        let letters = self.in_time()?;
        self.queue.redrive(&letters).await
    }

    /// Removes them for good; answers those removed.
    pub async fn remove(mut self) -> Result<Vec<Uuid>, QueueError> {
        let letters = self.in_time()?;
        self.queue.remove(&letters).await
    }

    /// The letters, to act on, unless they came from SQS more than [`ACT_WITHIN`] ago: SQS
    /// has shown them to others again by then (or is about to), so nothing is done to them.
    fn in_time(&mut self) -> Result<Vec<DeadLetter>, QueueError> {
        let letters = std::mem::take(&mut self.letters);
        let from_sqs = letters.iter().any(|l| l.receipt.is_some());
        if from_sqs && self.received.elapsed() > ACT_WITHIN {
            return Err(QueueError::Unavailable(format!(
                "the dead letters were held for more than {} s (SQS hides them for {HOLD_SECONDS} s), so another caller may have them now: none was redriven or removed; try again",
                ACT_WITHIN.as_secs()
            )));
        }
        Ok(letters)
    }

    /// Makes them visible again, unchanged.
    pub async fn release(mut self) -> Result<(), QueueError> {
        let letters = std::mem::take(&mut self.letters);
        self.queue.release(&letters).await
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let letters = std::mem::take(&mut self.letters);
        if letters.is_empty() {
            return;
        }
        let queue = self.queue.clone();
        // On SQS the visibility timeout releases them anyway if this never runs.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = queue.release(&letters).await {
                    tracing::warn!(error = %e, "held dead letters were not released");
                }
            });
        }
    }
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

    /// Receives up to [`MAX_DEAD`] messages, hiding them for [`HOLD_SECONDS`].
    async fn receive_all(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let client = self.dead.client().await;
        let mut all: Vec<DeadLetter> = Vec::new();
        while all.len() < MAX_DEAD {
            let batch = client
                .receive_message()
                .queue_url(self.dead.url())
                .max_number_of_messages(10)
                .visibility_timeout(HOLD_SECONDS)
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
            let letters: Vec<DeadLetter> = messages.iter().filter_map(dead_letter).collect();
            // A message that is not a Realnet message id is left to reappear.
            all.extend(letters);
        }
        Ok(all)
    }

    async fn delete(&self, l: &DeadLetter) -> Result<(), QueueError> {
        self.dead
            .client()
            .await
            .delete_message()
            .queue_url(self.dead.url())
            .set_receipt_handle(l.receipt.clone())
            .send()
            .await
            .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
        Ok(())
    }

    /// Sends `l` to the job queue with the proofs it carried.
    async fn resend(&self, l: &DeadLetter) -> Result<(), QueueError> {
        let mut send = self
            .dead
            .client()
            .await
            .send_message()
            .queue_url(&self.jobs)
            .message_body(&l.body);
        let proofs = [
            (SIGNATURE, &l.credentials.signature),
            (API_KEY, &l.credentials.api_key),
        ];
        for (name, value) in proofs {
            if let Some(value) = value {
                let attribute = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(unavailable)?;
                send = send.message_attributes(name, attribute);
            }
        }
        if self.jobs.ends_with(".fifo") {
            let group = l.group.clone().unwrap_or_else(|| "redriven".into());
            send = send
                .message_group_id(group)
                .message_deduplication_id(l.id.to_string());
        }
        send.send()
            .await
            .map_err(|e| unavailable(crate::aws::ErrorChain(&e)))?;
        Ok(())
    }

    /// Does `act` to each of `letters` in turn; on a failure, releases those not done.
    async fn each(&self, letters: &[DeadLetter], redrive: bool) -> Result<Vec<Uuid>, QueueError> {
        let mut done = Vec::new();
        for (i, l) in letters.iter().enumerate() {
            let step = async {
                if redrive {
                    self.resend(l).await?;
                }
                self.delete(l).await
            };
            if let Err(e) = step.await {
                self.release(&letters[i..]).await?;
                return Err(e);
            }
            done.push(l.id);
        }
        Ok(done)
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
        receipt: m.receipt_handle.clone(),
        group: system(MessageSystemAttributeName::MessageGroupId),
    })
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn list(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let letters = self.receive_all().await?;
        self.release(&letters).await?;
        Ok(letters)
    }

    async fn receive(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.receive_all().await
    }

    async fn release(&self, letters: &[DeadLetter]) -> Result<(), QueueError> {
        let client = self.dead.client().await;
        for chunk in letters.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(l.receipt.clone())
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

    async fn redrive(&self, letters: &[DeadLetter]) -> Result<Vec<Uuid>, QueueError> {
        self.each(letters, true).await
    }

    async fn remove(&self, letters: &[DeadLetter]) -> Result<Vec<Uuid>, QueueError> {
        self.each(letters, false).await
    }
}

/// The local queue's dead letters: jobs its runner gave up on, and those a caller holds.
#[derive(Debug, Default)]
pub struct LocalDeadLetters {
    letters: Mutex<Letters>,
}

#[derive(Debug, Default)]
struct Letters {
    visible: Vec<DeadLetter>,
    held: Vec<DeadLetter>,
}

impl LocalDeadLetters {
    /// Keeps a job the runner gave up on (the oldest are dropped past [`MAX_DEAD`]).
    pub fn keep(&self, letter: DeadLetter) {
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        if letters.visible.len() >= MAX_DEAD {
            letters.visible.remove(0);
        }
        letters.visible.push(letter);
    }

    /// The visible dead letters.
    pub fn all(&self) -> Vec<DeadLetter> {
        let letters = self.letters.lock().expect("the dead letters' lock");
        letters.visible.clone()
    }

    /// Holds every visible dead letter aside; answers them.
    pub fn hold(&self) -> Vec<DeadLetter> {
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        let visible = std::mem::take(&mut letters.visible);
        letters.held.extend(visible.iter().cloned());
        visible
    }

    /// Takes the held dead letters with these ids (those still held).
    pub fn take(&self, of: &[DeadLetter]) -> Vec<DeadLetter> {
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        let (taken, kept) = std::mem::take(&mut letters.held)
            .into_iter()
            .partition(|l| of.iter().any(|o| o.id == l.id));
        letters.held = kept;
        taken
    }

    /// Makes the held dead letters with these ids visible again, in their order.
    pub fn release(&self, of: &[DeadLetter]) {
        let back = self.take(of);
        let mut letters = self.letters.lock().expect("the dead letters' lock");
        letters.visible.extend(back);
        letters.visible.sort_by_key(|l| l.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::LocalQueue;

    fn letter() -> DeadLetter {
        DeadLetter {
            id: Uuid::now_v7(),
            body: "{}".into(),
            credentials: Credentials::default(),
            receives: 3,
            sent_at: None,
            receipt: None,
            group: None,
        }
    }

    async fn hold(queue: &Arc<LocalQueue>, id: Uuid) -> Held {
        let queue: Arc<dyn DeadLetters> = queue.clone();
        Held::receive(queue, |l| async move {
            Ok::<_, QueueError>((l.id == id).then_some(l))
        })
        .await
        .expect("held")
    }

    #[tokio::test]
    async fn held_letters_are_hidden_until_settled_and_the_others_released_at_once() {
        let queue = Arc::new(LocalQueue::default());
        let (a, b) = (letter(), letter());
        queue.dead.keep(a.clone());
        queue.dead.keep(b.clone());
        let held = hold(&queue, a.id).await;
        assert_eq!(held.ids(), [a.id]);
        let visible: Vec<Uuid> = queue.dead.all().iter().map(|l| l.id).collect();
        assert_eq!(visible, [b.id], "only the held one is hidden");
        held.release().await.expect("released");
        let visible: Vec<Uuid> = queue.dead.all().iter().map(|l| l.id).collect();
        assert_eq!(visible, [a.id, b.id], "back, in order");
        let held = hold(&queue, b.id).await;
        assert_eq!(held.remove().await.expect("removed"), [b.id]);
        let visible: Vec<Uuid> = queue.dead.all().iter().map(|l| l.id).collect();
        assert_eq!(visible, [a.id]);
    }

    #[tokio::test]
    async fn letters_held_past_the_visibility_timeout_are_not_acted_on() {
        let queue = Arc::new(LocalQueue::default());
        let late = Instant::now()
            .checked_sub(ACT_WITHIN + Duration::from_secs(1))
            .expect("the clock has run that long");
        let sqs = |l: DeadLetter| DeadLetter {
            receipt: Some("r".into()),
            ..l
        };
        for redrive in [true, false] {
            let a = letter();
            queue.dead.keep(sqs(a.clone()));
            let mut held = hold(&queue, a.id).await;
            held.received = late;
            let acted = if redrive {
                held.redrive().await
            } else {
                held.remove().await
            };
            let Err(QueueError::Unavailable(why)) = acted else {
                panic!("acted on letters held too long: {acted:?}");
            };
            assert!(why.contains("try again"), "{why}");
            assert_eq!(
                queue.dead.take(&[a]).len(),
                1,
                "neither redriven nor removed"
            );
        }
        // In time, they are acted on.
        let b = letter();
        queue.dead.keep(sqs(b.clone()));
        let held = hold(&queue, b.id).await;
        assert_eq!(held.remove().await.expect("removed"), [b.id]);
    }

    #[tokio::test]
    async fn letters_held_by_an_abandoned_call_come_back() {
        let queue = Arc::new(LocalQueue::default());
        let a = letter();
        queue.dead.keep(a.clone());
        drop(hold(&queue, a.id).await);
        for _ in 0..100 {
            if !queue.dead.all().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(queue.dead.all().len(), 1);
    }
}
