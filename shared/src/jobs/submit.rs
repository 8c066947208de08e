//! Sending a job on behalf of an account: the `Job` item that reports it, then the envelope on
//! the queue, signed with the installation's key ([`super::trust`]). `POST /api/jobs` and the
//! scheduler's tick both send jobs this way. An idempotency key belongs to the account that
//! sends it: it finds only that account's own jobs (an admin's too), and a scheduled run's key
//! (`schedule:...`) is not one a client may choose.

use serde_json::{Map, json};

use super::JobEnvelope;
use super::envelope::Submission;
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::Item;
use crate::item::ItemError;
use crate::item::ops::{self, Change, NewItem};
use crate::query::{AttrFilter, ItemQuery, Op, Readable, Scalar};
use crate::queue::QueueError;
use crate::store::StoreError;
use crate::types::FieldKind;

pub const JOB: &str = "Job";

/// Keys of scheduled runs start so; a client's idempotency key may not.
pub const RUN_PREFIX: &str = "schedule:";

/// Why a client's idempotency key is refused, if it is: 1 to 200 characters, not a scheduled
/// run's.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 200 {
        return Err("must be 1 to 200 characters".into());
    }
    if key.starts_with(RUN_PREFIX) {
        return Err(format!(
            "keys starting with {RUN_PREFIX:?} are the scheduler's; choose another"
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("no job queue is configured (REALNET_QUEUE_URL)")]
    NoQueue,
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Item(#[from] ItemError),
    /// The signing key could not be read from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records a `Job` item that `principal` owns and sends the job; with an idempotency key (or
/// run) the account already sent, answers with that job and sends nothing. The caller has
/// checked the kind and payload ([`super::check`]) and the key ([`check_key`]).
pub async fn submit(
    rn: &Realnet,
    principal: &Principal,
    actor: &str,
    job: Submission,
) -> Result<Item, SubmitError> {
    let queue = rn.queue().ok_or(SubmitError::NoQueue)?;
    let signer = rn.job_signer().await?;
    let key = job.run.as_ref().or(job.idempotency_key.as_ref());
    if let Some(key) = key
        && let Some(existing) = job_with_key(rn, principal, key).await?
    {
        return Ok(existing);
    }
    let mut attributes = Map::new();
    attributes.insert("kind".into(), json!(job.kind));
    attributes.insert("status".into(), json!("queued"));
    attributes.insert("payload".into(), job.payload.clone());
    if let Some(k) = key {
        attributes.insert("idempotency_key".into(), json!(k));
    }
    // The account owns its job item (and so may read it); writing it is the system's doing,
    // so it is written with the org admin's rights.
    let mut recorder = principal.clone();
    recorder.admin = true;
    let input = NewItem {
        type_name: JOB.into(),
        name: job.kind.clone(),
        parent: None,
        attributes,
    };
    let (item, _) = ops::create_by_server(rn, &recorder, input, None).await?;
    let envelope = JobEnvelope {
        kind: job.kind,
        org: principal.org.clone(),
        actor: actor.to_string(),
        payload: job.payload,
        idempotency_key: job.idempotency_key,
        request_id: job.request_id,
        job: Some(item.id),
        run: job.run,
    };
    let sent = match signer.seal(envelope) {
        Ok(signed) => queue.send(&signed).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        // Nothing was queued: the record says so rather than staying queued forever.
        let failed = Change::Patch {
            name: None,
            parent: None,
            attributes: Some(Map::from_iter([
                ("status".to_string(), json!("failed")),
                ("error".to_string(), json!(e.to_string())),
            ])),
        };
        ops::update_by_server(rn, &recorder, item.id, failed, None, Some(JOB))
            .await
            .ok();
        return Err(e.into());
    }
    Ok(item)
}

/// The account's own job sent with this key, if any: never another account's, whatever the
/// caller may read.
async fn job_with_key(
    rn: &Realnet,
    principal: &Principal,
    key: &str,
) -> Result<Option<Item>, ItemError> {
    let Some(account) = principal.account else {
        return Ok(None);
    };
    let mut query = ItemQuery::parse(&rn.types, &[("type".into(), JOB.into())], None)
        .expect("a fixed query parses");
    query.readable = Readable::Only {
        types: Vec::new(),
        owner: Some(account),
        owned_types: query.types.clone(),
        subtrees: Vec::new(),
    };
    query.attrs = vec![AttrFilter {
        field: "idempotency_key".into(),
        kind: FieldKind::String,
        op: Op::Eq,
        values: vec![Scalar::Text(key.to_string())],
    }];
    query.limit = 1;
    Ok(crate::store::first_item(&*rn.store, &principal.org, &query).await?)
}
