//! How a runner starts: configuration read and checked, the linked extensions checked, the
//! type definitions loaded (with the files the extensions ship), the behaviour of each core
//! type registered (the one place: [`core_behaviours`]) beside the extensions' own, and the
//! configured store opened, into the [`Realnet`] core.

use std::sync::Arc;

use crate::auth::identity::{AccountItems, AclItems, ApiKeyItems, GroupItems, OrgItems};
use crate::blob::file_items::FileItems;
use crate::config::{Config, ConfigError, DbConfig};
use crate::context::Realnet;
use crate::extensions::remote::ExtensionItems;
use crate::extensions::source::BoundItems;
use crate::extensions::{Extension, Extensions, ExtensionsError};
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
    #[error("{0}")]
    Extensions(#[from] ExtensionsError),
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
        ("Extension", Arc::new(ExtensionItems)),
    ]
}

impl Realnet {
    /// The context of a Lambda function named `function`, from its environment, with JSON
    /// logs and the `linked` extensions; a function that cannot start prints why (every
    /// definition error, say) to its log and exits.
    pub fn start_function(function: &str, linked: Vec<Extension>) -> Realnet {
        let started = Config::from_env()
            .map_err(StartError::from)
            .and_then(|config| {
                crate::telemetry::init(true, config.debug);
                Realnet::from_config(config, linked)
            });
        started.unwrap_or_else(|e| {
            eprintln!("realnet {function} cannot start: {e}");
            std::process::exit(1);
        })
    }

    /// Loads the types (compiled in, or from `REALNET_INIT_DIR`, with those the `linked`
    /// extensions ship) and sets up the configured store.
    pub fn from_config(config: Config, linked: Vec<Extension>) -> Result<Realnet, StartError> {
        let extensions = Extensions::new(linked)?;
        let types = TypeRegistry::load(config.init_dir.as_deref(), &extensions.type_files())?;
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
        Realnet::build(config, types, extensions, store)
    }

    /// The core over `types` (loaded with the extensions' files) and `store`, with the core
    /// behaviours and the extensions' own. Refuses a module-bound type that is missing or
    /// whose `module` does not name the extension serving it.
    pub fn build(
        config: Config,
        types: TypeRegistry,
        extensions: Extensions,
        store: Arc<dyn ItemStore>,
    ) -> Result<Realnet, StartError> {
        for e in extensions.linked() {
            for t in e.bound_types() {
                let module = types
                    .get(t)
                    .and_then(|d| d.attributes.get("module"))
                    .and_then(serde_json::Value::as_str);
                if module != Some(e.name) {
                    return Err(ExtensionsError::new(format!(
                        "extension {:?} serves the items of {t:?}, which must be a type whose \"module\" attribute is {:?}",
                        e.name, e.name
                    ))
                    .into());
                }
            }
        }
        let mut registered = core_registrations();
        registered.extend(extensions.behaviours());
        for e in extensions.linked() {
            for t in e.bound_types() {
                registered.push((t, Arc::new(BoundItems)));
            }
        }
        let behaviours = Behaviours::new(&types, registered);
        Ok(Realnet::assemble(
            config, types, behaviours, extensions, store,
        ))
    }
}
