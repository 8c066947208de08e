//! Item storage. [`ItemStore`] is the one interface every provider implements (SQLite, the
//! embedded default; PostgreSQL, the deployed one); the contract suite in `tests/` holds them
//! to the same behaviour. Every call is scoped by org. Writes go through [`ItemStore::apply`],
//! which runs a list of writes in one transaction, so batches need no second write path.
//!
//! Beside items, a store keeps what must never be shown as an item: password hashes, the
//! SHA-256 of bearer tokens, the links of identity-provider subjects to accounts (looked up
//! across orgs), and counts of login attempts. These are written through the same `apply`, so
//! an account and its password or link, or an API key and its token, land together.

mod dynamodb;
mod postgres;
mod sql;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::item::Item;
use crate::query::{ItemQuery, Position};

pub use dynamodb::{DEFAULT_PAGE_READS, DynamoStore};
pub use postgres::{PostgresStore, tls as postgres_tls};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("item {0} not found")]
    NotFound(Uuid),
    #[error("item {id} is at version {actual}, not {expected}")]
    VersionConflict {
        id: Uuid,
        expected: i64,
        actual: i64,
    },
    #[error("item {0} has children")]
    HasChildren(Uuid),
    #[error("an item with id {0} already exists")]
    Duplicate(Uuid),
    /// A unique attribute (an account's username within its org) is already taken.
    #[error("{0}")]
    Taken(String),
    /// More changes than the store can make in one transaction.
    #[error("{0}")]
    TooLarge(String),
    /// A [`Write::RecordJob`] found the job's record: it has run (or is running) already.
    #[error("job {0} has already run")]
    JobRecorded(String),
    /// A query that no index serves and that would read more than a page may.
    #[error("{0}")]
    NeedsIndex(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Backend(String),
}

/// The refusal to make `Extension` names unique in an org (a SQL migration, DynamoDB's name
/// claims) where `found` (org, name, count) names are shared, if any are.
pub(crate) fn duplicate_extension_names(found: &[(String, String, i64)]) -> Result<(), StoreError> {
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found
        .iter()
        .map(|(org, name, count)| format!("{count} named {name:?} in org {org:?}"))
        .collect();
    // Unavailable, not Taken: on the SQL stores every request meets it until it is mended.
    Err(StoreError::Unavailable(format!(
        "extension names must be unique in an org, and these Extension items share one: {}; rename or delete all but one of each (a remote extension is called by its name), then start Realnet again",
        names.join(", ")
    )))
}

/// One write; see [`ItemStore::apply`].
#[derive(Debug, Clone)]
pub enum Write {
    Create(Item),
    /// Replaces the stored item if it is still at `expected_version`; `item.version` is the
    /// new version.
    Update {
        item: Item,
        expected_version: i64,
    },
    /// Deletes the item if it is still at `expected_version` (the version its checks read);
    /// one with children is refused, unless they are deleted earlier in the same transaction
    /// (a tree goes deepest first).
    Delete {
        id: Uuid,
        expected_version: i64,
    },
    /// Stores the SHA-256 (hex) of a new bearer token of `account`.
    PutToken {
        hash: String,
        account: Uuid,
        api_key: Option<Uuid>,
        expires: Option<DateTime<Utc>>,
    },
    /// Revokes one token.
    DeleteToken {
        hash: String,
    },
    /// Revokes the account's login tokens, and with `api_keys` its API keys too.
    DeleteTokensOf {
        account: Uuid,
        api_keys: bool,
    },
    /// Revokes an API key's token.
    DeleteApiKeyToken {
        api_key: Uuid,
    },
    /// Sets (or with `None` removes) an account's password hash (a PHC string).
    SetPassword {
        account: Uuid,
        hash: Option<String>,
    },
    /// Links the identity provider's `subject` at `issuer` to `account` (of the org the writes
    /// apply to), for authorizer mode. A link is unique in the whole installation: refused
    /// ([`StoreError::Taken`], and so the whole transaction) while another account holds it.
    LinkIdentity {
        issuer: String,
        subject: String,
        account: Uuid,
    },
    /// Removes the link of `issuer` and `subject`, if `account` of this org holds it.
    UnlinkIdentity {
        issuer: String,
        subject: String,
        account: Uuid,
    },
    /// Stores (or with `None` removes) the installation setting `key` in the transaction: a
    /// secret that must go with an item (a remote extension's signing secret) and never be
    /// one of its attributes. Read with [`ItemStore::setting`].
    SetSetting {
        key: String,
        value: Option<String>,
    },
    /// Records the outcome of the job run under `key` (see [`ItemStore::begin_job`]); written
    /// in the same transaction as the job's effects, so that both happen or neither.
    FinishJob {
        key: String,
        outcome: serde_json::Value,
    },
    /// Records that the job under `key` ran, with its outcome, until `expires`: written with
    /// the job's effects, it makes them happen once. Refused ([`StoreError::JobRecorded`],
    /// and so the whole transaction) while another record of the key lives.
    RecordJob {
        key: String,
        outcome: serde_json::Value,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    },
}

/// What [`ItemStore::count_attempt`] did, with the start of the window it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The attempt is counted; it may go ahead.
    Counted { since: DateTime<Utc> },
    /// The limit was reached already; nothing was counted.
    Refused { since: DateTime<Utc> },
}

/// What [`ItemStore::begin_job`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum JobClaim {
    /// The caller holds the key now and runs the job.
    Started,
    /// The job ran; this is what it recorded.
    Done(serde_json::Value),
    /// Another run holds the key and its lease has not run out.
    Busy,
}

/// A bearer token as stored; the token itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub org: String,
    pub account: Uuid,
    pub api_key: Option<Uuid>,
    pub expires: Option<DateTime<Utc>>,
}

/// The account an identity provider's issuer and subject are linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    pub org: String,
    pub account: Uuid,
}

/// A page of a query: the items and, if there are more, where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Position>,
}

impl Page {
    /// Builds a page from rows fetched with one extra row (to learn whether more follow).
    pub(crate) fn from_rows(query: &ItemQuery, mut items: Vec<Item>) -> Page {
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        let next = if more {
            items.last().map(|last| query.sort.position_of(last))
        } else {
            None
        };
        Page { items, next }
    }
}

/// The first item `query` finds in `org`, reading on past short pages (a page that ends at a
/// store's read budget may hold nothing yet have a next page).
pub async fn first_item(
    store: &dyn ItemStore,
    org: &str,
    query: &ItemQuery,
) -> Result<Option<Item>, StoreError> {
    let mut query = query.clone();
    loop {
        let page = store.query(org, &query).await?;
        if let Some(item) = page.items.into_iter().next() {
            return Ok(Some(item));
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(None),
        }
    }
}

/// `items`, found by `query` in `org`, as they are now: where the store's queries may lag its
/// writes ([`ItemStore::query_lag`]), each is read again by id (a `get` is
/// consistent on every store) and those since deleted, or changed so that `query` no longer
/// matches them, are left out. For reads that grant rights or act on them (an org's access
/// rules, its portfolio, a remote extension, a job's actor, the schedules a tick runs, the
/// descendants a recursive delete checks): a rule revoked a moment ago must not be read back
/// from a lagging index and kept. Items created a moment ago may still be missing. `query`
/// must not rely on subtree rules (its readable subtrees are not expanded here).
pub async fn current(
    store: &dyn ItemStore,
    org: &str,
    query: &ItemQuery,
    items: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    if store.query_lag().is_zero() {
        return Ok(items);
    }
    let reads = items.iter().map(|item| store.get(org, item.id));
    let now = futures_util::future::try_join_all(reads).await?;
    let none = std::collections::HashSet::new();
    Ok(now
        .into_iter()
        .flatten()
        .filter(|item| query.matches(item, &none))
        .collect())
}

/// How many items of each type an org holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCount {
    pub org: String,
    pub type_name: String,
    pub count: i64,
}

#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// `sqlite`, `postgresql` or `dynamodb`.
    fn kind(&self) -> &'static str;

    /// How long a query may miss a write for (DynamoDB's global secondary indexes are
    /// eventually consistent); zero where queries see every committed write. `get` never
    /// misses one. See [`current`]; the caches keep nothing read that soon after a forget.
    fn query_lag(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Creates or upgrades the schema; safe to call any number of times, concurrently.
    async fn migrate(&self) -> Result<(), StoreError>;

    async fn get(&self, org: &str, id: Uuid) -> Result<Option<Item>, StoreError>;

    /// Applies `writes` in order, all or nothing.
    async fn apply(&self, org: &str, writes: &[Write]) -> Result<(), StoreError>;

    /// One page of items matching `query`, in its order, after `query.after`.
    async fn query(&self, org: &str, query: &ItemQuery) -> Result<Page, StoreError>;

    /// The item's ancestors, nearest first (not the item itself), at most `max` of them: walks
    /// stop at the depth bound (`REALNET_MAX_DEPTH`), however the hierarchy is stored.
    async fn ancestors(&self, org: &str, id: Uuid, max: usize) -> Result<Vec<Uuid>, StoreError>;

    /// How many levels of descendants the item has (0 for none, or for no such item), counted
    /// to at most `max`. The cost grows with the part of the subtree within those levels.
    async fn levels_below(&self, org: &str, id: Uuid, max: usize) -> Result<usize, StoreError>;

    async fn counts(&self) -> Result<Vec<TypeCount>, StoreError>;

    /// The value stored under `key`, storing `initial` first if there is none.
    async fn setting(&self, key: &str, initial: &str) -> Result<String, StoreError>;

    /// Stores `value` under `key`, replacing what was there.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// The token whose SHA-256 (hex) is `hash`, in any org.
    async fn token(&self, hash: &str) -> Result<Option<StoredToken>, StoreError>;

    /// The account linked to the identity provider's `subject` at `issuer`, in any org.
    async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<IdentityLink>, StoreError>;

    /// The account's password hash.
    async fn password(&self, org: &str, account: Uuid) -> Result<Option<String>, StoreError>;

    /// Counts one login attempt under `key`, in one atomic step, unless `limit` attempts are
    /// counted already in the window that is open; a window that began before `window_start`
    /// is over, and counting begins again at one (a window opened now begins at `now`).
    async fn count_attempt(
        &self,
        key: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> Result<Attempt, StoreError>;

    /// Takes back one attempt counted under `key` in the window that began at `since` (a
    /// login that succeeded, or was not checked); nothing if that window is over.
    async fn uncount_attempt(&self, key: &str, since: DateTime<Utc>) -> Result<(), StoreError>;

    /// Forgets the attempts counted under `key`.
    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError>;

    /// Claims the job key `key` of `org` until `lease_until`, unless a run holds it (`Busy`)
    /// or it finished (`Done`); a finished record counts until `expires`, after which the key
    /// may run again.
    async fn begin_job(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<JobClaim, StoreError>;

    /// Lets go of `key` so that another delivery runs the job again.
    async fn abandon_job(&self, org: &str, key: &str) -> Result<(), StoreError>;

    /// The outcome recorded for the job under `key`, if it finished and its record lives.
    async fn job_outcome(
        &self,
        org: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// The orgs that have been set up (those with an `Org` item), in name order.
    async fn orgs(&self) -> Result<Vec<String>, StoreError>;

    /// Deletes what has expired by `now`: tokens, job records, and login-attempt windows that
    /// began before `failures_before`. `None` when the store expires them itself (DynamoDB's
    /// TTL); expired records are never honoured either way.
    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError>;
}

/// What [`ItemStore::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub tokens: u64,
    pub job_records: u64,
    pub login_failures: u64,
}
