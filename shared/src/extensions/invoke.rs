//! The one way a handler is called, whether over HTTP (`POST /_schd/...`), from the queue
//! (an `extension.call` job) or on a schedule (a `Schedule` whose job is one): the handler
//! found (a linked one, else the remote `Extension` item of that name in the caller's org),
//! the caller's right to call it checked (`call` on the `Extension` type, or for a remote one
//! on its item; default deny; org admins may), the payload checked against the handler's
//! input schema, the handler run with its panics caught (a panic fails the call, not the
//! process), and its staged writes committed in one transaction, then the dead letters it
//! redrove or dropped acted on, then its jobs sent; a handler that fails leaves all of them
//! undone. A remote
//! handler runs elsewhere ([`super::remote`]) and stages nothing.

use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::Value;

use super::call::DeadAction;
use super::{Call, HandlerError, Staged, remote};
use crate::access::Permission;
use crate::auth::Principal;
use crate::blob::finalize::{self, FinalizeError};
use crate::context::Realnet;
use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::item::ops;
use crate::store::Write;

/// The type on which rules grant the right to call.
pub const EXTENSION: &str = "Extension";

/// A handler, by name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub extension: &'a str,
    pub handler: &'a str,
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.extension, self.handler)
    }
}

/// Why a call did not answer with the handler's result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No such extension or handler (`404`).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not call it, or must log in first; or the payload is off its schema;
    /// or committing the handler's writes failed: answered as the item API answers.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// The payload does not match the handler's input schema (`422`, each problem by its
    /// JSON pointer under `payload`).
    #[error("the payload does not match the input schema of {target}: {}", errors.summary())]
    Input {
        target: String,
        errors: ValidationErrors,
    },
    /// The handler's own answer.
    #[error(transparent)]
    Handler(HandlerError),
    /// The handler panicked (`500`): nothing it began was committed.
    #[error("handler {target} failed unexpectedly{}; nothing it began was saved", request_note(.request_id))]
    Panicked {
        target: String,
        request_id: Option<String>,
    },
}

fn request_note(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

impl From<crate::store::StoreError> for CallError {
    fn from(e: crate::store::StoreError) -> Self {
        CallError::Item(e.into())
    }
}

impl From<HandlerError> for CallError {
    fn from(e: HandlerError) -> Self {
        match e {
            // An item operation's error keeps its own answer.
            HandlerError::Item(e) => CallError::Item(e),
            e => CallError::Handler(e),
        }
    }
}

/// Checks that `p` may call `target` with `payload`: what is known before the handler runs
/// (and what `?async=true`, `POST /api/jobs` and a schedule's job check before anything is
/// queued).
pub async fn check(
    rn: &Realnet,
    p: &Principal,
    target: Target<'_>,
    payload: &Value,
) -> Result<(), CallError> {
    let Some(extension) = rn.extensions.get(target.extension) else {
        return Box::pin(remote::check(rn, p, target, payload))
            .await
            .map(drop);
    };
    let Some(handler) = extension.find(target.handler) else {
        return Err(CallError::NotFound(format!(
            "extension {:?} has no handler {:?} (GET /api/extensions lists them)",
            target.extension, target.handler
        )));
    };
    if !p.admin {
        let rules = rn.access_rules(&p.org).await?;
        if !rn
            .may(&rules, p, Permission::Call, EXTENSION, None, None)
            .await?
        {
            return Err(if p.is_public() {
                ItemError::Unauthenticated(format!("log in to call {target} (POST /api/auth)"))
            } else {
                ItemError::Forbidden(format!(
                    "you may not call {target}: that needs the call permission on {EXTENSION}"
                ))
            }
            .into());
        }
    }
    let problems = handler.check_input(payload);
    if !problems.is_empty() {
        let mut errors = ValidationErrors::default();
        for (at, message) in problems {
            errors.add(format!("payload{at}"), message);
        }
        return Err(CallError::Input {
            target: target.to_string(),
            errors,
        });
    }
    Ok(())
}

/// A handler's answer with its writes, not yet committed.
pub struct Outcome {
    pub result: Value,
    staged: Staged,
}

/// Checks and runs the handler as `p`; nothing it wrote is committed yet ([`Outcome::commit`]).
pub async fn run(
    rn: &Arc<Realnet>,
    p: &Principal,
    target: Target<'_>,
    payload: Value,
    request_id: Option<String>,
) -> Result<Outcome, CallError> {
    if rn.extensions.get(target.extension).is_none() {
        // A remote extension writes nothing through Realnet: its answer is the outcome. Its
        // call (an HTTP client's or the Lambda SDK's future, many kilobytes) is boxed so that
        // a linked handler's call does not carry, and move, its state.
        let result = Box::pin(async {
            let extension = remote::check(rn, p, target, &payload).await?;
            Ok::<_, CallError>(
                remote::call(rn, p, &extension, target.handler, payload, request_id).await?,
            )
        })
        .await?;
        return Ok(Outcome {
            result,
            staged: Staged::default(),
        });
    }
    check(rn, p, target, &payload).await?;
    let handler = rn
        .extensions
        .get(target.extension)
        .and_then(|e| e.find(target.handler))
        .expect("checked above")
        .clone();
    let call = Call::new(rn.clone(), p.clone(), request_id.clone());
    // A panic is caught here, in the caller's task: the call fails, not the process.
    let run = std::panic::AssertUnwindSafe((handler.run)(call.clone(), payload));
    match run.catch_unwind().await {
        Ok(Ok(result)) => Ok(Outcome {
            result,
            staged: call.take_staged(),
        }),
        Ok(Err(e)) => {
            call.take_staged().abandon().await;
            Err(e.into())
        }
        Err(_) => {
            call.take_staged().abandon().await;
            tracing::error!(
                extension = target.extension,
                handler = target.handler,
                request_id = request_id.as_deref().unwrap_or_default(),
                "the handler panicked"
            );
            Err(CallError::Panicked {
                target: target.to_string(),
                request_id,
            })
        }
    }
}

impl Outcome {
    /// What `call` staged, answering `result`: the outcome of a call that is not a
    /// handler's (a module-bound item's write, [`super::source`]).
    pub(crate) fn of(call: &Call, result: Value) -> Outcome {
        Outcome {
            result,
            staged: call.take_staged(),
        }
    }

    /// Commits the handler's writes, with `extra` writes in the same transaction (a job's
    /// record), then sends the jobs it submitted; answers the handler's result.
    pub async fn commit(
        self,
        rn: &Realnet,
        p: &Principal,
        extra: Vec<Write>,
    ) -> Result<Value, CallError> {
        let Staged {
            writes,
            files,
            jobs,
            dead_letters,
        } = self.staged;
        if !writes.is_empty() || !extra.is_empty() {
            // Dead letters it held are released (dropped) if the writes fail.
            ops::commit_with(rn, p, writes, extra).await?;
        }
        for (action, held) in dead_letters {
            match action {
                DeadAction::Redrive => held.redrive().await,
                DeadAction::Remove => held.remove().await,
            }
            .map_err(|e| CallError::Handler(e.into()))?;
        }
        // Storing files and sending jobs are boxed (their futures are kilobytes): a call that
        // does neither, most of them, does not carry their state.
        for (file, bytes) in files {
            // A file that cannot be stored is deleted again; the caller hears why.
            Box::pin(finalize::store_inline(rn, p, &file, bytes))
                .await
                .map_err(|e| CallError::Handler(file_error(e)))?;
        }
        for job in jobs {
            let kind = job.kind.clone();
            let actor = p.username.clone().unwrap_or_default();
            if let Err(e) = Box::pin(crate::jobs::submit::submit(rn, p, &actor, job)).await {
                // The writes are in; the job is what is missing, and the log says so.
                tracing::error!(kind, error = %e, "a job the handler submitted was not sent");
            }
        }
        Ok(self.result)
    }
}

fn file_error(e: FinalizeError) -> HandlerError {
    match e {
        FinalizeError::Item(e) => HandlerError::Item(e),
        e => HandlerError::Unavailable(e.to_string()),
    }
}

/// Runs the handler and commits what it wrote: a synchronous call.
pub async fn call(
    rn: &Arc<Realnet>,
    p: &Principal,
    target: Target<'_>,
    payload: Value,
    request_id: Option<String>,
) -> Result<Value, CallError> {
    run(rn, p, target, payload, request_id)
        .await?
        .commit(rn, p, Vec::new())
        .await
}
