//! Remote extensions, configured as data: an `Extension` item names a webhook (an HTTPS URL
//! Realnet POSTs signed JSON to) or a Lambda function (called through the Invoke API) and
//! declares its handlers with their JSON Schemas. Only org admins write them (no rebuild, no
//! restart); a webhook's signing secret is [`secret`]'s. A name is unique in its org: checked
//! here, and kept so by the store (a unique index, or a claim record in DynamoDB), so that two
//! creates at once cannot both win. Calls come through [`super::invoke`] when no linked
//! extension has the name; the right to call is `call` on the item; what a call needs of the
//! item is remembered per container ([`cache`]).

pub mod cache;
pub mod secret;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::invoke::{CallError, EXTENSION, Target};
use super::{HandlerError, lambda, webhook};
use crate::access::Permission;
use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::attributes::ValidationErrors;
use crate::item::behaviour::{Effects, Origin, Pending, TypeBehaviour};
use crate::item::{Item, ItemError};
use crate::query::{ItemQuery, NameFilter, Readable};
use crate::store::{StoreError, Write};
use secret::SigningSecret;

/// How long a remote extension may take unless its item says otherwise (`timeout_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a remote extension runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Webhook(reqwest::Url),
    /// A Lambda function's name or ARN.
    Lambda(String),
}

impl Endpoint {
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Webhook(_) => "webhook",
            Endpoint::Lambda(_) => "lambda",
        }
    }
}

/// A handler an `Extension` item declares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteHandler {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The JSON Schema a payload must match.
    pub input: Option<Value>,
    /// The JSON Schema the handler's result must match: an answer off it is a `502`.
    pub output: Option<Value>,
    #[serde(skip)]
    input_validator: Option<jsonschema::Validator>,
    #[serde(skip)]
    output_validator: Option<jsonschema::Validator>,
}

impl RemoteHandler {
    /// What is wrong with `payload` against the input schema, by JSON pointer.
    fn check_input(&self, payload: &Value) -> Vec<(String, String)> {
        problems(self.input_validator.as_ref(), payload)
    }

    /// What is wrong with an answer against the output schema, by JSON pointer.
    fn check_output(&self, answer: &Value) -> Vec<(String, String)> {
        problems(self.output_validator.as_ref(), answer)
    }
}

fn problems(validator: Option<&jsonschema::Validator>, value: &Value) -> Vec<(String, String)> {
    match validator {
        None => Vec::new(),
        Some(v) => v
            .iter_errors(value)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect(),
    }
}

/// A remote extension as its item configures it.
#[derive(Debug)]
pub struct RemoteExtension {
    pub id: Uuid,
    pub org: String,
    pub name: String,
    /// The item's type and owner, which the right to call it depends on.
    pub type_name: String,
    pub owner: Option<Uuid>,
    pub description: String,
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub handlers: Vec<RemoteHandler>,
    /// A webhook's signing secret, once read for a call ([`load`]).
    pub secret: Option<SigningSecret>,
}

impl RemoteExtension {
    /// Reads an `Extension` item; `allow_loopback` is `REALNET_EXTENSION_ALLOW_LOOPBACK`.
    /// Every problem is named by its attribute (`handlers[1].input`, `url`).
    pub fn from_item(item: &Item, allow_loopback: bool) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let text = |name: &str| item.attributes.get(name).and_then(Value::as_str);
        let endpoint = match text("kind") {
            Some("webhook") => match text("url") {
                None => {
                    errors.add("url", "a webhook needs its https:// URL");
                    None
                }
                Some(url) => match webhook::check_url(url, allow_loopback) {
                    Ok(url) => Some(Endpoint::Webhook(url)),
                    Err(m) => {
                        errors.add("url", m);
                        None
                    }
                },
            },
            Some("lambda") => match text("function") {
                None => {
                    errors.add(
                        "function",
                        "a lambda extension needs its function's name or ARN",
                    );
                    None
                }
                Some(f) => Some(Endpoint::Lambda(f.to_string())),
            },
            _ => {
                errors.add("kind", "must be webhook or lambda");
                None
            }
        };
        match (&endpoint, text("url"), text("function")) {
            (Some(Endpoint::Webhook(_)), _, Some(_)) => {
                errors.add("function", "only a lambda extension names a function")
            }
            (Some(Endpoint::Lambda(_)), Some(_), _) => {
                errors.add("url", "only a webhook extension has a URL")
            }
            _ => {}
        }
        let timeout = item
            .attributes
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let handlers = parse_handlers(
            item.attributes.get("handlers").unwrap_or(&Value::Null),
            &mut errors,
        );
        errors.into_result(())?;
        Ok(RemoteExtension {
            id: item.id,
            org: item.org.clone(),
            name: item.name.clone(),
            type_name: item.type_name.clone(),
            owner: item.owner,
            secret: None,
            description: text("description").unwrap_or_default().to_string(),
            endpoint: endpoint.expect("no errors, so an endpoint"),
            timeout,
            handlers,
        })
    }

    pub fn find(&self, handler: &str) -> Option<&RemoteHandler> {
        self.handlers.iter().find(|h| h.name == handler)
    }
}

/// The `handlers` attribute: a list of `{name, description?, input?, output?}`, names unique
/// and of `[a-z0-9_]`, schemas that compile.
fn parse_handlers(value: &Value, errors: &mut ValidationErrors) -> Vec<RemoteHandler> {
    let mut handlers: Vec<RemoteHandler> = match serde_path_to_error::deserialize(value.clone()) {
        Ok(h) => h,
        Err(e) => {
            let at = e.path().to_string();
            let field = if at == "." {
                "handlers".to_string()
            } else {
                format!("handlers{}", at.strip_prefix('?').unwrap_or(&at))
            };
            errors.add(
                    field,
                    format!(
                        "{}: handlers is a list of {{\"name\", \"description\"?, \"input\"?, \"output\"?}}",
                        e.inner()
                    ),
                );
            return Vec::new();
        }
    };
    if handlers.is_empty() {
        errors.add("handlers", "declare at least one handler");
    }
    for i in 0..handlers.len() {
        let name = &handlers[i].name;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            errors.add(
                format!("handlers[{i}].name"),
                "use 1 to 64 of lowercase letters, digits and _",
            );
        } else if handlers[..i].iter().any(|o| &o.name == name) {
            errors.add(
                format!("handlers[{i}].name"),
                format!("two handlers are named {name:?}"),
            );
        }
        for (which, schema) in [
            ("input", &handlers[i].input),
            ("output", &handlers[i].output),
        ] {
            if let Some(schema) = schema
                && let Err(e) = jsonschema::validator_for(schema)
            {
                errors.add(
                    format!("handlers[{i}].{which}"),
                    format!("not a JSON Schema: {e}"),
                );
            }
        }
        let compiled =
            |s: &Option<Value>| s.as_ref().and_then(|s| jsonschema::validator_for(s).ok());
        handlers[i].input_validator = compiled(&handlers[i].input);
        handlers[i].output_validator = compiled(&handlers[i].output);
    }
    handlers
}

/// The remote extension named `name` in `org`, if there is one.
pub async fn find(rn: &Realnet, org: &str, name: &str) -> Result<Option<Item>, StoreError> {
    let mut query = ItemQuery::parse(&rn.types, &[], None).expect("an empty query always parses");
    query.types = rn.types.subtypes(EXTENSION).to_vec();
    query.name = Some(NameFilter::Exact(name.to_string()));
    query.readable = Readable::All;
    query.limit = 1;
    // Read on past short pages: on DynamoDB a page that ends at the read budget may hold
    // nothing yet have a next page.
    let found = crate::store::first_item(&*rn.store, org, &query).await?;
    Ok(
        crate::store::current(&*rn.store, org, &query, found.into_iter().collect())
            .await?
            .pop(),
    )
}

/// The remote extension `name` of `org`, ready to call (a webhook with its secret): as this
/// container remembers it, or else read from the store and remembered.
async fn load(
    rn: &Realnet,
    org: &str,
    name: &str,
) -> Result<Option<Arc<RemoteExtension>>, CallError> {
    if let Some(known) = rn.remote_extensions.get(org, name) {
        return Ok(Some(known));
    }
    let read = rn.remote_extensions.begin();
    let Some(item) = find(rn, org, name).await? else {
        return Ok(None);
    };
    let mut remote = RemoteExtension::from_item(&item, rn.config.extension_allow_loopback)
        .map_err(|e| misconfigured(name, &e))?;
    if let Endpoint::Webhook(_) = remote.endpoint {
        remote.secret = secret::read(rn, org, item.id).await?;
    }
    let remote = Arc::new(remote);
    rn.remote_extensions.keep(read, remote.clone());
    Ok(Some(remote))
}

/// The remote extension of `target`, checked as [`super::invoke::check`] checks a linked
/// one: it exists in the caller's org (`404`), declares the handler (`404`), the caller may
/// `call` it (a rule on the type or on the item; admins may), and the payload matches the
/// handler's input schema (`422`).
pub async fn check(
    rn: &Realnet,
    p: &Principal,
    target: Target<'_>,
    payload: &Value,
) -> Result<Arc<RemoteExtension>, CallError> {
    let remote = load(rn, &p.org, target.extension).await?.ok_or_else(|| {
        CallError::NotFound(format!(
            "no extension named {:?} (GET /api/extensions lists them)",
            target.extension
        ))
    })?;
    let Some(handler) = remote.find(target.handler) else {
        return Err(CallError::NotFound(format!(
            "extension {:?} has no handler {:?} (GET /api/extensions lists them)",
            target.extension, target.handler
        )));
    };
    if !p.admin {
        let rules = rn.access_rules(&p.org).await?;
        let may = rn
            .may(
                &rules,
                p,
                Permission::Call,
                &remote.type_name,
                remote.owner,
                Some(remote.id),
            )
            .await?;
        if !may {
            return Err(if p.is_public() {
                ItemError::Unauthenticated(format!("log in to call {target} (POST /api/auth)"))
            } else {
                ItemError::Forbidden(format!(
                    "you may not call {target}: that needs the call permission on {EXTENSION} or on this extension's item"
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
        return Err(ItemError::Invalid(errors).into());
    }
    Ok(remote)
}

fn misconfigured(name: &str, errors: &ValidationErrors) -> CallError {
    let what: Vec<String> = errors.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    CallError::Handler(HandlerError::Remote(format!(
        "extension {name:?} is misconfigured ({}); an admin must fix its item",
        what.join("; ")
    )))
}

/// Calls the handler of `remote` (checked by [`check`]) as `p`: the request Realnet sends,
/// and the JSON the extension answered, which must match the handler's output schema.
pub async fn call(
    rn: &Realnet,
    p: &Principal,
    remote: &RemoteExtension,
    handler: &str,
    payload: Value,
    request_id: Option<String>,
) -> Result<Value, HandlerError> {
    let body = json!({
        "extension": remote.name,
        "handler": handler,
        "org": p.org,
        "caller": {"account": p.account, "username": p.username},
        "request_id": request_id,
        "payload": payload,
    });
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let limit = rn.config.body_limit;
    let answer = match &remote.endpoint {
        Endpoint::Webhook(url) => {
            let Some(secret) = &remote.secret else {
                return Err(HandlerError::Remote(format!(
                    "extension {:?} has no signing secret: an admin must rotate it (POST /api/extensions/{}/rotate_secret)",
                    remote.name, remote.name
                )));
            };
            let allow_loopback = rn.config.extension_allow_loopback;
            let request = webhook::Request {
                url,
                secret: secret.expose(),
                body,
                timeout: remote.timeout,
                limit,
                allow_loopback,
            };
            webhook::post(request).await
        }
        Endpoint::Lambda(function) => lambda::invoke(function, body, remote.timeout, limit).await,
    };
    let answer = answer.map_err(|e| match e {
        Failure::Refused { status, message } => HandlerError::refused(status, message),
        Failure::Failed(why) => {
            HandlerError::Remote(format!("extension {:?} failed: {why}", remote.name))
        }
    })?;
    let problems = remote
        .find(handler)
        .map(|h| h.check_output(&answer))
        .unwrap_or_default();
    if !problems.is_empty() {
        // Bounded: a problem quotes what was answered, which may be large.
        let what: Vec<String> = problems
            .iter()
            .take(5)
            .map(|(at, m)| {
                let m: String = m.chars().take(200).collect();
                format!("{}: {m}", if at.is_empty() { "/" } else { at })
            })
            .collect();
        return Err(HandlerError::Remote(format!(
            "extension {:?} answered {handler:?} off its output schema ({})",
            remote.name,
            what.join("; ")
        )));
    }
    Ok(answer)
}

/// Why a remote extension gave no result.
#[derive(Debug)]
pub enum Failure {
    /// It refused with a `4xx` and `{"error": {"message"}}`: passed on to the caller.
    Refused { status: u16, message: String },
    /// Anything else (no answer, too slow, too large, not JSON, a redirect, a refused
    /// address, a function error): a `502` saying what went wrong.
    Failed(String),
}

/// Parses what a remote answered: JSON, else a failure.
pub fn parse_answer(bytes: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::Failed(format!("it did not answer JSON ({e})")))
}

/// `Extension` items: written by org admins only; checked (kind, endpoint, handlers, a name
/// no linked extension and no other `Extension` of the org has: that one a `409`, as a
/// username taken is); a webhook gets its signing secret when created or rotated, and loses
/// it when deleted; a committed write makes this container forget the remote extensions it
/// remembered.
pub struct ExtensionItems;

#[async_trait]
impl TypeBehaviour for ExtensionItems {
    fn guards_identity(&self) -> bool {
        true
    }

    async fn check(&self, w: &Pending<'_>, errors: &mut ValidationErrors) -> Result<(), ItemError> {
        let item = w.item;
        if let Err(e) = RemoteExtension::from_item(item, w.rn.config.extension_allow_loopback) {
            errors.0.extend(e.0);
        }
        if let Some(before) = w.before
            && before.attributes.get("kind") != item.attributes.get("kind")
        {
            errors.add(
                "kind",
                "an extension's kind cannot change: make a new Extension",
            );
        }
        if crate::config::check_org_name(&item.name).is_err() {
            errors.add(
                "name",
                "an extension's name is part of its URL: use lowercase letters, digits and -",
            );
        } else if w.rn.extensions.get(&item.name).is_some() {
            errors.add(
                "name",
                format!("{:?} is a linked extension of this deployment", item.name),
            );
        } else if let Some(other) = find(w.rn, &item.org, &item.name).await?
            && other.id != item.id
        {
            // The store refuses it too, should another write of the name commit first.
            return Err(ItemError::Store(StoreError::Taken(format!(
                "extension {:?} exists already in org {:?} ({})",
                item.name, item.org, other.id
            ))));
        }
        if w.write_only.contains_key(secret::ROTATE) && w.origin == Origin::Client {
            errors.add(
                secret::ROTATE,
                format!(
                    "rotate the signing secret with POST /api/extensions/{}/rotate_secret, which shows the new one",
                    item.name
                ),
            );
        }
        Ok(())
    }

    async fn effects(&self, w: &Pending<'_>) -> Result<Effects, ItemError> {
        let mut effects = Effects::default();
        let webhook = w.item.attributes.get("kind").and_then(Value::as_str) == Some("webhook");
        let rotate = w.before.is_some() && w.write_only.contains_key(secret::ROTATE);
        if webhook && (w.before.is_none() || rotate) {
            let (secret, write) = secret::generate(w.item);
            effects.writes.push(write);
            effects.secret = Some(secret);
        }
        Ok(effects)
    }

    fn write_only(&self) -> &'static [&'static str] {
        &[secret::ROTATE]
    }

    fn on_delete(&self, item: &Item) -> Vec<Write> {
        vec![secret::remove(item)]
    }

    fn after_write(&self, rn: &Realnet, _org: &str) {
        rn.remote_extensions.forget();
    }
}
