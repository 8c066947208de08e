//! The embedded default store: one SQLite file (bundled SQLite, WAL journal). SQLite calls
//! block, so every call runs on tokio's blocking pool. Item writes go to one writer that
//! commits them in groups ([`group_commit`]); the other writes share its connection, behind a
//! mutex, which serialises writers as SQLite does anyway. Reads of items and tokens run on
//! their own read-only connections, which WAL lets read while a group commits.

mod group_commit;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OptionalExtension, ToSql, params_from_iter};
use uuid::Uuid;

use super::sql::{self, Dialect, Param};
use super::{
    Attempt, IdentityLink, ItemStore, JobClaim, Page, Purged, StoreError, StoredToken, TypeCount,
    Write,
};
use crate::item::Item;
use crate::query::ItemQuery;
use crate::types::value::format_datetime;

const SCHEMA: &[&str] = &[
    // 1: items and settings.
    "CREATE TABLE items (
        id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT REFERENCES items(id),
        owner TEXT,
        attributes TEXT NOT NULL,
        search TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX items_org_created ON items (org, created_at, id);
    CREATE INDEX items_org_type_created ON items (org, type, created_at, id);
    CREATE INDEX items_org_type_updated ON items (org, type, updated_at, id);
    CREATE INDEX items_org_type_name ON items (org, type, name, id);
    CREATE INDEX items_org_parent_created ON items (org, parent, created_at, id);
    CREATE TABLE realnet_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: identity: unique usernames, token hashes, password hashes, failed logins.
    "CREATE UNIQUE INDEX items_account_username
        ON items (org, json_extract(attributes, '$.username')) WHERE type = 'Account';
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        account TEXT NOT NULL,
        api_key TEXT,
        expires TEXT
    );
    CREATE INDEX tokens_account ON tokens (org, account);
    CREATE INDEX tokens_api_key ON tokens (org, api_key);
    CREATE INDEX tokens_expires ON tokens (expires);
    CREATE TABLE passwords (
        org TEXT NOT NULL,
        account TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (org, account)
    );
    CREATE TABLE login_failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, since TEXT NOT NULL);",
    // 3: job runs, for exactly-once effects.
    "CREATE TABLE job_runs (
        org TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        lease_until TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (org, key)
    );
    CREATE INDEX job_runs_expires ON job_runs (expires_at);",
    // 4: the orgs set up (their Org items), for the scheduler.
    "CREATE INDEX items_orgs ON items (org) WHERE type = 'Org';",
    // 5: identity-provider subjects linked to accounts, unique in the installation.
    "CREATE TABLE identity_links (
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        org TEXT NOT NULL,
        account TEXT NOT NULL,
        PRIMARY KEY (issuer, subject)
    );",
    // 6: extension names, unique in an org, as usernames are.
    "CREATE UNIQUE INDEX items_extension_name ON items (org, name) WHERE type = 'Extension';",
    // 7: children indexed by their parent first: deleting an item makes the foreign key look
    // for its children by `parent` alone, which the index led by `org` could not serve, so
    // every delete read every item. A page of children (org and parent) is served as before.
    // Written to run again harmlessly.
    "DROP INDEX IF EXISTS items_org_parent_created;
    CREATE INDEX IF NOT EXISTS items_parent_org_created ON items (parent, org, created_at, id);",
];

/// How many read-only connections serve reads beside the writer's.
const READERS: usize = 4;

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    writer: group_commit::GroupCommit,
    readers: Arc<Readers>,
}

/// Read-only connections, each used by one read at a time.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        // `temp_store = MEMORY` keeps the sub-journal (the pages a savepoint or a statement
        // would roll back, which only a rollback inside the open transaction reads) in memory:
        // with a savepoint a request, a group's sub-journal passes SQLite's 64 KiB spill
        // threshold and each group otherwise created, wrote and deleted a file in /var/tmp.
        // Durability is the WAL's and is unchanged.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;",
        )
        .map_err(backend)?;
        let conn = Arc::new(Mutex::new(conn));
        {
            let mut c = conn
                .lock()
                .map_err(|_| StoreError::Backend("a previous SQLite call panicked".into()))?;
            migrate(&mut c)?;
        }
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
            reader
                .execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
                .map_err(backend)?;
            conns.push(Mutex::new(reader));
        }
        Ok(SqliteStore {
            writer: group_commit::GroupCommit::start(conn.clone())?,
            conn,
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` on a read-only connection: the first one free, or else the next in turn.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conns = &readers.conns;
            let free = conns.iter().find_map(|c| c.try_lock().ok());
            let conn = match free {
                Some(c) => c,
                None => {
                    let i = readers.next.fetch_add(1, Ordering::Relaxed) % conns.len();
                    conns[i].lock().map_err(|_| {
                        StoreError::Backend("a previous SQLite call panicked".into())
                    })?
                }
            };
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite task failed: {e}")))?
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Backend("a previous SQLite call panicked".into()))?;
        f(&mut conn)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("SQLite task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS realnet_migrations (version INTEGER PRIMARY KEY)")
        .map_err(backend)?;
    let done: i64 = tx
        .query_row("SELECT COUNT(*) FROM realnet_migrations", [], |r| r.get(0))
        .map_err(backend)?;
    for (i, step) in SCHEMA.iter().enumerate().skip(done as usize) {
        if i + 1 == sql::UNIQUE_EXTENSION_NAMES {
            let mut found = tx
                .prepare(sql::DUPLICATE_EXTENSION_NAMES)
                .map_err(backend)?;
            let found = found
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            super::duplicate_extension_names(&found)?;
        }
        tx.execute_batch(step).map_err(backend)?;
        tx.execute(
            "INSERT INTO realnet_migrations (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(match self {
            Param::Text(s) => SqlValue::Text(s.clone()),
            Param::Int(n) => SqlValue::Integer(*n),
            Param::Float(n) => SqlValue::Real(*n),
            Param::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Param::Time(t) => SqlValue::Text(format_datetime(*t)),
            Param::OptTime(t) => t.map_or(SqlValue::Null, |t| SqlValue::Text(format_datetime(t))),
            Param::Uuid(u) => SqlValue::Text(u.to_string()),
            Param::OptUuid(u) => u.map_or(SqlValue::Null, |u| SqlValue::Text(u.to_string())),
            Param::Json(v) => SqlValue::Text(v.to_string()),
        }))
    }
}

fn parse_uuid(s: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_time(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let attributes: String = row.get(6)?;
    Ok(Item {
        id: parse_uuid(row.get(0)?)?,
        org: row.get(1)?,
        type_name: row.get(2)?,
        name: row.get(3)?,
        parent: row
            .get::<_, Option<String>>(4)?
            .map(parse_uuid)
            .transpose()?,
        owner: row
            .get::<_, Option<String>>(5)?
            .map(parse_uuid)
            .transpose()?,
        attributes: serde_json::from_str(&attributes).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
        version: row.get(7)?,
        created_at: parse_time(row.get(8)?)?,
        updated_at: parse_time(row.get(9)?)?,
    })
}

fn get(conn: &Connection, org: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
    conn.prepare_cached(&sql::statements(Dialect::Sqlite).get)
        .map_err(backend)?
        .query_row(rusqlite::params![org, id.to_string()], row_to_item)
        .optional()
        .map_err(backend)
}

/// A parent must be an item of the same org (the foreign key alone accepts any org's).
fn parent_in_org(tx: &Connection, org: &str, parent: Option<Uuid>) -> Result<(), StoreError> {
    let Some(parent) = parent else {
        return Ok(());
    };
    tx.prepare_cached(&sql::statements(Dialect::Sqlite).version)
        .map_err(backend)?
        .query_row(rusqlite::params![org, parent.to_string()], |_| Ok(()))
        .optional()
        .map_err(backend)?
        .ok_or(StoreError::NotFound(parent))
}

/// Applies `write` with at most one statement that changes anything, run after every check
/// that can refuse it: group commit relies on this to apply a request of one write without a
/// savepoint (see `group_commit`).
fn apply_one(tx: &Connection, org: &str, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Create(item) => {
            parent_in_org(tx, org, item.parent)?;
            let params = sql::insert_params(org, item);
            tx.prepare_cached(&sql::statements(Dialect::Sqlite).insert)
                .map_err(backend)?
                .execute(params_from_iter(params.iter()))
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                    {
                        StoreError::Duplicate(item.id)
                    }
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                    {
                        StoreError::NotFound(item.parent.unwrap_or(item.id))
                    }
                    e => unique_or_backend(e, item),
                })?;
        }
        Write::Update {
            item,
            expected_version,
        } => {
            parent_in_org(tx, org, item.parent)?;
            let params = sql::update_params(org, item, *expected_version);
            let n = tx
                .prepare_cached(&sql::statements(Dialect::Sqlite).update)
                .map_err(backend)?
                .execute(params_from_iter(params.iter()))
                .map_err(|e| unique_or_backend(e, item))?;
            if n == 0 {
                return Err(missing_or_stale(tx, org, item.id, *expected_version));
            }
        }
        Write::Delete {
            id,
            expected_version,
        } => {
            let key = rusqlite::params![org, id.to_string()];
            let has_children = tx
                .prepare_cached(&sql::statements(Dialect::Sqlite).has_children)
                .map_err(backend)?
                .exists(key)
                .map_err(backend)?;
            if has_children {
                return Err(StoreError::HasChildren(*id));
            }
            let statement = &sql::statements(Dialect::Sqlite).delete_one;
            let n = tx
                .prepare_cached(statement)
                .map_err(backend)?
                .execute(rusqlite::params![org, id.to_string(), expected_version])
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_stale(tx, org, *id, *expected_version));
            }
        }
        Write::PutToken {
            hash,
            account,
            api_key,
            expires,
        } => execute(
            tx,
            &st().put_token,
            &[
                Param::Text(hash.clone()),
                Param::Text(org.to_string()),
                Param::Uuid(*account),
                Param::OptUuid(*api_key),
                Param::OptTime(*expires),
            ],
        )?,
        Write::DeleteToken { hash } => execute(
            tx,
            &st().delete_token,
            &[Param::Text(org.to_string()), Param::Text(hash.clone())],
        )?,
        Write::DeleteTokensOf { account, api_keys } => execute(
            tx,
            if *api_keys {
                &st().delete_all_tokens
            } else {
                &st().delete_login_tokens
            },
            &[Param::Text(org.to_string()), Param::Uuid(*account)],
        )?,
        Write::DeleteApiKeyToken { api_key } => execute(
            tx,
            &st().delete_api_key_token,
            &[Param::Text(org.to_string()), Param::Uuid(*api_key)],
        )?,
        Write::FinishJob { key, outcome } => execute(
            tx,
            &st().finish_job,
            &[
                Param::Json(outcome.clone()),
                Param::Text(org.to_string()),
                Param::Text(key.clone()),
            ],
        )?,
        Write::RecordJob {
            key,
            outcome,
            now,
            expires,
        } => {
            let params = sql::record_job_params(org, key, outcome, *now, *expires);
            let changed = tx
                .prepare_cached(&st().record_job)
                .map_err(backend)?
                .execute(params_from_iter(params.iter()))
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::JobRecorded(key.clone()));
            }
        }
        Write::LinkIdentity {
            issuer,
            subject,
            account,
        } => {
            let params = link_params(issuer, subject, org, *account);
            let changed = tx
                .prepare_cached(&st().link_identity)
                .map_err(backend)?
                .execute(params_from_iter(params.iter()))
                .map_err(backend)?;
            if changed == 0 {
                return Err(sql::identity_taken(issuer, subject));
            }
        }
        Write::UnlinkIdentity {
            issuer,
            subject,
            account,
        } => execute(
            tx,
            &st().unlink_identity,
            &link_params(issuer, subject, org, *account),
        )?,
        Write::SetPassword { account, hash } => {
            let key = [Param::Text(org.to_string()), Param::Uuid(*account)];
            match hash {
                Some(h) => execute(
                    tx,
                    &st().set_password,
                    &[key[0].clone(), key[1].clone(), Param::Text(h.clone())],
                )?,
                None => execute(tx, &st().delete_password, &key)?,
            }
        }
        Write::SetSetting { key, value } => {
            let key = Param::Text(key.clone());
            match value {
                Some(v) => execute(tx, PUT_SETTING, &[key, Param::Text(v.clone())])?,
                None => execute(tx, DELETE_SETTING, &[key])?,
            }
        }
    }
    Ok(())
}

fn link_params(issuer: &str, subject: &str, org: &str, account: Uuid) -> [Param; 4] {
    [
        Param::Text(issuer.to_string()),
        Param::Text(subject.to_string()),
        Param::Text(org.to_string()),
        Param::Uuid(account),
    ]
}

const PUT_SETTING: &str = "INSERT INTO realnet_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const DELETE_SETTING: &str = "DELETE FROM realnet_settings WHERE key = ?1";

fn st() -> &'static sql::Statements {
    sql::statements(Dialect::Sqlite)
}

fn execute(conn: &Connection, statement: &str, params: &[Param]) -> Result<(), StoreError> {
    conn.prepare_cached(statement)
        .map_err(backend)?
        .execute(params_from_iter(params.iter()))
        .map_err(backend)?;
    Ok(())
}

/// A unique-index violation other than the primary key is a username or an extension name
/// already taken (an item is subject to one of those indexes at most).
fn unique_or_backend(e: rusqlite::Error, item: &Item) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            sql::name_taken(item)
        }
        e => backend(e),
    }
}

fn missing_or_stale(conn: &Connection, org: &str, id: Uuid, expected: i64) -> StoreError {
    let version = conn
        .query_row(
            &sql::statements(Dialect::Sqlite).version,
            rusqlite::params![org, id.to_string()],
            |r| r.get::<_, i64>(0),
        )
        .optional();
    match version {
        Ok(Some(actual)) => StoreError::VersionConflict {
            id,
            expected,
            actual,
        },
        Ok(None) => StoreError::NotFound(id),
        Err(e) => backend(e),
    }
}

#[async_trait]
impl ItemStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.run(migrate).await
    }

    async fn get(&self, org: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        let org = org.to_string();
        self.read(move |conn| get(conn, &org, id)).await
    }

    async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError> {
        self.writer.apply(org, writes).await
    }

    async fn query(&self, org: &str, query: &ItemQuery) -> Result<Page, StoreError> {
        let sql = sql::select_page(Dialect::Sqlite, org, query);
        let query = query.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql.text).map_err(backend)?;
            let items = stmt
                .query_map(params_from_iter(sql.params.iter()), row_to_item)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Page::from_rows(&query, items))
        })
        .await
    }

    async fn ancestors(&self, org: &str, id: Uuid, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let org = org.to_string();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&sql::statements(Dialect::Sqlite).ancestors)
                .map_err(backend)?;
            stmt.query_map(rusqlite::params![org, id.to_string(), max], |r| {
                parse_uuid(r.get(0)?)
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
        })
        .await
    }

    async fn levels_below(&self, org: &str, id: Uuid, max: usize) -> Result<usize, StoreError> {
        let org = org.to_string();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&sql::statements(Dialect::Sqlite).levels_below)
                .map_err(backend)?;
            let levels: i64 = stmt
                .query_row(rusqlite::params![org, id.to_string(), org, max], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            Ok(usize::try_from(levels).unwrap_or(0))
        })
        .await
    }

    async fn counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare(sql::COUNTS).map_err(backend)?;
            stmt.query_map([], |r| {
                Ok(TypeCount {
                    org: r.get(0)?,
                    type_name: r.get(1)?,
                    count: r.get(2)?,
                })
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
        })
        .await
    }

    async fn setting(&self, key: &str, initial: &str) -> Result<String, StoreError> {
        let (key, initial) = (key.to_string(), initial.to_string());
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO realnet_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                rusqlite::params![key, initial],
            )
            .map_err(backend)?;
            conn.query_row(
                "SELECT value FROM realnet_settings WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(move |conn| {
            conn.execute(PUT_SETTING, rusqlite::params![key, value])
                .map(drop)
                .map_err(backend)
        })
        .await
    }

    async fn token(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        let hash = hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&st().token)
                .map_err(backend)?
                .query_row([hash], |r| {
                    Ok(StoredToken {
                        org: r.get(0)?,
                        account: parse_uuid(r.get(1)?)?,
                        api_key: r.get::<_, Option<String>>(2)?.map(parse_uuid).transpose()?,
                        expires: r.get::<_, Option<String>>(3)?.map(parse_time).transpose()?,
                    })
                })
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<IdentityLink>, StoreError> {
        let params = [
            Param::Text(issuer.to_string()),
            Param::Text(subject.to_string()),
        ];
        self.run(move |conn| {
            conn.prepare_cached(&st().identity_link)
                .map_err(backend)?
                .query_row(params_from_iter(params.iter()), |r| {
                    Ok(IdentityLink {
                        org: r.get(0)?,
                        account: parse_uuid(r.get(1)?)?,
                    })
                })
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn password(&self, org: &str, account: Uuid) -> Result<Option<String>, StoreError> {
        let org = org.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&st().password)
                .map_err(backend)?
                .query_row(rusqlite::params![org, account.to_string()], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn count_attempt(
        &self,
        key: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let params = sql::count_attempt_params(key, limit, now, window_start);
        let key = [Param::Text(key.to_string())];
        self.run(move |conn| {
            let since_of = |r: &rusqlite::Row<'_>| parse_time(r.get(0)?);
            let counted = conn
                .prepare_cached(&st().count_attempt)
                .map_err(backend)?
                .query_row(params_from_iter(params.iter()), since_of)
                .optional()
                .map_err(backend)?;
            if let Some(since) = counted {
                return Ok(Attempt::Counted { since });
            }
            let since = conn
                .prepare_cached(&st().attempt_window)
                .map_err(backend)?
                .query_row(params_from_iter(key.iter()), since_of)
                .map_err(backend)?;
            Ok(Attempt::Refused { since })
        })
        .await
    }

    async fn uncount_attempt(&self, key: &str, since: DateTime<Utc>) -> Result<(), StoreError> {
        let params = [Param::Text(key.to_string()), Param::Time(since)];
        self.run(move |conn| execute(conn, &st().uncount_attempt, &params))
            .await
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        let params = [Param::Text(key.to_string())];
        self.run(move |conn| execute(conn, &st().clear_attempts, &params))
            .await
    }

    async fn begin_job(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<JobClaim, StoreError> {
        let params = [
            Param::Text(org.to_string()),
            Param::Text(key.to_string()),
            Param::Time(lease_until),
            Param::Time(expires),
            Param::Time(now),
            Param::Time(now),
        ];
        let id = [Param::Text(org.to_string()), Param::Text(key.to_string())];
        self.run(move |conn| {
            let started = conn
                .prepare_cached(&st().begin_job)
                .map_err(backend)?
                .query_row(params_from_iter(params.iter()), |_| Ok(()))
                .optional()
                .map_err(backend)?;
            if started.is_some() {
                return Ok(JobClaim::Started);
            }
            let (state, outcome): (String, Option<String>) = conn
                .prepare_cached(&st().job_state)
                .map_err(backend)?
                .query_row(params_from_iter(id.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            Ok(match (state.as_str(), outcome) {
                ("done", Some(o)) => JobClaim::Done(
                    serde_json::from_str(&o).map_err(|e| StoreError::Backend(e.to_string()))?,
                ),
                _ => JobClaim::Busy,
            })
        })
        .await
    }

    async fn abandon_job(&self, org: &str, key: &str) -> Result<(), StoreError> {
        let params = [Param::Text(org.to_string()), Param::Text(key.to_string())];
        self.run(move |conn| execute(conn, &st().abandon_job, &params))
            .await
    }

    async fn job_outcome(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let params = [
            Param::Text(org.to_string()),
            Param::Text(key.to_string()),
            Param::Time(now),
        ];
        self.run(move |conn| {
            let outcome: Option<Option<String>> = conn
                .prepare_cached(&st().job_outcome)
                .map_err(backend)?
                .query_row(params_from_iter(params.iter()), |r| r.get(0))
                .optional()
                .map_err(backend)?;
            outcome
                .flatten()
                .map(|o| serde_json::from_str(&o).map_err(|e| StoreError::Backend(e.to_string())))
                .transpose()
        })
        .await
    }

    async fn orgs(&self) -> Result<Vec<String>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(sql::ORGS).map_err(backend)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError> {
        self.run(move |conn| {
            let delete = |statement: &str, before: DateTime<Utc>| {
                conn.prepare_cached(statement)
                    .map_err(backend)?
                    .execute(params_from_iter([Param::Time(before)].iter()))
                    .map(|n| n as u64)
                    .map_err(backend)
            };
            Ok(Some(Purged {
                tokens: delete(&st().purge_tokens, now)?,
                job_records: delete(&st().purge_job_runs, now)?,
                login_failures: delete(&st().purge_failures, failures_before)?,
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::query::Readable;
    use crate::types::TypeRegistry;

    /// Deleting an item reads its row and looks for its children by index: the foreign key's
    /// check of children (`WHERE parent = ?`) included, no step of the delete scans the table,
    /// however many items the installation holds.
    #[test]
    fn a_delete_scans_no_table() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .expect("foreign keys");
        migrate(&mut conn).expect("schema");
        // Items of two orgs, written as the store writes them; a child under the first.
        let insert = |org: &str, parent: Option<Uuid>| {
            let item = Item {
                org: org.into(),
                parent,
                ..Item::sample("Company", "x", Default::default())
            };
            apply_one(&conn, org, &Write::Create(item.clone())).expect("insert");
            item.id.to_string()
        };
        let root = insert("acme", None);
        for i in 0..200 {
            insert(if i % 2 == 0 { "acme" } else { "other" }, None);
        }
        let child = insert("acme", Some(root.parse().expect("an id")));
        for id in [&child, &root] {
            let mut delete = conn
                .prepare(&sql::statements(Dialect::Sqlite).delete_one)
                .expect("the delete prepares");
            let deleted = delete
                .execute(rusqlite::params!["acme", id, 1])
                .expect("the delete runs");
            assert_eq!(deleted, 1);
            assert_eq!(
                delete.get_status(rusqlite::StatementStatus::FullscanStep),
                0,
                "deleting {id} scanned the table"
            );
        }
    }

    /// Every shape of page query is served by an index: SQLite neither reads the whole table
    /// nor builds a temporary index for it, whatever the org holds.
    #[test]
    fn every_page_query_is_served_by_an_index() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        migrate(&mut conn).expect("schema");
        let registry = TypeRegistry::with_crm();
        let parent = Uuid::now_v7().to_string();
        let shapes: &[&[(&str, &str)]] = &[
            &[],
            &[("type", "Company")],
            &[("type", "Company"), ("sort", "name")],
            &[("type", "Company"), ("sort", "-updated")],
            &[("type", "Company"), ("name", "Acme*")],
            &[("type", "Contact"), ("attr.email", "a@example.com")],
            &[("type", "Company"), ("q", "acme")],
            &[("parent", &parent)],
            &[("parent", "root")],
        ];
        let readables = [
            Readable::All,
            Readable::Only {
                types: vec!["Company".into()],
                owner: Some(Uuid::now_v7()),
                owned_types: vec!["Contact".into()],
                subtrees: vec![Uuid::now_v7(), Uuid::now_v7()],
            },
        ];
        for shape in shapes {
            let params: Vec<(String, String)> = shape
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut query = ItemQuery::parse(&registry, &params, None).expect("valid query");
            for readable in &readables {
                query.readable = readable.clone();
                let sql = sql::select_page(Dialect::Sqlite, "default", &query);
                let mut plan = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
                    .expect("the query prepares");
                let steps: Vec<String> = plan
                    .query_map(params_from_iter(sql.params.iter()), |r| r.get(3))
                    .expect("the plan runs")
                    .collect::<Result<_, _>>()
                    .expect("plan rows");
                for step in &steps {
                    assert!(
                        !step.contains("AUTOMATIC") && !step.starts_with("SCAN items"),
                        "{shape:?} with {readable:?}: {step} in {steps:?}\n{}",
                        sql.text
                    );
                }
            }
        }
    }
}
