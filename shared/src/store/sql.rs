//! SQL shared by the SQLite and PostgreSQL stores: the statements and the query builder. The
//! two dialects differ only in placeholders, JSON access and casts. Values are always bound
//! parameters; the only names written into SQL are column names and field names taken from
//! the type registry, which the loader restricts to `[a-z][a-z0-9_]*`.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::query::{ItemQuery, NameFilter, Op, ParentFilter, Position, Readable, Scalar, SortKey};
use crate::types::FieldKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Json(Value),
}

impl From<&Scalar> for Param {
    fn from(s: &Scalar) -> Self {
        match s {
            Scalar::Text(t) => Param::Text(t.clone()),
            Scalar::Int(n) => Param::Int(*n),
            Scalar::Float(n) => Param::Float(*n),
            Scalar::Bool(b) => Param::Bool(*b),
            Scalar::Time(t) => Param::Time(*t),
        }
    }
}

pub(crate) const COLUMNS: &str =
    "id, org, type, name, parent, owner, attributes, version, created_at, updated_at";

/// A statement being built, with its parameters.
pub(crate) struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql {
            dialect,
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Text columns compare bytewise in both stores, so keyset order is the same everywhere.
    fn collate(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// The SQL expression for an attribute, typed by the field's kind.
    fn attr(&self, field: &str, kind: FieldKind) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_extract(attributes, '$.{field}')"),
            Dialect::Postgres => match kind {
                FieldKind::Integer => format!("(attributes->>'{field}')::bigint"),
                FieldKind::Number => format!("(attributes->>'{field}')::float8"),
                FieldKind::Boolean => format!("(attributes->>'{field}')::boolean"),
                _ => format!("(attributes->>'{field}') COLLATE \"C\""),
            },
        }
    }
}

/// `SELECT` for one page of `query` in `org`, fetching one row more than the limit so the
/// caller knows whether a next page exists.
pub(crate) fn select_page(dialect: Dialect, org: &str, query: &ItemQuery) -> Sql {
    let mut sql = Sql::new(dialect);
    let org = sql.bind(Param::Text(org.to_string()));
    sql.push(&format!("SELECT {COLUMNS} FROM items WHERE org = {org}"));

    if let Readable::Only {
        types,
        owner,
        owned_types,
        subtrees,
    } = &query.readable
    {
        let mut any = Vec::new();
        if !types.is_empty() {
            let list: Vec<String> = types
                .iter()
                .map(|t| sql.bind(Param::Text(t.clone())))
                .collect();
            any.push(format!("type IN ({})", list.join(", ")));
        }
        if let Some(owner) = owner {
            let p = sql.bind(Param::Uuid(*owner));
            let list: Vec<String> = owned_types
                .iter()
                .map(|t| sql.bind(Param::Text(t.clone())))
                .collect();
            any.push(format!("(owner = {p} AND type IN ({}))", list.join(", ")));
        }
        if !subtrees.is_empty() {
            let roots: Vec<String> = subtrees
                .iter()
                .map(|id| sql.bind(Param::Uuid(*id)))
                .collect();
            // The roots are looked up by id alone (SQLite, asked for `org = ? AND id IN (...)`,
            // reads the whole org through its covering index instead) and each level below by
            // the org's parent index (without `i.org` SQLite built a temporary index over every
            // item for each query). The page's own `org =` keeps out what is not the org's.
            any.push(format!(
                "id IN (WITH RECURSIVE sub(id) AS (SELECT id FROM items WHERE id IN ({}) UNION ALL SELECT i.id FROM items i JOIN sub ON i.parent = sub.id WHERE i.org = {org}) SELECT id FROM sub)",
                roots.join(", ")
            ));
        }
        if any.is_empty() {
            sql.push(" AND 1 = 0");
        } else {
            sql.push(&format!(" AND ({})", any.join(" OR ")));
        }
    }

    match query.types.as_slice() {
        [] => {}
        [one] => {
            let p = sql.bind(Param::Text(one.clone()));
            sql.push(&format!(" AND type = {p}"));
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|t| sql.bind(Param::Text(t.clone())))
                .collect();
            sql.push(&format!(" AND type IN ({})", list.join(", ")));
        }
    }
    match &query.parent {
        None => {}
        Some(ParentFilter::Root) => sql.push(" AND parent IS NULL"),
        Some(ParentFilter::Id(id)) => {
            let p = sql.bind(Param::Uuid(*id));
            sql.push(&format!(" AND parent = {p}"));
        }
    }
    match &query.name {
        None => {}
        Some(NameFilter::Exact(n)) => {
            let p = sql.bind(Param::Text(n.clone()));
            sql.push(&format!(" AND name = {p}"));
        }
        Some(NameFilter::Prefix(prefix)) => {
            let p = sql.bind(Param::Text(format!("{}%", escape_like(prefix))));
            let collate = sql.collate();
            sql.push(&format!(" AND name{collate} LIKE {p} ESCAPE '\\'"));
        }
    }
    for word in &query.words {
        let p = sql.bind(Param::Text(format!("%{}%", escape_like(word))));
        sql.push(&format!(" AND search LIKE {p} ESCAPE '\\'"));
    }
    for f in &query.attrs {
        if dialect == Dialect::Postgres && f.op == Op::Eq {
            // Containment uses the GIN index on attributes.
            let mut obj = serde_json::Map::new();
            obj.insert(f.field.clone(), scalar_json(&f.values[0]));
            let p = sql.bind(Param::Json(Value::Object(obj)));
            sql.push(&format!(" AND attributes @> {p}"));
            continue;
        }
        let expr = sql.attr(&f.field, f.kind);
        let op = match f.op {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::In => "IN",
        };
        let values: Vec<String> = f
            .values
            .iter()
            .map(|v| sql.bind(scalar_param(dialect, v)))
            .collect();
        if f.op == Op::In {
            sql.push(&format!(" AND {expr} IN ({})", values.join(", ")));
        } else {
            sql.push(&format!(" AND {expr} {op} {}", values[0]));
        }
    }

    let (key, nullable) = match &query.sort.key {
        SortKey::Name => (format!("name{}", sql.collate()), false),
        SortKey::Created => ("created_at".to_string(), false),
        SortKey::Updated => ("updated_at".to_string(), false),
        SortKey::Attr { field, kind } => (sql.attr(field, *kind), true),
    };
    let (cmp, dir) = if query.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(Position { value, id }) = &query.after {
        let id = sql.bind(Param::Uuid(*id));
        match value {
            // Absent values sort last: after a present value come greater values, equal
            // values with a greater id, then every absent one.
            Some(v) => {
                let v = sql.bind(scalar_param(dialect, v));
                let tail = if nullable {
                    format!(" OR {key} IS NULL")
                } else {
                    String::new()
                };
                sql.push(&format!(
                    " AND ({key} {cmp} {v} OR ({key} = {v} AND id {cmp} {id}){tail})"
                ));
            }
            None => sql.push(&format!(" AND {key} IS NULL AND id {cmp} {id}")),
        }
    }
    let nulls = if nullable { " NULLS LAST" } else { "" };
    let limit = sql.bind(Param::Int(query.limit as i64 + 1));
    sql.push(&format!(
        " ORDER BY {key} {dir}{nulls}, id {dir} LIMIT {limit}"
    ));
    sql
}

fn scalar_param(dialect: Dialect, s: &Scalar) -> Param {
    match (dialect, s) {
        // json_extract yields 1/0 for JSON booleans.
        (Dialect::Sqlite, Scalar::Bool(b)) => Param::Int(i64::from(*b)),
        _ => Param::from(s),
    }
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Text(t) => Value::String(t.clone()),
        Scalar::Int(n) => Value::from(*n),
        Scalar::Float(n) => Value::from(*n),
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Time(t) => Value::String(crate::types::value::format_datetime(*t)),
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The fixed statements of one dialect, numbered once rather than on every call.
pub(crate) struct Statements {
    pub insert: String,
    pub update: String,
    pub get: String,
    pub version: String,
    pub has_children: String,
    pub delete_one: String,
    pub ancestors: String,
    pub levels_below: String,
    pub put_token: String,
    pub delete_token: String,
    pub delete_login_tokens: String,
    pub delete_all_tokens: String,
    pub delete_api_key_token: String,
    pub token: String,
    pub set_password: String,
    pub delete_password: String,
    pub password: String,
    pub link_identity: String,
    pub unlink_identity: String,
    pub identity_link: String,
    pub count_attempt: String,
    pub attempt_window: String,
    pub uncount_attempt: String,
    pub clear_attempts: String,
    pub begin_job: String,
    pub job_state: String,
    pub finish_job: String,
    pub abandon_job: String,
    pub record_job: String,
    pub job_outcome: String,
    pub purge_tokens: String,
    pub purge_job_runs: String,
    pub purge_failures: String,
}

impl Statements {
    fn new(d: Dialect) -> Self {
        Statements {
            insert: numbered(d, INSERT),
            update: numbered(d, UPDATE),
            get: numbered(d, GET),
            version: numbered(d, VERSION),
            has_children: numbered(d, HAS_CHILDREN),
            delete_one: numbered(d, DELETE_ONE),
            ancestors: numbered(d, ANCESTORS),
            levels_below: numbered(d, LEVELS_BELOW),
            put_token: numbered(d, PUT_TOKEN),
            delete_token: numbered(d, DELETE_TOKEN),
            delete_login_tokens: numbered(d, DELETE_LOGIN_TOKENS),
            delete_all_tokens: numbered(d, DELETE_ALL_TOKENS),
            delete_api_key_token: numbered(d, DELETE_API_KEY_TOKEN),
            token: numbered(d, TOKEN),
            set_password: numbered(d, SET_PASSWORD),
            delete_password: numbered(d, DELETE_PASSWORD),
            password: numbered(d, PASSWORD),
            link_identity: numbered(d, LINK_IDENTITY),
            unlink_identity: numbered(d, UNLINK_IDENTITY),
            identity_link: numbered(d, IDENTITY_LINK),
            count_attempt: numbered(d, COUNT_ATTEMPT),
            attempt_window: numbered(d, ATTEMPT_WINDOW),
            uncount_attempt: numbered(d, UNCOUNT_ATTEMPT),
            clear_attempts: numbered(d, CLEAR_ATTEMPTS),
            begin_job: numbered(d, BEGIN_JOB),
            job_state: numbered(d, JOB_STATE),
            finish_job: numbered(d, FINISH_JOB),
            abandon_job: numbered(d, ABANDON_JOB),
            record_job: numbered(d, RECORD_JOB),
            job_outcome: numbered(d, JOB_OUTCOME),
            purge_tokens: numbered(d, PURGE_TOKENS),
            purge_job_runs: numbered(d, PURGE_JOB_RUNS),
            purge_failures: numbered(d, PURGE_FAILURES),
        }
    }
}

pub(crate) fn statements(dialect: Dialect) -> &'static Statements {
    static SQLITE: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Sqlite));
    static POSTGRES: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Postgres));
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
    }
}

/// Statements with `{}` for placeholders, numbered in order.
fn numbered(dialect: Dialect, template: &str) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            match dialect {
                Dialect::Sqlite => out.push_str(&format!("?{i}")),
                Dialect::Postgres => out.push_str(&format!("${i}")),
            }
        }
        out.push_str(part);
    }
    out
}

const INSERT: &str = "INSERT INTO items (id, org, type, name, parent, owner, attributes, search, version, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})";

const UPDATE: &str = "UPDATE items SET name = {}, parent = {}, attributes = {}, search = {}, version = {}, updated_at = {} WHERE org = {} AND id = {} AND version = {}";

const GET: &str = "SELECT id, org, type, name, parent, owner, attributes, version, created_at, updated_at FROM items WHERE org = {} AND id = {}";

const VERSION: &str = "SELECT version FROM items WHERE org = {} AND id = {}";

const HAS_CHILDREN: &str = "SELECT 1 FROM items WHERE org = {} AND parent = {} LIMIT 1";

const DELETE_ONE: &str = "DELETE FROM items WHERE org = {} AND id = {} AND version = {}";

/// Stops after the given number of ancestors (the depth bound), so neither a deep nor a
/// corrupted hierarchy makes the walk long.
const ANCESTORS: &str = "WITH RECURSIVE up(id, parent, depth) AS (SELECT id, parent, 0 FROM items WHERE org = {} AND id = {} UNION ALL SELECT i.id, i.parent, up.depth + 1 FROM items i JOIN up ON i.id = up.parent WHERE up.depth < {}) SELECT id FROM up WHERE depth > 0 ORDER BY depth";

/// The deepest level of descendants, counted to at most the given number.
const LEVELS_BELOW: &str = "WITH RECURSIVE down(id, depth) AS (SELECT id, 0 FROM items WHERE org = {} AND id = {} UNION ALL SELECT i.id, down.depth + 1 FROM items i JOIN down ON i.parent = down.id WHERE i.org = {} AND down.depth < {}) SELECT COALESCE(MAX(depth), 0) FROM down";

const PUT_TOKEN: &str =
    "INSERT INTO tokens (hash, org, account, api_key, expires) VALUES ({}, {}, {}, {}, {})";

const DELETE_TOKEN: &str = "DELETE FROM tokens WHERE org = {} AND hash = {}";

const DELETE_LOGIN_TOKENS: &str =
    "DELETE FROM tokens WHERE org = {} AND account = {} AND api_key IS NULL";

const DELETE_ALL_TOKENS: &str = "DELETE FROM tokens WHERE org = {} AND account = {}";

const DELETE_API_KEY_TOKEN: &str = "DELETE FROM tokens WHERE org = {} AND api_key = {}";

const TOKEN: &str = "SELECT org, account, api_key, expires FROM tokens WHERE hash = {}";

const SET_PASSWORD: &str = "INSERT INTO passwords (org, account, hash) VALUES ({}, {}, {}) ON CONFLICT (org, account) DO UPDATE SET hash = excluded.hash";

const DELETE_PASSWORD: &str = "DELETE FROM passwords WHERE org = {} AND account = {}";

const PASSWORD: &str = "SELECT hash FROM passwords WHERE org = {} AND account = {}";

/// Links an issuer and subject to an account, or keeps the link it has; changes no row when
/// another account holds it. Parameters: issuer, subject, org, account.
const LINK_IDENTITY: &str = "INSERT INTO identity_links (issuer, subject, org, account) VALUES ({}, {}, {}, {}) ON CONFLICT (issuer, subject) DO UPDATE SET org = excluded.org WHERE identity_links.org = excluded.org AND identity_links.account = excluded.account";

const UNLINK_IDENTITY: &str =
    "DELETE FROM identity_links WHERE issuer = {} AND subject = {} AND org = {} AND account = {}";

const IDENTITY_LINK: &str =
    "SELECT org, account FROM identity_links WHERE issuer = {} AND subject = {}";

/// The refusal of a link another account holds (which org's, it does not say).
pub(crate) fn identity_taken(issuer: &str, subject: &str) -> super::StoreError {
    super::StoreError::Taken(format!(
        "the identity {subject:?} of issuer {issuer:?} is linked to another account"
    ))
}

/// Counts an attempt unless the open window holds the limit already: one upsert, so that
/// concurrent attempts cannot all pass. A window that began before the given start is over and
/// counting begins again at one. Returns a row only when it counted. Parameters: key, now,
/// window start (three times), limit.
const COUNT_ATTEMPT: &str = "INSERT INTO login_failures (key, count, since) VALUES ({}, 1, {}) ON CONFLICT (key) DO UPDATE SET count = CASE WHEN login_failures.since < {} THEN 1 ELSE login_failures.count + 1 END, since = CASE WHEN login_failures.since < {} THEN excluded.since ELSE login_failures.since END WHERE login_failures.since < {} OR login_failures.count < {} RETURNING since";

const ATTEMPT_WINDOW: &str = "SELECT since FROM login_failures WHERE key = {}";

const UNCOUNT_ATTEMPT: &str =
    "UPDATE login_failures SET count = count - 1 WHERE key = {} AND since = {} AND count > 0";

const CLEAR_ATTEMPTS: &str = "DELETE FROM login_failures WHERE key = {}";

/// Takes a key that is new, whose run's lease ran out, or whose record expired; returns a row
/// only when it did.
const BEGIN_JOB: &str = "INSERT INTO job_runs (org, key, state, outcome, lease_until, expires_at) VALUES ({}, {}, 'running', NULL, {}, {}) ON CONFLICT (org, key) DO UPDATE SET state = 'running', outcome = NULL, lease_until = excluded.lease_until, expires_at = excluded.expires_at WHERE (job_runs.state = 'running' AND job_runs.lease_until < {}) OR job_runs.expires_at < {} RETURNING state";

const JOB_STATE: &str = "SELECT state, outcome FROM job_runs WHERE org = {} AND key = {}";

const FINISH_JOB: &str =
    "UPDATE job_runs SET state = 'done', outcome = {} WHERE org = {} AND key = {}";

const ABANDON_JOB: &str = "DELETE FROM job_runs WHERE org = {} AND key = {} AND state = 'running'";

/// Inserts a finished job's record unless a live one exists; changes no row when one does.
const RECORD_JOB: &str = "INSERT INTO job_runs (org, key, state, outcome, lease_until, expires_at) VALUES ({}, {}, 'done', {}, {}, {}) ON CONFLICT (org, key) DO UPDATE SET state = 'done', outcome = excluded.outcome, lease_until = excluded.lease_until, expires_at = excluded.expires_at WHERE job_runs.expires_at < {}";

const JOB_OUTCOME: &str = "SELECT outcome FROM job_runs WHERE org = {} AND key = {} AND state = 'done' AND expires_at >= {}";

const PURGE_TOKENS: &str = "DELETE FROM tokens WHERE expires < {}";

const PURGE_JOB_RUNS: &str = "DELETE FROM job_runs WHERE expires_at < {}";

const PURGE_FAILURES: &str = "DELETE FROM login_failures WHERE since < {}";

pub(crate) const ORGS: &str = "SELECT DISTINCT org FROM items WHERE type = 'Org' ORDER BY org";

/// The index that keeps usernames unique within an org; a violation of it is
/// [`StoreError::Taken`](super::StoreError::Taken).
pub(crate) const USERNAME_INDEX: &str = "items_account_username";

/// The index that keeps the names of `Extension` items unique within an org (a remote
/// extension is called by its name); a violation of it is
/// [`StoreError::Taken`](super::StoreError::Taken).
pub(crate) const EXTENSION_NAME_INDEX: &str = "items_extension_name";

/// The migration (its number) that makes `Extension` names unique in an org. Before it, a
/// name could be given twice; it stops, naming them, until all but one of each are renamed.
pub(crate) const UNIQUE_EXTENSION_NAMES: usize = 6;

/// The names more than one `Extension` item of an org has, with how many have each.
pub(crate) const DUPLICATE_EXTENSION_NAMES: &str = "SELECT org, name, COUNT(*) FROM items WHERE type = 'Extension' GROUP BY org, name HAVING COUNT(*) > 1 ORDER BY org, name";

/// The refusal of a write that would give two accounts of an org the same username, or two
/// `Extension` items of an org the same name: the one unique name each of those types has.
pub(crate) fn name_taken(item: &crate::item::Item) -> super::StoreError {
    if item.type_name == "Extension" {
        return super::StoreError::Taken(format!(
            "extension {:?} exists already in org {:?}",
            item.name, item.org
        ));
    }
    let username = item
        .attributes
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    super::StoreError::Taken(format!(
        "the username {username:?} is taken in org {:?}",
        item.org
    ))
}

/// The parameters of [`COUNT_ATTEMPT`].
pub(crate) fn count_attempt_params(
    key: &str,
    limit: i64,
    now: chrono::DateTime<chrono::Utc>,
    window_start: chrono::DateTime<chrono::Utc>,
) -> Vec<Param> {
    vec![
        Param::Text(key.to_string()),
        Param::Time(now),
        Param::Time(window_start),
        Param::Time(window_start),
        Param::Time(window_start),
        Param::Int(limit),
    ]
}

pub(crate) const COUNTS: &str =
    "SELECT org, type, COUNT(*) FROM items GROUP BY org, type ORDER BY org, type";

/// The parameters of [`RECORD_JOB`].
pub(crate) fn record_job_params(
    org: &str,
    key: &str,
    outcome: &Value,
    now: chrono::DateTime<chrono::Utc>,
    expires: chrono::DateTime<chrono::Utc>,
) -> Vec<Param> {
    vec![
        Param::Text(org.to_string()),
        Param::Text(key.to_string()),
        Param::Json(outcome.clone()),
        Param::Time(now),
        Param::Time(expires),
        Param::Time(now),
    ]
}

/// The parameters of [`INSERT`] for `item`.
pub(crate) fn insert_params(org: &str, item: &crate::item::Item) -> Vec<Param> {
    vec![
        Param::Uuid(item.id),
        Param::Text(org.to_string()),
        Param::Text(item.type_name.clone()),
        Param::Text(item.name.clone()),
        Param::OptUuid(item.parent),
        Param::OptUuid(item.owner),
        Param::Json(Value::Object(item.attributes.clone())),
        Param::Text(item.search_text()),
        Param::Int(item.version),
        Param::Time(item.created_at),
        Param::Time(item.updated_at),
    ]
}

/// The parameters of [`UPDATE`].
pub(crate) fn update_params(org: &str, item: &crate::item::Item, expected: i64) -> Vec<Param> {
    vec![
        Param::Text(item.name.clone()),
        Param::OptUuid(item.parent),
        Param::Json(Value::Object(item.attributes.clone())),
        Param::Text(item.search_text()),
        Param::Int(item.version),
        Param::Time(item.updated_at),
        Param::Text(org.to_string()),
        Param::Uuid(item.id),
        Param::Int(expected),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeRegistry;

    #[test]
    fn values_are_bound_never_spliced() {
        let registry = TypeRegistry::with_crm();
        let evil = "x' OR '1'='1";
        let params: Vec<(String, String)> = vec![
            ("type".into(), "Contact".into()),
            ("attr.email".into(), evil.into()),
            ("name".into(), format!("{evil}*")),
            ("q".into(), evil.into()),
        ];
        let q = ItemQuery::parse(&registry, &params, None).expect("valid query");
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let sql = select_page(dialect, "default", &q);
            assert!(!sql.text.contains(evil), "{}", sql.text);
            assert!(!sql.text.contains("1'='1"), "{}", sql.text);
        }
    }

    #[test]
    fn numbered_placeholders() {
        assert_eq!(
            numbered(Dialect::Postgres, "a = {} AND b = {}"),
            "a = $1 AND b = $2"
        );
        assert_eq!(numbered(Dialect::Sqlite, "a = {}"), "a = ?1");
    }
}
