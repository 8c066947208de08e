//! What travels on the queue: a job envelope, the installation's signature beside it, and the
//! proofs a message carries (its attributes). Plain data and HMAC, so that the queue providers
//! can carry envelopes without knowing how jobs run; who may send what is [`super::trust`].

use std::collections::HashMap;

use aws_lambda_events::event::sqs::SqsMessageAttribute;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

/// A job as a producer sends it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobEnvelope {
    /// `items.create`, `items.update`, `items.delete`, `files.finalize` or `extension.call`.
    pub kind: String,
    pub org: String,
    /// The username of the account the job acts as (with its rights).
    pub actor: String,
    pub payload: Value,
    /// Jobs of the same account with the same key run once.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Carried into the logs, to follow a request through its jobs.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The `Job` item that reports this job's status (jobs sent through `POST /api/jobs`).
    /// Only in envelopes the installation signed.
    #[serde(default)]
    pub job: Option<Uuid>,
    /// The scheduled run this job is (`schedule:<id>:<time>`), its key in place of an
    /// idempotency key. Only in envelopes the installation signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// A job to send as `principal` (an account).
#[derive(Debug)]
pub struct Submission {
    pub kind: String,
    pub payload: Value,
    /// The client's key ([`super::submit::check_key`]).
    pub idempotency_key: Option<String>,
    /// The scheduled run this is (`schedule:<id>:<time>`): the scheduler's key.
    pub run: Option<String>,
    pub request_id: Option<String>,
}

/// The message attribute carrying the installation's signature.
pub const SIGNATURE: &str = "realnet-signature";
/// The message attribute carrying a producer's API key.
pub const API_KEY: &str = "realnet-api-key";
/// Signs envelopes with the installation's current key and checks them against it or any
/// previous key still accepted (`REALNET_JOB_SIGNING_KEY_PREVIOUS`), so that jobs queued
/// before a rotation still run while the old key is listed.
#[derive(Clone)]
pub struct JobSigner {
    key: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl std::fmt::Debug for JobSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobSigner(..)")
    }
}

fn mac(key: &[u8], body: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body.as_bytes());
    mac
}

impl JobSigner {
    /// A signer with one key, which signs and verifies.
    pub fn new(key: &[u8]) -> Self {
        JobSigner {
            key: key.to_vec(),
            previous: Vec::new(),
        }
    }

    /// This signer, also accepting signatures made with `previous` keys (it never signs with
    /// them).
    pub fn accepting<K: AsRef<[u8]>>(mut self, previous: impl IntoIterator<Item = K>) -> Self {
        self.previous = previous.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self
    }

    /// The signature of `body` with the current key, as the `realnet-signature` attribute
    /// carries it.
    pub fn sign(&self, body: &str) -> String {
        STANDARD.encode(mac(&self.key, body).finalize().into_bytes())
    }

    /// Whether `signature` is the signature of exactly `body` by the current key or a
    /// previous one still accepted (each compared in constant time).
    pub fn verify(&self, body: &str, signature: &str) -> bool {
        let Ok(sig) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        std::iter::once(&self.key)
            .chain(&self.previous)
            .any(|key| mac(key, body).verify_slice(&sig).is_ok())
    }
}

/// An envelope ready for the queue: the body exactly as the worker will read it, and the
/// installation's signature over that body.
#[derive(Clone)]
pub struct SignedJob {
    pub envelope: JobEnvelope,
    pub body: String,
    pub signature: String,
}

impl std::fmt::Debug for SignedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedJob")
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}

impl SignedJob {
    /// What the worker receives beside the body.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            signature: Some(self.signature.clone()),
            api_key: None,
        }
    }
}

/// The proofs a message carries beside its body (its message attributes).
#[derive(Clone, Default)]
pub struct Credentials {
    pub signature: Option<String>,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("signature", &self.signature.is_some())
            .field("api_key", &self.api_key.is_some())
            .finish()
    }
}

impl Credentials {
    /// The proofs among an SQS record's message attributes.
    pub fn from_sqs(attributes: &HashMap<String, SqsMessageAttribute>) -> Self {
        let text = |name: &str| attributes.get(name).and_then(|a| a.string_value.clone());
        Credentials {
            signature: text(SIGNATURE),
            api_key: text(API_KEY),
        }
    }
}
