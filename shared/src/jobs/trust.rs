//! Who sent a job envelope. The body of a queue message only *names* an org and an actor; a
//! job runs only if its sender is proven, by one of two message attributes beside the body:
//! - `realnet-signature`: the installation's HMAC-SHA256 over the exact body (base64). What
//!   Realnet sends itself (`POST /api/jobs`, the scheduler) is signed so; the key is
//!   `REALNET_JOB_SIGNING_KEY`, or else generated once per installation and kept in the store,
//!   so every function of a deployment signs and verifies with the same one. During a key
//!   rotation the keys of `REALNET_JOB_SIGNING_KEY_PREVIOUS` are accepted too (never used to
//!   sign), so jobs queued before the switch still run.
//! - `realnet-api-key`: an external producer's API key (the `rnk_...` secret of an `ApiKey`
//!   item). The job runs as that key's account in that key's org; a body naming another org
//!   or actor, or a `Job` item or scheduled run (which only the installation may), is refused.
//!
//! A message with neither, or whose proof does not hold, is refused: it runs nothing and
//! writes nothing, and the worker reports it for the dead-letter queue. Refusals say why,
//! never with the signature or key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::envelope::{API_KEY, Credentials, JobEnvelope, JobSigner, SIGNATURE, SignedJob};
use crate::auth::{AuthError, Credential, Principal};
use crate::context::Realnet;
use crate::queue::{MAX_MESSAGE, QueueError};
use crate::store::StoreError;

/// The store setting holding the generated signing key.
const KEY_SETTING: &str = "job_signing_key";

impl JobSigner {
    /// The envelope as a message body with its signature.
    pub fn seal(&self, envelope: JobEnvelope) -> Result<SignedJob, QueueError> {
        let body =
            serde_json::to_string(&envelope).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        if body.len() > MAX_MESSAGE {
            return Err(QueueError::TooLarge(body.len()));
        }
        let signature = self.sign(&body);
        Ok(SignedJob {
            envelope,
            body,
            signature,
        })
    }
}

/// Who proved to have sent a message.
#[derive(Debug, Clone)]
pub enum Sender {
    /// This installation signed it: the envelope's actor is taken at its word.
    Installation,
    /// An external producer's API key: the job runs as this principal.
    Producer(Principal),
}

/// Why a message is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    /// It never will be: refused, for the dead-letter queue.
    #[error("{0}")]
    Refused(String),
    /// The store could not be asked; worth another delivery.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(m: impl Into<String>) -> Untrusted {
    Untrusted::Refused(m.into())
}

impl Realnet {
    /// The installation's job signer: `REALNET_JOB_SIGNING_KEY` (accepting the
    /// `REALNET_JOB_SIGNING_KEY_PREVIOUS` ones too), else a key generated once and kept in the
    /// store.
    pub async fn job_signer(&self) -> Result<&JobSigner, StoreError> {
        self.job_signer
            .get_or_try_init(|| async {
                if let Some(key) = &self.config.job_signing_key {
                    let previous = self.config.previous_job_signing_keys.iter();
                    return Ok(JobSigner::new(key.0.as_bytes()).accepting(previous.map(|k| &k.0)));
                }
                let fresh: [u8; 32] = rand::random();
                let key = self
                    .store
                    .setting(KEY_SETTING, &STANDARD.encode(fresh))
                    .await?;
                Ok(JobSigner::new(key.as_bytes()))
            })
            .await
    }
}

/// Who sent `body`, from the proofs beside it: a signature, if there is one, must be this
/// installation's over exactly this body; otherwise an API key must be a live one.
pub async fn sender(
    rn: &Realnet,
    body: &str,
    credentials: &Credentials,
) -> Result<Sender, Untrusted> {
    if let Some(signature) = &credentials.signature {
        return if rn.job_signer().await?.verify(body, signature) {
            Ok(Sender::Installation)
        } else {
            Err(refused(format!(
                "the {SIGNATURE} attribute is not this installation's signature of the body (changed after signing, or signed with another key)"
            )))
        };
    }
    let Some(key) = &credentials.api_key else {
        return Err(refused(format!(
            "the envelope carries no proof of its sender: neither {SIGNATURE} nor {API_KEY} (naming an org and an actor proves nothing)"
        )));
    };
    match rn.principal_for_token(key.trim()).await {
        Ok(p) if matches!(p.credential, Credential::ApiKey { .. }) => Ok(Sender::Producer(p)),
        Ok(_) => Err(refused(format!(
            "the {API_KEY} attribute holds a login token, not an API key"
        ))),
        Err(AuthError::Unauthorized(_)) => Err(refused(format!(
            "the {API_KEY} attribute is not a live API key (unknown, revoked or expired, or its account is disabled)"
        ))),
        Err(AuthError::Store(e)) => Err(e.into()),
    }
}

/// The org a message's proof names: the envelope's own if this installation signed it, the
/// key's if it carries a live API key; `None` if it proves nothing (its body only names one).
/// What a dead letter is attributed by.
pub async fn proven_org(
    rn: &Realnet,
    job: &JobEnvelope,
    body: &str,
    credentials: &Credentials,
) -> Result<Option<String>, StoreError> {
    match sender(rn, body, credentials).await {
        Ok(Sender::Installation) => Ok(Some(job.org.clone())),
        Ok(Sender::Producer(p)) => Ok(Some(p.org)),
        Err(Untrusted::Refused(_)) => Ok(None),
        Err(Untrusted::Store(e)) => Err(e),
    }
}

/// Checks that a producer's envelope asks only for what its key may: its own org and account,
/// and none of the fields only the installation sets.
pub fn check_producer(p: &Principal, job: &JobEnvelope) -> Result<(), Untrusted> {
    if job.org != p.org {
        return Err(refused(format!(
            "the API key belongs to org {:?}, but the envelope names org {:?}",
            p.org, job.org
        )));
    }
    if p.username.as_deref() != Some(job.actor.as_str()) {
        return Err(refused(format!(
            "the API key acts as {:?}, but the envelope names actor {:?}",
            p.username.as_deref().unwrap_or_default(),
            job.actor
        )));
    }
    if job.job.is_some() || job.run.is_some() {
        return Err(refused(
            "only envelopes this installation signs may name a Job item or a scheduled run",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_body_and_key_only() {
        let signer = JobSigner::new(b"one key");
        let body = r#"{"kind":"items.create","org":"a","actor":"x","payload":{}}"#;
        let signature = signer.sign(body);
        assert!(signer.verify(body, &signature));
        assert!(!signer.verify(&body.replace("\"a\"", "\"b\""), &signature));
        assert!(!JobSigner::new(b"another key").verify(body, &signature));
        assert!(!signer.verify(body, "not base64!"));
        assert!(!signer.verify(body, ""));
        assert!(!format!("{:?}", signer).contains("one key"));
        // During a rotation: signs with the new key, accepts the old one listed, and no other.
        let rotated = JobSigner::new(b"the new key").accepting([b"one key".as_slice()]);
        assert!(rotated.verify(body, &signature), "the previous key");
        assert!(rotated.verify(body, &rotated.sign(body)), "the current key");
        assert_ne!(
            rotated.sign(body),
            signature,
            "signs with the current key only"
        );
        assert!(
            !JobSigner::new(b"the new key").verify(body, &signature),
            "after the overlap"
        );
        let unlisted = JobSigner::new(b"a key nobody listed").sign(body);
        assert!(!rotated.verify(body, &unlisted));
        assert!(
            !rotated.verify(&body.replace("\"x\"", "\"y\""), &signature),
            "tampered"
        );
        assert!(!rotated.verify(body, &STANDARD.encode([0u8; 32])), "forged");
        let credentials = Credentials {
            signature: Some(signature.clone()),
            api_key: Some("rnk_secret".into()),
        };
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains(&signature) && !shown.contains("rnk_secret"),
            "{shown}"
        );
    }
}
