//! The PostgreSQL store: `tokio-postgres` behind a `deadpool` pool, attributes in JSONB with a
//! GIN index for equality filters, keyset pagination over composite indexes. Connections are
//! opened on first use and the schema is migrated then, once per process, under an advisory
//! lock so that many cold-starting functions can race safely.
//!
//! Connections use TLS (rustls) as the connection string's `sslmode` says: `prefer` (the
//! default) when the server offers it, `require` always, `disable` never. Server certificates
//! are always verified, against the Mozilla roots and `REALNET_DB_CA_FILE` (for a private CA
//! such as Amazon RDS's).

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::OnceCell;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::sql::{self, Dialect, Param};
use super::{
    Attempt, IdentityLink, ItemStore, JobClaim, Page, Purged, StoreError, StoredToken, TypeCount,
    Write,
};
use crate::item::Item;
use crate::query::ItemQuery;

/// Arbitrary, fixed: the advisory lock migrations hold.
const MIGRATION_LOCK: i64 = 0x0072_6561_6c6e_6574;

const SCHEMA: &[&str] = &[
    // 1: items and settings.
    r#"CREATE TABLE items (
        id uuid PRIMARY KEY,
        org text NOT NULL,
        type text NOT NULL,
        name text COLLATE "C" NOT NULL,
        parent uuid REFERENCES items(id),
        owner uuid,
        attributes jsonb NOT NULL,
        search text NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX items_org_created ON items (org, created_at, id);
    CREATE INDEX items_org_type_created ON items (org, type, created_at, id);
    CREATE INDEX items_org_type_updated ON items (org, type, updated_at, id);
    CREATE INDEX items_org_type_name ON items (org, type, name, id);
    CREATE INDEX items_org_parent_created ON items (org, parent, created_at, id);
    CREATE INDEX items_attributes ON items USING gin (attributes jsonb_path_ops);
    CREATE TABLE realnet_settings (key text PRIMARY KEY, value text NOT NULL);"#,
    // 2: identity: unique usernames, token hashes, password hashes, failed logins.
    r#"CREATE UNIQUE INDEX items_account_username
        ON items (org, (attributes->>'username')) WHERE type = 'Account';
    CREATE TABLE tokens (
        hash text PRIMARY KEY,
        org text NOT NULL,
        account uuid NOT NULL,
        api_key uuid,
        expires timestamptz
    );
    CREATE INDEX tokens_account ON tokens (org, account);
    CREATE INDEX tokens_api_key ON tokens (org, api_key);
    CREATE INDEX tokens_expires ON tokens (expires);
    CREATE TABLE passwords (
        org text NOT NULL,
        account uuid NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (org, account)
    );
    CREATE TABLE login_failures (key text PRIMARY KEY, count bigint NOT NULL, since timestamptz NOT NULL);"#,
    // 3: job runs, for exactly-once effects.
    r#"CREATE TABLE job_runs (
        org text NOT NULL,
        key text NOT NULL,
        state text NOT NULL,
        outcome jsonb,
        lease_until timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (org, key)
    );
    CREATE INDEX job_runs_expires ON job_runs (expires_at);"#,
    // 4: the orgs set up (their Org items), for the scheduler.
    r#"CREATE INDEX items_orgs ON items (org) WHERE type = 'Org';"#,
    // 5: identity-provider subjects linked to accounts, unique in the installation.
    r#"CREATE TABLE identity_links (
        issuer text NOT NULL,
        subject text NOT NULL,
        org text NOT NULL,
        account uuid NOT NULL,
        PRIMARY KEY (issuer, subject)
    );"#,
    // 6: extension names, unique in an org, as usernames are.
    r#"CREATE UNIQUE INDEX items_extension_name ON items (org, name) WHERE type = 'Extension';"#,
    // 7: children indexed by their parent first: deleting an item makes the foreign key look
    // for its children by `parent` alone, which the index led by `org` could not serve, so
    // every delete read every item. A page of children (org and parent) is served as before.
    // Written to run again harmlessly.
    r#"DROP INDEX IF EXISTS items_org_parent_created;
    CREATE INDEX IF NOT EXISTS items_parent_org_created ON items (parent, org, created_at, id);"#,
];

pub struct PostgresStore {
    pool: Pool,
    ready: OnceCell<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

/// An error and its sources, which hold the part that says what to fix (for example
/// "invalid peer certificate: UnknownIssuer").
fn causes(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What to do when the server's certificate is not trusted: Debian's PostgreSQL and most
/// distributions' serve TLS with a self-signed certificate out of the box.
fn tls_hint(why: &str) -> &'static str {
    if why.contains("UnknownIssuer") || why.contains("invalid peer certificate") {
        " (the server's certificate is not signed by an authority Realnet trusts: give the \
         server's CA certificate, or its self-signed certificate, as a PEM file in \
         REALNET_DB_CA_FILE; on a network you trust, sslmode=disable in REALNET_DB_URL turns \
         TLS off)"
    } else {
        ""
    }
}

fn backend(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl PostgresStore {
    /// Sets up the pool; no connection is made until the first call.
    pub fn new(
        config: tokio_postgres::Config,
        pool_size: usize,
        ca_file: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            config,
            tls(ca_file)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(PostgresStore {
            pool,
            ready: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let why = causes(&e);
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL: {why}{}",
                tls_hint(&why)
            ))
        })
    }

    /// A pooled connection to a migrated database.
    async fn client(&self) -> Result<Object, StoreError> {
        self.ready.get_or_try_init(|| self.run_migrations()).await?;
        self.connection().await
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS realnet_migrations (version integer PRIMARY KEY)",
        )
        .await
        .map_err(backend)?;
        let done: i64 = tx
            .query_one("SELECT COUNT(*) FROM realnet_migrations", &[])
            .await
            .map_err(backend)?
            .get(0);
        for (i, step) in SCHEMA.iter().enumerate().skip(done as usize) {
            if i + 1 == sql::UNIQUE_EXTENSION_NAMES {
                let found: Vec<(String, String, i64)> = tx
                    .query(sql::DUPLICATE_EXTENSION_NAMES, &[])
                    .await
                    .map_err(backend)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                super::duplicate_extension_names(&found)?;
            }
            tx.batch_execute(step).await.map_err(backend)?;
            tx.execute(
                "INSERT INTO realnet_migrations (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }
}

/// The TLS connector: Mozilla's roots plus the certificates in `ca_file`.
pub fn tls(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let bad = |e: String| {
            StoreError::Unavailable(format!("REALNET_DB_CA_FILE {}: {e}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Unavailable(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.to_sql_checked(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    /// Delegates to the wrapped value, which checks the column type itself.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Text(v) => v.to_sql_checked(ty, out),
            Param::Int(v) => v.to_sql_checked(ty, out),
            Param::Float(v) => v.to_sql_checked(ty, out),
            Param::Bool(v) => v.to_sql_checked(ty, out),
            Param::Time(v) => v.to_sql_checked(ty, out),
            Param::OptTime(v) => v.to_sql_checked(ty, out),
            Param::Uuid(v) => v.to_sql_checked(ty, out),
            Param::OptUuid(v) => v.to_sql_checked(ty, out),
            Param::Json(v) => v.to_sql_checked(ty, out),
        }
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn row_to_item(row: &Row) -> Result<Item, StoreError> {
    let attributes: serde_json::Value = row.try_get(6).map_err(backend)?;
    Ok(Item {
        id: row.try_get(0).map_err(backend)?,
        org: row.try_get(1).map_err(backend)?,
        type_name: row.try_get(2).map_err(backend)?,
        name: row.try_get(3).map_err(backend)?,
        parent: row.try_get(4).map_err(backend)?,
        owner: row.try_get(5).map_err(backend)?,
        attributes: match attributes {
            serde_json::Value::Object(m) => m,
            _ => return Err(StoreError::Backend("attributes are not an object".into())),
        },
        version: row.try_get(7).map_err(backend)?,
        created_at: row.try_get(8).map_err(backend)?,
        updated_at: row.try_get(9).map_err(backend)?,
    })
}

/// Why a write conditional on `expected` changed no row: the item is gone, or at another
/// version.
async fn missing_or_stale(
    tx: &impl GenericClient,
    org: &str,
    id: Uuid,
    expected: i64,
) -> StoreError {
    let row = tx
        .query_opt(&sql::statements(Dialect::Postgres).version, &[&org, &id])
        .await;
    match row {
        Ok(Some(r)) => StoreError::VersionConflict {
            id,
            expected,
            actual: r.get(0),
        },
        Ok(None) => StoreError::NotFound(id),
        Err(e) => backend(e),
    }
}

/// A parent must be an item of the same org (the foreign key alone accepts any org's).
async fn parent_in_org(
    tx: &impl GenericClient,
    org: &str,
    parent: Option<Uuid>,
) -> Result<(), StoreError> {
    let Some(parent) = parent else {
        return Ok(());
    };
    let stmt = tx
        .prepare_cached(&sql::statements(Dialect::Postgres).version)
        .await
        .map_err(backend)?;
    match tx
        .query_opt(&stmt, &[&org, &parent])
        .await
        .map_err(backend)?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(parent)),
    }
}

/// One write, inside a transaction or (alone) on its own: each write changes rows with a
/// single statement, atomic by itself; the reads before it check what it needs (the parent
/// is the org's, the item has no children) and one after it explains a refusal. A write
/// alone may thus see its parent deleted between the check and the statement: the foreign
/// key refuses that, and an item never changes org.
async fn apply_one(tx: &impl GenericClient, org: &str, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Create(item) => {
            parent_in_org(tx, org, item.parent).await?;
            let stmt = tx
                .prepare_cached(&sql::statements(Dialect::Postgres).insert)
                .await
                .map_err(backend)?;
            tx.execute(&stmt, &refs(&sql::insert_params(org, item)))
                .await
                .map_err(|e| match e.code() {
                    Some(c) if *c == SqlState::UNIQUE_VIOLATION && is_name_taken(&e) => {
                        sql::name_taken(item)
                    }
                    Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Duplicate(item.id),
                    Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                        StoreError::NotFound(item.parent.unwrap_or(item.id))
                    }
                    _ => backend(e),
                })?;
        }
        Write::Update {
            item,
            expected_version,
        } => {
            parent_in_org(tx, org, item.parent).await?;
            let stmt = tx
                .prepare_cached(&sql::statements(Dialect::Postgres).update)
                .await
                .map_err(backend)?;
            let n = tx
                .execute(
                    &stmt,
                    &refs(&sql::update_params(org, item, *expected_version)),
                )
                .await
                .map_err(|e| {
                    if is_name_taken(&e) {
                        sql::name_taken(item)
                    } else {
                        backend(e)
                    }
                })?;
            if n == 0 {
                return Err(missing_or_stale(tx, org, item.id, *expected_version).await);
            }
        }
        Write::Delete {
            id,
            expected_version,
        } => {
            let child = tx
                .query_opt(
                    &sql::statements(Dialect::Postgres).has_children,
                    &[&org, id],
                )
                .await
                .map_err(backend)?;
            if child.is_some() {
                return Err(StoreError::HasChildren(*id));
            }
            let statement = &sql::statements(Dialect::Postgres).delete_one;
            let stmt = tx.prepare_cached(statement).await.map_err(backend)?;
            let n = tx
                .execute(&stmt, &[&org, id, expected_version])
                .await
                .map_err(|e| match e.code() {
                    // A child added concurrently, between the check and the delete.
                    Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                        StoreError::HasChildren(*id)
                    }
                    _ => backend(e),
                })?;
            if n == 0 {
                return Err(missing_or_stale(tx, org, *id, *expected_version).await);
            }
        }
        Write::PutToken {
            hash,
            account,
            api_key,
            expires,
        } => {
            execute(
                tx,
                &st().put_token,
                &[
                    Param::Text(hash.clone()),
                    Param::Text(org.to_string()),
                    Param::Uuid(*account),
                    Param::OptUuid(*api_key),
                    Param::OptTime(*expires),
                ],
            )
            .await?
        }
        Write::DeleteToken { hash } => {
            execute(
                tx,
                &st().delete_token,
                &[Param::Text(org.to_string()), Param::Text(hash.clone())],
            )
            .await?
        }
        Write::DeleteTokensOf { account, api_keys } => {
            let statement = if *api_keys {
                &st().delete_all_tokens
            } else {
                &st().delete_login_tokens
            };
            execute(
                tx,
                statement,
                &[Param::Text(org.to_string()), Param::Uuid(*account)],
            )
            .await?
        }
        Write::DeleteApiKeyToken { api_key } => {
            execute(
                tx,
                &st().delete_api_key_token,
                &[Param::Text(org.to_string()), Param::Uuid(*api_key)],
            )
            .await?
        }
        Write::FinishJob { key, outcome } => {
            let params = [
                Param::Json(outcome.clone()),
                Param::Text(org.to_string()),
                Param::Text(key.clone()),
            ];
            execute(tx, &st().finish_job, &params).await?
        }
        Write::RecordJob {
            key,
            outcome,
            now,
            expires,
        } => {
            let params = sql::record_job_params(org, key, outcome, *now, *expires);
            let stmt = tx.prepare_cached(&st().record_job).await.map_err(backend)?;
            if tx.execute(&stmt, &refs(&params)).await.map_err(backend)? == 0 {
                return Err(StoreError::JobRecorded(key.clone()));
            }
        }
        Write::LinkIdentity {
            issuer,
            subject,
            account,
        } => {
            let params = link_params(issuer, subject, org, *account);
            let stmt = tx
                .prepare_cached(&st().link_identity)
                .await
                .map_err(backend)?;
            if tx.execute(&stmt, &refs(&params)).await.map_err(backend)? == 0 {
                return Err(sql::identity_taken(issuer, subject));
            }
        }
        Write::UnlinkIdentity {
            issuer,
            subject,
            account,
        } => {
            let params = link_params(issuer, subject, org, *account);
            execute(tx, &st().unlink_identity, &params).await?
        }
        Write::SetPassword { account, hash } => {
            let (org, account) = (Param::Text(org.to_string()), Param::Uuid(*account));
            match hash {
                Some(h) => {
                    execute(
                        tx,
                        &st().set_password,
                        &[org, account, Param::Text(h.clone())],
                    )
                    .await?
                }
                None => execute(tx, &st().delete_password, &[org, account]).await?,
            }
        }
        Write::SetSetting { key, value } => {
            let key = Param::Text(key.clone());
            match value {
                Some(v) => execute(tx, PUT_SETTING, &[key, Param::Text(v.clone())]).await?,
                None => execute(tx, DELETE_SETTING, &[key]).await?,
            }
        }
    }
    Ok(())
}

const PUT_SETTING: &str = "INSERT INTO realnet_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const DELETE_SETTING: &str = "DELETE FROM realnet_settings WHERE key = $1";

fn link_params(issuer: &str, subject: &str, org: &str, account: Uuid) -> [Param; 4] {
    [
        Param::Text(issuer.to_string()),
        Param::Text(subject.to_string()),
        Param::Text(org.to_string()),
        Param::Uuid(account),
    ]
}

fn st() -> &'static sql::Statements {
    sql::statements(Dialect::Postgres)
}

async fn execute(
    client: &impl GenericClient,
    statement: &str,
    params: &[Param],
) -> Result<(), StoreError> {
    let stmt = client.prepare_cached(statement).await.map_err(backend)?;
    client
        .execute(&stmt, &refs(params))
        .await
        .map_err(backend)?;
    Ok(())
}

/// Whether `e` violates one of the indexes that keep a name unique in an org.
fn is_name_taken(e: &tokio_postgres::Error) -> bool {
    let constraint = e.as_db_error().and_then(|d| d.constraint());
    constraint == Some(sql::USERNAME_INDEX) || constraint == Some(sql::EXTENSION_NAME_INDEX)
}

#[async_trait]
impl ItemStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.client().await.map(drop)
    }

    async fn get(&self, org: &str, id: Uuid) -> Result<Option<Item>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&sql::statements(Dialect::Postgres).get)
            .await
            .map_err(backend)?;
        client
            .query_opt(&stmt, &[&org, &id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(row_to_item)
            .transpose()
    }

    async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        if let [write] = writes {
            // Saves the BEGIN and COMMIT round trips.
            return apply_one(&client, org, write).await;
        }
        let tx = client.transaction().await.map_err(backend)?;
        for w in writes {
            apply_one(&tx, org, w).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn query(&self, org: &str, query: &ItemQuery) -> Result<Page, StoreError> {
        let sql = sql::select_page(Dialect::Postgres, org, query);
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql.text).await.map_err(backend)?;
        let rows = client
            .query(&stmt, &refs(&sql.params))
            .await
            .map_err(backend)?;
        let items = rows
            .iter()
            .map(row_to_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(query, items))
    }

    async fn ancestors(&self, org: &str, id: Uuid, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let client = self.client().await?;
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        let rows = client
            .query(
                &sql::statements(Dialect::Postgres).ancestors,
                &[&org, &id, &max],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn levels_below(&self, org: &str, id: Uuid, max: usize) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        let row = client
            .query_one(
                &sql::statements(Dialect::Postgres).levels_below,
                &[&org, &id, &org, &max],
            )
            .await
            .map_err(backend)?;
        let levels: i32 = row.get(0);
        Ok(usize::try_from(levels).unwrap_or(0))
    }

    async fn counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(sql::COUNTS, &[]).await.map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| TypeCount {
                org: r.get(0),
                type_name: r.get(1),
                count: r.get(2),
            })
            .collect())
    }

    async fn setting(&self, key: &str, initial: &str) -> Result<String, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO realnet_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &initial],
            )
            .await
            .map_err(backend)?;
        let row = client
            .query_one("SELECT value FROM realnet_settings WHERE key = $1", &[&key])
            .await
            .map_err(backend)?;
        Ok(row.get(0))
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(PUT_SETTING, &[&key, &value])
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn token(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&st().token).await.map_err(backend)?;
        let row = client.query_opt(&stmt, &[&hash]).await.map_err(backend)?;
        Ok(row.map(|r| StoredToken {
            org: r.get(0),
            account: r.get(1),
            api_key: r.get(2),
            expires: r.get(3),
        }))
    }

    async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<IdentityLink>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&st().identity_link)
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&stmt, &[&issuer, &subject])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| IdentityLink {
            org: r.get(0),
            account: r.get(1),
        }))
    }

    async fn password(&self, org: &str, account: Uuid) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&st().password)
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&stmt, &[&org, &account])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn count_attempt(
        &self,
        key: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let client = self.client().await?;
        let count = client
            .prepare_cached(&st().count_attempt)
            .await
            .map_err(backend)?;
        let window = client
            .prepare_cached(&st().attempt_window)
            .await
            .map_err(backend)?;
        let params = sql::count_attempt_params(key, limit, now, window_start);
        // Refused at the limit, the window is read next; a successful login on another
        // connection may clear it in between, and then the attempt is counted afresh.
        for _ in 0..3 {
            if let Some(row) = client
                .query_opt(&count, &refs(&params))
                .await
                .map_err(backend)?
            {
                return Ok(Attempt::Counted { since: row.get(0) });
            }
            if let Some(row) = client.query_opt(&window, &[&key]).await.map_err(backend)? {
                return Ok(Attempt::Refused { since: row.get(0) });
            }
        }
        Ok(Attempt::Refused { since: now })
    }

    async fn uncount_attempt(&self, key: &str, since: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let params = [Param::Text(key.to_string()), Param::Time(since)];
        execute(&client, &st().uncount_attempt, &params).await
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        execute(
            &client,
            &st().clear_attempts,
            &[Param::Text(key.to_string())],
        )
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
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&st().begin_job)
            .await
            .map_err(backend)?;
        let started = client
            .query_opt(&stmt, &[&org, &key, &lease_until, &expires, &now, &now])
            .await
            .map_err(backend)?;
        if started.is_some() {
            return Ok(JobClaim::Started);
        }
        let stmt = client
            .prepare_cached(&st().job_state)
            .await
            .map_err(backend)?;
        let row = client
            .query_one(&stmt, &[&org, &key])
            .await
            .map_err(backend)?;
        let state: String = row.get(0);
        let outcome: Option<serde_json::Value> = row.get(1);
        Ok(match (state.as_str(), outcome) {
            ("done", Some(o)) => JobClaim::Done(o),
            _ => JobClaim::Busy,
        })
    }

    async fn abandon_job(&self, org: &str, key: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let params = [Param::Text(org.to_string()), Param::Text(key.to_string())];
        execute(&client, &st().abandon_job, &params).await
    }

    async fn job_outcome(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&st().job_outcome)
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&stmt, &[&org, &key, &now])
            .await
            .map_err(backend)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn orgs(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(sql::ORGS, &[]).await.map_err(backend)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError> {
        let client = self.client().await?;
        let delete = async |statement: &str, before: DateTime<Utc>| {
            let stmt = client.prepare_cached(statement).await.map_err(backend)?;
            client
                .execute(&stmt, &refs(&[Param::Time(before)]))
                .await
                .map_err(backend)
        };
        Ok(Some(Purged {
            tokens: delete(&st().purge_tokens, now).await?,
            job_records: delete(&st().purge_job_runs, now).await?,
            login_failures: delete(&st().purge_failures, failures_before).await?,
        }))
    }
}
