//! `realnet queue bridge`: what an SQS event source mapping does, for places that have none
//! (moto, `cargo lambda watch`, a laptop against a sandbox queue). One round receives up to
//! ten messages, hands them to a worker as the SQS event Lambda would deliver (message
//! attributes included: they carry the proof of the sender), and deletes exactly the messages
//! the worker did not report as failed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{Value, json};

use super::{QueueError, SqsQueue};

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Round {
    pub received: usize,
    pub failed: usize,
}

fn sqs_error(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("SQS: {e}"))
}

impl SqsQueue {
    async fn arn(&self) -> Result<String, QueueError> {
        let attributes = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(self.url())
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sqs_error(crate::aws::ErrorChain(&e)))?;
        attributes
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| sqs_error("the queue has no ARN"))
    }

    /// Receives a batch (waiting up to `wait_seconds` for one), hands it to `worker`, and
    /// deletes the messages it did not report as failed.
    pub async fn bridge_round<F, Fut>(
        &self,
        wait_seconds: i32,
        worker: F,
    ) -> Result<Round, QueueError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = Result<SqsBatchResponse, QueueError>>,
    {
        let client = self.client().await;
        let received = client
            .receive_message()
            .queue_url(self.url())
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_error(crate::aws::ErrorChain(&e)))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(Round::default());
        }
        let arn = self.arn().await?;
        let region = arn.split(':').nth(3).unwrap_or_default().to_string();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                    .collect();
                // As Lambda spells them; binary attributes carry no proof and are left out.
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes
                    .iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        let text = v.string_value.as_ref()?;
                        Some((
                            k.clone(),
                            json!({"stringValue": text, "dataType": v.data_type}),
                        ))
                    })
                    .collect();
                json!({"messageId": m.message_id, "receiptHandle": m.receipt_handle,
                    "body": m.body, "md5OfBody": m.md5_of_body, "attributes": attributes,
                    "messageAttributes": message_attributes, "eventSource": "aws:sqs",
                    "eventSourceARN": arn, "awsRegion": region})
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))
            .map_err(|e| sqs_error(format!("cannot build the SQS event: {e}")))?;
        let response = worker(event).await?;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty() {
            client
                .delete_message_batch()
                .queue_url(self.url())
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| sqs_error(crate::aws::ErrorChain(&e)))?;
        }
        Ok(Round {
            received: messages.len(),
            failed: failed.len(),
        })
    }
}
