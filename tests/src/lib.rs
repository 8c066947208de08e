//! Helpers shared by the integration tests: real stores (a SQLite file in a temporary folder,
//! a fresh schema in the PostgreSQL that `tests/run` starts), a Realnet context over them, and
//! a client that drives the router in-process exactly as an HTTP server would.

pub mod blob_contract;
pub mod contract;
pub mod lambda_runtime;
pub mod sqs;
pub mod webhook_echo;
pub mod wrk;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use realnet::Realnet;
use realnet::config::{Config, DbConfig};
use realnet::item::Item;
use realnet::query::ItemQuery;
use realnet::store::{DynamoStore, ItemStore, PostgresStore, SqliteStore};
use realnet::types::TypeRegistry;
use serde_json::Value;
use tower::ServiceExt;

/// An org no request of the tests acts in: its items must stay untouched.
pub const OTHER_ORG: &str = "other-org";

/// The stores every behaviour is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
    Dynamodb,
}

/// A store and whatever must live as long as it (the SQLite folder).
pub struct TestStore {
    pub store: Arc<dyn ItemStore>,
    pub db: DbConfig,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL that `tests/run` started. Tests that need it fail, loudly, without it.
pub fn pg_config() -> tokio_postgres::Config {
    let url = std::env::var("REALNET_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "REALNET_TEST_PG_URL is not set: PostgreSQL tests need a server; run them with tests/run, which installs and starts one"
        )
    });
    url.parse()
        .unwrap_or_else(|e| panic!("REALNET_TEST_PG_URL {url:?} is not a connection string: {e}"))
}

/// The CA that signed the test cluster's certificate (`tests/run` serves PostgreSQL over TLS).
pub fn pg_ca() -> Option<std::path::PathBuf> {
    std::env::var_os("REALNET_TEST_PG_CA").map(Into::into)
}

/// A plain client of the test cluster, over the same TLS set-up the store uses.
pub async fn pg_client(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let tls = realnet::store::postgres_tls(pg_ca().as_deref()).expect("TLS set-up");
    let (client, conn) = config.connect(tls).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test PostgreSQL ({e}); is tests/run's server up?")
    });
    tokio::spawn(conn);
    client
}

/// A PostgreSQL connection config whose `search_path` is a new, empty schema, so each test has
/// its own tables in the one test cluster.
pub async fn fresh_pg_schema() -> tokio_postgres::Config {
    let config = pg_config();
    let client = pg_client(&config).await;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create test schema");
    let mut config = config;
    config.options(format!("-c search_path={schema}"));
    config
}

/// The AWS emulator (moto) that `tests/run` started. Tests that need it fail, loudly, without
/// it, rather than reaching for real AWS.
pub fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: DynamoDB tests need the moto emulator; run them with tests/run, which installs and starts it"
        )
    })
}

pub async fn store(kind: StoreKind) -> TestStore {
    match kind {
        StoreKind::Dynamodb => {
            aws_endpoint();
            let table = format!("realnet-test-{}", uuid::Uuid::now_v7().simple());
            let store = DynamoStore::new(&table).with_types(&registry());
            store
                .migrate()
                .await
                .expect("create the DynamoDB table in moto");
            TestStore {
                store: Arc::new(store),
                db: DbConfig::Dynamodb {
                    table,
                    page_reads: realnet::store::DEFAULT_PAGE_READS,
                },
                _dir: None,
            }
        }
        StoreKind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("realnet.db");
            TestStore {
                store: Arc::new(SqliteStore::open(&path).expect("open SQLite")),
                db: DbConfig::Sqlite { path },
                _dir: Some(dir),
            }
        }
        StoreKind::Postgres => {
            let config = fresh_pg_schema().await;
            let store = PostgresStore::new(config.clone(), 8, pg_ca().as_deref()).expect("pool");
            store.migrate().await.expect("migrate PostgreSQL");
            TestStore {
                store: Arc::new(store),
                db: DbConfig::Postgres {
                    config: Box::new(config),
                    pool_size: 8,
                    ca_file: pg_ca(),
                },
                _dir: None,
            }
        }
    }
}

/// The compiled-in definitions, with the files the linked extensions ship.
pub fn registry() -> TypeRegistry {
    TypeRegistry::load(None, &extensions().type_files()).expect("the embedded definitions load")
}

/// The definitions of an initialization folder, with the files the linked extensions ship.
pub fn types_in(dir: &std::path::Path) -> TypeRegistry {
    TypeRegistry::load(Some(dir), &extensions().type_files()).expect("the folder loads")
}

/// The linked extensions, as every runner has them.
pub fn extensions() -> realnet::extensions::Extensions {
    realnet::extensions::Extensions::new(realnet_extensions::linked())
        .expect("the linked extensions")
}

/// A Realnet over `types` and `store` with the linked extensions, as the runners build it.
pub fn realnet(
    config: Config,
    types: TypeRegistry,
    store: Arc<dyn realnet::store::ItemStore>,
) -> Realnet {
    Realnet::build(config, types, extensions(), store).expect("the extensions fit the types")
}

/// A query from `key=value` pairs, as `GET /api/items` would parse it.
pub fn query(params: &[(&str, &str)]) -> ItemQuery {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ItemQuery::parse(&registry(), &params, None).expect("a valid query")
}

/// The default configuration with `db` as the store and a small body limit for tests.
pub fn config(db: DbConfig) -> Config {
    let mut c = Config::from_lookup(|_| None).expect("default config");
    c.db = db;
    c.body_limit = 64 * 1024;
    c
}

/// The password of the first admin of every org a [`TestApp`] sets up.
pub const ADMIN_PASSWORD: &str = "admin password for tests";

/// Realnet over a fresh store of `kind`, driven through its router. The default org and
/// [`OTHER_ORG`] are set up as `realnet init` does (seed items, default access rules, an
/// admin account), and requests carry the default org's admin token unless a test says
/// otherwise.
pub struct TestApp {
    pub rn: Arc<Realnet>,
    router: axum::Router,
    /// A login token of the default org's admin.
    pub admin_token: String,
    _store: TestStore,
    _files: tempfile::TempDir,
}

/// What a request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The `error.code` of a JSON error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn new(kind: StoreKind) -> TestApp {
        TestApp::with_config(kind, |_| {}).await
    }

    /// A test app whose configuration `adjust` changes first.
    pub async fn with_config(kind: StoreKind, adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::with_types(kind, registry(), adjust).await
    }

    /// A test app with the types of `types` (an initialization folder's), whose
    /// configuration `adjust` changes first.
    pub async fn with_types(
        kind: StoreKind,
        types: TypeRegistry,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        TestApp::assemble(kind, types, extensions(), adjust, |s| s).await
    }

    /// A test app whose item store is `wrap` around the store of `kind`.
    pub async fn wrapping_store(
        kind: StoreKind,
        adjust: impl FnOnce(&mut Config),
        wrap: impl FnOnce(Arc<dyn realnet::store::ItemStore>) -> Arc<dyn realnet::store::ItemStore>,
    ) -> TestApp {
        TestApp::assemble(kind, registry(), extensions(), adjust, wrap).await
    }

    /// A test app with the linked extensions and `extra` ones (and the types they ship).
    pub async fn with_extensions(
        kind: StoreKind,
        extra: Vec<realnet::extensions::Extension>,
    ) -> TestApp {
        TestApp::with_extensions_config(kind, extra, |_| {}).await
    }

    /// [`TestApp::with_extensions`], whose configuration `adjust` changes first.
    pub async fn with_extensions_config(
        kind: StoreKind,
        extra: Vec<realnet::extensions::Extension>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut linked = realnet_extensions::linked();
        linked.extend(extra);
        let extensions =
            realnet::extensions::Extensions::new(linked).expect("the extensions fit together");
        let types = TypeRegistry::load(None, &extensions.type_files()).expect("the types load");
        TestApp::assemble(kind, types, extensions, adjust, |s| s).await
    }

    async fn assemble(
        kind: StoreKind,
        types: TypeRegistry,
        extensions: realnet::extensions::Extensions,
        adjust: impl FnOnce(&mut Config),
        wrap: impl FnOnce(Arc<dyn realnet::store::ItemStore>) -> Arc<dyn realnet::store::ItemStore>,
    ) -> TestApp {
        let store = store(kind).await;
        let files = tempfile::tempdir().expect("temp dir");
        let mut config = config(store.db.clone());
        config.storage = realnet::config::StorageConfig::Local {
            root: files.path().to_path_buf(),
        };
        adjust(&mut config);
        // A DynamoDB read budget set by `adjust` applies to the store too.
        let item_store: Arc<dyn realnet::store::ItemStore> = match &config.db {
            DbConfig::Dynamodb { table, page_reads } => Arc::new(
                DynamoStore::new(table)
                    .with_page_reads(*page_reads)
                    .with_types(&types),
            ),
            _ => store.store.clone(),
        };
        let item_store = wrap(item_store);
        let rn = Arc::new(
            Realnet::build(config, types, extensions, item_store)
                .expect("the extensions fit the types"),
        );
        let default_org = rn.config.default_org.clone();
        for org in [default_org.as_str(), OTHER_ORG] {
            rn.init_org(org, Some(ADMIN_PASSWORD.to_string()))
                .await
                .expect("set up org");
        }
        let admin_token = rn.token_for(&default_org, "admin").await;
        // Jobs run in process, as under `realnet serve`.
        if let Some(local) = rn.use_local_queue()
            && let Some(jobs) = local.take_receiver().await
        {
            tokio::spawn(realnet::jobs::worker::run_local(rn.clone(), jobs));
        }
        TestApp {
            router: realnet::api::router(rn.clone()),
            rn,
            admin_token,
            _store: store,
            _files: files,
        }
    }

    /// Polls `GET /api/jobs/{id}` as `token` until the job has succeeded or failed, and
    /// answers its last status.
    pub async fn finished_job(&self, token: &str, id: &str) -> Value {
        let uri = format!("/api/jobs/{id}");
        for _ in 0..100 {
            let a = self
                .call_as(Some(token), Method::GET, &uri, None, &[])
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            if a.body["status"] == "succeeded" || a.body["status"] == "failed" {
                return a.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let last = self
            .call_as(Some(token), Method::GET, &uri, None, &[])
            .await;
        panic!("job {id} did not finish: {}", last.text);
    }

    /// Creates an account in `org` through the library and returns a login token for it.
    pub async fn account(&self, org: &str, username: &str, admin: bool) -> (uuid::Uuid, String) {
        let input = realnet::item::ops::NewItem {
            type_name: "Account".into(),
            name: username.into(),
            parent: None,
            attributes: serde_json::json!({"username": username, "admin": admin})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let (item, _) = realnet::item::ops::create(
            &self.rn,
            &realnet::auth::Principal::org_admin(org),
            input,
            None,
        )
        .await
        .expect("create account");
        (item.id, self.rn.token_for(org, username).await)
    }

    /// Sends a raw request, as the default org's admin unless it has an `Authorization`.
    /// A pending `text/plain` file of three bytes made by the admin, and its bytes sent
    /// (`abc`) or not: its id.
    pub async fn pending_file(&self, name: &str, send_bytes: bool) -> String {
        let pending = self
            .post(
                "/api/files",
                serde_json::json!({"name": name, "content_type": "text/plain", "size": 3}),
            )
            .await;
        assert_eq!(pending.status, StatusCode::CREATED, "{}", pending.text);
        let id = pending.body["item"]["id"].as_str().expect("id").to_string();
        if send_bytes {
            let upload = Request::builder()
                .method(Method::PUT)
                .uri(format!("/api/files/{id}/content"))
                .header("content-type", "text/plain")
                .body(Body::from("abc"))
                .expect("request");
            assert_eq!(self.send(upload).await.status, StatusCode::NO_CONTENT);
        }
        id
    }

    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        if !request.headers().contains_key("authorization") {
            let value = format!("Bearer {}", self.admin_token)
                .parse()
                .expect("a token is a valid header value");
            request.headers_mut().insert("authorization", value);
        }
        self.dispatch(request).await
    }

    /// Sends a request exactly as given.
    pub async fn dispatch(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// Sends `method uri` as the default org's admin, with an optional JSON body and extra
    /// headers.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let token = self.admin_token.clone();
        self.call_as(Some(&token), method, uri, body, headers).await
    }

    /// Sends `method uri` with `token` as the bearer token (none: as the public).
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.dispatch(req.body(body).expect("valid request")).await
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None, &[]).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Answer {
        self.call(Method::POST, uri, Some(body), &[]).await
    }

    /// Sends `method uri` as the holder of `token`, with an optional JSON body.
    pub async fn call_with(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Answer {
        self.call_as(Some(token), method, uri, body, &[]).await
    }

    /// Asserts a refusal: `status`, a JSON error body, and that neither org changed since
    /// `before` (a [`TestApp::snapshot`]).
    pub async fn assert_refused(&self, before: &[Item], a: &Answer, status: StatusCode) {
        assert_eq!(a.status, status, "{}", a.text);
        assert!(a.body["error"]["message"].is_string(), "{}", a.text);
        assert_eq!(self.snapshot().await, before, "a refusal changed nothing");
    }

    /// Creates an access rule (an `Acl` item) as the default org's admin.
    pub async fn acl(&self, attributes: Value) -> Value {
        self.create(serde_json::json!({"type": "Acl", "name": "rule", "attributes": attributes}))
            .await
    }

    /// Creates an item through the API and returns it, failing the test if that fails.
    pub async fn create(&self, body: Value) -> Value {
        let a = self.post("/api/items", body.clone()).await;
        assert_eq!(a.status, StatusCode::CREATED, "create {body}: {}", a.text);
        a.body
    }

    /// Every item in the default org and in [`OTHER_ORG`], in creation order: to check that a
    /// refusal changed nothing, in the caller's org or another.
    pub async fn snapshot(&self) -> Vec<Item> {
        let mut all = Vec::new();
        for org in [self.rn.config.default_org.as_str(), OTHER_ORG] {
            let mut q = query(&[("limit", "200")]);
            loop {
                let page = self.rn.store.query(org, &q).await.expect("query");
                all.extend(page.items);
                match page.next {
                    Some(p) => q.after = Some(p),
                    None => break,
                }
            }
        }
        all
    }
}

/// The `id` of an item as the API shows it.
pub fn id_of(item: &Value) -> String {
    item["id"].as_str().expect("an item id").to_string()
}

/// Test-only conveniences on the context.
#[async_trait::async_trait]
pub trait TestTokens {
    /// A login token of the account `username` of `org`.
    async fn token_for(&self, org: &str, username: &str) -> String;
}

#[async_trait::async_trait]
impl TestTokens for Realnet {
    async fn token_for(&self, org: &str, username: &str) -> String {
        let account = realnet::auth::identity::find_account(self, org, username)
            .await
            .expect("query accounts")
            .unwrap_or_else(|| panic!("no account {username} in {org}"));
        realnet::auth::login::issue(self, &account)
            .await
            .expect("issue token")
            .token
    }
}

/// Declares each named `async fn(StoreKind)` as a test on SQLite, on PostgreSQL and on
/// DynamoDB (in moto).
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::StoreKind::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::StoreKind::Postgres).await } )*
        }
        mod dynamodb {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::StoreKind::Dynamodb).await } )*
        }
    };
}

/// A copy of the shipped initialization folder with one more definition file, `extra.json`
/// (resource layer), holding `types`: a deployment's own types.
pub fn init_dir_with(types: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../initialization");
    for entry in std::fs::read_dir(&shipped).expect("initialization/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name");
        std::fs::copy(&path, dir.path().join(name)).expect("copy a definition file");
    }
    let manifest = dir.path().join("manifest.json");
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest")).expect("json");
    let files = m["files"].as_array_mut().expect("files");
    let at = files
        .iter()
        .position(|f| f["layer"] != "core")
        .unwrap_or(files.len());
    files.insert(
        at,
        serde_json::json!({"file": "extra.json", "layer": "resource"}),
    );
    std::fs::write(&manifest, m.to_string()).expect("write manifest");
    std::fs::write(
        dir.path().join("extra.json"),
        serde_json::json!({"types": types}).to_string(),
    )
    .expect("write extra.json");
    dir
}

/// An initialization folder with one error in each of two files, as a deployment might get
/// wrong: a misspelled reference type and an unknown field kind.
pub fn broken_init_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("write definition file")
    };
    write(
        "manifest.json",
        r#"{"files": [{"file": "core.json", "layer": "core"}, {"file": "crm.json", "layer": "resource"}]}"#,
    );
    write(
        "core.json",
        r#"{"types": [{"name": "Item"}, {"name": "Resource", "base": "Item", "fields": [{"name": "size", "kind": "strng"}]}]}"#,
    );
    write(
        "crm.json",
        r#"{"types": [{"name": "Company", "base": "Resource"},
            {"name": "Deal", "base": "Resource", "fields": [{"name": "company", "kind": "ref", "ref": "Compnay"}]}]}"#,
    );
    dir
}

/// The two errors in [`broken_init_dir`], as reported.
pub const BROKEN_INIT_ERRORS: [&str; 2] = [
    "core.json /types/1/fields/0/kind: unknown field kind \"strng\"",
    "crm.json /types/1/fields/0/ref: unknown type \"Compnay\"",
];
