//! Extensions: the business logic a deployment adds. A handler is `(extension, handler)`: an
//! async function of a JSON payload and a [`Call`], the narrow context of one call (the
//! calling principal and its org; items, queries, files and jobs *through the same access
//! checks as HTTP*; never the raw store, the configuration or another org). Linked
//! extensions are Rust crates in `extensions/`, each an [`Extension`] value listed once in
//! the `realnet-extensions` crate; an extension may also ship types (a definition file loaded
//! in its layer), type behaviours, and the items of module-bound types ([`ItemSource`]).
//! Remote extensions (a webhook or a Lambda function) are `Extension` items ([`remote`]).
//! Every way of calling (HTTP, the queue, a schedule) goes through [`invoke`].

mod call;
pub use call::OrgDeadLetter;
pub mod invoke;
mod lambda;
pub mod remote;
pub mod source;
pub mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Principal;
use crate::context::Realnet;
use crate::item::behaviour::TypeBehaviour;
use crate::item::prepared::Prepared;
use crate::item::{Item, ItemError};
use crate::jobs::envelope::Submission;
use crate::query::{ItemQuery, QueryError};
use crate::types::{Layer, TypeFile};

/// What a handler answers.
pub type HandlerResult = Result<Value, HandlerError>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type HandlerFn = Arc<dyn Fn(Call, Value) -> BoxFuture<HandlerResult> + Send + Sync>;

/// Why a handler did not answer with a result. A refusal is the handler's own `4xx`; an item
/// operation's error is answered as the item API answers it.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{message}")]
    Refused {
        /// Always a `4xx`.
        status: u16,
        message: String,
        details: Option<Value>,
    },
    #[error(transparent)]
    Item(#[from] ItemError),
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A remote extension failed (it did not answer, or answered with an error): a `502`.
    #[error("{0}")]
    Remote(String),
    /// What the handler needs is unavailable or not configured: a `503`.
    #[error("{0}")]
    Unavailable(String),
}

impl HandlerError {
    /// A refusal with `status`, which must be a `4xx` (anything else becomes `400`).
    pub fn refused(status: u16, message: impl Into<String>) -> Self {
        HandlerError::Refused {
            status: if (400..500).contains(&status) {
                status
            } else {
                400
            },
            message: message.into(),
            details: None,
        }
    }

    /// The input cannot be used (`422`), with `details` naming what is wrong (for example
    /// `{"lines": {"3": "..."}}`).
    pub fn invalid(message: impl Into<String>, details: Option<Value>) -> Self {
        HandlerError::Refused {
            status: 422,
            message: message.into(),
            details,
        }
    }

    /// The item changed since `expected` (`412`, as the item API answers a stale
    /// `If-Match`).
    pub fn version_conflict(id: Uuid, expected: i64, actual: i64) -> Self {
        HandlerError::Item(ItemError::Store(
            crate::store::StoreError::VersionConflict {
                id,
                expected,
                actual,
            },
        ))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        HandlerError::refused(403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        HandlerError::refused(404, message)
    }
}

/// One handler of a linked extension.
#[derive(Clone)]
pub struct Handler {
    pub name: &'static str,
    pub description: &'static str,
    input: Option<Arc<Schema>>,
    output: Option<Value>,
    run: HandlerFn,
}

/// A JSON Schema, compiled on first use: compiling every linked handler's schema at start
/// would be most of a function's cold start, for handlers a container may never call.
struct Schema {
    source: Value,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl Schema {
    fn compiled(&self) -> &Result<jsonschema::Validator, String> {
        self.validator
            .get_or_init(|| jsonschema::validator_for(&self.source).map_err(|e| e.to_string()))
    }
}

impl Handler {
    /// A handler named `name` (`[a-z0-9_]`, unique in its extension) that runs `f`.
    pub fn new<F, Fut>(name: &'static str, description: &'static str, f: F) -> Handler
    where
        F: Fn(Call, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler {
            name,
            description,
            input: None,
            output: None,
            run: Arc::new(move |call, payload| Box::pin(f(call, payload))),
        }
    }

    /// The JSON Schema a payload must match; one that does not is refused (`422`) before the
    /// handler runs. Compiled when first needed; [`Handler::check_schemas`] says whether it
    /// compiles (each extension's tests call it).
    pub fn input(mut self, schema: Value) -> Handler {
        self.input = Some(Arc::new(Schema {
            source: schema,
            validator: OnceLock::new(),
        }));
        self
    }

    /// Why the input schema is not a JSON Schema, if it is not.
    pub fn check_schemas(&self) -> Result<(), String> {
        match self.input.as_deref().map(Schema::compiled) {
            Some(Err(e)) => Err(format!(
                "the input schema of handler {} is not a JSON Schema: {e}",
                self.name
            )),
            _ => Ok(()),
        }
    }

    /// The JSON Schema of what the handler answers (documented, and checked by the tests).
    pub fn output(mut self, schema: Value) -> Handler {
        self.output = Some(schema);
        self
    }

    pub fn input_schema(&self) -> Option<&Value> {
        self.input.as_ref().map(|s| &s.source)
    }

    pub fn output_schema(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    /// What is wrong with `payload` against the input schema: each problem by its JSON
    /// pointer (`""` for the payload itself).
    pub(crate) fn check_input(&self, payload: &Value) -> Vec<(String, String)> {
        match &self.input {
            None => Vec::new(),
            Some(schema) => match schema.compiled() {
                Ok(validator) => validator
                    .iter_errors(payload)
                    .map(|e| (e.instance_path().to_string(), e.to_string()))
                    .collect(),
                // A handler whose own schema does not compile takes no payload.
                Err(e) => vec![(
                    String::new(),
                    format!("the handler's input schema is broken: {e}"),
                )],
            },
        }
    }
}

/// Where the items of a module-bound type come from: its extension, not the store. Items
/// are filtered by the caller's access rules as stored items are. Read-only unless the
/// source answers a [`writer`](ItemSource::writer).
#[async_trait]
pub trait ItemSource: Send + Sync + 'static {
    /// Every item of the type in the caller's org the source has (bounded by the source);
    /// filtering, sorting and paging are [`source::page_of`].
    async fn items(&self, call: &Call) -> Result<Vec<Item>, HandlerError>;

    /// One item by id, if the source has it.
    async fn item(&self, call: &Call, id: Uuid) -> Result<Option<Item>, HandlerError> {
        Ok(self.items(call).await?.into_iter().find(|i| i.id == id))
    }

    /// What writes the type's items, if the source does: then `POST`, `PATCH`, `PUT` and
    /// `DELETE` of the item API reach it, checked as for stored items. `None` (the default):
    /// they are refused (`422`).
    fn writer(&self) -> Option<&dyn ItemWriter> {
        None
    }
}

/// The writes of a module-bound type's items. Each is called once the item API has checked
/// it as it checks a stored item's (the caller's right, the type's fields, server-managed
/// fields, the parent, references, `If-Match`): the source only stores it, in the caller's
/// org ([`Call::org`]). An item write the source makes through its [`Call`] commits after
/// it answered, as a handler's do.
#[async_trait]
pub trait ItemWriter: Send + Sync {
    /// Stores `item`, a new item (its id, owner, version `1` and times set); answers it as
    /// stored.
    async fn create(&self, call: &Call, item: Item) -> Result<Item, HandlerError>;

    /// Replaces the item with `next` (its version one more than `expected_version`) if it is
    /// still at `expected_version`, else answers [`HandlerError::version_conflict`]; answers
    /// it as stored.
    async fn update(
        &self,
        call: &Call,
        next: Item,
        expected_version: i64,
    ) -> Result<Item, HandlerError>;

    /// Removes `item` (as the caller last read it).
    async fn delete(&self, call: &Call, item: &Item) -> Result<(), HandlerError>;
}

/// A linked extension: its handlers and what else it adds.
pub struct Extension {
    pub name: &'static str,
    pub description: &'static str,
    handlers: Vec<Handler>,
    types: Vec<TypeFile>,
    behaviours: Vec<(&'static str, Arc<dyn TypeBehaviour>)>,
    sources: Vec<(&'static str, Arc<dyn ItemSource>)>,
}

impl Extension {
    /// An extension named `name` (lowercase letters, digits and `-`).
    pub fn new(name: &'static str, description: &'static str) -> Extension {
        Extension {
            name,
            description,
            handlers: Vec::new(),
            types: Vec::new(),
            behaviours: Vec::new(),
            sources: Vec::new(),
        }
    }

    pub fn handler(mut self, handler: Handler) -> Extension {
        self.handlers.push(handler);
        self
    }

    /// A definition file of the extension's own types and seed items, loaded after the
    /// deployment's files of `layer`.
    pub fn types(mut self, file: &str, layer: Layer, json: &'static str) -> Extension {
        self.types.push(TypeFile {
            name: format!("{}/{file}", self.name),
            layer,
            json,
        });
        self
    }

    /// What is special about the items of `type_name` (and its subtypes).
    pub fn behaviour(mut self, type_name: &'static str, b: Arc<dyn TypeBehaviour>) -> Extension {
        self.behaviours.push((type_name, b));
        self
    }

    /// Serves the items of `type_name`, a type whose `module` attribute names this extension.
    pub fn source(mut self, type_name: &'static str, source: Arc<dyn ItemSource>) -> Extension {
        self.sources.push((type_name, source));
        self
    }

    pub fn handlers(&self) -> &[Handler] {
        &self.handlers
    }

    /// The module-bound types it serves.
    pub fn bound_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sources.iter().map(|(t, _)| *t)
    }

    pub fn find(&self, handler: &str) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.name == handler)
    }
}

/// The linked extensions of a deployment.
#[derive(Default)]
pub struct Extensions {
    linked: Vec<Extension>,
    /// Module-bound type → (extension, source).
    sources: HashMap<String, (usize, Arc<dyn ItemSource>)>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.linked.iter().map(|e| e.name))
            .finish()
    }
}

/// Why a set of linked extensions cannot be used together.
#[derive(Debug, thiserror::Error)]
#[error("extensions: {0}")]
pub struct ExtensionsError(String);

impl ExtensionsError {
    pub fn new(message: String) -> Self {
        ExtensionsError(message)
    }
}

impl Extensions {
    /// Checks names (unique, well formed) and registers each extension's sources.
    pub fn new(linked: Vec<Extension>) -> Result<Extensions, ExtensionsError> {
        let mut sources = HashMap::new();
        for (i, e) in linked.iter().enumerate() {
            if crate::config::check_org_name(e.name).is_err() {
                return Err(ExtensionsError(format!(
                    "{:?} is not an extension name: use lowercase letters, digits and -",
                    e.name
                )));
            }
            if linked[..i].iter().any(|o| o.name == e.name) {
                return Err(ExtensionsError(format!(
                    "two extensions are named {:?}",
                    e.name
                )));
            }
            for (j, h) in e.handlers.iter().enumerate() {
                let ok = !h.name.is_empty()
                    && h.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !ok || e.handlers[..j].iter().any(|o| o.name == h.name) {
                    return Err(ExtensionsError(format!(
                        "extension {:?}: handler {:?} is not a unique name of [a-z0-9_]",
                        e.name, h.name
                    )));
                }
            }
            for (t, s) in &e.sources {
                sources.insert(t.to_string(), (i, s.clone()));
            }
        }
        Ok(Extensions { linked, sources })
    }

    pub fn linked(&self) -> &[Extension] {
        &self.linked
    }

    pub fn get(&self, name: &str) -> Option<&Extension> {
        self.linked.iter().find(|e| e.name == name)
    }

    /// The definition files the extensions ship.
    pub fn type_files(&self) -> Vec<TypeFile> {
        self.linked.iter().flat_map(|e| e.types.clone()).collect()
    }

    /// The behaviours the extensions register.
    pub fn behaviours(&self) -> Vec<(&'static str, Arc<dyn TypeBehaviour>)> {
        self.linked
            .iter()
            .flat_map(|e| e.behaviours.iter().cloned())
            .collect()
    }

    /// The extension serving `type_name`'s items, if the type is module-bound.
    pub fn source_of(&self, type_name: &str) -> Option<(&Extension, &Arc<dyn ItemSource>)> {
        self.sources
            .get(type_name)
            .map(|(i, s)| (&self.linked[*i], s))
    }
}

/// The context of one call: who calls, in which org, and what the handler may do for them.
/// Reads happen at once; writes are checked at once and staged, and commit together (one
/// transaction) when the handler has answered, so a handler that fails or panics leaves
/// nothing behind. Dead letters it redrives or drops are held meanwhile and acted on once the
/// writes committed (given back if they do not); jobs it submits are sent after that.
#[derive(Clone)]
pub struct Call {
    rn: Arc<Realnet>,
    principal: Principal,
    request_id: Option<String>,
    staged: Arc<Mutex<Staged>>,
}

#[derive(Default)]
struct Staged {
    writes: Vec<Prepared>,
    /// Files created with the writes, and their bytes, stored once the writes committed.
    files: Vec<(Item, bytes::Bytes)>,
    jobs: Vec<Submission>,
    /// Dead letters held, and what to do with them once the writes committed.
    dead_letters: Vec<(call::DeadAction, crate::queue::dead::Held)>,
}

impl Staged {
    /// Gives back what the call held, changing nothing: the call failed.
    async fn abandon(self) {
        for (_, held) in self.dead_letters {
            if let Err(e) = held.release().await {
                tracing::warn!(error = %e, "held dead letters were not released");
            }
        }
    }
}

impl Call {
    fn new(rn: Arc<Realnet>, principal: Principal, request_id: Option<String>) -> Call {
        Call {
            rn,
            principal,
            request_id,
            staged: Arc::default(),
        }
    }

    /// Who calls.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The caller's org: the only one the handler sees.
    pub fn org(&self) -> &str {
        &self.principal.org
    }

    /// The request (or job) this call serves, for logs.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Parses query parameters as `GET /api/items` does.
    pub fn parse_query(&self, params: &[(&str, &str)]) -> Result<ItemQuery, QueryError> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ItemQuery::parse(&self.rn.types, &params, None)
    }

    fn take_staged(&self) -> Staged {
        std::mem::take(&mut *self.staged.lock().expect("the staged writes' lock"))
    }
}
