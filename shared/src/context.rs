//! The per-process context every runner builds once (at cold start on Lambda) and shares:
//! configuration, the type registry and the store. Building it reads no files when the
//! compiled-in definitions are used and opens no network connection.

use std::sync::Arc;

use base64::Engine;
use tokio::sync::OnceCell;

use crate::auth::Principal;
use crate::config::{Config, ConfigError, DbConfig};
use crate::item::ops::{self, ItemError, NewItem};
use crate::query::cursor::CursorCodec;
use crate::query::{ItemQuery, NameFilter, ParentFilter};
use crate::store::{ItemStore, PostgresStore, SqliteStore, StoreError};
use crate::types::{LoadErrors, SeedItem, TypeRegistry};

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
    pub store: Arc<dyn ItemStore>,
    cursor: OnceCell<CursorCodec>,
    pub(crate) openapi: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Realnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realnet")
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

/// What `init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitReport {
    pub created: usize,
    pub existing: usize,
}

impl Realnet {
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
        };
        Ok(Realnet::new(config, types, store))
    }

    pub fn new(config: Config, types: TypeRegistry, store: Arc<dyn ItemStore>) -> Realnet {
        Realnet {
            config,
            types,
            store,
            cursor: OnceCell::new(),
            openapi: std::sync::OnceLock::new(),
        }
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

    /// Migrates the store and creates the seed items of the definitions in the default org,
    /// skipping those that exist (same type, parent and name). Safe to run again.
    pub async fn init(&self) -> Result<InitReport, ItemError> {
        self.store.migrate().await?;
        let principal = Principal::org_admin(&self.config.default_org);
        let mut report = InitReport {
            created: 0,
            existing: 0,
        };
        for seed in self.types.seeds() {
            self.seed(&principal, seed, None, &mut report).await?;
        }
        Ok(report)
    }

    async fn seed(
        &self,
        principal: &Principal,
        seed: &SeedItem,
        parent: Option<uuid::Uuid>,
        report: &mut InitReport,
    ) -> Result<(), ItemError> {
        // Built by hand: a seed's name is matched exactly, even if it ends in `*`.
        let mut query =
            ItemQuery::parse(&self.types, &[], None).expect("an empty query always parses");
        query.types = vec![seed.type_name.clone()];
        query.parent = Some(parent.map_or(ParentFilter::Root, ParentFilter::Id));
        query.name = Some(NameFilter::Exact(seed.name.clone()));
        query.limit = 1;
        let existing = self.store.query(&principal.org, &query).await?;
        let id = match existing.items.first() {
            Some(item) => {
                report.existing += 1;
                item.id
            }
            None => {
                let item = ops::create(
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
        for child in &seed.children {
            Box::pin(self.seed(principal, child, Some(id), report)).await?;
        }
        Ok(())
    }
}
