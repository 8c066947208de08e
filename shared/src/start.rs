//! How a runner starts: configuration read and checked, the type definitions loaded, the
//! behaviour of each core type registered (the one place: [`core_behaviours`]) and the
//! configured store opened, into the [`Realnet`] core.

use std::sync::Arc;

use crate::auth::identity::{AccountItems, AclItems, ApiKeyItems, GroupItems, OrgItems};
use crate::blob::file_items::FileItems;
use crate::config::{Config, ConfigError, DbConfig};
use crate::context::Realnet;
use crate::item::behaviour::{Behaviours, TypeBehaviour};
use crate::jobs::job_items::JobItems;
use crate::schedule::ScheduleItems;
use crate::store::{DynamoStore, ItemStore, PostgresStore, SqliteStore, StoreError};
use crate::types::{LoadErrors, TypeRegistry};

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

/// The behaviours Realnet itself gives its core types.
pub fn core_behaviours(types: &TypeRegistry) -> Behaviours {
    Behaviours::new(types, core_registrations())
}

fn core_registrations() -> Vec<(&'static str, Arc<dyn TypeBehaviour>)> {
    vec![
        ("Org", Arc::new(OrgItems)),
        ("Account", Arc::new(AccountItems)),
        ("Group", Arc::new(GroupItems)),
        ("ApiKey", Arc::new(ApiKeyItems)),
        ("Acl", Arc::new(AclItems)),
        ("File", Arc::new(FileItems)),
        ("Job", Arc::new(JobItems)),
        ("Schedule", Arc::new(ScheduleItems)),
    ]
}

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
            DbConfig::Dynamodb { table } => Arc::new(DynamoStore::new(table)),
        };
        Ok(Realnet::new(config, types, store))
    }

    /// The core over `types` and `store`, with the core behaviours.
    pub fn new(config: Config, types: TypeRegistry, store: Arc<dyn ItemStore>) -> Realnet {
        let behaviours = core_behaviours(&types);
        Realnet::assemble(config, types, behaviours, store)
    }
}
