//! The core every runner builds once (at cold start on Lambda) and shares: configuration, the
//! type registry with the behaviour of each type, the linked extensions, the stores and the queue, and the caches of
//! who is calling ([`AuthCaches`]). It knows nothing of HTTP (the API's own state is
//! `api::state`), of setting up orgs ([`crate::orgs`]) or of how a runner starts
//! ([`crate::start`]), so that everything else can build on it without reaching back.

use std::sync::Arc;

use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::access::{AccessRules, Permission};
use crate::auth::Principal;
use crate::auth::cache::AuthCaches;
use crate::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use crate::config::{Config, StorageConfig};
use crate::extensions::Extensions;
use crate::extensions::remote::cache::RemoteExtensions;
use crate::item::behaviour::Behaviours;
use crate::jobs::envelope::JobSigner;
use crate::queue::dead::{DeadLetters, SqsDeadLetters};
use crate::queue::{LocalQueue, Queue, SqsQueue};
use crate::store::{ItemStore, StoreError};
use crate::types::TypeRegistry;

pub struct Realnet {
    pub config: Config,
    pub types: TypeRegistry,
    /// What is special about each type, resolved for every loaded type.
    pub behaviours: Behaviours,
    /// The linked extensions and their handlers.
    pub extensions: Extensions,
    pub store: Arc<dyn ItemStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Where jobs go: SQS with `REALNET_QUEUE_URL`, in process under `realnet serve`.
    queue: std::sync::OnceLock<Arc<dyn Queue>>,
    /// Where the jobs that failed for good are: SQS's dead-letter queue with
    /// `REALNET_DEAD_LETTER_QUEUE_URL`, or the local queue's.
    dead_letters: std::sync::OnceLock<Arc<dyn DeadLetters>>,
    local: std::sync::OnceLock<Arc<LocalQueue>>,
    /// Signs and checks job envelopes; see [`crate::jobs::trust`].
    pub(crate) job_signer: OnceCell<JobSigner>,
    /// Principals, access rules and orgs, as last read.
    pub(crate) auth: AuthCaches,
    /// Remote extensions (their items and signing secrets), as last read.
    pub(crate) remote_extensions: RemoteExtensions,
}

impl std::fmt::Debug for Realnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realnet")
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

impl Realnet {
    /// The core over `store`, with `behaviours` resolved for `types` and the linked
    /// `extensions` (see [`crate::start`], which registers them).
    pub fn assemble(
        config: Config,
        types: TypeRegistry,
        behaviours: Behaviours,
        extensions: Extensions,
        store: Arc<dyn ItemStore>,
    ) -> Realnet {
        let blobs: Arc<dyn BlobStore> = match &config.storage {
            StorageConfig::Local { root } => Arc::new(LocalBlobStore::new(root.clone())),
            StorageConfig::S3 { bucket, endpoint } => {
                Arc::new(S3BlobStore::new(bucket, endpoint.as_deref()))
            }
        };
        let queue = std::sync::OnceLock::new();
        let dead_letters = std::sync::OnceLock::new();
        if let Some(url) = &config.queue_url {
            let sqs: Arc<dyn Queue> = Arc::new(SqsQueue::new(url));
            queue.set(sqs).ok();
            if let Some(dead) = &config.dead_letter_queue_url {
                let dead: Arc<dyn DeadLetters> = Arc::new(SqsDeadLetters::new(dead, url));
                dead_letters.set(dead).ok();
            }
        }
        Realnet {
            auth: AuthCaches::new(config.auth.cache_ttl, store.query_lag()),
            remote_extensions: RemoteExtensions::new(config.auth.cache_ttl),
            config,
            behaviours,
            extensions,
            types,
            store,
            blobs,
            queue,
            dead_letters,
            local: std::sync::OnceLock::new(),
            job_signer: OnceCell::new(),
        }
    }

    /// The queue jobs are sent to, if there is one.
    pub fn queue(&self) -> Option<&Arc<dyn Queue>> {
        self.queue.get()
    }

    /// Runs jobs in this process (`realnet serve`), unless an SQS queue is configured: returns
    /// the queue whose jobs the caller must run.
    pub fn use_local_queue(&self) -> Option<Arc<LocalQueue>> {
        let local = Arc::new(LocalQueue::default());
        let queue: Arc<dyn Queue> = local.clone();
        self.queue.set(queue).ok()?;
        let dead: Arc<dyn DeadLetters> = local.clone();
        self.dead_letters.set(dead).ok();
        self.local.set(local.clone()).ok();
        Some(local)
    }

    /// The in-process queue, if jobs run in this process.
    pub fn local_queue(&self) -> Option<&Arc<LocalQueue>> {
        self.local.get()
    }

    /// The jobs that failed for good, if this runner can see them.
    pub(crate) fn dead_letters(&self) -> Option<&Arc<dyn DeadLetters>> {
        self.dead_letters.get()
    }

    /// Whether `p` may do `wanted` on an item of `type_name` owned by `owner` under `rules`;
    /// `at` is the item (or for a new item, its parent), whose ancestors are looked up only
    /// if a rule on an item could apply.
    pub(crate) async fn may(
        &self,
        rules: &AccessRules,
        p: &Principal,
        wanted: Permission,
        type_name: &str,
        owner: Option<Uuid>,
        at: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let types = (&self.types, &self.behaviours);
        if rules.allows(p, wanted, types, type_name, owner, &[]) {
            return Ok(true);
        }
        match at {
            Some(id) if rules.needs_lineage(p, wanted) => {
                let mut lineage = self
                    .store
                    .ancestors(&p.org, id, self.config.max_depth)
                    .await?;
                lineage.push(id);
                Ok(rules.allows(p, wanted, types, type_name, owner, &lineage))
            }
            _ => Ok(false),
        }
    }
}
