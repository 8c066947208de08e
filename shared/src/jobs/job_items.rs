//! The behaviour of `Job` items: the server's record of a job sent through `POST /api/jobs` or
//! by a schedule. Clients never make one (an item nobody sent would stay `queued` forever),
//! and every field is the server's. Also here: the refusal of write-only attributes (an
//! account's password) in job payloads, so that no secret rests in a `Job` or `Schedule` item,
//! a queue body or a dead-letter queue.

use async_trait::async_trait;
use serde_json::Value;

use crate::context::Realnet;
use crate::item::behaviour::TypeBehaviour;

pub struct JobItems;

#[async_trait]
impl TypeBehaviour for JobItems {
    fn made_by_server(&self) -> Option<&'static str> {
        Some("jobs are sent with POST /api/jobs (or by a Schedule), not made as items")
    }
}

/// The write-only attribute a job's payload carries, if it carries one: item jobs may not
/// hold secrets, since their payload is kept in the `Job` item and the queue. A job nested in
/// an attribute (a `Schedule`'s `job`, sent by an item job) is looked at too, at every depth,
/// and an item of a type that is not loaded is refused any attribute write-only anywhere.
pub fn secret_in(rn: &Realnet, kind: &str, payload: &Value) -> Option<String> {
    let items = payload.get("items")?.as_array()?;
    for item in items {
        let Some(attributes) = item.get("attributes").and_then(Value::as_object) else {
            continue;
        };
        let type_name = item.get("type").and_then(Value::as_str);
        for (name, value) in attributes {
            let write_only = match (kind, type_name) {
                ("items.create", Some(t)) if rn.types.get(t).is_some() => {
                    rn.behaviours.of(t).is_write_only(name)
                }
                // An update names no type: refuse any attribute that is write-only anywhere.
                _ => rn.behaviours.write_only_anywhere(name),
            };
            if write_only {
                return Some(format!(
                    "{name:?} is write-only and may not be sent in a job (jobs are stored): set it with a direct request"
                ));
            }
            if let Some(m) = nested_job(value).and_then(|(k, p)| secret_in(rn, k, p)) {
                return Some(m);
            }
        }
    }
    None
}

/// The kind and payload of an attribute shaped like a job (`{"kind": ..., "payload": ...}`).
fn nested_job(value: &Value) -> Option<(&str, &Value)> {
    Some((value.get("kind")?.as_str()?, value.get("payload")?))
}
