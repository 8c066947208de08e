//! The per-process context every runner builds once (at cold start on Lambda) and shares:
//! configuration, the type registry and the store. Building it reads no files when the
//! compiled-in definitions are used and opens no network connection. It also sets up orgs
//! (`realnet init`, `realnet org create`): an org exists once it has its `Org` item, and gets
//! each seed item of the definitions once.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use mini_moka::sync::Cache;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::access::{AccessRule, AccessRules};
use crate::auth::{CachedPrincipal, Principal, identity, password};
use crate::blob::{BlobStore, LocalBlobStore, S3BlobStore};
use crate::config::{Config, ConfigError, DbConfig, StorageConfig};
use crate::item::behaviour::Behaviours;
use crate::item::ops::{self, ItemError, NewItem};
use crate::query::cursor::CursorCodec;
use crate::query::{ItemQuery, NameFilter, ParentFilter, Readable};
use crate::queue::{LocalQueue, Queue, SqsQueue};
use crate::store::{DynamoStore, ItemStore, PostgresStore, SqliteStore, StoreError};
use crate::types::{LoadErrors, SeedItem, TypeRegistry};

/// Why `name` cannot name an org, if it cannot.
pub fn check_org_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an org name: use 1 to 63 lowercase letters, digits and -, not starting with -"
        ))
    }
}

/// Why a runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Types(#[from] LoadErrors),
    #[error("{0}")]
    Store(#[from] StoreError),
}

pub struct Realnet {
    pub config: Config,
    pub types: TypeRegistry,
    /// What is special about each type, resolved for every loaded type.
    pub behaviours: Behaviours,
    pub store: Arc<dyn ItemStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Where jobs go: SQS with `REALNET_QUEUE_URL`, in process under `realnet serve`.
    queue: std::sync::OnceLock<Arc<dyn Queue>>,
    cursor: OnceCell<CursorCodec>,
    /// Signs and checks job envelopes; see [`crate::jobs::trust`].
    pub(crate) job_signer: OnceCell<crate::jobs::trust::JobSigner>,
    pub(crate) openapi: std::sync::OnceLock<String>,
    /// Principals by token hash (or authorizer identity).
    pub(crate) principals: Cache<String, Arc<CachedPrincipal>>,
    /// Access rules by org.
    rules: Cache<String, Arc<AccessRules>>,
    /// Orgs known to be set up (never those that are not, so a new org is seen at once).
    orgs: Cache<String, ()>,
}

impl std::fmt::Debug for Realnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realnet")
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

/// What setting up an org did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    pub created: usize,
    pub existing: usize,
    /// Seed items the org had that were deleted since, and are not made again.
    pub kept_deleted: usize,
    /// The first admin, if this run created it.
    pub admin: Option<NewAdmin>,
}

/// An org's first admin account.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAdmin {
    pub org: String,
    pub username: String,
    /// The password, if it was generated (shown once, never stored); `None` when it came from
    /// `REALNET_ADMIN_PASSWORD` or the caller.
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("org", &self.org)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The username of an org's first admin.
pub const FIRST_ADMIN: &str = "admin";

impl Realnet {
    /// The context of a Lambda function named `function`, from its environment, with JSON
    /// logs; a function that cannot start prints why (every definition error, say) to its log
    /// and exits.
    pub fn start_function(function: &str) -> Realnet {
        let started = Config::from_env()
            .map_err(StartError::from)
            .and_then(|config| {
                crate::telemetry::init(true, config.debug);
                Realnet::from_config(config)
            });
        started.unwrap_or_else(|e| {
            eprintln!("realnet {function} cannot start: {e}");
            std::process::exit(1);
        })
    }

    /// Loads the types (compiled in, or from `REALNET_INIT_DIR`) and sets up the configured
    /// store.
    pub fn from_config(config: Config) -> Result<Realnet, StartError> {
        let types = match &config.init_dir {
            Some(dir) => TypeRegistry::from_dir(dir)?,
            None => TypeRegistry::embedded()?,
        };
        let store: Arc<dyn ItemStore> = match &config.db {
            DbConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
            DbConfig::Postgres {
                config,
                pool_size,
                ca_file,
            } => Arc::new(PostgresStore::new(
                (**config).clone(),
                *pool_size,
                ca_file.as_deref(),
            )?),
            DbConfig::Dynamodb { table, page_reads } => Arc::new(
                DynamoStore::new(table)
                    .with_page_reads(*page_reads)
                    .with_types(&types),
            ),
        };
        Ok(Realnet::new(config, types, store))
    }

    pub fn new(config: Config, types: TypeRegistry, store: Arc<dyn ItemStore>) -> Realnet {
        let ttl = config
            .auth
            .cache_ttl
            .max(std::time::Duration::from_millis(1));
        let blobs: Arc<dyn BlobStore> = match &config.storage {
            StorageConfig::Local { root } => Arc::new(LocalBlobStore::new(root.clone())),
            StorageConfig::S3 { bucket, endpoint } => {
                Arc::new(S3BlobStore::new(bucket, endpoint.as_deref()))
            }
        };
        let queue = std::sync::OnceLock::new();
        if let Some(url) = &config.queue_url {
            let sqs: Arc<dyn Queue> = Arc::new(SqsQueue::new(url));
            queue.set(sqs).ok();
        }
        Realnet {
            config,
            behaviours: Behaviours::core(&types),
            types,
            store,
            blobs,
            queue,
            cursor: OnceCell::new(),
            job_signer: OnceCell::new(),
            openapi: std::sync::OnceLock::new(),
            principals: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
            rules: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(ttl)
                .build(),
            orgs: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The access rules of `org`: its `Acl` items, cached for `REALNET_AUTH_CACHE_TTL`.
    pub async fn access_rules(&self, org: &str) -> Result<Arc<AccessRules>, StoreError> {
        let cache = !self.config.auth.cache_ttl.is_zero();
        if cache && let Some(rules) = self.rules.get(&org.to_string()) {
            return Ok(rules);
        }
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = self.types.subtypes("Acl").to_vec();
        query.limit = crate::query::MAX_LIMIT;
        let mut rules = Vec::new();
        loop {
            let page = self.store.query(org, &query).await?;
            rules.extend(page.items.iter().filter_map(AccessRule::from_item));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let rules = Arc::new(AccessRules::new(rules));
        if cache {
            self.rules.insert(org.to_string(), rules.clone());
        }
        Ok(rules)
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
        self.queue.set(queue).ok().map(|()| local)
    }

    /// Forgets `org`'s cached rules after a change to them made in this container.
    pub(crate) fn forget_rules(&self, org: &str) {
        self.rules.invalidate(&org.to_string());
    }

    /// The cursor signer, keyed by a secret generated once per installation and kept in the
    /// store, so every process of a deployment accepts the others' cursors.
    pub async fn cursor_codec(&self) -> Result<&CursorCodec, StoreError> {
        self.cursor
            .get_or_try_init(|| async {
                let fresh: [u8; 32] = rand::random();
                let initial = base64::engine::general_purpose::STANDARD.encode(fresh);
                let key = self.store.setting("cursor_key", &initial).await?;
                Ok(CursorCodec::new(key.as_bytes()))
            })
            .await
    }

    /// Migrates the store and sets up the default org (see [`Realnet::init_org`]), with
    /// `REALNET_ADMIN_PASSWORD` as the first admin's password if it is set. Safe to run again.
    pub async fn init(&self) -> Result<InitReport, ItemError> {
        self.store.migrate().await?;
        let password = self
            .config
            .auth
            .admin_password
            .as_ref()
            .map(|s| s.0.clone());
        self.init_org(&self.config.default_org, password).await
    }

    /// Whether `org` has been set up (it has its `Org` item): every path that takes an org
    /// from its input refuses one that has not, so a misspelled org name never makes a tenant.
    pub async fn org_exists(&self, org: &str) -> Result<bool, StoreError> {
        let cache = !self.config.auth.cache_ttl.is_zero();
        if cache && self.orgs.contains_key(&org.to_string()) {
            return Ok(true);
        }
        if check_org_name(org).is_err() {
            return Ok(false);
        }
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = vec!["Org".to_string()];
        query.readable = Readable::All;
        query.limit = 1;
        let exists = crate::store::first_item(&*self.store, org, &query)
            .await?
            .is_some();
        if exists && cache {
            self.orgs.insert(org.to_string(), ());
        }
        Ok(exists)
    }

    /// Sets up `org`: its `Org` item, the seed items of the definitions (including the default
    /// access rules of `access.json`) and, if the org has no account yet, an admin account
    /// named `admin` with `password` or a generated one. Safe to run again: each seed item is
    /// created once per org (see [`SEEDED`]), so one an admin deleted stays deleted, and the
    /// seed items a newer definition adds are created the next time.
    pub async fn init_org(
        &self,
        org: &str,
        password: Option<String>,
    ) -> Result<InitReport, ItemError> {
        if let Err(m) = check_org_name(org) {
            return Err(crate::item::attributes::ValidationErrors::single("org", m).into());
        }
        let principal = Principal::org_admin(org);
        let mut report = InitReport {
            created: 0,
            existing: 0,
            kept_deleted: 0,
            admin: None,
        };
        let org_item = SeedItem {
            type_name: "Org".to_string(),
            name: org.to_string(),
            attributes: Map::new(),
            children: Vec::new(),
        };
        // The org's mark, not a seed (its record is thrown away): there whenever the org is.
        self.seed(
            &principal,
            &org_item,
            None,
            "",
            &mut BTreeSet::new(),
            &mut report,
        )
        .await?;
        let record = format!("{SEEDED}{org}");
        let stored = self.store.setting(&record, "[]").await?;
        let mut seeded: BTreeSet<String> = serde_json::from_str(&stored).map_err(|e| {
            StoreError::Backend(format!(
                "the setting {record:?} is not a list of seed keys: {e}"
            ))
        })?;
        let before = seeded.len();
        let mut outcome = Ok(());
        for seed in self.types.seeds() {
            outcome = self
                .seed(&principal, seed, None, "", &mut seeded, &mut report)
                .await;
            if outcome.is_err() {
                break;
            }
        }
        // What was created before a failure is recorded too.
        if seeded.len() != before {
            let list = serde_json::to_string(&seeded).expect("a set of strings serializes");
            self.store.put_setting(&record, &list).await?;
        }
        outcome?;
        let mut accounts =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        accounts.types = self.types.subtypes("Account").to_vec();
        accounts.limit = 1;
        accounts.readable = Readable::All;
        if crate::store::first_item(&*self.store, org, &accounts)
            .await?
            .is_none()
        {
            let (password, generated) = match password {
                Some(p) => (p, None),
                None => {
                    let p = password::generate();
                    (p.clone(), Some(p))
                }
            };
            let mut attributes = Map::new();
            attributes.insert("username".into(), Value::from(FIRST_ADMIN));
            attributes.insert("admin".into(), Value::Bool(true));
            attributes.insert(identity::PASSWORD.into(), Value::String(password));
            ops::create(
                self,
                &principal,
                NewItem {
                    type_name: "Account".to_string(),
                    name: FIRST_ADMIN.to_string(),
                    parent: None,
                    attributes,
                },
                None,
            )
            .await?;
            report.created += 1;
            report.admin = Some(NewAdmin {
                org: org.to_string(),
                username: FIRST_ADMIN.to_string(),
                generated_password: generated,
            });
        }
        Ok(report)
    }

    /// Creates `seed` under `parent` (whose seed key is `above`) unless it exists (same type,
    /// parent and name) or is in `seeded`, the keys of the seed items the org has had; then
    /// its children. Each seed created or found is added to `seeded`.
    async fn seed(
        &self,
        principal: &Principal,
        seed: &SeedItem,
        parent: Option<uuid::Uuid>,
        above: &str,
        seeded: &mut BTreeSet<String>,
        report: &mut InitReport,
    ) -> Result<(), ItemError> {
        let key = seed_key(above, seed);
        // Built by hand: a seed's name is matched exactly, even if it ends in `*`.
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = vec![seed.type_name.clone()];
        query.parent = Some(parent.map_or(ParentFilter::Root, ParentFilter::Id));
        query.name = Some(NameFilter::Exact(seed.name.clone()));
        query.limit = 1;
        let existing = crate::store::first_item(&*self.store, &principal.org, &query).await?;
        let id = match existing.as_ref() {
            Some(item) => {
                report.existing += 1;
                item.id
            }
            None if seeded.contains(&key) => {
                // Deleted since it was made: so are its children.
                report.kept_deleted += 1;
                return Ok(());
            }
            None => {
                // Seeds are the deployment's own definitions (and the org's `Org` item).
                let (item, _) = ops::create_by_server(
                    self,
                    principal,
                    NewItem {
                        type_name: seed.type_name.clone(),
                        name: seed.name.clone(),
                        parent,
                        attributes: seed.attributes.clone(),
                    },
                    None,
                )
                .await?;
                report.created += 1;
                item.id
            }
        };
        seeded.insert(key.clone());
        for child in &seed.children {
            Box::pin(self.seed(principal, child, Some(id), &key, seeded, report)).await?;
        }
        Ok(())
    }
}

/// The prefix of the store setting that lists, for an org, the key of every seed item the
/// org has had (see [`seed_key`]): `seeded:<org>`.
pub const SEEDED: &str = "seeded:";

/// A seed item's key: the types and names from the top seed down to it, as
/// `Type:name/Type:name`, with `%` and `/` in names escaped.
fn seed_key(above: &str, seed: &SeedItem) -> String {
    let name = seed.name.replace('%', "%25").replace('/', "%2F");
    let own = format!("{}:{name}", seed.type_name);
    if above.is_empty() {
        own
    } else {
        format!("{above}/{own}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(type_name: &str, name: &str) -> SeedItem {
        SeedItem {
            type_name: type_name.into(),
            name: name.into(),
            attributes: Map::new(),
            children: Vec::new(),
        }
    }

    #[test]
    fn seed_keys_name_the_path_down_to_a_seed_unambiguously() {
        let top = seed_key("", &seed("Folder", "Apps"));
        assert_eq!(top, "Folder:Apps");
        assert_eq!(
            seed_key(&top, &seed("Folder", "a/b%")),
            "Folder:Apps/Folder:a%2Fb%25"
        );
        assert_ne!(
            seed_key("", &seed("Folder", "a/Folder:b")),
            seed_key(&seed_key("", &seed("Folder", "a")), &seed("Folder", "b"))
        );
    }
}
