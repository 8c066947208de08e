//! The operations extension: the runbook's answer to "a job failed for good". The jobs
//! dead-letter queue (SQS's, or the local queue's under `realnet serve`) appears as
//! read-only `DeadLetter` items (`GET /api/deadletters`, `GET /api/deadletters/{id}`, one
//! per dead job of the caller's org), and three handlers redrive one, redrive all, or drop
//! one. Org admins only: a redriven job runs again as the account it proved, exactly as it
//! was sent.

use std::sync::Arc;

use async_trait::async_trait;
use realnet::extensions::{
    Call, Extension, Handler, HandlerError, HandlerResult, ItemSource, OrgDeadLetter,
};
use realnet::item::Item;
use realnet::types::Layer;
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub fn extension() -> Extension {
    let one = json!({
        "type": "object",
        "properties": {"id": {"type": "string", "format": "uuid", "description": "A DeadLetter item's id"}},
        "required": ["id"],
        "additionalProperties": false
    });
    let done = |key: &str| {
        json!({
            "type": "object",
            "properties": {key: {"type": "array", "items": {"type": "string", "format": "uuid"}}},
            "required": [key],
            "additionalProperties": false
        })
    };
    Extension::new("ops", "Operations: the jobs that failed for good")
        .types(
            "ops.json",
            Layer::Resource,
            include_str!("../types/ops.json"),
        )
        .source("DeadLetter", Arc::new(DeadLetterItems))
        .handler(
            Handler::new(
                "redrive",
                "Sends one dead job to the queue again, as it was sent",
                |call, input| async move { redrive(call, Some(id_in(&input)?)).await },
            )
            .input(one.clone())
            .output(done("redriven")),
        )
        .handler(
            Handler::new(
                "redrive_all",
                "Sends every dead job of the org to the queue again",
                |call, _| async move { redrive(call, None).await },
            )
            .input(json!({"type": "object", "additionalProperties": false}))
            .output(done("redriven")),
        )
        .handler(
            Handler::new(
                "drop",
                "Removes one dead job for good",
                |call: Call, input: Value| async move {
                    let id = id_in(&input)?;
                    let dropped = call.drop_dead_letters(&[id]).await?;
                    found(&dropped, id)?;
                    Ok(json!({ "dropped": dropped }))
                },
            )
            .input(one)
            .output(done("dropped")),
        )
}

fn id_in(input: &Value) -> Result<Uuid, HandlerError> {
    input
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HandlerError::invalid("id must be a DeadLetter item's id", None))
}

fn found(done: &[Uuid], id: Uuid) -> Result<(), HandlerError> {
    if done.contains(&id) {
        Ok(())
    } else {
        Err(HandlerError::not_found(format!("no dead letter {id}")))
    }
}

async fn redrive(call: Call, id: Option<Uuid>) -> HandlerResult {
    let ids = id.map(|id| vec![id]);
    let redriven = call.redrive_dead_letters(ids.as_deref()).await?;
    if let Some(id) = id {
        found(&redriven, id)?;
    }
    Ok(json!({ "redriven": redriven }))
}

/// The dead letters of the caller's org as `DeadLetter` items.
struct DeadLetterItems;

#[async_trait]
impl ItemSource for DeadLetterItems {
    async fn items(&self, call: &Call) -> Result<Vec<Item>, HandlerError> {
        let org = call.org().to_string();
        Ok(call
            .dead_letters()
            .await?
            .into_iter()
            .map(|l| item(&org, l))
            .collect())
    }
}

fn item(org: &str, l: OrgDeadLetter) -> Item {
    let at = l.sent_at.unwrap_or_else(realnet::item::now);
    let mut attributes = Map::new();
    attributes.insert("kind".into(), json!(l.kind));
    attributes.insert("actor".into(), json!(l.actor));
    attributes.insert("payload".into(), l.payload);
    attributes.insert("receives".into(), json!(l.receives));
    Item {
        id: l.id,
        type_name: "DeadLetter".into(),
        name: format!("{} by {}", l.kind, l.actor),
        parent: None,
        org: org.to_string(),
        owner: None,
        attributes,
        version: 1,
        created_at: at,
        updated_at: at,
    }
}
