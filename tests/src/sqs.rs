//! SQS events for the worker tests: records as Lambda delivers them, with the message
//! attributes that prove their sender (`realnet-signature`, `realnet-api-key`), and the
//! worker's answer as the ids it reports for another delivery.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use realnet::jobs::envelope::{API_KEY, SIGNATURE};
use serde_json::{Value, json};

use crate::TestApp;

/// The signing key the sample events in `events/worker/` are signed with. Public, so never a
/// deployment's: tests set it as `REALNET_JOB_SIGNING_KEY` to run the samples.
pub const SAMPLE_EVENTS_KEY: &str = "realnet-sample-events-key-not-a-secret";

/// One message: its body and the proofs beside it.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub body: String,
    pub signature: Option<String>,
    pub api_key: Option<String>,
}

impl Message {
    /// A body with no proof of its sender.
    pub fn unproven(body: impl ToString) -> Message {
        Message {
            body: body.to_string(),
            ..Message::default()
        }
    }

    /// The proofs as the worker takes them.
    pub fn credentials(&self) -> realnet::jobs::envelope::Credentials {
        realnet::jobs::envelope::Credentials {
            signature: self.signature.clone(),
            api_key: self.api_key.clone(),
        }
    }

    /// A body with an API key.
    pub fn with_key(body: impl ToString, key: &str) -> Message {
        Message {
            api_key: Some(key.to_string()),
            ..Message::unproven(body)
        }
    }
}

impl TestApp {
    /// The installation's signature of `body`.
    pub async fn sign(&self, body: &str) -> String {
        self.rn
            .job_signer()
            .await
            .expect("the signing key")
            .sign(body)
    }

    /// `body` signed by this installation, as `POST /api/jobs` would send it.
    pub async fn signed(&self, body: impl ToString) -> Message {
        let body = body.to_string();
        Message {
            signature: Some(self.sign(&body).await),
            ..Message::unproven(body)
        }
    }

    /// Hands `event` to the worker's batch handler and answers the ids it reports.
    pub async fn handle(&self, event: SqsEvent) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        realnet::jobs::worker::handle(self.rn.clone(), event, deadline)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    /// The id of the account `username` of `org`.
    pub async fn account_id(&self, org: &str, username: &str) -> uuid::Uuid {
        realnet::auth::identity::find_account(&self.rn, org, username)
            .await
            .expect("query accounts")
            .unwrap_or_else(|| panic!("no account {username} in {org}"))
            .id
    }
}

/// A message attribute as Lambda spells it.
fn attribute(value: &str) -> Value {
    json!({"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"})
}

/// An SQS event of these messages, from a standard or a FIFO queue.
pub fn event(messages: &[Message], fifo: bool) -> SqsEvent {
    let arn = if fifo {
        "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"
    } else {
        "arn:aws:sqs:us-east-1:123456789012:jobs"
    };
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut attributes = serde_json::Map::new();
            if let Some(s) = &m.signature {
                attributes.insert(SIGNATURE.into(), attribute(s));
            }
            if let Some(k) = &m.api_key {
                attributes.insert(API_KEY.into(), attribute(k));
            }
            json!({"messageId": format!("m{i}-{}", uuid::Uuid::now_v7()), "receiptHandle": "r",
                "body": m.body, "attributes": {}, "messageAttributes": attributes,
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

/// The message ids of an event, in order.
pub fn ids(event: &SqsEvent) -> Vec<String> {
    event
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap_or_default())
        .collect()
}
